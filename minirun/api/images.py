"""Image endpoints: Docker's /images (list, inspect, history, tag, remove, prune, pull)."""

from __future__ import annotations

import base64
import json

from ..engine.api import distribution
from ..engine.api import images as api
from ..errors import InvalidArgument
from ..image.auth import default_path as auth_path
from . import streams, wire
from .routes import route


@route("GET", "/images/json")
def list_(eng, req: wire.Request) -> wire.Response:
    return wire.ok(api.list_(eng.images(), req.filters()))


@route("GET", "/images/{name:.+}/json")
def inspect(eng, req: wire.Request, name: str) -> wire.Response:
    return wire.ok(api.inspect(eng.images(), name))


@route("GET", "/images/{name:.+}/history")
def history(eng, req: wire.Request, name: str) -> wire.Response:
    return wire.ok(api.history(eng.images(), name))


@route("POST", "/images/{name:.+}/tag")
def tag(eng, req: wire.Request, name: str) -> wire.Response:
    repo = req.arg("repo")
    if not repo:
        raise InvalidArgument("tag: repo is required")
    target = f"{repo}:{req.arg('tag')}" if req.arg("tag") else repo
    api.tag(eng.images(), name, target)
    return wire.ok(None, 201)


@route("DELETE", "/images/{name:.+}")
def remove(eng, req: wire.Request, name: str) -> wire.Response:
    return wire.ok(api.remove(eng.images(), name, force=req.flag("force"),
                              noprune=req.flag("noprune")))


@route("POST", "/images/prune")
def prune(eng, req: wire.Request) -> wire.Response:
    filters = req.filters()
    dangling = filters.pop("dangling", ["true"])[-1]
    return wire.ok(api.prune(eng.images(), all=dangling in ("0", "false"), filters=filters))


@route("POST", "/images/create")
def create(eng, req: wire.Request) -> wire.Stream:
    """Pull (fromImage, tag, platform), its progress streamed as Docker's JSON messages."""
    image = req.arg("fromImage")
    if not image:
        raise InvalidArgument("images/create: fromImage is required (fromSrc imports are not "
                              "supported)")
    tag = req.arg("tag")
    if tag:
        image = f"{image}@{tag}" if tag.startswith("sha256:") else f"{image}:{tag}"
    credentials = registry_auth(req)
    platform = req.arg("platform") or None

    def work(send) -> None:
        distribution.pull(eng.images(), image, platform=platform,
                          auth_file=auth_path(eng.root), progress=send, credentials=credentials)

    return wire.Stream(streams.json_messages(work))


def registry_auth(req: wire.Request) -> tuple[str, str] | None:
    """X-Registry-Auth (base64url JSON {username, password, serveraddress}): the client's
    credentials for this request only, as dockerd uses them (never stored); None for none, or
    an anonymous one (then the credentials of `minirun login` apply)."""
    header = req.headers.get("x-registry-auth")
    if not header:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except ValueError:
        raise InvalidArgument("X-Registry-Auth: not base64 JSON") from None
    if isinstance(data, dict) and data.get("username") and data.get("password"):
        return data["username"], data["password"]
    return None
