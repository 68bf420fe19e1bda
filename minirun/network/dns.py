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


def write(cdir: str, hostname: str, domainname: str = "", host_mode: bool = False) -> None:
    """Write cdir/hostname, cdir/hosts and cdir/resolv.conf (host mode: the host's own)."""
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
        hosts_text = hosts(hostname, domainname)
        resolv = resolv_conf(host_resolv)
    for name, text in (("hostname", hostname + "\n"), ("hosts", hosts_text),
                       ("resolv.conf", resolv)):
        tmp = os.path.join(cdir, f".{name}.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, os.path.join(cdir, name))
