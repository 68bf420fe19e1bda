"""A container's monitor, started ahead of time, and the handle the CLI keeps on it.

Kept apart from lifecycle.py so that engine/early.py can start a monitor before the CLI has
imported click or the engine: this module needs only os and sys. (Not subprocess: its import
costs `run` ~4 ms, and os.posix_spawn does what Popen did here.)
"""

from __future__ import annotations

import os
import sys

from ..errors import CommandError, MinirunError


def plugs_links(network_mode: str) -> bool:
    """Will a container on this --network get links (veths) made with pyroute2? Then its
    monitor forks the network helper at once (engine/nethelper.py)."""
    return network_mode not in ("none", "host") and not network_mode.startswith("container:")


def monitor_argv(root: str, runroot: str, ready_fd: int, network: bool = False,
                 trace_t0: float | None = None) -> list[str]:
    """The monitor is a fresh interpreter (not a fork of the CLI: click and friends would stay in
    its memory), run isolated and without site, like minirun-oci's launcher. `network`: it
    forks the network helper first thing (engine/nethelper.py). `trace_t0`: the CLI traces
    (--trace), from that time: the monitor narrates on TRACE_FD, the CLI's stderr."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    paths = [here] + [p for p in sys.path if p.endswith("-packages")]
    # gc off while it imports (the monitor turns it back on once loaded: monitor.main)
    boot = ("import gc, sys; gc.disable(); sys.path[:0] = sys.argv[1].split(':'); "
            "from minirun.engine.monitor import main; main(sys.argv[2:])")
    return [sys.executable, "-IS", "-c", boot, ":".join(paths), root, runroot,
            f"--ready-fd={ready_fd}"] + (["--net-helper"] if network else []) + \
        ([f"--trace-fd={TRACE_FD}", f"--trace-t0={trace_t0!r}"] if trace_t0 is not None else [])


class MonitorHandle:
    """A monitor started ahead of time: its interpreter starts and imports what it needs while
    the CLI is still making the container (2 CPUs: that work overlaps). `go()` names the
    container; `cancel()` sends it home. `network`: the container will be plugged into a
    network (not none, host or container:), so the monitor starts the network helper too;
    when in doubt, True (a helper not needed costs CPU, not time on the critical path)."""

    def __init__(self, engine, network: bool = True) -> None:
        """engine: the Engine, or anything with its root and runroot (engine/early.py starts
        one before the CLI has an Engine)."""
        self.root, self.runroot, self.network = engine.root, engine.runroot, network
        # With --trace (trace.py loaded and on: never imported here for that), the monitor
        # narrates on our stderr while we wait for the container (docs/trace.md).
        trace = sys.modules.get("minirun.trace")
        self.tracing = trace is not None and trace.enabled
        ready_r, ready_w = os.pipe()  # the monitor's word: "ok PID", "created" or "error ..."
        stdin_r, self.stdin_w = os.pipe()  # ours to it: "ID attach|detach" (or EOF: cancel)
        try:
            argv = monitor_argv(self.root, self.runroot, READY_FD, network,
                                trace.t0() if self.tracing else None)
            self.pid = _spawn(argv, stdin_r, ready_w, trace._fd if self.tracing else -1)
        except BaseException:
            os.close(ready_r)
            os.close(self.stdin_w)
            raise
        finally:
            os.close(ready_w)
            os.close(stdin_r)
        self.ready = os.fdopen(ready_r, "rb")

    def _reap(self) -> None:
        """Its first process forks the monitor proper and exits at once (the monitor is
        adopted by PID 1): reap that one."""
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass

    def go(self, c, attach: bool) -> int:
        """Hand it container c; wait until it reports the process running (or, with attach,
        created and waiting for the client's start frame). Its errors come back as ours, with
        the command's exit code."""
        try:
            os.write(self.stdin_w, f"{c.id} {'attach' if attach else 'detach'}\n".encode())
        except BrokenPipeError:
            pass
        finally:
            os.close(self.stdin_w)
        line = ""
        with self.ready:
            for raw in self.ready:
                line = raw.decode(errors="replace").strip()
                if line.startswith("created") and attach:
                    break  # the monitor waits for the attached client's start frame now
                if line.startswith(("ok", "error")):
                    break
        self._reap()
        if line.startswith("created"):
            return 0
        if line.startswith("ok"):
            return int(line.split()[1])
        if line.startswith("error "):
            _, code, msg = line.split(" ", 2)
            if int(code) in (126, 127):
                raise CommandError(msg, int(code))
            raise MinirunError(msg)
        raise MinirunError(f"container {c.short_id}: its monitor exited before starting it "
                           f"(see {os.path.join(self.root, 'containers', c.id)}/monitor.log)")

    def cancel(self) -> None:
        try:
            os.close(self.stdin_w)
        except OSError:
            pass
        self.ready.close()
        self._reap()


READY_FD = 3  # where the monitor finds its end of the ready pipe
TRACE_FD = 4  # and, with --trace, our stderr (its narration's, while we wait: trace.py)


def _spawn(argv: list[str], stdin_r: int, ready_w: int, trace_fd: int = -1) -> int:
    """Start the monitor: stdin from stdin_r, the ready pipe as fd 3 (and trace_fd, if any, as
    fd 4), stdout and stderr on /dev/null, a session of its own (no terminal signal reaches
    it), and none of our other descriptors. Ours are close-on-exec already (PEP 446); an
    inheritable one we were given by our caller is closed for it explicitly: a daemon must not
    hold, say, the pipe of a shell's `$(...)` open (what Popen's close_fds did)."""
    import _signal  # (not signal: its enums)
    import fcntl  # (a small C module)

    # Copies above 2 and 3, so that no dup2 below overwrites another's source.
    src_in = fcntl.fcntl(stdin_r, fcntl.F_DUPFD_CLOEXEC, 10)
    src_ready = fcntl.fcntl(ready_w, fcntl.F_DUPFD_CLOEXEC, 10)
    src_trace = fcntl.fcntl(trace_fd, fcntl.F_DUPFD_CLOEXEC, 10) if trace_fd >= 0 else -1
    try:
        actions = [(os.POSIX_SPAWN_CLOSE, fd) for fd in _inherited_fds() if fd > 2]
        actions += [(os.POSIX_SPAWN_DUP2, src_in, 0), (os.POSIX_SPAWN_DUP2, src_ready, READY_FD),
                    (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0)]
        if src_trace >= 0:
            actions.append((os.POSIX_SPAWN_DUP2, src_trace, TRACE_FD))
        # SIGPIPE and SIGXFSZ back to their defaults, as Popen's restore_signals: we ignore
        # them (Python does), and an ignored signal stays ignored across exec.
        return os.posix_spawn(argv[0], argv, os.environ, file_actions=actions, setsid=True,
                              setsigdef=(_signal.SIGPIPE, _signal.SIGXFSZ))
    finally:
        os.close(src_in)
        os.close(src_ready)
        if src_trace >= 0:
            os.close(src_trace)


def _inherited_fds() -> list[int]:
    """Our descriptors that an exec would pass on (not close-on-exec)."""
    out = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.get_inheritable(int(name)):
                out.append(int(name))
        except OSError:  # the listing's own descriptor, closed by now
            pass
    return out
