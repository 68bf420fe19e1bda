"""Networking for containers: the parts of a network namespace Docker sets up.

    dns.py        /etc/hostname, /etc/hosts and /etc/resolv.conf of a container
    loopback.py   `lo` up in a new network namespace (Docker's `none` network has it up)

The bridge, veth pairs, IPAM and NAT arrive with the networking issue (bridge.py, ipam.py,
nat.py); `--network none` and `--network host` need only these two.
"""
