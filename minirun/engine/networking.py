"""A container's place on its networks: addresses, veths, published ports, names.

The lifecycle, and who does each part:

  create   (CLI)      resolve --network, give the container an address on each of its networks
                      (IPAM), turn -p/-P into port bindings (a random host port picked now)
  start    (monitor)  after the runtime made the namespaces, before the process runs: make the
                      bridge if needed, plug a veth into each network (eth0, eth1 ...), rewrite
                      the NAT table with the container's ports, write its own /etc/hosts; on a
                      user network the monitor then serves 127.0.0.11 (network/resolver.py):
                      names come from there, never from hosts files (Docker's rule; the default
                      bridge has no names at all)
  exit     (monitor)  the kernel deletes the veths with the namespace; the NAT table is
                      rewritten without this container
  rm       (CLI)      its addresses go back to IPAM

The NAT table is derived from the records every time (network/nat.py), so a killed monitor's
rules go at the next change; `network prune` removes unused networks and bridges.
"""

from __future__ import annotations

import os

from ..errors import Conflict, InvalidArgument, MinirunError
# lazy below: dns, nat, proxy (subprocess, shutil: ~5 ms), hashlib, ipaddress, socket. The monitor
# sets a container's network up in a forked child, and --network none needs only `lo`. bridge
# and macvlan (socket, ctypes: ~2 ms) too: `run --network none` creates through this module.
from ..network import networks as netmod
from ..network.networks import DEFAULT, Network, NetworkConflict, Networks
from .records import RUNNING


class PortError(MinirunError):
    exit_code = 125


class InvalidPort(PortError, InvalidArgument):
    """A -p spec that cannot be read, or a network mode that cannot publish."""


class PortAllocated(PortError, Conflict):
    """A host port another running container has published."""


def parse_publish(spec: str) -> tuple[str, int | None, int, str]:
    """-p [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp] -> (host ip, host port or None, port, proto).
    An IPv6 host IP in brackets, as Docker's: -p [::]:8080:80, -p [::1]:8080:80 (kept in its
    RFC 5952 spelling)."""
    import ipaddress  # lazy: see the imports
    spec, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise InvalidPort(f"invalid protocol {proto!r} in -p {spec}: tcp or udp")
    parts = spec.rsplit(":", 2)
    host_ip, host_port = "", None
    try:
        if len(parts) == 3:
            host_ip = parts[0].strip("[]")
            host_port = int(parts[1]) if parts[1] else None
        elif len(parts) == 2:
            host_port = int(parts[0]) if parts[0] else None
        port = int(parts[-1])
    except ValueError:
        raise InvalidPort(f"invalid port specification: {spec!r} (port ranges are not "
                        "supported)") from None
    for p in (port, host_port):
        if p is not None and not 0 < p < 65536:
            raise InvalidPort(f"invalid port {p} in -p {spec}")
    if host_ip:
        if "%" in host_ip:  # a zone: only meaningful to the host's own sockets on one link
            raise InvalidPort(f"invalid host IP {host_ip!r} in -p {spec}: a scoped address "
                              "cannot be published on (use a global or ULA address, or [::])")
        try:
            addr = ipaddress.ip_address(host_ip)
        except ValueError:
            raise InvalidPort(f"invalid host IP {host_ip!r} in -p {spec}") from None
        if addr.version == 6 and (addr.is_link_local or addr.is_multicast):
            raise InvalidPort(f"invalid host IP {host_ip!r} in -p {spec}: a link-local or "
                              "multicast address cannot be published on")
        host_ip = str(addr)
    return host_ip, host_port, port, proto


def _check_ip6(net: Network, ip6: str | None) -> None:
    if ip6 and not net.EnableIPv6:
        raise netmod.InvalidNetwork(f"invalid --ip6 {ip6}: network {net.Name} has no IPv6 "
                                    "(create it with --ipv6)")


def same_host_ip(a: str, b: str) -> bool:
    """Do two -p host IPs share a socket address? "" is every address of both families (a
    dual-stack container publishes on 0.0.0.0 and [::], as Docker does), 0.0.0.0 every IPv4
    one, :: every IPv6 one."""
    fam = {"": {4, 6}, "0.0.0.0": {4}, "::": {6}}
    fa = fam.get(a, {6 if ":" in a else 4})
    fb = fam.get(b, {6 if ":" in b else 4})
    return bool(fa & fb) and (a in fam or b in fam or a == b)


def free_port(proto: str) -> int:
    """A host port nobody uses now: the kernel's choice for a socket bound to port 0."""
    import socket  # lazy: see the imports
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else
                       socket.SOCK_DGRAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]


class Networking:
    def __init__(self, root: str, runroot: str) -> None:
        self.root, self.runroot = root, runroot
        self.networks = Networks(root)

    # -- create ---------------------------------------------------------------------------------
    def plan(self, c, mode: str, ip: str | None, aliases: list[str], publish: list[str],
             publish_all: bool, exposed: dict, ip6: str | None = None) -> None:
        """Fill c.networks (an endpoint per network: an IPv6 address too on a dual-stack
        network, ip6 if given) and HostConfig.PortBindings."""
        c.networks = {}
        bindings: dict[str, list[dict]] = {}
        if mode in ("none", "host") or mode.startswith("container:"):
            if publish or publish_all:
                if mode != "host":
                    raise InvalidPort(f"--network {mode} cannot publish ports: -p needs a bridge "
                                    "network")
            c.host_config["PortBindings"] = {}
            return
        net = self.networks.get(mode)
        _check_ip6(net, ip6)  # before any address is taken
        address = self.networks.allocate(net, c.id, ip)
        address6 = self._allocate6(net, c.id, ip6)
        c.networks[net.Name] = self._endpoint(c, net, address, aliases, address6)
        specs = [parse_publish(p) for p in publish]
        if publish_all:
            for key in sorted(exposed or {}):
                port, _, proto = key.partition("/")
                specs.append(("", None, int(port), proto or "tcp"))
        for host_ip, host_port, port, proto in specs:
            hp = host_port or free_port(proto)
            bindings.setdefault(f"{port}/{proto}", []).append(
                {"HostIp": host_ip, "HostPort": str(hp)})
        c.host_config["PortBindings"] = bindings

    def _allocate6(self, net: Network, cid: str, ip6: str | None) -> str:
        """The container's IPv6 address on a dual-stack network ("" on an IPv4 one); if none
        is left, its IPv4 address goes back too (nothing half-made)."""
        if not net.EnableIPv6:
            return ""
        try:
            return self.networks.allocate(net, cid, ip6, v6=True)
        except BaseException:
            self.networks.release(net.Name, cid)
            raise

    def _endpoint(self, c, net: Network, address: str, aliases: list[str],
                  address6: str = "") -> dict:
        from ..network.bridge import mac_of  # lazy: see the imports
        import hashlib  # lazy: see the imports
        # Docker's EndpointSettings has the IPv6 fields on every network ("" and 0 on IPv4 ones).
        return {"NetworkID": net.Id, "EndpointID": hashlib.sha256((c.id + net.Id).encode())
                .hexdigest(), "Gateway": net.Gateway, "IPAddress": address,
                "IPPrefixLen": net.prefixlen, "IPv6Gateway": net.Gateway6 if address6 else "",
                "GlobalIPv6Address": address6, "GlobalIPv6PrefixLen":
                net.prefixlen6 if address6 else 0,
                "Aliases": list(aliases) if not net.default else None,
                "MacAddress": mac_of(address), "IfName": ""}

    # -- start and exit -------------------------------------------------------------------------
    def setup(self, c, pid: int, store) -> None:
        """Plug the container in (the runtime made its namespaces, `lo` already up: the init
        does that, kernel/loopback.py; the process has not run yet)."""
        from ..network import bridge  # lazy: see the imports
        mode = c.host_config.get("NetworkMode", DEFAULT)
        if mode in ("host", "none") or mode.startswith("container:") or not c.networks:
            return
        self._check_ports(c, store)
        mtu = bridge.host_mtu()
        routed = False  # the default route: through the first network that is not --internal
        for i, (name, ep) in enumerate(sorted(c.networks.items(),
                                              key=lambda kv: kv[1].get("Order", 0))):
            net = self.networks.get(name)
            ep["IfName"] = f"eth{i}"
            gateway = not routed and not net.Internal
            self._plug(pid, c.id, net, ep["IPAddress"], ep["IfName"], mtu, gateway,
                       ep.get("GlobalIPv6Address") or None, mac=ep.get("MacAddress") or None)
            routed = routed or gateway
        self.refresh(store, also_running=c)
        self._start_proxy(c, pid)
        self.update_hosts(store, c, joining=True)

    def _plug(self, pid: int, cid: str, net: Network, address: str, ifname: str, mtu: int,
              gateway: bool, address6: str | None = None, mac: str | None = None) -> None:
        """One network's link into the container: a veth on the network's bridge (made now if
        missing), or a macvlan/ipvlan child of its parent interface (network/macvlan.py).
        `mac`: the container end's MAC (--mac-address; else Docker's 02:42 + the IPv4 address)."""
        from ..network import bridge, macvlan  # lazy: see the imports
        if net.Driver in macvlan.DRIVERS:
            macvlan.attach(pid, cid, net, address, ifname, gateway=gateway)
            return
        with self.networks.lock():
            bridge.ensure(net, self.runroot)
        bridge.attach(pid, cid, net, address, ifname, net.MTU or mtu, gateway=gateway,
                      address6=address6, mac=mac)

    def _start_proxy(self, c, pid: int) -> None:
        """The userland proxy for the published ports the kernel cannot NAT (network/proxy.py:
        IPv6 loopback, and IPv6 host addresses of a container that has no IPv6 address)."""
        from ..network import proxy  # lazy: see the imports
        ep = next(iter(c.networks.values()), None)
        if ep is None:
            return
        relays = proxy.plan(c.host_config.get("PortBindings") or {}, ep["IPAddress"],
                            ep.get("GlobalIPv6Address") or "")
        if relays:
            try:
                proxy.start(relays, pid, c.id)
            except proxy.ProxyError as e:
                raise PortAllocated(str(e)) from None

    def refresh(self, store, also_running=None) -> None:
        """Rewrite the NAT table from what runs now (also_running: a container about to)."""
        from ..network import bridge, macvlan  # lazy: see the imports
        from ..network import nat  # lazy: see the imports
        every = self.networks.all()
        nets = [n for n in every if bridge.exists(n.Bridge)]
        direct = {n.Id for n in every if n.Driver in macvlan.DRIVERS}
        published = []
        # Records read raw (store.raw: a start pays this scan of every container), those
        # without a published port not even parsed (3.3 -> 1 ms at 100 containers); in ID
        # order, so that the same containers always give the same ruleset (nat.apply's skip).
        for d in store.raw(skip=(b'"PortBindings": {}', b'"PortBindings": null')):
            if also_running is not None and d.get("id") == also_running.id:
                networks, host_config = also_running.networks, also_running.host_config
            elif (d.get("state") or {}).get("status") in RUNNING:
                networks, host_config = d.get("networks") or {}, d.get("host_config") or {}
            else:
                continue
            ep = next(iter(networks.values()), None)
            if ep is None or ep.get("NetworkID") in direct:
                continue  # (macvlan/ipvlan: the address is on the wire, nothing to publish)
            for key, binds in (host_config.get("PortBindings") or {}).items():
                port, _, proto = key.partition("/")
                for b in binds:
                    published.append(nat.Published(proto=proto, host_ip=b.get("HostIp", ""),
                                                   host_port=int(b["HostPort"]),
                                                   ip=ep["IPAddress"], port=int(port),
                                                   ip6=ep.get("GlobalIPv6Address") or ""))
        with self.networks.lock():
            nat.apply(nets, published, self.networks.nat_table,
                      remember=os.path.join(self.networks.dir, f".{self.networks.nat_table}.nft"))

    def _check_ports(self, c, store) -> None:
        mine = {(b.get("HostIp", ""), b["HostPort"], key.partition("/")[2])
                for key, bs in (c.host_config.get("PortBindings") or {}).items() for b in bs}
        if not mine:
            return
        for other in store.all():
            if other.id == c.id or not other.state.running:
                continue
            for key, bs in (other.host_config.get("PortBindings") or {}).items():
                for b in bs:
                    for ip, port, proto in mine:
                        same_ip = same_host_ip(ip, b.get("HostIp", ""))
                        if port == b["HostPort"] and proto == key.partition("/")[2] and same_ip:
                            shown = f"[{ip}]" if ":" in ip else ip or "0.0.0.0"
                            raise PortAllocated(f"Bind for {shown}:{port} failed: port is "
                                            f"already allocated (by container {other.name})")

    def finished(self, store, c) -> None:
        """The container stopped: its ports and its name go from the network (the NAT table
        is rewritten only if it published ports: see release)."""
        if not c.networks:
            return
        if c.host_config.get("PortBindings"):
            try:
                self.refresh(store)
            except MinirunError:
                pass
        self.update_hosts(store, c, joining=False)

    def release(self, store, c) -> None:
        """`rm`: its addresses go back (and, if it was running, its ports and name)."""
        for name in list(c.networks):
            self.networks.release(name, c.id)
        # The NAT table holds the networks and the running containers' published ports, not
        # addresses: the removal of one that published none cannot change it (an `nft -f` of
        # ~15 ms per container of `rm -f` on a bridge).
        if c.networks and c.host_config.get("PortBindings"):
            try:
                self.refresh(store)
            except MinirunError:
                pass

    # -- connect and disconnect -----------------------------------------------------------------
    def connect(self, store, c, net: Network, ip: str | None, aliases: list[str],
                ip6: str | None = None) -> None:
        from ..network import bridge  # lazy: see the imports
        if net.Name in c.networks:
            raise NetworkConflict(f"endpoint with name {c.name} already exists in network {net.Name}")
        mode = c.host_config.get("NetworkMode", DEFAULT)
        if mode in ("host", "none") or mode.startswith("container:"):
            raise NetworkConflict(f"container {c.name} is on --network {mode}: it cannot join "
                               "another network")
        _check_ip6(net, ip6)  # before any address is taken
        address = self.networks.allocate(net, c.id, ip)
        address6 = self._allocate6(net, c.id, ip6)
        ep = self._endpoint(c, net, address, aliases, address6)
        ep["Order"] = max([e.get("Order", 0) for e in c.networks.values()] + [0]) + 1
        try:
            if c.state.status in ("running", "paused") and c.state.pid:
                ep["IfName"] = f"eth{len(c.networks)}"
                # A default route only if it has none yet (all it is on is --internal).
                routed = any(not self.networks.get(n).Internal for n in c.networks)
                self._plug(c.state.pid, c.id, net, address, ep["IfName"], bridge.host_mtu(),
                           gateway=not routed and not net.Internal, address6=address6 or None)
        except BaseException:
            self.networks.release(net.Name, c.id)
            raise

        def add(x) -> None:
            x.networks[net.Name] = ep

        had_dns = _embedded(c)
        c = store.update(c.id, add)
        if c.state.running:
            self.refresh(store)
            self.update_hosts(store, c, joining=True)
            if not had_dns and _embedded(c):
                self._start_embedded_dns(store, c)

    def _start_embedded_dns(self, store, c) -> None:
        """A running container that was on the default bridge only joined a user network: as
        Docker does, its resolv.conf now names 127.0.0.11 (rewritten in place: it is a bind
        mount), and its monitor is told (SIGUSR1) to serve it from now on."""
        import signal  # lazy: see the imports
        from ..kernel import process as kproc
        from ..network import dns
        try:
            with open(dns.HOST_RESOLV_CONF) as f:
                host_text = f.read()
        except OSError:
            host_text = ""
        hc = c.host_config
        _rewrite(store.path(c.id, "resolv.conf"),
                 dns.resolv_conf_embedded(host_text, hc.get("Dns"), hc.get("DnsSearch")))
        pid = c.state.monitor_pid
        if pid and kproc.start_time(pid) == c.state.monitor_start:
            try:
                os.kill(pid, signal.SIGUSR1)
            except ProcessLookupError:
                pass

    def disconnect(self, store, c, net: Network) -> None:
        from ..network import bridge, macvlan  # lazy: see the imports
        if net.Name not in c.networks:
            raise NetworkConflict(f"container {c.name} is not connected to network {net.Name}")
        if c.state.running:
            if net.Driver in macvlan.DRIVERS:
                macvlan.detach(c.state.pid, c.id, c.networks[net.Name].get("IfName") or "")
            else:
                bridge.detach(c.id, net)
            self.update_hosts(store, c, joining=False)

        def drop(x) -> None:
            x.networks.pop(net.Name, None)

        c = store.update(c.id, drop)
        self.networks.release(net.Name, c.id)
        self.refresh(store)
        if c.state.running:
            self.update_hosts(store, c, joining=True)

    # -- names: /etc/hosts holds the container's own, peers are asked of 127.0.0.11 -------------
    def hosts_text(self, c) -> str:
        """/etc/hosts: localhost, the container's hostname on each of its addresses, and
        --add-host. No peers: on user networks their names come from the embedded DNS server,
        which follows them as they come and go and rotates a service's replicas (Docker lists
        none there either since it has one)."""
        from ..network import dns  # lazy: see the imports
        extra = []
        for name, ep in c.networks.items():
            extra.append((ep["IPAddress"], [c.config.get("Hostname", c.id[:12])]))
        for entry in c.host_config.get("ExtraHosts") or []:
            host, _, ip = entry.partition(":")
            extra.append((ip, [host]))
        return dns.hosts_with(c.config.get("Hostname", c.id[:12]),
                              c.config.get("Domainname", ""), extra, bool(c.networks))

    def write_hosts(self, cdir: str, c) -> None:
        """Rewrite cdir/hosts in place: the container's /etc/hosts is a bind mount of that
        inode, so a rename (a new inode) would not be seen inside."""
        _rewrite(os.path.join(cdir, "hosts"), self.hosts_text(c))

    def update_hosts(self, store, c, joining: bool) -> None:
        """A container joined (or left) a network: its own /etc/hosts lists its addresses now.
        Its peers' files are left alone: they ask the embedded DNS server for its name."""
        if joining:
            self.write_hosts(store.path(c.id), c)


def _embedded(c) -> bool:
    from ..network import dns  # lazy: see the imports
    return dns.embedded(c.host_config.get("NetworkMode", DEFAULT), c.networks)


def _rewrite(path: str, text: str) -> None:
    """Replace a bind-mounted file's content in place (same inode: what the container sees)."""
    with open(path, "a+") as f:
        f.seek(0)
        f.truncate()
        f.write(text)


__all__ = ["Networking", "PortError", "InvalidPort", "PortAllocated", "parse_publish", "netmod"]
