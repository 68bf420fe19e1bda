"""version, info and system df/prune: what minirun is, what it sees, what it keeps."""

from __future__ import annotations

import os
import sys

import click

from .. import __version__
from . import main


@main.command()
def version() -> None:
    """Show the versions of minirun and the runtime-spec it implements."""
    from ..oci.state import OCI_VERSION

    click.echo(f"minirun version {__version__}")
    click.echo(f"OCI runtime:    minirun-oci {__version__} (runtime-spec {OCI_VERSION})")
    click.echo(f"Python:         {sys.version.split()[0]}")
    click.echo(f"Kernel:         {os.uname().release}")


@main.command()
@click.pass_obj
def info(obj) -> None:
    """Describe this host as minirun sees it: kernel, cgroups, where things live."""
    from ..kernel import cgroups

    layout = cgroups.layout()
    eng = obj.engine()
    cs = eng.all()
    count = lambda *st: sum(1 for c in cs if c.state.status in st)  # noqa: E731
    click.echo(f"Containers:      {len(cs)}")
    click.echo(f"  Running:       {count('running', 'restarting')}")
    click.echo(f"  Paused:        {count('paused')}")
    click.echo(f"  Stopped:       {count('exited', 'created', 'dead')}")
    click.echo(f"Images:          {len(obj.store().images())}")
    click.echo(f"Volumes:         {len(eng.volumes.all())}")
    click.echo(f"Kernel:          {os.uname().release} ({os.uname().machine})")
    click.echo(f"Cgroup layout:   {layout}")
    click.echo(f"  why it matters: {cgroups.LAYOUT_WHY.get(layout, '')}")
    for h in cgroups.hierarchies():
        ctrl = ",".join(h.controllers) if h.version == 1 else "(cgroup2)"
        click.echo(f"  {h.mountpoint:<28} v{h.version} {ctrl}")
    click.echo(f"Root dir:        {obj.root}")
    click.echo(f"Runtime root:    {obj.runroot}")
    click.echo("Storage driver:  overlay (image layers unpacked once, lowerdirs per container)")
    click.echo("Logging driver:  json-file (one monitor process per running container)")
    click.echo("Cgroup driver:   cgroupfs")
    from ..network.nat import backend

    click.echo(f"Firewall:        {backend()}: outbound NAT, published ports, isolation")
    click.echo(f"Networks:        {', '.join(n.Name for n in eng.net.networks.all())} "
               "(and host, none)")
    click.echo(f"Running as root: {'yes' if os.geteuid() == 0 else 'no (most commands need root)'}")
    from ..engine import userns

    sub = userns.ranges(userns.SUBUID, userns.DEFAULT_USER)
    click.echo("Security options (docs/security.md):")
    click.echo("  seccomp: Docker's default profile, compiled to BPF by minirun itself")
    click.echo("  capabilities: Docker's 14 by default; no AppArmor or SELinux")
    click.echo("  userns: --userns-remap / --userns=auto, subordinate ids of "
               f"{userns.DEFAULT_USER!r}: " + (", ".join(f"{a}:{n}" for a, n in sub) if sub
                                               else "none yet (made on first use)"))
    click.echo("  minirun is not a security boundary against a hostile root in a container")


@main.group(cls=type(main))
def system() -> None:
    """Manage minirun (df, prune, info)."""


system.add_command(info, "info")


def _tree_size(path: str) -> int:
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for n in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, n)).st_size
            except OSError:
                pass
    return total


@system.command("df")
@click.pass_obj
def df(obj) -> None:
    """Disk usage of images, containers and volumes."""
    from .images import human_size
    from .template import tabwrite

    eng = obj.engine()
    store = obj.store()
    images = store.images()
    cs = eng.all()
    used_images = {c.image_id for c in cs}
    isize = sum(r.size for r in images)
    ireclaim = sum(r.size for r in images if r.id not in used_images)
    csize = sum(_tree_size(os.path.join(eng.cdir(c.id), "upper")) for c in cs)
    creclaim = sum(_tree_size(os.path.join(eng.cdir(c.id), "upper")) for c in cs
                   if not c.state.running)
    vs = eng.volumes.all()
    vsize = {v.Name: _tree_size(v.Mountpoint) for v in vs}
    vused = {v.Name for v in vs if eng.users_of_volume(v.Name)}
    pct = lambda part, whole: f"{human_size(part, 3)} ({100 * part // whole if whole else 0}%)"  # noqa: E731
    rows = ["TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE",
            f"Images\t{len(images)}\t{len(used_images & {r.id for r in images})}\t"
            f"{human_size(isize, 3)}\t{pct(ireclaim, isize)}",
            f"Containers\t{len(cs)}\t{sum(1 for c in cs if c.state.running)}\t"
            f"{human_size(csize, 3)}\t{pct(creclaim, csize)}",
            f"Local Volumes\t{len(vs)}\t{len(vused)}\t{human_size(sum(vsize.values()), 3)}\t"
            f"{pct(sum(v for n, v in vsize.items() if n not in vused), sum(vsize.values()))}"]
    click.echo(tabwrite(rows), nl=False)


@system.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Every unused image, not only dangling ones.")
@click.option("--volumes", is_flag=True, help="Unused anonymous volumes too.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.pass_context
def prune(ctx, all_: bool, volumes: bool, force: bool) -> None:
    """Remove stopped containers, unused networks, unused images (dangling; -a all unused)
    and, with --volumes, unused anonymous volumes."""
    if not force and os.isatty(0):
        click.confirm("WARNING! This will remove:\n  - all stopped containers\n"
                      "  - all networks not used by at least one container\n"
                      + ("  - all anonymous volumes not used by at least one container\n"
                         if volumes else "")
                      + ("  - all images without at least one container associated to them\n"
                         if all_ else "  - all dangling images\n")
                      + "  - all build cache\n"
                      + "\nAre you sure you want to continue?", abort=True)
    from .containers import container_prune
    from .images import image_prune
    from .volumes import prune as volume_prune

    ctx.invoke(container_prune, force=True)
    from .network import prune as network_prune

    ctx.invoke(network_prune, force=True)
    if volumes:
        ctx.invoke(volume_prune, all_=False, force=True)
    # The build cache first: what only it kept alive goes with the images' prune.
    try:
        os.unlink(os.path.join(ctx.obj.store().root, "build-cache.json"))
    except FileNotFoundError:
        pass
    ctx.invoke(image_prune, all_=all_, force=True)
