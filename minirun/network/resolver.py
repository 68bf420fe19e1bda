"""The embedded DNS server's sockets: 127.0.0.11:53 inside one container, served by its monitor.

Docker runs one resolver per container (libnetwork/resolver.go), in the daemon, listening in the
container's network namespace. minirun has no daemon, so the container's monitor (one process per
running container, engine/monitor.py) holds it: it lives exactly as long as the container, each
run (a restart makes a new network namespace) gets a new one, and nothing is left running when
the container goes. The protocol is network/dnsserver.py; this module owns the sockets:

  listen    a UDP and a TCP socket bound to 127.0.0.11:53, made *inside* the container's network
            namespace: setns(2) into it for the socket(2) calls and straight back. A socket keeps
            the namespace it was made in; the monitor is single-threaded, so nothing else runs
            meanwhile in the wrong namespace.
  answer    from the container records, read at each question (no table to keep in sync: a
            peer that stops stops resolving at once, a new replica answers at once): the
            running or paused containers that share a user-defined network with the asking one
            are found by their name, short ID (12 characters) and the endpoint's Aliases (compose
            puts the service name there: every replica answers, one A record each, rotated), with
            the address on the network they share (the first of the asker's networks, in the
            order it joined them, that knows the name: Docker's). `name.network` asks one network.
            Reverse names of those addresses answer `name.network`, as Docker's do. A name we
            have with no record of the type asked (AAAA without an IPv6 address, MX ...) is
            NOERROR with no records, never forwarded.
  forward   every other question, to the upstream servers: --dns if given, else the host's
            /etc/resolv.conf's nameservers (network/dns.py external_servers). Forwards leave
            from the *host's* network namespace, where the monitor lives, so a loopback resolver
            of the host (systemd-resolved's 127.0.0.53, dnsmasq's 127.0.1.1) is reachable, as
            with Docker >= 26. We read /etc/resolv.conf, not /run/systemd/resolve/resolv.conf:
            from the host's namespace the stub works, and it keeps systemd-resolved's per-link
            routing and cache. A loopback --dns is the container's own (Docker's rule): that
            one is asked from inside its namespace. A container only on --internal networks
            forwards nothing (SERVFAIL), as Docker's resolver without external access.

Forwarding never blocks the monitor's loop. Each forward has a socket of its own (a fresh source
port) and a random query ID; the answer must come from the server asked (a connected socket)
with that ID, and is relayed with the client's ID. Each server has UPSTREAM_TIMEOUT (Docker's
extIOTimeout, 4 s); SERVFAIL, REFUSED, a non-authoritative NXDOMAIN or silence moves on to the
next server (at most three, Docker's maxExtDNS); when none is left the last answer is relayed,
or SERVFAIL. Queries that came over TCP are forwarded over UDP first and, if the answer is
truncated (TC), again over TCP: a non-blocking connect() whose completion is polled every 10 ms
from tick(), then a non-blocking send and reads in the loop. The monitor asks fds(), wait(now)
for its select() timeout, handle(fd) for each ready one, tick(now) after each round, close().

Standard library only, no ipaddress: the monitor stays small (≤ 15 MB); it imports this module
only for a container on a user-defined network.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import time

from .. import fastjson, trace
from ..kernel import libc
from . import dns as etc
from . import dnsserver as dns

PORT = 53
UPSTREAM_TIMEOUT = 4.0  # s per upstream server: Docker's extIOTimeout
MAX_PENDING = 128  # forwards in flight: each holds a socket, and select() stops at fd 1024
MAX_TCP_CLIENTS = 32
TCP_IDLE = 10.0  # s: an idle TCP client is closed (RFC 7766 6.2.3: servers close idle ones)
CONNECT_POLL = 0.01  # s between checks of an upstream TCP connect() in progress
DEFAULT = "bridge"  # network/networks.py's DEFAULT: the default bridge has no names (Docker's)
_RCODE_NEXT = (dns.SERVFAIL, dns.REFUSED)


class _Forward:
    """One question on its way to the upstream servers."""

    __slots__ = ("query", "reply", "tcp_client", "servers", "server", "sock", "qid", "deadline",
                 "over_tcp", "connecting", "buf", "last")

    def __init__(self, query: bytes, reply, tcp_client: bool, servers: list) -> None:
        self.query, self.reply, self.tcp_client = query, reply, tcp_client
        self.servers = list(servers)
        self.server: tuple[str, bool] | None = None
        self.sock: socket.socket | None = None
        self.qid = 0
        self.deadline = 0.0
        self.over_tcp = self.connecting = False
        self.buf = b""
        self.last: bytes | None = None  # the last upstream answer, relayed if none does better


class _TcpClient:
    __slots__ = ("sock", "buf", "idle_since")

    def __init__(self, sock: socket.socket, t: float) -> None:
        self.sock, self.buf, self.idle_since = sock, b"", t


class Names:
    """The names one container resolves, built from the records at one question.

    `me` and `everyone` are container records (engine/records.py: .id, .name, .networks,
    .state.status); `me` may be missing from `everyone` (removed meanwhile)."""

    def __init__(self, me, everyone: list) -> None:
        order = sorted(((ep or {}).get("Order", 0), name) for name, ep in me.networks.items()
                       if name != DEFAULT)
        self.nets = [name for _, name in order]
        self.by_net: dict[str, dict[str, list[str]]] = {n: {} for n in self.nets}
        self.ptr: dict[str, str] = {}
        for c in everyone:
            # A peer that runs (or is paused: its endpoint stays); the asker itself always,
            # even before its record says "running" (its question proves it runs).
            if c.id != me.id and c.state.status not in ("running", "paused"):
                continue
            for net in self.nets:
                ep = c.networks.get(net)
                if not ep:
                    continue
                addrs = [a for a in (ep.get("IPAddress"), ep.get("GlobalIPv6Address")) if a]
                if not addrs:
                    continue
                table = self.by_net[net]
                for name in [c.name, c.id[:12]] + [a for a in ep.get("Aliases") or [] if a]:
                    have = table.setdefault(name.lower(), [])
                    have += [a for a in addrs if a not in have]
                for a in addrs:
                    self.ptr.setdefault(a, f"{c.name}.{net}")

    def addresses(self, name: str) -> list[str] | None:
        """The addresses of `name` (a trailing dot or none, any case), None: not ours."""
        name = name.rstrip(".").lower()
        for net in self.nets:
            if name in self.by_net[net]:
                return self.by_net[net][name]
        for net in self.nets:  # name.network: that network only (Docker's ResolveName)
            suffix = "." + net.lower()
            if name.endswith(suffix) and name[:-len(suffix)] in self.by_net[net]:
                return self.by_net[net][name[:-len(suffix)]]
        return None


def external_access(root: str, networks) -> bool:
    """Is any of these networks not --internal? (Read from <root>/networks/<name>.json, as
    network/networks.py writes it, without importing that module and its ipaddress.)"""
    for name in networks:
        try:
            with open(os.path.join(root, "networks", f"{name}.json"), "rb") as f:
                if not fastjson.loads(f.read()).get("Internal"):
                    return True
        except (OSError, ValueError):
            return True  # unreadable: do not take the container's DNS away
    return False


class Resolver:
    """127.0.0.11:53 (UDP and TCP) inside one container's network namespace.

        r = Resolver(f"/proc/{pid}/ns/net", cid, store.all, servers=[("10.0.0.2", False)])
        ... select(r.fds(), ..., r.wait(now)); r.handle(fd) for each ready fd; r.tick(now)
        r.close()

    records() returns every container record (read at each question); servers are
    (address, inside) pairs: inside means "in the container's namespace" (a loopback --dns)."""

    def __init__(self, netns: str, cid: str, records, servers: list[tuple[str, bool]],
                 forward: bool = True, address: str = etc.EMBEDDED, port: int = PORT,
                 timeout: float = UPSTREAM_TIMEOUT) -> None:
        self.netns, self.cid, self.records = netns, cid, records
        self.servers, self.forward_ok, self.timeout = servers[:3], forward, timeout
        self.pending: dict[int, _Forward] = {}  # upstream socket fd -> its forward
        self.clients: dict[int, _TcpClient] = {}
        self.udp, self.tcp = self._inside(lambda: self._listen(address, port),
                                          f"bind {address}:{port} (UDP and TCP) there")
        if trace.enabled:
            trace.note(f"embedded DNS on {address}:{port}, forwarding to "
                       f"{[a for a, _ in self.servers] if forward else 'nobody (internal)'}")

    # -- sockets ---------------------------------------------------------------------------------
    def _inside(self, make, what: str):
        """make() run in the container's network namespace: setns(2) there and straight back."""
        here = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            libc.setns(self.netns, libc.CLONE_NEWNET, f"enter the container's network namespace "
                       f"to {what}: a socket belongs to the namespace it was made in")
            try:
                return make()
            finally:
                libc.setns(f"/proc/self/fd/{here}", libc.CLONE_NEWNET, "and straight back")
        finally:
            os.close(here)

    @staticmethod
    def _listen(address: str, port: int) -> tuple[socket.socket, socket.socket]:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            udp.bind((address, port))
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((address, port))
            tcp.listen(16)
        except OSError:
            udp.close()
            tcp.close()
            raise
        udp.setblocking(False)
        tcp.setblocking(False)
        return udp, tcp

    def fds(self) -> list[int]:
        """What the monitor's select() waits on for us."""
        return [self.udp.fileno(), self.tcp.fileno(), *self.clients, *self.pending]

    def wait(self, now: float) -> float | None:
        """Seconds until tick() has something to do (None: nothing pending)."""
        if any(f.connecting for f in self.pending.values()):
            return CONNECT_POLL
        times = [f.deadline for f in self.pending.values()] + \
            [c.idle_since + TCP_IDLE for c in self.clients.values()]
        return max(0.0, min(times) - now) if times else None

    def handle(self, fd: int) -> None:
        """One ready descriptor of ours."""
        try:
            if fd == self.udp.fileno():
                self._from_udp()
            elif fd == self.tcp.fileno():
                self._accept()
            elif fd in self.clients:
                self._from_tcp_client(self.clients[fd])
            elif fd in self.pending:
                self._from_upstream(self.pending[fd])
        except Exception as e:  # noqa: BLE001 - a bad peer (or a bug here) never takes the
            if trace.enabled:   # monitor, and with it the container's logs and exit, down
                trace.note(f"embedded DNS: {type(e).__name__}: {e}")

    def tick(self, now: float) -> None:
        """Give up on servers that did not answer in time, finish TCP connects, close idle
        TCP clients."""
        for f in [f for f in self.pending.values() if f.connecting]:
            _, w, _ = select.select([], [f.sock], [], 0)
            if w:
                self._connected(f)
        for f in [f for f in self.pending.values() if f.deadline <= now]:
            self._next_server(f)
        for c in [c for c in self.clients.values() if c.idle_since + TCP_IDLE <= now]:
            self._drop(c)

    def close(self) -> None:
        """Close every socket (each holds the container's network namespace alive)."""
        for f in list(self.pending.values()):
            self._unwatch(f)
        for c in list(self.clients.values()):
            self._drop(c)
        self.udp.close()
        self.tcp.close()

    # -- questions -------------------------------------------------------------------------------
    def _from_udp(self) -> None:
        for _ in range(64):  # what is queued now, not forever
            try:
                query, peer = self.udp.recvfrom(65535)
            except BlockingIOError:
                return
            self._question(query, False, lambda m, peer=peer: self.udp.sendto(m, peer))

    def _accept(self) -> None:
        try:
            sock, _ = self.tcp.accept()
        except (BlockingIOError, ConnectionAbortedError):
            return
        if len(self.clients) >= MAX_TCP_CLIENTS:
            sock.close()
            return
        sock.setblocking(False)
        self.clients[sock.fileno()] = _TcpClient(sock, time.monotonic())

    def _from_tcp_client(self, c: _TcpClient) -> None:
        try:
            data = c.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(c)
            return
        c.idle_since = time.monotonic()
        msgs, c.buf = dns.tcp_unframe(c.buf + data)
        for query in msgs:
            self._question(query, True, lambda m, c=c: self._send_tcp(c, m))

    def _send_tcp(self, c: _TcpClient, message: bytes) -> None:
        if c.sock.fileno() < 0:
            return  # the client went while its question was upstream
        framed = dns.tcp_frame(message)
        try:
            sent = c.sock.send(framed)
        except OSError:
            sent = -1
        if sent != len(framed):  # a client that does not read its answers: not our problem
            self._drop(c)

    def _drop(self, c: _TcpClient) -> None:
        self.clients.pop(c.sock.fileno(), None)
        c.sock.close()

    def _question(self, query: bytes, tcp: bool, reply) -> None:
        out = self.local_answer(query, udp=not tcp)
        if out is not None:
            if out:
                reply(out)
            return
        if not self.forward_ok or not self.servers or len(self.pending) >= MAX_PENDING:
            reply(dns.refuse(query, dns.SERVFAIL))
            return
        self._next_server(_Forward(query, reply, tcp, self.servers))

    def local_answer(self, query: bytes, udp: bool = True) -> bytes | None:
        """Our answer to `query` (b"": none to send), or None: not our name, forward it."""
        if len(query) < 12 or query[2] & 0x80:
            return b""  # an answer (QR set) or less than a header: never answer those
        q = dns.parse(query)
        if q is None:
            return dns.refuse(query, dns.FORMERR)
        everyone = self.records()
        me = next((c for c in everyone if c.id == self.cid), None)
        if me is None:
            return None
        names = Names(me, everyone)
        ip = dns.reverse_name(q.name)
        if ip is not None:
            ptr = names.ptr.get(ip)
            return dns.answer(query, ptr=ptr, udp=udp) if ptr and q.qtype == dns.TYPE_PTR \
                else None
        addrs = names.addresses(q.name)
        if addrs is None:
            return None
        return dns.answer(query, addrs, udp=udp)

    # -- upstream --------------------------------------------------------------------------------
    def _next_server(self, f: _Forward) -> None:
        """Ask f's next server (over UDP), or answer the client with what we have."""
        self._unwatch(f)
        f.over_tcp = f.connecting = False
        f.buf = b""
        while f.servers:
            f.server = f.servers.pop(0)
            try:
                f.sock = self._upstream_socket(f.server, socket.SOCK_DGRAM)
                f.sock.connect((f.server[0], PORT))  # only the server asked may answer
                f.qid = struct.unpack(">H", os.urandom(2))[0]
                f.sock.send(struct.pack(">H", f.qid) + f.query[2:])
            except OSError:
                self._unwatch(f)
                continue
            f.deadline = time.monotonic() + self.timeout
            self.pending[f.sock.fileno()] = f
            return
        self._relay(f, f.last)

    def _upstream_socket(self, server: tuple[str, bool], kind: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET

        def make() -> socket.socket:
            return socket.socket(family, kind | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)

        return self._inside(make, f"ask {server[0]} from its loopback") if server[1] else make()

    def _over_tcp(self, f: _Forward) -> None:
        """The UDP answer was truncated: ask the same server again over TCP."""
        self._unwatch(f)
        try:
            f.sock = self._upstream_socket(f.server, socket.SOCK_STREAM)
            err = f.sock.connect_ex((f.server[0], PORT))
        except OSError:
            self._next_server(f)
            return
        if err not in (0, errno.EINPROGRESS):  # the handshake goes on without us
            self._next_server(f)
            return
        f.over_tcp, f.connecting, f.buf = True, True, b""
        f.deadline = time.monotonic() + self.timeout
        self.pending[f.sock.fileno()] = f

    def _connected(self, f: _Forward) -> None:
        f.connecting = False
        if f.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self._next_server(f)
            return
        framed = dns.tcp_frame(struct.pack(">H", f.qid) + f.query[2:])
        try:
            sent = f.sock.send(framed)  # a question fits in a fresh socket's buffer
        except OSError:
            sent = -1
        if sent != len(framed):
            self._next_server(f)

    def _from_upstream(self, f: _Forward) -> None:
        if f.connecting:
            self._connected(f)
            return
        try:
            data = f.sock.recv(65535)
        except BlockingIOError:
            return
        except OSError:  # ECONNREFUSED: nobody listens there
            self._next_server(f)
            return
        if f.over_tcp:
            if not data:
                self._next_server(f)
                return
            msgs, f.buf = dns.tcp_unframe(f.buf + data)
            if not msgs:
                return
            data = msgs[0]
        if len(data) < 12:
            return
        qid, flags = struct.unpack_from(">HH", data)
        if qid != f.qid or not flags & 0x8000:
            return  # not the answer to our question: keep waiting for it
        answer = f.query[:2] + data[2:]  # the client's own ID back
        rcode = flags & 0xF
        if flags & 0x0200 and f.tcp_client and not f.over_tcp:
            f.last = answer
            self._over_tcp(f)
        elif rcode in _RCODE_NEXT or rcode not in (dns.NOERROR, dns.NXDOMAIN) or \
                (rcode == dns.NXDOMAIN and not flags & 0x0400):
            # Docker's: try the next server; a non-authoritative NXDOMAIN may be one
            # server's view (RFC 8020 trusts only an authoritative one).
            f.last = answer
            self._next_server(f)
        else:
            self._unwatch(f)
            self._relay(f, answer)

    def _relay(self, f: _Forward, answer: bytes | None) -> None:
        try:
            f.reply(answer if answer is not None else dns.refuse(f.query, dns.SERVFAIL))
        except OSError:
            pass  # the client went away

    def _unwatch(self, f: _Forward) -> None:
        if f.sock is not None:
            self.pending.pop(f.sock.fileno(), None)
            f.sock.close()
            f.sock = None


def for_container(c, pid: int, root: str, records) -> Resolver:
    """The resolver for container record `c`, whose init is `pid`: its upstream servers are
    its --dns or the host's (read now, at each start, as Docker reads them)."""
    try:
        with open(etc.HOST_RESOLV_CONF) as f:
            host_text = f.read()
    except OSError:
        host_text = ""
    # Asked from the container's namespace: a loopback --dns only (a server beside the
    # container's processes); the host's loopback resolvers and every other address, from ours.
    servers = [(a, etc.loopback(a) and not host_loopback)
               for a, host_loopback in etc.external_servers(host_text, c.host_config.get("Dns"))]
    user = [n for n in c.networks if n != DEFAULT]
    return Resolver(f"/proc/{pid}/ns/net", c.id, records, servers,
                    forward=external_access(root, user))
