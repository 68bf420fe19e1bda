"""rtnetlink through pyroute2: what `ip link`, `ip addr` and `ip route` ask the kernel.

A container's network is built from a handful of rtnetlink requests: make a bridge, make a veth
pair with one end born inside the container's network namespace, set links up, add an address,
add a default route. Each is one message on an AF_NETLINK socket (a header, a fixed part such
as ifinfomsg, then nested attributes); the kernel answers each with an acknowledgement or an
errno. pyroute2 builds and parses those messages; each method here is one of them:

    this module                     ip(8)                                   pyroute2 (IPRoute)
    add_bridge(br)                  ip link add br type bridge              link("add", kind="bridge")
    add_veth(h, p, ns, mtu)         ip link add h type veth peer p netns N  link("add", kind="veth",
                                                                              peer={... net_ns_fd})
    add_macvlan(n, parent, ns)      ip link add n link parent type macvlan  link("add", kind="macvlan",
                                      mode bridge netns N                     link=..., net_ns_fd=...)
    set_link(n, up, master)         ip link set n master br up              link("set", master=, state=)
    delete_link(n)                  ip link del n                           link("del", index=)
    add_address(n, a, len)          ip addr add a/len dev n                 addr("add", ...)
    add_default_route(gw, n)        ip route add default via gw dev n       route("add", dst=default)

Which namespace a request acts in: the network namespace of the *socket*, fixed when the socket
is created. `Netlink.inside(path)` makes the socket in a container's namespace by switching
into it with setns(2) for the one socket(2) call and straight back, and hands it to IPRoute
(`use_socket`): the process stays where it was. (pyroute2's own `netns=` argument forks a child
to make that socket: a fork of an interpreter that has pyroute2 loaded, for nothing.)

Cost: `import pyroute2` takes ~90 ms here (its `__init__` imports every module it has;
_import_iproute loads only IPRoute's: ~60 ms). So nothing on a start path imports this module
itself: the monitor forks a network helper when it
starts (engine/nethelper.py), which imports pyroute2 while the CLI and the runtime make the
container, and does the plumbing when the namespaces exist. Commands that change a network by
hand (`network rm`, `network connect`) pay the import; they are not on a container's start.
"""

from __future__ import annotations

import os
import socket
import sys

from .. import trace
from ..errors import KernelError
from . import libc

NETLINK_ROUTE = 0


def _import_iproute():
    """pyroute2's IPRoute and NetlinkError, without running pyroute2/__init__.py.

    That `__init__` imports every API pyroute2 has (IPDB, NDB, nftables, conntrack, wireless,
    plan9 ...): ~90 ms here, of which IPRoute needs ~60. So the package is registered without
    running it, the two modules we use are imported (their own imports of pyroute2.config,
    .netns, .netlink ... work as usual), and the registration is dropped again: a later plain
    `import pyroute2` in this process runs the real __init__ and finds those modules loaded.
    Whatever goes wrong on the way, the plain import is the fallback."""
    if "pyroute2" not in sys.modules:
        import importlib.machinery  # in here: only while pyroute2 is not loaded (docstring)
        import importlib.util

        spec = importlib.machinery.PathFinder.find_spec("pyroute2")
        if spec is not None and spec.submodule_search_locations:
            sys.modules["pyroute2"] = importlib.util.module_from_spec(spec)
            try:
                # in here: IPRoute's modules without pyroute2/__init__.py (see the docstring)
                from pyroute2.iproute.linux import IPRoute
                from pyroute2.netlink.exceptions import NetlinkError

                return IPRoute, NetlinkError
            except ImportError:
                pass
            finally:
                del sys.modules["pyroute2"]
    # in here: the fallback, the plain import with pyroute2's __init__ (~90 ms)
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    return IPRoute, NetlinkError


IPRoute, NetlinkError = _import_iproute()


# IFLA_MACVLAN_MODE and IFLA_IPVLAN_MODE values (linux/if_link.h): pyroute2 takes numbers.
_LINK_MODES = {"macvlan": {"private": 1, "vepa": 2, "bridge": 4, "passthru": 8, "source": 16},
               "ipvlan": {"l2": 0, "l3": 1, "l3s": 2}}


class Netlink:
    """An rtnetlink connection, in our own network namespace or (inside()) a container's."""

    def __init__(self, sock: socket.socket | None = None, where: str = "host") -> None:
        self.where = where
        # pyroute2 runs its socket as an asyncio datagram endpoint: SOCK_DGRAM, which netlink
        # treats exactly like SOCK_RAW.
        self.ipr = IPRoute(use_socket=sock) if sock is not None else IPRoute()
        self._sock = sock

    @classmethod
    def inside(cls, netns_path: str, where: str) -> "Netlink":
        """A connection in the network namespace behind netns_path (/proc/PID/ns/net)."""
        here = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            libc.setns(netns_path, libc.CLONE_NEWNET, f"enter {where}'s network namespace for "
                       "one socket(2): a netlink socket acts in the namespace it was made in")
            try:
                sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC,
                                     NETLINK_ROUTE)
            finally:
                libc.setns(f"/proc/self/fd/{here}", libc.CLONE_NEWNET, "and straight back")
        finally:
            os.close(here)
        return cls(sock, where)

    def close(self) -> None:
        self.ipr.close()
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> "Netlink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request, one acknowledgement -----------------------------------------------------
    def _do(self, shown: str, why: str, call, *args, **kwargs):
        """Narrate (with --trace), send, and turn pyroute2's NetlinkError into ours."""
        if trace.enabled:
            trace.step(f"netlink({self.where}) {shown}", why)
        try:
            return call(*args, **kwargs)
        except NetlinkError as e:
            raise KernelError("netlink", f"{shown} ({self.where})", e.code) from None

    # -- links --------------------------------------------------------------------------------
    def add_bridge(self, name: str, mtu: int | None = None, alias: str = "") -> None:
        """A bridge; `alias` (IFLA_IFALIAS, /sys/class/net/NAME/ifalias, `ip link`'s "alias")
        says whose it is, whatever its name."""
        extra = {"mtu": mtu} if mtu else {}
        self._do(f'link("add", ifname="{name}", kind="bridge")', "a virtual switch: the veths "
                 "of the network's containers plug into it, and the host routes to it",
                 self.ipr.link, "add", ifname=name, kind="bridge", **extra)
        if alias:
            self._do(f'link("set", ifname="{name}", ifalias="{alias}")', "a label on the link: "
                     "minirun finds its own bridges by it, even under a name given with -o "
                     "com.docker.network.bridge.name", self.ipr.link, "set",
                     index=self.index(name), ifalias=alias)

    def add_veth(self, name: str, peer: str, peer_netns_fd: int, mtu: int, where: str,
                 peer_mac: bytes | None = None) -> None:
        """A veth pair: `name` here, `peer` born directly in the namespace peer_netns_fd."""
        peer_spec: dict = {"ifname": peer, "net_ns_fd": peer_netns_fd, "mtu": mtu}
        if peer_mac:
            peer_spec["address"] = ":".join(f"{b:02x}" for b in peer_mac)
        self._do(f'link("add", ifname="{name}", kind="veth", peer={{"ifname": "{peer}", '
                 f'"net_ns_fd": <{where}>}}, mtu={mtu})',
                 "a virtual cable: what enters one end leaves the other; one end stays on the "
                 "host, the other is created inside the container",
                 self.ipr.link, "add", ifname=name, kind="veth", mtu=mtu, peer=peer_spec)

    def add_macvlan(self, name: str, parent: str, kind: str, mode: str, netns_fd: int,
                    where: str, mtu: int | None = None, mac: bytes | None = None) -> None:
        """A macvlan (or ipvlan) child of `parent`, born in the namespace netns_fd: the
        container gets its own MAC (macvlan) or shares the parent's (ipvlan) on the parent's
        wire, with no bridge on the host in between."""
        spec: dict = {"ifname": name, "kind": kind, "link": self.index(parent),
                      "net_ns_fd": netns_fd, f"{kind}_mode": _LINK_MODES[kind][mode]}
        if mtu:
            spec["mtu"] = mtu
        if mac:
            spec["address"] = ":".join(f"{b:02x}" for b in mac)
        self._do(f'link("add", ifname="{name}", kind="{kind}", link={parent}, '
                 f'{kind}_mode="{mode}", net_ns_fd=<{where}>)',
                 f"a {kind} child of {parent}, straight on its wire: no bridge, no NAT",
                 self.ipr.link, "add", **spec)

    def set_link(self, name: str, up: bool | None = None, master: str | None = None) -> None:
        index = self.index(name)
        spec: dict = {}
        shown = f'link("set", ifname="{name}"'
        if master is not None:
            spec["master"] = self.index(master)
            shown += f', master={master}'
        if up is not None:
            spec["state"] = "up" if up else "down"
            shown += f', state="{spec["state"]}"'
        self._do(shown + ")", f"plug it into the bridge {master}" if master else
                 "bring the link up", self.ipr.link, "set", index=index, **spec)

    def delete_link(self, name: str, why: str) -> None:
        self._do(f'link("del", ifname="{name}")', why, self.ipr.link, "del",
                 index=self.index(name))

    def index(self, name: str) -> int:
        """The link's ifindex (names are per namespace: ask in the socket's one)."""
        found = self.ipr.link_lookup(ifname=name)
        if not found:
            raise KernelError("netlink", f"link {name} ({self.where})", 19)  # ENODEV
        return found[0]

    # -- addresses and routes -----------------------------------------------------------------
    def add_address(self, name: str, address: str, prefixlen: int) -> None:
        """IPv4 or IPv6 (by the address); for IPv4 the broadcast address too, as `ip addr add
        ... brd +` does. The kernel adds the route to the subnet with it."""
        spec: dict = {}
        if ":" not in address:
            import ipaddress  # here: the only caller that needs it

            spec["broadcast"] = str(ipaddress.ip_network(f"{address}/{prefixlen}",
                                                         strict=False).broadcast_address)
        else:
            # IPV6 duplicate address detection would hold the address "tentative" for a
            # second or more; addresses come from our IPAM, unique by construction (Docker
            # sets IFA_F_NODAD too).
            spec["flags"] = 0x02  # IFA_F_NODAD
        self._do(f'addr("add", index={name}, address="{address}", prefixlen={prefixlen})',
                 "its address; the kernel adds the route to the subnet with it",
                 self.ipr.addr, "add", index=self.index(name), address=address,
                 prefixlen=prefixlen, **spec)

    def add_default_route(self, gateway: str, name: str) -> None:
        v6 = ":" in gateway
        dst = "::/0" if v6 else "0.0.0.0/0"
        self._do(f'route("add", dst="{dst}", gateway="{gateway}", oif={name})',
                 "everything not on the subnet goes to the gateway, the host routes it on",
                 self.ipr.route, "add", dst=dst, gateway=gateway, oif=self.index(name),
                 family=socket.AF_INET6 if v6 else socket.AF_INET)
