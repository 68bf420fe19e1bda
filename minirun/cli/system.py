"""version, info and system df/prune/service: what minirun is, what it sees, what it keeps,
and the Docker Engine API service (minirun/api).

The engine API (engine/api/system.py) gathers it; this module renders it as Docker does.
"""

from __future__ import annotations

import os
import sys

import click

from ..base.units import human_size
from . import Group, main

# `minirun version` is an everyday command: what only the others use is imported in them (the
# templates ~2 ms; the families `system prune` renders for, ~10 ms).


def _api():
    """The engine API's system module, imported when a system command runs (start-up: every
    minirun command imports this module, and it brings the kernel's cgroup code)."""
    from ..engine.api import system as system_api  # lazily: the CLI's start-up (see above)

    return system_api


@main.command()
@click.option("-f", "--format", "fmt", default="", help="json or a Go template ({{.Server.Version}}).")
def version(fmt: str) -> None:
    """Show the versions of minirun and the runtime-spec it implements."""
    from ..engine.api import version as version_api  # lazily: the CLI's start-up (see _api)

    v = version_api.version()
    if fmt:
        # docker's template sees {Client, Server}: minirun is both, one process
        client = {"Version": v["Version"], "ApiVersion": v.get("ApiVersion", ""),
                  "GoVersion": v.get("GoVersion", ""), "GitCommit": v.get("GitCommit", ""),
                  "Os": v.get("Os", ""), "Arch": v.get("Arch", ""), "BuildTime": v.get("BuildTime", "")}
        _echo_template(fmt, {"Client": client, "Server": v}, "system.versionInfo", "version")
        return
    runtime, python = v["Components"][1], v["Components"][2]
    click.echo(f"minirun version {v['Version']}")
    click.echo(f"OCI runtime:    minirun-oci {runtime['Version']} "
               f"(runtime-spec {runtime['Details']['RuntimeSpec']})")
    click.echo(f"Python:         {python['Version']}")
    click.echo(f"Kernel:         {v['KernelVersion']}")


def _echo_template(fmt: str, value: dict, type_name: str, name: str = "") -> None:
    """info and version --format: `json` or a Go template over the whole object, worded as
    docker words it (a template that does not parse: 64; one that fails: Go's error, 1)."""
    from ..base.gotemplate import INSPECT_WORDING, PLAIN_WORDING, Template, TemplateError

    if fmt == "json":
        fmt = "{{json .}}"
    try:
        template = Template(fmt.replace("\\t", "\t").replace("\\n", "\n"), name)
        click.echo(template.render(value, type_name=type_name))
    except TemplateError as e:
        raise e.worded(INSPECT_WORDING if e.parse else PLAIN_WORDING) from None


@main.command()
@click.option("-f", "--format", "fmt", default="", help="json or a Go template ({{.Containers}}).")
@click.pass_obj
def info(obj, fmt: str) -> None:
    """Describe this host as minirun sees it: kernel, cgroups, where things live."""
    i = _api().info(obj.engine())
    if fmt:
        _echo_template(fmt, i, "system.dockerInfo")
        return
    m = i["Minirun"]
    click.echo(f"Containers:      {i['Containers']}")
    click.echo(f"  Running:       {i['ContainersRunning']}")
    click.echo(f"  Paused:        {i['ContainersPaused']}")
    click.echo(f"  Stopped:       {i['ContainersStopped']}")
    click.echo(f"Images:          {i['Images']}")
    click.echo(f"Volumes:         {i['Volumes']}")
    click.echo(f"Kernel:          {i['KernelVersion']} ({i['Architecture']})")
    click.echo(f"Cgroup layout:   {m['CgroupLayout']}")
    click.echo(f"  why it matters: {m['CgroupLayoutWhy']}")
    for h in m["CgroupHierarchies"]:
        ctrl = ",".join(h["Controllers"]) if h["Version"] == 1 else "(cgroup2)"
        click.echo(f"  {h['Mountpoint']:<28} v{h['Version']} {ctrl}")
    click.echo(f"Root dir:        {i['DockerRootDir']}")
    click.echo(f"Runtime root:    {m['RuntimeRoot']}")
    click.echo("Storage driver:  overlay (image layers unpacked once, lowerdirs per container)")
    click.echo("Logging driver:  json-file (one monitor process per running container)")
    click.echo("Cgroup driver:   cgroupfs")
    click.echo(f"Firewall:        {m['Firewall']}: outbound NAT, published ports, isolation")
    click.echo(f"Networks:        {', '.join(m['Networks'])} (and host, none)")
    click.echo(f"Running as root: {'yes' if m['RunningAsRoot'] else 'no (most commands need root)'}")
    sub = m["UsernsRanges"]
    click.echo("Security options (docs/security.md):")
    click.echo("  seccomp: Docker's default profile, compiled to BPF by minirun itself")
    click.echo("  capabilities: Docker's 14 by default; no AppArmor or SELinux")
    click.echo("  userns: --userns-remap / --userns=auto, subordinate ids of "
               f"{m['UsernsUser']!r}: " + (", ".join(f"{a}:{n}" for a, n in sub) if sub
                                            else "none yet (made on first use)"))
    click.echo("  minirun is not a security boundary against a hostile root in a container")


@main.group(cls=Group, table="system")
def system() -> None:
    """Manage minirun (df, prune, info)."""


system.add_command(info, "info")


DF_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
              "Reclaimable": "RECLAIMABLE"}
DF_TABLE = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"


def df_rows(d: dict) -> list[dict]:
    """docker system df's four rows (Images, Containers, Local Volumes, Build Cache), its
    strings: sizes with 4 significant digits, "SIZE (PCT%)" reclaimable when there is a size."""
    images, cs, vs = d["Images"], d["Containers"], d["Volumes"]
    running = [c for c in cs if c["State"] in ("running", "paused", "restarting")]

    def reclaim(part: int, whole: int) -> str:
        return f"{human_size(part)} ({100 * part // whole}%)" if whole else human_size(part)

    def row(kind: str, total: int, active: int, size: int, free: int, pct: bool = True) -> dict:
        return {"Active": str(active), "Reclaimable": reclaim(free, size) if pct else human_size(free),
                "Size": human_size(size), "TotalCount": str(total), "Type": kind}

    isize = sum(r["Size"] for r in images)
    build = d.get("BuildCache") or []
    return [
        row("Images", len(images), sum(1 for r in images if r["Containers"]), isize,
            sum(r["Size"] for r in images if not r["Containers"])),
        row("Containers", len(cs), len(running), sum(c["SizeRw"] for c in cs),
            sum(c["SizeRw"] for c in cs if c not in running)),
        row("Local Volumes", len(vs), sum(1 for v in vs if v["UsageData"]["RefCount"]),
            sum(v["UsageData"]["Size"] for v in vs),
            sum(v["UsageData"]["Size"] for v in vs if not v["UsageData"]["RefCount"])),
        row("Build Cache", len(build), sum(1 for b in build if b.get("InUse")),
            sum(b.get("Size", 0) for b in build),
            sum(b.get("Size", 0) for b in build if not b.get("InUse")), pct=False),
    ]


@system.command("df")
@click.option("-v", "--verbose", is_flag=True, help="Show detailed information on space usage.")
@click.option("--format", "fmt", default="", help="json, table, or a Go template ({{.Type}}).")
@click.pass_obj
def df(obj, verbose: bool, fmt: str) -> None:
    """Disk usage of images, containers, volumes and the build cache."""
    from ..base.gotemplate import Format

    template = Format(fmt or DF_TABLE, DF_HEADERS, DF_TABLE[6:],
                      type_name="*formatter.diskUsageImagesContext") if not verbose else None
    d = _api().df(obj.engine())
    if template is not None:
        click.echo(template.write(df_rows(d)), nl=False)
        return
    click.echo(df_verbose(d), nl=False)


def df_verbose(d: dict) -> str:
    """docker system df -v: the images (shared and unique size, containers), the containers
    (volumes, size), the volumes (links, size) and the build cache, each a table of its own."""
    from .images import image_rows, since  # the images' rows as `docker images` makes them
    from .listing import ps_row

    images = []
    for s in d["Images"]:
        for r in image_rows([s], digests=False, no_trunc=False):
            shared = s["SharedSize"]
            images.append([r["Repository"], r["Tag"], r["ID"], r["CreatedSince"],
                           human_size(s["Size"], 3),
                           "N/A" if shared < 0 else human_size(shared, 3),
                           "N/A" if shared < 0 else human_size(s["Size"] - shared, 3),
                           str(s["Containers"])])
    cs = []
    for c in d["Containers"]:
        p = ps_row({"Command": "", "Ports": [], "Labels": {}, "Mounts": [], "Status": "",
                    **c}) if "Command" in c else None
        cs.append([c["Id"][:12], c["Image"], p["Command"] if p else '""',
                   str(sum(1 for m in c.get("Mounts", []) if m.get("Type") == "volume")),
                   human_size(c["SizeRw"], 3), since(c["Created"]), c.get("Status", ""),
                   c["Names"][0].lstrip("/")])
    vs = [[v["Name"], str(v["UsageData"]["RefCount"]), human_size(v["UsageData"]["Size"], 3)]
          for v in d["Volumes"]]
    build = d.get("BuildCache") or []

    from ..base.gotemplate import tabwrite  # lazy: the templates, ~2 ms (see the top)

    def table(header: list[str], rows: list[list[str]]) -> str:
        return tabwrite(["\t".join(header), *("\t".join(r) for r in rows)])

    return ("Images space usage:\n\n"
            + table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE",
                     "UNIQUE SIZE", "CONTAINERS"], images)
            + "\nContainers space usage:\n\n"
            + table(["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED",
                     "STATUS", "NAMES"], cs)
            + "\nLocal Volumes space usage:\n\n"
            + table(["VOLUME NAME", "LINKS", "SIZE"], vs)
            + f"\nBuild cache usage: {human_size(sum(b.get('Size', 0) for b in build))}\n\n"
            + table(["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE", "SHARED"],
                    [[b.get("ID", "")[:12], b.get("Type", ""), human_size(b.get("Size", 0), 3),
                      "", "", str(b.get("UsageCount", 0)), str(b.get("Shared", False)).lower()]
                     for b in build]))


@system.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Every unused image, not only dangling ones.")
@click.option("--volumes", is_flag=True, help="Unused anonymous volumes too.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.pass_context
def prune(ctx, all_: bool, volumes: bool, force: bool) -> None:
    """Remove stopped containers, unused networks, unused images (dangling; -a all unused)
    and, with --volumes, unused anonymous volumes."""
    from . import containers, network, volumes as volumes_cli
    from .images import image_prune
    from .render import confirm

    confirm(force, "This will remove:\n  - all stopped containers\n"
            "  - all networks not used by at least one container\n"
            + ("  - all anonymous volumes not used by at least one container\n"
               if volumes else "")
            + ("  - all images without at least one container associated to them\n"
               if all_ else "  - all dangling images\n")
            + "  - all build cache\n")
    done = _api().prune(ctx.obj.engine(), volumes_too=volumes, images_too=False)
    containers.render_prune(done["Containers"])
    network.render_prune(done["Networks"])
    if volumes:
        volumes_cli.render_prune(done["Volumes"])
    # The build cache went first: what only it kept alive goes with the images' prune (the
    # image API's, which `image prune` renders).
    ctx.invoke(image_prune, all_=all_, force=True)


@system.command("service")
@click.option("-H", "--host", "host", default=None,
              help="unix://PATH (default unix://<runroot>/minirun.sock) or tcp://127.0.0.1:PORT.")
@click.option("-t", "--time", "idle", type=int, default=5,
              help="Seconds without a request before the service exits (0: never).")
@click.option("--group", default=None, help="The group that may use the socket (mode 0660).")
@click.pass_obj
def service(obj, host: str | None, idle: int, group: str | None) -> None:
    """Serve the Docker Engine API, so docker, docker-py and testcontainers drive minirun."""
    from ..api import server  # lazily: only the service loads the HTTP layer (start-up)

    host = host or f"unix://{os.path.join(obj.runroot, 'minirun.sock')}"
    srv = server.listen(host, group, lambda: type(obj)(obj.root, obj.runroot, obj.debug).engine(),
                        debug=obj.debug, idle=idle)
    click.echo(f"minirun: serving the Docker Engine API on {host}"
               f"{'' if idle == 0 else f' (until {idle} s without a request)'}", err=True)
    server.serve(srv, host[len("unix://"):] if host.startswith("unix://") else None)


@system.command("boot")
@click.pass_obj
def boot(obj) -> None:
    """After a reboot: mark the containers it stopped exited (255) and start those whose
    restart policy says so, as dockerd does when it starts; once per boot.
    \f
    scripts/systemd/minirun-boot.service runs it; the rules are engine/api/boot.py's."""
    from ..engine.api import boot as boot_api  # lazily: only this command needs it

    done = boot_api.boot(obj.engine())
    for name in done["Started"]:
        click.echo(name)
    for name, error in done["Failed"].items():
        click.echo(f"minirun: start {name}: {error}", err=True)
    if done["Failed"]:
        sys.exit(125)


@main.command()
@click.option("--since", default="", help="Events from this time on (a time, a Unix timestamp "
              "or a duration ago: 10m).")
@click.option("--until", default="", help="Stop at this time (else follow new events).")
@click.option("-f", "--filter", "filters", multiple=True,
              help="type=, event=, container=, image=, label=, network=, volume=.")
@click.option("--format", "fmt", default="", help="A Go template, or json.")
@click.pass_obj
def events(obj, since: str, until: str, filters: tuple[str, ...], fmt: str) -> None:
    """Print what happens to containers, images, networks and volumes (the event journal)."""
    import json

    from ..base.gotemplate import Format
    from ..base.times import format_time
    from ..engine.api import events as events_api  # lazily: only `events` reads the journal
    from .render import parse_filters

    feed = events_api.events(obj.engine(), since, until, parse_filters(filters))
    template = Format(fmt) if fmt and fmt != "json" else None
    for e in feed:
        if fmt == "json":
            line = json.dumps(e)
        elif template is not None:
            line = template.lines([e])[0]
        else:
            # Docker's plain line: time, type, action, ID, (attributes sorted by key)
            stamp = format_time(e["timeNano"] / 1e9)
            attrs = ", ".join(f"{k}={v}" for k, v in sorted(e["Actor"]["Attributes"].items()))
            line = f"{stamp} {e['Type']} {e['Action']} {e['Actor']['ID']} ({attrs})"
        click.echo(line)
