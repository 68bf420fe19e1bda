"""A device node as the kernel layer makes it: what rootfs.setup_dev needs to mknod (or bind)
one node, in the container's /dev.

The runtime's spec parser (oci/spec.py) reads linux.devices into these records, so the kernel
takes its own type and never imports the runtime's (the layers: tests/unit/test_layering.py).
The light `record` dataclass: the create path builds these (start-up budget).
"""

from __future__ import annotations

from ..record import dataclass


@dataclass
class Device:
    """One node: type "c" (or "u"), "b" or "p", its path inside the container, numbers, mode
    and owner (None: the defaults, 0666 and root)."""

    type: str
    path: str
    major: int = 0
    minor: int = 0
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None
