"""Networking for containers: what Docker's bridge driver does, in small pieces.

    networks.py   network records (`bridge`, the default, and user networks) and IPAM
    bridge.py     a network's bridge on the host; a container's veth pair plugged into it
    nat.py        one nftables table of minirun's own: outbound NAT, published ports, isolation
                  (and its ip6 twin while a dual-stack network is in use)
    ipv6.py       a dual-stack network's IPv6 subnet and gateway, and the ULA pool they come from
    proxy.py      the userland proxy for published ports the kernel cannot NAT ([::1])
    dns.py        /etc/hostname, /etc/hosts and /etc/resolv.conf of a container
    dnsserver.py  the embedded DNS server's protocol (127.0.0.11): questions in, A/PTR answers out
    resolver.py   the embedded DNS server's sockets, in one container, served by its monitor
    macvlan.py    macvlan and ipvlan networks: containers on a host interface's wire
    subnets.py    one check of a network's subnet, IPv4 or IPv6

Every link, address and route is made with rtnetlink (kernel/netlink.py). engine/networking.py
decides when: addresses at create, veths and rules at start, rules again at exit, addresses back
at rm.
"""
