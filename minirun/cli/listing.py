"""Listing and inspection commands: ps, inspect (containers, images, volumes), logs, top, port.

They call the engine API (engine/api/containers.py) and render what it returns as Docker does:
ps and top as tables (or --format), inspect as JSON (or a Go template), logs as the container
wrote them, stdout to stdout and stderr to stderr.
"""

from __future__ import annotations

import sys
import time

import click

from ..base.units import human_duration
from ..errors import MinirunError
from . import container_group, main
from .render import inspect_text as inspect_output, parse_filters
from ..base.table import plain as plain_table, tabwrite
from ..base.units import human_size

PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
              "RunningFor": "CREATED", "CreatedAt": "CREATED AT", "Status": "STATUS",
              "Ports": "PORTS", "Names": "NAMES", "Labels": "LABELS", "State": "STATE",
              "Size": "SIZE", "Mounts": "MOUNTS"}
PS_DEFAULT = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t"
              "{{.Ports}}\t{{.Names}}")


# --- ps -----------------------------------------------------------------------------------------


def _host(ip: str) -> str:
    """An IPv6 host address in brackets before its port ([::]:8080), as Docker prints it."""
    return f"[{ip}]" if ":" in ip else ip


def ps_row(row: dict, no_trunc: bool = False) -> dict:
    """An engine API row as `docker ps` shows it (the names its --format templates use)."""
    command = row["Command"]
    if not no_trunc and len(command) > 20:
        command = command[:19] + "…"
    created = row["Created"]
    return {
        "ID": row["Id"] if no_trunc else row["Id"][:12], "Image": row["Image"],
        "Command": f'"{command}"',
        "RunningFor": f"{human_duration(time.time() - created)} ago",
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(created)),
        "Status": row["Status"], "State": row["State"],
        "Ports": ", ".join(f"{_host(p['IP'])}:{p['PublicPort']}->{p['PrivatePort']}/{p['Type']}"
                           for p in row["Ports"]),
        "Names": row["Names"][0].lstrip("/"),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(row["Labels"].items())),
        "Mounts": ",".join(m.get("Name") or m.get("Source", "") for m in row["Mounts"]),
        "Size": _size(row) if "SizeRw" in row else "",
        "Label": lambda key, labels=row["Labels"]: labels.get(key, ""),
    }


def _size(row: dict) -> str:
    """docker ps -s's SIZE: the writable layer, and with the image's: "0B (virtual 1.98MB)"."""
    return f"{human_size(row['SizeRw'], 3)} (virtual {human_size(row['SizeRootFs'], 3)})"


def _engine(obj):
    return obj.engine()


def _api():
    """engine/api/containers.py, imported when a command runs. (Not cli/containers.py's
    helper of the same name: that module brings run's flags and pull, ~8 ms of every ps.)"""
    from ..engine.api import containers  # lazily: `version` and `--help` need no engine

    return containers


def _system_api():
    """engine/api/system.py, for sizes only (ps -s, inspect -s): it brings the cgroup code,
    which a plain `minirun ps` does not need (start-up budget)."""
    from ..engine.api import system  # lazily: see the docstring

    return system


@main.command()
@click.option("-a", "--all", "all_", is_flag=True, help="Show all containers (default: running).")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output.")
@click.option("-f", "--filter", "filters", multiple=True,
              help="status=, name=, id=, label=k[=v], ancestor=, exited=, health=.")
@click.option("--format", "fmt", default="", help="json, table, or a Go template.")
@click.option("-n", "--last", type=int, default=-1, help="Show the n last created containers.")
@click.option("-l", "--latest", is_flag=True, help="Show the latest created container.")
@click.option("-s", "--size", is_flag=True, help="Display total file sizes.")
@click.pass_obj
def ps(obj, all_: bool, quiet: bool, no_trunc: bool, filters, fmt: str, last: int,
       latest: bool, size: bool) -> None:
    """List containers."""
    default = PS_DEFAULT + ("\t{{.Size}}" if size else "")
    template = _ps_format(fmt, default) if fmt else None  # a bad one fails before any work
    eng = _engine(obj)
    rows = _api().list_(eng, all=all_, limit=1 if latest else last,
                        filters=parse_filters(filters))
    if quiet:
        for r in rows:
            click.echo(r["Id"] if no_trunc else r["Id"][:12])
        return
    if size or ".Size" in (fmt or ""):  # docker asks for sizes when the format shows them
        for r in rows:
            r.update(_system_api().container_sizes(eng, r["Id"]))
    shown = [ps_row(r, no_trunc) for r in rows]
    out = None if template else plain_table(default[len("table "):], PS_HEADERS, shown)
    if out is None:  # a --format, or what the plain table declines (render.table)
        out = (template or _ps_format(default, default)).write(shown)
    click.echo(out, nl=False)


def _ps_format(fmt: str, default: str):
    """ps's --format, parsed (the default table is made without it: render.table)."""
    from ..base.gotemplate import PS_WORDING, Format  # (~2 ms with json: see render.table)

    return Format(fmt, PS_HEADERS, default[len("table "):],
                  type_name="*formatter.ContainerContext", wording=PS_WORDING)


# --- inspect ------------------------------------------------------------------------------------


def _inspect_rows(obj, names: tuple[str, ...], kind: str | None) -> list[dict]:
    eng = _engine(obj)
    out = []
    missing = []
    for name in names:
        found = None
        if kind in (None, "container"):
            try:
                found = _api().inspect(eng, name)
            except MinirunError:
                found = None
        if found is None and kind in (None, "image"):
            try:
                from .images import inspect_image  # lazily: only an image's inspect (~3 ms)

                found = inspect_image(obj.store(), obj.store().resolve(name))
            except MinirunError:
                found = None
        if found is None and kind in (None, "volume"):
            try:
                found = eng.volumes.get(name).inspect()
            except MinirunError:
                found = None
        if found is None:
            missing.append(name)
        else:
            out.append(found)
    for name in missing:
        click.echo(f"Error: No such object: {name}", err=True)
    if missing:
        obj._inspect_failed = True
    return out


@main.command()
@click.option("-f", "--format", "fmt", default="", help="Go template, e.g. {{.State.Pid}}.")
@click.option("--type", "kind", type=click.Choice(["container", "image", "volume"]),
              default=None, help="Only look for this kind of object.")
@click.option("-s", "--size", is_flag=True, help="Display total file sizes (SizeRw, SizeRootFs) "
              "of containers.")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def inspect(obj, fmt: str, kind, size: bool, names) -> None:
    """Low-level information on containers, images or volumes, as JSON (or --format)."""
    if fmt:
        inspect_output([], fmt)  # a template that does not parse fails first (64)
    _print_inspect(obj, _with_sizes(obj, _inspect_rows(obj, names, kind), size), fmt)


def _with_sizes(obj, rows: list[dict], size: bool) -> list[dict]:
    """inspect -s: each container's SizeRw and SizeRootFs (images and volumes have none)."""
    if size:
        for row in rows:
            if "State" in row and "Id" in row:  # a container
                row.update(_system_api().container_sizes(_engine(obj), row["Id"]))
    return rows


def _print_inspect(obj, rows: list[dict], fmt: str) -> None:
    click.echo(inspect_output(rows, fmt), nl=False)
    if getattr(obj, "_inspect_failed", False):
        sys.exit(1)


@container_group.command("inspect")
@click.option("-f", "--format", "fmt", default="")
@click.option("-s", "--size", is_flag=True, help="Display total file sizes (SizeRw, SizeRootFs).")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def container_inspect(obj, fmt: str, size: bool, names) -> None:
    """Low-level information on containers."""
    if fmt:
        inspect_output([], fmt)  # a template that does not parse fails first (64)
    _print_inspect(obj, _with_sizes(obj, _inspect_rows(obj, names, "container"), size), fmt)


# --- logs ---------------------------------------------------------------------------------------


@main.command()
@click.option("-f", "--follow", is_flag=True, help="Follow the output.")
@click.option("-n", "--tail", default="all", help="Lines from the end (default all).")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@click.option("--since", default="", help="Since a time, a timestamp or a duration (10m).")
@click.option("--until", default="", help="Until a time, a timestamp or a duration.")
@click.argument("container")
@click.pass_obj
def logs(obj, follow: bool, tail: str, timestamps: bool, since: str, until: str,
         container: str) -> None:
    """Fetch a container's logs (stdout to stdout, stderr to stderr)."""
    frames = _api().logs(_engine(obj), container, follow=follow, tail=tail,
                         timestamps=timestamps, since=since, until=until)
    for stream, data in frames:
        out = sys.stderr if stream == "stderr" else sys.stdout
        out.flush()  # (anything click wrote through the text layer goes first)
        out.buffer.write(data)
        out.buffer.flush()


# --- top, port ----------------------------------------------------------------------------------


@main.command()
@click.argument("container")
@click.argument("ps_args", nargs=-1)
@click.pass_obj
def top(obj, container: str, ps_args) -> None:
    """The running processes of a container (as host PIDs)."""
    t = _api().top(_engine(obj), container, tuple(ps_args))
    rows = [t["Titles"], *t["Processes"]]
    click.echo(tabwrite(["\t".join(r) for r in rows]), nl=False)


@main.command()
@click.argument("container")
@click.argument("private_port", required=False)
@click.pass_obj
def port(obj, container: str, private_port) -> None:
    """List a container's published ports (or the host side of one: port CTR 80/tcp)."""
    for p in _api().port(_engine(obj), container, private_port):
        host = f"{_host(p['HostIp'])}:{p['HostPort']}"
        click.echo(host if private_port else f"{p['PrivatePort']} -> {host}")


for _name, _cmd in (("ls", ps), ("list", ps), ("ps", ps), ("logs", logs), ("top", top),
                    ("port", port)):
    container_group.add_command(_cmd, _name)
