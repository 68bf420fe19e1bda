"""A container without a mount namespace of its own: its rootfs lives in the runtime's.

runtime-spec (config-linux.md, Namespaces): "If a namespace type is not specified in the
namespaces array, the container MUST inherit the runtime namespace of that type." Without a
`mount` entry the container therefore shares the host's mount table, and everything create
mounts is visible on the host. So that it can all be undone (runtime.md, Delete: "Deleting a
container MUST delete the resources that were created during the create step"):

  1. the runtime binds the rootfs onto itself and makes that bind private (bind_root): each
     mount of config.json lands below it, none propagates to a peer, and one lazy unmount of
     the bind takes them all away (detach_root, at delete or a failed create);
  2. the init never pivots (pivot_root would swap the root of every process in the host's
     namespace) and never touches the propagation of / (the host's): it chroot()s into the
     rootfs (enter_root), as runc does in this case. A chroot is weaker than pivot_root: a
     process holding CAP_SYS_CHROOT can leave it, which is what sharing the host's mount
     table means anyway;
  3. `exec` enters the same root through /proc/INIT/root, since there is no namespace to join.

A user namespace cannot mount in the host's mount namespace (it is owned by the host's user
namespace), so such a config is refused (oci/spec.py).
"""

from __future__ import annotations

import os

from . import libc
from .libc import MNT_DETACH, MS_BIND, MS_PRIVATE, MS_REC


def mount_id(path: str) -> int:
    """The kernel's ID of the mount `path` is on (mnt_id in /proc/self/fdinfo), 0 if none."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            for line in f:
                if line.startswith("mnt_id:"):
                    return int(line.split()[1])
    finally:
        os.close(fd)
    return 0


def bind_root(rootfs: str) -> int:
    """Step 1, in the runtime: returns the bind's mount ID, which delete checks before it
    detaches (never someone else's mount at that path)."""
    libc.mount(rootfs, rootfs, None, MS_BIND | MS_REC, None,
               "no mount namespace: bind the rootfs onto itself, so that the container's mounts "
               "form one tree under it in the host's mount table")
    try:
        libc.mount(None, rootfs, None, MS_PRIVATE | MS_REC, None,
                   "and make that tree private: nothing mounted in it propagates to peers")
    except BaseException:
        libc.umount2(rootfs, MNT_DETACH, "undo the bind: create failed")
        raise
    return mount_id(rootfs)


def detach_root(rootfs: str, made_id: int) -> None:
    """Undo bind_root and every mount below it, if the mount at `rootfs` is still the one we
    made (a second delete, or an admin's unmount, must not detach someone else's)."""
    if not made_id or mount_id(rootfs) != made_id:
        return
    libc.umount2(rootfs, MNT_DETACH, "delete: detach the container's mounts from the host's "
                 "mount table (it had no mount namespace to take them away)")


def enter_root(rootfs: str) -> None:
    """Step 2, in the init: chroot into the rootfs (see the module docstring for why)."""
    libc.chdir(rootfs, "enter the new root")
    libc.chroot(".", "no mount namespace: chroot into the rootfs (pivot_root would change the "
                "root of every process on the host)")
    libc.chdir("/", "stand in the container's /")


def enter_root_of(pid: int) -> None:
    """Step 3, for `exec`: the root the container's init chroot()ed into."""
    libc.chroot(f"/proc/{pid}/root", "no mount namespace to join: chroot into the container's "
                "root, as its init did")
    libc.chdir("/", "stand in the container's /")
