"""network create, ls, inspect, rm, prune, connect, disconnect: bridge networks.

The engine API (engine/api/networks.py) does the work; this module parses and renders.
"""

from __future__ import annotations

import click

from ..errors import MinirunError
from . import Group, main
from .render import confirm, deleted, each, inspect_each, label_of, parse_filters, table


@main.group(cls=Group, table="network")
def network() -> None:
    """Manage networks (bridge networks; host and none are always there)."""


def _api():
    """The engine API's networks module, imported when a network command runs (start-up:
    every minirun command imports this module; `minirun ps` needs no network code)."""
    from ..engine.api import networks as networks_api  # lazily: the CLI's start-up (see above)

    return networks_api


@network.command("create")
@click.option("-d", "--driver", default="bridge",
              help="bridge (default), macvlan or ipvlan (with -o parent=IFACE).")
@click.option("--subnet", "subnets", multiple=True, help="CIDR, e.g. 10.10.0.0/24 (default: a "
              "free /24); with --ipv6 an IPv6 one too (default: a free ULA /64).")
@click.option("--gateway", "gateways", multiple=True, help="The bridge's address (default: the "
              "first); one per subnet.")
@click.option("--ipv6", is_flag=True, help="Dual-stack: an IPv6 subnet too.")
@click.option("--internal", is_flag=True, help="No way out: no NAT, no traffic to other networks.")
@click.option("--ip-range", default=None, help="Hand out container addresses from this CIDR.")
@click.option("--aux-address", "aux", multiple=True,
              help="An address containers never get: HOST=IP.")
@click.option("-o", "--opt", "opts", multiple=True, help="com.docker.network.bridge.name=NAME, "
              "com.docker.network.driver.mtu=N; macvlan/ipvlan: parent=IFACE, "
              "macvlan_mode=bridge|private|vepa|passthru, ipvlan_mode=l2|l3|l3s.")
@click.option("-l", "--label", "labels", multiple=True, help="Set a label (k=v).")
@click.argument("name")
@click.pass_obj
def create(obj, driver: str, subnets, gateways, ipv6: bool, internal: bool, ip_range, aux, opts,
           labels, name: str) -> None:
    """Create a network (a bridge, or macvlan/ipvlan on a host interface); print its ID."""
    (subnet, gateway), (subnet6, gateway6) = by_family(name, subnets, gateways)
    lab = dict(x.partition("=")[::2] for x in labels)
    pairs = {}
    for flag, values in (("--aux-address", aux), ("--opt", opts)):
        for x in values:
            k, eq, v = x.partition("=")
            if not eq or not k:
                raise MinirunError(f"invalid {flag} {x!r}: use KEY=VALUE")
            pairs.setdefault(flag, {})[k] = v
    click.echo(_api().create(obj.engine(), name, driver, subnet, gateway, internal, lab,
                             ip_range, pairs.get("--aux-address"), pairs.get("--opt"),
                             ipv6=ipv6, subnet6=subnet6, gateway6=gateway6)["Id"])


def by_family(name: str, subnets, gateways) -> tuple[tuple, tuple]:
    """--subnet and --gateway, each at most once per address family, as Docker's CLI takes
    them: ((IPv4 subnet, gateway), (IPv6 subnet, gateway)), None where not given. An IPv6
    gateway needs its IPv6 subnet (Docker: "no matching subnet for gateway")."""
    out: dict[str, dict] = {"4": {}, "6": {}}
    for flag, key, values in (("--subnet", "subnet", subnets), ("--gateway", "gateway",
                                                                 gateways)):
        for v in values:
            fam = out["6" if ":" in v else "4"]
            if key in fam:
                raise MinirunError(f"network {name}: {flag} {fam[key]} and {v}: one {flag} per "
                                   "address family (IPv4, IPv6)")
            fam[key] = v
    if "gateway" in out["6"] and "subnet" not in out["6"]:
        raise MinirunError(f"network {name}: no matching subnet for gateway "
                           f"{out['6']['gateway']}: give its IPv6 --subnet")
    return ((out["4"].get("subnet"), out["4"].get("gateway")),
            (out["6"].get("subnet"), out["6"].get("gateway")))


@network.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display network IDs.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the IDs.")
@click.option("-f", "--filter", "filters", multiple=True, help="name=, driver=, label=.")
@click.option("--format", "fmt", default="", help="json, table, or a Go template.")
@click.pass_obj
def ls(obj, quiet: bool, no_trunc: bool, filters, fmt: str) -> None:
    """List networks."""
    rows = [{"ID": n["Id"] if no_trunc else n["Id"][:12], "Name": n["Name"],
             "Driver": n["Driver"], "Scope": n["Scope"], "Internal": n["Internal"],
             "Labels": n["Labels"], "Label": label_of(n["Labels"] or {})}
            for n in _api().list_(obj.engine(), parse_filters(filters))]
    if quiet:
        for r in rows:
            click.echo(r["ID"])
        return
    default = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
    click.echo(table(fmt, default, {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER",
                                    "Scope": "SCOPE"}, rows,
                     type_name="*network.networkContext"), nl=False)


network.add_command(ls, "list")


@network.command("inspect")
@click.option("-f", "--format", "fmt", default="", help="Go template.")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def inspect(obj, fmt: str, names) -> None:
    """Display detailed information on networks (subnet, gateway, containers and addresses)."""
    api, eng = _api(), obj.engine()
    inspect_each(names, lambda name: api.inspect(eng, name), fmt)


@network.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def rm(obj, names) -> None:
    """Remove networks (not while a container is on them)."""
    api, eng = _api(), obj.engine()
    each(names, lambda name: (api.remove(eng, name), name)[1])


network.add_command(rm, "remove")


@network.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.pass_obj
def prune(obj, force: bool) -> None:
    """Remove unused networks (and the default network's bridge device, while unused)."""
    confirm(force, "This will remove all custom networks not used by at least one container.")
    render_prune(_api().prune(obj.engine()))


def render_prune(result: dict) -> None:
    """What `network prune` prints (`system prune` too)."""
    deleted("Networks", result["NetworksDeleted"], reclaimed=False)


@network.command("connect")
@click.option("--ip", default=None, help="Its address on the network.")
@click.option("--ip6", default=None, help="Its IPv6 address on a dual-stack network.")
@click.option("--alias", "aliases", multiple=True, help="Another name for it there.")
@click.argument("name")
@click.argument("container")
@click.pass_obj
def connect(obj, ip, ip6, aliases, name: str, container: str) -> None:
    """Connect a container to a network (at once if it runs: one more interface, ethN)."""
    _api().connect(obj.engine(), name, container, ip, list(aliases), ip6)


@network.command("disconnect")
@click.option("-f", "--force", is_flag=True, help="(accepted)")
@click.argument("name")
@click.argument("container")
@click.pass_obj
def disconnect(obj, force: bool, name: str, container: str) -> None:
    """Disconnect a container from a network."""
    _api().disconnect(obj.engine(), name, container, force)
