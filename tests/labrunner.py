"""What the lab tests share (tests/integration/test_labs_*.py): the page of lab N, the
`scripts/lab` command, a page's runnable blocks run as an attendee would, the check modules."""

from __future__ import annotations

import glob
import importlib
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "scripts"))

import labs  # noqa: E402  (scripts/labs: the checks' helpers)

LAB = os.path.join(REPO, "scripts", "lab")


def page(n: int) -> str:
    found = glob.glob(os.path.join(REPO, "docs", "labs", f"{n:02d}-*.md"))
    assert len(found) == 1, f"docs/labs/{n:02d}-*.md: expected one page, found {found}"
    return found[0]


def lab(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    """`scripts/lab ARGS`, as an attendee runs it."""
    return subprocess.run([sys.executable, LAB, *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def bash(script: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """A page's ```sh blocks, from the checkout, with this checkout's CLIs first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{labs.BIN}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    env.pop("MINIRUN_TRACE", None)
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def module(n: int):
    """scripts/labs/labNN.py."""
    return importlib.import_module(f"labs.lab{n:02d}")


def cleaned(n: int, leftovers):
    """A lab test's fixture body: lab n's cleanup() before (nothing of an earlier run may be
    left: leftovers(n) says what is) and after the test.

    The labs work in the attendee's own (default) --root, where the first bridged container
    makes the default bridge, minirun0, and its NAT table; an attendee keeps them (Docker keeps
    docker0), but a test that made them takes them down again (CI's leak check)."""
    mod = module(n)
    mod.cleanup()
    assert leftovers(n) == [], "left over from an earlier run, and cleanup() did not remove it"
    bridge_was_up = _default_bridge_up()
    try:
        yield n
    finally:
        mod.cleanup()
        if not bridge_was_up and _default_bridge_up():
            _release_default_bridge()


def _default_bridge_up() -> bool:
    return os.path.exists("/sys/class/net/minirun0")


def _release_default_bridge() -> None:
    from minirun.engine.api import networks
    from minirun.engine.lifecycle import Engine

    eng = Engine(os.environ.get("MINIRUN_ROOT") or "/var/lib/minirun",
                 os.environ.get("MINIRUN_RUNROOT") or "/run/minirun", None)
    assert networks.release_default(eng), "the default bridge is still used by a container"
