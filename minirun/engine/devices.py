"""--device and the device cgroup: which device nodes a container has, and which it may open.

A device is two things to a container, and Docker's --device sets both (moby
daemon/oci_linux.go WithDevices, pkg devices.DeviceFromPath):

  the node   linux.devices: the host node's type, major:minor, mode and owner, created by the
             runtime at the container path (HOST[:CONTAINER[:PERMS]], CONTAINER defaults to
             HOST; a directory gives every device node under it);
  the rule   linux.resources.devices: "allow TYPE MAJOR:MINOR PERMS" (v1 devices.allow, v2 the
             runtime's eBPF filter). Without a rule the node is there but open(2) fails EPERM.

Every container that is not --privileged starts from Docker's defaults: deny everything, allow
mknod of any node ("c *:* m", "b *:* m": making a node is harmless, opening it is what the
rules decide), then the runtime's standard nodes (null, zero, tty, ... kernel/cgroups/
devices.py). Without "deny all" a v1 container inherits its parent's devices cgroup, where
every device is allowed: root in the container, which holds CAP_MKNOD, could read the host's
disks.
"""

from __future__ import annotations

import os
import stat

from ..errors import InvalidArgument

DEFAULT_RULES = [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
]


def _valid_mode(mode: str) -> bool:
    """Docker's validDeviceMode: one or more of r, w, m, each at most once."""
    return bool(mode) and len(mode) <= 3 and set(mode) <= set("rwm") and len(set(mode)) == len(mode)


def parse(spec: str) -> dict:
    """--device HOST[:CONTAINER][:PERMS] -> HostConfig.Devices entry (the docker CLI's
    parseDevice): {"PathOnHost", "PathInContainer", "CgroupPermissions"}."""
    parts = spec.split(":")
    if not 1 <= len(parts) <= 3 or not parts[0]:
        raise InvalidArgument(f"invalid argument \"{spec}\" for \"--device\" flag: invalid "
                              f"device specification: {spec}")
    src, dst, perms = parts[0], "", "rwm"
    if len(parts) == 3:
        dst, perms = parts[1], parts[2]
    elif len(parts) == 2:
        if _valid_mode(parts[1]):
            perms = parts[1]
        else:
            dst = parts[1]
    return check({"PathOnHost": src, "PathInContainer": dst or src, "CgroupPermissions": perms})


def check(d: dict) -> dict:
    """A Devices entry as the daemon checks it (the API's, and parse()'s)."""
    if not isinstance(d, dict) or not d.get("PathOnHost"):
        raise InvalidArgument("invalid device mapping: PathOnHost is required")
    dst = d.get("PathInContainer") or d["PathOnHost"]
    perms = d.get("CgroupPermissions") or "rwm"
    if not _valid_mode(perms):
        raise InvalidArgument(f"invalid device mode: {perms} (use a combination of r, w and m)")
    if not dst.startswith("/"):
        raise InvalidArgument(f"invalid device mapping {d['PathOnHost']}:{dst}: {dst} is not "
                              "an absolute path")
    return {"PathOnHost": d["PathOnHost"], "PathInContainer": dst, "CgroupPermissions": perms}


def _node(path: str, st: os.stat_result, dst: str, perms: str) -> tuple[dict, dict]:
    kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    node = {"path": dst, "type": kind, "major": major, "minor": minor,
            "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}
    rule = {"allow": True, "type": kind, "major": major, "minor": minor, "access": perms}
    return node, rule


def gather(mappings: list[dict]) -> tuple[list[dict], list[dict]]:
    """The HostConfig.Devices entries as (linux.devices, their cgroup rules), read from the
    host's nodes now (the node's major:minor is the host's at this start, as in Docker)."""
    nodes: list[dict] = []
    rules: list[dict] = []
    for d in mappings:
        src, dst, perms = d["PathOnHost"], d["PathInContainer"], d["CgroupPermissions"]
        why = f"error gathering device information while adding custom device \"{src}\""
        try:
            st = os.stat(src)
        except OSError as e:
            raise InvalidArgument(f"{why}: {e.strerror.lower()}") from None
        if stat.S_ISDIR(st.st_mode):
            found = 0
            for dirpath, dirnames, filenames in os.walk(src):
                dirnames.sort()
                for name in sorted(filenames):
                    path = os.path.join(dirpath, name)
                    try:
                        sub = os.stat(path)
                    except OSError:
                        continue
                    if stat.S_ISCHR(sub.st_mode) or stat.S_ISBLK(sub.st_mode):
                        rel = os.path.relpath(path, src)
                        n, r = _node(path, sub, os.path.join(dst, rel), perms)
                        nodes.append(n)
                        rules.append(r)
                        found += 1
            if not found:
                raise InvalidArgument(f"{why}: no device nodes under this directory")
            continue
        if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            raise InvalidArgument(f"{why}: not a device node")
        n, r = _node(src, st, dst, perms)
        nodes.append(n)
        rules.append(r)
    return nodes, rules


def block_device(path: str) -> tuple[int, int]:
    """major, minor of the block device at `path` (--device-read-bps and the other throttles,
    blkio weights: the kernel names devices by number)."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise InvalidArgument(f"stat {path}: {e.strerror.lower()}") from None
    if not stat.S_ISBLK(st.st_mode):
        raise InvalidArgument(f"{path} is not a block device: I/O limits apply to disks")
    return os.major(st.st_rdev), os.minor(st.st_rdev)
