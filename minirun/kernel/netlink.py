"""rtnetlink: how `ip link`, `ip addr` and `ip route` talk to the kernel, in ~200 lines.

A container's network is built from a handful of netlink requests: make a bridge, make a veth
pair with one end born inside the container's network namespace, set links up, add an address,
add a default route. Each request is a message on an AF_NETLINK socket:

    nlmsghdr   length, type (RTM_NEWLINK ...), flags (REQUEST|ACK|CREATE|EXCL), seq, pid
    a fixed header for the type: ifinfomsg (links), ifaddrmsg (addresses), rtmsg (routes)
    attributes: (length, type, value) records, 4-byte aligned, nestable (rtattr)

and the kernel answers each with an NLMSG_ERROR message whose error is 0 (done) or -errno.

Why not pyroute2? It does all this and more, but `import pyroute2` costs ~100 ms here (its
`__init__` imports everything; `python3 -X importtime -c 'import pyroute2'`, 0.9.7), two thirds
of a whole `minirun run --rm --network none busybox true`. The tests use it as the oracle:
tests/integration/test_netlink_oracle.py makes a bridge, a veth pair, addresses and a default
route with this module, in network namespaces of its own, and reads them back with pyroute2.

Which namespace a request acts in: the network namespace of the *socket*, fixed when the socket
is created. `Netlink.inside(netns_fd)` makes a socket in a container's namespace by switching
into it with setns(2) for the one socket(2) call and straight back: the process stays where it
was, and the socket keeps talking to the container's namespace.
"""

from __future__ import annotations

import errno as _errno
import ipaddress
import os
import socket
import struct

from .. import trace
from ..errors import KernelError
from . import libc

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_DELLINK = 16, 17
RTM_NEWADDR = 20
RTM_NEWROUTE = 24
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400

IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO = 1, 3, 4, 10, 18
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
RTA_GATEWAY, RTA_OIF = 5, 4
IFF_UP = 0x1
RT_TABLE_MAIN, RTPROT_BOOT, RTN_UNICAST, RT_SCOPE_UNIVERSE = 254, 3, 1, 0

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")


def attr(kind: int, value: bytes | str | int | list) -> bytes:
    """One rtattr: strings NUL-terminated, ints as u32, lists of attrs nested."""
    if isinstance(value, str):
        value = value.encode() + b"\0"
    elif isinstance(value, int):
        value = struct.pack("=I", value)
    elif isinstance(value, list):
        value = b"".join(value)
    body = struct.pack("=HH", 4 + len(value), kind) + value
    return body + b"\0" * (-len(body) % 4)


def ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, flags, change)


class Netlink:
    """An rtnetlink socket, in our own network namespace or (inside()) a container's."""

    def __init__(self, sock: socket.socket | None = None, where: str = "host") -> None:
        self.sock = sock or socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                          NETLINK_ROUTE)
        self.where = where
        self.seq = 0

    @classmethod
    def inside(cls, netns_path: str, where: str) -> "Netlink":
        """A socket in the network namespace behind netns_path (/proc/PID/ns/net)."""
        here = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            libc.setns(netns_path, libc.CLONE_NEWNET, f"enter {where}'s network namespace for "
                       "one socket(2): a netlink socket acts in the namespace it was made in")
            try:
                sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                     NETLINK_ROUTE)
            finally:
                libc.setns(f"/proc/self/fd/{here}", libc.CLONE_NEWNET, "and straight back")
        finally:
            os.close(here)
        return cls(sock, where)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Netlink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request, one acknowledgement -----------------------------------------------------
    def request(self, kind: int, flags: int, payload: bytes, shown: str, why: str) -> None:
        if trace.enabled:
            trace.step(f"netlink({self.where}) {shown}", why)
        self.seq += 1
        msg = _NLMSGHDR.pack(_NLMSGHDR.size + len(payload), kind,
                             NLM_F_REQUEST | NLM_F_ACK | flags, self.seq, 0) + payload
        self.sock.send(msg)
        while True:
            data = self.sock.recv(65536)
            off = 0
            while off + _NLMSGHDR.size <= len(data):
                length, mtype, _, seq, _ = _NLMSGHDR.unpack_from(data, off)
                if mtype == NLMSG_ERROR and seq == self.seq:
                    err = -struct.unpack_from("=i", data, off + _NLMSGHDR.size)[0]
                    if err:
                        raise KernelError("netlink", shown, err)
                    return
                off += max(length, _NLMSGHDR.size)

    # -- links --------------------------------------------------------------------------------
    def add_bridge(self, name: str) -> None:
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                     ifinfo() + attr(IFLA_IFNAME, name) +
                     attr(IFLA_LINKINFO, [attr(IFLA_INFO_KIND, "bridge")]),
                     f"RTM_NEWLINK {name} type bridge", "a virtual switch: the veths of the "
                     "network's containers plug into it, and the host routes to it")

    def add_veth(self, name: str, peer: str, peer_netns_fd: int, mtu: int, where: str,
                 peer_mac: bytes | None = None) -> None:
        """A veth pair: `name` here, `peer` born directly in the namespace peer_netns_fd."""
        peer_info = ifinfo() + attr(IFLA_IFNAME, peer) + attr(IFLA_NET_NS_FD, peer_netns_fd) + \
            attr(IFLA_MTU, mtu) + (attr(IFLA_ADDRESS, peer_mac) if peer_mac else b"")
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                     ifinfo() + attr(IFLA_IFNAME, name) + attr(IFLA_MTU, mtu) +
                     attr(IFLA_LINKINFO, [attr(IFLA_INFO_KIND, "veth"),
                                          attr(IFLA_INFO_DATA, [attr(VETH_INFO_PEER, peer_info)])]),
                     f"RTM_NEWLINK {name} type veth peer {peer} netns {where} mtu {mtu}",
                     "a virtual cable: what enters one end leaves the other; one end stays "
                     "on the host, the other is created inside the container")

    def set_link(self, name: str, up: bool | None = None, master: str | None = None) -> None:
        index = self.index(name)
        attrs = b""
        shown = f"RTM_NEWLINK {name}"
        if master is not None:
            attrs += attr(IFLA_MASTER, self.index(master))
            shown += f" master {master}"
        flags = change = 0
        if up is not None:
            flags, change = (IFF_UP if up else 0), IFF_UP
            shown += " up" if up else " down"
        self.request(RTM_NEWLINK, 0, ifinfo(index, flags, change) + attrs, shown,
                     f"plug it into the bridge {master}" if master else "bring the link up")

    def delete_link(self, name: str, why: str) -> None:
        self.request(RTM_DELLINK, 0, ifinfo(self.index(name)), f"RTM_DELLINK {name}", why)

    def index(self, name: str) -> int:
        """The link's ifindex (names are per namespace: ask in the socket's one)."""
        if self.where == "host":
            try:
                return socket.if_nametoindex(name)
            except OSError:
                raise KernelError("if_nametoindex", name, _errno.ENODEV) from None
        return _index_in(self, name)

    # -- addresses and routes -----------------------------------------------------------------
    def add_address(self, name: str, address: str, prefixlen: int) -> None:
        net = ipaddress.ip_network(f"{address}/{prefixlen}", strict=False)
        raw = socket.inet_aton(address)
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL,
                     _IFADDRMSG.pack(socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE,
                                     self.index(name)) +
                     attr(IFA_LOCAL, raw) + attr(IFA_ADDRESS, raw) +
                     attr(IFA_BROADCAST, socket.inet_aton(str(net.broadcast_address))),
                     f"RTM_NEWADDR {address}/{prefixlen} dev {name}",
                     "its address; the kernel adds the route to the subnet with it")

    def add_default_route(self, gateway: str, name: str) -> None:
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL,
                     _RTMSG.pack(socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT,
                                 RT_SCOPE_UNIVERSE, RTN_UNICAST, 0) +
                     attr(RTA_GATEWAY, socket.inet_aton(gateway)) +
                     attr(RTA_OIF, self.index(name)),
                     f"RTM_NEWROUTE default via {gateway} dev {name}",
                     "everything not on the subnet goes to the bridge, the host routes it on")


def _index_in(nl: Netlink, name: str) -> int:
    """ifindex of `name` in the socket's namespace: RTM_GETLINK by name."""
    RTM_GETLINK, RTM_NEWLINK_REPLY = 18, 16
    nl.seq += 1
    payload = ifinfo() + attr(IFLA_IFNAME, name)
    nl.sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(payload), RTM_GETLINK, NLM_F_REQUEST,
                                nl.seq, 0) + payload)
    data = nl.sock.recv(65536)
    off = 0
    while off + _NLMSGHDR.size <= len(data):
        length, mtype, _, seq, _ = _NLMSGHDR.unpack_from(data, off)
        if seq == nl.seq and mtype == RTM_NEWLINK_REPLY:
            return _IFINFOMSG.unpack_from(data, off + _NLMSGHDR.size)[2]
        if seq == nl.seq and mtype == NLMSG_ERROR:
            err = -struct.unpack_from("=i", data, off + _NLMSGHDR.size)[0]
            raise KernelError("netlink", f"RTM_GETLINK {name} ({nl.where})", err or _errno.ENODEV)
        off += max(length, _NLMSGHDR.size)
    raise KernelError("netlink", f"RTM_GETLINK {name}", _errno.ENODEV)
