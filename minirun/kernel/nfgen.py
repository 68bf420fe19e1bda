"""The nftables ruleset generation: a counter the kernel bumps at every ruleset change.

Each committed nftables transaction (an `nft -f` batch, a rule added by anyone, a `flush
ruleset`) increments one generation number, which NFT_MSG_GETGEN reads over netlink
(NETLINK_NETFILTER) in one round trip. minirun rewrites its NAT table from the records at every
bridge container's start; when the ruleset it would write is the one it wrote last and the
generation has not moved since, the kernel still holds exactly that, and the ~15 ms `nft -f`
is skipped (network/nat.py). Anyone else's change moves the generation, so then it is written
again. The message is built by hand: pyroute2's nftables module loads all of pyroute2 (~40 ms).
"""

from __future__ import annotations

import _socket


from .. import trace

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_NEWGEN, NFT_MSG_GETGEN = 15, 16
NFTA_GEN_ID = 1
NLM_F_REQUEST = 1
NLMSG_ERROR = 2


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


__all__ = ["generation"]
