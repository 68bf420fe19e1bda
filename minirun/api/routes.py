"""The route table: method + path -> the function that answers, as Docker's router has it.

Paths may carry a version, `/v1.41/containers/json`; from 1.24 up to ours (API_VERSION) is
accepted, as is no version at all (the newest). Each endpoint module registers its routes with
`@route("GET", "/containers/{id}/json")`; `{name:.*}` matches across slashes (image names
have them). What Docker has and minirun does not (Swarm, plugins ...) answers 501 by name.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..engine.api.version import API_VERSION
from ..errors import InvalidArgument, NotFound, Unsupported
from . import wire

MIN_VERSION = "1.24"
_VERSION = re.compile(r"^/v(\d+)\.(\d+)(/.*)$")
_ROUTES: list[tuple[str, re.Pattern, Callable]] = []

# Docker's endpoint families that only exist with Swarm, or that minirun does not have.
UNSUPPORTED = ("/swarm", "/services", "/tasks", "/secrets", "/configs", "/nodes", "/plugins",
               "/distribution", "/images/search", "/session", "/grpc")


def _key(v: str) -> tuple[int, int]:
    major, minor = v.split(".")
    return int(major), int(minor)


def split_version(path: str) -> tuple[str, str]:
    """("1.41", "/containers/json") from "/v1.41/containers/json"; ("", path) without one."""
    m = _VERSION.match(path)
    if not m:
        return "", path
    version = f"{m[1]}.{m[2]}"
    if _key(version) > _key(API_VERSION):
        raise InvalidArgument(f"client version {version} is too new. Maximum supported API "
                              f"version is {API_VERSION}")
    if _key(version) < _key(MIN_VERSION):
        raise InvalidArgument(f"client version {version} is too old. Minimum supported API "
                              f"version is {MIN_VERSION}, please upgrade your client to a "
                              "newer version")
    return version, m[3]


def route(method: str, pattern: str) -> Callable[[Callable], Callable]:
    """Register `fn(eng, req, **params)` for `method` on `pattern`."""
    regex = re.sub(r"\{(\w+)(?::([^}]+))?\}",
                   lambda m: f"(?P<{m[1]}>{m[2] or '[^/]+'})", pattern)

    def register(fn: Callable) -> Callable:
        _ROUTES.append((method, re.compile(f"^{regex}$"), fn))
        return fn

    return register


def dispatch(eng, req: wire.Request):
    _load()
    allowed = False
    for method, regex, fn in _ROUTES:
        m = regex.match(req.path)
        if not m:
            continue
        if method == req.method or (method == "GET" and req.method == "HEAD"):
            return fn(eng, req, **m.groupdict())
        allowed = True
    if any(req.path == p or req.path.startswith(p + "/") for p in UNSUPPORTED):
        raise Unsupported(f"{req.path}: minirun has no Swarm, plugins or registry search "
                          "(docs/api.md lists what it answers)")
    if allowed:
        return wire.error(405, f"method {req.method} not allowed on {req.path}")
    raise NotFound(f"page not found: {req.method} {req.path}")


_loaded = False


def _load() -> None:
    """Import the endpoint modules (they register their routes) on the first request."""
    global _loaded
    if not _loaded:
        from . import (archive, attach, build, containers, exec, images,  # noqa: F401,A004
                       networks, stats, system, volumes)
        _loaded = True


__all__ = ["API_VERSION", "route", "dispatch", "split_version"]
