"""GET /containers/{id}/stats, on the engine API's stats module (engine/api/stats.py):

    ?stream=1 (the default)   a JSON object a second (each with the one before as its
                              precpu_stats), until the container stops or the client goes
    ?stream=0                 one object, precpu_stats from a first reading a second before
                              (what `docker stats --no-stream` computes CPU % from)
    ?stream=0&one-shot=1      one object at once, precpu_stats empty

In the shape `docker stats` renders: cpu_stats, precpu_stats, memory_stats, blkio_stats,
pids_stats, networks, read/preread, name and id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from ..base.times import ZERO_TIME
from ..engine.api import stats as api
from ..errors import NotFound
from . import wire
from .routes import route


@route("GET", "/containers/{id}/stats")
def stats(eng, req: wire.Request, id: str):  # noqa: A002 - Docker's name
    first = api.sample(eng, id)  # 404 now, before a stream's status line
    if not req.flag("stream", True):
        if req.flag("one-shot") or first["read"] == ZERO_TIME:
            return wire.ok(first)
        return wire.ok(next(api.stream(eng, id)))

    def body() -> Iterator[bytes]:
        yield _line(first)
        if first["read"] == ZERO_TIME:
            return  # not running: Docker's one zeroed object, and the end
        try:
            for s in api.stream(eng, id):
                yield _line(s)
                if s["read"] == ZERO_TIME:
                    return  # it stopped
        except NotFound:
            return  # removed meanwhile

    return wire.Stream(body())


def _line(obj: dict) -> bytes:
    return (json.dumps(obj) + "\n").encode()
