"""push: upload an image to a registry (`docker push`).

    minirun push [-a] [-q] [--insecure-registry HOST]... NAME[:TAG]
    minirun image push ...                                             (the same)

Output, as Docker prints it (layers top first, keyed by 12 hex of their diff_id):

    Using default tag: latest                        (no tag given, no -a, no -q)
    The push refers to repository [127.0.0.1:5000/busybox]
    5b8c72934dfc: Pushed                             (or: Layer already exists, Mounted from x)
    latest: digest: sha256:... size: 527

On a terminal each layer's line is redrawn in place: Preparing -> Pushing 1.2MB/3.4MB -> Pushed.
Elsewhere only each layer's outcome is printed, one line per layer. -q prints only the pushed
name once done (`docker push -q`: 127.0.0.1:5000/busybox:latest). Plain HTTP only for loopback
registries and those named by --insecure-registry; credentials from `minirun login`. The work
is engine/api/distribution.py's; progress.py renders the progress messages it sends.
"""

from __future__ import annotations

import sys
from typing import TextIO

import click

from ..image import reference
from . import image, main
from .progress import PushDisplay
from .pull import _distribution


def _display(out: TextIO, tty: bool | None = None) -> PushDisplay:
    return PushDisplay(out, tty)


@main.command()
@click.option("-a", "--all-tags", is_flag=True,
              help="Push all tags of the image's repository.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the pushed name.")
@click.option("--insecure-registry", "insecure", multiple=True, metavar="HOST[:PORT]",
              help="Allow plain HTTP to this registry (repeatable; loopback ones always may).")
@click.argument("name")
@click.pass_obj
def push(obj, all_tags: bool, quiet: bool, insecure: tuple[str, ...], name: str) -> None:
    """Upload an image to a registry: NAME[:TAG]."""
    api = _distribution()
    ref = reference.parse(name)
    if not (all_tags or quiet or api.has_tag(name) or ref.digest):
        click.echo(f"Using default tag: {ref.tag}")
    display = None if quiet else _display(sys.stdout)
    try:
        api.push(obj.store(), name, all_tags=all_tags, insecure_registries=insecure,
                 auth_file=obj.auth_path, progress=display)
    finally:
        if display is not None:
            display.close()
    if quiet:
        click.echo(ref.repo if all_tags else ref.name)  # what `docker push -q` prints


@image.command("push")
@click.option("-a", "--all-tags", is_flag=True)
@click.option("-q", "--quiet", is_flag=True)
@click.option("--insecure-registry", "insecure", multiple=True, metavar="HOST[:PORT]")
@click.argument("name")
@click.pass_context
def image_push(ctx, all_tags, quiet, insecure, name) -> None:
    """Upload an image to a registry (same as `minirun push`)."""
    ctx.invoke(push, all_tags=all_tags, quiet=quiet, insecure=insecure, name=name)
