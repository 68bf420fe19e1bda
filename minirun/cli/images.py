"""Image commands: images, tag, rmi, image inspect, history, image prune.

Registered as Docker registers them: `images` == `image ls`, `rmi` == `image rm`, `history` ==
`image history`, `tag` == `image tag`; `image inspect` and `image prune` live under `image` only.

Output follows the docker CLI: tables aligned as its tabwriter does (template.tabwrite), sizes
in decimal units with 3 significant digits (4.26MB), ages as "2 hours ago", references in their
familiar form (alpine:latest, not docker.io/library/alpine:latest).

Exit statuses: errors Docker reports from its daemon (no such image, an ambiguous ID, a
conflict in rmi: the engine's NotFound, InvalidArgument and Conflict) exit 1, as `docker
rmi`/`image inspect`/`history`/`tag` do; minirun's own errors (a bad filter, a bad template,
an invalid target reference), checked before the engine is asked, exit 125.

The work is the engine's (engine/api/images.py: Docker's ImageSummary, ImageInspect, history
and rmi answers); this module parses the flags and renders what it returns. An image used by a
container keeps its record whatever the flags: `rmi -f` only removes its tags.
"""


from __future__ import annotations

import contextlib
import copy
import os
import sys
from datetime import datetime, timezone
from typing import Any, Iterator

import click

from ..base.units import human_duration, human_size
from ..errors import Conflict, InvalidArgument, NotFound, ReferenceError
from ..image import reference
from . import Command, image, main
from . import render
from .render import inspect_text as inspect_output

NONE = "<none>"
UNKNOWN_TIME = -62135596800  # engine/api/images.py's: Go's zero time, an image without one

IMAGES_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST",
                  "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
                  "Containers": "CONTAINERS", "VirtualSize": "VIRTUAL SIZE",
                  "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE"}
IMAGES_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
IMAGES_DIGESTS_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"

HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                   "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}
HISTORY_TABLE = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
CREATED_BY_WIDTH = 45  # docker history truncates CREATED BY to this many characters

PRUNE_DANGLING_WARNING = "WARNING! This will remove all dangling images."
PRUNE_ALL_WARNING = "WARNING! This will remove all images without at least one container associated to them."


def _api():
    """engine/api/images.py, imported when an image command runs: it brings the image store
    (hashlib, tempfile, shutil ...), which `minirun ps` and `minirun run`'s start-up never need."""
    from ..engine.api import images  # lazily: every minirun command imports this module

    return images


@contextlib.contextmanager
def _daemon_errors() -> Iterator[None]:
    """What the engine answers inside is Docker's "Error response from daemon": one line and
    exit 1 (the Group would make it 125). The CLI's own checks come before, outside it."""
    try:
        yield
    except (NotFound, Conflict, InvalidArgument) as e:
        if os.environ.get("MINIRUN_DEBUG") or "--debug" in sys.argv:
            raise
        click.echo(f"minirun: {e}", err=True)
        sys.exit(1)


# Docker's go-units (human_size, human_duration) live in base/units.py.


def since(created: int, now: datetime | None = None) -> str:
    """"2 hours ago" for an image time in Unix seconds, or "N/A" when it has none."""
    if created == UNKNOWN_TIME:
        return "N/A"
    now = now or datetime.now(timezone.utc)
    return human_duration(now.timestamp() - created) + " ago"


def created_at(created: int) -> str:
    """Go's time.String() in local time, as `docker images --format json` shows CreatedAt."""
    if created == UNKNOWN_TIME:
        return "N/A"
    return datetime.fromtimestamp(created, timezone.utc).astimezone().strftime(
        "%Y-%m-%d %H:%M:%S %z %Z")


def ellipsis(text: str, width: int) -> str:
    """The docker CLI's Ellipsis: cut to `width` characters, the last one "…"."""
    return text if len(text) <= width else text[:width - 1] + "…"


def familiar(name: str) -> str:
    """docker.io/library/alpine:latest -> alpine:latest."""
    try:
        return reference.parse(name).familiar
    except ReferenceError:
        return name


def _short(image_id: str, no_trunc: bool) -> str:
    return image_id if no_trunc else image_id.partition(":")[2][:12]


def _alias(command: click.Command) -> click.Command:
    """The same command under a second name, left out of --help (docker image list, remove)."""
    alias = copy.copy(command)
    alias.hidden = True
    return alias


def inspect_image(store, record) -> dict:
    """ImageInspect of a resolved image (`minirun inspect NAME` falls back to images)."""
    return _api().inspect_record(store, record)


# --- images ----------------------------------------------------------------------------------------

def parse_filters(values: tuple[str, ...]) -> dict[str, list[str]]:
    """`-f KEY=VALUE`... as the API's filters ({"dangling": ["true"], "label": ["k=v"]}),
    checked here: a bad filter is the CLI's own error (125), not the daemon's."""
    out = render.parse_filters(values, strict=True)
    _api().check_filters(out)
    return out


def image_rows(rows: list[dict], *, digests: bool, no_trunc: bool,
               now: datetime | None = None) -> list[dict]:
    """The rows `docker images` prints from the API's ImageSummary list: one per tag (and per
    digest with --digests), Docker's keys; dangling images as <none> <none>."""
    out = []
    for s in rows:
        size = human_size(s["Size"], 3)
        base = {"Containers": "N/A", "CreatedAt": created_at(s["Created"]),
                "CreatedSince": since(s["Created"], now), "ID": _short(s["Id"], no_trunc),
                "SharedSize": "N/A", "Size": size, "UniqueSize": "N/A", "VirtualSize": size}
        for repo, tag, digest in _names(s["RepoTags"], s["RepoDigests"], digests):
            out.append({**base, "Repository": repo, "Tag": tag, "Digest": digest})
    return [dict(sorted(r.items())) for r in out]


def _names(tags: list[str], dgsts: list[str], show_digests: bool) -> list[tuple[str, str, str]]:
    """(repository, tag, digest) rows as the docker CLI's imageFormatTaggedAndDigest makes them."""
    if not tags and not dgsts:
        return [(NONE, NONE, NONE)]
    by_repo_tags: dict[str, list[str]] = {}
    by_repo_digests: dict[str, list[str]] = {}
    for t in sorted(tags, key=familiar):
        r = reference.parse(t)
        by_repo_tags.setdefault(r.familiar_repo, []).append(r.tag or NONE)
    for d in sorted(dgsts, key=familiar):
        r = reference.parse(d)
        by_repo_digests.setdefault(r.familiar_repo, []).append(r.digest or NONE)
    out = []
    for repo, repo_tags in by_repo_tags.items():
        repo_digests = by_repo_digests.pop(repo, []) if show_digests else []
        by_repo_digests.pop(repo, None)
        for tag in repo_tags:
            for digest in repo_digests or [NONE]:
                out.append((repo, tag, digest))
    for repo, repo_digests in by_repo_digests.items():
        for digest in (repo_digests if show_digests else [NONE]):
            out.append((repo, NONE, digest))
    return out


@click.command("images", cls=Command)
@click.option("-a", "--all", "all_", is_flag=True,
              help="Show all images (minirun keeps no intermediate images: same as without).")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output (full IDs).")
@click.option("--digests", is_flag=True, help="Show digests.")
@click.option("--format", "fmt", metavar="FORMAT",
              help="'table', 'table TEMPLATE', 'json' or a Go template ({{.Repository}}:{{.Tag}}).")
@click.option("-f", "--filter", "filters", multiple=True, metavar="FILTER",
              help="dangling=true|false, reference=PATTERN, label=KEY[=VALUE], before=IMAGE, since=IMAGE.")
@click.argument("repository", required=False, metavar="[REPOSITORY[:TAG]]")
@click.pass_obj
def _images(obj, all_, quiet, no_trunc, digests, fmt, filters, repository) -> None:
    """List images."""
    parsed = parse_filters(filters)
    if repository:
        parsed.setdefault("reference", []).append(repository)
    with _daemon_errors():
        summaries = _api().list_(obj.store(), parsed)
    rows = image_rows(summaries, digests=digests, no_trunc=no_trunc)
    if quiet:
        seen: set[str] = set()
        for row in rows:
            if row["ID"] not in seen:  # one line per image: `rmi $(images -q)` sees each once
                seen.add(row["ID"])
                click.echo(row["ID"])
        return
    default = IMAGES_DIGESTS_TABLE if digests else IMAGES_TABLE
    click.echo(render.table(fmt, default, IMAGES_HEADERS, rows,
                            type_name="*formatter.imageContext"), nl=False)


main.add_command(_images, "images")
image.add_command(_images, "ls")
image.add_command(_alias(_images), "list")


# --- tag -------------------------------------------------------------------------------------------

@click.command("tag", cls=Command)
@click.argument("source", metavar="SOURCE_IMAGE[:TAG]")
@click.argument("target", metavar="TARGET_IMAGE[:TAG]")
@click.pass_obj
def _tag(obj, source: str, target: str) -> None:
    """Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE (no data is copied)."""
    api = _api()
    api.check_tag(target)  # an invalid name is the CLI's own error: 125
    with _daemon_errors():
        api.tag(obj.store(), source, target)


main.add_command(_tag, "tag")
image.add_command(_tag, "tag")


# --- rmi -------------------------------------------------------------------------------------------

def render_removed(items: list[dict]) -> None:
    """Docker's rmi lines: Untagged: NAME, Deleted: ID; a kept image's note on stderr."""
    for item in items:
        if "Warning" in item:
            click.echo(f"minirun: {item['Warning']}", err=True)
        else:
            (key, value), = item.items()
            click.echo(f"{key}: {value}")


@click.command("rmi", cls=Command)
@click.option("-f", "--force", is_flag=True, help="Remove the image even if it has several tags "
              "(never stops containers: an image a container uses is only untagged).")
@click.option("--no-prune", is_flag=True, help="Keep unreferenced layers and blobs.")
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@click.pass_obj
def _rmi(obj, force: bool, no_prune: bool, images: tuple[str, ...]) -> None:
    """Remove one or more images (untag; delete when no tag is left)."""
    api, store = _api(), obj.store()
    failed = deleted = False
    for text in images:
        try:
            # The layers go once, after every image (noprune here, prune_layers below).
            items = api.remove(store, text, force, noprune=True)
        except (NotFound, Conflict, InvalidArgument) as e:
            if os.environ.get("MINIRUN_DEBUG") or "--debug" in sys.argv:
                raise
            click.echo(f"minirun: {e}", err=True)
            failed = True
            continue
        render_removed(items)
        deleted |= any("Deleted" in item for item in items)
    if deleted and not no_prune:
        render_removed(api.prune_layers(store))
    if failed:
        sys.exit(1)


main.add_command(_rmi, "rmi")
image.add_command(_rmi, "rm")
image.add_command(_alias(_rmi), "remove")


# --- image inspect ---------------------------------------------------------------------------------

def go_json_indent(value: Any) -> str:
    """json.MarshalIndent(v, "", "    ") as docker inspect prints it."""
    import json  # (~1 ms: not on `images`'s path)

    text = json.dumps(value, indent=4, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@image.command("inspect")
@click.option("-f", "--format", "fmt", metavar="TEMPLATE", help="Format the output with a Go template.")
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@click.pass_obj
def image_inspect(obj, fmt: str | None, images: tuple[str, ...]) -> None:
    """Display detailed information on one or more images."""
    api, store = _api(), obj.store()
    found, errors = [], []
    if fmt:
        inspect_output([], fmt)  # one that does not parse fails before anything is looked up (64)
    for text in images:
        try:
            found.append(api.inspect(store, text))
        except (NotFound, InvalidArgument) as e:
            errors.append(str(e))
    if fmt:
        click.echo(inspect_output(found, fmt), nl=False)
    else:
        click.echo(go_json_indent(found))
    for e in errors:
        click.echo(f"minirun: {e}", err=True)
    if errors:
        sys.exit(1)


# --- history ---------------------------------------------------------------------------------------

def history_rows(items: list[dict], *, no_trunc: bool, human: bool,
                 now: datetime | None = None) -> list[dict]:
    """The rows `docker history` prints from the API's history items (newest first)."""
    rows = []
    for h in items:
        created = h["Created"]
        created_by = h["CreatedBy"].replace("\t", " ")
        at = "N/A" if created == UNKNOWN_TIME else \
            datetime.fromtimestamp(created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append({
            "ID": h["Id"] if h["Id"].startswith("<") else _short(h["Id"], no_trunc),
            "CreatedAt": at,
            "CreatedSince": since(created, now) if human else at,
            "CreatedBy": created_by if no_trunc else ellipsis(created_by, CREATED_BY_WIDTH),
            "Size": human_size(h["Size"], 3) if human else str(h["Size"]),
            "Comment": h["Comment"],
        })
    return rows


@click.command("history", cls=Command)
@click.option("-H", "--human", type=click.BOOL, default=True, show_default=True,
              help="Print sizes and dates in human readable format.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("--format", "fmt", metavar="FORMAT", help="'table', 'table TEMPLATE', 'json' or a Go template.")
@click.argument("image_name", metavar="IMAGE")
@click.pass_obj
def _history(obj, human: bool, no_trunc: bool, quiet: bool, fmt: str | None, image_name: str) -> None:
    """Show the history of an image."""
    with _daemon_errors():
        items = _api().history(obj.store(), image_name)
    rows = history_rows(items, no_trunc=no_trunc, human=human)
    if quiet:
        for row in rows:
            click.echo(row["ID"])
        return
    from ..base.gotemplate import Format  # (~2 ms with json: not on `images`'s path)

    out = Format(fmt or HISTORY_TABLE, HISTORY_HEADERS, default_table=HISTORY_TABLE[len("table "):])
    click.echo(out.write(rows), nl=False)


main.add_command(_history, "history")
image.add_command(_history, "history")


# --- image prune -----------------------------------------------------------------------------------

def _stdin_is_tty() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (AttributeError, OSError, ValueError):
        return False


def _confirm(warning: str) -> bool:
    """Docker's PromptForConfirmation: y (any case) goes on, anything else stops. Without a
    terminal on stdin nobody can answer: that is a no, and the hint says to pass -f."""
    click.echo(f"{warning}\nAre you sure you want to continue? [y/N] ", nl=False)
    if not _stdin_is_tty():
        click.echo()
        click.echo("minirun: stdin is not a terminal: answering no (pass -f to prune without asking)",
                   err=True)
        return False
    answer = sys.stdin.readline()
    return answer.strip().lower() == "y"


@image.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Remove all unused images, not just dangling ones.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--filter", "filters", multiple=True, metavar="FILTER",
              help="until=TIME|DURATION, label=KEY[=VALUE], label!=KEY[=VALUE].")
@click.pass_obj
def image_prune(obj, all_: bool, force: bool, filters: tuple[str, ...] = ()) -> None:
    """Remove unused images (dangling ones; with -a every image no container uses)."""
    parsed: dict[str, list[str]] = {}
    for text in filters:
        key, eq, value = text.partition("=")
        if not eq:
            raise InvalidArgument(f"bad format of filter (expected name=value): {text}")
        if key.endswith("!"):  # label!=KEY: docker's negated label filter
            parsed.setdefault(key, []).append(value)
        else:
            parsed.setdefault(key.strip().lower(), []).append(value)
    _api()._prune_matcher(obj.store(), parsed)  # a bad filter fails before the prompt
    if not force and not _confirm(PRUNE_ALL_WARNING if all_ else PRUNE_DANGLING_WARNING):
        click.echo("Total reclaimed space: 0B")
        return
    done = _api().prune(obj.store(), all=all_, filters=parsed)
    if done["ImagesDeleted"]:
        click.echo("Deleted Images:")
        for item in done["ImagesDeleted"]:
            (key, value), = item.items()
            click.echo(f"{key.lower()}: {value}")
        click.echo()
    click.echo(f"Total reclaimed space: {human_size(done['SpaceReclaimed'])}")


__all__ = ["history_rows", "human_duration", "human_size", "image_rows", "inspect_image",
           "parse_filters", "render_removed"]
