"""The loopback interface: every new network namespace has one, `lo`, and it starts down.

Until `lo` is up, nothing inside answers on 127.0.0.1 or ::1, not even a server talking to
itself. runc brings it up when it makes the namespace (libcontainer's "loopback" network), and
so does minirun-oci: the container's init, already in the new namespace, before the program
runs. It takes the ioctl that ifconfig uses (SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP), not
netlink: one socket and two calls, acting in the namespace the socket was made in.
"""

from __future__ import annotations

import _socket  # not `socket` (enum, selectors: ~5 ms of the runtime's start); a plain fd is enough
import fcntl

from .. import trace
from ..errors import KernelError

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def _ifreq(flags: int) -> bytes:
    """struct ifreq for "lo": the name (16 bytes), then ifr_flags (a short) in its union."""
    return b"lo".ljust(16, b"\0") + flags.to_bytes(2, "little") + bytes(22)


def up(where: str = "this network namespace") -> None:
    """`ip link set lo up` in the caller's network namespace."""
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        flags = int.from_bytes(fcntl.ioctl(sock, SIOCGIFFLAGS, _ifreq(0))[16:18], "little")
        if flags & IFF_UP:
            return
        if trace.enabled:
            trace.step(f"ioctl(SIOCSIFFLAGS, lo, flags={flags | IFF_UP:#x}) in {where}",
                       "bring the loopback up: 127.0.0.1 works inside")
        try:
            fcntl.ioctl(sock, SIOCSIFFLAGS, _ifreq(flags | IFF_UP))
        except OSError as e:
            raise KernelError("ioctl", f"SIOCSIFFLAGS lo up ({where})", e.errno or 1) from None
    finally:
        sock.close()
