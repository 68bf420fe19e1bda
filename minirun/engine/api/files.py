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
call runs. Every path inside the container is looked up relative to an fd on its root
(kernel/resolve.py, openat2 RESOLVE_IN_ROOT) and used through fds, never as a host path
string: a running container can swap a directory for a symlink between a check and a use
(Docker's CVE-2018-15664). PathStat is Docker's {"name", "size", "mode", "mtime",
"linkTarget"}; Kind is Docker's 0 changed, 1 added, 2 deleted. Errors: NotFound (no such
container or path), InvalidArgument (a destination that is not a directory, a tar entry that
points outside), Conflict (noOverwriteDirNonDir).
"""

from __future__ import annotations

import errno
import os
import tarfile
from typing import BinaryIO

from ...errors import InvalidArgument
from ...kernel import resolve
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
    directory with a non-directory or the other way round (Conflict). Unpacked by
    files.extract_one: by fds inside the container's root, never through a path string."""
    c = eng.get(ref)
    root_ids = host_root(c.host_config.get("IDMappings"))  # "root" in a user namespace
    with files.root_fd(eng, c) as rootfd:
        try:
            target = resolve.open_in(rootfd, path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                raise
            if e.errno == errno.ENOTDIR and _exists(rootfd, path):
                raise InvalidArgument(f"extraction point is not a directory: {path}") from None
            raise files.NoSuchPath(f"Could not find the file {path} in container "
                                   f"{c.name}") from None
        try:
            with tarfile.open(fileobj=stream, mode="r|*") as tar:
                for m in tar:
                    files.extract_one(tar, m, rootfd, path, target,
                                      owner=(m.uid, m.gid) if copy_uid_gid else root_ids,
                                      no_overwrite=no_overwrite_dir_non_dir, attrs=True)
        finally:
            os.close(target)


def _exists(rootfd: int, path: str) -> bool:
    try:
        os.close(resolve.open_in(rootfd, path, os.O_PATH))
        return True
    except OSError:
        return False


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
