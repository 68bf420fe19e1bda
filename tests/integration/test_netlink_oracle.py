"""kernel/netlink.py (pyroute2) checked against ip(8), the oracle.

The calls are the ones network/bridge.py makes (ensure + attach), in two throw-away network
namespaces this test creates: one stands for the host (the bridge and the host end of the veth),
one for the container (eth0, its address and default route). iproute2's `ip -json` reads back
what they made: another netlink client, written by other people. The root namespace and its
links are never touched; both namespaces are deleted at the end, pass or fail, and with them
every link.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import uuid

import pytest

pytest.importorskip("pyroute2", reason="pyroute2 is a dependency of minirun: pip install -e .")
if shutil.which("ip") is None:
    pytest.skip("ip(8) is the oracle: apt install iproute2", allow_module_level=True)
if os.geteuid() != 0:
    pytest.skip("needs root: it makes network namespaces", allow_module_level=True)

from minirun.kernel.netlink import Netlink  # noqa: E402

IFF_UP = 0x1
MTU = 1400
GATEWAY, ADDRESS, PREFIX = "10.231.7.1", "10.231.7.2", 24
GATEWAY6, ADDRESS6 = "fd00:231:7::1", "fd00:231:7::2"
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


def ip(ns: str, *args: str):
    return json.loads(subprocess.run(["ip", "-n", ns, "-json", "-details", *args], check=True,
                                     capture_output=True, text=True).stdout or "[]")


def links(ns: str) -> dict[str, dict]:
    """name -> what ip(8) shows of each link: index, kind, up, mtu, master, mac."""
    return {x["ifname"]: {"index": x["ifindex"], "up": "UP" in x["flags"], "mtu": x["mtu"],
                          "master": x.get("master"), "mac": x.get("address"),
                          "kind": (x.get("linkinfo") or {}).get("info_kind")}
            for x in ip(ns, "link", "show")}


def addresses(ns: str, dev: str, family: str = "-4") -> list[tuple[str, int, str | None]]:
    return sorted((a["local"], a["prefixlen"], a.get("broadcast"))
                  for x in ip(ns, family, "addr", "show", "dev", dev) for a in x["addr_info"]
                  if a.get("scope") == "global")


def default_routes(ns: str, family: str = "-4") -> list[tuple[str, str]]:
    return [(r["gateway"], r["dev"]) for r in ip(ns, family, "route", "show", "default")]


def test_bridge_veth_address_route_as_ip_sees_them(two_netns):
    host, ctr = two_netns
    host_path, ctr_path = (f"/run/netns/{n}" for n in two_netns)
    # As bridge.ensure: the bridge, its gateway address, up.
    with Netlink.inside(host_path, "oracle host") as nl:
        nl.add_bridge("mrbr-oracle")
        nl.add_address("mrbr-oracle", GATEWAY, PREFIX)
        nl.add_address("mrbr-oracle", GATEWAY6, 64)
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
        c.add_address("eth0", ADDRESS6, 64)
        c.set_link("eth0", up=True)
        c.add_default_route(GATEWAY, "eth0")
        c.add_default_route(GATEWAY6, "eth0")

    hl = links(host)
    bridge, veth = hl["mrbr-oracle"], hl["mr-oracle0"]
    assert bridge["kind"] == "bridge" and bridge["up"]
    assert veth["kind"] == "veth" and veth["up"] and veth["mtu"] == MTU
    assert veth["master"] == "mrbr-oracle"
    assert "eth0" not in hl  # the peer was born in the other namespace, not here
    assert addresses(host, "mrbr-oracle") == [(GATEWAY, PREFIX, "10.231.7.255")]
    assert addresses(host, "mrbr-oracle", "-6") == [(GATEWAY6, 64, None)]
    cl = links(ctr)
    eth0 = cl["eth0"]
    assert eth0["kind"] == "veth" and eth0["up"] and eth0["mtu"] == MTU
    assert eth0["mac"] == "02:42:0a:e7:07:02" and eth0["master"] is None
    assert not cl["lo"]["up"]  # only what we asked for
    assert addresses(ctr, "eth0") == [(ADDRESS, PREFIX, "10.231.7.255")]
    assert addresses(ctr, "eth0", "-6") == [(ADDRESS6, 64, None)]
    assert default_routes(ctr) == [(GATEWAY, "eth0")]
    assert default_routes(ctr, "-6") == [(GATEWAY6, "eth0")]

    # As bridge.detach: deleting the host end takes the container's end with it.
    with Netlink.inside(host_path, "oracle host") as nl:
        nl.delete_link("mr-oracle0", "the oracle test is done with it")
    assert "eth0" not in links(ctr)
    assert set(links(host)) == {"lo", "mrbr-oracle"}


def test_an_error_names_the_request_and_the_namespace(two_netns):
    with Netlink.inside(f"/run/netns/{two_netns[0]}", "oracle host") as nl:
        nl.add_bridge("mrbr-twice")
        with pytest.raises(Exception) as e:
            nl.add_bridge("mrbr-twice")
    assert "mrbr-twice" in str(e.value) and "oracle host" in str(e.value)
    assert "File exists" in str(e.value)
