"""A container's files: cp, diff and export (Docker's /containers/{id}/archive, changes and
export endpoints), done by engine/files.py without leaving the container's root.

    archive_stat(eng, ref, path)             -> PathStat    HEAD /containers/{id}/archive
    archive_get(eng, ref, path, out)         -> PathStat    GET  /containers/{id}/archive
    archive_put(eng, ref, path, stream)      -> None        PUT  /containers/{id}/archive
    archive_extract(eng, ref, path, stream, no_overwrite_dir_non_dir, copy_uid_gid)
                                             -> None        the same, with Docker's options
    copy_from(eng, ref, src, dest, archive)  -> None        `cp CONTAINER:SRC DEST` (host path)
    copy_to(eng, ref, src, dest, archive)    -> None        `cp SRC CONTAINER:DEST` (host path)
    changes(eng, ref)                        -> [{"Path", "Kind"}]   GET .../changes
    export(eng, ref, out)                    -> None        GET /containers/{id}/export

Tar streams are written to, or read from, a binary file object the caller gives (stdout, a
file, the API service's connection): a stopped container's rootfs is mounted only while the
call runs. PathStat is Docker's {"name", "size", "mode", "mtime", "linkTarget"}; Kind is
Docker's 0 changed, 1 added, 2 deleted. Errors: NotFound (no such container or path),
InvalidArgument (a destination that is not a directory, a tar entry that points outside).
"""

from __future__ import annotations

import os
import shutil
import tarfile
from typing import BinaryIO

from ...errors import Conflict, InvalidArgument
from ...kernel.rootfs import secure_join
from .. import files
from ..lifecycle import Engine
from ..userns import host_root

KINDS = {"C": 0, "A": 1, "D": 2}  # docker diff's letters -> the API's Kind


def archive_stat(eng: Engine, ref: str, path: str) -> dict:
    """Docker's PathStat of `path` in the container."""
    return files.stat_path(eng, eng.get(ref), path)


def archive_get(eng: Engine, ref: str, path: str, out: BinaryIO) -> dict:
    """`path` of the container (a file or a tree) as a tar stream written to `out`; its
    PathStat."""
    return files.archive_out(eng, eng.get(ref), path, out)


def archive_put(eng: Engine, ref: str, path: str, stream: BinaryIO) -> None:
    """Unpack the tar stream read from `stream` into directory `path` of the container."""
    files.archive_in(eng, eng.get(ref), path, stream)


def archive_extract(eng: Engine, ref: str, path: str, stream: BinaryIO,
                    no_overwrite_dir_non_dir: bool = False, copy_uid_gid: bool = False) -> None:
    """archive_put as Docker's PUT /containers/{id}/archive does it: `path` must be a directory
    (NotFound if it is not there, InvalidArgument if it is no directory); each entry is owned by
    the container's root, or by the tar's numeric owners with `copy_uid_gid`; with
    `no_overwrite_dir_non_dir` (the docker CLI's cp always asks) an entry may not replace a
    directory with a non-directory or the other way round (Conflict)."""
    c = eng.get(ref)
    root_ids = host_root(c.host_config.get("IDMappings"))  # "root" in a user namespace
    with files.root_of(eng, c) as root:
        target = secure_join(root, path)
        if not os.path.lexists(target):
            raise files.NoSuchPath(f"Could not find the file {path} in container {c.name}")
        if not os.path.isdir(target):
            raise InvalidArgument(f"extraction point is not a directory: {path}")
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for m in tar:
                _extract_one(tar, m, root, target, no_overwrite_dir_non_dir,
                             (m.uid, m.gid) if copy_uid_gid else root_ids)


def _extract_one(tar: tarfile.TarFile, m: tarfile.TarInfo, root: str, target: str,
                 no_overwrite: bool, owner: tuple[int, int]) -> None:
    """One entry, as engine/files.py unpacks it: every path resolved inside the container's
    root (secure_join), never through a symlink out of it."""
    name = os.path.normpath(m.name)
    if name in (".", ""):
        dest = target
    else:
        if name.startswith("..") or os.path.isabs(name):
            raise InvalidArgument(f"refusing tar entry {m.name!r}: it points outside the "
                                  "destination")
        parent = secure_join(root, "/" + os.path.relpath(
            os.path.join(target, os.path.dirname(name)), root))
        dest = os.path.join(parent, os.path.basename(name))
    exists = os.path.lexists(dest)
    is_dir = exists and os.path.isdir(dest) and not os.path.islink(dest)
    if no_overwrite and exists and is_dir != m.isdir():
        what = "directory" if is_dir else "non-directory"
        raise Conflict(f"cannot overwrite {what} {'/' + os.path.relpath(dest, root)} with "
                       f"{'directory' if m.isdir() else 'non-directory'} {m.name}")
    if m.isdir():
        if exists and not is_dir:
            os.unlink(dest)
        os.makedirs(dest, exist_ok=True)
    elif m.issym() or m.isfile():
        if is_dir:
            shutil.rmtree(dest)
        elif exists:
            os.unlink(dest)
        if m.issym():
            os.symlink(m.linkname, dest)
        else:
            with open(dest, "wb") as f:
                shutil.copyfileobj(tar.extractfile(m), f)
    else:
        return  # devices, fifos, hard links: not what docker cp carries
    os.lchown(dest, *owner)
    if not m.issym():
        os.chmod(dest, m.mode & 0o7777)
        os.utime(dest, (m.mtime, m.mtime))


def copy_from(eng: Engine, ref: str, src: str, dest: str, archive: bool = False) -> None:
    """A file or a tree of the container copied to host path `dest` (into it if it is a
    directory; SRC/. copies SRC's content)."""
    files.copy_out(eng, eng.get(ref), src, dest, archive)


def copy_to(eng: Engine, ref: str, src: str, dest: str, archive: bool = False) -> None:
    """Host file or tree `src` copied into the container at `dest`, owned by the container's
    root (`archive`: the source's owners kept)."""
    files.copy_in(eng, eng.get(ref), src, dest, archive)


def changes(eng: Engine, ref: str) -> list[dict]:
    """What the container's writable layer holds, sorted by path: [{"Path": "/etc/x",
    "Kind": 0 changed, 1 added, 2 deleted}]."""
    return [{"Path": path, "Kind": KINDS[kind]}
            for kind, path in files.diff(eng, eng.get(ref))]


def export(eng: Engine, ref: str, out: BinaryIO) -> None:
    """The container's filesystem (running or not; not its volumes or /proc) as a flat tar
    written to `out`."""
    files.export(eng, eng.get(ref), out)


__all__ = ["archive_stat", "archive_get", "archive_put", "archive_extract", "copy_from",
           "copy_to", "changes", "export", "KINDS"]
