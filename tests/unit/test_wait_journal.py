"""wait(condition=removed) when the record is gone before wait saw the exit: the exit code
comes from the container's "die" event in the journal (engine/api/containers.py _died_with).
Seen in the API suite once `run --rm` got faster: `docker run --rm ... exit 3` exited 0."""

from __future__ import annotations

from minirun.engine import events
from minirun.engine.api.containers import _died_with


def test_the_last_die_event_after_the_offset_gives_the_code(tmp_path):
    root = str(tmp_path)
    events.record(root, "container", "die", "a" * 64, {"name": "x", "exitCode": 7})
    import os

    offset = os.path.getsize(events.path(root))
    events.record(root, "container", "die", "b" * 64, {"name": "y", "exitCode": 1})
    events.record(root, "container", "die", "a" * 64, {"name": "x", "exitCode": 3})
    assert _died_with(root, "a" * 64, offset, 0) == 3
    assert _died_with(root, "c" * 64, offset, -1) == -1  # no event: the default
    assert _died_with(root, "a" * 64, 10**9, 0) == 3  # a trimmed journal: read from the start
