"""Idmapped mounts: the same files, seen with shifted owners.

A container in a user namespace has its root mapped to an unprivileged host uid (say 100000):
files the host's root owns look like nobody's to it, and what it creates belongs to 100000 on
the host. The image's layers and the volumes belong to the host's root, so the container could
not write its own /etc -- unless it sees them through an *idmapped mount* (Linux 5.12):
mount_setattr(MOUNT_ATTR_IDMAP) takes a user namespace and makes its uid/gid maps apply to the
files under one mount. Host root's file then shows as owned by 100000, which is the container's
root: "root inside" owns the image, while on disk nothing was chowned.

The steps, all with the new mount API (fds instead of paths):
    userns = a user namespace holding the mapping (a child unshares one; we keep an fd on it)
    fd = open_tree(path, OPEN_TREE_CLONE)           a detached copy of the mount at path
    mount_setattr(fd, MOUNT_ATTR_IDMAP, userns)     allowed only while it is attached nowhere
    move_mount(fd, target)                          attach it where it is wanted

Any user namespace with the same maps will do: the kernel copies the maps, not the namespace.
Where the kernel or the filesystem cannot (EINVAL, ENOSYS, EPERM), callers fall back to a
chowned copy and say so.
"""

from __future__ import annotations

import os
import stat

from ..errors import KernelError
from . import libc, namespaces

Map = list[tuple[int, int, int]]  # (first id inside, first id outside, count)


class Unsupported(Exception):
    """This kernel or filesystem cannot make idmapped mounts (the errno says why)."""


def userns_fd(uid_map: Map, gid_map: Map) -> int:
    """An fd on a fresh user namespace with these maps (no process stays in it)."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = libc.fork("a short-lived child to make a user namespace that holds the id maps")
    if pid == 0:
        try:
            os.close(ready_r)
            os.close(done_w)
            libc.unshare(libc.CLONE_NEWUSER, "a user namespace whose only job is to carry maps")
            os.write(ready_w, b"1")
            os.read(done_r, 1)  # until the parent holds the namespace
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise Unsupported("the child could not create a user namespace")
        namespaces.write_id_maps(pid, uid_map, gid_map)
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(done_w)
        os.waitpid(pid, 0)


def idmapped_tree(path: str, ns_fd: int, recursive: bool = False) -> int:
    """A detached, idmapped copy of the mount at `path`: an fd for move_mount()."""
    if os.environ.get("MINIRUN_NO_IDMAP", "") not in ("", "0"):
        raise Unsupported("MINIRUN_NO_IDMAP is set")  # to try the fallback on a capable host
    fd = libc.open_tree(path, recursive, "a detached copy of the mount, to be idmapped")
    try:
        libc.mount_setattr_idmap(fd, ns_fd, recursive, path, "see its files through the "
                                 "container's id maps: host root's files are the container "
                                 "root's")
    except KernelError as e:
        os.close(fd)
        if e.errno in (22, 38, 1, 95):  # EINVAL, ENOSYS, EPERM, EOPNOTSUPP: not here
            raise Unsupported(str(e)) from None
        raise
    return fd


def bind(path: str, target: str, ns_fd: int, recursive: bool = False) -> None:
    """Mount `path` at `target`, idmapped."""
    fd = idmapped_tree(path, ns_fd, recursive)
    try:
        libc.move_mount(fd, target, "attach the idmapped copy")
    finally:
        os.close(fd)


def shift(uid: int, m: Map) -> int:
    """An id seen inside the namespace -> the host id it maps to (65534, nobody, if unmapped)."""
    for inside, outside, count in m:
        if inside <= uid < inside + count:
            return outside + uid - inside
    return 65534


def unshift(uid: int, m: Map | None) -> int:
    """A host id -> the id the namespace sees it as (unchanged if the maps do not cover it)."""
    for inside, outside, count in m or ():
        if outside <= uid < outside + count:
            return inside + uid - outside
    return uid


def chowned_copy(src: str, dst: str, uid_map: Map, gid_map: Map) -> None:
    """The fallback where idmapped mounts are not available: a copy of src at dst whose owners
    are shifted through the maps (what the container would see through an idmapped mount).
    Slow and it costs disk: said so by the caller."""
    import shutil  # lazy: only this fallback copies (~7 ms; engine/monitor.py imports idmap)

    def fix(p: str, st: os.stat_result) -> None:
        os.lchown(p, shift(st.st_uid, uid_map), shift(st.st_gid, gid_map))
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(p, stat.S_IMODE(st.st_mode))  # chown clears setuid/setgid bits

    def copy_any(s: str, d: str) -> None:
        st = os.lstat(s)
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            os.mknod(d, st.st_mode, st.st_rdev)  # whiteouts are 0/0 character devices
        elif stat.S_ISFIFO(st.st_mode):
            os.mkfifo(d, stat.S_IMODE(st.st_mode))
        else:
            shutil.copy2(s, d)

    shutil.copytree(src, dst, symlinks=True, copy_function=copy_any)
    for dirpath, dirnames, filenames in os.walk(dst):
        rel = os.path.relpath(dirpath, dst)
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(src, rel, name))
            fix(os.path.join(dirpath, name), st)
    fix(dst, os.lstat(src))
