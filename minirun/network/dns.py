"""The three /etc files every container gets, written into its directory and bind-mounted.

  hostname      the container's hostname (its short ID unless --hostname)
  hosts         localhost for IPv4 and IPv6, and the hostname (on 127.0.1.1 while the container
                has no address of its own, as Debian does for a host without one)
  resolv.conf   the host's, without loopback nameservers (a resolver on the host's 127.0.0.1 is
                unreachable from another network namespace); Google's public resolvers when
                nothing is left, which is what Docker falls back to
"""

from __future__ import annotations

import os

from ..base.atomicfile import write_atomic

FALLBACK = ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]


def resolv_conf(host_text: str) -> str:
    lines, servers = [], 0
    for line in host_text.splitlines():
        words = line.split()
        if words[:1] == ["nameserver"] and len(words) > 1:
            if words[1].startswith("127.") or words[1] == "::1":
                continue
            servers += 1
        lines.append(line)
    if not servers:
        lines += FALLBACK
    return "\n".join(lines).strip() + "\n"


def hosts(hostname: str, domainname: str = "", address: str = "127.0.1.1") -> str:
    fqdn = f"{hostname}.{domainname}" if domainname else hostname
    names = f"{fqdn} {hostname}" if domainname else hostname
    return ("127.0.0.1\tlocalhost\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\n"
            "ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
            f"{address}\t{names}\n")


def hosts_with(hostname: str, domainname: str, entries: list[tuple[str, list[str]]],
               has_address: bool) -> str:
    """/etc/hosts for a container with addresses: localhost, then `entries` (its own address
    with its hostname first, then its peers' on user networks, then --add-host)."""
    base = hosts(hostname, domainname)
    if has_address:
        base = "".join(line + "\n" for line in base.splitlines() if not line.startswith("127.0.1.1"))
    return base + "".join(f"{ip}\t{' '.join(names)}\n" for ip, names in entries)


def write(cdir: str, hostname: str, domainname: str = "", host_mode: bool = False,
          dns: list[str] | None = None, dns_search: list[str] | None = None,
          hosts_text: str | None = None) -> None:
    """Write cdir/hostname, cdir/hosts and cdir/resolv.conf (host mode: the host's own;
    --dns and --dns-search replace the host's resolvers and search domains)."""
    try:
        with open("/etc/resolv.conf") as f:
            host_resolv = f.read()
    except OSError:
        host_resolv = ""
    if host_mode:
        try:
            with open("/etc/hosts") as f:
                hosts_text = f.read()
        except OSError:
            hosts_text = hosts(hostname, domainname)
        resolv = host_resolv or "\n".join(FALLBACK) + "\n"
    else:
        hosts_text = hosts_text or hosts(hostname, domainname)
        resolv = resolv_conf(host_resolv)
    if dns or dns_search:
        kept = [ln for ln in resolv.splitlines() if not (dns and ln.startswith("nameserver"))
                and not (dns_search and ln.startswith(("search", "domain")))]
        resolv = "\n".join([f"nameserver {d}" for d in dns or []] +
                            ([f"search {' '.join(dns_search)}"] if dns_search else []) + kept) + "\n"
    for name, text in (("hostname", hostname + "\n"), ("hosts", hosts_text),
                       ("resolv.conf", resolv)):
        write_atomic(os.path.join(cdir, name), text, mode=0o666)
