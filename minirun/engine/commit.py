"""`commit`: a container's changes become a new image (and every `RUN` of a build is one).

The container's writable layer is overlayfs's upper directory: exactly what the container
changed, with deletions as whiteouts. Committing writes it as one more layer on top of the
image's (image/assemble.py translates overlay's whiteouts into the image-spec's), and a new
config: the container's own settings (Cmd, Env, WorkingDir, User ...), changed by `-c
INSTRUCTION`s, one more diff_id, one more history entry. A running container is frozen for the
moment its layer is read (Docker's --pause), so the layer is one consistent instant.
"""

from __future__ import annotations

import os

from ..base.times import now
from ..errors import MinirunError
from .records import Container

# What a container's config carries into an image (Docker's commit merges the same keys).
IMAGE_KEYS = ("User", "Env", "Cmd", "Entrypoint", "WorkingDir", "Labels", "ExposedPorts",
              "Volumes", "StopSignal", "Healthcheck", "OnBuild", "Shell")
# The runtime's bind-mount targets for the container's own /etc files: Docker keeps them in an
# "init layer" that commit leaves out; here they are empty stubs in upper, left out too.
RUNTIME_FILES = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")


class CommitError(MinirunError):
    exit_code = 125


def runtime_stubs(upper: str) -> set[str]:
    """The /etc files the runtime created only to mount over (empty regular files). Looked up
    inside upper (kernel/resolve.py): the container may have made its /etc a symlink there,
    and an lstat by path would then describe a host file."""
    from ..kernel import resolve

    out = set()
    for p in RUNTIME_FILES:
        try:
            fd = resolve.open_in(upper, p, os.O_PATH | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        if st.st_size == 0 and (st.st_mode & 0o170000) == 0o100000:
            out.add(p)
    return out


def commit(engine, c: Container, tag: str | None = None, message: str = "", author: str = "",
           changes: list[str] = (), pause: bool = True):
    """Make an image of container `c`; returns its ImageRecord."""
    from ..image import reference
    from ..image.dockerfile.changes import apply_changes
    from ..image.assemble import add_layer_from_dir, image_config, write_image

    store = engine.images()
    tags = []
    if tag:
        ref = reference.parse(tag)
        if ref.digest:
            raise CommitError(f"invalid reference {tag!r}: commit takes REPOSITORY[:TAG]")
        tags = [ref.name]
    try:
        base = store.image(c.image_id)
    except MinirunError:
        base = None  # its image was removed since: the layers it names are still here
    config = image_config(store, base) if base is not None else image_config(store, None)
    if base is None:
        config["rootfs"]["diff_ids"] = [_diff_id_of(store, n) for n in c.layers]
    cfg = dict(config.get("config") or {})
    for k in IMAGE_KEYS:
        if c.config.get(k) is not None:
            cfg[k] = c.config[k]
    cfg["Env"] = [e for e in cfg.get("Env") or [] if not e.startswith("HOSTNAME=")]
    cfg = apply_changes(cfg, changes)
    upper = os.path.join(engine.cdir(c.id), "upper")
    frozen = pause and c.state.status == "running"
    if frozen:
        engine.pause(c)
    try:
        layer = add_layer_from_dir(store, upper, runtime_stubs(upper),
                                   c.host_config.get("IDMappings"))
    finally:
        if frozen:
            engine.unpause(engine.containers.load(c.id))
    stamp = now(6)  # image times in microseconds, as minirun's images have them
    entry = {"created": stamp, "created_by": " ".join([c.path, *c.args])}
    if message:
        entry["comment"] = message
    if author:
        entry["author"] = author
    if layer is None:
        entry["empty_layer"] = True
    else:
        config["rootfs"]["diff_ids"] = list(config["rootfs"]["diff_ids"]) + [layer[0]]
    config.update(created=stamp, config=cfg)
    if author:
        config["author"] = author
    # Docker keeps the message in the image's own `comment` too (inspect's .Comment), and a
    # commit without one leaves none (not the base image's).
    if message:
        config["comment"] = message
    else:
        config.pop("comment", None)
    config["history"] = list(config.get("history") or []) + [entry]
    return write_image(store, config, tags, base=base)


def _diff_id_of(store, name: str) -> str:
    """A layer directory's short name back to its diff_id (its record beside it)."""
    import json

    with open(os.path.join(store.layers_dir, name + ".json")) as f:
        return json.load(f)["diff_id"]
