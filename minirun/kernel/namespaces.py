"""Namespaces: what each one isolates, and how a process enters one.

A namespace is made with unshare(2) (the caller moves in, except for PID and time namespaces,
which only the caller's *children* enter: that is why the container's init is forked after the
unshare) or joined with setns(2) on a /proc/PID/ns/* file.
"""

from __future__ import annotations

import os

from . import libc

# OCI type -> (clone flag, /proc/PID/ns name, what it isolates)
TYPES: dict[str, tuple[int, str, str]] = {
    "user": (libc.CLONE_NEWUSER, "user", "uids, gids and capabilities: root inside is not root outside"),
    "pid": (libc.CLONE_NEWPID, "pid", "process IDs: the container's init is PID 1"),
    "network": (libc.CLONE_NEWNET, "net", "interfaces, routes, firewall: only lo to start with"),
    "ipc": (libc.CLONE_NEWIPC, "ipc", "System V IPC and POSIX message queues"),
    "uts": (libc.CLONE_NEWUTS, "uts", "hostname and domain name"),
    "mount": (libc.CLONE_NEWNS, "mnt", "the mount table: the container gets its own /"),
    "cgroup": (libc.CLONE_NEWCGROUP, "cgroup", "the view of /proc/self/cgroup and cgroupfs"),
    "time": (libc.CLONE_NEWTIME, "time", "CLOCK_MONOTONIC and CLOCK_BOOTTIME offsets"),
}

# The order namespaces are joined in: user first (it decides which capabilities we hold for
# the rest), mount last (after it our paths resolve inside the container).
JOIN_ORDER = ["user", "cgroup", "ipc", "uts", "network", "pid", "time", "mount"]


def why(nstype: str) -> str:
    return TYPES[nstype][2]


def unshare_many(types: list[str]) -> None:
    """Create the given namespaces in one unshare(2) call."""
    if not types:
        return
    flags = 0
    for t in types:
        flags |= TYPES[t][0]
    libc.unshare(flags, "new " + ", ".join(types) + " namespaces for the container")


def join(nstype: str, path: str, reason: str = "") -> None:
    """setns(2) into the namespace behind `path`."""
    libc.setns(path, TYPES[nstype][0], reason or f"join the existing {nstype} namespace: {why(nstype)}")


def same_as_self(nstype: str, pid: int) -> bool:
    """Is process `pid` in the same namespace of this type as we are?"""
    name = TYPES[nstype][1]
    try:
        return os.stat(f"/proc/{pid}/ns/{name}").st_ino == os.stat(f"/proc/self/ns/{name}").st_ino
    except FileNotFoundError:
        return True


def write_id_maps(pid: int, uid_maps: list[tuple[int, int, int]],
                  gid_maps: list[tuple[int, int, int]]) -> None:
    """Write /proc/PID/{uid,gid}_map for a process that just unshared its user namespace.

    The kernel accepts exactly one write per file, from a process holding CAP_SETUID/CAP_SETGID
    in the parent namespace: that is why the runtime parent writes them, not the child.
    """
    if uid_maps:
        libc.write_file(f"/proc/{pid}/uid_map", "".join(f"{c} {h} {n}\n" for c, h, n in uid_maps),
                        "map container uids to host uids (lines: first container uid, first host uid, count)")
    if gid_maps and os.geteuid() != 0:
        # Without CAP_SETGID above it, a gid map is only accepted once setgroups(2) is off for
        # good in the namespace (user_namespaces(7)): else a user could drop a group that was
        # denying it access to a file.
        libc.write_file(f"/proc/{pid}/setgroups", "deny", "rootless: no setgroups(2) in there, "
                        "so that the kernel accepts our gid map")
    if gid_maps:
        libc.write_file(f"/proc/{pid}/gid_map", "".join(f"{c} {h} {n}\n" for c, h, n in gid_maps),
                        "map container gids to host gids")
