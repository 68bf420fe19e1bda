"""macvlan and ipvlan networks: containers straight on a host interface's wire, no bridge.

    the LAN ── parent (eth1 on the host) ─┬─ eth0 of container A  (macvlan: its own MAC)
                                           └─ eth0 of container B
    host ──X── A, B   (the parent's own traffic never loops back into its children)

A bridge network hides its containers behind the host (a bridge, NAT, published ports).
A macvlan network puts each container on the parent interface's own segment instead: the
container's `eth0` is a child link of the parent with a MAC address of its own, so the LAN's
switch and router see it as one more machine (the address comes from the network's --subnet,
which should be the LAN's, and the default route goes to --gateway, the LAN's router). No NAT,
no published ports: the container's address *is* reachable. ipvlan does the same with the
parent's MAC for every child (l2: one segment, neighbours resolved by ARP; l3: the parent routes
between its children and the wire, no broadcast), for switches that allow one MAC per port.

The rule to remember (Docker's documentation says it too): **the host cannot reach its own
macvlan children** through the parent. A frame the host sends out of the parent leaves on the
wire and never comes back in to a child: the kernel delivers child-to-child traffic (bridge
mode) but not parent-to-child. Reaching them from the host needs a macvlan child of its own
on the host, which minirun does not make.

The modes (`-o macvlan_mode=`, `-o ipvlan_mode=`): macvlan bridge (the default, children talk
to each other inside the kernel), private, vepa (through an external switch), passthru (one
child takes the parent); ipvlan l2 (the default), l3, l3s. The parent must exist when the network
is made (`-o parent=IFACE`). Docker makes a dummy parent when none is given and a VLAN
sub-interface for `parent=eth0.10`; minirun asks for an existing interface instead.

The child is made with pyroute2 (kernel/netlink.py add_macvlan) in the host's namespace,
where the parent is, and born directly inside the container's namespace (IFLA_NET_NS_FD), named
there as eth0: the name is unique per namespace, so the host's own eth0 does not clash.
"""

from __future__ import annotations

import os

from .networks import InvalidNetwork, Network

DRIVERS = ("macvlan", "ipvlan")
MODES = {"macvlan": ("bridge", "private", "vepa", "passthru"), "ipvlan": ("l2", "l3", "l3s")}
DEFAULT_MODE = {"macvlan": "bridge", "ipvlan": "l2"}
OPTIONS = {"macvlan": ("parent", "macvlan_mode"), "ipvlan": ("parent", "ipvlan_mode")}


def check_options(name: str, driver: str, options: dict) -> dict:
    """The -o options of a macvlan/ipvlan network, checked and completed with the mode."""
    for key in options:
        if key not in OPTIONS[driver]:
            raise InvalidNetwork(f"network {name}: option {key} is not supported by the {driver} "
                                 f"driver (use {' or '.join(OPTIONS[driver])})")
    parent = options.get("parent", "")
    if not parent:
        raise InvalidNetwork(f"network {name}: the {driver} driver needs -o parent=IFACE, the "
                             "host interface whose wire its containers join")
    if "/" in parent or parent in (".", "..") or len(parent) > 15 or \
            not os.path.exists(f"/sys/class/net/{parent}"):
        raise InvalidNetwork(f"network {name}: parent interface {parent!r} was not found on the "
                             "host (see `ip link`)")
    mode_key = f"{driver}_mode"
    mode = options.get(mode_key) or DEFAULT_MODE[driver]
    if mode not in MODES[driver]:
        raise InvalidNetwork(f"network {name}: {mode_key} {mode!r} is not one of "
                             f"{', '.join(MODES[driver])}")
    return {**options, mode_key: mode}


def attach(pid: int, cid: str, net: Network, address: str, ifname: str,
           gateway: bool = False) -> None:
    """Give the container (its init is `pid`) a macvlan/ipvlan child of the network's parent,
    named `ifname` inside, with `address`; with `gateway`, its default route goes to the
    network's gateway (the LAN's router). The MTU is the parent's unless the network sets one
    (-o com.docker.network.driver.mtu): a child cannot send more than its parent's wire."""
    import socket

    from ..kernel.netlink import Netlink

    kind, parent = net.Driver, net.Options["parent"]
    mode = net.Options.get(f"{kind}_mode") or DEFAULT_MODE[kind]
    netns = f"/proc/{pid}/ns/net"
    fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with Netlink() as nl:
            # macvlan: Docker's MAC rule (02:42 + the IPv4 address); ipvlan has the parent's.
            mac = b"\x02\x42" + socket.inet_aton(address) if kind == "macvlan" else None
            nl.add_macvlan(ifname, parent, kind, mode, fd, f"container {cid[:12]}",
                           mtu=net.MTU or None, mac=mac)
    finally:
        os.close(fd)
    with Netlink.inside(netns, f"container {cid[:12]}") as c:
        c.add_address(ifname, address, net.prefixlen)
        c.set_link(ifname, up=True)
        if gateway:
            c.add_default_route(net.Gateway, ifname)


def detach(pid: int, cid: str, ifname: str) -> None:
    """`network disconnect`: the child lives only in the container's namespace; delete it there
    (there is no host end to delete, unlike a veth)."""
    from ..kernel.netlink import Netlink

    with Netlink.inside(f"/proc/{pid}/ns/net", f"container {cid[:12]}") as c:
        c.delete_link(ifname, "disconnect: the container leaves the parent's wire")
