"""minirun: the docker-like front end (for now `version` and `info`).

The front end turns an image and flags into an OCI bundle and hands it to the runtime; it never
calls the kernel itself. click is imported here only: the OCI runtime's hot path stays lean.
"""

from __future__ import annotations

import os
import sys

import click

from . import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", message="minirun version %(version)s")
def main() -> None:
    """A container runtime in readable Python: namespaces, cgroups, overlayfs, OCI."""


@main.command()
def version() -> None:
    """Show the versions of minirun and the runtime-spec it implements."""
    from .oci.state import OCI_VERSION

    click.echo(f"minirun version {__version__}")
    click.echo(f"OCI runtime:    minirun-oci {__version__} (runtime-spec {OCI_VERSION})")
    click.echo(f"Python:         {sys.version.split()[0]}")
    click.echo(f"Kernel:         {os.uname().release}")


@main.command()
def info() -> None:
    """Describe this host as minirun sees it: kernel, cgroups, what works here."""
    from .kernel import cgroups

    layout = cgroups.layout()
    click.echo(f"Kernel:          {os.uname().release} ({os.uname().machine})")
    click.echo(f"Cgroup layout:   {layout}")
    click.echo(f"  why it matters: {cgroups.LAYOUT_WHY.get(layout, '')}")
    for h in cgroups.hierarchies():
        ctrl = ",".join(h.controllers) if h.version == 1 else "(cgroup2)"
        click.echo(f"  {h.mountpoint:<28} v{h.version} {ctrl}")
    click.echo("Runtime root:    /run/minirun")
    click.echo(f"Running as root: {'yes' if os.geteuid() == 0 else 'no (most commands need root)'}")


if __name__ == "__main__":
    main()
