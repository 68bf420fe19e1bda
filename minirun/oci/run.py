"""`run`: create + start, then (unless --detach) wait for the container and delete it.

To wait for the container's init, which is our grandchild, we become a *child subreaper*
(prctl PR_SET_CHILD_SUBREAPER): when the intermediate child exits, the kernel re-parents init to
us instead of to PID 1, and waitpid() works. Signals we receive are forwarded to the container,
so Ctrl-C or `kill` of `minirun-oci run` reaches the container's program.
"""

from __future__ import annotations

import _signal  # not `signal` (it imports enum)
import os
import select  # noqa: F401  (start polls the exec fifo: imported before create forks, below)

from ..base import filelock  # noqa: F401  (start's lock, likewise)

from ..kernel import libc
from ..kernel import process as kproc
from . import container
from . import spec as spec_mod
from .container import CreateOptions

# What start needs is imported here, before create forks: until the container's init execs, it
# shares its memory pages with us, and an import after fork() writes to many of them, each
# write a copy-on-write fault (measured: filelock's import 0.1 ms before, 0.3 ms after).

FORWARDED = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGCONT", "SIGTSTP",
             "SIGTTIN", "SIGTTOU", "SIGALRM")


def run(o: CreateOptions, detach: bool = False, keep: bool = False) -> int:
    o.spec = spec_mod.load(os.path.abspath(o.bundle))  # read once: create reuses it
    wants_tty = bool(o.spec.process and o.spec.process.terminal)
    ours = None
    if wants_tty and not o.console_socket:
        if detach:
            raise container.MinirunError("run --detach with process.terminal needs "
                                         "--console-socket (someone must hold the terminal)")
        import socket  # lazy: only a foreground terminal (start-up budget: socket)

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        o.console_sock_obj = theirs
    if not detach:
        libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1, "adopt the container's init when the "
                   "intermediate child exits, so we can wait for it")
    state = container.create(o)
    if o.console_sock_obj is not None:
        o.console_sock_obj.close()
    try:
        if detach:
            container.start(o.root_dir, o.cid, state)
            return 0
        kproc.forward_signals(state.pid, [getattr(_signal, n) for n in FORWARDED], _signal)
        master = -1
        if ours is not None:
            from ..kernel import terminal as term  # lazy: only a terminal (start-up budget)

            # The master came during create: size it like our terminal *before* the program
            # starts, or its first look (stty size, a shell's line editor) sees 0x0.
            master = term.recv_fd(ours)
            term.copy_size(0, master)
        container.start(o.root_dir, o.cid, state)
        if ours is not None:
            status = term.proxy(master, state.pid)
        else:
            status = wait_for(state.pid)
        return exit_code(status)
    except BaseException:
        container.delete(o.root_dir, o.cid, force=True)
        raise
    finally:
        if not detach and not keep:
            try:
                container.delete(o.root_dir, o.cid, force=True)
            except container.MinirunError:
                pass


def wait_for(pid: int) -> int:
    """waitpid() that survives signals (forwarded ones interrupt it)."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return status
        except InterruptedError:
            continue


def exit_code(status: int) -> int:
    """A wait status as a shell would report it: the exit code, or 128 + the signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)
