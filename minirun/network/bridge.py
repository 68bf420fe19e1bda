"""A network's bridge on the host, and a container's veth pair plugged into it.

    host:       minirun0 (10.222.0.1/24) ── mrXXXXXXXXXX (host end of the veth)
                                               │  (a virtual cable)
    container:                              eth0 (10.222.0.2/24), default via 10.222.0.1

The bridge is made when a network is first used: the gateway address, up, `route_localnet` on
it (so 127.0.0.1 can be DNATed to a container: nat.py) and IPv4 forwarding on for the host
(its old value is kept in /run/minirun-ip_forward and put back when the last minirun
bridge on the host goes, whichever --root made it). A dual-stack network's bridge (--ipv6) also
gets its IPv6 gateway and turns IPv6 forwarding on, kept and put back the same way; no bridge
takes router advertisements (accept_ra=0). A container's veth is made with its inner end born
inside the container's network namespace, named eth0 there; when the namespace dies (the
container's last process exits), the kernel deletes both ends, so an exited or crashed
container leaves no link behind.
Links, addresses and routes are rtnetlink requests made with pyroute2 (kernel/netlink.py),
imported only here, in the functions that make or remove links: the CLI imports this module to
plan a container's network, and must not pay pyroute2's ~100 ms for that (engine/nethelper.py
says who pays it, and when). `lo` is not made here: the runtime's init brings it up
(kernel/loopback.py).
"""

from __future__ import annotations

import os
import socket

from ..errors import MinirunError
from ..kernel import libc
from .networks import Network, NetworkError

SYSCTL = "/proc/sys/net/ipv4"
SAVED_FORWARD = "/run/minirun-ip_forward"  # host-wide: every --root's bridges share the sysctl
# IPv6 (a dual-stack network's bridge, network/ipv6.py): net.ipv6.conf.all.forwarding, kept
# and put back as ip_forward is. The kernel copies a write of `all` to every interface's own
# `forwarding`, for IPv6 as for IPv4, so what is put back is the `all` value.
SYSCTL6 = "/proc/sys/net/ipv6"
SAVED_FORWARD6 = "/run/minirun-ipv6_forwarding"


ALIAS = "minirun network"  # every minirun bridge's ifalias: "minirun network NAME"


def minirun_bridges() -> list[str]:
    """The minirun bridges on the host, made by any --root: by their alias (ALIAS), or by their
    default names (minirun0, mr-<id>, mrb-<hash>) for bridges made before the alias was set."""
    try:
        names = os.listdir("/sys/class/net")
    except OSError:
        return []
    out = []
    for n in names:
        if not os.path.isdir(f"/sys/class/net/{n}/bridge"):
            continue
        try:
            with open(f"/sys/class/net/{n}/ifalias") as f:
                alias = f.read()
        except OSError:
            alias = ""
        if alias.startswith(ALIAS) or n == "minirun0" or n.startswith(("mr-", "mrb-")):
            out.append(n)
    return out


def any_minirun_bridge() -> bool:
    """Is any minirun bridge left on the host, made by any --root?"""
    return bool(minirun_bridges())


def any_dual_stack_bridge() -> bool:
    """Is any minirun bridge left with a global IPv6 address (a dual-stack network's)? Read
    from /proc/net/if_inet6: address, ifindex, prefix length, scope (00: global), flags, name."""
    ours = set(minirun_bridges())
    try:
        with open("/proc/net/if_inet6") as f:
            return any(len(p) == 6 and p[5] in ours and p[3] == "00"
                       for p in (line.split() for line in f))
    except OSError:
        return False


def host_mtu() -> int:
    """The MTU of the interface behind the host's default route (1500 when there is none)."""
    try:
        with open("/proc/net/route") as f:
            next(f)
            for line in f:
                p = line.split()
                if p[1] == "00000000" and int(p[7], 16) == 0:
                    with open(f"/sys/class/net/{p[0]}/mtu") as m:
                        return int(m.read())
    except (OSError, StopIteration, ValueError):
        pass
    return 1500


def exists(name: str) -> bool:
    """Is there a link of that name on the host? ("": a macvlan/ipvlan network's, none.)"""
    return bool(name) and os.path.exists(f"/sys/class/net/{name}")


def _write(path: str, value: str, why: str) -> None:
    libc.write_file(path, value, why)


def ensure(net: Network, runroot: str) -> None:
    """The network's bridge, up with its gateway address (made now if missing)."""
    if exists(net.Bridge):
        return
    from ..kernel.netlink import Netlink  # lazy: pyroute2, ~100 ms (see the top)

    with Netlink() as nl:
        try:
            nl.add_bridge(net.Bridge, alias=f"{ALIAS} {net.Name}")
        except MinirunError as e:
            if getattr(e, "errno", 0) == 17:  # EEXIST: a parallel run made it just now
                return
            raise
        nl.add_address(net.Bridge, net.Gateway, net.prefixlen)
        if os.path.isdir(f"{SYSCTL6}/conf/{net.Bridge}"):
            # CVE-2020-13401: a container may send router advertisements into the bridge; the
            # host must not take routes or addresses from them (with forwarding on the kernel
            # ignores them anyway, unless accept_ra is 2).
            _write(f"{SYSCTL6}/conf/{net.Bridge}/accept_ra", "0", "the host takes no route "
                   "from a container's router advertisements")
        if net.EnableIPv6:
            try:
                _ipv6_on(nl, net)
            except (OSError, MinirunError) as e:
                nl.delete_link(net.Bridge, "its IPv6 side failed: no half-made bridge")
                raise NetworkError(f"network {net.Name}: cannot give bridge {net.Bridge} its "
                                   f"IPv6 gateway {net.Gateway6}: {e}") from None
        nl.set_link(net.Bridge, up=True)
    _write(f"{SYSCTL}/conf/{net.Bridge}/route_localnet", "1", "let 127.0.0.1 be DNATed to a "
           "container behind this bridge (published ports on localhost)")
    _forwarding_on(SAVED_FORWARD, f"{SYSCTL}/ip_forward", "route between the bridge and the "
                   "host's other interfaces (outbound NAT, published ports)")
    if net.EnableIPv6:
        _forwarding_on(SAVED_FORWARD6, f"{SYSCTL6}/conf/all/forwarding", "route IPv6 between "
                       "the bridge and the host's other interfaces (outbound NAT, published "
                       "ports)")


def _ipv6_on(nl, net: Network) -> None:
    """The bridge's IPv6 side: IPv6 enabled on it (a host with
    net.ipv6.conf.default.disable_ipv6=1 makes new links without it, and no address can then be
    added) and its gateway address."""
    if not os.path.isdir(f"{SYSCTL6}/conf/{net.Bridge}"):
        raise NetworkError("this host has no IPv6 (/proc/sys/net/ipv6 is missing: booted with "
                           "ipv6.disable=1?): create the network without --ipv6")
    _write(f"{SYSCTL6}/conf/{net.Bridge}/disable_ipv6", "0", "IPv6 on, on this bridge: it "
           "carries a dual-stack network")
    nl.add_address(net.Bridge, net.Gateway6, net.prefixlen6)


def _forwarding_on(saved: str, path: str, why: str) -> None:
    """Turn a forwarding sysctl on, keeping its value from before the first minirun bridge in
    `saved` (host-wide: put back by remove() when the last bridge, or dual-stack bridge, goes)."""
    with open(path) as f:
        current = f.read().strip()
    if not os.path.exists(saved):
        with open(saved, "w") as f:
            f.write(current)
    if current != "1":
        _write(path, "1", why)


def _forwarding_back(saved: str, path: str, why: str) -> None:
    """Put a forwarding sysctl back as it was before minirun's first bridge."""
    try:
        with open(saved) as f:
            old = f.read().strip()
    except FileNotFoundError:
        return
    with open(path) as f:
        if f.read().strip() != old:
            _write(path, old, why)
    os.unlink(saved)


def remove(net: Network, runroot: str, all_bridges: list[str]) -> None:
    """Delete the network's bridge; the last minirun bridge out puts ip_forward back, the
    last dual-stack one IPv6 forwarding (if a dual-stack network turned it on)."""
    if exists(net.Bridge):
        from ..kernel.netlink import Netlink  # lazy: pyroute2, ~100 ms (see the top)

        with Netlink() as nl:
            nl.delete_link(net.Bridge, "the network is gone (or unused): its bridge goes too")
    if not any_dual_stack_bridge():
        _forwarding_back(SAVED_FORWARD6, f"{SYSCTL6}/conf/all/forwarding", "no dual-stack "
                         "minirun bridge is left: IPv6 forwarding as it was before minirun")
    if any(exists(b) for b in all_bridges if b != net.Bridge) or any_minirun_bridge():
        return
    _forwarding_back(SAVED_FORWARD, f"{SYSCTL}/ip_forward", "no minirun bridge is left: IPv4 "
                     "forwarding as it was before minirun")


def veth_name(cid: str, net: Network) -> str:
    """The host end's name: 15 bytes at most (IFNAMSIZ), unique per container and network."""
    import hashlib  # lazy: ~2 ms (OpenSSL); --network none makes no veth (start-up budget)

    return "mr" + hashlib.sha256((cid + net.Id).encode()).hexdigest()[:12]


def mac_of(address: str) -> str:
    """Docker's rule: 02:42 and the four bytes of the IPv4 address. A container that gets an
    address someone had before also gets their MAC, so the neighbours' ARP caches stay right."""
    return ":".join(f"{b:02x}" for b in b"\x02\x42" + socket.inet_aton(address))


def attach(pid: int, cid: str, net: Network, address: str, ifname: str, mtu: int,
           gateway: bool = False, address6: str | None = None, mac: str | None = None) -> str:
    """Plug the container (its init is `pid`) into `net` as `ifname` with `address` (and
    `address6` on a dual-stack network); with `gateway`, its default routes (IPv4, and IPv6 if
    it has address6) go through this network's bridge; `mac`: the container end's MAC
    (--mac-address), else mac_of(address). Returns the host end's name."""
    from ..kernel.netlink import Netlink

    host_end = veth_name(cid, net)
    netns = f"/proc/{pid}/ns/net"
    fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with Netlink() as nl:
            nl.add_veth(host_end, ifname, fd, mtu, f"container {cid[:12]}",
                        peer_mac=bytes.fromhex(mac.replace(":", "")) if mac else
                        b"\x02\x42" + socket.inet_aton(address))
            nl.set_link(host_end, master=net.Bridge, up=True)
    finally:
        os.close(fd)
    try:
        _write(f"/sys/class/net/{host_end}/brport/hairpin_mode", "1", "hairpin: a packet may "
               "leave by the port it came in, so a container reaches its own published port")
    except OSError:
        pass
    if address6:
        _ipv6_inside(netns, cid, ifname)
    with Netlink.inside(netns, f"container {cid[:12]}") as c:
        c.add_address(ifname, address, net.prefixlen)
        if address6:
            c.add_address(ifname, address6, net.prefixlen6)
        c.set_link(ifname, up=True)
        if gateway:
            c.add_default_route(net.Gateway, ifname)
            if address6:
                c.add_default_route(net.Gateway6, ifname)
    return host_end


def _ipv6_inside(netns: str, cid: str, ifname: str) -> None:
    """IPv6 on, on the container's interface: a new network namespace starts from the kernel's
    defaults (net.core.devconf_inherit_init_net=0), which a host booted with
    ipv6.disable_ipv6=1 turns off; then no address could be added. /proc/sys/net is the
    network namespace of the thread that opens it: enter the container's for one write."""
    here = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc.setns(netns, libc.CLONE_NEWNET, f"enter container {cid[:12]}'s network namespace "
                   "for one write: /proc/sys/net is the namespace of who opens it")
        try:
            _write(f"{SYSCTL6}/conf/{ifname}/disable_ipv6", "0", "IPv6 on, on its interface "
                   "of a dual-stack network")
        finally:
            libc.setns(f"/proc/self/fd/{here}", libc.CLONE_NEWNET, "and straight back")
    finally:
        os.close(here)


def detach(cid: str, net: Network) -> None:
    """Unplug a running container from net: deleting the host end deletes its peer too."""
    name = veth_name(cid, net)
    if exists(name):
        from ..kernel.netlink import Netlink  # lazy: pyroute2, ~100 ms (see the top)

        with Netlink() as nl:
            nl.delete_link(name, "disconnect: one end of a veth goes, and the other with it")


