"""Making images: `build` (a Dockerfile), `commit` (a container), `builder prune` (the cache).

The work is engine/api/build.py's; this module parses the flags and prints what it streams.
"""

from __future__ import annotations

import os
import sys

import click

from ..base.units import human_size
from ..errors import MinirunError
from . import Group, main
from .pull import ensure_image


def _api():
    """engine/api/build.py, imported when one of these commands runs: it brings the builder
    and the Dockerfile parser, which no other command needs."""
    from ..engine.api import build  # lazily: every minirun command imports this module

    return build


def _print_stream(message: dict) -> None:
    """One of the build's messages: its `stream` text as it comes (aux is for programs)."""
    if "stream" in message:
        sys.stdout.write(message["stream"])
        sys.stdout.flush()


@main.command("build")
@click.option("-t", "--tag", "tags", multiple=True, help="Name and optionally a tag (name:tag).")
@click.option("-f", "--file", "dockerfile", default=None, help="The Dockerfile (default "
              "CONTEXT/Dockerfile).")
@click.option("--build-arg", "build_args", multiple=True, help="Set a build-time variable (K=V).")
@click.option("--no-cache", is_flag=True, help="Do not use the layer cache.")
@click.option("--target", default=None, help="Build up to this stage.")
@click.option("--pull", is_flag=True, help="Always pull the FROM images.")
@click.option("--network", default="default", help="RUN's network: default, none or host.")
@click.option("--label", "labels", multiple=True, help="Set a label on the image (k=v).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the image ID.")
@click.argument("context")
@click.pass_obj
def build(obj, tags, dockerfile, build_args, no_cache, target, pull, network, labels, quiet,
          context) -> None:
    """Build an image from a Dockerfile in CONTEXT (a directory)."""
    api = _api()
    args = {}
    for a in build_args:
        k, eq, v = a.partition("=")
        if not eq:
            if k not in os.environ:
                continue  # docker: `--build-arg K` takes K from the environment, if set
            v = os.environ[k]
        args[k] = v

    def fetch(ref: str, policy: str):
        return ensure_image(obj, ref, policy)

    try:
        done = api.build(obj.engine(), context, dockerfile=dockerfile, tags=list(tags),
                         build_args=args, no_cache=no_cache, target=target, pull_always=pull,
                         network=network, quiet=quiet,
                         labels=dict(lb.partition("=")[::2] for lb in labels),
                         pull=fetch, progress=_print_stream)
    except api.BuildArgumentError:
        raise  # refused before it started: the CLI's answer (125)
    except MinirunError as e:
        if obj.debug:
            raise
        click.echo(f"minirun: {e}", err=True)
        sys.exit(1)  # `docker build` exits 1 when the build fails
    if quiet:
        click.echo(done["Id"])


@main.command("commit")
@click.option("-m", "--message", default="", help="Commit message.")
@click.option("-a", "--author", default="", help="Author (\"Name <mail>\").")
@click.option("-c", "--change", "changes", multiple=True,
              help="Apply a Dockerfile instruction to the image (CMD, ENV, WORKDIR ...).")
@click.option("-p/--pause", "--pause/--no-pause", default=True,
              help="Freeze the container while its changes are read (default true).")
@click.argument("container")
@click.argument("repository", required=False)
@click.pass_obj
def commit(obj, message, author, changes, pause, container, repository) -> None:
    """Create a new image from a container's changes."""
    done = _api().commit(obj.engine(), container, repository, comment=message, author=author,
                         changes=list(changes), pause=pause)
    click.echo(done["Id"])


@main.group("builder", cls=Group, table="builder")
def builder() -> None:
    """Manage the build cache."""


@builder.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="(the same: the cache has one kind)")
@click.option("-f", "--force", is_flag=True, help="Do not ask.")
@click.pass_obj
def builder_prune(obj, all_, force) -> None:
    """Forget the build cache; its layers go when no image uses them."""
    if not force and sys.stdin.isatty():
        if not click.confirm("WARNING! This will remove all dangling build cache. Are you sure "
                             "you want to continue?"):
            return
    done = _api().prune_cache(obj.engine())
    click.echo(f"Total reclaimed space: {human_size(done['SpaceReclaimed'])}")
