"""Networks and their addresses: the records behind `network ls`, and IPAM.

    <root>/networks/<name>.json        Name, Id, Driver, Subnet, Gateway, Internal, Bridge ...
    <root>/networks/<name>.ipam.json   {"10.222.0.2": "<container id>", ...}

`bridge` is the default network (Docker's name; its bridge device is minirun0, or mrb-<hash of
the root> for any --root but the default one, so two roots on one host never share a bridge,
nor an nftables table: nat.py names it the same way). It is made on
first use, on the first /24 of 10.222.0.0/16 that no host route and no other network covers
(never 172.17.0.0/16, Docker's, nor 10.88.0.0/16, Podman's): $MINIRUN_DEFAULT_SUBNET picks
another. A user network's bridge is mr-<12 hex of its ID>.

Addresses are handed out under a flock on the ipam file: the lowest free host address after
the gateway (.1), or the one --ip asks for. They stay with the container until `rm`, so a
restarted container keeps its address.
"""

from __future__ import annotations

import os

from .. import fastjson
from ..base.atomicfile import write_atomic
from ..base.filelock import FileLock
from ..base.names import valid_name
from ..base.times import now
from ..errors import Conflict, InvalidArgument, MinirunError, NotFound
from ..record import asdict, dataclass, field

# ipaddress (~1 ms) is imported in the functions that compute with addresses: `network ls`
# and `inspect` read the records only.

DEFAULT = "bridge"
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"  # Docker's -o for the device's name
MTU_OPTION = "com.docker.network.driver.mtu"
DEFAULT_BRIDGE = "minirun0"
POOL = "10.222.0.0/16"
AVOID = ("172.17.0.0/16", "10.88.0.0/16", "192.0.2.0/24")  # docker0, podman, this VM's uplink


class NetworkError(MinirunError):
    exit_code = 1


class NoSuchNetwork(NetworkError, NotFound):
    """No network of that name or ID (errors.NotFound; a NetworkError for the code that catches
    that)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"network {name} not found")
        self.name = name


class NetworkConflict(NetworkError, Conflict):
    """A name or an address taken, a network in use or pre-defined (errors.Conflict)."""


class InvalidNetwork(NetworkError, InvalidArgument):
    """A bad network name, driver, subnet, gateway or address (errors.InvalidArgument)."""


@dataclass
class Network:
    Name: str
    Id: str
    Subnet: str
    Gateway: str
    Bridge: str  # the bridge device ("" for macvlan/ipvlan: they have none)
    Created: str = ""
    Driver: str = "bridge"
    Internal: bool = False
    Labels: dict = field(default_factory=dict)
    IPRange: str = ""  # --ip-range: where addresses are handed out from ("": the subnet)
    AuxAddresses: dict = field(default_factory=dict)  # --aux-address: name -> an IP kept free
    MTU: int = 0  # -o com.docker.network.driver.mtu (0: the host's)
    Options: dict = field(default_factory=dict)  # the -o options, as given
    EnableIPv6: bool = False  # --ipv6: dual-stack, a second subnet (network/ipv6.py)
    Subnet6: str = ""
    Gateway6: str = ""

    def reserved(self, ip: str) -> bool:
        """Not for a container: a gateway, or an --aux-address."""
        return ip in (self.Gateway, self.Gateway6) or ip in self.AuxAddresses.values()

    @property
    def prefixlen(self) -> int:
        import ipaddress  # (~1 ms: see the imports)

        return ipaddress.ip_network(self.Subnet).prefixlen

    @property
    def prefixlen6(self) -> int:
        import ipaddress  # (~1 ms: see the imports)

        return ipaddress.ip_network(self.Subnet6).prefixlen if self.Subnet6 else 0

    @property
    def default(self) -> bool:
        return self.Name == DEFAULT


def host_routes() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network the host routes to (/proc/net/route), the default route aside."""
    import ipaddress  # (~1 ms: see the imports)

    out = []
    try:
        with open("/proc/net/route") as f:
            next(f)
            for line in f:
                p = line.split()
                dest, mask = int(p[1], 16), int(p[7], 16)
                if mask == 0:
                    continue
                addr = ipaddress.IPv4Address(dest.to_bytes(4, "little"))
                plen = bin(mask).count("1")
                out.append(ipaddress.ip_network(f"{addr}/{plen}", strict=False))
    except (OSError, StopIteration, ValueError):
        pass
    return out


def root_tag(root: str) -> str:
    """"" for the default root, else 10 hex of the root's path: what names per-root things."""
    root = os.path.abspath(root)
    if root == "/var/lib/minirun":
        return ""
    import hashlib  # lazy: ~2 ms (OpenSSL), and the default root needs none (start-up budget)

    return hashlib.sha256(root.encode()).hexdigest()[:10]


class Networks:
    def __init__(self, root: str) -> None:
        self.dir = os.path.join(root, "networks")
        os.makedirs(self.dir, mode=0o711, exist_ok=True)
        self.root = root

    # Properties, not set in __init__: a private root's tag is a sha256 (hashlib: ~2 ms), which
    # `network ls` and `inspect` never need.
    @property
    def default_bridge(self) -> str:
        tag = root_tag(self.root)
        return f"mrb-{tag}" if tag else DEFAULT_BRIDGE

    @property
    def nat_table(self) -> str:
        tag = root_tag(self.root)
        return f"minirun-{tag}" if tag else "minirun"

    def lock(self) -> FileLock:
        """The lock on the network records: creation, removal, the default network."""
        return FileLock(os.path.join(self.dir, ".lock"))

    def _path(self, name: str, suffix: str = ".json") -> str:
        return os.path.join(self.dir, name + suffix)

    def get(self, name: str) -> Network:
        if name == DEFAULT and not os.path.exists(self._path(name)):
            return self.ensure_default()
        try:
            with open(self._path(name)) as f:
                return Network(**fastjson.loads(f.read()))
        except FileNotFoundError:
            hits = [n for n in self.all() if n.Id.startswith(name)] if len(name) >= 3 else []
            if len(hits) == 1:
                return hits[0]
            raise NoSuchNetwork(name) from None

    def all(self) -> list[Network]:
        out = []
        for n in sorted(os.listdir(self.dir)):
            if n.endswith(".json") and not n.endswith(".ipam.json") and not n.startswith("."):
                try:
                    with open(os.path.join(self.dir, n)) as f:
                        out.append(Network(**fastjson.loads(f.read())))
                except (OSError, ValueError, TypeError):
                    continue
        if not any(n.Name == DEFAULT for n in out):
            out.insert(0, self.ensure_default())
        return out

    def _save(self, n: Network) -> None:
        write_atomic(self._path(n.Name), fastjson.dumps(asdict(n), indent=1), mode=0o666)

    def ensure_default(self) -> Network:
        with self.lock():
            if os.path.exists(self._path(DEFAULT)):
                with open(self._path(DEFAULT)) as f:
                    return Network(**fastjson.loads(f.read()))
            subnet = os.environ.get("MINIRUN_DEFAULT_SUBNET") or self._free_subnet()
            n = self._new(DEFAULT, subnet, None, False, {}, self.default_bridge,
                          os.urandom(32).hex())
            return n

    def create(self, name: str, subnet: str | None = None, gateway: str | None = None,
               internal: bool = False, labels: dict | None = None, ip_range: str | None = None,
               aux_addresses: dict | None = None, options: dict | None = None,
               driver: str = "bridge", ipv6: bool = False, subnet6: str | None = None,
               gateway6: str | None = None) -> Network:
        """A new network. ipv6: dual-stack, on subnet6 (default: a free /64 of our ULA pool,
        network/ipv6.py) with the bridge at gateway6 (default: its first address).
        driver: bridge (the default), macvlan or ipvlan (network/macvlan.py:
        -o parent=IFACE and the mode). options: Docker's -o; for the bridge driver
        com.docker.network.bridge.name (the device, at most 15 characters) and
        com.docker.network.driver.mtu; other keys are refused by name."""
        if name in ("host", "none", DEFAULT):
            raise NetworkConflict(f"network with name {name} already exists")
        if not valid_name(name):
            raise InvalidNetwork(f"invalid network name {name!r}")
        if (subnet6 or gateway6) and not ipv6:  # Docker's words
            raise InvalidNetwork(f"network {name}: IPv6 has not been enabled for this network, "
                                 f"but an IPv6 subnet has been provided ({subnet6 or gateway6}): "
                                 "add --ipv6")
        if ipv6 and driver != "bridge":
            raise InvalidNetwork(f"network {name}: --ipv6 is for bridge networks here ({driver} "
                                 "networks are IPv4-only)")
        options = dict(options or {})
        direct = driver in ("macvlan", "ipvlan")
        if direct:
            from . import macvlan  # (it imports this module: here, not at the top)

            mtu_opt = options.pop(MTU_OPTION, None)
            options = macvlan.check_options(name, driver, options)
            if mtu_opt is not None:
                options[MTU_OPTION] = mtu_opt
        elif driver != "bridge":
            raise InvalidNetwork(f"network {name}: driver {driver!r} is not supported (bridge, "
                                 "macvlan or ipvlan)")
        for key in options:
            if key not in (BRIDGE_NAME_OPTION, MTU_OPTION) and not direct:
                raise InvalidNetwork(f"network {name}: option {key} is not supported (use "
                                     f"{BRIDGE_NAME_OPTION} or {MTU_OPTION})")
        bridge_name = None if direct else options.get(BRIDGE_NAME_OPTION)
        if bridge_name is not None and not (0 < len(bridge_name) <= 15 and all(
                c.isascii() and (c.isalnum() or c in "_.-") for c in bridge_name)):
            raise InvalidNetwork(f"network {name}: bridge name {bridge_name!r}: 1 to 15 letters, "
                                 "digits, '_', '.' or '-' (an interface name)")
        mtu = options.get(MTU_OPTION)
        try:
            mtu = int(mtu) if mtu is not None else 0
            if mtu and not 68 <= mtu <= 65535:
                raise ValueError
        except ValueError:
            raise InvalidNetwork(f"network {name}: invalid MTU {options[MTU_OPTION]!r} (68 to "
                                 "65535)") from None
        with self.lock():
            if os.path.exists(self._path(name)):
                raise NetworkConflict(f"network with name {name} already exists")
            if bridge_name and any(n.Bridge == bridge_name for n in self._records()):
                raise NetworkConflict(f"network {name}: bridge name {bridge_name} is used by "
                                      "another network")
            nid = os.urandom(32).hex()
            v6 = self._subnet6(name, subnet6, gateway6) if ipv6 else None
            return self._new(name, subnet or self._free_subnet(), gateway, internal, labels or {},
                             "" if direct else bridge_name or "mr-" + nid[:12], nid,
                             ip_range=ip_range, aux=aux_addresses or {}, mtu=mtu,
                             options=options, driver=driver, v6=v6)

    def _subnet6(self, name: str, subnet6: str | None, gateway6: str | None) -> tuple[str, str]:
        """The checked (subnet, gateway) of a dual-stack network (under the records' lock)."""
        import ipaddress  # (~1 ms: see the imports)
        from . import ipv6  # lazy: hashlib (~2 ms), and only --ipv6 needs it (start-up budget)

        others = [(n.Name, n.Subnet6) for n in self._records() if n.Subnet6]
        try:
            if subnet6 is None:
                subnet6 = ipv6.free_subnet([ipaddress.ip_network(s) for _, s in others])
            return ipv6.check(name, subnet6, gateway6, others)
        except ipv6.OverlapError as e:
            raise NetworkConflict(str(e)) from None
        except ValueError as e:
            raise InvalidNetwork(str(e)) from None

    def _new(self, name, subnet, gateway, internal, labels, bridge, nid, ip_range=None, aux=None,
             mtu=0, options=None, driver="bridge", v6=None) -> Network:
        import ipaddress  # (~1 ms: see the imports)

        from . import subnets  # (imports ipaddress: see the imports)

        try:
            net = subnets.checked(name, subnet, 4, ((o.Name, o.Subnet) for o in self._records()))
        except subnets.OverlapError as e:
            raise NetworkConflict(str(e)) from None
        except ValueError as e:
            raise InvalidNetwork(str(e)) from None
        gw = gateway or str(next(net.hosts()))
        try:
            gw_in = ipaddress.ip_address(gw) in net
        except ValueError:
            raise InvalidNetwork(f"network {name}: invalid gateway {gw!r}") from None
        if not gw_in:
            raise InvalidNetwork(f"network {name}: gateway {gw} is not in subnet {subnet}")
        pool = ""
        if ip_range:
            try:
                r = ipaddress.ip_network(ip_range)
            except ValueError:
                raise InvalidNetwork(f"network {name}: invalid --ip-range {ip_range!r} (CIDR)") \
                    from None
            if r.version != 4:
                raise InvalidNetwork(f"network {name}: --ip-range {ip_range}: IPv4 only (IPv6 "
                                     "addresses come from the whole IPv6 subnet)")
            if not r.subnet_of(net):
                raise InvalidNetwork(f"network {name}: --ip-range {ip_range} is not inside "
                                     f"subnet {subnet}")
            pool = str(r)
        net6 = ipaddress.ip_network(v6[0]) if v6 else None
        for host, ip in (aux or {}).items():
            try:
                if ipaddress.ip_address(ip) not in net and not (net6 and ipaddress.ip_address(
                        ip) in net6):
                    raise ValueError
            except ValueError:
                raise InvalidNetwork(f"network {name}: --aux-address {host}={ip} is not an "
                                     f"address of subnet {subnet}") from None
        n = Network(Name=name, Id=nid, Subnet=str(net), Gateway=gw, Bridge=bridge,
                    Created=now(), Internal=internal, Labels=labels, IPRange=pool,
                    AuxAddresses=dict(aux or {}), MTU=mtu, Options=dict(options or {}),
                    Driver=driver, EnableIPv6=v6 is not None, Subnet6=v6[0] if v6 else "",
                    Gateway6=v6[1] if v6 else "")
        self._save(n)
        return n

    def _records(self) -> list[Network]:
        out = []
        for n in os.listdir(self.dir):
            if n.endswith(".json") and not n.endswith(".ipam.json"):
                try:
                    with open(os.path.join(self.dir, n)) as f:
                        out.append(Network(**fastjson.loads(f.read())))
                except (OSError, ValueError, TypeError):
                    continue
        return out

    def _free_subnet(self) -> str:
        import ipaddress  # (~1 ms: see the imports)

        taken = [ipaddress.ip_network(n.Subnet) for n in self._records()]
        taken += host_routes() + [ipaddress.ip_network(a) for a in AVOID]
        for cand in ipaddress.ip_network(POOL).subnets(new_prefix=24):
            if not any(cand.overlaps(t) for t in taken):
                return str(cand)
        raise NetworkError(f"no free /24 left in {POOL}: give --subnet")

    def remove(self, name: str) -> None:
        with self.lock():
            for suffix in (".json", ".ipam.json"):
                try:
                    os.unlink(self._path(name, suffix))
                except FileNotFoundError:
                    pass

    # -- IPAM --------------------------------------------------------------------------------
    def _ipam(self, name: str) -> dict:
        try:
            with open(self._path(name, ".ipam.json")) as f:
                return fastjson.loads(f.read())
        except (FileNotFoundError, ValueError):
            return {}

    def allocate(self, n: Network, cid: str, want: str | None = None, v6: bool = False) -> str:
        """An address on n for container cid (the same one again if it has one). v6: its IPv6
        address on a dual-stack network (the ipam file holds both families' addresses)."""
        import ipaddress  # (~1 ms: see the imports)

        flag, subnet = ("--ip6", n.Subnet6) if v6 else ("--ip", n.Subnet)
        if v6 and not n.EnableIPv6:
            raise InvalidNetwork(f"invalid {flag} {want}: network {n.Name} has no IPv6 (create "
                                 "it with --ipv6)")
        if v6 and want is not None:
            try:
                want = str(ipaddress.IPv6Address(want))  # one spelling (RFC 5952) in the file
            except ValueError:
                raise InvalidNetwork(f"invalid {flag} {want}: not an IPv6 address") from None
        with FileLock(self._path(n.Name, ".ipam.lock")):
            used = self._ipam(n.Name)
            net = ipaddress.ip_network(subnet)
            for ip, owner in used.items():
                if owner == cid and (want is None or want == ip) and \
                        ipaddress.ip_address(ip) in net:
                    return ip
            if want is not None:
                try:
                    if ipaddress.ip_address(want) not in net or n.reserved(want):
                        raise ValueError
                except ValueError:
                    raise InvalidNetwork(f"invalid {flag} {want}: not a free host address of "
                                       f"{n.Name} ({subnet})") from None
                if want in used:
                    raise NetworkConflict(f"Address already in use: {want} on network {n.Name}")
                ip = want
            else:
                pool = ipaddress.ip_network(n.IPRange) if n.IPRange and not v6 else net
                ip = next((str(h) for h in pool.hosts() if h in net and not n.reserved(str(h))
                           and str(h) not in used), None)
                if ip is None:
                    raise NetworkError(f"no free address left on network {n.Name} ({subnet})")
            used[ip] = cid
            write_atomic(self._path(n.Name, ".ipam.json"), fastjson.dumps(used, indent=1), mode=0o666)
            return ip

    def release(self, name: str, cid: str) -> None:
        if not os.path.exists(self._path(name, ".ipam.json")):
            return
        with FileLock(self._path(name, ".ipam.lock")):
            used = {ip: c for ip, c in self._ipam(name).items() if c != cid}
            write_atomic(self._path(name, ".ipam.json"), fastjson.dumps(used, indent=1), mode=0o666)
