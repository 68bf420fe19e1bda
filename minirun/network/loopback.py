"""`lo` up in a container's new network namespace.

A new network namespace has one interface, lo, and it is down: even 127.0.0.1 is unreachable.
Docker's `none` network brings it up (and nothing else). Setting an interface's flags is the
oldest network ioctl there is: SIOCGIFFLAGS / SIOCSIFFLAGS on any socket, in the namespace the
socket belongs to. So a forked helper joins the namespace (setns) and flips IFF_UP.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct

from ..kernel import namespaces

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def up(netns_path: str) -> None:
    """Bring lo up in the network namespace behind netns_path (/proc/PID/ns/net)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            namespaces.join("network", netns_path, "enter the container's network namespace "
                            "to bring its loopback interface up")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                req = struct.pack("16sH14x", b"lo", 0)
                flags = struct.unpack_from("16sH", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
                fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise OSError(f"could not bring lo up in {netns_path}")
