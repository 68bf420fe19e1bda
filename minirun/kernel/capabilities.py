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

NAMES: dict[str, int] = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
    "CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
    "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}

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
