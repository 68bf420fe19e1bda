"""Network endpoints: Docker's /networks."""

from __future__ import annotations

from ..engine.api import networks as api
from ..errors import InvalidArgument
from . import wire
from .routes import route


@route("GET", "/networks")
def list_(eng, req: wire.Request) -> wire.Response:
    return wire.ok(api.list_(eng, req.filters()))


@route("GET", "/networks/{name}")
def inspect(eng, req: wire.Request, name: str) -> wire.Response:
    return wire.ok(api.inspect(eng, name))


@route("POST", "/networks/create")
def create(eng, req: wire.Request) -> wire.Response:
    body = req.json({}) or {}
    if not body.get("Name"):
        raise InvalidArgument("network create: Name is required")
    config = ((body.get("IPAM") or {}).get("Config") or [{}])
    if len(config) > 1:
        raise InvalidArgument("IPAM.Config: one subnet per network here (IPv4 only)")
    c = config[0] if config else {}
    return wire.ok(api.create(eng, body["Name"], body.get("Driver") or "bridge",
                              c.get("Subnet"), c.get("Gateway"), bool(body.get("Internal")),
                              body.get("Labels") or {}, c.get("IPRange"),
                              c.get("AuxiliaryAddresses"), body.get("Options")), 201)


@route("DELETE", "/networks/{name}")
def remove(eng, req: wire.Request, name: str) -> wire.Response:
    api.remove(eng, name)
    return wire.no_content()


@route("POST", "/networks/prune")
def prune(eng, req: wire.Request) -> wire.Response:
    return wire.ok(api.prune(eng))


@route("POST", "/networks/{name}/connect")
def connect(eng, req: wire.Request, name: str) -> wire.Response:
    body = req.json({}) or {}
    ep = body.get("EndpointConfig") or {}
    api.connect(eng, name, body.get("Container") or "",
                ((ep.get("IPAMConfig") or {}).get("IPv4Address")) or None, ep.get("Aliases") or ())
    return wire.ok()


@route("POST", "/networks/{name}/disconnect")
def disconnect(eng, req: wire.Request, name: str) -> wire.Response:
    body = req.json({}) or {}
    api.disconnect(eng, name, body.get("Container") or "", bool(body.get("Force")))
    return wire.ok()
