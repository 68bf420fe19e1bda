"""macvlan and ipvlan networks through the front end, on a wire the test makes itself.

The parent is never the host's uplink: each test makes a veth pair, keeps one end on the host
as the parent (`mvp<tag>`) and moves the other into a network namespace of its own, the "LAN",
where a "router" address (the network's gateway) lives. Then two containers on the network
reach each other and the router, and the host cannot reach them (macvlan's rule: the parent's
own traffic never loops back into its children). Both ends, the namespace and the networks go
at the end, pass or fail.

ipvlan needs the kernel's ipvlan driver: the test makes one on a throw-away veth first and skips
with the reason when the kernel refuses (this VM kind's kernel has none; Debian's does).
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

if os.geteuid() != 0:
    pytest.skip("needs root: it makes links and namespaces", allow_module_level=True)
if subprocess.run(["busybox", "true"], capture_output=True).returncode != 0:
    pytest.skip("busybox on the host pings from the LAN: apt install busybox-static",
                allow_module_level=True)

SUBNET, ROUTER = "10.253.7.0/24", "10.253.7.254"


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def kernel_has(kind: str) -> str | None:
    """None if the kernel can make a `kind` link (tried on a throw-away veth), else why not."""
    tag = uuid.uuid4().hex[:6]
    a, child = f"mvk{tag}", f"mvkc{tag}"
    sh("ip", "link", "add", a, "type", "veth", "peer", "name", a + "p")
    try:
        r = sh("ip", "link", "add", child, "link", a, "type", kind, check=False)
        if r.returncode:
            return f"the kernel cannot make {kind} links here ({r.stderr.strip()}): " \
                   f"no {kind} driver (modprobe {kind})"
        sh("ip", "link", "del", child)
        return None
    finally:
        sh("ip", "link", "del", a, check=False)


@pytest.fixture
def lan():
    """(parent on the host, the LAN namespace with the router's address on the other end)."""
    tag = uuid.uuid4().hex[:6]
    parent, ns = f"mvp{tag}", f"minirun-lan-{tag}"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", parent, "type", "veth", "peer", "name", "lan0", "netns", ns)
        sh("ip", "link", "set", parent, "up")
        sh("ip", "-n", ns, "link", "set", "lan0", "up")
        sh("ip", "-n", ns, "addr", "add", f"{ROUTER}/24", "dev", "lan0")
        yield parent, ns
    finally:
        sh("ip", "link", "del", parent, check=False)  # its peer (in the LAN) goes with it
        sh("ip", "netns", "del", ns, check=False)


def on_the_wire(mr, lan, driver: str, mode: str) -> None:
    parent, ns = lan
    net = f"{driver}net"
    mr.ok("network", "create", "-d", driver, "--subnet", SUBNET, "--gateway", ROUTER,
          "-o", f"parent={parent}", "-o", f"{driver}_mode={mode}", net)
    try:
        n = json.loads(mr.ok("network", "inspect", net))[0]
        assert n["Driver"] == driver
        assert n["Options"] == {"parent": parent, f"{driver}_mode": mode}
        assert not any(x.startswith("mr-") and n["Id"][:12] in x
                       for x in os.listdir("/sys/class/net"))  # no bridge for it
        mr.ok("run", "-d", "--name", "mva", "--network", net, "busybox", "sleep", "300")
        mr.ok("run", "-d", "--name", "mvb", "--network", net, "busybox", "sleep", "300")
        ip_a = mr.record("mva")["NetworkSettings"]["Networks"][net]["IPAddress"]
        ip_b = mr.record("mvb")["NetworkSettings"]["Networks"][net]["IPAddress"]
        pid = mr.record("mva")["State"]["Pid"]  # busybox's ip has no -d: the host's, inside
        link = sh("nsenter", f"--net=/proc/{pid}/ns/net", "ip", "-d", "link", "show",
                  "eth0").stdout
        assert driver in link and f"mode {mode}" in link
        if driver == "macvlan":  # its own MAC, Docker's rule; ipvlan children share the parent's
            assert "02:42:" + ":".join(f"{int(x):02x}" for x in ip_a.split(".")) in link
        routes = mr.ok("exec", "mva", "ip", "route")
        assert f"default via {ROUTER} dev eth0" in routes
        # child to child, and out on the wire to the LAN's router
        assert " 0% packet loss" in mr.ok("exec", "mva", "ping", "-c1", "-W2", ip_b)
        assert " 0% packet loss" in mr.ok("exec", "mvb", "ping", "-c1", "-W2", ROUTER)
        # the LAN sees the container as a machine of its own: its address, no NAT
        assert " 0% packet loss" in sh("ip", "netns", "exec", ns, "busybox", "ping", "-c1",
                                       "-W2", ip_a).stdout
        # and the host cannot reach its children through the parent (the address is routed
        # out of the parent for this test's sake: otherwise the host has no route at all)
        sh("ip", "route", "add", SUBNET, "dev", parent)
        miss = sh("busybox", "ping", "-c1", "-W1", ip_a, check=False)
        assert miss.returncode == 1 and "100% packet loss" in miss.stdout
        mr.ok("network", "disconnect", net, "mvb")
        assert "eth0" not in mr.ok("exec", "mvb", "ip", "-o", "link")
        mr.ok("rm", "-f", "mva", "mvb")
        mr.ok("network", "rm", net)
    finally:
        mr("rm", "-f", "mva", "mvb")
        mr("network", "rm", net)


def test_two_macvlan_containers_and_the_lan_reach_each_other(mr, lan):
    why = kernel_has("macvlan")
    if why:
        pytest.skip(why)
    on_the_wire(mr, lan, "macvlan", "bridge")


def test_two_ipvlan_containers_and_the_lan_reach_each_other(mr, lan):
    why = kernel_has("ipvlan")
    if why:
        pytest.skip(why)
    on_the_wire(mr, lan, "ipvlan", "l2")


def test_an_unknown_parent_is_one_line_and_leaves_no_network(mr):
    r = mr("network", "create", "-d", "macvlan", "--subnet", SUBNET, "-o", "parent=nope9",
           "mvbad")
    assert r.returncode == 1 or r.returncode == 125
    assert r.stderr.count("\n") == 1 and "parent interface 'nope9' was not found" in r.stderr
    assert "mvbad" not in mr.ok("network", "ls")
