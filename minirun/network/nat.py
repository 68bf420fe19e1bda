"""NAT and filtering for minirun's networks: one nftables table, `ip minirun`, that is all ours
(`ip minirun-<hash>` for a --root other than the default: each root keeps its own).

    table ip minirun
      prerouting, output  (nat)   packets for one of the host's own addresses (fib daddr type
                                  local) -> `published`: one DNAT rule per published port
      postrouting         (nat)   per network: masquerade what leaves it for elsewhere (outbound
                                  NAT; not for --internal); masquerade 127.0.0.0/8 going into
                                  the bridge (a DNAT from localhost needs a routable source);
                                  hairpin: a container reaching its own subnet through a
                                  published port
      forward             (filter) isolation: nothing from one minirun network to another; an
                                  --internal network talks only to itself

The whole table is rewritten from the current state (networks, running containers, their
ports) in one `nft -f` transaction: `delete table` and the new table apply together or not at
all. So a crashed monitor's rules vanish at the next change, and nothing that minirun did not
make is ever touched. No network left: no table left.
"""

from __future__ import annotations

import subprocess

from .. import trace
from ..errors import MinirunError
from ..record import dataclass
from .networks import Network

TABLE = "minirun"


@dataclass
class Published:
    proto: str  # tcp or udp
    host_ip: str  # "" for every address of the host
    host_port: int
    ip: str  # the container's
    port: int


def ruleset(networks: list[Network], published: list[Published], table: str = TABLE) -> str:
    """The nft script that makes the table say exactly this (or removes it)."""
    head = f"table ip {table} {{}}\ndelete table ip {table}\n"
    if not networks:
        return head
    lines = [f"table ip {table} {{",
             "  chain prerouting { type nat hook prerouting priority dstnat; policy accept; "
             "fib daddr type local jump published; }",
             "  chain output { type nat hook output priority -100; policy accept; "
             "fib daddr type local jump published; }",
             "  chain published {"]
    for p in published:
        match = f"ip daddr {p.host_ip} " if p.host_ip not in ("", "0.0.0.0") else ""
        lines.append(f"    {match}{p.proto} dport {p.host_port} dnat to {p.ip}:{p.port}")
    lines.append("  }")
    lines.append("  chain postrouting { type nat hook postrouting priority srcnat; policy accept;")
    for n in networks:
        if not n.Internal:
            lines.append(f'    ip saddr {n.Subnet} oifname != "{n.Bridge}" masquerade')
        lines.append(f'    ip saddr 127.0.0.0/8 oifname "{n.Bridge}" masquerade')
        lines.append(f'    ip saddr {n.Subnet} ip daddr {n.Subnet} oifname "{n.Bridge}" '
                     "ct status dnat masquerade")
    lines.append("  }")
    lines.append("  chain forward { type filter hook forward priority filter; policy accept;")
    for n in networks:
        if n.Internal:
            lines.append(f'    iifname "{n.Bridge}" oifname != "{n.Bridge}" drop')
            lines.append(f'    oifname "{n.Bridge}" iifname != "{n.Bridge}" drop')
        for other in networks:
            if other.Bridge != n.Bridge:
                lines.append(f'    iifname "{n.Bridge}" oifname "{other.Bridge}" drop')
    lines.append("  }")
    lines.append("}")
    return head + "\n".join(lines) + "\n"


def apply(networks: list[Network], published: list[Published], table: str = TABLE) -> None:
    script = ruleset(networks, published, table)
    if trace.enabled:
        trace.step(f"nft -f - ({len(published)} published ports, {len(networks)} networks)",
                   f"replace table ip {table} in one transaction: NAT, ports, isolation")
    try:
        r = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True)
    except FileNotFoundError:
        raise MinirunError("nft is not installed: bridge networks need nftables (apt-get "
                           "install nftables), or use --network none|host") from None
    if r.returncode != 0:
        raise MinirunError(f"nft: {r.stderr.strip().splitlines()[-1] if r.stderr else 'failed'}")


def backend() -> str:
    """What `info` says about the firewall minirun uses."""
    import shutil  # lazy: ~2 ms (it brings bz2, lzma, fnmatch); only `info` asks (start-up budget)

    return "nftables (table ip minirun)" if shutil.which("nft") else "none (nft missing)"
