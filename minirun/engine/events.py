"""The event journal: what happened to containers, images, networks and volumes, in order.

Docker's daemon keeps its events in memory; minirun has no daemon, so whoever acts appends the
event to a file under --root, `events.jsonl`, one JSON object a line, in Docker's shape:

    {"Type": "container", "Action": "die", "Actor": {"ID": "<id>", "Attributes":
     {"name": "web", "image": "busybox", "exitCode": "0"}}, "scope": "local",
     "time": 1700000000, "timeNano": 1700000000123456789}

The CLI, the API service and each container's monitor write it (the monitor: start, die and
health_status). A line is one write(2) with O_APPEND, so writers never interleave; the file is
cut back to its newest half when it passes MAX_BYTES, under a lock, as Docker keeps only its
last events. `minirun events` and GET /events read it, and follow it as `logs -f` follows a log.
"""

from __future__ import annotations

import os
import time

from .. import fastjson
from ..base.filelock import FileLock

NAME = "events.jsonl"
MAX_BYTES = 4 << 20


def path(root: str) -> str:
    return os.path.join(root, NAME)


def record(root: str, kind: str, action: str, actor: str, attributes: dict | None = None) -> None:
    """Append one event; never fails the action it reports (a full disk loses the event)."""
    ns = time.time_ns()
    line = fastjson.dumps({
        "Type": kind, "Action": action,
        "Actor": {"ID": actor, "Attributes": {k: str(v) for k, v in (attributes or {}).items()}},
        "scope": "local", "time": ns // 10**9, "timeNano": ns}) + "\n"
    p = path(root)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line.encode())
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size > MAX_BYTES:
            _trim(p)
    except OSError:
        pass


def _trim(p: str) -> None:
    """Keep the newest half (whole lines), replacing the file atomically under a lock."""
    with FileLock(p + ".lock"):
        try:
            with open(p, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return
        if len(data) <= MAX_BYTES:
            return  # another writer trimmed it meanwhile
        keep = data[len(data) - MAX_BYTES // 2:]
        keep = keep[keep.find(b"\n") + 1:]
        tmp = f"{p}.tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(keep)
        os.replace(tmp, p)


def container_attributes(c) -> dict:
    """What Docker puts in a container event's Attributes: name, image and the labels."""
    return {**(c.config.get("Labels") or {}), "name": c.name, "image": c.image}


def read(root: str, offset: int = 0) -> tuple[list[dict], int]:
    """The events from byte `offset` on, and the offset after the last whole line."""
    try:
        with open(path(root), "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], 0
    end = data.rfind(b"\n") + 1
    out = []
    for line in data[:end].splitlines():
        try:
            out.append(fastjson.loads(line))
        except ValueError:
            continue
    return out, offset + end
