"""The nftables ruleset generation: a counter the kernel bumps at every ruleset change.

Each committed nftables transaction (an `nft -f` batch, a rule added by anyone, a `flush
ruleset`) increments one generation number, which NFT_MSG_GETGEN reads over netlink
(NETLINK_NETFILTER) in one round trip. minirun rewrites its NAT table from the records at every
bridge container's start; when the ruleset it would write is the one it wrote last and the
generation has not moved since, the kernel still holds exactly that, and the ~15 ms `nft -f`
is skipped (network/nat.py). Anyone else's change moves the generation: a firewall, Docker's or
podman's rules, another root's table. Then `tables()` reads minirun's own tables back (a dump
of their chains and rules, NFT_MSG_GETCHAIN/GETRULE): if they hold the bytes they held right
after minirun wrote them, the change was elsewhere and nothing is written either. The messages
are built by hand: pyroute2's nftables module loads all of pyroute2 (~40 ms).
"""

from __future__ import annotations

import _socket


from .. import trace

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_NEWGEN, NFT_MSG_GETGEN = 15, 16
NFT_MSG_NEWCHAIN, NFT_MSG_GETCHAIN = 3, 4
NFT_MSG_NEWRULE, NFT_MSG_GETRULE = 6, 7
NFTA_GEN_ID = 1
NFTA_TABLE_NAME = 1  # NFTA_CHAIN_TABLE and NFTA_RULE_TABLE are attribute 1 too
NFTA_CHAIN_COUNTERS = 8  # packet and byte counts: they move with the traffic, not the rules
NLM_F_REQUEST, NLM_F_DUMP = 1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3


def generation() -> int | None:
    """The current ruleset generation, or None if the kernel does not say (no nf_tables)."""
    try:
        sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC,
                              NETLINK_NETFILTER)
    except OSError:
        return None
    try:
        # nlmsghdr (len, type, flags, seq, pid) + nfgenmsg (family, version, res_id big-endian)
        body = bytes([0, 0]) + (0).to_bytes(2, "big")
        msg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN
        head = (16 + len(body)).to_bytes(4, "little") + msg_type.to_bytes(2, "little") + \
            NLM_F_REQUEST.to_bytes(2, "little") + (1).to_bytes(4, "little") + bytes(4)
        sock.sendto(head + body, (0, 0))
        data = sock.recv(65536)
    except OSError:
        return None
    finally:
        sock.close()
    gen = _parse(data)
    if trace.enabled and gen is not None:
        trace.step(f"netlink(netfilter) NFT_MSG_GETGEN -> generation {gen}",
                   "has anyone changed the ruleset since minirun last wrote it?")
    return gen


def tables(name: str) -> bytes | None:
    """The chains and rules of every table called `name` (ip and ip6 minirun), as the kernel
    holds them: each message's family, type and attributes, in the kernel's order, without
    what changes by itself (netlink headers, the generation in each nfgenmsg, chain counters).
    Equal bytes, equal tables. None if the kernel does not answer."""
    try:
        sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC,
                              NETLINK_NETFILTER)
    except OSError:
        return None
    out: list[bytes] = []
    try:
        for seq, get in ((2, NFT_MSG_GETCHAIN), (3, NFT_MSG_GETRULE)):
            # The rule dump is filtered by table in the kernel (NFTA_RULE_TABLE); the chain
            # dump is not, so both are filtered here too.
            attr = name.encode() + b"\0"
            body = bytes(4) + (4 + len(attr)).to_bytes(2, "little") + \
                NFTA_TABLE_NAME.to_bytes(2, "little") + attr + bytes(-len(attr) % 4)
            head = (16 + len(body)).to_bytes(4, "little") + \
                ((NFNL_SUBSYS_NFTABLES << 8) | get).to_bytes(2, "little") + \
                (NLM_F_REQUEST | NLM_F_DUMP).to_bytes(2, "little") + seq.to_bytes(4, "little") + \
                bytes(4)
            sock.sendto(head + body, (0, 0))
            if not _read_dump(sock, name.encode() + b"\0", out):
                return None
    except OSError:
        return None
    finally:
        sock.close()
    return b"".join(out)


def _read_dump(sock, table: bytes, out: list[bytes]) -> bool:
    """Append the kept part of each message of one dump to `out`; False on an error."""
    while True:
        data = sock.recv(1 << 17)
        pos = 0
        while pos + 16 <= len(data):
            length = int.from_bytes(data[pos:pos + 4], "little")
            msg_type = int.from_bytes(data[pos + 4:pos + 6], "little")
            if length < 16:
                return False
            if msg_type == NLMSG_DONE:
                return True
            if msg_type == NLMSG_ERROR:
                return False
            msg = data[pos + 16:pos + length]
            kept = _kept(msg, msg_type, table)
            if kept is not None:
                out.append(kept)
            pos += (length + 3) & ~3
        if not data:
            return False


def _kept(msg: bytes, msg_type: int, table: bytes) -> bytes | None:
    """family + type + the attributes worth comparing, or None if not `table`'s."""
    attrs: list[bytes] = []
    mine = False
    pos = 4  # past nfgenmsg: family, version, and res_id (the generation's low 16 bits)
    while pos + 4 <= len(msg):
        alen = int.from_bytes(msg[pos:pos + 2], "little")
        atype = int.from_bytes(msg[pos + 2:pos + 4], "little") & 0x3FFF
        if alen < 4:
            break
        if atype == NFTA_TABLE_NAME:
            mine = msg[pos + 4:pos + alen] == table
        if not (atype == NFTA_CHAIN_COUNTERS and msg_type & 0xFF == NFT_MSG_NEWCHAIN):
            attrs.append(msg[pos:pos + alen])
        pos += (alen + 3) & ~3
    if not mine:
        return None
    return msg[0:1] + msg_type.to_bytes(2, "little") + b"".join(attrs)


def _parse(data: bytes) -> int | None:
    """NFTA_GEN_ID from an NFT_MSG_NEWGEN reply (None for an error or anything else)."""
    if len(data) < 20:
        return None
    length = int.from_bytes(data[0:4], "little")
    msg_type = int.from_bytes(data[4:6], "little")
    if msg_type != (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN:
        return None
    pos = 16 + 4  # past nlmsghdr and nfgenmsg
    while pos + 4 <= min(length, len(data)):
        alen = int.from_bytes(data[pos:pos + 2], "little")
        atype = int.from_bytes(data[pos + 2:pos + 4], "little") & 0x3FFF
        if alen < 4:
            return None
        if atype == NFTA_GEN_ID and alen >= 8:
            return int.from_bytes(data[pos + 4:pos + 8], "big")
        pos += (alen + 3) & ~3
    return None


__all__ = ["generation", "tables"]
