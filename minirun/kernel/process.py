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

# kernel/libc.py is imported by the functions below that make raw calls, not here: `state`,
# `start`, `kill` and `delete` read /proc/PID/stat through this module and do not pay for the
# seam's import (~0.4 ms with errno and fcntl). Those functions run in the init, which loaded
# libc before pivot_root: there the import is a dict look-up, never a search of the rootfs.

# OCI rlimit names -> RLIMIT_* numbers (asm-generic/resource.h)
RLIMITS: dict[str, int] = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def set_rlimits(rlimits: list[tuple[str, int, int]]) -> None:
    from . import libc  # lazy: see the note at the top (start-up budget)

    for name, soft, hard in rlimits:
        libc.setrlimit(RLIMITS[name], name, soft, hard, "process.rlimits: limits survive execve()")


def switch_user(uid: int, gid: int, additional_gids: list[int], setgroups_allowed: bool = True) -> None:
    """Become uid:gid with the given supplementary groups, keeping capabilities for capset."""
    from . import libc

    libc.prctl(libc.PR_SET_KEEPCAPS, 1, "keep permitted capabilities across setuid(); "
               "capset trims them next")
    if setgroups_allowed:
        libc.setgroups(additional_gids, "supplementary groups first: after setuid we could not")
    libc.setresgid(gid, "real, effective and saved gid")
    libc.setresuid(uid, "real, effective and saved uid: the container's user")
    libc.prctl(libc.PR_SET_KEEPCAPS, 0, "done switching user")


def setgroups_allowed() -> bool:
    """False when /proc/self/setgroups says "deny": set in a user namespace whose gid map was
    written without privilege (a rootless runtime), where setgroups(2) fails for good."""
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() != "deny"
    except OSError:
        return True


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


# Signals PID 1 passes on to the program (tini's set): everything a user or `stop` may send
# that the program may want to handle. SIGCHLD is ours; SIGKILL and SIGSTOP cannot be caught.
FORWARDED = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGWINCH",
             "SIGCONT", "SIGALRM", "SIGPWR")


def forward_signals(pid: int, signums: list[int], _signal) -> None:
    """Pass each signal in `signums` that reaches us on to `pid` (one already gone is no error):
    --init's PID 1, and `minirun-oci run`/`exec` in the foreground. `_signal` is the C module,
    given by the caller: --init runs after pivot_root, where nothing can be imported."""

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for s in signums:
        _signal.signal(s, forward)


def run_as_init(exe: str, args: list[str], env: dict[str, str], _signal, keep_open: int,
                stub: int | None = None) -> None:
    """Be a small PID 1 (--init, like tini): run the program as our child, pass signals on to
    it, reap every orphan that is re-parented to us, and exit with the program's status.

    Why a container wants this: PID 1 of a PID namespace gets no default signal actions (the
    kernel drops a signal it has no handler for, so `stop`'s SIGTERM does nothing to a shell),
    and orphaned processes become its children, so a program that never calls wait() collects
    zombies. `keep_open` is the exec fifo's write end: closed once the program runs; `stub`
    is the sealed exec stub (sealed_exec.py). Only modules already loaded are used: this runs
    after pivot_root, where imports would search the container's filesystem.
    """
    for name in ("SIGPIPE", "SIGXFSZ"):
        _signal.signal(getattr(_signal, name), _signal.SIG_DFL)
    from . import libc  # lazy: see the note at the top (loaded before pivot_root)

    set_cmdline(["minirun-init", "--", *args])
    forwarded = [getattr(_signal, n) for n in FORWARDED if hasattr(_signal, n)]
    _signal.pthread_sigmask(_signal.SIG_BLOCK, forwarded)  # none is lost between fork and handlers
    child = libc.fork("--init: the program runs as our child; we stay PID 1 to reap and forward")
    if child == 0:
        try:
            os.setpgid(0, 0)  # its own process group, the terminal's foreground one
            if os.isatty(0):
                _signal.signal(_signal.SIGTTOU, _signal.SIG_IGN)
                os.tcsetpgrp(0, os.getpid())
                _signal.signal(_signal.SIGTTOU, _signal.SIG_DFL)
            _signal.pthread_sigmask(_signal.SIG_UNBLOCK, forwarded)
            # lazy: only --init; sealed_exec brings struct, and process.py is on every verb's
            # path (start-up budget). oci/init.py has loaded it before pivot_root.
            from . import sealed_exec

            sealed_exec.execve(stub, exe, args, env, "--init: the program, as our child")
        except OSError as e:
            os.write(2, f"minirun-oci: exec {args[0]}: {e.strerror}\n".encode())
            os._exit(127 if e.errno == 2 else 126)
    try:
        os.setpgid(child, child)
    except OSError:
        pass  # it did so itself, or has exec'd already

    forward_signals(child, forwarded, _signal)
    os.close(keep_open)
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, forwarded)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)  # every child: the program and adopted orphans
        except ChildProcessError:
            os._exit(0)
        if pid == child:
            os._exit(os.waitstatus_to_exitcode(status) if not os.WIFSIGNALED(status)
                     else 128 + os.WTERMSIG(status))


def set_cmdline(argv: list[str]) -> None:
    """Rewrite what /proc/self/cmdline (and so ps) shows, in place, as setproctitle does.

    The kernel shows the memory between mm->arg_start and arg_end (fields 48 and 49 of
    /proc/self/stat); it is ours to overwrite, but not to grow. A forked runtime would
    otherwise show the runtime's own command line, host paths included, as PID 1.
    """
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (1-based 48, 49)
    except (OSError, IndexError, ValueError):
        return
    size = end - start
    if size <= 1:
        return
    from . import libc  # lazy: see the note at the top (start-up budget)

    data = "\0".join(argv).encode()[:size - 1]
    libc.write_memory(start, data + b"\0" * (size - len(data)))
