"""network/dnsserver.py: the embedded DNS server's wire format, on hand-built messages (RFC 1035).
(test_dnsserver_oracle.py asks busybox's resolver, an independent client.)"""

from __future__ import annotations

import socket
import struct

from minirun.network import dnsserver as dns


def query(name: str, qtype: int = dns.TYPE_A, qid: int = 0x1234, rd: bool = True) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
    return struct.pack(">HHHHHH", qid, 0x0100 if rd else 0, 1, 0, 0, 0) + labels + \
        struct.pack(">HH", qtype, dns.CLASS_IN)


def records(msg: bytes) -> tuple[int, int, list[tuple[int, bytes]]]:
    """(flags, rcode, [(type, rdata)]) of an answer whose question is query()'s shape."""
    _id, flags, qd, an, _ns, _ar = struct.unpack_from(">HHHHHH", msg)
    at = 12
    for _ in range(qd):
        while msg[at]:
            at += 1 + msg[at]
        at += 5
    out = []
    for _ in range(an):
        assert msg[at:at + 2] == b"\xc0\x0c"  # the name: a pointer to the question's
        rtype, _cls, ttl, n = struct.unpack_from(">HHIH", msg, at + 2)
        assert ttl == dns.TTL
        out.append((rtype, msg[at + 12:at + 12 + n]))
        at += 12 + n
    assert at == len(msg)
    return flags, flags & 0xF, out


def test_parse_reads_the_question():
    q = dns.parse(query("Web.Shop_Default", dns.TYPE_A, qid=7))
    assert (q.id, q.name, q.qtype, q.qclass) == (7, "web.shop_default", dns.TYPE_A, dns.CLASS_IN)
    assert dns.parse(b"\x00" * 5) is None
    response = bytearray(query("web"))
    response[2] |= 0x80  # QR: an answer, not a question
    assert dns.parse(bytes(response)) is None
    looped = struct.pack(">HHHHHH", 1, 0, 1, 0, 0, 0) + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    assert dns.parse(looped) is None  # a pointer to itself


def test_a_records_for_every_replica_rotated():
    ips = ["10.222.4.2", "10.222.4.3", "10.222.4.4"]
    seen_first = set()
    for _ in range(60):
        flags, rcode, recs = records(dns.answer(query("web"), ips))
        assert rcode == dns.NOERROR and flags & 0x8000 and flags & 0x0100 and flags & 0x0080
        got = [socket.inet_ntoa(r) for t, r in recs if t == dns.TYPE_A]
        assert sorted(got) == ips
        seen_first.add(got[0])
    assert seen_first == set(ips)  # each replica comes first now and then


def test_ptr_and_reverse_names():
    assert dns.reverse_name("3.4.222.10.in-addr.arpa") == "10.222.4.3"
    assert dns.reverse_name("example.org") is None
    assert dns.reverse_name("1.2.3.in-addr.arpa") is None
    _f, rcode, recs = records(dns.answer(query("3.4.222.10.in-addr.arpa", dns.TYPE_PTR),
                                         ptr="shop-web-1.shop_default"))
    assert rcode == dns.NOERROR
    assert recs == [(dns.TYPE_PTR, b"\x0ashop-web-1\x0cshop_default\x00")]


def test_no_record_of_that_type_and_errors():
    _f, rcode, recs = records(dns.answer(query("web", dns.TYPE_AAAA), ["10.0.0.2"]))
    assert (rcode, recs) == (dns.NOERROR, [])  # the name exists, with no IPv6 address
    _f, rcode, recs = records(dns.refuse(query("nosuch"), dns.NXDOMAIN))
    assert (rcode, recs) == (dns.NXDOMAIN, [])
    bad = dns.refuse(b"\x12\x34\xff", dns.SERVFAIL)
    assert struct.unpack_from(">HH", bad) == (0x1234, 0x8000 | dns.FORMERR)


def test_a_long_answer_over_udp_is_truncated_for_tcp():
    ips = [f"10.1.{i // 250}.{i % 250 + 1}" for i in range(60)]
    flags, _rcode, recs = records(dns.answer(query("many"), ips))
    assert flags & 0x0200 and recs == []  # TC: ask again over TCP
    _flags, _rcode, recs = records(dns.answer(query("many"), ips, udp=False))
    assert len(recs) == 60


def test_tcp_framing():
    a, b = query("web"), query("db")
    stream = dns.tcp_frame(a) + dns.tcp_frame(b)
    msgs, rest = dns.tcp_unframe(stream[:-3])
    assert msgs == [a] and rest == stream[len(dns.tcp_frame(a)):-3]
    msgs, rest = dns.tcp_unframe(stream)
    assert msgs == [a, b] and rest == b""
