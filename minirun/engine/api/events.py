"""Events: Docker's feed of what happens to containers, images, volumes and networks (to come).

    events(eng, since, until, filters)  -> iterator of Docker's events   GET /events

What it will stream, one dict per event, in Docker's shape:

    {"Type": "container", "Action": "start", "Actor": {"ID": "<id>",
     "Attributes": {"name": "web", "image": "alpine"}}, "scope": "local",
     "time": 1700000000, "timeNano": 1700000000123456789}

Type container (create, start, die with Attributes.exitCode, stop, kill with signal, pause,
unpause, rename, destroy, health_status: healthy ...), image (pull, tag, untag, delete),
volume (create, mount, destroy) and network (create, connect, disconnect, destroy); the
events between `since` and `until` (times, timestamps or durations, as `logs` takes them)
that match every filter (type, event, container, image, label ...), then, without `until`,
new ones as they come. There is no daemon to see them happen: the engine will append each to
an event log under --root (the monitor writes a container's start, die and health events),
and this iterator will read it and follow it, as logs.follow follows a container's log.

Until then it raises Unsupported (Docker's 501 Not Implemented).
"""

from __future__ import annotations

from typing import Iterator

from ...errors import Unsupported
from ..lifecycle import Engine


def events(eng: Engine, since: str = "", until: str = "",
           filters: dict[str, list[str]] | None = None) -> Iterator[dict]:
    """Docker's events (see the module's docstring). Unsupported for now."""
    raise Unsupported("events are not implemented yet: minirun keeps no event log")


__all__ = ["events"]
