"""The short-lived processes keep their start-up budget: no heavy module sneaks in.

Every `minirun-oci` call is a fresh process racing runc's ~13 ms, and the per-container monitor
starts while the CLI waits for it. Their lean start (README, "A lean start path") rests on
modules that are never loaded: no `json` (minirun/fastjson.py), no `dataclasses` or `typing`
(minirun/record.py, `TYPE_CHECKING = False`), no `re`/`enum`, no argparse or click (a
hand-written parser: minirun/oci/cli.py), no `signal` (`_signal` instead), and `ctypes` and
`prctl` only for the verbs that make raw system calls (minirun/kernel/libc.py).

Each case starts an interpreter the way the launchers do (`python -I -S`, with the checkout and
the venv's site-packages put on sys.path: scripts/setup, engine/monitorhandle.py monitor_argv),
runs the verb as far as it goes without root or side effects (against an empty --root, so it
stops at "container c1 does not exist"), then imports what the verb's handler imports lazily
on its success path (read from oci/cli.py's dispatch and oci/container.py), and reads
sys.modules. `-X importtime` tells who imported a forbidden module, for the failure message.

A case's rules: FORBIDDEN for everyone, minus what that case `allows` (with the reason). What a
case still loads but should not is `tolerated`, with what will fix it; like the layering test's
KNOWN_VIOLATIONS, that list can only shrink: a tolerated module no longer loaded fails too.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Module (and its submodules) -> why no short-lived process may load it. Rough costs are cold
# starts with `python -I -S -X importtime` on the 2-core test VM.
FORBIDDEN: dict[str, str] = {
    "json": "minirun.fastjson uses _json directly (json imports re: ~5 ms)",
    "dataclasses": "minirun.record is the hot path's @dataclass (~12 ms: inspect, re, enum)",
    "typing": "annotations are strings; use `TYPE_CHECKING = False` (~7 ms, imports re)",
    "re": "~5-8 ms; parse by hand on the hot path",
    "enum": "~5 ms; what imports it (signal, socket) is kept out of the lean verbs",
    "inspect": "~10 ms; pulled in by dataclasses and friends",
    "argparse": "oci/cli.py parses runc's flags by hand: argparse costs ~6 ms",
    "click": "the front end's parser, never the runtime's (~20 ms)",
    "pyroute2": "~60-90 ms: only the monitor's network helper loads it (engine/nethelper.py)",
    "logging": "oci/log.py writes its lines itself (~20 ms)",
    "pathlib": "os.path is already loaded (~8 ms)",
    "subprocess": "~9 ms (threading, signal, re via locale)",
    "threading": "~3 ms; the runtime has no threads (unshare and setns refuse a threaded caller)",
    "shutil": "~7 ms",
    "tempfile": "~10 ms (random, shutil)",
    "uuid": "~10 ms",
    "ipaddress": "network code: the engine's, in the monitor's forked child",
    "hashlib": "image code (digests), not the runtime's",
    "tarfile": "image code (layers), not the runtime's",
    "socket": "~5 ms; only the verbs that pass a console or a tty need it",
    "signal": "imports enum; oci/cli.py uses _signal for names and numbers",
    "functools": "~3-7 ms cold; nothing on the lean path needs it",
    "collections": "~2-3 ms; nothing on the lean path needs it (array imports it)",
    "contextlib": "~3 ms; nothing on the lean path needs it",
    "ctypes": "~2.4 ms: only the verbs that make raw system calls (kernel/libc.py)",
    "prctl": "python-prctl: only the verbs that set capabilities (kernel/capabilities.py)",
    "minirun.cli": "the front end (click) sits above the runtime",
    "minirun.compose": "a front end sits above the runtime",
    "minirun.api": "a front end sits above the runtime",
    "minirun.engine": "the engine sits above the runtime: it never knows images or names",
    "minirun.image": "image code is the engine's business, never the runtime's",
    "minirun.network": "network code is the engine's business, never the runtime's",
}

RAW_SYSCALLS = {
    "ctypes": "raw system calls (mount, pivot_root, unshare, setns ...) through kernel/libc.py",
    "prctl": "capabilities and prctl options through kernel/capabilities.py",
}
CGROUPS = ("minirun.kernel.cgroups", "minirun.kernel.cgroups.v1", "minirun.kernel.cgroups.v2")
# What create imports lazily on success (oci/container.py create, _make_cgroup, _parent_setup,
# _idmapped_mounts) and ctypes itself, loaded by libc's first raw call.
CREATE_PATH = (
    "minirun.oci.spec", "minirun.oci.channel", "minirun.oci.init", "minirun.oci.hooks",
    "minirun.oci.seccomp_listener", "minirun.kernel.seccomp", *CGROUPS,
    "minirun.kernel.cgroups.migration", "minirun.kernel.host_mountns", "minirun.kernel.idmap",
    "minirun.kernel.rootfs", "minirun.kernel.namespaces", "minirun.kernel.libc:preload",
    "select")
# A terminal or a console socket: kernel/terminal.py's socket, signal, tty and array.
TTY_PATH = ("minirun.kernel.terminal", "socket", "signal", "tty", "array", "select")
TTY_ALLOWS = {
    "socket": "--console-socket and a foreground tty",
    "signal": "kernel/terminal.py forwards SIGWINCH",
    "enum": "socket's and signal's IntEnums",
    "functools": "enum's",
    "collections": "array registers as a MutableSequence",
}


@dataclass(frozen=True)
class Case:
    """One short-lived process to measure."""

    argv: tuple[str, ...]  # minirun-oci's arguments after --root; () runs no verb
    expect: str  # a fragment of the failing run's stderr; "" means it must succeed
    steps: tuple[str, ...] = ()  # then imported, in order ("module:function" also calls it)
    allows: dict[str, str] = field(default_factory=dict)  # exceptions to FORBIDDEN, and why
    forbids: dict[str, str] = field(default_factory=dict)  # more, inside what it allows
    tolerated: dict[str, str] = field(default_factory=dict)  # loaded today, should not be


MISSING = "container c1 does not exist"
# state and start make no raw system call: kernel/libc.py (~0.4 ms with errno and fcntl) is
# loaded lazily by the kernel modules that do (process.py, cgroups/).
NO_SEAM = {"minirun.kernel.libc": "state and start make no raw system call (~0.4 ms)"}
NO_CONFIG = "config.json: not found in bundle"

CASES: dict[str, Case] = {
    # The verbs that make no raw system call: the leanest path (13 minirun modules for state).
    "state": Case(("state", "c1"), MISSING, forbids=NO_SEAM),
    # poll() on the exec fifo. Not simulated: poststart hooks (hooks.py imports oci/spec.py,
    # hence prctl), which only a container with such hooks pays for.
    "start": Case(("start", "c1"), MISSING, ("select",), forbids=NO_SEAM),
    "kill": Case(("kill", "--all", "c1", "KILL"), MISSING, CGROUPS),  # --all reads cgroup.procs
    "delete": Case(("delete", "c1"), MISSING, (*CGROUPS, "minirun.kernel.host_mountns")),
    "list": Case(("list",), ""),
    "pause": Case(("pause", "c1"), MISSING, CGROUPS),
    "resume": Case(("resume", "c1"), MISSING, CGROUPS),
    "update": Case(("update", "--memory", "64m", "c1"), MISSING,
                   (*CGROUPS, "minirun.kernel.cgroups.resources")),
    "events": Case(("events", "--stats", "c1"), MISSING, CGROUPS),
    # ps runs ps(1), as runc does: subprocess and what it brings. Not on a start path.
    "ps": Case(("ps", "c1"), MISSING, (*CGROUPS, "subprocess"),
               allows={m: "subprocess runs ps(1), as runc ps does" for m in (
                   "subprocess", "threading", "signal", "re", "enum", "functools",
                   "collections", "contextlib")}),
    # The verbs that build or enter a container: raw system calls, capabilities.
    "create": Case(("create", "--bundle", "{bundle}", "c1"), NO_CONFIG, CREATE_PATH,
                   allows=RAW_SYSCALLS),
    "run": Case(("run", "--bundle", "{bundle}", "c1"), NO_CONFIG,
                (*CREATE_PATH, "minirun.oci.run", *TTY_PATH),
                allows={**RAW_SYSCALLS, **TTY_ALLOWS}),
    "exec": Case(("exec", "c1", "true"), MISSING,
                 ("minirun.oci.execute", "minirun.oci.init", "minirun.oci.seccomp_listener",
                  "minirun.kernel.seccomp", "minirun.kernel.sealed_exec", *CGROUPS,
                  "minirun.kernel.cgroups.migration", "minirun.kernel.host_mountns",
                  "minirun.kernel.libc:preload", *TTY_PATH),
                 allows={**RAW_SYSCALLS, **TTY_ALLOWS}),
    # Run to completion (spec writes config.json into a temporary bundle). oci/spec.py imports
    # kernel/capabilities.py, which imports prctl at its top (found before any pivot_root).
    "spec": Case(("spec", "--bundle", "{bundle}"), "",
                 allows={"prctl": "through oci/spec.py"}),
    "features": Case(("features",), "",
                     allows={"prctl": "through oci/spec.py"}),
    # The monitor (engine/monitor.py): the process that lives as long as the container loads
    # only what waiting, logs and attach need. The runtime runs in its forked maker, the
    # network code in its forked helpers, and removal happens at the end, so none of those is
    # in its memory: no socket or signal (their enums: ~1 MB of every container's monitor),
    # no ctypes, no runtime. libc.py for its one prctl (PR_SET_CHILD_SUBREAPER).
    "monitor": Case(
        (), "", ("minirun.engine.monitor",),
        allows={"minirun.engine": "the monitor is part of the engine"},
        forbids={
            "minirun.engine.lifecycle": "the CLI's engine, imported only to --rm a container "
                                        "once it is gone (it brings image and network code)",
            "minirun.engine.networking": "runs in the monitor's forked child (in_child)",
            "minirun.oci": "the runtime runs in the monitor's maker (monitor.Maker)",
            "minirun.kernel.cgroups": "read in the maker, or at the end of the last run",
            "minirun.kernel.terminal": "the maker's; the monitor receives the pty itself",
            "minirun.engine.health": "imported only for a container with a HEALTHCHECK",
            "array": "~0.1 MB kept for the container's life: not in the monitor",
            "termios": "the attached CLI's, not the monitor's (engine/attach.py)",
            "tty": "the attached CLI's, not the monitor's (engine/attach.py)",
        }),
    # Its maker (monitor.Maker, forked at its start): what _preload() loads to create the
    # container; it exits once the container runs.
    "monitor-maker": Case(
        (), "", ("minirun.engine.monitor:_preload",),
        allows={**RAW_SYSCALLS, **TTY_ALLOWS,
                "minirun.engine": "the monitor is part of the engine",
                "minirun.image.overlay": "it mounts the container's rootfs (and unmounts it)"},
        forbids={
            "minirun.engine.lifecycle": "the CLI's engine, imported only to --rm a container "
                                        "once it is gone (it brings image and network code)",
            "minirun.engine.networking": "runs in the monitor's forked child (in_child)",
        }),
}

# The probe: what a launcher does, then the case's steps, then the module list to a file.
PROBE = r"""
import sys
sys.path[:0] = sys.argv[1].split(":")
out, steps, argv = sys.argv[2], [s for s in sys.argv[3].split(",") if s], sys.argv[4:]
if argv:
    from minirun.oci.cli import main
    sys.stderr.write(f"exit {main(argv)}\n")
for step in steps:
    mod, _, fn = step.partition(":")
    __import__(mod)
    if fn:
        getattr(sys.modules[mod], fn)()
with open(out, "w") as f:
    f.write("\n".join(sorted(sys.modules)))
"""


def rule_for(module: str, case: Case) -> tuple[bool, str]:
    """(forbidden?, why) for one loaded module: the most specific rule decides, so
    `minirun.image.overlay` allowed beats `minirun.image` forbidden."""
    rules: dict[str, tuple[bool, str]] = {m: (True, why) for m, why in FORBIDDEN.items()}
    rules.update({m: (False, why) for m, why in case.allows.items()})
    rules.update({m: (True, why) for m, why in case.forbids.items()})
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in rules:
            return rules[key]
    return False, ""


def importers(importtime: str) -> dict[str, list[str]]:
    """module -> the chain of modules whose import first imported it (innermost first).

    `-X importtime` prints a module when its import ends, nested two spaces per level, so a
    module's importer is the next line below it with less indentation."""
    rows: list[tuple[int, str]] = []
    for line in importtime.splitlines():
        if line.startswith("import time:") and "|" in line and "imported package" not in line:
            name = line.rsplit("|", 1)[1]
            stripped = name.lstrip(" ")
            rows.append(((len(name) - len(stripped)) // 2, stripped.strip()))
    chains: dict[str, list[str]] = {}
    for i, (depth, mod) in enumerate(rows):
        chain, want = [], depth
        for d, m in rows[i + 1:]:
            if d < want:
                chain.append(m)
                want = d
        chains.setdefault(mod, chain)
    return chains


def probe(case: Case, tmp_path: Path) -> tuple[list[str], str]:
    """Run the case in a fresh lean interpreter; return (sys.modules, stderr)."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (tmp_path / "root").mkdir()
    out = tmp_path / "modules.txt"
    paths = [str(REPO), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    argv = ["--root", str(tmp_path / "root"),
            *(a.replace("{bundle}", str(bundle)) for a in case.argv)] if case.argv else []
    # -I: no PYTHON* variables, no user site; -S: no site (the launchers' lean start). A bare
    # environment, so that MINIRUN_TRACE and the like cannot change the path either.
    r = subprocess.run(
        [sys.executable, "-I", "-S", "-X", "importtime", "-c", PROBE,
         ":".join(dict.fromkeys(paths)), str(out), ",".join(case.steps), *argv],
        cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
        timeout=60, check=False)
    assert r.returncode == 0 and out.exists(), f"the probe failed:\n{r.stderr[-3000:]}"
    return out.read_text().split("\n"), r.stderr


def over_budget(case: Case, loaded: list[str], importtime: str) -> list[str]:
    """One line per forbidden module loaded (the top of each family), with who imported it."""
    loaded_set = set(loaded)

    def tolerated(m: str) -> bool:
        return any(m == t or m.startswith(t + ".") for t in case.tolerated)

    bad = {m for m in loaded if rule_for(m, case)[0] and not tolerated(m)}
    # A package is imported with any of its modules: minirun.image comes with the allowed
    # minirun.image.overlay, and is not a violation of its own.
    bad -= {m for m in bad if any(o.startswith(m + ".") and not rule_for(o, case)[0]
                                  for o in loaded_set)}
    # Report only the top of each forbidden family (re, not re._parser too).
    bad = {m for m in bad if not any(m.startswith(b + ".") for b in bad)}
    chains = importers(importtime)
    lines = []
    for m in sorted(bad):
        chain = chains.get(m, [])
        by = (" <- ".join([m, *chain]) if chain
              else f"{m} (by a function at run time, not by a module's import)")
        if m.startswith("minirun"):  # name the modules, not only their package
            members = sorted(o for o in loaded_set if o.startswith(m + "."))
            by += f" [{', '.join(members)}]" if members else ""
        lines.append(f"  {by}: {rule_for(m, case)[1]}")
    return lines


@pytest.mark.parametrize("name", list(CASES))
def test_startup_budget(name: str, tmp_path: Path) -> None:
    """The case loads none of its forbidden modules, and still loads what it tolerates."""
    case = CASES[name]
    loaded, stderr = probe(case, tmp_path)
    messages = [ln for ln in stderr.splitlines() if not ln.startswith("import time:")]
    # The verb must have run the path we meant (not stopped at a usage error, say).
    if case.argv:
        want = case.expect or "exit 0"
        assert any(want in ln for ln in messages), (
            f"minirun-oci {' '.join(case.argv)} did not run as the test expects "
            f"({want!r}):\n" + "\n".join(messages))
    lines = over_budget(case, loaded, stderr)
    assert not lines, (f"{name}: loads modules kept out of its start-up budget "
                       f"({len(loaded)} modules in all):\n" + "\n".join(lines))
    gone = sorted(set(case.tolerated) - set(loaded))
    assert not gone, "\n".join(
        f"{name} no longer loads {m}: take it off `tolerated` in "
        f"tests/unit/test_startup_budget.py (it is forbidden from now on)" for m in gone)


def test_importers_reads_the_nesting() -> None:
    """The chain in a failure message: innermost importer first."""
    text = ("import time: self [us] | cumulative | imported package\n"
            "import time:        10 |         10 |       _sre\n"
            "import time:        10 |         20 |     re._compiler\n"
            "import time:        10 |         30 |   re\n"
            "import time:        10 |         40 | json\n"
            "import time:        10 |         10 | os\n")
    chains = importers(text)
    assert chains["_sre"] == ["re._compiler", "re", "json"]
    assert chains["json"] == []
