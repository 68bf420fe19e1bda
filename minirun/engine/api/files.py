"""A container's files: cp, diff and export (Docker's /containers/{id}/archive, changes and
export endpoints), done by engine/files.py without leaving the container's root.

    archive_stat(eng, ref, path)             -> PathStat    HEAD /containers/{id}/archive
    archive_get(eng, ref, path, out)         -> PathStat    GET  /containers/{id}/archive
    archive_put(eng, ref, path, stream)      -> None        PUT  /containers/{id}/archive
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

from typing import BinaryIO

from .. import files
from ..lifecycle import Engine

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


__all__ = ["archive_stat", "archive_get", "archive_put", "copy_from", "copy_to", "changes",
           "export", "KINDS"]
