"""What several command families print or ask alike: filters, inspect, prune.

`ps`, `images`, `volume ls` and `network ls` take `-f KEY=VALUE`; `inspect` of containers,
volumes and networks prints what it found and names what it did not; every `prune` asks
before it removes (at a terminal) and lists what went. One copy of each, here.
"""

from __future__ import annotations

import os
import sys
from typing import Callable

import click

from ..base.table import plain as plain_table
from ..errors import MinirunError


def table(fmt: str, default: str, headers: dict[str, str], rows: list[dict], **options) -> str:
    """A listing's output: its default table made directly when no --format is given (base/
    table.py: byte-identical, without gotemplate.py and json, ~2 ms of every listing), else
    through the template engine. default: "table {{.A}}\t{{.B}}"; options: Format's."""
    if not fmt:
        out = plain_table(default[len("table "):], headers, rows)
        if out is not None:
            return out
    from ..base.gotemplate import Format  # (~2 ms with json and the template's parse)

    return Format(fmt or default, headers, default[len("table "):], **options).write(rows)


def inspect_text(rows: list, fmt: str = "", **options) -> str:
    """What an inspect prints (gotemplate.inspect_output): without --format, the JSON made
    here, so that the template engine is not imported (~1 ms)."""
    if not fmt:
        import json  # (~1 ms: only the JSON output needs it)

        return json.dumps(rows, indent=4) + "\n"  # gotemplate.inspect_output's, the same
    from ..base.gotemplate import inspect_output  # (~2 ms with json: a template given)

    return inspect_output(rows, fmt, **options)


def parse_filters(texts, strict: bool = False) -> dict[str, list[str]]:
    """`-f KEY=VALUE`... as the engine API's filters: {"KEY": ["VALUE", ...]}. strict: a
    filter without `=` is the CLI's own error (125), and keys are matched case-blind, as
    `docker images` does."""
    out: dict[str, list[str]] = {}
    for text in texts:
        key, eq, value = text.partition("=")
        if strict:
            if not eq:
                raise MinirunError(f"bad format of filter (expected name=value): {text}")
            key = key.strip().lower()
        out.setdefault(key, []).append(value)
    return out


def inspect_each(names, fetch: Callable[[str], dict], fmt: str, type_name: str | None = None) -> None:
    """Print `fetch(name)` for every name as `inspect` does (a JSON array or a template per
    row); a name that fails gets its one-line error, and the exit code is 1, as Docker's.
    type_name: the Go type docker's template sees when it has no raw-JSON fallback (volumes:
    `can't evaluate field X in type volume.Volume`); without it a missing key is an error."""
    if fmt:
        inspect_text([], fmt)  # a template that does not parse fails first (64)
    out, failed = [], False
    for name in names:
        try:
            out.append(fetch(name))
        except MinirunError as e:
            click.echo(f"minirun: {e}", err=True)
            failed = True
    click.echo(inspect_text(out, fmt, type_name=type_name), nl=False)
    if failed:
        sys.exit(1)


def each(refs, fn: Callable) -> None:
    """Docker's multi-object verbs (start, rm, network rm, volume rm, ...): do fn(ref) for each,
    print what it returns (nothing for None), report failures at the end (exit 1 if any
    failed)."""
    failed = False
    for ref in refs:
        try:
            out = fn(ref)
            if out is not None:
                click.echo(out)
        except MinirunError as e:
            click.echo(f"minirun: {e}", err=True)
            failed = True
    if failed:
        sys.exit(1)


def label_of(labels: dict[str, str]):
    """docker's {{.Label "KEY"}} of a listing's row: one label's value, "" without it."""
    return lambda key: labels.get(key, "")


def confirm(force: bool, warning: str) -> None:
    """Ask before removing, as Docker does: only at a terminal, and not with --force."""
    if not force and os.isatty(0):
        click.confirm(f"WARNING! {warning}\nAre you sure you want to continue?", abort=True)


def deleted(title: str, items: list[str], reclaimed: bool = True) -> None:
    """A prune's report: "Deleted TITLE:" and one line each, then the space reclaimed."""
    if items:
        click.echo(f"Deleted {title}:")
        for item in items:
            click.echo(item)
        if reclaimed:
            click.echo("")
    if reclaimed:
        click.echo("Total reclaimed space: 0B")
