"""The process: resource limits, who it runs as, its file descriptors, and execve().

These are the last steps before the container's program replaces us; each is a small rule:
  * rlimits are set while we are still root (raising a hard limit needs CAP_SYS_RESOURCE);
  * setgroups() before setresgid() before setresuid(): after setuid we may no longer change
    groups (credentials(7));
  * every file descriptor except stdio and the ones the caller asked to preserve is closed at
    execve() (CVE-2024-21626: a leaked host directory fd let a container escape through its cwd).
"""

from __future__ import annotations

import os

from . import libc

# OCI rlimit names -> RLIMIT_* numbers (asm-generic/resource.h)
RLIMITS: dict[str, int] = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def set_rlimits(rlimits: list[tuple[str, int, int]]) -> None:
    for name, soft, hard in rlimits:
        libc.setrlimit(RLIMITS[name], name, soft, hard, "process.rlimits: limits survive execve()")


def switch_user(uid: int, gid: int, additional_gids: list[int], setgroups_allowed: bool = True) -> None:
    """Become uid:gid with the given supplementary groups, keeping capabilities for capset."""
    libc.prctl(libc.PR_SET_KEEPCAPS, 1, "keep permitted capabilities across setuid(); "
               "capset trims them next")
    if setgroups_allowed:
        libc.setgroups(additional_gids, "supplementary groups first: after setuid we could not")
    libc.setresgid(gid, "real, effective and saved gid")
    libc.setresuid(uid, "real, effective and saved uid: the container's user")
    libc.prctl(libc.PR_SET_KEEPCAPS, 0, "done switching user")


def find_executable(name: str, env_path: str | None) -> str:
    """Resolve args[0] like execvp(3) would, in the container's (already pivoted) root.

    Raises FileNotFoundError or PermissionError with the name, before the container is
    reported created, so a typo in args fails `create`, not the later `start`.
    """
    if "/" in name:
        candidates = [name]
    else:
        candidates = [os.path.join(d or ".", name) for d in (env_path or DEFAULT_PATH).split(":")]
    denied = False
    for path in candidates:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_mode & 0o170000) != 0o100000:
            denied = True
            continue
        if os.access(path, os.X_OK):
            return path
        denied = True
    if denied:
        raise PermissionError(f"exec {name!r}: permission denied")
    if "/" in name:
        raise FileNotFoundError(f"exec {name!r}: no such file or directory")
    raise FileNotFoundError(f"exec {name!r}: executable file not found in $PATH")


def close_fds_on_exec(keep_below: int) -> None:
    """Mark every fd >= keep_below close-on-exec (CVE-2024-21626: no host fd into the container)."""
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(keep_below, 1024))
    for fd in fds:
        if fd >= keep_below:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot.

    A PID plus its start time names a process for good: PIDs are reused, start times are not.
    Returns None if the process is gone or is a zombie (it has exited, only its entry is left).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and ')': split after the last ')'.
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])
