"""network/resolver.py without root: the name table built from records, the local answers, and
forwarding (new socket and ID per forward, the client's ID back, next server on SERVFAIL or
silence, SERVFAIL at the end, TCP retry of a truncated answer) against upstream servers played
by sockets on 127.0.0.1 with random ports. The resolver's own listening sockets are bound on
127.0.0.1:0 in our own namespace (netns=/proc/self/ns/net) and driven like the monitor does."""

from __future__ import annotations

import os
import select
import socket
import struct
import time
from types import SimpleNamespace

import pytest

from minirun.kernel import libc
from minirun.network import dns as etc
from minirun.network import dnsserver as dns
from minirun.network import resolver as res


def query(name: str, qtype: int = dns.TYPE_A, qid: int = 0x4242) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + \
        struct.pack(">HH", qtype, dns.CLASS_IN)


def addresses(msg: bytes) -> list[str]:
    """The A/AAAA addresses of an answer to query()."""
    an = struct.unpack_from(">H", msg, 6)[0]
    at = 12
    while msg[at]:
        at += 1 + msg[at]
    at += 5
    out = []
    for _ in range(an):
        rtype, _c, _t, n = struct.unpack_from(">HHIH", msg, at + 2)
        data = msg[at + 12:at + 12 + n]
        if rtype == dns.TYPE_A:
            out.append(socket.inet_ntoa(data))
        elif rtype == dns.TYPE_AAAA:
            out.append(socket.inet_ntop(socket.AF_INET6, data))
        at += 12 + n
    return out


def rcode(msg: bytes) -> int:
    return struct.unpack_from(">H", msg, 2)[0] & 0xF


def container(cid: str, name: str, status: str = "running", **nets) -> SimpleNamespace:
    """A record with endpoints: net=(address, [aliases]) or net=(address, aliases, ipv6)."""
    eps = {}
    for i, (net, spec) in enumerate(nets.items()):
        ep = {"IPAddress": spec[0], "Aliases": spec[1], "Order": i}
        if len(spec) > 2:
            ep["GlobalIPv6Address"] = spec[2]
        eps[net] = ep
    return SimpleNamespace(id=cid * 64, name=name, networks=eps,
                           state=SimpleNamespace(status=status))


ME = container("a", "client", app=("10.7.0.2", []), back=("10.8.0.2", []))
WEB1 = container("b", "shop-web-1", app=("10.7.0.3", ["web"]))
WEB2 = container("c", "shop-web-2", app=("10.7.0.4", ["web"]))
DB = container("d", "db", back=("10.8.0.9", ["database"]))
GONE = container("e", "gone", status="exited", app=("10.7.0.5", []))
ELSEWHERE = container("f", "other", elsewhere=("10.9.0.2", []))
DEFAULT_ONLY = container("9", "plain", bridge=("10.222.0.2", None))
EVERYONE = [ME, WEB1, WEB2, DB, GONE, ELSEWHERE, DEFAULT_ONLY]


def test_names_of_running_peers_on_shared_networks_with_their_aliases_and_short_ids():
    n = res.Names(ME, EVERYONE)
    assert sorted(n.addresses("web")) == ["10.7.0.3", "10.7.0.4"]  # every replica
    assert n.addresses("SHOP-WEB-1.") == ["10.7.0.3"]  # any case, a trailing dot
    assert n.addresses("b" * 12) == ["10.7.0.3"]  # the short ID
    assert n.addresses("database") == ["10.8.0.9"]
    assert n.addresses("client") == ["10.7.0.2"]  # itself: its first network's address
    assert n.addresses("db.back") == ["10.8.0.9"]  # name.network
    assert n.addresses("db.app") is None
    assert n.addresses("gone") is None  # not running: not a name
    assert n.addresses("other") is None and n.addresses("plain") is None  # no shared network
    assert n.ptr["10.7.0.3"] == "shop-web-1.app" and n.ptr["10.8.0.9"] == "db.back"
    assert "10.9.0.2" not in n.ptr


def test_a_peer_on_two_shared_networks_answers_with_the_first_networks_address():
    both = container("7", "both", app=("10.7.0.8", []), back=("10.8.0.8", []))
    assert res.Names(ME, [ME, both]).addresses("both") == ["10.7.0.8"]


def test_the_default_bridge_resolves_nothing():
    assert res.Names(DEFAULT_ONLY, EVERYONE).nets == []


def test_external_servers_and_resolv_conf_for_the_embedded_server():
    host = "nameserver 127.0.0.53\nnameserver 10.1.1.1\nsearch lan\noptions edns0\n"
    assert etc.external_servers(host) == [("127.0.0.53", True), ("10.1.1.1", False)]
    assert etc.external_servers(host, ["127.0.0.1"]) == [("127.0.0.1", False)]
    assert etc.external_servers("") == [("8.8.8.8", False), ("8.8.4.4", False)]
    text = etc.resolv_conf_embedded(host)
    body = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert body == ["nameserver 127.0.0.11", "search lan", "options edns0 ndots:0"]
    assert "# ExtServers: [host(127.0.0.53) 10.1.1.1]" in text
    assert "# Overrides: []" in text and "# Option ndots from: internal" in text
    text = etc.resolv_conf_embedded(host, ["10.2.2.2"], ["corp.test"])
    assert "search corp.test" in text and "# ExtServers: [10.2.2.2]" in text
    assert "# Overrides: [nameservers search]" in text
    assert etc.embedded("app", {"app": {}}) and not etc.embedded("bridge", {"bridge": {}})
    assert not etc.embedded("host", {}) and not etc.embedded("container:x", {"app": {}})


# --- the sockets -----------------------------------------------------------------------------


class Upstream:
    """A UDP (and TCP) DNS server on 127.0.0.1:<random>, answering from a function."""

    def __init__(self, answer) -> None:
        self.answer = answer
        # One port number for both protocols: the kernel picks a free UDP port, which may be
        # taken for TCP by something else on this host (the suite itself): then another.
        for _ in range(50):
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.udp.bind(("127.0.0.1", 0))
            self.port = self.udp.getsockname()[1]
            self.tcp = socket.socket()
            self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                self.tcp.bind(("127.0.0.1", self.port))
                break
            except OSError:
                self.udp.close()
                self.tcp.close()
        self.tcp.listen(4)
        self.seen: list[tuple[str, bytes]] = []

    def serve(self) -> None:
        """Answer what has arrived (called from the test's loop)."""
        ready, _, _ = select.select([self.udp, self.tcp], [], [], 0)
        if self.udp in ready:
            q, peer = self.udp.recvfrom(4096)
            self.seen.append(("udp", q))
            out = self.answer(q, "udp")
            if out is not None:
                self.udp.sendto(out, peer)
        if self.tcp in ready:
            conn, _ = self.tcp.accept()
            with conn:
                conn.settimeout(2)
                n = struct.unpack(">H", conn.recv(2))[0]
                q = conn.recv(n)
                self.seen.append(("tcp", q))
                conn.sendall(dns.tcp_frame(self.answer(q, "tcp")))

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()


@pytest.fixture
def upstreams(monkeypatch):
    monkeypatch.setattr(res, "PORT", 0)  # replaced per server below
    made: list[Upstream] = []

    def make(answer) -> Upstream:
        u = Upstream(answer)
        made.append(u)
        return u

    yield make
    for u in made:
        u.close()


def make_resolver(monkeypatch, servers: list[Upstream], timeout: float = 0.3,
                  records=lambda: EVERYONE, forward: bool = True) -> res.Resolver:
    # Every upstream listens on its own port: route each address to its port.
    ports = {f"127.0.0.{i + 1}": u.port for i, u in enumerate(servers)}
    real = socket.socket.connect, socket.socket.connect_ex

    def connect(self, addr, _real=real[0]):
        return _real(self, ("127.0.0.1", ports.get(addr[0], addr[1])))

    def connect_ex(self, addr, _real=real[1]):
        return _real(self, ("127.0.0.1", ports.get(addr[0], addr[1])))

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(libc, "setns", lambda *a: None)  # our own namespace: no switch
    return res.Resolver("/proc/self/ns/net", ME.id, records, [(a, False) for a in ports],
                        forward=forward, address="127.0.0.1", port=0, timeout=timeout)


def drive(r: res.Resolver, servers: list[Upstream], until, seconds: float = 3.0):
    """Run the monitor's loop (and the upstreams) until until() returns something."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for u in servers:
            u.serve()
        got = until()
        if got is not None:
            return got
        wait = r.wait(time.monotonic())
        ready, _, _ = select.select(r.fds(), [], [], min(0.02, wait if wait is not None else 1))
        for fd in ready:
            r.handle(fd)
        r.tick(time.monotonic())
    raise AssertionError("no answer in time")


def ask_udp(r: res.Resolver, servers, q: bytes) -> bytes:
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.setblocking(False)
    c.sendto(q, r.udp.getsockname())

    def got():
        try:
            return c.recv(65535)
        except BlockingIOError:
            return None

    try:
        return drive(r, servers, got)
    finally:
        c.close()


def ask_tcp(r: res.Resolver, servers, q: bytes) -> bytes:
    c = socket.create_connection(r.tcp.getsockname())
    c.setblocking(False)
    c.send(dns.tcp_frame(q))
    buf = [b""]

    def got():
        try:
            buf[0] += c.recv(65535)
        except BlockingIOError:
            pass
        msgs, _ = dns.tcp_unframe(buf[0])
        return msgs[0] if msgs else None

    try:
        return drive(r, servers, got)
    finally:
        c.close()


def test_our_names_are_answered_locally_and_read_at_each_question(monkeypatch, upstreams):
    box = [list(EVERYONE)]
    r = make_resolver(monkeypatch, [], records=lambda: box[0])
    try:
        a = ask_udp(r, [], query("web", qid=77))
        assert struct.unpack_from(">H", a)[0] == 77 and sorted(addresses(a)) == \
            ["10.7.0.3", "10.7.0.4"]
        assert addresses(ask_tcp(r, [], query("database"))) == ["10.8.0.9"]
        a = ask_udp(r, [], query("web", dns.TYPE_AAAA))
        assert rcode(a) == dns.NOERROR and addresses(a) == []  # a name we have, no IPv6
        box[0] = [ME, WEB1]  # web-2 stopped: gone from the next answer at once
        assert addresses(ask_udp(r, [], query("web"))) == ["10.7.0.3"]
        ptr = ask_udp(r, [], query("3.0.7.10.in-addr.arpa", dns.TYPE_PTR))
        assert b"\x0ashop-web-1\x03app\x00" in ptr
    finally:
        r.close()


def test_ipv6_addresses_answer_aaaa(monkeypatch, upstreams):
    six = container("6", "six", app=("10.7.0.6", [], "fd00:7::6"))
    r = make_resolver(monkeypatch, [], records=lambda: [ME, six])
    try:
        assert addresses(ask_udp(r, [], query("six", dns.TYPE_AAAA))) == ["fd00:7::6"]
        assert addresses(ask_udp(r, [], query("six"))) == ["10.7.0.6"]
    finally:
        r.close()


def test_forwarding_relays_the_answer_with_the_clients_id_from_a_fresh_id(monkeypatch,
                                                                          upstreams):
    def answer(q, _how):
        return dns.answer(q, ["192.0.2.7"])

    up = upstreams(answer)
    r = make_resolver(monkeypatch, [up])
    try:
        a = ask_udp(r, [up], query("outside.test", qid=0x1111))
        assert struct.unpack_from(">H", a)[0] == 0x1111 and addresses(a) == ["192.0.2.7"]
        b = ask_udp(r, [up], query("outside.test", qid=0x1111))
        ids = [struct.unpack_from(">H", q)[0] for _, q in up.seen]
        assert len(ids) == 2 and addresses(b) == ["192.0.2.7"]
        assert r.pending == {}  # each forward's socket closed once answered
    finally:
        r.close()


def test_servfail_and_silence_move_on_to_the_next_server_then_servfail(monkeypatch, upstreams):
    failing = upstreams(lambda q, _h: dns.refuse(q, dns.SERVFAIL))
    silent = upstreams(lambda q, _h: None)
    good = upstreams(lambda q, _h: dns.answer(q, ["192.0.2.8"]))
    r = make_resolver(monkeypatch, [failing, silent, good], timeout=0.2)
    try:
        t0 = time.monotonic()
        a = ask_udp(r, [failing, silent, good], query("x.test"))
        assert addresses(a) == ["192.0.2.8"]
        assert time.monotonic() - t0 >= 0.2  # it waited for the silent one, then moved on
    finally:
        r.close()
    r = make_resolver(monkeypatch, [silent], timeout=0.2)
    try:
        assert rcode(ask_udp(r, [silent], query("x.test"))) == dns.SERVFAIL
    finally:
        r.close()


def test_authoritative_nxdomain_is_relayed(monkeypatch, upstreams):
    up = upstreams(lambda q, _h: dns.refuse(q, dns.NXDOMAIN))  # AA set: the authority says so
    r = make_resolver(monkeypatch, [up])
    try:
        assert rcode(ask_udp(r, [up], query("nosuch.test"))) == dns.NXDOMAIN
    finally:
        r.close()


def test_tcp_question_truncated_over_udp_is_asked_again_over_tcp(monkeypatch, upstreams):
    many = [f"192.0.2.{i}" for i in range(1, 61)]

    def answer(q, how):
        return dns.answer(q, many, rotate=False, udp=how == "udp")

    up = upstreams(answer)
    r = make_resolver(monkeypatch, [up])
    try:
        a = ask_udp(r, [up], query("big.test"))
        assert struct.unpack_from(">H", a, 2)[0] & 0x0200  # UDP client: TC relayed, it retries
        a = ask_tcp(r, [up], query("big.test"))
        assert addresses(a) == many
        assert [how for how, _ in up.seen][-2:] == ["udp", "tcp"]
    finally:
        r.close()


def test_internal_only_forwards_nothing(monkeypatch, upstreams):
    up = upstreams(lambda q, _h: dns.answer(q, ["192.0.2.9"]))
    r = make_resolver(monkeypatch, [up], forward=False)
    try:
        assert rcode(ask_udp(r, [up], query("x.test"))) == dns.SERVFAIL
        assert up.seen == []
    finally:
        r.close()


def test_external_access_reads_the_network_records(tmp_path):
    (tmp_path / "networks").mkdir()
    (tmp_path / "networks" / "sealed.json").write_text('{"Name": "sealed", "Internal": true}')
    (tmp_path / "networks" / "open.json").write_text('{"Name": "open", "Internal": false}')
    assert not res.external_access(str(tmp_path), ["sealed"])
    assert res.external_access(str(tmp_path), ["sealed", "open"])


def test_close_leaves_no_descriptor(monkeypatch, upstreams):
    before = set(os.listdir("/proc/self/fd"))
    silent = upstreams(lambda q, _h: None)
    r = make_resolver(monkeypatch, [silent], timeout=5)
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.sendto(query("x.test"), r.udp.getsockname())
    drive(r, [silent], lambda: r.pending or None)
    c.close()
    silent.close()
    r.close()
    assert set(os.listdir("/proc/self/fd")) <= before
