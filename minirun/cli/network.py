"""network create, ls, inspect, rm, prune, connect, disconnect: bridge networks."""

from __future__ import annotations

import os
import sys

import click

from ..errors import MinirunError
from . import main


@main.group(cls=type(main))
def network() -> None:
    """Manage networks (bridge networks; host and none are always there)."""


def _users(eng, name: str) -> list:
    return [c for c in eng.all() if name in c.networks]


def _inspect(eng, n) -> dict:
    containers = {}
    for c in _users(eng, n.Name):
        ep = c.networks[n.Name]
        if c.state.running:
            containers[c.id] = {"Name": c.name, "EndpointID": ep.get("EndpointID", ""),
                                "MacAddress": ep.get("MacAddress", ""),
                                "IPv4Address": f"{ep['IPAddress']}/{ep['IPPrefixLen']}",
                                "IPv6Address": ""}
    return {"Name": n.Name, "Id": n.Id, "Created": n.Created, "Scope": "local",
            "Driver": n.Driver, "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": {},
                     "Config": [{"Subnet": n.Subnet, "Gateway": n.Gateway}]},
            "Internal": n.Internal, "Attachable": False, "Ingress": False,
            "Containers": containers,
            "Options": {"com.docker.network.bridge.name": n.Bridge},
            "Labels": dict(n.Labels)}


@network.command("create")
@click.option("-d", "--driver", default="bridge", help="Only bridge.")
@click.option("--subnet", default=None, help="CIDR, e.g. 10.10.0.0/24 (default: a free /24).")
@click.option("--gateway", default=None, help="The bridge's address (default: the first).")
@click.option("--internal", is_flag=True, help="No way out: no NAT, no traffic to other networks.")
@click.option("-l", "--label", "labels", multiple=True, help="Set a label (k=v).")
@click.argument("name")
@click.pass_obj
def create(obj, driver: str, subnet, gateway, internal: bool, labels, name: str) -> None:
    """Create a bridge network; print its ID."""
    if driver != "bridge":
        raise MinirunError(f"network driver {driver!r}: only bridge is supported")
    lab = dict(x.partition("=")[::2] for x in labels)
    n = obj.engine().net.networks.create(name, subnet, gateway, internal, lab)
    click.echo(n.Id)


@network.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display network IDs.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the IDs.")
@click.option("-f", "--filter", "filters", multiple=True, help="name=, driver=, label=.")
@click.option("--format", "fmt", default="", help="json, table, or a Go template.")
@click.pass_obj
def ls(obj, quiet: bool, no_trunc: bool, filters, fmt: str) -> None:
    """List networks."""
    from .template import Format

    nets = obj.engine().net.networks.all()
    for f in filters:
        k, _, v = f.partition("=")
        if k == "name":
            nets = [n for n in nets if v in n.Name]
        elif k == "driver":
            nets = [n for n in nets if n.Driver == v]
        elif k == "label":
            lk, eq, lv = v.partition("=")
            nets = [n for n in nets if lk in n.Labels and (not eq or n.Labels[lk] == lv)]
        else:
            raise MinirunError(f"invalid filter '{k}': name, driver or label")
    rows = [{"ID": n.Id if no_trunc else n.Id[:12], "Name": n.Name, "Driver": n.Driver,
             "Scope": "local", "Internal": n.Internal, "Labels": n.Labels} for n in nets]
    rows += [{"ID": "host" if no_trunc else "host", "Name": "host", "Driver": "host",
              "Scope": "local", "Internal": False, "Labels": {}},
             {"ID": "none", "Name": "none", "Driver": "null", "Scope": "local",
              "Internal": False, "Labels": {}}]
    if quiet:
        for r in rows:
            click.echo(r["ID"])
        return
    default = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
    click.echo(Format(fmt or default, {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER",
                                       "Scope": "SCOPE"}, default[6:]).write(rows), nl=False)


network.add_command(ls, "list")


@network.command("inspect")
@click.option("-f", "--format", "fmt", default="", help="Go template.")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def inspect(obj, fmt: str, names) -> None:
    """Display detailed information on networks (subnet, gateway, containers and addresses)."""
    eng = obj.engine()
    out, failed = [], False
    for name in names:
        try:
            out.append(_inspect(eng, eng.net.networks.get(name)))
        except MinirunError as e:
            click.echo(f"minirun: {e}", err=True)
            failed = True
    from .template import inspect_output

    click.echo(inspect_output(out, fmt), nl=False)
    if failed:
        sys.exit(1)


def _remove(eng, n) -> None:
    from ..network import bridge

    users = _users(eng, n.Name)
    if users:
        raise MinirunError(f"error while removing network: network {n.Name} id {n.Id} has "
                           f"active endpoints ({', '.join(c.name for c in users)})")
    others = [x.Bridge for x in eng.net.networks.all()]
    with eng.net.networks.lock():
        bridge.remove(n, eng.runroot, others)
    if not n.default:
        eng.net.networks.remove(n.Name)
    eng.net.refresh(eng.containers)


@network.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def rm(obj, names) -> None:
    """Remove networks (not while a container is on them)."""
    eng = obj.engine()
    failed = False
    for name in names:
        try:
            n = eng.net.networks.get(name)
            if n.default:
                raise MinirunError("bridge is a pre-defined network and cannot be removed")
            _remove(eng, n)
            click.echo(name)
        except MinirunError as e:
            click.echo(f"minirun: {e}", err=True)
            failed = True
    if failed:
        sys.exit(1)


network.add_command(rm, "remove")


@network.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.pass_obj
def prune(obj, force: bool) -> None:
    """Remove unused networks (and the default network's bridge device, while unused)."""
    if not force and os.isatty(0):
        click.confirm("WARNING! This will remove all custom networks not used by at least one "
                      "container.\nAre you sure you want to continue?", abort=True)
    eng = obj.engine()
    gone = []
    for n in eng.net.networks.all():
        if _users(eng, n.Name) and not (n.default and not any(
                c.state.running for c in _users(eng, n.Name))):
            continue
        if n.default:
            from ..network import bridge

            with eng.net.networks.lock():
                bridge.remove(n, eng.runroot, [x.Bridge for x in eng.net.networks.all()])
            continue
        _remove(eng, n)
        gone.append(n.Name)
    eng.net.refresh(eng.containers)
    if gone:
        click.echo("Deleted Networks:")
        for name in gone:
            click.echo(name)


@network.command("connect")
@click.option("--ip", default=None, help="Its address on the network.")
@click.option("--alias", "aliases", multiple=True, help="Another name for it there.")
@click.argument("name")
@click.argument("container")
@click.pass_obj
def connect(obj, ip, aliases, name: str, container: str) -> None:
    """Connect a container to a network (at once if it runs: one more interface, ethN)."""
    eng = obj.engine()
    eng.net.connect(eng.containers, eng.get(container), eng.net.networks.get(name), ip,
                    list(aliases))


@network.command("disconnect")
@click.option("-f", "--force", is_flag=True, help="(accepted)")
@click.argument("name")
@click.argument("container")
@click.pass_obj
def disconnect(obj, force: bool, name: str, container: str) -> None:
    """Disconnect a container from a network."""
    eng = obj.engine()
    eng.net.disconnect(eng.containers, eng.get(container), eng.net.networks.get(name))
