"""A container's root filesystem: overlayfs over the image's layers.

    merged (the container's /)  =  upper (the container's writable layer)
                                   over lowerdir=L_n:...:L_2:L_1 (the image, read-only)

overlayfs shows the union: a file is looked up in upper first, then in each lower layer from the
top. Writing a lower file copies it up first (copy-on-write); deleting one leaves a whiteout (a
0:0 character device) in upper; `rm` of the container deletes upper and work, and the image's
layers are untouched and shared by every container of that image.

Limits and tricks:
  * mount(2)'s options must fit in one page (4096 bytes). Absolute layer paths would allow only
    a few dozen layers, so we chdir into the store's layer directory and name the lowerdirs
    relatively by their 12-character names (the kernel resolves them against the caller's
    cwd): ~300 layers fit, more than Docker's 125.
  * upper and work must be on the same filesystem, and work must be empty.
"""

from __future__ import annotations

import os

from ..errors import MinirunError
from ..kernel import libc

PAGE = 4096


class OverlayError(MinirunError):
    exit_code = 125


def lowerdir_option(layer_names: list[str]) -> str:
    """lowerdir=TOP:...:BOTTOM from layer names given bottom first (the image's order)."""
    return "lowerdir=" + ":".join(reversed(layer_names))


def mount_rootfs(layers_dir: str, layer_names: list[str], container_dir: str) -> str:
    """Mount the merged view at container_dir/rootfs; make upper/ and work/ there. Returns it."""
    if not layer_names:
        raise OverlayError("the image has no layers: nothing to mount")
    upper, work, merged = (os.path.join(container_dir, n) for n in ("upper", "work", "rootfs"))
    for d in (upper, work, merged):
        os.makedirs(d, exist_ok=True)
    options = f"{lowerdir_option(layer_names)},upperdir={upper},workdir={work}"
    if len(options) >= PAGE:
        raise OverlayError(f"{len(layer_names)} layers do not fit in overlay's mount options "
                           f"({len(options)} bytes, the limit is one page)")
    old = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        libc.chdir(layers_dir, "name the layers relative to their directory: short options")
        libc.mount("overlay", merged, "overlay", 0, options,
                   f"the container's / : a writable layer over the image's {len(layer_names)} "
                   "read-only layers (copy-on-write)")
    finally:
        os.fchdir(old)
        os.close(old)
    return merged


def unmount_rootfs(container_dir: str) -> None:
    """Unmount the merged view (lazily: a process may still hold it) if it is mounted."""
    merged = os.path.join(container_dir, "rootfs")
    if os.path.ismount(merged):
        try:
            libc.umount2(merged, libc.MNT_DETACH, "the container is gone: detach its root")
        except MinirunError as e:
            if getattr(e, "errno", 0) not in (22, 2):  # EINVAL, ENOENT: someone was quicker
                raise
