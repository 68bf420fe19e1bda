"""The monitor: one small process per running container, Docker's "shim".

minirun has no daemon, yet somebody must hold a detached container's stdio, write its logs,
notice its exit, record the exit code, restart it and remove it. That is this process:

  1. `start` runs it as a fresh interpreter; it forks once more and the first copy exits, so
     it is nobody's child (adopted by PID 1) and in its own session: the CLI may exit.
  2. It becomes a *child subreaper* (PR_SET_CHILD_SUBREAPER): the container's init, created by
     the OCI runtime through an intermediate child, is re-parented to it, so waitpid() gives
     the real exit status.
  3. It makes the container with the OCI runtime, its stdio on pipes (or a pty with -t), and
     tells the CLI "ok PID" (or the error, with Docker's exit code) on an inherited pipe.
     The runtime runs in a child, the maker (Maker below), forked at our start: it imports the
     runtime's code (oci/, kernel/, the seccomp compiler, ctypes, socket ...) while the CLI
     still makes the bundle, creates and starts the container, and exits. Its init is still
     ours (a subreaper adopts the orphans of its descendants), and none of that code ever
     enters this process, which lives as long as the container: it imports only what
     waiting, copying output and attach need (no socket or signal module: their enums alone
     are ~1 MB). A restart forks a new maker; the end of the last run imports what it needs.
  4. Then it is an event loop: output -> the json log and the attached clients (attach.py),
     clients' input -> the container's stdin, SIGCHLD -> the exit: record it (code, OOM kill,
     time), delete the runtime's state, apply the restart policy, or unmount and (--rm) remove.
     With a HEALTHCHECK, the loop also runs the checks when they are due, each in a forked
     child (health.py), and records their results in State.Health.

It keeps nothing but that: no click, no image code. Its errors go to containers/<id>/monitor.log.
"""

from __future__ import annotations

import _signal as signal  # not signal: its IntEnums cost the monitor ~1 MB (enum)
import _socket  # not socket: likewise (attach.listen(raw=True) gives a bare _socket.socket)
import gc
import os
import select
import sys
import time

from .. import fastjson, trace
from ..base.times import now
from ..errors import CommandError, MinirunError
from ..kernel import libc
from ..kernel import process as kproc
from . import attach, events, logconfig, nethelper
from .logs import Writer
from .records import Container, Containers

RESET_AFTER = 10.0  # s of running that reset the restart back-off (Docker's rule)


def main(argv: list[str]) -> None:
    root, runroot = argv[:2]
    ready_fd, trace_fd, trace_t0 = -1, -1, None
    for a in argv[2:]:
        if a.startswith("--ready-fd="):
            ready_fd = int(a.split("=", 1)[1])
        elif a.startswith("--trace-fd="):  # `minirun --trace run`: the CLI's stderr
            trace_fd = int(a.split("=", 1)[1])
        elif a.startswith("--trace-t0="):  # and its clock
            trace_t0 = float(a.split("=", 1)[1])
    if os.fork():
        os._exit(0)  # the CLI reaps our first copy at once; this one is adopted by PID 1
    os.setsid()
    if trace_fd >= 0:
        # On before the forks below: the maker and the network helper narrate there too.
        trace.enable("monitor", fd=trace_fd, t0=trace_t0)
    net_helper = None
    if "--net-helper" in argv:
        # forked now: it imports pyroute2 while the CLI works
        net_helper = nethelper.fork(root, runroot, keep=(0, ready_fd))
    keep = (ready_fd,) if net_helper is None else \
        (ready_fd, net_helper.request_fd, net_helper.result_fd)
    # forked now too: it imports the runtime while the CLI works (we never do)
    maker = Maker.fork(root, runroot, Stdio(), keep, preload=True)
    # The interpreter started with the cyclic collector off (monitorhandle.monitor_argv): what
    # the imports made is frozen now, so collections over the container's life leave it
    # untouched; then the collector runs as usual.
    gc.freeze()
    gc.enable()
    # Started ahead of time: the CLI names the container on our stdin once it is made (or
    # closes it: nothing to do after all).
    line = sys.stdin.buffer.readline().decode().split()
    if len(line) != 2:
        if net_helper is not None:
            net_helper.cancel()
        maker.close()
        os._exit(0)
    cid, wait_attach = line[0], line[1] == "attach"
    store = Containers(root)
    cdir = store.path(cid)
    log = os.open(os.path.join(cdir, "monitor.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT |
                  os.O_CLOEXEC, 0o600)
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    os.dup2(log, 2)
    if trace_fd < 0 and os.environ.get("MINIRUN_TRACE", "") not in ("", "0"):
        trace.enable("monitor")  # every kernel step of this container, in monitor.log
    code = 0
    try:
        Monitor(store, runroot, cid, ready_fd, wait_attach, net_helper, maker,
                trace_cli=trace_fd >= 0).run()
    except BaseException as e:  # noqa: BLE001 - the last word goes to the log, never lost
        os.write(log, f"{now()} monitor: {type(e).__name__}: {e}\n".encode())
        code = 1
    os._exit(code)


class Monitor:
    def __init__(self, store: Containers, runroot: str, cid: str, ready_fd: int,
                 wait_attach: bool, net_helper=None, maker=None, trace_cli: bool = False) -> None:
        self.store, self.runroot, self.cid = store, runroot, cid
        self.root = os.path.dirname(store.dir)  # --root: where the event journal is
        self.cdir = store.path(cid)
        self.ready_fd = ready_fd
        self.wait_attach = wait_attach
        self.clients: dict[int, tuple[_socket.socket, attach.Reader]] = {}
        self.listener: _socket.socket | None = None
        self.logw: Writer | None = None
        self.init_pid = 0
        self.outs: dict[int, str] = {}  # fd -> stream name
        self.stdin_fd = -1
        self.master = -1
        self.probe = None  # health.Probe: the container's HEALTHCHECK, while it runs
        self.resolver = None  # network/resolver.py: 127.0.0.11 on user networks, while it runs
        self.net_helper = net_helper  # engine/nethelper.py: forked at our start, used once
        self.maker: Maker | None = maker  # the runtime's process for the next run (Maker)
        # --trace: we narrate on the CLI's stderr while it waits for us (until "ok" with -d,
        # until the exit's cleanup attached), then in monitor.log (cli_gone).
        self.trace_cli = trace_cli

    @staticmethod
    def narrate(call: str, why: str) -> None:
        """A step of ours, with --trace (callers test trace.enabled before an f-string)."""
        if trace.enabled:
            trace.step(call, why)

    def cli_gone(self) -> None:
        """The CLI we narrated to returns now (or has detached): narrate to monitor.log from
        here on, and hold its stderr no longer (a caller reading it to EOF would wait for our
        exit, the container's)."""
        if self.trace_cli:
            self.trace_cli = False
            trace.note("the CLI returns: the rest of this trace goes to monitor.log")
            trace.redirect(2)

    # -- the whole life --------------------------------------------------------------------------
    def run(self) -> None:
        libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1, "adopt the container's init: its exit "
                   "status comes to us")
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        for s in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
            # A no-op handler, not SIG_IGN: an ignored signal stays ignored across execve(),
            # and the container's program would inherit that from us.
            signal.signal(s, lambda *_: None)
        # `network connect` to a user network: serve 127.0.0.11 now (the wakeup fd says which).
        signal.signal(signal.SIGUSR1, lambda *_: None)
        me, start = os.getpid(), kproc.start_time(os.getpid())

        def mine(c: Container) -> None:
            c.state.monitor_pid, c.state.monitor_start = me, start or 0

        self.store.update(self.cid, mine)
        self.listener = attach.listen(self.cdir, raw=True)
        c = self.store.load(self.cid)
        limits = logconfig.limits(c.host_config.get("LogConfig"))  # None: --log-driver none
        if limits is not None:
            self.logw = Writer(os.path.join(self.cdir, f"{self.cid}-json.log"), *limits)
        first, delay = True, 0.1
        try:
            while True:
                try:
                    self.start_once(c, first)
                except MinirunError as e:
                    self.failed(e, first)
                    break
                first = False
                started = time.monotonic()
                status = self.serve()
                c = self.store.load(self.cid)
                code = _exit_code(status)
                again = self.should_restart(c, code)
                if trace.enabled:
                    trace.note(f"the container's process {self.init_pid} exited: code {code}"
                               + ("; its restart policy runs it again" if again else ""))
                self.finish(code, again)
                if not again:
                    break
                if time.monotonic() - started >= RESET_AFTER:
                    delay = 0.1
                self.sleep_serving(delay)
                delay = min(delay * 2, 60.0)
                c = self.store.load(self.cid)
                if c.state.stop_requested:
                    self.store.update(self.cid, _exited_now)
                    break
        finally:
            self.shutdown()

    # -- one run of the container ----------------------------------------------------------------
    def start_once(self, c: Container, first: bool) -> None:
        maker, self.maker = self.maker, None
        if maker is None:  # a restart: a new maker, importing the runtime now
            maker = Maker.fork(os.path.dirname(self.store.dir), self.runroot, Stdio())
        try:
            self._start_once(c, first, maker)
        finally:
            maker.close()

    def _start_once(self, c: Container, first: bool, maker: Maker) -> None:
        tty = bool(c.config.get("Tty"))
        io = maker.stdio
        if trace.enabled:
            self.narrate(f"maker {maker.pid}: create {self.cid[:12]}",
                         "the OCI runtime makes the container in the maker, our child (its code "
                         "never loads into us): [runtime], [child] and [init 1] below")
        try:
            pid = maker.ask("create", {"cid": self.cid, "cdir": self.cdir, "tty": tty,
                                       "stdin": bool(c.config.get("OpenStdin")),
                                       "layers": c.layers, "layers_dir": _layers_dir(self.store)})
        except BaseException:
            io.close_all()
            raise
        io.close_theirs()  # the init has its copies
        if tty:
            io.close(io.in_w, io.out_r, io.err_r)
            try:
                self.master = _recv_fd(io.ours)
            finally:
                io.ours.close()
            os.set_blocking(self.master, True)
            self.outs = {self.master: "stdout"}
            self.stdin_fd = self.master
        else:
            io.ours.close()
            self.outs = {io.out_r: "stdout", io.err_r: "stderr"}
            if c.config.get("OpenStdin"):
                self.stdin_fd = io.in_w
            else:
                os.close(io.in_w)
        self.init_pid = pid
        try:
            nets = self.setup_network(c, pid)
        except BaseException:
            try:
                maker.ask("delete")
            except MinirunError:
                pass
            raise
        if nets:

            def plugged(x: Container) -> None:
                x.networks = nets

            self.store.update(self.cid, plugged)
        self.start_resolver(c, nets or c.networks, pid)
        if first and self.wait_attach:
            self.tell("created")
            self.await_start()
        argv = None
        if c.config.get("Healthcheck"):
            from . import health  # only for a container with a check: the monitor stays small

            argv = health.probe_argv(c.config["Healthcheck"], c.config.get("Shell"))
        if trace.enabled:
            self.narrate(f"maker {maker.pid}: start {self.cid[:12]}",
                         "the runtime opens exec.fifo: the init, waiting there fully set up, execs "
                         "the program")
        maker.ask("start")
        started = time.monotonic()

        def running(x: Container) -> None:
            x.state.status, x.state.pid = "running", pid
            x.state.started_at = now()
            x.state.exit_code, x.state.oom_killed, x.state.error = 0, False, ""
            if not first:
                x.state.restart_count += 1
            if argv:
                x.state.health = health.fresh(x.state.health)  # each run starts "starting"

        c = self.store.update(self.cid, running)
        events.record(self.root, "container", "start", self.cid, events.container_attributes(c))
        if argv:
            self.probe = health.Probe(c.config["Healthcheck"], argv, c.state.health,
                                      self.runroot, self.cid, self.cdir, c.config, started)
        if first:
            self.tell(f"ok {pid}")

    def start_resolver(self, c: Container, networks: dict, pid: int) -> None:
        """The embedded DNS server, 127.0.0.11, for a container on a user-defined network: in
        its network namespace (new at each run), answered from this loop until it exits."""
        from ..network import dns  # (small: the rule of who gets one)

        self.stop_resolver()
        if not dns.embedded(c.host_config.get("NetworkMode", "bridge"), networks):
            return
        from ..network import resolver  # only for such a container: the monitor stays small

        try:
            self.resolver = resolver.for_container(c, pid, self.root, self.store.all)
        except (MinirunError, OSError) as e:  # Docker's too: the container runs, without names
            os.write(2, f"{now()} monitor: embedded DNS: {e}\n".encode())

    def stop_resolver(self) -> None:
        if self.resolver is not None:
            self.resolver.close()  # its sockets hold the network namespace, and its veths
            self.resolver = None

    def networking(self):
        from .networking import Networking  # (only in the forked child)

        return Networking(os.path.dirname(self.store.dir), self.runroot)

    def setup_network(self, c: Container, pid: int) -> dict:
        """Plug the container in: by the helper forked at our start (its imports done while
        the CLI worked), or, without one (a restart), by a child forked now."""
        helper, self.net_helper = self.net_helper, None
        if not _needs_network(c):  # none, host, container:X: nothing to plug in (`lo` is up:
            if helper is not None:  # the runtime's init did it, kernel/loopback.py)
                helper.cancel()
            if trace.enabled:
                trace.note(f"network {c.host_config.get('NetworkMode', 'bridge')}: no veth, "
                           "address or NAT rule to make (lo is up: the init did it)")
            return c.networks
        if helper is None:
            self.narrate("fork() = network child", "plug the container in (no helper: a restart)")
            return self.in_child(lambda: self._setup_network(c, pid), "network")
        if trace.enabled:
            self.narrate(f"network helper {helper.pid}: plug in {pid}",
                         "its pyroute2 loaded while the CLI worked: bridge, veth pair, address, "
                         "routes and NAT rules for the init's network namespace")
        return nethelper.result(helper.setup(self.cid, pid))

    def _setup_network(self, c: Container, pid: int) -> dict:
        self.networking().setup(c, pid, self.store)
        return c.networks

    def in_child(self, fn, who: str = "monitor"):
        """Run fn in a forked child and return its (JSON) result, or raise its error. The
        network code (ipaddress, subprocess, netlink ...) is imported there, not here: the
        monitor stays small for the container's whole life."""
        r, w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            os.close(r)
            if trace.enabled:
                trace.stage(who)  # its narration's label
            os.write(w, fastjson.dumps(nethelper.outcome(fn)).encode())
            os._exit(0)
        os.close(w)
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
        os.close(r)
        os.waitpid(pid, 0)
        return nethelper.result(fastjson.loads(data or b'{"error": "the helper died", "code": '
                                                   b'125}'))

    def await_start(self) -> None:
        """A foreground run attaches before the process starts: wait for its start frame."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.listener] + [s for s, _ in self.clients.values()],
                                        [], [], 0.5)
            for r in ready:
                if r is self.listener:
                    self.accept()
                else:
                    go = False
                    for kind, payload in self.read_client(r):
                        if kind == attach.START:
                            go = True  # frames after it (stdin, its EOF) still count
                        else:
                            self.client_frame(kind, payload)
                    if go:
                        return

    def tell(self, line: str) -> None:
        if self.ready_fd >= 0:
            try:
                os.write(self.ready_fd, (line + "\n").encode())
            except OSError:
                pass
            if not line.startswith("created"):
                os.close(self.ready_fd)
                self.ready_fd = -1
                if not self.wait_attach:
                    self.cli_gone()  # -d: the CLI prints the ID and returns

    def failed(self, e: MinirunError, first: bool) -> None:
        code = e.command_code if isinstance(e, CommandError) else 125

        def note(x: Container) -> None:
            x.state.error = str(e)
            if x.state.status in ("running", "restarting"):
                x.state.status = "exited"
            x.state.exit_code = code
            x.state.pid = 0

        self.store.update(self.cid, note)
        from ..oci import container as oci  # (only now: the monitor exits after this)

        try:
            oci.delete(self.runroot, self.cid, force=True)
        except MinirunError:
            pass
        if first:
            self.tell(f"error {code} {e}")
        self.cli_gone()
        self.broadcast(attach.EXIT, str(code).encode())

    # -- the event loop --------------------------------------------------------------------------
    def serve(self) -> int:
        """Copy output and input until the init has exited and its output is drained; returns
        its wait status."""
        status = None
        while True:
            fds = [self.listener, self.wake_r] + list(self.outs) + \
                [s for s, _ in self.clients.values()]
            wait = 0.5 if status is None else 0.05
            probe = self.probe
            if probe is not None:
                wait = min(wait, probe.wait(time.monotonic()))
                if probe.busy:
                    fds.append(probe.fd)
            res, dns_fds = self.resolver, ()
            if res is not None:
                dns_fds = res.fds()
                fds += dns_fds
                due = res.wait(time.monotonic())
                wait = wait if due is None else min(wait, due)
            try:
                ready, _, _ = select.select(fds, [], [], wait)
            except InterruptedError:
                continue
            if status is not None and not ready:
                break  # exited, and nothing more to read
            checked = False
            for r in ready:
                if r is self.listener:
                    self.accept()
                elif r == self.wake_r:
                    if signal.SIGUSR1 in _drain(self.wake_r) and self.resolver is None:
                        c = self.store.load(self.cid)
                        self.start_resolver(c, c.networks, self.init_pid)
                elif probe is not None and r == probe.fd:
                    checked = probe.read(time.monotonic()) is not None or checked
                elif r in dns_fds:
                    res.handle(r)
                elif isinstance(r, int):
                    self.pump(r)
                else:
                    for kind, payload in self.read_client(r):
                        self.client_frame(kind, payload)
            if status is None:
                status = self.reap()
            if res is not None:
                if status is None:
                    res.tick(time.monotonic())
                else:
                    self.stop_resolver()  # the container is gone: nobody asks any more
            if probe is not None:
                if status is None:
                    self.health_tick(checked)
                else:
                    probe.cancel()  # the container is gone: so is a check still running
                    self.probe = None
            if status is not None and not self.outs:
                break
        return status

    def health_tick(self, changed: bool) -> None:
        """Start the check that is due (not in a paused container: dockerd stops checking it
        and calls it unhealthy), give up on a runner that hangs, publish what changed."""
        probe, t = self.probe, time.monotonic()
        try:
            if probe.overdue(t):
                probe.abandon(t)
                changed = True
            elif not probe.busy and t >= probe.due:
                if self.store.load(self.cid).state.status == "paused":
                    changed = changed or probe.health["Status"] != "unhealthy"
                    probe.health["Status"] = "unhealthy"
                    probe.postpone(t)
                else:
                    probe.launch(t)
            if changed:
                h = probe.health

                def publish(x: Container) -> None:
                    x.state.health = h

                self.store.update(self.cid, publish)
        except (MinirunError, OSError) as e:  # a check must never take the monitor down
            os.write(2, f"{now()} monitor: health check: {e}\n".encode())
            probe.postpone(t)

    def reap(self) -> int | None:
        status = None
        while True:
            try:
                pid, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return status
            if pid == 0:
                return status
            if pid == self.init_pid:
                status = st
            elif self.probe is not None:
                self.probe.reaped(pid)

    def pump(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the pty's last slave closed
            data = b""
        if not data:
            del self.outs[fd]
            os.close(fd)
            if fd == self.master:
                self.master = self.stdin_fd = -1
            return
        stream = self.outs[fd]
        if self.logw is not None:
            self.logw.write(stream, data)
        self.broadcast(attach.STDOUT if stream == "stdout" else attach.STDERR, data)

    def accept(self) -> None:
        try:
            fd, _ = self.listener._accept()  # a bare _socket.socket (attach.listen)
        except OSError:
            return
        s = _socket.socket(fileno=fd)
        s.settimeout(10)
        self.clients[s.fileno()] = (s, attach.Reader())

    def read_client(self, s: _socket.socket) -> list[tuple[int, bytes]]:
        entry = self.clients.get(s.fileno())
        if entry is None:
            return []
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.drop(s)
            return []
        return entry[1].feed(data)

    def client_frame(self, kind: int, payload: bytes) -> None:
        if kind == attach.STDIN and self.stdin_fd >= 0:
            try:
                os.write(self.stdin_fd, payload)
            except OSError:
                pass
        elif kind == attach.STDIN_EOF and self.stdin_fd >= 0 and self.master < 0:
            os.close(self.stdin_fd)  # StdinOnce: the attached client's EOF is the container's
            self.stdin_fd = -1
        elif kind == attach.RESIZE and self.master >= 0:
            from ..kernel import terminal  # (a -t container's client resizes: loaded then)

            try:
                rows, cols = (int(x) for x in payload.split())
                terminal.set_size(self.master, rows, cols)
            except (ValueError, OSError):
                pass

    def broadcast(self, kind: int, payload: bytes) -> None:
        msg = attach.frame(kind, payload)
        for s, _ in list(self.clients.values()):
            try:
                s.sendall(msg)
            except OSError:
                self.drop(s)

    def drop(self, s: _socket.socket) -> None:
        self.clients.pop(s.fileno(), None)
        s.close()
        if not self.clients and self.ready_fd < 0:
            self.cli_gone()  # the attached CLI detached (ctrl-p ctrl-q), or went

    # -- after an exit ---------------------------------------------------------------------------
    def should_restart(self, c: Container, code: int) -> bool:
        if c.state.stop_requested:
            return False
        policy = c.host_config.get("RestartPolicy") or {}
        name = policy.get("Name", "no")
        if name in ("always", "unless-stopped"):
            return True
        if name == "on-failure" and code != 0:
            limit = policy.get("MaximumRetryCount") or 0
            return not limit or c.state.restart_count < limit
        return False

    def finish(self, code: int, again: bool) -> None:
        oom = False
        if again:  # the runtime's code in a child: this process runs on, and stays small
            try:
                oom = self.in_child(lambda: _end_run(self.runroot, self.cid))
            except MinirunError as e:
                os.write(2, f"{now()} monitor: delete: {e}\n".encode())
        else:  # here: we exit soon, and a fork would only cost time
            if trace.enabled:
                self.narrate(f"delete {self.cid[:12]}", "the runtime's state and the container's "
                             "cgroups go (oci delete); the writable layer stays until rm")
            oom = _end_run(self.runroot, self.cid)
        if self.logw is not None:
            self.logw.flush()
        if self.stdin_fd >= 0 and self.stdin_fd != self.master:
            os.close(self.stdin_fd)
        self.stdin_fd = -1
        for fd in list(self.outs):
            os.close(fd)
        self.outs = {}
        if self.master >= 0:
            os.close(self.master)
            self.master = -1

        def exited(x: Container) -> None:
            x.state.status = "restarting" if again else "exited"
            x.state.exit_code, x.state.oom_killed = code, oom
            x.state.pid = 0
            x.state.finished_at = now()
            if x.state.health:
                x.state.health["Status"] = "unhealthy"  # dockerd's word for "no longer checked"

        c = self.store.update(self.cid, exited)
        events.record(self.root, "container", "die", self.cid,
                      {**events.container_attributes(c), "exitCode": code})
        if c.networks:
            self.narrate("fork() = network teardown", "its published ports' NAT rules and its "
                         "name in the network's hosts go (the veth went with its network "
                         "namespace); in a child: the network code stays out of us")
            try:
                self.in_child(lambda: self.networking().finished(self.store, c), "network")
            except MinirunError as e:
                os.write(2, f"{now()} monitor: network teardown: {e}\n".encode())
        if not again and c.host_config.get("AutoRemove"):
            if trace.enabled:
                self.narrate(f"remove {self.cid[:12]}", "--rm: the rootfs mount, the writable "
                             "layer, anonymous volumes and the record go before the CLI returns")
            self.remove(c)
        self.cli_gone()  # the CLI returns on the exit frame below
        self.broadcast(attach.EXIT, str(code).encode())
        if not again:
            for s, _ in list(self.clients.values()):
                self.drop(s)

    def sleep_serving(self, delay: float) -> None:
        """Between restarts: keep answering attach connections (they see the next run)."""
        end = time.monotonic() + delay
        while (left := end - time.monotonic()) > 0:
            ready, _, _ = select.select([self.listener, self.wake_r], [], [], left)
            for r in ready:
                if r is self.listener:
                    self.accept()
                else:
                    _drain(self.wake_r)
            self.reap()

    def remove(self, c: Container) -> None:
        from .lifecycle import Engine  # (only for --rm, at the end)

        Engine(os.path.dirname(self.store.dir), self.runroot, None).remove_files(c, volumes=True)

    def shutdown(self) -> None:
        from ..image import overlay  # (only now: the monitor exits after this)

        if self.probe is not None:
            self.probe.cancel()
            self.probe = None
        self.stop_resolver()
        if self.logw is not None:
            self.logw.close()
        if os.path.isdir(self.cdir):
            try:
                overlay.unmount_rootfs(self.cdir)
            except OSError:
                pass
            try:
                os.unlink(os.path.join(self.cdir, attach.SOCK))
            except OSError:
                pass

            def gone(x: Container) -> None:
                x.state.monitor_pid = x.state.monitor_start = 0

            try:
                self.store.update(self.cid, gone)
            except MinirunError:
                pass
        if self.listener is not None:
            self.listener.close()
        for s, _ in list(self.clients.values()):
            self.drop(s)


def _preload() -> None:
    """Import now what making the container needs, while the CLI still makes its bundle (in
    the maker: never in the monitor itself)."""
    from ..image import overlay  # noqa: F401
    from ..oci import container, init, spec, state  # noqa: F401
    from ..kernel import cgroups, terminal  # noqa: F401
    from ..kernel.cgroups import v1, v2  # noqa: F401

    libc.preload()


class Stdio:
    """The container's stdio, made before the maker is forked (it inherits them): pipes for
    stdin, stdout and stderr, and a socketpair for a terminal (the runtime sends the pty's
    master on it). Which kind a run uses is known only once the maker is asked; the monitor
    keeps its ends of that kind and closes the rest."""

    def __init__(self) -> None:
        self.in_r, self.in_w = os.pipe2(os.O_CLOEXEC)
        self.out_r, self.out_w = os.pipe2(os.O_CLOEXEC)
        self.err_r, self.err_w = os.pipe2(os.O_CLOEXEC)
        self.ours, self.theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)

    @staticmethod
    def close(*fds: int) -> None:
        for fd in fds:
            os.close(fd)

    def close_theirs(self) -> None:
        """The container's ends (the monitor's copies: the init has its own)."""
        self.close(self.in_r, self.out_w, self.err_w)
        self.theirs.close()

    def close_all(self) -> None:
        self.close_theirs()
        self.close(self.in_w, self.out_r, self.err_r)
        self.ours.close()


class Maker:
    """The monitor's side of the maker: a child that runs the OCI runtime for one run of the
    container, so that the runtime's modules never load into the monitor (see the module's
    docstring). Asked on a pipe, one line each: `create {json}` (mount the rootfs, create the
    container on the Stdio: answers the init's PID), then `start` or `delete`; it exits after
    its last answer (or an error), or on `-`. Answers are nethelper.outcome() lines."""

    def __init__(self, pid: int, request_fd: int, result_fd: int, stdio: Stdio) -> None:
        self.pid, self.request_fd, self.result_fd, self.stdio = pid, request_fd, result_fd, stdio
        self.buf = b""

    @classmethod
    def fork(cls, root: str, runroot: str, stdio: Stdio, keep: tuple[int, ...] = (),
             preload: bool = False) -> Maker:
        """`keep`: the fds that are the monitor's business (the CLI's ready pipe, the network
        helper's pipes), closed in the maker; its stdin becomes /dev/null. `preload`: import
        the runtime at once (at our start: the CLI is still busy), else when asked."""

        def serve(req: int, res: int) -> None:
            signal.set_wakeup_fd(-1)  # the monitor's wakeup pipe is not ours to write
            null = os.open("/dev/null", os.O_RDWR)
            os.dup2(null, 0)
            os.close(null)
            if preload:
                _preload()
            _make(root, runroot, stdio, req, res)

        pid, req_w, res_r = nethelper.fork_server(keep, serve)
        return cls(pid, req_w, res_r, stdio)

    def ask(self, word: str, arg=None):
        """Send a request; its answer as a value, or the error it was (with its exit code)."""
        line = word if arg is None else f"{word} {fastjson.dumps(arg)}"
        try:
            os.write(self.request_fd, (line + "\n").encode())
        except OSError:
            pass  # it died: the read below says so
        # A line, not EOF: the container's init holds a copy of the maker's end until it execs.
        while b"\n" not in self.buf:
            chunk = os.read(self.result_fd, 65536)
            if not chunk:
                break
            self.buf += chunk
        data, _, self.buf = self.buf.partition(b"\n")
        return nethelper.result(fastjson.loads(
            data or b'{"error": "the runtime\'s process died", "code": 125}'))

    def close(self) -> None:
        """Done with it: tell it so (it exits, or has exited), and reap it."""
        if self.pid:
            nethelper.dismiss(self.pid, self.request_fd, self.result_fd)
            self.pid = 0


def _make(root: str, runroot: str, stdio: Stdio, req: int, res: int) -> None:
    """The maker's side: answer the monitor's requests (Maker) until the last one."""
    buf = b""

    def request() -> str:
        nonlocal buf
        while b"\n" not in buf:
            chunk = os.read(req, 65536)
            if not chunk:
                return "-"
            buf += chunk
        line, _, buf = buf.partition(b"\n")
        return line.decode()

    def answer(out: dict) -> bool:
        os.write(res, (fastjson.dumps(out) + "\n").encode())
        return "error" not in out

    word, _, arg = request().partition(" ")
    if word != "create":
        return
    a = fastjson.loads(arg)
    log = os.open(os.path.join(a["cdir"], "monitor.log"), os.O_WRONLY | os.O_APPEND |
                  os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.dup2(log, 2)  # like the monitor's: errors go to monitor.log
    os.close(log)
    if trace.enabled:  # --trace: the monitor's narration (the CLI's stderr, or monitor.log)
        trace.stage("runtime")  # (the runtime's own label, as minirun-oci --trace)
    elif os.environ.get("MINIRUN_TRACE", "") not in ("", "0"):
        trace.enable("runtime")  # (a monitor not started by a tracing CLI): in monitor.log
    from ..oci import container as oci  # in the maker only: the monitor never loads the runtime

    if not answer(nethelper.outcome(lambda: _create(runroot, a, stdio))):
        return
    word = request()
    if word == "start":
        answer(nethelper.outcome(lambda: oci.start(runroot, a["cid"]) and None))
    elif word == "delete":
        answer(nethelper.outcome(lambda: oci.delete(runroot, a["cid"], force=True)))


def _create(runroot: str, a: dict, stdio: Stdio) -> int:
    """In the maker: mount the rootfs if need be, create the container with its stdio on
    stdio's pipes (or the terminal's socket); the init's PID."""
    from ..image import overlay
    from ..oci import container as oci

    cdir = a["cdir"]
    if not os.path.ismount(os.path.join(cdir, "rootfs")):
        overlay.mount_rootfs(a["layers_dir"], a["layers"], cdir)
    sock, child_fds = None, []
    if a["tty"]:
        import socket  # (the maker's: the runtime sends the pty's master on it)

        sock = socket.socket(fileno=os.dup(stdio.theirs.fileno()))
    else:
        in_r = stdio.in_r if a["stdin"] else os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        child_fds = [in_r, stdio.out_w, stdio.err_w]
    saved = [os.dup(fd) for fd in (0, 1, 2)]
    try:
        for target, fd in zip((0, 1, 2), child_fds):
            os.dup2(fd, target)  # the runtime's init inherits these as its stdio
        state = oci.create(oci.CreateOptions(root_dir=runroot, cid=a["cid"], bundle=cdir,
                                             console_sock_obj=sock))
    finally:
        for target, fd in zip((0, 1, 2), saved):
            os.dup2(fd, target)  # (then `start`'s trace lines go to the log, not the container)
        for fd in saved:
            os.close(fd)
        if sock is not None:
            sock.close()
    return state.pid


def _end_run(runroot: str, cid: str) -> bool:
    """After the init's exit: was it OOM-killed? Delete the runtime's state (and cgroups)."""
    from ..oci import container as oci
    from ..oci import state as st

    oom = False
    try:
        ostate = st.load(runroot, cid)
        cg = oci.cgroup_of(ostate)
        oom = bool(cg is not None and cg.oom_kills())
    except (MinirunError, OSError):
        pass
    try:
        oci.delete(runroot, cid, force=True)
    except MinirunError as e:
        os.write(2, f"{now()} monitor: delete: {e}\n".encode())
    return oom


def _recv_fd(sock: _socket.socket) -> int:
    """The pty's master, sent by the container's init on the console socket (SCM_RIGHTS):
    kernel/terminal.recv_fd without the socket module."""
    _, anc, _, _ = sock.recvmsg(1024, _socket.CMSG_LEN(4))
    for level, kind, data in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS and len(data) >= 4:
            return int.from_bytes(data[:4], sys.byteorder, signed=True)
    raise OSError(0, "no file descriptor received on the console socket")


def _needs_network(c: Container) -> bool:
    """Will plugging c in make links (a veth on a network)? (Else there is nothing to do.)"""
    mode = c.host_config.get("NetworkMode", "bridge")
    return bool(c.networks) and mode not in ("none", "host") and not mode.startswith("container:")


def _exited_now(c: Container) -> None:
    c.state.status = "exited"


def _layers_dir(store: Containers) -> str:
    """Where the image store keeps unpacked layers (image/store.py), without opening it."""
    return os.path.join(os.path.dirname(store.dir), "image", "layers")


def _exit_code(status: int | None) -> int:
    if status is None:
        return 255
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _drain(fd: int) -> bytes:
    """Empty the signal wakeup pipe; returns what was in it: one byte per signal, its number."""
    got = b""
    try:
        while chunk := os.read(fd, 512):
            got += chunk
    except (BlockingIOError, OSError):
        pass
    return got


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
