"""`minirun create`: a container made from an image, not started (run's flags: cli/run.py)."""

from __future__ import annotations

import click

from . import container_group, main
from .common import RUN_SETTINGS
from .run import _create, _run_options


@main.command(context_settings=RUN_SETTINGS)
@_run_options
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def create(obj, image: str, command: tuple[str, ...], **kw) -> None:
    """Create a container from IMAGE without starting it; print its ID."""
    click.echo(_create(obj, image, command, kw))


container_group.add_command(create, "create")  # `minirun container create`
