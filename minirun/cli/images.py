"""Image commands: images, tag, rmi, image inspect, history, image prune.

Registered as Docker registers them: `images` == `image ls`, `rmi` == `image rm`, `history` ==
`image history`, `tag` == `image tag`; `image inspect` and `image prune` live under `image` only.

Output follows the docker CLI: tables aligned as its tabwriter does (template.tabwrite), sizes
in decimal units with 3 significant digits (4.26MB), ages as "2 hours ago", references in their
familiar form (alpine:latest, not docker.io/library/alpine:latest).

Exit statuses: errors Docker reports from its daemon (no such image, an ambiguous ID, a
conflict in rmi) exit 1, as `docker rmi`/`image inspect`/`history`/`tag` do; minirun's own
errors (a bad filter, a bad template, an invalid target reference) exit 125.

Containers: an image used by a container keeps its record (and so its layers, which are that
container's overlay lowerdirs) whatever the flags: `rmi -f` only removes its tags and never
stops anything. Which containers use an image comes from `containers_using()`: the container
records beside the image store.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import sys
from datetime import datetime, timezone
from typing import Any, Callable

import click

from ..base.units import human_duration, human_size
from ..errors import ImageError, MinirunError, ReferenceError
from ..image import reference
from . import Command, image, main
from .template import Format

NONE = "<none>"
MISSING = "<missing>"

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


def containers_using(image_id: str, store) -> list[str]:
    """IDs of the containers created from image `image_id` (running or not): rmi refuses, and
    prune skips, such an image. Containers live beside the image store (<root>/containers)."""
    from ..engine.records import Containers

    root = os.path.dirname(store.root)
    return [c.id for c in Containers(root).all() if c.image_id == image_id]


class DaemonError(ImageError):
    """An error Docker reports from its daemon: `docker rmi/inspect/history/tag` exit 1 on it."""


def _status_1(fn: Callable) -> Callable:
    """Print a DaemonError as one line and exit 1 (the Group would make it 125)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DaemonError as e:
            if os.environ.get("MINIRUN_DEBUG") or "--debug" in sys.argv:
                raise
            click.echo(f"minirun: {e}", err=True)
            sys.exit(1)

    return wrapper


def _resolve(store, text: str):
    """The image `text` names (reference, ID or ID prefix); DaemonError when there is none."""
    try:
        return store.resolve(text)
    except (ImageError, ReferenceError) as e:
        if isinstance(e, ReferenceError) and e.problem.startswith("a 64-hex"):
            raise DaemonError(f"no such image: {text}") from None
        raise DaemonError(str(e)) from None


# Docker's go-units (human_size, human_duration) live in base/units.py.


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 time from an image config (nanoseconds allowed); None if absent or bad."""
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", text)
        if not m:
            return None
        t = datetime.fromisoformat(m[1] + (m[2] or "")[:7] + m[3].replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def since(text: str, now: datetime | None = None) -> str:
    """"2 hours ago", or "N/A" when the image has no creation time."""
    t = parse_time(text)
    if t is None:
        return "N/A"
    now = now or datetime.now(timezone.utc)
    return human_duration((now - t).total_seconds()) + " ago"


def created_at(text: str) -> str:
    """Go's time.String() in local time, as `docker images --format json` shows CreatedAt."""
    t = parse_time(text)
    if t is None:
        return "N/A"
    return t.astimezone().strftime("%Y-%m-%d %H:%M:%S %z %Z")


def ellipsis(text: str, width: int) -> str:
    """The docker CLI's Ellipsis: cut to `width` characters, the last one "…"."""
    return text if len(text) <= width else text[:width - 1] + "…"


def familiar(name: str) -> str:
    """docker.io/library/alpine:latest -> alpine:latest."""
    try:
        return reference.parse(name).familiar
    except ReferenceError:
        return name


def _repo_of(name: str) -> str:
    try:
        return reference.parse(name).repo
    except ReferenceError:
        return name.partition("@")[0].rpartition(":")[0]


def load_config(store, record) -> dict:
    """The image's config blob as a dict ({} if it is unreadable: the listing still works)."""
    try:
        with store.open_blob(record.id) as f:
            data = json.loads(f.read())
    except (MinirunError, OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _short(image_id: str, no_trunc: bool) -> str:
    return image_id if no_trunc else image_id.partition(":")[2][:12]


def _alias(command: click.Command) -> click.Command:
    """The same command under a second name, left out of --help (docker image list, remove)."""
    alias = copy.copy(command)
    alias.hidden = True
    return alias


# --- images ----------------------------------------------------------------------------------------

_BOOL = {"true": True, "1": True, "false": False, "0": False}


def path_match(pattern: str, name: str) -> bool:
    """Go's path.Match: `*` and `?` stop at "/", [classes] with ^ negation, \\ escapes."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                raise MinirunError(f"invalid reference filter {pattern!r}: syntax error in pattern")
            body = pattern[i + 1:end]
            if body.startswith("^"):
                body = "^" + body[1:].replace("\\", "\\\\")
            else:
                body = body.replace("\\", "\\\\")
            out.append(f"(?![/])[{body}]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.fullmatch("".join(out), name) is not None


def _reference_matches(pattern: str, name: str) -> bool:
    """distribution/reference FamiliarMatch (the familiar string, then the familiar name), plus
    the canonical forms, so `images docker.io/library/alpine` finds alpine too."""
    try:
        r = reference.parse(name)
    except ReferenceError:
        return path_match(pattern, name)
    return any(path_match(pattern, s) for s in (r.familiar, r.familiar_repo, r.name, r.repo))


class _Filters:
    """`images -f`: dangling=true|false, reference=PATTERN (repeatable: any matches),
    label=KEY or label=KEY=VALUE (repeatable: all must match), before=IMAGE, since=IMAGE."""

    KEYS = ("dangling", "reference", "label", "before", "since")

    def __init__(self, values: tuple[str, ...]) -> None:
        self.dangling: bool | None = None
        self.references: list[str] = []
        self.labels: list[tuple[str, str | None]] = []
        self.before: list[str] = []
        self.since: list[str] = []
        for item in values:
            key, eq, value = item.partition("=")
            key = key.strip().lower()
            if not eq:
                raise MinirunError(f"bad format of filter (expected name=value): {item}")
            if key not in self.KEYS:
                raise MinirunError(f"invalid filter '{key}' (images takes {', '.join(self.KEYS)})")
            if key == "dangling":
                if value.lower() not in _BOOL:
                    raise MinirunError(f"invalid filter 'dangling={value}' (true or false)")
                new = _BOOL[value.lower()]
                if self.dangling is not None and self.dangling != new:
                    raise MinirunError("invalid filter: dangling=true and dangling=false together")
                self.dangling = new
            elif key == "reference":
                self.references.append(value)
            elif key == "label":
                k, eq2, v = value.partition("=")
                self.labels.append((k, v if eq2 else None))
            elif key == "before":
                self.before.append(value)
            else:
                self.since.append(value)


def image_rows(store, records, filters: _Filters, *, digests: bool, no_trunc: bool,
               now: datetime | None = None) -> list[dict]:
    """The rows `docker images` prints: one per tag (and per digest with --digests), Docker's
    keys, after the filters; dangling images as <none> <none>."""
    bounds = []
    for text in filters.before:
        bounds.append(("before", _resolve(store, text)))
    for text in filters.since:
        bounds.append(("since", _resolve(store, text)))
    rows = []
    for record in records:
        if any((op == "before" and not (record.created, record.id) < (b.created, b.id))
               or (op == "since" and not (record.created, record.id) > (b.created, b.id))
               for op, b in bounds):
            continue
        if filters.labels:
            labels = (load_config(store, record).get("config") or {}).get("Labels") or {}
            if not all(k in labels and (v is None or labels[k] == v) for k, v in filters.labels):
                continue
        tags, dgsts = list(record.repo_tags), list(record.repo_digests)
        if filters.references:
            tags = [t for t in tags if any(_reference_matches(p, t) for p in filters.references)]
            dgsts = [d for d in dgsts if any(_reference_matches(p, d) for p in filters.references)]
        if not tags and not dgsts:
            if filters.references or filters.dangling is False or record.repo_tags or record.repo_digests:
                continue
        elif filters.dangling is True and tags:
            continue
        base = _row_base(record, no_trunc, now)
        for repo, tag, digest in _names(tags, dgsts, digests):
            rows.append({**base, "Repository": repo, "Tag": tag, "Digest": digest})
    return [dict(sorted(r.items())) for r in rows]


def _row_base(record, no_trunc: bool, now: datetime | None) -> dict:
    size = human_size(record.size, 3)
    return {"Containers": "N/A", "CreatedAt": created_at(record.created),
            "CreatedSince": since(record.created, now), "ID": _short(record.id, no_trunc),
            "SharedSize": "N/A", "Size": size, "UniqueSize": "N/A", "VirtualSize": size}


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
@_status_1
def _images(obj, all_, quiet, no_trunc, digests, fmt, filters, repository) -> None:
    """List images."""
    parsed = _Filters(filters)
    if repository:
        parsed.references.append(repository)
    store = obj.store()
    rows = image_rows(store, store.images(), parsed, digests=digests, no_trunc=no_trunc)
    if quiet:
        seen: set[str] = set()
        for row in rows:
            if row["ID"] not in seen:  # one line per image: `rmi $(images -q)` sees each once
                seen.add(row["ID"])
                click.echo(row["ID"])
        return
    default = IMAGES_DIGESTS_TABLE if digests else IMAGES_TABLE
    out = Format(fmt or default, IMAGES_HEADERS, default_table=default[len("table "):])
    click.echo(out.write(rows), nl=False)


main.add_command(_images, "images")
image.add_command(_images, "ls")
image.add_command(_alias(_images), "list")


# --- tag -------------------------------------------------------------------------------------------

@click.command("tag", cls=Command)
@click.argument("source", metavar="SOURCE_IMAGE[:TAG]")
@click.argument("target", metavar="TARGET_IMAGE[:TAG]")
@click.pass_obj
@_status_1
def _tag(obj, source: str, target: str) -> None:
    """Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE (no data is copied)."""
    store = obj.store()
    target_ref = reference.parse(target)  # an invalid name is the CLI's own error: 125
    with store.lock():
        record = _resolve(store, source)
        store.tag(target_ref, record.id)


main.add_command(_tag, "tag")
image.add_command(_tag, "tag")


# --- rmi -------------------------------------------------------------------------------------------

def remove_image(store, text: str, force: bool, echo: Callable[[str], None]) -> bool:
    """`docker rmi TEXT`: untag what TEXT names; delete the image when nothing names it any
    more. Returns True if an image record was deleted. Raises DaemonError on a conflict."""
    with store.lock():
        record = _resolve(store, text)
        short = record.short_id
        users = containers_using(record.id, store)
        try:
            ref = reference.parse(text)
            key = ref.with_digest(ref.digest).name if ref.digest else ref.name
        except ReferenceError:
            key = None
        if key is not None and key in record.repo_tags + record.repo_digests:
            # By reference: remove that name; when it was the repository's last tag, its
            # digests go too (Docker's rule); the image goes when no name is left.
            remaining = [n for n in record.repo_tags + record.repo_digests if n != key]
            if users and not remaining and not force:
                raise DaemonError(f'conflict: unable to remove repository reference "{text}" (must '
                                  f"force) - container {users[0][:12]} is using its referenced image {short}")
            store.untag(key)
            echo(f"Untagged: {familiar(key)}")
            if "@" not in key:
                repo = _repo_of(key)
                if not any(_repo_of(t) == repo for t in record.repo_tags if t != key):
                    for d in record.repo_digests:
                        if _repo_of(d) == repo:
                            store.untag(d)
                            echo(f"Untagged: {familiar(d)}")
                            remaining.remove(d)
            if remaining or users:
                return False
        else:
            # By ID: every name goes, but only if they are all in one repository (or -f).
            names = record.repo_tags + record.repo_digests
            if len({_repo_of(n) for n in names}) > 1 and not force:
                raise DaemonError(f"conflict: unable to delete {short} (must be forced) - image is "
                                  "referenced in multiple repositories")
            if users and not force:
                raise DaemonError(f"conflict: unable to delete {short} (must be forced) - image is "
                                  f"being used by container {users[0][:12]}")
            for name in names:
                store.untag(name)
                echo(f"Untagged: {familiar(name)}")
            if users:  # -f never stops a container, nor takes the layers under its rootfs
                click.echo(f"minirun: image {short} kept (untagged): container {users[0][:12]} uses it",
                           err=True)
                return False
        store.delete_image(record.id)
        echo(f"Deleted: {record.id}")
        return True


@click.command("rmi", cls=Command)
@click.option("-f", "--force", is_flag=True, help="Remove the image even if it has several tags "
              "(never stops containers: an image a container uses is only untagged).")
@click.option("--no-prune", is_flag=True, help="Keep unreferenced layers and blobs.")
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@click.pass_obj
def _rmi(obj, force: bool, no_prune: bool, images: tuple[str, ...]) -> None:
    """Remove one or more images (untag; delete when no tag is left)."""
    store = obj.store()
    failed = deleted = False
    for text in images:
        try:
            deleted |= remove_image(store, text, force, click.echo)
        except DaemonError as e:
            if os.environ.get("MINIRUN_DEBUG") or "--debug" in sys.argv:
                raise
            click.echo(f"minirun: {e}", err=True)
            failed = True
    if deleted and not no_prune:
        for diff_id in store.prune_unused().layers:
            click.echo(f"Deleted: {diff_id}")
    if failed:
        sys.exit(1)


main.add_command(_rmi, "rmi")
image.add_command(_rmi, "rm")
image.add_command(_alias(_rmi), "remove")


# --- image inspect ---------------------------------------------------------------------------------

_CONFIG_KEYS = ("User", "ExposedPorts", "Env", "Cmd", "Healthcheck", "ArgsEscaped", "Volumes",
                "WorkingDir", "Entrypoint", "OnBuild", "Labels", "StopSignal", "Shell")
_CONFIG_ALWAYS = {"User": "", "ExposedPorts": None, "Env": None, "Cmd": None, "Volumes": None,
                  "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None,
                  "StopSignal": ""}


def inspect_image(store, record) -> dict:
    """`docker image inspect`'s object for one image, from its record and config blob."""
    config = load_config(store, record)
    cfg = config.get("config") or {}
    out_cfg = {}
    for key in _CONFIG_KEYS:
        if key in cfg:
            out_cfg[key] = cfg[key]
        elif key in _CONFIG_ALWAYS:
            out_cfg[key] = _CONFIG_ALWAYS[key]
    lowers = []
    for diff_id in reversed(record.diff_ids):
        try:
            lowers.append(store.layer_dir(diff_id))
        except MinirunError:
            pass
    data: dict[str, Any] = {
        "Id": record.id,
        "RepoTags": [familiar(t) for t in record.repo_tags],
        "RepoDigests": [familiar(d) for d in record.repo_digests],
        "Parent": "",
        "Comment": config.get("comment", ""),
        "Created": config.get("created") or record.created or "",
        "DockerVersion": config.get("docker_version", ""),
        "Author": config.get("author", ""),
        "Config": out_cfg,
        "Architecture": config.get("architecture", ""),
    }
    if config.get("variant"):
        data["Variant"] = config["variant"]
    data["Os"] = config.get("os", "")
    if config.get("os.version"):
        data["OsVersion"] = config["os.version"]
    data["Size"] = record.size
    data["GraphDriver"] = {"Name": "overlay", "Data": {"LowerDir": ":".join(lowers)}}
    rootfs = config.get("rootfs") or {}
    data["RootFS"] = {"Type": rootfs.get("type", "layers"), "Layers": list(record.diff_ids)}
    data["Metadata"] = {"LastTagTime": "0001-01-01T00:00:00Z"}
    return data


def go_json_indent(value: Any) -> str:
    """json.MarshalIndent(v, "", "    ") as docker inspect prints it."""
    text = json.dumps(value, indent=4, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@image.command("inspect")
@click.option("-f", "--format", "fmt", metavar="TEMPLATE", help="Format the output with a Go template.")
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@click.pass_obj
def image_inspect(obj, fmt: str | None, images: tuple[str, ...]) -> None:
    """Display detailed information on one or more images."""
    store = obj.store()
    found, errors = [], []
    template = Format(fmt) if fmt else None
    for text in images:
        try:
            found.append(inspect_image(store, _resolve(store, text)))
        except DaemonError as e:
            errors.append(str(e))
    if template is not None:
        for line in template.lines(found):
            click.echo(line)
    else:
        click.echo(go_json_indent(found))
    for e in errors:
        click.echo(f"minirun: {e}", err=True)
    if errors:
        sys.exit(1)


# --- history ---------------------------------------------------------------------------------------

def history_rows(store, record, *, no_trunc: bool, human: bool, now: datetime | None = None) -> list[dict]:
    """One row per history entry, newest first; layers' sizes from the store, empty_layer 0B;
    only the newest row has an ID (the image's), the rest are <missing>, as for any image
    Docker did not build itself."""
    config = load_config(store, record)
    history = config.get("history") or [{} for _ in record.diff_ids]
    entries = []
    layers = iter(record.diff_ids)
    for h in history:
        size = 0
        if not h.get("empty_layer"):
            diff_id = next(layers, None)
            if diff_id is not None:
                try:
                    size = store.layer_size(diff_id)
                except MinirunError:
                    size = 0
        entries.append((h, size))
    rows = []
    for i, (h, size) in enumerate(reversed(entries)):
        created = h.get("created", "")
        created_by = h.get("created_by", "").replace("\t", " ")
        t = parse_time(created)
        at = t.strftime("%Y-%m-%dT%H:%M:%SZ") if t and t.utcoffset().total_seconds() == 0 else (
            t.isoformat(timespec="seconds") if t else "N/A")
        rows.append({
            "ID": _short(record.id, no_trunc) if i == 0 else MISSING,
            "CreatedAt": at,
            "CreatedSince": since(created, now) if human else at,
            "CreatedBy": created_by if no_trunc else ellipsis(created_by, CREATED_BY_WIDTH),
            "Size": human_size(size, 3) if human else str(size),
            "Comment": h.get("comment", ""),
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
@_status_1
def _history(obj, human: bool, no_trunc: bool, quiet: bool, fmt: str | None, image_name: str) -> None:
    """Show the history of an image."""
    store = obj.store()
    record = _resolve(store, image_name)
    rows = history_rows(store, record, no_trunc=no_trunc, human=human)
    if quiet:
        for row in rows:
            click.echo(row["ID"])
        return
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
@click.pass_obj
def image_prune(obj, all_: bool, force: bool) -> None:
    """Remove unused images (dangling ones; with -a every image no container uses)."""
    if not force and not _confirm(PRUNE_ALL_WARNING if all_ else PRUNE_DANGLING_WARNING):
        click.echo("Total reclaimed space: 0B")
        return
    store = obj.store()
    lines = []
    with store.lock():
        for record in (store.images() if all_ else store.dangling()):
            if containers_using(record.id, store):
                continue
            for name in record.repo_tags + record.repo_digests:
                store.untag(name)
                lines.append(f"untagged: {familiar(name)}")
            store.delete_image(record.id)
            lines.append(f"deleted: {record.id}")
    pruned = store.prune_unused()
    lines += [f"deleted: {d}" for d in pruned.layers]
    if lines:
        click.echo("Deleted Images:")
        for line in lines:
            click.echo(line)
        click.echo()
    click.echo(f"Total reclaimed space: {human_size(pruned.reclaimed)}")


__all__ = ["containers_using", "history_rows", "human_duration", "human_size", "image_rows",
           "inspect_image", "remove_image"]
