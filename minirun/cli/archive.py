"""save, load, import and export: images as tar archives (engine/api/archives.py does the work).

    minirun save [-o FILE] [--format docker-archive|oci] IMAGE...   (stdout if not a terminal)
    minirun load [-i FILE|DIR] [-q] [--repository REPO]             (stdin without -i)
    minirun import FILE|- [REPOSITORY[:TAG]] [-c CHANGE]... [-m MESSAGE]
    minirun export CONTAINER                            (cli/containers.py: engine/files.py)

`image save`, `image load` and `image import` are the same commands.
"""

from __future__ import annotations

import sys

import click

from ..errors import ImageError
from . import Command, image, main


def _api():
    """engine/api/archives.py, imported when one of these commands runs: it brings the archive
    code (tarfile, the compressors), which no other command needs."""
    from ..engine.api import archives  # lazily: every minirun command imports this module

    return archives


@click.command(cls=Command)
@click.option("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")
@click.option("--format", "fmt", type=click.Choice(["docker-archive", "oci"]),
              default="docker-archive", show_default=True,
              help="docker-archive (docker save's tar) or oci (an OCI image layout tar).")
@click.argument("images", nargs=-1, required=True)
@click.pass_obj
def save(obj, output: str | None, fmt: str, images: tuple[str, ...]) -> None:
    """Save images (names or IDs) to a tar archive."""
    do_save = _api().save
    if output is None or output == "-":
        out = click.get_binary_stream("stdout")
        if out.isatty():
            raise ImageError("cowardly refusing to save to a terminal: use the -o flag or redirect")
        do_save(obj.store(), list(images), out, format=fmt)
        out.flush()
    else:
        do_save(obj.store(), list(images), output, format=fmt)


@click.command(cls=Command)
@click.option("-i", "--input", "input_", metavar="FILE",
              help="Read from a tar archive (plain or compressed) or an OCI layout directory "
                   "instead of stdin.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing.")
@click.option("--repository", metavar="REPO",
              help="Repository for OCI images named only by a tag (ref.name \"latest\").")
@click.pass_obj
def load(obj, input_: str | None, quiet: bool, repository: str | None) -> None:
    """Load images from a docker-archive or an OCI image layout."""
    if input_ is None or input_ == "-":
        src = click.get_binary_stream("stdin")
        if src.isatty():
            raise ImageError("requested load from stdin, but stdin is a terminal: use -i FILE or "
                             "redirect")
    else:
        src = input_
    messages = _api().load(obj.store(), src, repository=repository)
    if not quiet:
        for m in messages:
            click.echo(m["stream"], nl=False)


@click.command("import", cls=Command)
@click.option("-c", "--change", "changes", multiple=True, metavar="INSTRUCTION",
              help="Apply a Dockerfile instruction to the config: CMD, ENTRYPOINT, ENV, EXPOSE, "
                   "LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL (repeatable).")
@click.option("-m", "--message", default="", help="Comment for the image's history.")
@click.argument("file")
@click.argument("repository", required=False)
@click.pass_obj
def import_(obj, changes: tuple[str, ...], message: str, file: str, repository: str | None) -> None:
    """Make a one-layer image from a flat rootfs tar (FILE, or - for stdin)."""
    if file == "-" and sys.stdin.isatty():
        raise ImageError("import from stdin, but stdin is a terminal: give FILE or redirect")
    done = _api().import_(obj.store(), file, repository, changes=changes, message=message)
    click.echo(done["Id"])


for _cmd in (save, load, import_):
    main.add_command(_cmd)
    image.add_command(_cmd)
