"""A network's bridge on the host, and a container's veth pair plugged into it.

    host:       minirun0 (10.222.0.1/24) ── mrXXXXXXXXXX (host end of the veth)
                                               │  (a virtual cable)
    container:                              eth0 (10.222.0.2/24), default via 10.222.0.1

The bridge is made when a network is first used: the gateway address, up, `route_localnet` on
it (so 127.0.0.1 can be DNATed to a container: nat.py) and IPv4 forwarding on for the host
(its old value is kept in /run/minirun-ip_forward and put back when the last minirun
bridge on the host goes, whichever --root made it). A container's veth is made with its inner end born inside the container's
network namespace, named eth0 there; when the namespace dies (the container's last process
exits), the kernel deletes both ends, so an exited or crashed container leaves no link behind.
Links, addresses and routes are rtnetlink requests made with pyroute2 (kernel/netlink.py),
imported only here, in the functions that make or remove links: the CLI imports this module to
plan a container's network, and must not pay pyroute2's ~100 ms for that (engine/nethelper.py
says who pays it, and when). The one exception is `lo`: see loopback_up.
"""

from __future__ import annotations

import os
import socket

from .. import trace
from ..errors import KernelError, MinirunError
from ..kernel import libc
from .networks import Network

SYSCTL = "/proc/sys/net/ipv4"
SAVED_FORWARD = "/run/minirun-ip_forward"  # host-wide: every --root's bridges share the sysctl


def any_minirun_bridge() -> bool:
    """Is any minirun bridge (minirun0, mr-<id>) left on the host, made by any --root?"""
    try:
        names = os.listdir("/sys/class/net")
    except OSError:
        return False
    return any((n == "minirun0" or n.startswith(("mr-", "mrb-"))) and os.path.isdir(
        f"/sys/class/net/{n}/bridge") for n in names)


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
    from ..kernel.netlink import Netlink

    with Netlink() as nl:
        try:
            nl.add_bridge(net.Bridge)
        except MinirunError as e:
            if getattr(e, "errno", 0) == 17:  # EEXIST: a parallel run made it just now
                return
            raise
        nl.add_address(net.Bridge, net.Gateway, net.prefixlen)
        nl.set_link(net.Bridge, up=True)
    _write(f"{SYSCTL}/conf/{net.Bridge}/route_localnet", "1", "let 127.0.0.1 be DNATed to a "
           "container behind this bridge (published ports on localhost)")
    saved = SAVED_FORWARD
    with open(f"{SYSCTL}/ip_forward") as f:
        current = f.read().strip()
    if not os.path.exists(saved):
        with open(saved, "w") as f:
            f.write(current)
    if current != "1":
        _write(f"{SYSCTL}/ip_forward", "1", "route between the bridge and the host's other "
               "interfaces (outbound NAT, published ports)")


def remove(net: Network, runroot: str, all_bridges: list[str]) -> None:
    """Delete the network's bridge; the last minirun bridge out puts ip_forward back."""
    if exists(net.Bridge):
        from ..kernel.netlink import Netlink

        with Netlink() as nl:
            nl.delete_link(net.Bridge, "the network is gone (or unused): its bridge goes too")
    if any(exists(b) for b in all_bridges if b != net.Bridge) or any_minirun_bridge():
        return
    saved = SAVED_FORWARD
    try:
        with open(saved) as f:
            old = f.read().strip()
    except FileNotFoundError:
        return
    with open(f"{SYSCTL}/ip_forward") as f:
        if f.read().strip() != old:
            _write(f"{SYSCTL}/ip_forward", old, "no minirun bridge is left: IPv4 forwarding "
                   "as it was before minirun")
    os.unlink(saved)


def veth_name(cid: str, net: Network) -> str:
    """The host end's name: 15 bytes at most (IFNAMSIZ), unique per container and network."""
    import hashlib  # lazy: ~2 ms (OpenSSL); --network none makes no veth (start-up budget)

    return "mr" + hashlib.sha256((cid + net.Id).encode()).hexdigest()[:12]


def mac_of(address: str) -> str:
    """Docker's rule: 02:42 and the four bytes of the IPv4 address. A container that gets an
    address someone had before also gets their MAC, so the neighbours' ARP caches stay right."""
    return ":".join(f"{b:02x}" for b in b"\x02\x42" + socket.inet_aton(address))


def attach(pid: int, cid: str, net: Network, address: str, ifname: str, mtu: int,
           gateway: bool = False) -> str:
    """Plug the container (its init is `pid`) into `net` as `ifname` with `address`; with
    `gateway`, its default route goes through this network's bridge. Returns the host end's
    name."""
    from ..kernel.netlink import Netlink

    host_end = veth_name(cid, net)
    netns = f"/proc/{pid}/ns/net"
    fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with Netlink() as nl:
            nl.add_veth(host_end, ifname, fd, mtu, f"container {cid[:12]}",
                        peer_mac=b"\x02\x42" + socket.inet_aton(address))
            nl.set_link(host_end, master=net.Bridge, up=True)
    finally:
        os.close(fd)
    try:
        _write(f"/sys/class/net/{host_end}/brport/hairpin_mode", "1", "hairpin: a packet may "
               "leave by the port it came in, so a container reaches its own published port")
    except OSError:
        pass
    with Netlink.inside(netns, f"container {cid[:12]}") as c:
        c.add_address(ifname, address, net.prefixlen)
        c.set_link(ifname, up=True)
        if gateway:
            c.add_default_route(net.Gateway, ifname)
    return host_end


def detach(cid: str, net: Network) -> None:
    """Unplug a running container from net: deleting the host end deletes its peer too."""
    name = veth_name(cid, net)
    if exists(name):
        from ..kernel.netlink import Netlink

        with Netlink() as nl:
            nl.delete_link(name, "disconnect: one end of a veth goes, and the other with it")


def loopback_up(pid: int, cid: str) -> None:
    """`ip link set lo up` inside the container, with the ioctl that ifconfig uses
    (SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP) instead of pyroute2: `--network none` needs
    nothing else, and pyroute2's ~100 ms import would be a third of its whole run."""
    import fcntl
    import struct

    here = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc.setns(f"/proc/{pid}/ns/net", libc.CLONE_NEWNET, f"enter container {cid[:12]}'s "
                   "network namespace for one socket(2): an ioctl acts in the socket's namespace")
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        finally:
            libc.setns(f"/proc/self/fd/{here}", libc.CLONE_NEWNET, "and straight back")
    finally:
        os.close(here)
    with sock:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack_from("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, req))[1]
        if trace.enabled:
            trace.step(f"ioctl(SIOCSIFFLAGS, lo, flags={flags | IFF_UP:#x}) in container "
                       f"{cid[:12]}", "bring the loopback up: 127.0.0.1 works inside")
        try:
            fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))
        except OSError as e:
            raise KernelError("ioctl", f"SIOCSIFFLAGS lo up (container {cid[:12]})",
                              e.errno or 1) from None


SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
