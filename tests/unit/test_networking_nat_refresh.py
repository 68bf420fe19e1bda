"""When the NAT table is rewritten on a container's stop and removal: only if it published
ports (the table holds the networks and the running containers' published ports, nothing of a
container that published none), so that `rm -f` of many bridged containers does not run an
`nft -f` per container twice over."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from minirun.engine.networking import Networking
from minirun.network import nat


def container(ports: dict) -> SimpleNamespace:
    return SimpleNamespace(id="c" * 64, networks={"bridge": {"IPAddress": "10.222.0.2"}},
                           host_config={"PortBindings": ports},
                           state=SimpleNamespace(running=False))


@pytest.fixture
def net(tmp_path, monkeypatch):
    n = Networking(str(tmp_path), str(tmp_path / "run"))
    calls = []
    monkeypatch.setattr(n, "refresh", lambda store, also_running=None: calls.append(store))
    return n, calls


@pytest.mark.parametrize("verb", ["finished", "release"])
def test_no_published_port_no_nat_rewrite(net, verb):
    n, calls = net
    getattr(n, verb)("store", container({}))
    assert calls == []


@pytest.mark.parametrize("verb", ["finished", "release"])
def test_published_ports_rewrite_the_nat_table(net, verb):
    n, calls = net
    getattr(n, verb)("store", container({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}))
    assert calls == ["store"]


def test_the_ruleset_does_not_depend_on_a_portless_container():
    """What makes the skip safe: nat.ruleset takes only the networks and published ports."""
    import inspect

    assert list(inspect.signature(nat.ruleset).parameters) == ["networks", "published", "table"]


def test_nfgen_reads_the_generation_from_a_newgen_reply():
    from minirun.kernel import nfgen

    attr = (8).to_bytes(2, "little") + (nfgen.NFTA_GEN_ID).to_bytes(2, "little") + \
        (72332).to_bytes(4, "big")
    body = bytes(4) + attr
    msg_type = (nfgen.NFNL_SUBSYS_NFTABLES << 8) | nfgen.NFT_MSG_NEWGEN
    head = (16 + len(body)).to_bytes(4, "little") + msg_type.to_bytes(2, "little") + bytes(10)
    assert nfgen._parse(head + body) == 72332
    error = (36).to_bytes(4, "little") + nfgen.NLMSG_ERROR.to_bytes(2, "little") + bytes(30)
    assert nfgen._parse(error) is None
    assert nfgen._parse(b"") is None


def _nfmsg(msg_type: int, attrs: list[tuple[int, bytes]], res_id: int = 0) -> bytes:
    from minirun.kernel import nfgen

    body = bytes([2, 0]) + res_id.to_bytes(2, "big")
    for atype, value in attrs:
        body += (4 + len(value)).to_bytes(2, "little") + atype.to_bytes(2, "little") + value
        body += bytes(-len(value) % 4)
    full = (nfgen.NFNL_SUBSYS_NFTABLES << 8) | msg_type
    return (16 + len(body)).to_bytes(4, "little") + full.to_bytes(2, "little") + bytes(10) + body


def test_nfgen_keeps_our_tables_chains_and_rules_without_counters_or_generation():
    """What nat.apply compares when the generation moved: our table's messages only, and not
    what changes by itself (the generation in res_id, a base chain's packet counters)."""
    from minirun.kernel import nfgen

    chain = [(1, b"minirun\0"), (3, b"forward\0")]
    a = _nfmsg(nfgen.NFT_MSG_NEWCHAIN, chain + [(8, b"counts-1")], res_id=7)
    b = _nfmsg(nfgen.NFT_MSG_NEWCHAIN, chain + [(8, b"counts-2")], res_id=9)
    kept = [nfgen._kept(m[16:], nfgen.NFNL_SUBSYS_NFTABLES << 8 | nfgen.NFT_MSG_NEWCHAIN,
                        b"minirun\0") for m in (a, b)]
    assert kept[0] is not None and kept[0] == kept[1]
    other = _nfmsg(nfgen.NFT_MSG_NEWCHAIN, [(1, b"filter\0"), (3, b"forward\0")])
    assert nfgen._kept(other[16:], nfgen.NFNL_SUBSYS_NFTABLES << 8 | nfgen.NFT_MSG_NEWCHAIN,
                       b"minirun\0") is None
    # A rule's attribute 8 is padding, not counters: it is kept.
    rule = _nfmsg(nfgen.NFT_MSG_NEWRULE, [(1, b"minirun\0"), (8, b"xxxx")])
    kept_rule = nfgen._kept(rule[16:], nfgen.NFNL_SUBSYS_NFTABLES << 8 | nfgen.NFT_MSG_NEWRULE,
                            b"minirun\0")
    assert kept_rule is not None and b"xxxx" in kept_rule
