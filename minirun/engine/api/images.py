"""Images: the verbs of Docker's /images endpoints, on names and IDs, in plain data.

    get(store, name)                    -> ImageRecord (a reference, a full ID or a 12+ hex prefix)
    list_(store, filters)               -> [ImageSummary, ...]       GET /images/json
    inspect(store, name)                -> ImageInspect              GET /images/{name}/json
    history(store, name)                -> [HistoryResponseItem]     GET /images/{name}/history
    tag(store, source, target)                                       POST /images/{name}/tag
    check_tag(target)                   -> Reference (InvalidArgument if it is no tag)
    remove(store, name, force, noprune) -> [{"Untagged"}, {"Deleted"}]   DELETE /images/{name}
    prune(store, all)                   -> {"ImagesDeleted", "SpaceReclaimed"}  POST /images/prune
    prune_layers(store)                 -> [{"Deleted": diff_id}]  (what no image uses any more)
    containers_using(store, image_id)   -> IDs of the containers made from it

Pull, push, login and logout are in distribution.py; save, load and import in archives.py;
build and commit in build.py.

Errors: NotFound (store.NoSuchImage: no such image), InvalidArgument (a bad reference or filter,
an ambiguous ID prefix), Conflict (ImageInUse: rmi of an image a container uses or that is
referenced in several repositories, without force). Each is also an ImageError (or the
errors.ReferenceError it always was), so code that catches those keeps working.

Containers: an image used by a container keeps its record (and so its layers, which are that
container's overlay lowerdirs) whatever the flags: `force` only removes its tags and never stops
anything. Which containers use an image comes from the container records beside the store.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from typing import Any

from ... import fastjson
from ...errors import Conflict, ImageError, InvalidArgument, MinirunError, ReferenceError
from ...image import reference
from ...image.store import ImageRecord, NoSuchImage, Store
from .. import events as journal
from ..records import Containers

# Go's zero time.Time as Unix seconds: Docker's Created for an image without a creation time.
UNKNOWN_TIME = -62135596800
MISSING = "<missing>"  # the ID of a history entry that is not an image of its own
LIST_FILTERS = ("dangling", "reference", "label", "before", "since")
_BOOL = {"true": True, "1": True, "false": False, "0": False}

_CONFIG_KEYS = ("User", "ExposedPorts", "Env", "Cmd", "Healthcheck", "ArgsEscaped", "Volumes",
                "WorkingDir", "Entrypoint", "OnBuild", "Labels", "StopSignal", "Shell")
_CONFIG_ALWAYS = {"User": "", "ExposedPorts": None, "Env": None, "Cmd": None, "Volumes": None,
                  "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None,
                  "StopSignal": ""}


class ImageInUse(ImageError, Conflict):
    """rmi refused: a container uses the image, or it is referenced in several repositories."""


# --- resolving and reading ------------------------------------------------------------------------


def get(store: Store, name: str) -> ImageRecord:
    """The image `name` names: a reference, a full image ID or a unique prefix of at least 12
    hex digits. NotFound when there is none (a 64-hex name that is no image's ID included);
    InvalidArgument for a name that is no reference, or a prefix of several IDs."""
    try:
        return store.resolve(name)
    except ReferenceError as e:
        if e.problem.startswith("a 64-hex"):
            raise NoSuchImage(f"no such image: {name}") from None
        raise


def containers_using(store: Store, image_id: str) -> list[str]:
    """IDs of the containers created from image `image_id` (running or not): rmi refuses, and
    prune skips, such an image. Containers live beside the image store (<root>/containers)."""
    root = os.path.dirname(store.root)
    return [c.id for c in Containers(root).all() if c.image_id == image_id]


def config_of(store: Store, record: ImageRecord) -> dict:
    """The image's config blob as a dict ({} if it is unreadable: a listing still works)."""
    try:
        with store.open_blob(record.id) as f:
            data = fastjson.loads(f.read())
    except (MinirunError, OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


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


def unix_time(text: str) -> int:
    """An image time as Docker's API carries it: Unix seconds (UNKNOWN_TIME if none)."""
    t = parse_time(text)
    return UNKNOWN_TIME if t is None else int(t.timestamp() // 1)


# --- list -----------------------------------------------------------------------------------------


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
                raise InvalidArgument(f"invalid reference filter {pattern!r}: syntax error in "
                                      "pattern")
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


def check_filters(filters: dict[str, list[str]]) -> bool | None:
    """Docker's image list filters ({"dangling": ["true"], "reference": ["alpine*"], "label":
    ["k=v"], "before": [IMAGE], "since": [IMAGE]}) checked; returns what dangling asks (None:
    either). InvalidArgument for an unknown key, a dangling value that is no boolean or a
    reference pattern with a syntax error."""
    dangling = None
    for key, values in filters.items():
        if key not in LIST_FILTERS:
            raise InvalidArgument(f"invalid filter '{key}' (images takes {', '.join(LIST_FILTERS)})")
        if key == "reference":
            for pattern in values:
                path_match(pattern, "")  # a pattern Go's path.Match refuses is refused now
        if key != "dangling":
            continue
        for value in values:
            if value.lower() not in _BOOL:
                raise InvalidArgument(f"invalid filter 'dangling={value}' (true or false)")
            new = _BOOL[value.lower()]
            if dangling is not None and dangling != new:
                raise InvalidArgument("invalid filter: dangling=true and dangling=false together")
            dangling = new
    return dangling


def list_(store: Store, filters: dict[str, list[str]] | None = None) -> list[dict]:
    """Docker's ImageSummary rows (GET /images/json), one per image, after the filters:
    reference=PATTERN (any matches; RepoTags and RepoDigests keep only the matching names),
    label=KEY or KEY=VALUE (all must match), dangling=true|false, before=IMAGE, since=IMAGE.
    (minirun keeps no intermediate images: `all` would change nothing.)"""
    filters = filters or {}
    dangling = check_filters(filters)
    references = filters.get("reference", [])
    labels = [(k, v if eq else None) for k, eq, v in
              (item.partition("=") for item in filters.get("label", []))]
    bounds = [("before", get(store, t)) for t in filters.get("before", [])]
    bounds += [("since", get(store, t)) for t in filters.get("since", [])]
    rows = []
    for record in store.images():
        if any((op == "before" and not (record.created, record.id) < (b.created, b.id))
               or (op == "since" and not (record.created, record.id) > (b.created, b.id))
               for op, b in bounds):
            continue
        image_labels = None
        if labels:
            image_labels = (config_of(store, record).get("config") or {}).get("Labels") or {}
            if not all(k in image_labels and (v is None or image_labels[k] == v)
                       for k, v in labels):
                continue
        tags, dgsts = list(record.repo_tags), list(record.repo_digests)
        if references:
            tags = [t for t in tags if any(_reference_matches(p, t) for p in references)]
            dgsts = [d for d in dgsts if any(_reference_matches(p, d) for p in references)]
        if not tags and not dgsts:
            if references or dangling is False or record.repo_tags or record.repo_digests:
                continue
        elif dangling is True and tags:
            continue
        rows.append({"Id": record.id, "ParentId": "", "RepoTags": tags, "RepoDigests": dgsts,
                     "Created": unix_time(record.created), "Size": record.size,
                     "SharedSize": -1, "VirtualSize": record.size,
                     "Labels": image_labels if image_labels is not None else
                     (config_of(store, record).get("config") or {}).get("Labels") or {},
                     "Containers": -1})
    return rows


# --- inspect and history --------------------------------------------------------------------------


def inspect(store: Store, name: str) -> dict:
    """Docker's ImageInspect: what `docker image inspect` prints for one image."""
    return inspect_record(store, get(store, name))


def inspect_record(store: Store, record: ImageRecord) -> dict:
    """ImageInspect of an image already resolved (from its record and config blob)."""
    config = config_of(store, record)
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


def history(store: Store, name: str) -> list[dict]:
    """Docker's HistoryResponseItem list, newest first: {"Id", "Created" (Unix seconds),
    "CreatedBy", "Tags", "Size", "Comment"}. Layers' sizes come from the store, an empty_layer
    entry is 0; only the newest entry has an Id (the image's), the rest are <missing>, as for
    any image Docker did not build itself."""
    record = get(store, name)
    config = config_of(store, record)
    entries = []
    layers = iter(record.diff_ids)
    for h in config.get("history") or [{} for _ in record.diff_ids]:
        size = 0
        if not h.get("empty_layer"):
            diff_id = next(layers, None)
            if diff_id is not None:
                try:
                    size = store.layer_size(diff_id)
                except MinirunError:
                    size = 0
        entries.append((h, size))
    return [{"Id": record.id if i == 0 else MISSING, "Created": unix_time(h.get("created", "")),
             "CreatedBy": h.get("created_by", ""),
             "Tags": [familiar(t) for t in record.repo_tags] if i == 0 else [],
             "Size": size, "Comment": h.get("comment", "")}
            for i, (h, size) in enumerate(reversed(entries))]


# --- tag, remove, prune ---------------------------------------------------------------------------


def check_tag(target: str) -> reference.Reference:
    """`target` as a tag: InvalidArgument (ReferenceError) if it is no reference or names a
    digest."""
    ref = reference.parse(target)
    if ref.digest:
        raise ReferenceError(str(ref), "a tag cannot contain a digest")
    return ref


def tag(store: Store, source: str, target: str) -> None:
    """Name image `source` `target` too (no data is copied; a tag that named another image
    moves). InvalidArgument for a target that is no tag (check_tag), NotFound without a
    source."""
    target_ref = check_tag(target)
    with store.lock():
        image_id = get(store, source).id
        store.tag(target_ref, image_id)
    _event(store, "tag", image_id, target_ref.familiar)


def remove(store: Store, name: str, force: bool = False, noprune: bool = False) -> list[dict]:
    """Docker's rmi: untag what `name` names; delete the image when nothing names it any more.
    Returns Docker's DeleteResponse items ({"Untagged": name}, {"Deleted": id}); when `force`
    untagged an image a container uses, a last {"Warning": ...} says it was kept. Without
    `noprune`, the layers no image uses any more go too ({"Deleted": diff_id}).

    By reference, that name goes (and, with a repository's last tag, its digests); by ID,
    every name goes if they are all in one repository (or with `force`). Conflict (ImageInUse)
    when a container uses the image, or it is in several repositories, unless `force`."""
    out = _remove(store, name, force)
    for item in out:
        if "Untagged" in item:
            _event(store, "untag", item["Untagged"], item["Untagged"])
        elif "Deleted" in item:
            _event(store, "delete", item["Deleted"], name)
    if not noprune and any("Deleted" in item for item in out):
        out += prune_layers(store)
    return out


def _event(store: Store, action: str, image_id: str, name: str) -> None:
    """An image event in the journal under --root (the store lives in <root>/image)."""
    journal.record(os.path.dirname(store.root), "image", action, image_id, {"name": name})


def _remove(store: Store, name: str, force: bool) -> list[dict]:
    out: list[dict] = []
    with store.lock():
        record = get(store, name)
        short = record.short_id
        users = containers_using(store, record.id)
        try:
            ref = reference.parse(name)
            key = ref.with_digest(ref.digest).name if ref.digest else ref.name
        except ReferenceError:
            key = None
        if key is not None and key in record.repo_tags + record.repo_digests:
            # By reference: remove that name; when it was the repository's last tag, its
            # digests go too (Docker's rule); the image goes when no name is left.
            remaining = [n for n in record.repo_tags + record.repo_digests if n != key]
            if users and not remaining and not force:
                raise ImageInUse(f'conflict: unable to remove repository reference "{name}" (must '
                                 f"force) - container {users[0][:12]} is using its referenced "
                                 f"image {short}")
            store.untag(key)
            out.append({"Untagged": familiar(key)})
            if "@" not in key:
                repo = _repo_of(key)
                if not any(_repo_of(t) == repo for t in record.repo_tags if t != key):
                    for d in record.repo_digests:
                        if _repo_of(d) == repo:
                            store.untag(d)
                            out.append({"Untagged": familiar(d)})
                            remaining.remove(d)
            if remaining or users:
                return out
        else:
            # By ID: every name goes, but only if they are all in one repository (or force).
            names = record.repo_tags + record.repo_digests
            if len({_repo_of(n) for n in names}) > 1 and not force:
                raise ImageInUse(f"conflict: unable to delete {short} (must be forced) - image is "
                                 "referenced in multiple repositories")
            if users and not force:
                raise ImageInUse(f"conflict: unable to delete {short} (must be forced) - image is "
                                 f"being used by container {users[0][:12]}")
            for n in names:
                store.untag(n)
                out.append({"Untagged": familiar(n)})
            if users:  # force never stops a container, nor takes the layers under its rootfs
                out.append({"Warning": f"image {short} kept (untagged): container "
                                       f"{users[0][:12]} uses it"})
                return out
        store.delete_image(record.id)
        out.append({"Deleted": record.id})
        return out


def prune_layers(store: Store) -> list[dict]:
    """Remove the layers and blobs no image uses any more: [{"Deleted": diff_id}, ...]."""
    return [{"Deleted": d} for d in store.prune_unused().layers]


PRUNE_FILTERS = ("until", "label", "label!")


def _prune_matcher(store: Store, filters: dict[str, list[str]]):
    """Docker's image prune filters: until=TIME (a Unix time, an RFC 3339 time or a duration
    ago: images created before it), label=KEY[=VALUE] and label!=KEY[=VALUE] (every one must
    hold). InvalidArgument for anything else, before anything is removed."""
    from ..logs import parse_since  # lazily: only a prune with filters reads times

    for key in filters:
        if key not in PRUNE_FILTERS:
            raise InvalidArgument(f"invalid filter '{key}'")
    cutoffs = []
    for text in filters.get("until", []):
        try:
            stamp = parse_since(text)
        except ValueError as e:
            raise InvalidArgument(str(e)) from None
        t = parse_time(stamp.partition(".")[0] + "Z")
        cutoffs.append(t.timestamp() if t else 0)
    want = [(k, v if eq else None) for k, eq, v in (x.partition("=") for x in filters.get("label", []))]
    refuse = [(k, v if eq else None) for k, eq, v in (x.partition("=") for x in filters.get("label!", []))]

    def matches(record: ImageRecord) -> bool:
        created = parse_time(record.created)
        if cutoffs and (created is None or not all(created.timestamp() < c for c in cutoffs)):
            return False
        if want or refuse:
            labels = (config_of(store, record).get("config") or {}).get("Labels") or {}
            has = lambda k, v: k in labels and (v is None or labels[k] == v)  # noqa: E731
            if not all(has(k, v) for k, v in want) or any(has(k, v) for k, v in refuse):
                return False
        return True

    return matches


def prune(store: Store, all: bool = False,  # noqa: A002 - Docker's name
          filters: dict[str, list[str]] | None = None) -> dict:
    """Docker's image prune: dangling images (every image no container uses with `all`) that
    match the filters (until=, label=, label!=), then the layers nothing uses.
    {"ImagesDeleted": [{"Untagged"}, {"Deleted"}, ...], "SpaceReclaimed": bytes}."""
    matches = _prune_matcher(store, filters or {})
    deleted: list[dict] = []
    with store.lock():
        for record in (store.images() if all else store.dangling()):
            if containers_using(store, record.id) or not matches(record):
                continue
            for n in record.repo_tags + record.repo_digests:
                store.untag(n)
                deleted.append({"Untagged": familiar(n)})
            store.delete_image(record.id)
            deleted.append({"Deleted": record.id})
    pruned = store.prune_unused()
    deleted += [{"Deleted": d} for d in pruned.layers]
    return {"ImagesDeleted": deleted, "SpaceReclaimed": pruned.reclaimed}


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


__all__ = ["ImageInUse", "UNKNOWN_TIME", "MISSING", "get", "containers_using", "config_of",
           "parse_time", "unix_time", "path_match", "check_filters", "list_", "inspect",
           "inspect_record", "history", "familiar", "check_tag", "tag", "remove", "prune_layers", "prune"]
