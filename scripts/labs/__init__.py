"""Shared helpers for the lab checks (scripts/labs/labNN.py), stdlib only.

A lab module defines:

    TITLE = "namespaces: ..."        # one line, shown by `scripts/lab list`
    VERIFIED = "what check() saw"    # optional: the text after "lab N: ok — " (default TITLE)
    SOLUTION = '''shell commands'''  # bash -e script that does the exercise (tests only)
    def check() -> list[str]: ...    # one line per problem: what is missing + how to fix it
    def cleanup() -> None: ...       # remove everything the exercise (or SOLUTION) made

Naming convention: everything an exercise makes is named `labNN-...` (containers, networks,
volumes, images), and files live under /tmp/labNN/. cleanup() removes exactly those, with
remove_containers("labNN-"), remove_oci("labNN-") and remove_paths("/tmp/labNN").

The CLIs are the checkout's: MINIRUN and MINIRUN_OCI below (.venv/bin next to scripts/), so a
check does not depend on the attendee's PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".venv" / "bin"
MINIRUN = str(BIN / "minirun")
MINIRUN_OCI = str(BIN / "minirun-oci")


def run(argv: list[str], input: str | None = None, timeout: float = 30,
        env: dict | None = None) -> subprocess.CompletedProcess:
    """Run argv, capture text output; never raises on a non-zero exit (check .returncode)."""
    e = None
    if env:
        e = dict(os.environ)
        e.update(env)
    try:
        return subprocess.run(argv, input=input, capture_output=True, text=True,
                              timeout=timeout, env=e,
                              stdin=None if input is not None else subprocess.DEVNULL)
    except FileNotFoundError as exc:
        return subprocess.CompletedProcess(argv, 127, "", str(exc))


def minirun(*args: str, **kw) -> subprocess.CompletedProcess:
    """The docker-like CLI of this checkout, on the default root (or $MINIRUN_ROOT)."""
    return run([MINIRUN, *args], **kw)


def oci(*args: str, **kw) -> subprocess.CompletedProcess:
    """The runc-like runtime of this checkout, on its default state root (/run/minirun)."""
    return run([MINIRUN_OCI, *args], **kw)


def sh(script: str, **kw) -> subprocess.CompletedProcess:
    """bash -e -c script, with .venv/bin first on PATH (as the lab pages assume)."""
    env = {"PATH": f"{BIN}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"}
    return run(["bash", "-e", "-c", script], env=env, **kw)


# --- containers of the docker-like front end -------------------------------------------------

def inspected(*argv: str) -> dict | None:
    """The first object of `minirun ARGV` (an inspect command) as a dict, or None if there is
    no such object."""
    r = minirun(*argv)
    if r.returncode != 0:
        return None
    try:
        data = json.loads(r.stdout)
    except ValueError:
        return None
    return data[0] if isinstance(data, list) and data else None


def container(name: str) -> dict | None:
    """`minirun inspect NAME` as a dict, or None if there is no such container."""
    return inspected("inspect", "--type", "container", name)


def running_pid(name: str, how: str) -> tuple[int | None, list[str]]:
    """The host PID of running container NAME, or (None, [a problem line]).

    `how` is the command that makes it, used in the problem text."""
    c = container(name)
    if c is None:
        return None, [f"there is no container named {name}: create it with `{how}`"]
    st = c.get("State", {})
    if not st.get("Running"):
        return None, [f"container {name} exists but is not running (status "
                      f"{st.get('Status')}): remove it with `minirun rm -f {name}`, then `{how}`"]
    return int(st["Pid"]), []


def names(prefix: str) -> list[str]:
    """Names of the front end's containers (any state) that start with prefix."""
    r = minirun("ps", "-a", "--format", "{{.Names}}")
    return [n.strip() for n in r.stdout.splitlines() if n.strip().startswith(prefix)]


def remove_containers(prefix: str) -> None:
    """minirun rm -f every container whose name starts with prefix (and its anonymous volumes)."""
    found = names(prefix)
    if found:
        minirun("rm", "-f", "-v", *found, timeout=60)


# --- containers of the OCI runtime -----------------------------------------------------------

def oci_state(cid: str) -> dict | None:
    r = oci("state", cid)
    if r.returncode != 0:
        return None
    try:
        return json.loads(r.stdout)
    except ValueError:
        return None


def oci_ids(prefix: str) -> list[str]:
    r = oci("list", "-q")
    return [n.strip() for n in r.stdout.splitlines() if n.strip().startswith(prefix)]


def remove_oci(prefix: str) -> None:
    for cid in oci_ids(prefix):
        oci("delete", "--force", cid, timeout=60)


# --- files, namespaces, mounts ---------------------------------------------------------------

def remove_paths(*paths: str) -> None:
    """rm -rf each path (only ever /tmp/labNN... paths: refuse anything else)."""
    for p in paths:
        if not os.path.basename(p.rstrip("/")).startswith("lab"):
            raise ValueError(f"remove_paths: {p} is not a lab path")
        if os.path.islink(p) or os.path.isfile(p):
            os.unlink(p)
        elif os.path.isdir(p):
            shutil.rmtree(p)


def ns(pid: int | str, kind: str) -> str:
    """readlink /proc/PID/ns/KIND, e.g. 'net:[4026531833]' ('' if unreadable).

    For "the host's", compare with ns("self", KIND): on the workshop VM, PID 1's links are not
    readable (its init is outside our reach), so ns(1, ...) is ''."""
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return ""


def nspid(pid: int) -> list[int]:
    """The NSpid line of /proc/PID/status: the PID in each nested PID namespace, outermost first."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return [int(x) for x in line.split()[1:]]
    except OSError:
        pass
    return []


def mountinfo(pid: int | str = "self") -> list[dict]:
    """/proc/PID/mountinfo as dicts: root, point, options (per mount), fstype, source, super."""
    out = []
    try:
        with open(f"/proc/{pid}/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        left, _, right = line.partition(" - ")
        lf, rf = left.split(), right.split()
        if len(lf) < 6 or len(rf) < 2:
            continue
        out.append({"root": _unescape(lf[3]), "point": _unescape(lf[4]),
                    "options": lf[5].split(","), "fstype": rf[0], "source": rf[1],
                    "super": rf[2].split(",") if len(rf) > 2 else []})
    return out


def _unescape(s: str) -> str:
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n") \
            .replace("\\134", "\\")


def mounts_under(path: str) -> list[str]:
    """Mount points in the host's table at or below path (for cleanup checks)."""
    p = path.rstrip("/")
    return [m["point"] for m in mountinfo("self") if m["point"] == p or
            m["point"].startswith(p + "/")]


# --- the pages' runnable blocks (used by tests/integration/test_labs_*.py) -------------------

def page_blocks(page: str | Path) -> list[str]:
    """The bodies of a page's fenced blocks opened with exactly ```sh, in order.

    ```console and ```text blocks (a prompt with output, trace excerpts) are never run."""
    blocks, cur = [], None
    for line in Path(page).read_text().splitlines():
        s = line.strip()
        if cur is None:
            if s == "```sh":
                cur = []
        elif s == "```":
            blocks.append("\n".join(cur))
            cur = None
        else:
            cur.append(line)
    if cur is not None:
        raise ValueError(f"{page}: a ```sh block is not closed")
    return blocks


def page_script(page: str | Path) -> str:
    """All of a page's ```sh blocks as one bash script (variables carry from block to block)."""
    return "\n\n".join(page_blocks(page)) + "\n"
