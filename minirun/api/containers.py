"""Container endpoints: Docker's /containers, on the engine API's containers module.

(attach, exec, archive and stats: attach.py, exec.py, archive.py, stats.py.)
"""

from __future__ import annotations

from ..engine.api import attach as attach_api
from ..engine.api import containers as api
from ..engine.api import files
from ..engine.api import images as images_api
from ..engine.lifecycle import MonitorHandle
from ..errors import InvalidArgument, NotFound
from . import attach, streams, translate, wire
from .routes import route


@route("GET", "/containers/json")
def list_(eng, req: wire.Request) -> wire.Response:
    limit = req.integer("limit", -1)
    if req.flag("latest"):
        limit = 1
    rows = api.list_(eng, all=req.flag("all"), limit=limit if limit and limit > 0 else -1,
                     filters=req.filters())
    if req.flag("size"):  # real sizes: the writable layer, and with the image's (system.py)
        from ..engine.api import system as system_api  # lazily: it brings the cgroup code

        for row in rows:
            row.update(system_api.container_sizes(eng, row["Id"]))
    return wire.ok(rows)


@route("POST", "/containers/create")
def create(eng, req: wire.Request) -> wire.Response:
    body = req.json({}) or {}
    opts = translate.run_options(body, req.arg("name"))
    try:
        record = images_api.get(eng.images(), opts.image)
    except NotFound:
        # The docker CLI reads this 404 ("No such image") as "pull it, then create again".
        raise NotFound(f"No such image: {opts.image}") from None
    return wire.ok(api.create(eng, opts, record), 201)


@route("GET", "/containers/{id}/json")
def inspect(eng, req: wire.Request, id: str) -> wire.Response:  # noqa: A002 - Docker's name
    out = api.inspect(eng, id)
    if req.flag("size"):
        from ..engine.api import system as system_api  # lazily: it brings the cgroup code

        out.update(system_api.container_sizes(eng, out["Id"]))
    return wire.ok(out)


@route("POST", "/containers/{id}/start")
def start(eng, req: wire.Request, id: str) -> wire.Response:  # noqa: A002
    c = eng.get(id)
    if c.state.running:
        return wire.Response(304)  # Docker: already started
    waiting = attach.take_pending(c.id)  # an attach made before this start (docker run)
    try:
        api.start(eng, id, monitor=MonitorHandle(eng), attach=waiting is not None)
    finally:
        if waiting is not None:
            waiting.set()
    return wire.no_content()


@route("POST", "/containers/{id}/stop")
def stop(eng, req: wire.Request, id: str) -> wire.Response:  # noqa: A002
    c = eng.get(id)
    if not c.state.running:
        return wire.Response(304)  # Docker: already stopped
    api.stop(eng, id, req.integer("t", req.integer("timeout")), req.arg("signal"))
    return wire.no_content()


@route("POST", "/containers/{id}/restart")
def restart(eng, req: wire.Request, id: str) -> wire.Response:  # noqa: A002
    api.restart(eng, id, req.integer("t", req.integer("timeout")))
    return wire.no_content()


@route("POST", "/containers/{id}/kill")
def kill(eng, req: wire.Request, id: str) -> wire.Response:  # noqa: A002
    api.kill(eng, id, req.arg("signal", "KILL") or "KILL")
    return wire.no_content()


@route("POST", "/containers/{id}/pause")
def pause(eng, req: wire.Request, id: str) -> wire.Response:  # noqa: A002
    api.pause(eng, id)
    return wire.no_content()


@route("POST", "/containers/{id}/unpause")
def unpause(eng, req: wire.Request, id: str) -> wire.Response:  # noqa: A002
    api.unpause(eng, id)
    return wire.no_content()


@route("POST", "/containers/{id}/rename")
def rename(eng, req: wire.Request, id: str) -> wire.Response:  # noqa: A002
    api.rename(eng, id, req.arg("name"))
    return wire.no_content()


@route("POST", "/containers/{id}/update")
def update(eng, req: wire.Request, id: str) -> wire.Response:  # noqa: A002
    return wire.ok(api.update(eng, id, req.json({}) or {}))


@route("POST", "/containers/{id}/wait")
def wait(eng, req: wire.Request, id: str) -> wire.Stream:  # noqa: A002
    """Answered at once (200, the headers), the body when the condition is met: the docker
    CLI sends this before `start` and must know the wait is in place."""
    condition = req.arg("condition", "not-running") or "not-running"
    eng.get(id)  # 404 now, not in the middle of the stream
    if condition not in api.WAIT_CONDITIONS:
        raise InvalidArgument(f"invalid condition: {condition!r}")

    def body():
        yield b""  # the headers go now
        yield (wire.json.dumps(api.wait(eng, id, condition)) + "\n").encode()

    return wire.Stream(body())


@route("DELETE", "/containers/{id}")
def remove(eng, req: wire.Request, id: str) -> wire.Response:  # noqa: A002
    if req.flag("link"):
        raise InvalidArgument("links are not supported")
    api.remove(eng, id, force=req.flag("force"), volumes=req.flag("v"))
    return wire.no_content()


@route("POST", "/containers/prune")
def prune(eng, req: wire.Request) -> wire.Response:
    return wire.ok(api.prune(eng))


@route("GET", "/containers/{id}/top")
def top(eng, req: wire.Request, id: str) -> wire.Response:  # noqa: A002
    return wire.ok(api.top(eng, id))


@route("GET", "/containers/{id}/changes")
def changes(eng, req: wire.Request, id: str) -> wire.Response:  # noqa: A002
    return wire.ok(files.changes(eng, id))


@route("GET", "/containers/{id}/export")
def export(eng, req: wire.Request, id: str) -> wire.Stream:  # noqa: A002
    eng.get(id)  # 404 before the stream starts
    return wire.Stream(streams.from_writer(lambda out: files.export(eng, id, out)),
                       content_type="application/x-tar")


@route("POST", "/containers/{id}/resize")
def resize(eng, req: wire.Request, id: str) -> wire.Response:  # noqa: A002
    attach_api.resize(eng, id, req.integer("h", 0) or 0, req.integer("w", 0) or 0)
    return wire.ok()


@route("GET", "/containers/{id}/logs")
def logs(eng, req: wire.Request, id: str) -> wire.Stream:  # noqa: A002
    """The log, multiplexed (8-byte frame headers) unless the container has a TTY."""
    if not req.flag("stdout") and not req.flag("stderr"):
        raise InvalidArgument("you must choose at least one stream (stdout=1 or stderr=1)")
    c = eng.get(id)
    tty = bool(c.config.get("Tty"))
    wanted = {s for s in ("stdout", "stderr") if req.flag(s)}
    frames = api.logs(eng, id, follow=req.flag("follow"), tail=req.arg("tail", "all") or "all",
                      timestamps=req.flag("timestamps"), since=_unix(req.arg("since")),
                      until=_unix(req.arg("until")))

    def body():
        for stream, data in frames:
            if stream in wanted:
                yield data if tty else wire.frame(stream, data)

    kind = "application/vnd.docker.raw-stream" if tty else \
        "application/vnd.docker.multiplexed-stream"
    return wire.Stream(body(), content_type=kind)


def _unix(text: str) -> str:
    """since/until as the API sends them: Unix seconds (0 means none)."""
    if not text or text in ("0", "0.000000000"):
        return ""
    return text

