"""A container's monitor, started ahead of time, and the handle the CLI keeps on it.

Kept apart from lifecycle.py so that engine/early.py can start a monitor before the CLI has
imported click or the engine: this module needs only os, sys and subprocess.
"""

from __future__ import annotations

import os
import sys

from ..errors import CommandError, MinirunError


def plugs_links(network_mode: str) -> bool:
    """Will a container on this --network get links (veths) made with pyroute2? Then its
    monitor forks the network helper at once (engine/nethelper.py)."""
    return network_mode not in ("none", "host") and not network_mode.startswith("container:")


def monitor_argv(root: str, runroot: str, ready_fd: int, network: bool = False) -> list[str]:
    """The monitor is a fresh interpreter (not a fork of the CLI: click and friends would stay in
    its memory), run isolated and without site, like minirun-oci's launcher. `network`: it
    forks the network helper first thing (engine/nethelper.py)."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    paths = [here] + [p for p in sys.path if p.endswith("-packages")]
    # gc off while it imports (the monitor turns it back on once loaded: monitor.main)
    boot = ("import gc, sys; gc.disable(); sys.path[:0] = sys.argv[1].split(':'); "
            "from minirun.engine.monitor import main; main(sys.argv[2:])")
    return [sys.executable, "-IS", "-c", boot, ":".join(paths), root, runroot,
            f"--ready-fd={ready_fd}"] + (["--net-helper"] if network else [])


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
        import subprocess  # lazily: the engine's ps, inspect, logs start none (~1 ms)

        r, w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                monitor_argv(self.root, self.runroot, w, network), pass_fds=(w,), stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                close_fds=True)
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
        self.ready = os.fdopen(r, "rb")

    def go(self, c, attach: bool) -> int:
        """Hand it container c; wait until it reports the process running (or, with attach,
        created and waiting for the client's start frame). Its errors come back as ours, with
        the command's exit code."""
        try:
            self.proc.stdin.write(f"{c.id} {'attach' if attach else 'detach'}\n".encode())
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        line = ""
        with self.ready:
            for raw in self.ready:
                line = raw.decode(errors="replace").strip()
                if line.startswith("created") and attach:
                    break  # the monitor waits for the attached client's start frame now
                if line.startswith(("ok", "error")):
                    break
        self.proc.wait()
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
            self.proc.stdin.close()
        except OSError:
            pass
        self.ready.close()
        self.proc.wait()
