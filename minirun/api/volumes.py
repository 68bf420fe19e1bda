"""Volume endpoints: Docker's /volumes."""

from __future__ import annotations

from ..engine.api import volumes as api
from . import wire
from .routes import route


@route("GET", "/volumes")
def list_(eng, req: wire.Request) -> wire.Response:
    return wire.ok(api.list_(eng, req.filters()))


@route("POST", "/volumes/create")
def create(eng, req: wire.Request) -> wire.Response:
    body = req.json({}) or {}
    return wire.ok(api.create(eng, body.get("Name") or None, body.get("Driver") or "local",
                              body.get("Labels") or {}), 201)


@route("GET", "/volumes/{name}")
def inspect(eng, req: wire.Request, name: str) -> wire.Response:
    return wire.ok(api.inspect(eng, name))


@route("DELETE", "/volumes/{name}")
def remove(eng, req: wire.Request, name: str) -> wire.Response:
    api.remove(eng, name, force=req.flag("force"))
    return wire.no_content()


@route("POST", "/volumes/prune")
def prune(eng, req: wire.Request) -> wire.Response:
    return wire.ok(api.prune(eng, **_prune_args(req)))


def _prune_args(req: wire.Request) -> dict:
    filters = req.filters()
    return {"all": filters.get("all", ["false"])[-1] in ("1", "true")} if "all" in filters else {}
