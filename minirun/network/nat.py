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

    table ip6 minirun   the same chains for IPv6, while a dual-stack network (--ipv6) has a
                        bridge: DNAT of published ports to the containers' IPv6 addresses,
                        masquerade of their IPv6 subnets going out (outbound NAT, as Docker's
                        ip6tables rules do), hairpin, and the same isolation
      output              also skips ::1: the kernel drops a packet for ::1 that comes back
                          on any interface but lo (RFC 4291 2.5.3), and IPv6 has no
                          route_localnet; published ports on [::1] go through a userland
                          proxy instead (network/proxy.py), as Docker's do through docker-proxy

Why a second table of the same name and not one `inet` table for both families: the IPv4 table
stays exactly what it was (the rules, the name that `nft list table ip minirun`, the benches
and users know; nothing to migrate on hosts that have it); the IPv6 one exists only while a
dual-stack network is in use, so an IPv4-only host never has it; and every rule is one
family's anyway (`ip saddr` against `ip6 saddr`, `dnat to` an address of one family), which an
inet table would have to say in each rule. This is the iptables/ip6tables split Docker has.

Both tables are rewritten from the current state (networks, running containers, their ports)
in one `nft -f` transaction: `delete table` and the new tables apply together or not at all.
So a crashed monitor's rules vanish at the next change, and nothing that minirun did not make
is ever touched. No network left: no table left (nor an ip6 one without a dual-stack network).
"""

from __future__ import annotations

import os
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
    ip6: str = ""  # the container's IPv6 address ("": it has none)


def ruleset(networks: list[Network], published: list[Published], table: str = TABLE) -> str:
    """The nft script that makes the table say exactly this (or removes it)."""
    head = f"table ip {table} {{}}\ndelete table ip {table}\n"
    v6 = _ruleset6(networks, published, table)
    if not networks:
        return head + v6
    lines = [f"table ip {table} {{",
             "  chain prerouting { type nat hook prerouting priority dstnat; policy accept; "
             "fib daddr type local jump published; }",
             "  chain output { type nat hook output priority -100; policy accept; "
             "fib daddr type local jump published; }",
             "  chain published {"]
    for p in published:
        if ":" in p.host_ip:
            continue  # an IPv6 host address: the ip6 table's, or the proxy's
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
    lines += _forward(networks)
    lines.append("}")
    return head + "\n".join(lines) + "\n" + v6


def _ruleset6(networks: list[Network], published: list[Published], table: str) -> str:
    """The ip6 table: there while a dual-stack network has a bridge, gone otherwise."""
    head = f"table ip6 {table} {{}}\ndelete table ip6 {table}\n"
    if not any(n.EnableIPv6 for n in networks):
        return head
    lines = [f"table ip6 {table} {{",
             "  chain prerouting { type nat hook prerouting priority dstnat; policy accept; "
             "fib daddr type local jump published; }",
             # ::1 cannot be DNATed to another interface (see the module's docstring): the proxy.
             "  chain output { type nat hook output priority -100; policy accept; "
             "ip6 daddr != ::1 fib daddr type local jump published; }",
             "  chain published {"]
    for p in published:
        if not p.ip6 or p.host_ip in ("0.0.0.0", "::1") or "." in p.host_ip:
            continue  # no IPv6 address to send to, loopback (the proxy's), or an IPv4 binding
        match = f"ip6 daddr {p.host_ip} " if p.host_ip not in ("", "::") else ""
        lines.append(f"    {match}{p.proto} dport {p.host_port} dnat to [{p.ip6}]:{p.port}")
    lines.append("  }")
    lines.append("  chain postrouting { type nat hook postrouting priority srcnat; policy accept;")
    for n in networks:
        if not n.EnableIPv6:
            continue
        if not n.Internal:
            lines.append(f'    ip6 saddr {n.Subnet6} oifname != "{n.Bridge}" masquerade')
        lines.append(f'    ip6 saddr {n.Subnet6} ip6 daddr {n.Subnet6} oifname "{n.Bridge}" '
                     "ct status dnat masquerade")
    lines.append("  }")
    lines += _forward(networks)
    lines.append("}")
    return head + "\n".join(lines) + "\n"


def _forward(networks: list[Network]) -> list[str]:
    """The isolation chain, the same for both families."""
    lines = ["  chain forward { type filter hook forward priority filter; policy accept;"]
    for n in networks:
        if n.Internal:
            lines.append(f'    iifname "{n.Bridge}" oifname != "{n.Bridge}" drop')
            lines.append(f'    oifname "{n.Bridge}" iifname != "{n.Bridge}" drop')
        for other in networks:
            if other.Bridge != n.Bridge:
                lines.append(f'    iifname "{n.Bridge}" oifname "{other.Bridge}" drop')
    lines.append("  }")
    return lines


def apply(networks: list[Network], published: list[Published], table: str = TABLE,
          remember: str | None = None) -> bool:
    """Replace minirun's tables with the ruleset for these networks and ports. `remember`: a
    file beside the network records where the ruleset written last is kept, with the ruleset
    generation it made, the tables' contents read back from the kernel right after, and the
    boot it was made in (the generation counts again from zero after a reboot, and the tables
    are gone). Nothing is written (~15 ms of a bridge container's start) when the new ruleset
    is the one written last and the kernel still holds it: the generation has not moved, or it
    has (someone else's change: a firewall, Docker's or podman's rules) but our tables read
    back the same (kernel/nfgen.py). Returns whether nft ran."""
    script = ruleset(networks, published, table)
    if remember is not None:
        from ..kernel import nfgen  # lazy: only the callers that remember

        before = nfgen.generation()
        memo = _remembered(remember)
        if before is not None and memo is not None and memo[2] == script:
            if memo[0] == before:
                if trace.enabled:
                    trace.step(f"(no nft -f: tables {table} are as written at generation "
                               f"{before})", "nobody changed the ruleset since, and the new "
                               "one is the same")
                return False
            held = _held(nfgen, table, before)
            if held is not None and held == memo[1]:
                if trace.enabled:
                    trace.step(f"(no nft -f: the ruleset moved from generation {memo[0]} to "
                               f"{before}, but tables {table} read back as written)",
                               "someone else changed their own rules; ours are the same")
                _remember(remember, before, held, script)
                return False
    if trace.enabled:
        trace.step(f"nft -f - ({len(published)} published ports, {len(networks)} networks)",
                   f"replace tables ip and ip6 {table} in one transaction: NAT, ports, "
                   "isolation")
    try:
        r = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True)
    except FileNotFoundError:
        raise MinirunError("nft is not installed: bridge networks need nftables (apt-get "
                           "install nftables), or use --network none|host") from None
    if r.returncode != 0:
        raise MinirunError(f"nft: {r.stderr.strip().splitlines()[-1] if r.stderr else 'failed'}")
    if remember is not None:
        after = nfgen.generation()
        # Our batch is one transaction: one step. More means someone else changed the ruleset
        # meanwhile, and what the kernel holds is not known: forget, so the next call writes.
        held = None
        if before is not None and after == before + 1:
            held = _held(nfgen, table, after)
        _remember(remember, after if held is not None else None, held or b"", script)
    return True


def _held(nfgen, table: str, gen: int) -> bytes | None:
    """Our tables as the kernel holds them at generation `gen`, or None if the ruleset moved
    during the read (then what was read may be half of one and half of another)."""
    held = nfgen.tables(table)
    return held if held is not None and nfgen.generation() == gen else None


def _boot() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def _remembered(path: str) -> tuple[int, bytes, str] | None:
    """(generation, tables read back, script) of the last write in this boot, or None."""
    try:
        with open(path) as f:
            boot, gen, held, script = f.read().split("\n", 3)
        return (int(gen), bytes.fromhex(held), script) if boot and boot == _boot() else None
    except (OSError, ValueError):
        return None


def _remember(path: str, gen: int | None, held: bytes, script: str) -> None:
    from ..base.atomicfile import write_atomic  # lazy: see apply

    if gen is None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    write_atomic(path, f"{_boot()}\n{gen}\n{held.hex()}\n{script}", mode=0o600)


def backend() -> str:
    """What `info` says about the firewall minirun uses."""
    import shutil  # lazy: ~2 ms (it brings bz2, lzma, fnmatch); only `info` asks (start-up budget)

    return "nftables (tables ip and ip6 minirun)" if shutil.which("nft") else \
        "none (nft missing)"
