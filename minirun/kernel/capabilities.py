"""Capabilities: root's powers split into ~41 bits, in five sets per process.

  bounding     the most the process (and its children, through exec) can ever hold
  permitted    what it may turn on in effective
  effective    what the kernel checks right now
  inheritable  what may pass through exec to a program with matching file capabilities
  ambient      what passes through exec to any program (not setuid ones)

Order matters (capabilities(7)): drop the bounding set while we still hold CAP_SETPCAP, switch
user with PR_SET_KEEPCAPS so permitted survives setuid(), then set the three classic sets with
capset(2), then raise ambient capabilities (each must already be permitted and inheritable).
"""

from __future__ import annotations

from .. import trace
from . import libc

try:  # python-prctl, for capset and the prctl options it wraps (libc.Kernel): imported now,
    import prctl  # noqa: F401  before any pivot_root, since imports afterwards search the container
except ImportError:  # pragma: no cover - libc.Kernel names the missing package when it is used
    pass

from .capnames import NAMES  # noqa: E402  (the table alone: the front end needs only it)

SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


def last_cap() -> int:
    """The highest capability this kernel knows (newer names above it are ignored, as runc does)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return max(NAMES.values())


def to_numbers(names: list[str], top: int) -> list[int]:
    return sorted({NAMES[n] for n in names if NAMES[n] <= top})


def drop_bounding(keep: list[str], top: int) -> None:
    """Remove every capability not in `keep` from the bounding set (needs CAP_SETPCAP)."""
    keep_nums = set(to_numbers(keep, top))
    have = current_bounding()
    for cap in range(top + 1):
        if cap not in keep_nums and have & (1 << cap):
            libc.prctl(libc.PR_CAPBSET_DROP, cap, f"drop {_name(cap)} from the bounding set: "
                       "no exec can ever regain it")


def current_bounding() -> int:
    """This process's bounding set as a bit mask (CapBnd in /proc/self/status)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                return int(line.split()[1], 16)
    return 0


def _name(cap: int) -> str:
    for n, v in NAMES.items():
        if v == cap:
            return n
    return str(cap)


def apply(caps: dict[str, list[str]], top: int) -> None:
    """Set effective, permitted and inheritable exactly, then raise the ambient set."""
    eff = to_numbers(caps.get("effective", []), top)
    perm = to_numbers(caps.get("permitted", []), top)
    inh = to_numbers(caps.get("inheritable", []), top)
    amb = to_numbers(caps.get("ambient", []), top)
    libc.capset(eff, perm, inh, top, "set the process's effective, permitted and inheritable "
                "capabilities from process.capabilities")
    for cap in amb:
        # The kernel only lets a capability be ambient if it is also permitted and inheritable
        # (capabilities(7)). runc skips the others without failing; so do we, so that the same
        # config.json gives the same process under both.
        if cap in perm and cap in inh:
            libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_RAISE,
                       f"keep {_name(cap)} across execve() of a non-root program", arg3=cap)
        elif trace.enabled:
            trace.note(f"ambient {_name(cap)} skipped: not in both permitted and inheritable")
