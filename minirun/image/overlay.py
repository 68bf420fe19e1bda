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
  * The cwd belongs to the process, not the thread: compose starts services from threads and
    the API service answers from threads, so two mounts at once would chdir under each other
    and one kernel would resolve its lowerdirs against the wrong directory (ENOENT). One lock
    makes the chdir-mount-fchdir triple atomic within the process.
"""

from __future__ import annotations

import os
import sys
from _thread import allocate_lock  # (the monitor's start-up budget: no `threading` for a lock)

from .. import trace
from ..errors import MinirunError
from ..kernel import idmap, libc

PAGE = 4096
_CWD_LOCK = allocate_lock()  # held from chdir to fchdir back: the cwd is the process's


class OverlayError(MinirunError):
    exit_code = 125


def lowerdir_option(layer_names: list[str]) -> str:
    """lowerdir=TOP:...:BOTTOM from layer names given bottom first (the image's order)."""
    return "lowerdir=" + ":".join(reversed(layer_names))


def mount_rootfs(layers_dir: str, layer_names: list[str], container_dir: str,
                 idmaps: dict | None = None) -> str:
    """Mount the merged view at container_dir/rootfs; make upper/ and work/ there. Returns it.

    idmaps ({"UidMap": [[inside, outside, count]], "GidMap": ...}): the container runs in a user
    namespace, so its root must own the image: each layer is seen through an idmapped mount
    (or, where the kernel cannot, a copy with shifted owners) and the upper dir is its root's.
    """
    if not layer_names:
        raise OverlayError("the image has no layers: nothing to mount")
    upper, work, merged = (os.path.join(container_dir, n) for n in ("upper", "work", "rootfs"))
    for d in (upper, work, merged):
        os.makedirs(d, exist_ok=True)
    options = f"{lowerdir_option(layer_names)},upperdir={upper},workdir={work}"
    if len(options) >= PAGE:
        raise OverlayError(f"{len(layer_names)} layers do not fit in overlay's mount options "
                           f"({len(options)} bytes, the limit is one page)")
    helpers: list[str] = []
    if idmaps:
        layers_dir, helpers = _idmapped_layers(layers_dir, layer_names, container_dir, idmaps)
        # The merged root directory takes its owner from upper: the container's root owns /.
        os.chown(upper, idmap.shift(0, idmaps["UidMap"]), idmap.shift(0, idmaps["GidMap"]))
    if trace.enabled:
        trace.note(f"rootfs {merged}: overlay of lowerdir (the image, read-only, top first: "
                   f"{', '.join(reversed(layer_names))} in {layers_dir}), upperdir {upper} "
                   f"(the container's writes), workdir {work} (overlay's scratch)")
    try:
        mount_in(layers_dir, merged, options, 0,
                 f"the container's / : a writable layer over the image's {len(layer_names)} "
                 "read-only layers (copy-on-write)")
    finally:
        for h in helpers:
            # overlayfs took private clones of its layers: the idmapped helpers can go
            libc.umount2(h, libc.MNT_DETACH, "overlay holds its own copy of this idmapped layer")
            os.rmdir(h)
        if helpers:
            os.rmdir(os.path.dirname(helpers[0]))
    return merged


def mount_in(layers_dir: str, target: str, options: str, flags: int, why: str) -> None:
    """mount overlay at target, its lowerdirs named relative to layers_dir (we chdir there for
    the call: short names keep the options within one page)."""
    with _CWD_LOCK:
        old = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            libc.chdir(layers_dir, "name the layers relative to their directory: short options")
            libc.mount("overlay", target, "overlay", flags, options, why)
        finally:
            os.fchdir(old)
            os.close(old)


def _idmapped_layers(layers_dir: str, names: list[str], container_dir: str,
                     idmaps: dict) -> tuple[str, list[str]]:
    """Each layer, seen with the container's owners, under one directory: (its path, the
    helper mounts to detach once the overlay is up). Falls back to copies with shifted owners
    (kept in the container's directory) where idmapped mounts are not possible."""
    uid_map = [tuple(e) for e in idmaps["UidMap"]]
    gid_map = [tuple(e) for e in idmaps["GidMap"]]
    where = os.path.join(container_dir, "idmapped")
    os.makedirs(where, exist_ok=True)
    made: list[str] = []

    def undo(why: str) -> None:
        import shutil  # here: the monitor mounts rootfs and its start-up budget keeps shutil out

        for t in made:
            libc.umount2(t, libc.MNT_DETACH, why)
        shutil.rmtree(where, ignore_errors=True)

    try:
        ns = idmap.userns_fd(uid_map, gid_map)
        try:
            for name in names:
                target = os.path.join(where, name)
                os.makedirs(target, exist_ok=True)
                idmap.bind(os.path.join(layers_dir, name), target, ns)
                made.append(target)
        finally:
            os.close(ns)
        return where, made
    except idmap.Unsupported as e:
        undo("undo: idmapped mounts are not possible here")
        reason = e
    except BaseException:
        undo("undo: the rootfs could not be made")
        raise
    copies = os.path.join(container_dir, "layers-shifted")
    sys.stderr.write(f"minirun: no idmapped mounts here ({reason}): copying the image's layers "
                     "with shifted owners for this container (slower, and uses disk)\n")
    for name in names:
        dst = os.path.join(copies, name)
        if not os.path.exists(dst):
            # copied beside, renamed in whole: a half copy is never taken for a layer later
            import shutil  # (the monitor's start-up budget, as above)

            shutil.rmtree(dst + ".tmp", ignore_errors=True)
            idmap.chowned_copy(os.path.join(layers_dir, name), dst + ".tmp", uid_map, gid_map)
            os.rename(dst + ".tmp", dst)
        return copies, []


def unmount_rootfs(container_dir: str) -> None:
    """Unmount the merged view (lazily: a process may still hold it) if it is mounted."""
    merged = os.path.join(container_dir, "rootfs")
    if os.path.ismount(merged):
        try:
            libc.umount2(merged, libc.MNT_DETACH, "the container is gone: detach its root")
        except MinirunError as e:
            if getattr(e, "errno", 0) not in (22, 2):  # EINVAL, ENOENT: someone was quicker
                raise
