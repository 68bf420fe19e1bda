"""Lab 09: break it. Disable one isolation step at a time in a throw-away copy of minirun, see
what escapes, and find the test that catches it.

The exercise (docs/labs/09-break-it.md): for each of the five breaks, the attendee writes which
test failed against the broken copy, one line each, in /tmp/lab09-answers.txt:

    pivot_root: tests/integration/test_rootfs.py::test_default_mount_points_match_runc
    proc: ...
    capabilities: ...
    devices: ...
    masked_paths: ...

check() verifies (1) every break has an answer and the answer is a test that was seen to fail
for that break (BREAKS below: the page names the same ones, tests/integration/test_labs_3.py
keeps the two in step); (2) the installed checkout still has every line intact (a break made
there by mistake is reported with the `git checkout` that undoes it); (3) the copy is gone
(the directory and its git worktree entry). It only reads.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import labs as L  # noqa: E402  (the shared helpers: scripts/labs/__init__.py)

TITLE = "break it: disable pivot_root, /proc, capabilities, the device cgroup, masked paths"
VERIFIED = ("every break in /tmp/lab09-answers.txt names a test that catches it, the installed "
            "checkout is intact and the copy is gone")

ANSWERS = "/tmp/lab09-answers.txt"
COPY = "/var/tmp/lab09-breakit"

# key: (file in the checkout, the line to disable as it stands there, tests that fail without it)
BREAKS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "pivot_root": (
        "minirun/kernel/rootfs.py",
        '        libc.umount2(".", MNT_DETACH, "detach the old root: the host filesystem is out '
        'of reach")',
        ("tests/integration/test_rootfs.py::test_default_mount_points_match_runc",)),
    "proc": (
        "minirun/base/bundle_defaults.py",
        "        proc,",
        ("tests/integration/test_rootfs.py::test_default_mount_table",)),
    "capabilities": (
        "minirun/oci/init.py",
        '        capabilities.drop_bounding(caps.get("bounding", []), top)',
        ("tests/integration/test_security.py::test_default_hardening",
         "tests/integration/test_security.py::test_cap_drop_all")),
    "devices": (
        "minirun/kernel/cgroups/v1.py",
        '                self.write(os.path.join(d, name), line, "devices", "device access rule")',
        ("tests/integration/test_cgroups_flags.py::test_devices_list_on_the_host_starts_from_deny_all",
         "tests/integration/test_cgroups_limits.py::test_deny_rule_for_dev_zero")),
    "masked_paths": (
        "minirun/oci/init.py",
        "    rootfs.mask_paths(linux.masked_paths)",
        ("tests/integration/test_rootfs.py::test_masked_paths",)),
}

SOLUTION = f"""
cat > {ANSWERS} <<'EOF'
pivot_root: {BREAKS['pivot_root'][2][0]}
proc: {BREAKS['proc'][2][0]}
capabilities: {BREAKS['capabilities'][2][0]}
devices: {BREAKS['devices'][2][0]}
masked_paths: {BREAKS['masked_paths'][2][0]}
EOF
"""


def _norm(test_id: str) -> str:
    """A test id as the page writes it: tests/integration/FILE::NAME (the prefix may be left out)."""
    t = test_id.strip().strip("`")
    if t.startswith("integration/"):
        t = "tests/" + t
    elif not t.startswith("tests/"):
        t = "tests/integration/" + t
    return t


def read_answers(path: str = ANSWERS) -> tuple[dict[str, str], list[str]]:
    """{break: test id} from the answers file, and a problem line for each line it cannot read."""
    answers: dict[str, str] = {}
    problems: list[str] = []
    try:
        text = Path(path).read_text()
    except OSError:
        return answers, [f"{path} is missing: write one line per break, `BREAK: TEST_ID` "
                         f"(breaks: {', '.join(BREAKS)}), as docs/labs/09-break-it.md shows"]
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        key, sep, test = s.partition(":")
        key = key.strip()
        if not sep or key not in BREAKS or not test.strip():
            problems.append(f"{path} line {n}: {s!r} is not `BREAK: TEST_ID` with BREAK one of "
                            f"{', '.join(BREAKS)}: fix that line")
            continue
        answers[key] = _norm(test)
    return answers, problems


def _answer_problems() -> list[str]:
    answers, problems = read_answers()
    if not Path(ANSWERS).exists():
        return problems
    for key, (_, _, caught_by) in BREAKS.items():
        got = answers.get(key)
        if got is None:
            problems.append(f"{ANSWERS}: no line for `{key}`: break it in the copy, run the tests "
                            f"the page names for it, and add `{key}: TEST_ID` for the one that failed")
        elif got not in caught_by:
            problems.append(f"{ANSWERS}: `{key}: {got}` is not a test that catches this break "
                            f"(it passes with the line disabled, or does not exist): run it "
                            f"against the broken copy and note the one that fails")
    return problems


def _checkout_problems() -> list[str]:
    problems = []
    for key, (rel, line, _) in BREAKS.items():
        try:
            lines = (L.REPO / rel).read_text().splitlines()
        except OSError as e:
            problems.append(f"{L.REPO / rel}: {e.strerror}: restore it with "
                            f"`git -C {L.REPO} checkout -- {rel}`")
            continue
        if line not in lines:
            problems.append(f"the installed checkout is broken: {rel} lacks the `{key}` line "
                            f"`{line.strip()}`; breaks go in the copy only: undo it with "
                            f"`git -C {L.REPO} checkout -- {rel}`")
    return problems


def _worktrees() -> list[str]:
    r = subprocess.run(["git", "-C", str(L.REPO), "worktree", "list", "--porcelain"],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return [ln.split(" ", 1)[1] for ln in r.stdout.splitlines() if ln.startswith("worktree ")]


def _copy_problems() -> list[str]:
    problems = []
    if os.path.exists(COPY):
        problems.append(f"the broken copy {COPY} is still there: remove it with "
                        f"`git -C {L.REPO} worktree remove --force {COPY}` (or `rm -rf {COPY}` "
                        f"if it was made with cp -a)")
    elif COPY in _worktrees():
        problems.append(f"git still lists the worktree {COPY}: run `git -C {L.REPO} worktree prune`")
    return problems


def check() -> list[str]:
    return _answer_problems() + _checkout_problems() + _copy_problems()


def cleanup() -> None:
    """The answers file and the copy (if it is still there)."""
    L.remove_paths(ANSWERS)
    if os.path.exists(COPY) or COPY in _worktrees():
        subprocess.run(["git", "-C", str(L.REPO), "worktree", "remove", "--force", COPY],
                       capture_output=True, stdin=subprocess.DEVNULL)
        if os.path.exists(COPY):
            L.remove_paths(COPY)
        subprocess.run(["git", "-C", str(L.REPO), "worktree", "prune"], capture_output=True,
                       stdin=subprocess.DEVNULL)
