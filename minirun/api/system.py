"""System endpoints: /_ping, /version, /info, /system/df, /auth (and /events, to come)."""

from __future__ import annotations

from ..engine.api import distribution
from ..engine.api import events as events_api
from ..engine.api import system as system_api
from ..engine.api.version import version as version_info
from ..image.auth import default_path as auth_path
from . import wire
from .routes import API_VERSION, MIN_VERSION, route


@route("GET", "/_ping")
def ping(eng, req: wire.Request) -> wire.Response:
    # The docker CLI reads these headers to negotiate the version it speaks.
    return wire.Response(200, b"OK", content_type="text/plain; charset=utf-8",
                         headers={"Cache-Control": "no-cache, no-store, must-revalidate",
                                  "Pragma": "no-cache", "Builder-Version": "1"})


@route("POST", "/_ping")
def ping_post(eng, req: wire.Request) -> wire.Response:
    return ping(eng, req)


@route("GET", "/version")
def version(eng, req: wire.Request) -> wire.Response:
    v = version_info()
    v.update(MinAPIVersion=MIN_VERSION, ApiVersion=API_VERSION, GitCommit="", GoVersion="",
             BuildTime="", Experimental=False)
    for c in v.get("Components") or []:
        if c.get("Name") == "Engine":  # what `docker version` shows under Server: Engine
            c["Details"] = {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_VERSION,
                            "Os": v["Os"], "Arch": v["Arch"], "KernelVersion": v["KernelVersion"],
                            "GitCommit": "", "GoVersion": "", "BuildTime": "",
                            "Experimental": "false"}
    return wire.ok(v)


@route("GET", "/info")
def info(eng, req: wire.Request) -> wire.Response:
    return wire.ok(system_api.info(eng))


@route("GET", "/system/df")
def df(eng, req: wire.Request) -> wire.Response:
    return wire.ok(system_api.df(eng))


@route("POST", "/auth")
def auth(eng, req: wire.Request) -> wire.Response:
    body = req.json({}) or {}
    return wire.ok(distribution.login(auth_path(eng.root), body.get("serveraddress"),
                                      body.get("username", ""), body.get("password", "")))


@route("GET", "/events")
def events(eng, req: wire.Request) -> wire.Stream:
    """The event journal (engine/events.py) from `since`, to `until` or for as long as the
    client reads, one JSON object a line."""
    feed = events_api.events(eng, req.arg("since"), req.arg("until"), req.filters(),
                             alive=lambda: not wire.client_gone(req.connection))
    return wire.Stream((wire.json.dumps(e).encode() + b"\n" for e in feed))
