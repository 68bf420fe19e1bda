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
    # IPAM.Config: one pool per address family (dual-stack with EnableIPv6), told apart by
    # the subnet (or, without one, the gateway).
    pools: dict[int, dict] = {}
    for c in (body.get("IPAM") or {}).get("Config") or []:
        c = c or {}
        fam = 6 if ":" in (c.get("Subnet") or c.get("Gateway") or "") else 4
        if fam in pools:
            raise InvalidArgument(f"network {body['Name']}: IPAM.Config: one pool per address "
                                  "family (IPv4, IPv6)")
        pools[fam] = c
    c, c6 = pools.get(4, {}), pools.get(6, {})
    return wire.ok(api.create(eng, body["Name"], body.get("Driver") or "bridge",
                              c.get("Subnet"), c.get("Gateway"), bool(body.get("Internal")),
                              body.get("Labels") or {}, c.get("IPRange"),
                              {**(c.get("AuxiliaryAddresses") or {}),
                               **(c6.get("AuxiliaryAddresses") or {})} or None,
                              body.get("Options"), ipv6=bool(body.get("EnableIPv6")),
                              subnet6=c6.get("Subnet"), gateway6=c6.get("Gateway")), 201)


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
    ipam = ep.get("IPAMConfig") or {}
    api.connect(eng, name, body.get("Container") or "", ipam.get("IPv4Address") or None,
                ep.get("Aliases") or (), ipam.get("IPv6Address") or None)
    return wire.ok()


@route("POST", "/networks/{name}/disconnect")
def disconnect(eng, req: wire.Request, name: str) -> wire.Response:
    body = req.json({}) or {}
    api.disconnect(eng, name, body.get("Container") or "", bool(body.get("Force")))
    return wire.ok()
