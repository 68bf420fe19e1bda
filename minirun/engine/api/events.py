"""Events: Docker's feed of what happens to containers, images, volumes and networks.

    events(eng, since, until, filters)  -> iterator of Docker's events   GET /events

One dict per event, in Docker's shape (engine/events.py writes them):

    {"Type": "container", "Action": "start", "Actor": {"ID": "<id>",
     "Attributes": {"name": "web", "image": "alpine"}}, "scope": "local",
     "time": 1700000000, "timeNano": 1700000000123456789}

Type container (create, start, die with Attributes.exitCode, stop, kill with signal, pause,
unpause, rename, destroy), image (pull, tag, untag, delete), volume (create, destroy) and
network (create, connect, disconnect, destroy). Without `since`, only what happens from now
on; with it, the journal's events from then; without `until`, the feed goes on until the
caller stops reading; with it, it ends there. Every filter must match (type, event,
container, image, label, network, volume); InvalidArgument for another one.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Iterator

from ...errors import InvalidArgument
from .. import events as journal
from ..lifecycle import Engine
from ..logs import parse_since

FILTERS = ("type", "event", "container", "image", "label", "network", "volume")
POLL = 0.1  # seconds between looks at the journal while following it


def _ns(text: str) -> int | None:
    """since/until (a time, a Unix timestamp or a duration ago) in nanoseconds."""
    if not text:
        return None
    try:
        stamp = parse_since(text)  # "2026-12-05T10:00:00.123456" (UTC, no zone)
    except ValueError as e:
        raise InvalidArgument(str(e)) from None
    from datetime import datetime, timezone  # only with since/until

    main, _, frac = stamp.partition(".")
    dt = datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return int(dt.timestamp()) * 10**9 + int((frac + "000000000")[:9])


def _matches(e: dict, filters: dict[str, list[str]]) -> bool:
    actor = e.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    for key, values in filters.items():
        if key == "type":
            ok = e.get("Type") in values
        elif key == "event":
            ok = e.get("Action", "").split(":")[0] in values
        elif key in ("container", "network", "volume"):
            ok = e.get("Type") == key and any(
                v == attrs.get("name") or actor.get("ID", "").startswith(v) for v in values)
        elif key == "image":
            ok = any(v in (attrs.get("image"), actor.get("ID")) for v in values)
        else:  # label
            ok = all(attrs.get(k) == val if eq else k in attrs
                     for k, eq, val in (v.partition("=") for v in values))
        if not ok:
            return False
    return True


def events(eng: Engine, since: str = "", until: str = "",
           filters: dict[str, list[str]] | None = None,
           alive: Callable[[], bool] = lambda: True) -> Iterator[dict]:
    """Docker's events (see the module's docstring). `alive()` is asked between looks at the
    journal: the feed ends when it says no (a client that went away while nothing happened)."""
    filters = filters or {}
    for key in filters:
        if key not in FILTERS:
            raise InvalidArgument(f"invalid filter '{key}': {', '.join(FILTERS)}")
    start, end = _ns(since), _ns(until)
    p = journal.path(eng.root)
    offset = 0 if start is not None else (os.path.getsize(p) if os.path.exists(p) else 0)

    def feed() -> Iterator[dict]:
        nonlocal offset
        newest = skip_upto = 0
        while True:
            if os.path.exists(p) and os.path.getsize(p) < offset:
                # The journal was cut back: read it again, past what we have sent already.
                offset, skip_upto = 0, newest
            batch, offset = journal.read(eng.root, offset)
            for e in batch:
                t = e.get("timeNano", 0)
                if t <= skip_upto or (start is not None and t < start):
                    continue
                if end is not None and t > end:
                    return
                newest = max(newest, t)
                if _matches(e, filters):
                    yield e
            if (end is not None and time.time_ns() > end) or not alive():
                return
            time.sleep(POLL)

    return feed()


__all__ = ["events", "FILTERS"]
