"""volume create, ls, inspect, rm, prune: named volumes that outlive their containers."""

from __future__ import annotations

import os
import sys

import click

from ..errors import MinirunError
from . import main


@main.group(cls=type(main))
def volume() -> None:
    """Manage volumes."""


def _vols(obj):
    return obj.engine().volumes


@volume.command("create")
@click.option("-l", "--label", "labels", multiple=True, help="Set a label (k=v).")
@click.option("-d", "--driver", default="local", help="Only local exists.")
@click.argument("name", required=False)
@click.pass_obj
def create(obj, labels, driver: str, name: str | None) -> None:
    """Create a volume (a random name if none is given); print its name."""
    if driver != "local":
        raise MinirunError(f"volume driver {driver!r}: only local exists")
    lab = dict(x.partition("=")[::2] for x in labels)
    v, _ = _vols(obj).create(name, lab)
    click.echo(v.Name)


@volume.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display volume names.")
@click.option("-f", "--filter", "filters", multiple=True, help="dangling=true|false, name=, label=.")
@click.option("--format", "fmt", default="", help="json, table, or a Go template.")
@click.pass_obj
def ls(obj, quiet: bool, filters, fmt: str) -> None:
    """List volumes."""
    from .template import Format

    eng = obj.engine()
    vs = eng.volumes.all()
    for f in filters:
        k, _, val = f.partition("=")
        if k == "dangling":
            want = val in ("1", "true")
            vs = [v for v in vs if (not eng.users_of_volume(v.Name)) == want]
        elif k == "name":
            vs = [v for v in vs if val in v.Name]
        elif k == "label":
            lk, eq, lv = val.partition("=")
            vs = [v for v in vs if lk in v.Labels and (not eq or v.Labels[lk] == lv)]
        else:
            raise MinirunError(f"invalid filter '{k}': dangling, name or label")
    if quiet:
        for v in vs:
            click.echo(v.Name)
        return
    rows = [{"Driver": v.Driver, "Name": v.Name, "Mountpoint": v.Mountpoint, "Scope": v.Scope,
             "Labels": ",".join(f"{k}={x}" for k, x in v.Labels.items()),
             "CreatedAt": v.CreatedAt} for v in vs]
    default = "table {{.Driver}}\t{{.Name}}"
    click.echo(Format(fmt or default, {"Driver": "DRIVER", "Name": "VOLUME NAME"},
                      default[6:]).write(rows), nl=False)


volume.add_command(ls, "list")


@volume.command("inspect")
@click.option("-f", "--format", "fmt", default="", help="Go template.")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def inspect(obj, fmt: str, names) -> None:
    """Display detailed information on volumes."""
    out, failed = [], False
    for n in names:
        try:
            out.append(_vols(obj).get(n).inspect())
        except MinirunError as e:
            click.echo(f"minirun: {e}", err=True)
            failed = True
    from .template import inspect_output

    click.echo(inspect_output(out, fmt), nl=False)
    if failed:
        sys.exit(1)


@volume.command("rm")
@click.option("-f", "--force", is_flag=True, help="(accepted) remove even if missing.")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def rm(obj, force: bool, names) -> None:
    """Remove volumes (not while a container uses them)."""
    eng = obj.engine()
    failed = False
    for n in names:
        try:
            users = eng.users_of_volume(n)
            if users:
                raise MinirunError(f"remove {n}: volume is in use - [{', '.join(c.id for c in users)}]")
            eng.volumes.remove(n)
            click.echo(n)
        except MinirunError as e:
            if force and "no such volume" in str(e):
                continue
            click.echo(f"minirun: {e}", err=True)
            failed = True
    if failed:
        sys.exit(1)


volume.add_command(rm, "remove")


@volume.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Named volumes too, not only anonymous.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.pass_obj
def prune(obj, all_: bool, force: bool) -> None:
    """Remove unused volumes (anonymous ones; -a: named ones too), as Docker 23+ does."""
    if not force and os.isatty(0):
        click.confirm("WARNING! This will remove anonymous local volumes not used by at least "
                      "one container.\nAre you sure you want to continue?", abort=True)
    eng = obj.engine()
    gone = []
    for v in eng.volumes.all():
        if (v.Anonymous or all_) and not eng.users_of_volume(v.Name):
            eng.volumes.remove(v.Name)
            gone.append(v.Name)
    if gone:
        click.echo("Deleted Volumes:")
        for n in gone:
            click.echo(n)
        click.echo("")
    click.echo("Total reclaimed space: 0B")
