"""Archive endpoints (docker cp), on the engine API's files module (engine/api/files.py):

    HEAD /containers/{id}/archive?path=    200 with X-Docker-Container-Path-Stat (base64 of
                                           {name, size, mode, mtime, linkTarget}); 404
    GET  /containers/{id}/archive?path=    the same header; the body a tar of the path
    PUT  /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=
                                           the body, a tar (maybe compressed), unpacked into
                                           directory `path`: 200; 400 not a directory, 404
                                           no such path, 409 a directory/non-directory clash

Tars stream both ways: neither is held in memory whole.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone

from ..engine.api import files
from ..errors import InvalidArgument
from . import streams, wire
from .routes import route

STAT_HEADER = "X-Docker-Container-Path-Stat"


def _path(req: wire.Request) -> str:
    path = req.arg("path")
    if not path:
        raise InvalidArgument("path is required")  # Docker: "Path cannot be empty"
    return path


def _stat_header(stat: dict) -> dict[str, str]:
    """Docker's header: mtime as RFC 3339 (Go's time.Time in JSON), the rest as it is."""
    out = dict(stat)
    mtime = datetime.fromtimestamp(float(stat.get("mtime") or 0), timezone.utc)
    out["mtime"] = mtime.isoformat().replace("+00:00", "Z")
    return {STAT_HEADER: base64.b64encode(json.dumps(out).encode()).decode()}


@route("HEAD", "/containers/{id}/archive")
def head(eng, req: wire.Request, id: str) -> wire.Response:  # noqa: A002 - Docker's name
    return wire.Response(200, headers=_stat_header(files.archive_stat(eng, id, _path(req))))


@route("GET", "/containers/{id}/archive")
def get(eng, req: wire.Request, id: str):  # noqa: A002
    path = _path(req)
    header = _stat_header(files.archive_stat(eng, id, path))  # 404 before the stream starts
    return wire.Stream(streams.from_writer(lambda out: files.archive_get(eng, id, path, out)),
                       content_type="application/x-tar", headers=header)


@route("PUT", "/containers/{id}/archive")
def put(eng, req: wire.Request, id: str) -> wire.Response:  # noqa: A002
    path = _path(req)
    body = IterReader(req.stream_body())
    try:
        files.archive_extract(eng, id, path, body,
                              no_overwrite_dir_non_dir=req.flag("noOverwriteDirNonDir"),
                              copy_uid_gid=req.flag("copyUIDGID"))
    finally:
        body.drain()  # what tarfile left unread (its end blocks): the connection stays usable
    return wire.ok()


class IterReader:
    """A read-only binary file over an iterator of bytes (the request body, chunk by chunk):
    what tarfile's stream mode reads from."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it: Iterator[bytes] = iter(chunks)
        self._buf = b""
        self._pos = 0  # what of _buf was read (no copy of the rest at each small read)

    def read(self, size: int = -1) -> bytes:
        parts = []
        while size != 0:
            if self._pos >= len(self._buf):
                self._buf, self._pos = next(self._it, b""), 0
                if not self._buf:
                    break
            end = len(self._buf) if size < 0 else min(len(self._buf), self._pos + size)
            parts.append(self._buf[self._pos:end])
            size -= end - self._pos if size > 0 else 0
            self._pos = end
        return b"".join(parts)

    def drain(self) -> None:
        self._buf, self._pos = b"", 0
        for _ in self._it:
            pass
