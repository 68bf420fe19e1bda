"""The userland proxy: the published ports that the kernel cannot NAT.

Most published ports are DNAT rules (nat.py). Two kinds cannot be:

  * **[::1]**, IPv6 loopback. A DNAT from ::1 to a container sends the packet out of the
    bridge with a loopback source; even masqueraded, the reply is turned back into one for ::1
    *after* it arrived on the bridge, and the kernel drops a packet for ::1 that arrives on any
    interface but lo (RFC 4291 2.5.3). IPv4 has `route_localnet` for 127/8; IPv6 has nothing
    like it. So `-p [::1]:8080:80`, and the ::1 side of `-p 8080:80` / `-p [::]:8080:80` on a
    dual-stack network, go through this proxy, as Docker's go through docker-proxy (netavark
    documents the same kernel limit). nat.py's ip6 `output` chain skips ::1 to leave it here.
  * **an IPv6 host address for a container with no IPv6 address** (`-p [::]:8080:80` on an
    IPv4-only network): nftables cannot NAT one family to the other. docker-proxy relays that
    to the container's IPv4 address; so does this.

The cost, and why it is the least bad way: one small process per container that has such a
port (`python -m minirun.network.proxy`, ~10 MB; no other container pays anything), and the
container sees the connections come from its gateway, not from the client (docker-proxy's
behaviour too). The alternatives: a thread in the monitor would put it in every monitor's
memory and life; an ip6 DNAT cannot work at all (above).

Its life: the network helper binds the listening sockets itself, so a port that someone else
holds fails `run`/`start` at once with a one-line error, and nothing is left running; it opens
a pidfd on the container's init and hands both to the proxy (pass_fds), which exits when that
pidfd becomes readable: when the container's init exits, whoever stops it and even if its
monitor was killed. A restarted container gets a new proxy (its setup binds again, waiting a
moment for the old one to let go).

TCP: accept, connect to the container, copy both ways; an EOF is passed on as a half-close.
UDP: one connected socket per client toward the container; its replies go back from the
listening socket; a flow idle for 60 s is dropped (docker-proxy keeps 90 s).
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import subprocess
import sys
import time

from .. import trace
from ..errors import MinirunError
from ..record import dataclass

UDP_IDLE = 60.0  # seconds a UDP flow lives without traffic


class ProxyError(MinirunError):
    """A proxied port could not be bound (someone else holds it)."""


@dataclass
class Relay:
    proto: str  # tcp or udp
    host_ip: str  # what the proxy listens on: ::1, ::, or one of the host's IPv6 addresses
    host_port: int
    ip: str  # where it sends to: the container's IPv6 address, or its IPv4 one if it has none
    port: int


def plan(bindings: dict, ip4: str, ip6: str) -> list[Relay]:
    """The relays a container needs for its PortBindings ({"80/tcp": [{"HostIp", "HostPort"}]}),
    given its addresses on its first network (ip6 "": it has no IPv6)."""
    out = []
    for key, binds in bindings.items():
        port, _, proto = key.partition("/")
        for b in binds:
            hip = b.get("HostIp") or ""
            if ip6:
                if hip not in ("", "::", "::1"):
                    continue  # IPv4, or a non-loopback IPv6 address: DNAT (nat.py)
                listen, target = "::1", ip6
            else:
                if ":" not in hip:
                    continue  # IPv4: DNAT (nat.py); "" on an IPv4-only network is IPv4 only
                listen, target = hip, ip4
            out.append(Relay(proto=proto or "tcp", host_ip=listen, host_port=int(b["HostPort"]),
                             ip=target, port=int(port)))
    return out


def start(relays: list[Relay], init_pid: int, cid: str) -> int:
    """Bind every relay's socket now, then start the proxy on them, tied to the container's
    init (init_pid, a host PID); its errors go to our stderr (the network helper's is the
    container's monitor.log). Returns the proxy's PID. ProxyError (one line) if a port is
    taken; then nothing was started and nothing stays bound."""
    socks: list[socket.socket] = []
    fds: list[int] = []
    try:
        for r in relays:
            socks.append(_bind(r, cid))
        # Above 2: the network helper runs with stdin closed, so a socket may be fd 0, which
        # the child's stdin (/dev/null) would replace.
        fds = [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD_CLOEXEC, 3) for s in socks]
        pidfd = os.pidfd_open(init_pid)
        fds.append(fcntl.fcntl(pidfd, fcntl.F_DUPFD_CLOEXEC, 3))
        os.close(pidfd)
        specs = [f"{fd}/{r.proto}/{r.ip}/{r.port}" for fd, r in zip(fds, relays)]
        if trace.enabled:
            shown = ", ".join(f"[{r.host_ip}]:{r.host_port}/{r.proto} -> {_show(r.ip)}:{r.port}"
                              for r in relays)
            trace.step(f"proxy {shown}", "published ports the kernel cannot NAT (IPv6 loopback, "
                       "or IPv6 to an IPv4-only container): a userland relay, until the "
                       f"container's init ({init_pid}) exits")
        p = subprocess.Popen([sys.executable, "-m", "minirun.network.proxy", str(fds[-1]),
                              *specs], pass_fds=fds,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, cwd="/",
                             start_new_session=True)
        return p.pid
    except OSError as e:
        raise ProxyError(f"container {cid[:12]}: cannot start the port proxy: {e}") from None
    finally:
        for s in socks:
            s.close()
        for fd in fds:
            os.close(fd)


def _show(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def _bind(r: Relay, cid: str) -> socket.socket:
    kind = socket.SOCK_STREAM if r.proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET6, kind | socket.SOCK_CLOEXEC)
    try:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # [::] is IPv6 only: 0.0.0.0
        if r.proto == "tcp":                                      # is nat.py's
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 2
        while True:
            try:
                s.bind((r.host_ip, r.host_port))
                break
            except OSError as e:
                # A restarted container: its old proxy exits with the old init, a moment later.
                if e.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise ProxyError(f"Bind for [{r.host_ip}]:{r.host_port} failed: "
                                     f"{e.strerror} (container {cid[:12]})") from None
                time.sleep(0.05)
        if r.proto == "tcp":
            s.listen(128)
        return s
    except BaseException:
        s.close()
        raise


# -- the proxy process ---------------------------------------------------------------------------

def main(argv: list[str]) -> None:
    """`python -m minirun.network.proxy PIDFD FD/PROTO/IP/PORT...`: relay until PIDFD is
    readable (the container's init exited)."""
    import asyncio  # here: only the proxy process needs it

    loop = asyncio.new_event_loop()
    done = loop.create_future()
    pidfd = int(argv[0])
    loop.add_reader(pidfd, lambda: done.done() or done.set_result(None))
    for spec in argv[1:]:
        fd, proto, ip, port = spec.split("/")
        sock = socket.socket(fileno=int(fd))
        sock.setblocking(False)
        if proto == "tcp":
            loop.run_until_complete(asyncio.start_server(_tcp_handler(ip, int(port)), sock=sock))
        else:
            _UDP(loop, sock, ip, int(port))
    loop.run_until_complete(done)
    os._exit(0)  # the container is gone: every relay with it, mid-copy or not


def _tcp_handler(ip: str, port: int):
    import asyncio  # here: only the proxy process needs it

    async def pipe(reader, writer, other) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()  # a half-close goes on as one
        except OSError:
            other.close()  # a reset on one side: the other side goes too
            writer.close()

    async def handle(reader, writer) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(ip, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_w, writer), pipe(up_r, writer, up_w))
        writer.close()
        up_w.close()

    return handle


class _UDP:
    """One listening UDP socket: a connected socket to the container per client address."""

    def __init__(self, loop, sock: socket.socket, ip: str, port: int) -> None:
        self.loop, self.sock, self.target = loop, sock, (ip, port)
        self.flows: dict = {}  # client address -> [socket to the container, last use]
        loop.add_reader(sock, self.front)
        loop.call_later(UDP_IDLE / 2, self.sweep)

    def front(self) -> None:
        try:
            data, addr = self.sock.recvfrom(65535)
        except OSError:
            return
        flow = self.flows.get(addr)
        if flow is None:
            back = socket.socket(socket.AF_INET6 if ":" in self.target[0] else socket.AF_INET,
                                 socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            back.setblocking(False)
            try:
                back.connect(self.target)
            except OSError:
                back.close()
                return
            flow = self.flows[addr] = [back, 0.0]
            self.loop.add_reader(back, self.reply, back, addr)
        flow[1] = time.monotonic()
        try:
            flow[0].send(data)
        except OSError:
            pass

    def reply(self, back: socket.socket, addr) -> None:
        try:
            data = back.recv(65535)
            self.sock.sendto(data, addr)
        except OSError:
            return
        if addr in self.flows:
            self.flows[addr][1] = time.monotonic()

    def sweep(self) -> None:
        now = time.monotonic()
        for addr, (back, used) in list(self.flows.items()):
            if now - used > UDP_IDLE:
                self.loop.remove_reader(back)
                back.close()
                del self.flows[addr]
        self.loop.call_later(UDP_IDLE / 2, self.sweep)


if __name__ == "__main__":
    main(sys.argv[1:])
