"""The IPv6 half of a dual-stack network (`network create --ipv6`): its subnet, its gateway, and
where a subnet comes from when none is given.

    network create --ipv6 app                  10.222.1.0/24 and fdXX:XXXX:XXXX::/64 (the pool's
                                               first free /64), gateway ...::1 on the bridge
    network create --ipv6 --subnet fd00:1::/64 --gateway fd00:1::fe app

The pool is a ULA /48 of our own (RFC 4193): `fd` + a 40-bit Global ID taken from the host's
machine-id, so it is the same on every run on this host and differs from host to host (Docker
does the same since 27.0 from its engine ID; RFC 4193 3.2.2 asks for a pseudo-random Global
ID so that two sites' prefixes do not clash when they meet). Without /etc/machine-id the
Global ID is 6d72756e00 ("mrun"). Each network takes the lowest /64 of it that no other
network and no host route (/proc/net/ipv6_route: a LAN on fd00::/64, say) overlaps. A /64
because that is what every IPv6 host stack expects of a link (RFC 7421); addresses are handed
out from it as IPv4's are (the lowest free after the gateway), not by SLAAC: no router
advertisements are sent, and every address is added with IFA_F_NODAD (kernel/netlink.py).

The default network `bridge` stays IPv4-only, as Docker's does.
"""

from __future__ import annotations

import hashlib
import ipaddress

from .subnets import OverlapError, checked  # noqa: F401 (OverlapError: check raises it)

FALLBACK_GLOBAL_ID = "6d72756e00"  # "mrun": no /etc/machine-id


def pool() -> ipaddress.IPv6Network:
    """The ULA /48 that networks' IPv6 subnets come from (see the module's docstring)."""
    try:
        with open("/etc/machine-id") as f:
            machine = f.read().strip()
    except OSError:
        machine = ""
    gid = hashlib.sha256(b"minirun ipv6 pool " + machine.encode()).hexdigest()[:10] \
        if machine else FALLBACK_GLOBAL_ID
    return ipaddress.IPv6Network(f"fd{gid[:2]}:{gid[2:6]}:{gid[6:10]}::/48")


def host_routes() -> list[ipaddress.IPv6Network]:
    """Every IPv6 network the host routes to (/proc/net/ipv6_route), the default route,
    link-local, multicast and host routes aside."""
    out = []
    try:
        with open("/proc/net/ipv6_route") as f:
            for line in f:
                p = line.split()
                plen = int(p[1], 16)
                if plen == 0 or plen == 128:
                    continue
                net = ipaddress.IPv6Network((int(p[0], 16), plen), strict=False)
                if not (net.is_link_local or net.is_multicast):
                    out.append(net)
    except (OSError, ValueError, IndexError):
        pass
    return out


def free_subnet(taken: list[ipaddress.IPv6Network]) -> str:
    """The lowest /64 of the pool that overlaps nothing in `taken` nor any host route."""
    taken = taken + host_routes()
    base = pool()
    for cand in base.subnets(new_prefix=64):
        if not any(cand.overlaps(t) for t in taken):
            return str(cand)
    raise ValueError(f"no free /64 left in {base}")  # 65536 networks: never, in practice


def check(name: str, subnet: str, gateway: str | None,
          others: list[tuple[str, str]]) -> tuple[str, str]:
    """(subnet, gateway) of network `name`, both checked: a real IPv6 network of /126 or larger,
    not overlapping `others` ((network name, its IPv6 subnet) pairs), a gateway inside it that is
    not its Subnet-Router anycast address (RFC 4291 2.6.1: the all-zero host part). Raises
    ValueError with the one-line reason (the caller names the error class)."""
    net = checked(name, subnet, 6, others)
    if gateway is None:
        gw = net.network_address + 1
    else:
        try:
            gw = ipaddress.ip_address(gateway)
            if gw.version != 6:
                raise ValueError
        except ValueError:
            raise ValueError(f"network {name}: invalid IPv6 gateway {gateway!r}") from None
        if gw not in net or gw == net.network_address:
            raise ValueError(f"network {name}: gateway {gateway} is not a host address of "
                             f"subnet {net}")
    return str(net), str(gw)


def normal(address: str) -> str:
    """The canonical text of an IPv6 address (RFC 5952: fd00:0::05 -> fd00::5), the form the
    IPAM file and inspect hold."""
    return str(ipaddress.IPv6Address(address))
