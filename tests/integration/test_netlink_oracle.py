"""kernel/netlink.py checked against pyroute2, the oracle.

minirun builds its networks with its own ~200 lines of rtnetlink because `import pyroute2` costs
~100 ms; here pyroute2 reads back what those lines made. The calls are the ones
network/bridge.py makes (ensure + attach), in two throw-away network namespaces this test
creates: one stands for the host (the bridge and the host end of the veth), one for the
container (eth0, its address and default route). The root namespace and its links are never
touched; both namespaces are deleted at the end, pass or fail, and with them every link.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid

import pytest

from minirun.kernel.netlink import Netlink

pyroute2 = pytest.importorskip("pyroute2", reason="pyroute2 (the test extra) is the oracle")

IFF_UP = 0x1
MTU = 1400
GATEWAY, ADDRESS, PREFIX = "10.231.7.1", "10.231.7.2", 24
MAC = b"\x02\x42" + socket.inet_aton(ADDRESS)  # bridge.mac_of's rule


@pytest.fixture
def two_netns():
    """Two named network namespaces, (host, container), removed at teardown."""
    tag = uuid.uuid4().hex[:8]
    names = [f"minirun-oracle-h-{tag}", f"minirun-oracle-c-{tag}"]
    made = []
    try:
        for name in names:
            subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
            made.append(name)
        yield names
    finally:
        for name in made:  # a namespace takes its links with it (a veth pair goes whole)
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def links(ns: pyroute2.NetNS) -> dict[str, dict]:
    """name -> what pyroute2 decodes of each link: index, kind, flags, mtu, master, mac."""
    out = {}
    for msg in ns.get_links():
        info = msg.get_attr("IFLA_LINKINFO")
        out[msg.get_attr("IFLA_IFNAME")] = {
            "index": msg["index"], "flags": msg["flags"], "mtu": msg.get_attr("IFLA_MTU"),
            "master": msg.get_attr("IFLA_MASTER"), "mac": msg.get_attr("IFLA_ADDRESS"),
            "kind": info.get_attr("IFLA_INFO_KIND") if info else None}
    return out


def addresses(ns: pyroute2.NetNS, index: int) -> list[tuple[str, int, str | None]]:
    return sorted((m.get_attr("IFA_ADDRESS"), m["prefixlen"], m.get_attr("IFA_BROADCAST"))
                  for m in ns.get_addr(family=socket.AF_INET) if m["index"] == index)


def default_routes(ns: pyroute2.NetNS) -> list[tuple[str, int]]:
    return [(m.get_attr("RTA_GATEWAY"), m.get_attr("RTA_OIF"))
            for m in ns.get_routes(family=socket.AF_INET, table=254)
            if m["dst_len"] == 0 and m.get_attr("RTA_GATEWAY")]


def test_bridge_veth_address_route_as_pyroute2_sees_them(two_netns):
    host, ctr = two_netns
    host_path, ctr_path = (f"/run/netns/{n}" for n in two_netns)
    # As bridge.ensure: the bridge, its gateway address, up.
    with Netlink.inside(host_path, "oracle host") as nl:
        nl.add_bridge("mrbr-oracle")
        nl.add_address("mrbr-oracle", GATEWAY, PREFIX)
        nl.set_link("mrbr-oracle", up=True)
        # As bridge.attach: the veth, its peer born in the container's namespace as eth0.
        fd = os.open(ctr_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            nl.add_veth("mr-oracle0", "eth0", fd, MTU, "oracle container", peer_mac=MAC)
        finally:
            os.close(fd)
        nl.set_link("mr-oracle0", master="mrbr-oracle", up=True)
    with Netlink.inside(ctr_path, "oracle container") as c:
        c.add_address("eth0", ADDRESS, PREFIX)
        c.set_link("eth0", up=True)
        c.add_default_route(GATEWAY, "eth0")

    with pyroute2.NetNS(host) as h:
        hl = links(h)
        bridge, veth = hl["mrbr-oracle"], hl["mr-oracle0"]
        assert bridge["kind"] == "bridge" and bridge["flags"] & IFF_UP
        assert veth["kind"] == "veth" and veth["flags"] & IFF_UP and veth["mtu"] == MTU
        assert veth["master"] == bridge["index"]
        assert "eth0" not in hl  # the peer was born in the other namespace, not here
        assert addresses(h, bridge["index"]) == [(GATEWAY, PREFIX, "10.231.7.255")]
    with pyroute2.NetNS(ctr) as c:
        cl = links(c)
        eth0 = cl["eth0"]
        assert eth0["kind"] == "veth" and eth0["flags"] & IFF_UP and eth0["mtu"] == MTU
        assert eth0["mac"] == "02:42:0a:e7:07:02" and eth0["master"] is None
        assert not cl["lo"]["flags"] & IFF_UP  # only what we asked for
        assert addresses(c, eth0["index"]) == [(ADDRESS, PREFIX, "10.231.7.255")]
        assert default_routes(c) == [(GATEWAY, eth0["index"])]

    # As bridge.detach: deleting the host end takes the container's end with it.
    with Netlink.inside(host_path, "oracle host") as nl:
        nl.delete_link("mr-oracle0", "the oracle test is done with it")
    with pyroute2.NetNS(ctr) as c:
        assert "eth0" not in links(c)
    with pyroute2.NetNS(host) as h:
        assert set(links(h)) == {"lo", "mrbr-oracle"}
