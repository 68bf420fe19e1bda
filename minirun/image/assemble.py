"""Making images here (commit, build): a layer from a directory of changes, an image from a
config and its layers.

An image is three kinds of content-addressed blobs (image-spec):
  layers     tars of filesystem changes; a deletion is an empty file `.wh.NAME`, and
             `.wh..wh..opq` in a directory hides everything below it from the layers under it
  config     JSON: the runtime defaults (Env, Cmd, User ...), the layers' uncompressed digests
             (`rootfs.diff_ids`) and one `history` entry per step; its digest is the image ID
  manifest   JSON: the config's and the layers' blob digests, sizes and media types
A container's changes are overlayfs's upper directory, where a deletion is a 0:0 character
device and an opaque directory carries the xattr trusted.overlay.opaque=y: `layer_from_dir`
translates one into the other. Layers made here stay uncompressed in the store (blob digest =
diff_id), as `import` keeps them: a build step is not slowed by gzip; `push` compresses.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tarfile

from ..base.mediatypes import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST
from ..errors import ImageError
from ..kernel import resolve
from ..kernel.idmap import unshift
from .platform import host_platform
from .store import ImageRecord, Store

WHITEOUT, OPAQUE = ".wh.", ".wh..wh..opq"


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _Hashing:
    """A file object that hashes (and counts) what tarfile writes through it."""

    def __init__(self, f) -> None:
        self.f, self.h, self.size = f, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.h.update(data)
        self.size += len(data)
        return self.f.write(data)


def tarinfo_of(st: os.stat_result, arcname: str, inodes: dict) -> tarfile.TarInfo | None:
    """The tar entry tarfile.gettarinfo would make from `st` (an lstat or fstat), without a
    path: callers reading a tree by fds (a container's, which may change under them) stat
    relative to fds and pass the result. Owners as numbers, no names (the container's users
    are not the host's); a symlink's linkname is the caller's to fill in (os.readlink with
    dir_fd). `inodes`: (ino, dev) -> first name, shared by one tar, for hard links. None for
    a socket (tar has no entry for one)."""
    info = tarfile.TarInfo(arcname)
    mode = st.st_mode
    if stat.S_ISREG(mode):
        inode = (st.st_ino, st.st_dev)
        if st.st_nlink > 1 and inode in inodes and arcname != inodes[inode]:
            info.type, info.linkname = tarfile.LNKTYPE, inodes[inode]
        else:
            info.type, info.size = tarfile.REGTYPE, st.st_size
            if inode[0]:
                inodes[inode] = arcname
    elif stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    elif stat.S_ISLNK(mode):
        info.type = tarfile.SYMTYPE
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    else:
        return None
    info.mode = mode  # as gettarinfo: the header keeps mode & 0o7777
    info.uid, info.gid = st.st_uid, st.st_gid
    info.mtime = st.st_mtime
    info.uname = info.gname = ""
    return info


def _walk_levels(dir_fd: int, rel_dir: str = ""):
    """(relative directory "a/b/" or "", its fd, name, lstat) for everything under open
    directory `dir_fd`, in os.walk's order (a directory's whole listing, sorted, then each
    subdirectory in turn), which the layers made so far have: the same changes give the same
    tar, the same diff_id. By fds as resolve.walk: each subdirectory opened O_NOFOLLOW
    relative to its parent and checked to be the one listed (resolve.open_entry)."""
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        subdirs = []
        for name in sorted(os.listdir(fd)):
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue  # gone since the listing
            yield rel_dir, fd, name, st
            if stat.S_ISDIR(st.st_mode):
                subdirs.append((name, st))
        for name, st in subdirs:
            try:
                sub = resolve.open_entry(fd, name, st, os.O_RDONLY | os.O_DIRECTORY)
            except OSError as e:
                raise resolve.ResolveError(f"{resolve.where(fd)}/{name}", "is no longer a "
                                           f"directory (swapped while it was being read?): "
                                           f"{e.strerror}", e.errno or 0) from None
            try:
                yield from _walk_levels(sub, rel_dir + name + "/")
            finally:
                os.close(sub)
    finally:
        os.close(fd)


def write_layer_tar(upper: str, out, skip: set[str] = frozenset(),
                    idmaps: dict | None = None) -> bool:
    """Write the changes in overlay upper dir `upper` to `out` as an OCI layer tar, sorted.
    `skip`: "/paths" to leave out. idmaps: the container's maps; owners are written as the
    container saw them. Returns whether anything was written.

    `upper` is the container's to change while it runs (a commit without --pause, a build
    step's leftovers): it is walked by fds and each file read from an fd opened O_NOFOLLOW
    relative to its directory and checked to be the entry listed, never by a path, so a
    directory swapped for a symlink to the host mid-walk fails the commit instead of putting
    the host's files in the image (the CVE-2018-15664 race, on the commit side)."""
    um = (idmaps or {}).get("UidMap")
    gm = (idmaps or {}).get("GidMap")
    wrote = False
    inodes: dict = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        try:
            top = os.open(upper, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False  # (os.walk of a missing directory: nothing)
        try:
            for rel_dir, dfd, name, st in _walk_levels(top):
                rel = rel_dir + name
                if "/" + rel in skip:
                    continue
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:  # overlay's whiteout
                    info = tarfile.TarInfo(rel_dir + WHITEOUT + name)
                    info.mtime = int(st.st_mtime)
                    tar.addfile(info)
                    wrote = True
                    continue
                info = tarinfo_of(st, rel, inodes)
                if info is None:
                    continue  # a socket: no tar entry
                info.uid, info.gid = unshift(st.st_uid, um), unshift(st.st_gid, gm)
                # the entry itself, never followed: O_PATH for what is not read
                fd = resolve.open_entry(dfd, name, st,
                                        os.O_RDONLY if info.isreg() else os.O_PATH)
                try:
                    if info.issym():
                        info.linkname = os.readlink(name, dir_fd=dfd)
                    opaque = False
                    # /proc/self/fd/N: the xattrs of exactly that object (a symlink's own too)
                    obj = resolve.fd_path(fd)
                    try:
                        attrs = os.listxattr(obj)
                    except OSError:
                        attrs = []
                    for a in attrs:
                        v = os.getxattr(obj, a)
                        if a == "trusted.overlay.opaque":
                            opaque = v == b"y"
                        elif not a.startswith("trusted.overlay."):
                            info.pax_headers["SCHILY.xattr." + a] = v.decode("utf-8",
                                                                             "surrogateescape")
                    if info.isreg():
                        with os.fdopen(fd, "rb", closefd=False) as f:
                            tar.addfile(info, f)
                    else:
                        tar.addfile(info)
                finally:
                    os.close(fd)
                wrote = True
                if opaque:  # deleted and made again: nothing below it from the lower layers
                    o = tarfile.TarInfo(rel + "/" + OPAQUE)
                    o.mtime = int(st.st_mtime)
                    tar.addfile(o)
        finally:
            os.close(top)
    return wrote


def add_layer_from_dir(store: Store, upper: str, skip: set[str] = frozenset(),
                       idmaps: dict | None = None) -> tuple[str, int] | None:
    """The changes in `upper` as a layer in the store: (diff_id, tar size), or None if there
    are none (Docker adds no layer for an empty change, and marks the history entry so)."""
    with store.ingest(), store.staging() as staging:
        path = os.path.join(staging, "layer.tar")
        with open(path, "wb") as f:
            h = _Hashing(f)
            if not write_layer_tar(upper, h, skip, idmaps):
                return None
        diff_id = "sha256:" + h.h.hexdigest()
        with store.new_layer(diff_id) as target:
            if target is not None:
                # lazy: the unpacker (~2.8 ms of imports: urllib, queue, base64) is needed only
                # for a new layer, never by a fully cached build (start-up budget)
                from .layers import LayerError, apply_layer

                try:
                    apply_layer(path, target)
                except LayerError as e:
                    raise ImageError(f"the new layer cannot be unpacked: {e}") from None
        store.put_blob(path, diff_id)
        return diff_id, h.size


def add_layer_from_tar(store: Store, tar_path: str) -> str:
    """An uncompressed layer tar already written: unpack it into the store; its diff_id."""
    h = hashlib.sha256()
    with open(tar_path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    diff_id = "sha256:" + h.hexdigest()
    with store.new_layer(diff_id) as target:
        if target is not None:
            from .layers import apply_layer  # lazy: as above, only for a new layer

            apply_layer(tar_path, target)
    store.put_blob(tar_path, diff_id)
    return diff_id


def image_config(store: Store, record: ImageRecord | None) -> dict:
    """The full config JSON of a stored image (or a fresh one for `scratch`)."""
    if record is None:
        os_, arch, variant = host_platform()
        return {"architecture": arch, "os": os_, **({"variant": variant} if variant else {}),
                "config": {}, "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
    with store.open_blob(record.id) as f:
        return json.loads(f.read())


def write_image(store: Store, config: dict, tags: list[str] = (),
                base: ImageRecord | None = None) -> ImageRecord:
    """Store a config (its rootfs.diff_ids already in the store as layers) with an OCI
    manifest, as an image record, tagged. Layers inherited from `base` (a pulled image, say)
    keep its blobs (compressed, as the registry has them); layers made here are their own,
    uncompressed, blobs."""
    diff_ids = list(config["rootfs"]["diff_ids"])
    blob_of: dict[str, tuple[str, str, int]] = {}
    if base is not None and base.manifest and store.has_blob(base.manifest):
        with store.open_blob(base.manifest) as f:
            m = json.loads(f.read())
        for d, layer in zip(base.diff_ids, m.get("layers") or []):
            blob_of[d] = (layer["digest"], layer.get("mediaType", OCI_LAYER), layer.get("size", 0))
    layers = []
    for d in diff_ids:
        digest, media, size = blob_of.get(d) or (d, OCI_LAYER, _blob_size(store, d))
        if not store.has_blob(digest):  # (an archive loaded unpacked layers only)
            digest, media, size = d, OCI_LAYER, _blob_size(store, d)
        layers.append({"mediaType": media, "digest": digest, "size": size})
    data = json.dumps(config, indent=1).encode()
    cid = _sha256(data)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, "digest": cid, "size": len(data)},
                           "layers": layers}, indent=2).encode()
    store.put_blob(data, cid)
    store.put_blob(manifest, _sha256(manifest))
    plat = f"{config.get('os', 'linux')}/{config.get('architecture', '')}" + (
        f"/{config['variant']}" if config.get("variant") else "")
    return store.add_image(ImageRecord(
        id=cid, diff_ids=diff_ids, layers=[x["digest"] for x in layers],
        manifest=_sha256(manifest), repo_tags=list(tags), created=config.get("created", ""),
        platform=plat))


def _blob_size(store: Store, digest: str) -> int:
    try:
        return os.path.getsize(store.blob_path(digest))
    except OSError:
        return 0
