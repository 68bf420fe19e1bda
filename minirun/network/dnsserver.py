"""The embedded DNS server's protocol: queries in, answers out (RFC 1035), as Docker's 127.0.0.11.

Docker answers, inside every container on a user-defined network, for the names of the
containers on its networks (their names, their `--network-alias`es, a compose service's name for
each of its replicas), for the reverse of their addresses, and forwards every other question to
the host's resolvers. This module is that server's protocol half, with no sockets of its own:

    parse(query)                 -> Question (id, name, type, flags), or None: not a question
    answer(query, records, ...)  -> the response: A / PTR records for our names
    refuse(query, rcode)         -> a header-only error answer (SERVFAIL, NXDOMAIN, FORMERR)
    reverse_name(name)           -> "10.222.4.3" for "3.4.222.10.in-addr.arpa", else None
    tcp_frame / tcp_unframe      -> DNS over TCP's two-byte length prefix (RFC 7766)

Where it runs (network/resolver.py, issue 16): in each container's monitor, which lives exactly
as long as the container, so the server follows container churn by reading the network records
at each question, and nothing is left running when the last container goes. The monitor binds
127.0.0.11:53 (UDP and TCP) inside the container's network namespace and asks the host's
resolvers from the host's namespace (a loopback resolver such as systemd-resolved's 127.0.0.53
is reachable from there, as Docker does it). Standard library only: the monitor stays small.
"""

from __future__ import annotations

import random
import socket
import struct

TYPE_A, TYPE_PTR, TYPE_AAAA, TYPE_ANY = 1, 12, 28, 255
CLASS_IN = 1
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
TTL = 600  # Docker's embedded server answers with 600 s
_HEADER = struct.Struct(">HHHHHH")
_MAX_UDP = 512  # a plain DNS answer over UDP (no EDNS): longer ones set TC, the client retries on TCP


class Question:
    """One query: its ID, the flags the answer echoes (RD), the name asked and its type."""

    __slots__ = ("id", "flags", "name", "qtype", "qclass", "end")

    def __init__(self, id: int, flags: int, name: str, qtype: int, qclass: int, end: int) -> None:  # noqa: A002
        self.id, self.flags, self.name = id, flags, name
        self.qtype, self.qclass, self.end = qtype, qclass, end


def _read_name(data: bytes, at: int) -> tuple[str, int]:
    """A (possibly compressed) name at `at`: the dotted name and where it ends."""
    labels: list[str] = []
    end = -1
    hops = 0
    while True:
        if at >= len(data):
            raise ValueError("name runs past the message")
        n = data[at]
        if n & 0xC0 == 0xC0:  # a pointer to a name earlier in the message
            if at + 1 >= len(data):
                raise ValueError("truncated pointer")
            hops += 1
            if hops > 16:
                raise ValueError("a loop of name pointers")
            if end < 0:
                end = at + 2
            at = ((n & 0x3F) << 8) | data[at + 1]
            continue
        if n == 0:
            return ".".join(labels), (end if end >= 0 else at + 1)
        if n > 63:
            raise ValueError("label longer than 63")
        labels.append(data[at + 1:at + 1 + n].decode("ascii", "replace"))
        at += 1 + n
        if sum(len(x) + 1 for x in labels) > 255:
            raise ValueError("name longer than 255")


def _write_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii", "replace")
        if not raw or len(raw) > 63:
            raise ValueError(f"bad label in {name!r}")
        out += bytes([len(raw)]) + raw
    return out + b"\x00"


def parse(query: bytes) -> Question | None:
    """The question of a standard query, or None for anything else (a response, a message
    with no or several questions, one that does not parse)."""
    if len(query) < _HEADER.size:
        return None
    qid, flags, qd, _an, _ns, _ar = _HEADER.unpack_from(query)
    if flags & 0x8000 or (flags >> 11) & 0xF != 0 or qd != 1:  # QR=1, or an OPCODE not QUERY
        return None
    try:
        name, at = _read_name(query, _HEADER.size)
    except ValueError:
        return None
    if at + 4 > len(query):
        return None
    qtype, qclass = struct.unpack_from(">HH", query, at)
    return Question(qid, flags, name.lower(), qtype, qclass, at + 4)


def _header(q: Question, rcode: int, answers: int, truncated: bool = False) -> bytes:
    # QR (a response), AA (we are the authority for our names), RD echoed, RA (we recurse).
    flags = 0x8000 | 0x0400 | (q.flags & 0x0100) | 0x0080 | rcode | (0x0200 if truncated else 0)
    return _HEADER.pack(q.id, flags, 1, answers, 0, 0)


def refuse(query: bytes, rcode: int) -> bytes:
    """An answer with no records: NXDOMAIN, SERVFAIL ... (FORMERR: the header alone)."""
    q = parse(query)
    if q is None:
        if len(query) < 2:
            return b""
        return _HEADER.pack(struct.unpack_from(">H", query)[0], 0x8000 | FORMERR, 0, 0, 0, 0)
    return _header(q, rcode, 0) + query[_HEADER.size:q.end]


def answer(query: bytes, addresses: list[str] = (), ptr: str | None = None, *,
           rotate: bool = True, udp: bool = True) -> bytes:
    """The answer to `query`: A (and AAAA) records for `addresses` (rotated, as Docker rotates
    replicas round-robin), or a PTR record naming `ptr`. No record of the type asked, for a name
    we have: NOERROR with no answers (a AAAA for a container with an IPv4 address only)."""
    q = parse(query)
    if q is None:
        return refuse(query, FORMERR)
    records = b""
    count = 0
    if q.qtype == TYPE_PTR and ptr:
        data = _write_name(ptr)
        records += b"\xc0\x0c" + struct.pack(">HHIH", TYPE_PTR, CLASS_IN, TTL, len(data)) + data
        count = 1
    elif q.qtype in (TYPE_A, TYPE_AAAA, TYPE_ANY):
        # `addresses` may mix both families: A records for the IPv4 ones, AAAA for the IPv6.
        ips = [ip for ip in addresses if (":" in ip) == (q.qtype == TYPE_AAAA)
               or q.qtype == TYPE_ANY]
        if rotate and len(ips) > 1:
            k = random.randrange(len(ips))
            ips = ips[k:] + ips[:k]
        for ip in ips:
            if ":" in ip:
                rdata, rtype = socket.inet_pton(socket.AF_INET6, ip), TYPE_AAAA
            else:
                rdata, rtype = socket.inet_aton(ip), TYPE_A
            records += b"\xc0\x0c" + struct.pack(">HHIH", rtype, CLASS_IN, TTL, len(rdata)) + rdata
            count += 1
    question = query[_HEADER.size:q.end]
    out = _header(q, NOERROR, count) + question + records
    if udp and len(out) > _MAX_UDP:  # too long for plain UDP: say so, with no records
        return _header(q, NOERROR, 0, truncated=True) + question
    return out


def reverse_name(name: str) -> str | None:
    """The IPv4 address a reverse name asks about ("3.4.222.10.in-addr.arpa" -> "10.222.4.3")."""
    suffix = ".in-addr.arpa"
    if not name.lower().endswith(suffix):
        return None
    parts = name[:-len(suffix)].split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        return None
    return ".".join(reversed(parts))


def tcp_frame(message: bytes) -> bytes:
    """DNS over TCP: each message after its length (RFC 7766)."""
    return struct.pack(">H", len(message)) + message


def tcp_unframe(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Whole messages out of a TCP stream's bytes, and what is left for the next read."""
    out = []
    while len(buffer) >= 2:
        n = struct.unpack_from(">H", buffer)[0]
        if len(buffer) < 2 + n:
            break
        out.append(buffer[2:2 + n])
        buffer = buffer[2 + n:]
    return out, buffer
