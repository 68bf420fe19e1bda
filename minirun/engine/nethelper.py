"""The network helper: a short-lived child of the monitor that plugs a container into its networks.

Links, addresses and routes are made with pyroute2 (kernel/netlink.py), and `import pyroute2`
costs ~100 ms: longer than everything else between the CLI's start and the container's start.
So nobody waits for it. The timeline of `minirun run` on a bridge:

    CLI        parse ─ create the record ─ mount the rootfs ─ write the bundle ─ go ──── wait
    monitor        start ─ fork helper ─ import the runtime ─── read the ID ─ runtime create ─ ask ─ start
    helper                    └─ import pyroute2 and the network code ─────── wait ────── plug in ─ exit

The monitor forks the helper first thing, before it reads which container it will run (the CLI
starts the monitor ahead of time: engine/monitorhandle.py MonitorHandle, and asks for a helper only
when the container will have a network). The helper imports what plugging in needs while the
CLI makes the container; when the runtime has made the namespaces, the monitor sends it the
container's ID and init PID on a pipe; it makes the bridge if needed, the veths, addresses and
routes and the NAT rules (engine/networking.py Networking.setup), writes the result back as
JSON and exits. Why a child and not the monitor itself: the monitor lives as long as the
container, and pyroute2 would stay in its memory all that time (~10 MB); a helper's memory goes
when it exits. Why not a fresh helper per container start: the restart of a container (a
restart policy) has no CLI to overlap with, so it simply forks and imports then
(Monitor.in_child), paying the import once per restart.
"""

from __future__ import annotations

import os

from .. import fastjson


class Helper:
    """The monitor's side: the helper's PID and the two pipes to it."""

    def __init__(self, pid: int, request_fd: int, result_fd: int) -> None:
        self.pid, self.request_fd, self.result_fd = pid, request_fd, result_fd

    def setup(self, cid: str, init_pid: int) -> dict:
        """Plug container cid (its init is init_pid) in; returns its outcome() (the networks,
        or the helper's error)."""
        try:
            os.write(self.request_fd, f"{cid} {init_pid}\n".encode())
        except OSError:
            pass
        os.close(self.request_fd)
        data = b""
        while chunk := os.read(self.result_fd, 65536):
            data += chunk
        os.close(self.result_fd)
        os.waitpid(self.pid, 0)
        return fastjson.loads(data or b'{"error": "the network helper died", "code": 125}')

    def cancel(self) -> None:
        """Not needed after all (no network, or no container): told so in words, not by the
        pipe's EOF, which may never come: a container's init forked by the runtime since then
        holds a copy of our end until it execs (O_CLOEXEC acts at exec, not at fork)."""
        dismiss(self.pid, self.request_fd, self.result_fd)


def dismiss(pid: int, request_fd: int, result_fd: int) -> None:
    """Tell a fork_server() child it is done ("-"), close our pipes, reap it."""
    try:
        os.write(request_fd, b"-\n")
    except OSError:
        pass
    os.close(request_fd)
    os.close(result_fd)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def fork(root: str, runroot: str, keep: tuple[int, ...] = ()) -> Helper:
    """Fork the helper (from the monitor, early). `keep`: the fds that are the monitor's
    business (its stdin, the CLI's ready pipe), closed in the helper so that the CLI never
    waits on it."""
    pid, req_w, res_r = fork_server(keep, lambda req, res: _serve(root, runroot, req, res))
    return Helper(pid, req_w, res_r)


def fork_server(keep: tuple[int, ...], serve) -> tuple[int, int, int]:
    """Fork a child that answers the parent's requests over two pipes (this helper, and the
    monitor's maker): (pid, request fd, result fd) in the parent. The child closes the
    parent's ends and the fds in `keep` (the parent's business: a pipe whose reader waits for
    EOF must not stay open in it), runs serve(request fd, result fd) and exits: 0, or 1 if it
    raised (the parent then reads EOF: "the helper died")."""
    req_r, req_w = os.pipe2(os.O_CLOEXEC)
    res_r, res_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid:
        os.close(req_r)
        os.close(res_w)
        return pid, req_w, res_r
    code = 0
    try:
        os.close(req_w)
        os.close(res_r)
        for fd in keep:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        serve(req_r, res_w)
    except BaseException:  # noqa: BLE001 - the parent reads EOF: the helper died
        code = 1
    os._exit(code)


def _serve(root: str, runroot: str, req: int, res: int) -> None:
    error = None
    try:
        # The ~100 ms this helper exists for (kernel/netlink.py imports pyroute2).
        from .networking import Networking
        from .records import Containers
        from ..kernel import netlink  # noqa: F401
    except ImportError as e:
        error = f"the network code cannot be loaded: {e} (is pyroute2 installed? pip install -e .)"
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(req, 128)
        if not chunk:
            return  # cancelled: the container needs no network, or was never made
        line += chunk
    words = line.decode().split()
    if len(words) != 2:
        return  # "-": cancelled
    cid, init_pid = words
    store = Containers(root)
    cdir = store.path(cid)
    log = os.open(os.path.join(cdir, "monitor.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT |
                  os.O_CLOEXEC, 0o600)
    os.dup2(log, 2)  # like the monitor: our errors go to monitor.log
    os.close(log)
    from .. import trace  # (loaded: kernel/netlink.py narrates through it)

    if trace.enabled:  # --trace: the monitor's narration (the CLI's stderr, or monitor.log)
        trace.stage("network")
    elif os.environ.get("MINIRUN_TRACE", "") not in ("", "0"):
        trace.enable("network")  # (a monitor not started by a tracing CLI): in monitor.log
    if error is not None:
        out = {"error": error, "code": 125}
    else:
        def plug() -> dict:
            c = store.load(cid)
            Networking(root, runroot).setup(c, int(init_pid), store)
            return c.networks

        out = outcome(plug)
    os.write(res, fastjson.dumps(out).encode())


def outcome(fn) -> dict:
    """fn()'s value as {"ok": value}, or its error as {"error": message, "code": exit code}:
    what a forked child (this helper, Monitor.in_child) writes back to the monitor as JSON."""
    from ..errors import CommandError, MinirunError

    try:
        return {"ok": fn()}
    except CommandError as e:
        return {"error": str(e), "code": e.command_code}
    except MinirunError as e:
        return {"error": str(e), "code": 125}
    except BaseException as e:  # noqa: BLE001 - reported, never a traceback
        return {"error": f"{type(e).__name__}: {e}", "code": 125}


def result(res: dict):
    """outcome()'s answer back as a value, or as the error it was (with its exit code)."""
    from ..errors import CommandError, MinirunError

    if "error" in res:
        if res["code"] in (126, 127):
            raise CommandError(res["error"], res["code"])
        raise MinirunError(res["error"])
    return res["ok"]
