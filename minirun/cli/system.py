"""version and info: what minirun is, and what it sees on this host."""

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
    click.echo(f"Kernel:          {os.uname().release} ({os.uname().machine})")
    click.echo(f"Cgroup layout:   {layout}")
    click.echo(f"  why it matters: {cgroups.LAYOUT_WHY.get(layout, '')}")
    for h in cgroups.hierarchies():
        ctrl = ",".join(h.controllers) if h.version == 1 else "(cgroup2)"
        click.echo(f"  {h.mountpoint:<28} v{h.version} {ctrl}")
    click.echo(f"Root dir:        {obj.root}")
    click.echo(f"Runtime root:    {obj.runroot}")
    click.echo("Storage driver:  overlay (image layers unpacked once, lowerdirs per container)")
    click.echo(f"Running as root: {'yes' if os.geteuid() == 0 else 'no (most commands need root)'}")
