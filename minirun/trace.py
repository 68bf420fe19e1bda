"""--trace: narrate every kernel step as it happens.

Each line says what was called, with which arguments, and why, e.g.

    [init 4321 +9.2ms] pivot_root(".", ".")   swap the container's rootfs in as / ...

Tracing must cost nothing when it is off: callers test the module-level flag `enabled` before
they build a message, so the only cost is one attribute load per step. Lines are written with
os.write() to a private duplicate of stderr, so they survive fork(), still reach the caller's
terminal after the container's stdio has been redirected to a pty, and are never buffered.
"""

from __future__ import annotations

import os
import time

enabled = False
_fd = 2
_who = "minirun"
_t0 = 0.0


def enable(who: str = "oci", fd: int | None = None, t0: float | None = None) -> None:
    """Turn narration on (from --trace or MINIRUN_TRACE=1): to a private copy of stderr, or to
    `fd` (made close-on-exec, and ours from now on: `minirun run`'s monitor gets the CLI's
    stderr this way, engine/monitorhandle.py). `t0`: the clock to count from (the CLI's, so
    that the monitor's lines continue its timeline; CLOCK_MONOTONIC is the machine's)."""
    global enabled, _fd, _who, _t0
    enabled = True
    _who = who
    _t0 = time.monotonic() if t0 is None else t0
    if fd is not None:
        os.set_inheritable(fd, False)  # never leaks into the container
        _fd = fd
        return
    try:
        _fd = os.dup(2)  # non-inheritable: never leaks into the container
    except OSError:
        _fd = 2


def redirect(fd: int) -> None:
    """From now on, narrate to what fd is open on (the monitor's log, once the CLI whose stderr
    it narrated to has gone: engine/monitor.py). Our copy of the old destination is closed."""
    global _fd
    if _fd == 2:
        _fd = os.dup(fd)
        return
    try:
        os.dup2(fd, _fd, inheritable=False)
    except OSError:
        pass


def t0() -> float:
    """The monotonic time tracing counts from (passed on to the monitor)."""
    return _t0


def stage(name: str) -> None:
    """Name the process that narrates from now on (parent, child, init ...)."""
    global _who
    _who = name


def step(call: str, why: str) -> None:
    """One narrated kernel step: the call with its arguments, and the reason."""
    line = f"[{_who} {os.getpid()} {_ms()}] {call}"
    if len(line) < 72:
        line = line.ljust(72)
    try:
        os.write(_fd, f"{line}  # {why}\n".encode(errors="replace"))
    except OSError:
        pass


def note(text: str) -> None:
    """A narrated line that is not a system call (a phase, a decision)."""
    try:
        os.write(_fd, f"[{_who} {os.getpid()} {_ms()}] -- {text}\n".encode(errors="replace"))
    except OSError:
        pass


def _ms() -> str:
    """Milliseconds since tracing began in this command (inherited across fork)."""
    return f"+{(time.monotonic() - _t0) * 1000:.1f}ms"
