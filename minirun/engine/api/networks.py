"""Networks: the verbs of Docker's /networks endpoints, in plain data.

    create(eng, name, driver, subnet, gateway, internal, labels) -> {"Id", "Warning"}
                                                                    POST /networks/create
    list_(eng, filters)                  -> [Network, ...]          GET /networks
    inspect(eng, name)                   -> Network                 GET /networks/{id}
    remove(eng, name)                    -> None                    DELETE /networks/{id}
    prune(eng)                           -> {"NetworksDeleted"}     POST /networks/prune
    release_default(eng)                 -> bool (the bridge device went)
    connect(eng, name, container, ip, aliases)                      POST /networks/{id}/connect
    disconnect(eng, name, container, force)                         POST /networks/{id}/disconnect

A Network is Docker's: {"Name", "Id", "Created", "Scope", "Driver", "EnableIPv6", "IPAM",
"Internal", "Attachable", "Ingress", "Containers", "Options", "Labels"}; host and none are
always there (drivers host and null). Errors: NotFound (no such network or container),
Conflict (a name taken, a network in use or pre-defined, a container already on it),
InvalidArgument (a bad name, driver, subnet, gateway, address or filter).
"""

from __future__ import annotations

from ...base.times import ZERO_TIME
from .. import events as journal
from ...network.networks import InvalidNetwork, Network, NetworkConflict, Networks
from ..lifecycle import Engine
from ..records import Container

LIST_FILTERS = ("name", "driver", "label")
# The two networks that are always there (Docker lists them with IDs of their own; minirun's
# are their names).
BUILTIN = ({"Name": "host", "Id": "host", "Driver": "host"},
           {"Name": "none", "Id": "none", "Driver": "null"})


def create(eng: Engine, name: str, driver: str = "bridge", subnet: str | None = None,
           gateway: str | None = None, internal: bool = False,
           labels: dict[str, str] | None = None, ip_range: str | None = None,
           aux_addresses: dict[str, str] | None = None,
           options: dict[str, str] | None = None, ipv6: bool = False,
           subnet6: str | None = None, gateway6: str | None = None) -> dict:
    """A bridge network (its bridge device is made when a container first joins it): on
    `subnet` (CIDR; default a free /24 of 10.222.0.0/16), the bridge at `gateway` (default the
    first address). `internal`: no NAT, no traffic to other networks, no default route.
    `ip_range`: where containers' addresses come from; `aux_addresses`: addresses never handed
    out; `options`: the bridge's name and MTU (Docker's -o keys). `driver` macvlan or ipvlan:
    the containers join a host interface's wire instead (`options` parent= and the mode:
    network/macvlan.py). `ipv6`: dual-stack, on `subnet6` (default a free /64 of minirun's ULA
    pool, network/ipv6.py), the bridge at `gateway6` (default its first address); a subnet6
    without ipv6 is refused, as Docker refuses it."""
    n = eng.net.networks.create(name, subnet, gateway, internal, labels or {}, ip_range,
                                aux_addresses, options, driver=driver or "bridge", ipv6=ipv6,
                                subnet6=subnet6, gateway6=gateway6)
    journal.record(eng.root, "network", "create", n.Id, {"name": n.Name, "type": n.Driver})
    return {"Id": n.Id, "Warning": ""}


def list_(eng: Engine, filters: dict[str, list[str]] | None = None) -> list[dict]:
    """Every network matching every filter (name= a substring, driver=, label=k or k=v),
    sorted by name, the default one first; then host and none, which no filter hides.
    (The records alone, not eng.net: engine/networking.py brings network/bridge.py, socket and
    kernel/libc.py, ~3 ms of `network ls` that reads files only.)"""
    nets = Networks(eng.root).all()
    for k, values in (filters or {}).items():
        if k not in LIST_FILTERS:
            raise InvalidNetwork(f"invalid filter '{k}': name, driver or label")
        for v in values:
            nets = [n for n in nets if _matches(n, k, v)]
    return [_network(eng, n) for n in nets] + [_builtin(b) for b in BUILTIN]


def _matches(n: Network, k: str, v: str) -> bool:
    if k == "name":
        return v in n.Name
    if k == "driver":
        return n.Driver == v
    lk, eq, lv = v.partition("=")
    return lk in n.Labels and (not eq or n.Labels[lk] == lv)


def inspect(eng: Engine, name: str) -> dict:
    """Docker's Network, with the running containers on it and their addresses. NotFound if
    there is no such network (a unique ID prefix of 3 or more characters names one too)."""
    return _network(eng, Networks(eng.root).get(name))  # the records alone: see list_


def _users(eng: Engine, name: str) -> list[Container]:
    return [c for c in eng.all() if name in c.networks]


def _network(eng: Engine, n: Network) -> dict:
    containers = {}
    for c in _users(eng, n.Name):
        ep = c.networks[n.Name]
        if c.state.running:
            containers[c.id] = {"Name": c.name, "EndpointID": ep.get("EndpointID", ""),
                                "MacAddress": ep.get("MacAddress", ""),
                                "IPv4Address": f"{ep['IPAddress']}/{ep['IPPrefixLen']}",
                                "IPv6Address": f"{ep['GlobalIPv6Address']}/"
                                f"{ep['GlobalIPv6PrefixLen']}" if ep.get("GlobalIPv6Address")
                                else ""}
    # Dual-stack: a second IPAM entry, IPv4's first (Docker's order).
    v6 = [{"Subnet": n.Subnet6, "Gateway": n.Gateway6}] if n.EnableIPv6 else []
    return {"Name": n.Name, "Id": n.Id, "Created": n.Created, "Scope": "local",
            "Driver": n.Driver, "EnableIPv6": n.EnableIPv6,
            "IPAM": {"Driver": "default", "Options": {},
                     "Config": [{"Subnet": n.Subnet, "Gateway": n.Gateway,
                                 **({"IPRange": n.IPRange} if n.IPRange else {}),
                                 **({"AuxiliaryAddresses": dict(n.AuxAddresses)}
                                    if n.AuxAddresses else {})}, *v6]},
            "Internal": n.Internal, "Attachable": False, "Ingress": False,
            "Containers": containers,
            "Options": {**n.Options, **({"com.docker.network.bridge.name": n.Bridge}
                                        if n.Bridge else {})},
            "Labels": dict(n.Labels)}


def _builtin(b: dict) -> dict:
    # Created: Go's zero time, which every client parses (the docker CLI fails on "").
    return {**b, "Created": ZERO_TIME, "Scope": "local", "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": {}, "Config": []}, "Internal": False,
            "Attachable": False, "Ingress": False, "Containers": {}, "Options": {},
            "Labels": {}}


def remove(eng: Engine, name: str) -> None:
    """Remove a network and its bridge device. Conflict while a container is on it (running
    or not), and for the default network."""
    n = eng.net.networks.get(name)
    if n.default:
        raise NetworkConflict("bridge is a pre-defined network and cannot be removed")
    _remove(eng, n)


def _remove(eng: Engine, n: Network) -> None:
    users = _users(eng, n.Name)
    if users:
        raise NetworkConflict(f"error while removing network: network {n.Name} id {n.Id} has "
                              f"active endpoints ({', '.join(c.name for c in users)})")
    from ...network import bridge  # (~2 ms with socket, libc: not on `network ls`'s path)

    others = [x.Bridge for x in eng.net.networks.all()]
    with eng.net.networks.lock():
        bridge.remove(n, eng.runroot, others)
    if not n.default:
        eng.net.networks.remove(n.Name)
    eng.net.refresh(eng.containers)
    journal.record(eng.root, "network", "destroy", n.Id, {"name": n.Name, "type": n.Driver})


def prune(eng: Engine) -> dict:
    """Remove the user networks no container is on, and the default network's bridge device
    while no running container uses it (its record stays: it is pre-defined)."""
    gone = []
    for n in eng.net.networks.all():
        users = _users(eng, n.Name)
        if users and not (n.default and not any(c.state.running for c in users)):
            continue
        if n.default:
            _release(eng, n)
            continue
        _remove(eng, n)
        gone.append(n.Name)
    eng.net.refresh(eng.containers)
    return {"NetworksDeleted": gone}


def release_default(eng: Engine) -> bool:
    """Take down the default network's bridge device (and the NAT table with the last bridge)
    while no running container uses it, as `network prune` does, and nothing else: a user's own
    networks stay. False if it is in use or was not there."""
    n = eng.net.networks.get("bridge")
    if any(c.state.running for c in _users(eng, n.Name)):
        return False
    gone = _release(eng, n)
    eng.net.refresh(eng.containers)
    return gone


def _release(eng: Engine, n: Network) -> bool:
    from ...network import bridge  # (see _remove)

    was = bridge.exists(n.Bridge)
    with eng.net.networks.lock():
        bridge.remove(n, eng.runroot, [x.Bridge for x in eng.net.networks.all()])
    return was


def connect(eng: Engine, name: str, container: str, ip: str | None = None,
            aliases: list[str] | tuple[str, ...] = (), ip6: str | None = None) -> None:
    """Put a container on a network (at once if it runs: one more interface, ethN), at `ip`
    (and `ip6` on a dual-stack network) if given, also known there by `aliases`. Conflict if
    it is on it already, or on --network host, none or container:."""
    c = eng.get(container)
    net = eng.net.networks.get(name)
    eng.net.connect(eng.containers, c, net, ip, list(aliases), ip6)
    journal.record(eng.root, "network", "connect", net.Id, {"name": net.Name, "container": c.id})


def disconnect(eng: Engine, name: str, container: str, force: bool = False) -> None:
    """Take a container off a network (its interface goes at once if it runs). Conflict if it
    is not on it. (`force` is accepted, as Docker's.)"""
    c = eng.get(container)
    net = eng.net.networks.get(name)
    eng.net.disconnect(eng.containers, c, net)
    journal.record(eng.root, "network", "disconnect", net.Id,
                   {"name": net.Name, "container": c.id})


__all__ = ["create", "list_", "inspect", "remove", "prune", "release_default", "connect",
           "disconnect"]
