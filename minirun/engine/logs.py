"""json-file logs, as Docker's default logging driver writes them.

containers/<id>/<id>-json.log holds one JSON object per line of output:

    {"log":"hello\\n","stream":"stdout","time":"2026-12-02T20:31:34.123456789Z"}

The monitor splits each stream at newlines (a line without one waits for the rest, up to 16
KiB), so `logs` can filter by time and stream and `--tail` counts lines. With -t there is only
one stream (the terminal), logged as stdout with its \\r\\n line ends, as Docker does.
"""

from __future__ import annotations

import os
import time

from .. import fastjson  # not json: the monitor writes logs and starts lean (test_startup_budget.py)
from ..base.durations import SECOND, parse_duration
from ..base.times import format_time, now

MAX_PARTIAL = 16 * 1024


class Writer:
    """Appends a container's output to its log file, a line per record."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.partial = {"stdout": b"", "stderr": b""}

    def write(self, stream: str, data: bytes) -> None:
        buf = self.partial[stream] + data
        lines = buf.split(b"\n")
        rest = lines.pop()
        out = [_record(stream, line + b"\n") for line in lines]
        if len(rest) >= MAX_PARTIAL:
            out.append(_record(stream, rest))
            rest = b""
        self.partial[stream] = rest
        if out:
            os.write(self.fd, "".join(out).encode())

    def flush(self) -> None:
        for stream, rest in self.partial.items():
            if rest:
                os.write(self.fd, _record(stream, rest).encode())
                self.partial[stream] = b""

    def close(self) -> None:
        self.flush()
        os.close(self.fd)


def _record(stream: str, data: bytes) -> str:
    return fastjson.dumps({"log": data.decode(errors="replace"), "stream": stream,
                           "time": now()}, compact=True) + "\n"


def parse_since(text: str) -> str:
    """--since: an RFC 3339 time, a Unix timestamp, or a Go duration (10m, 1h30m) ago."""
    import re  # here, not at the top: the monitor imports this module (start-up budget)

    text = text.strip()
    try:  # Docker tries a duration first; "0" is the Unix epoch, not "now"
        if text != "0":
            return format_time(time.time() - parse_duration(text) / SECOND)
    except ValueError:
        pass
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return format_time(float(text))
    if re.fullmatch(r"\d{4}-\d\d-\d\d(T\d\d:\d\d(:\d\d(\.\d+)?)?)?Z?", text):
        # Records' times are compared as strings: "Z" sorts after "." and ":", so keep it off
        # (every time here is UTC) or records later in that same second would be dropped.
        return text.rstrip("Z")
    raise ValueError(f"invalid --since value {text!r}: use a time (2026-12-02T10:00:00), a "
                     "Unix timestamp or a duration (10m)")


def read(path: str, tail: int | None = None, since: str | None = None) -> list[dict]:
    try:
        with open(path, errors="replace") as f:
            lines = f.readlines()
    except FileNotFoundError:
        return []
    recs = []
    for line in lines:
        try:
            recs.append(fastjson.loads(line))
        except ValueError:
            continue
    if since:
        recs = [r for r in recs if r.get("time", "") >= since]
    if tail is not None and tail >= 0:
        recs = recs[-tail:] if tail else []
    return recs


def follow(path: str, offset: int, alive) -> "iter":
    """Yield records appended after byte `offset` until alive() is false and the file is read."""
    with open(path, errors="replace") as f:
        f.seek(offset)
        buf = ""
        while True:
            chunk = f.read()
            last = False
            if not chunk:
                if alive():
                    time.sleep(0.05)
                    continue
                chunk = f.read()  # what it wrote just before it went: the last records
                last = True
            buf += chunk
            *lines, buf = buf.split("\n")
            for line in lines:
                try:
                    yield fastjson.loads(line)
                except ValueError:
                    continue
            if last:
                return
