"""volume create, ls, inspect, rm, prune: named volumes that outlive their containers.

The engine API (engine/api/volumes.py) does the work; this module parses and renders.
"""

from __future__ import annotations

import click

from ..errors import NotFound
from . import Group, main
from .render import confirm, deleted, each, inspect_each, label_of, parse_filters, table


@main.group(cls=Group, table="volume")
def volume() -> None:
    """Manage volumes."""


def _api():
    """The engine API's volumes module, imported when a volume command runs (start-up: every
    minirun command imports this module, and `minirun ps` needs no volume code)."""
    from ..engine.api import volumes as volumes_api  # lazily: the CLI's start-up (see above)

    return volumes_api


@volume.command("create")
@click.option("-l", "--label", "labels", multiple=True, help="Set a label (k=v).")
@click.option("-d", "--driver", default="local", help="Only local exists.")
@click.argument("name", required=False)
@click.pass_obj
def create(obj, labels, driver: str, name: str | None) -> None:
    """Create a volume (a random name if none is given); print its name."""
    lab = dict(x.partition("=")[::2] for x in labels)
    click.echo(_api().create(obj.engine(), name, driver, lab)["Name"])


@volume.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display volume names.")
@click.option("-f", "--filter", "filters", multiple=True, help="dangling=true|false, name=, label=.")
@click.option("--format", "fmt", default="", help="json, table, or a Go template.")
@click.pass_obj
def ls(obj, quiet: bool, filters, fmt: str) -> None:
    """List volumes."""
    vs = _api().list_(obj.engine(), parse_filters(filters))["Volumes"]
    if quiet:
        for v in vs:
            click.echo(v["Name"])
        return
    rows = [{"Driver": v["Driver"], "Name": v["Name"], "Mountpoint": v["Mountpoint"],
             "Scope": v["Scope"], "Labels": ",".join(f"{k}={x}" for k, x in v["Labels"].items()),
             "CreatedAt": v["CreatedAt"], "Label": label_of(v["Labels"])} for v in vs]
    default = "table {{.Driver}}\t{{.Name}}"
    click.echo(table(fmt, default, {"Driver": "DRIVER", "Name": "VOLUME NAME"}, rows,
                     type_name="*formatter.volumeContext"), nl=False)


volume.add_command(ls, "list")


@volume.command("inspect")
@click.option("-f", "--format", "fmt", default="", help="Go template.")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def inspect(obj, fmt: str, names) -> None:
    """Display detailed information on volumes."""
    api, eng = _api(), obj.engine()
    inspect_each(names, lambda n: api.inspect(eng, n), fmt, type_name="volume.Volume")


@volume.command("rm")
@click.option("-f", "--force", is_flag=True, help="(accepted) remove even if missing.")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def rm(obj, force: bool, names) -> None:
    """Remove volumes (not while a container uses them)."""
    api, eng = _api(), obj.engine()

    def one(n: str) -> str | None:
        try:
            api.remove(eng, n)
        except NotFound:
            if force:
                return None  # -f: a missing volume is no error, and not removed either
            raise
        return n

    each(names, one)


volume.add_command(rm, "remove")


@volume.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Named volumes too, not only anonymous.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.pass_obj
def prune(obj, all_: bool, force: bool) -> None:
    """Remove unused volumes (anonymous ones; -a: named ones too), as Docker 23+ does."""
    confirm(force, "This will remove anonymous local volumes not used by at least one container.")
    render_prune(_api().prune(obj.engine(), all=all_))


def render_prune(result: dict) -> None:
    """What `volume prune` prints (`system prune --volumes` too)."""
    deleted("Volumes", result["VolumesDeleted"])
