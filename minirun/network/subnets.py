"""One check of a network's subnet, for both address families: the IPv4 subnet of every network
(networks.py) and the IPv6 one of a dual-stack network (ipv6.py)."""

from __future__ import annotations

import ipaddress

# IP version -> (the word before "subnet" in the parse error, the longest prefix, an example)
_FAMILY = {4: ("", 30, "10.10.0.0/24"), 6: ("IPv6 ", 126, "fd00:1::/64")}


class OverlapError(ValueError):
    """A subnet that another network has (a part of) already."""


def checked(name: str, subnet: str, version: int, others) -> ipaddress.IPv4Network | \
        ipaddress.IPv6Network:
    """`subnet` of network `name` as a network of IP `version`, /30 (IPv4) or /126 (IPv6) or
    larger, overlapping none of `others` ((network name, its subnet) pairs, read only once the
    subnet itself is good; an empty subnet is none). Raises ValueError with the one-line
    reason, OverlapError for an overlap (the caller names the error class)."""
    kind, longest, example = _FAMILY[version]
    try:
        net = ipaddress.ip_network(subnet)
    except ValueError:
        raise ValueError(f"network {name}: invalid {kind}subnet {subnet!r} (use CIDR: "
                         f"{example})") from None
    if net.version != version or net.prefixlen > longest:
        raise ValueError(f"network {name}: subnet {subnet}: an IPv{version} network of "
                         f"/{longest} or larger is needed")
    for other, theirs in others:
        if theirs and ipaddress.ip_network(theirs).overlaps(net):
            raise OverlapError(f"network {name}: Pool overlaps with other one on this address "
                               f"space: {subnet} and network {other} ({theirs})")
    return net
