"""json-file logs, as Docker's default logging driver writes them.

containers/<id>/<id>-json.log holds one JSON object per line of output:

    {"log":"hello\\n","stream":"stdout","time":"2026-12-02T20:31:34.123456789Z"}

The monitor splits each stream at newlines (a line without one waits for the rest, up to 16
KiB), so `logs` can filter by time and stream and `--tail` counts lines. With -t there is only
one stream (the terminal), logged as stdout with its \\r\\n line ends, as Docker does.

Rotation (--log-opt max-size=, max-file=; engine/logconfig.py): before a record is written,
a file that has reached max-size is renamed to <id>-json.log.1 (.1 to .2 ... up to
.<max-file - 1>, the oldest dropped) and a new one begun, as Docker's LogFile does; with
max-file=1 the file is emptied instead. A file thus passes max-size by one record at most.
Readers take the files oldest first (files()); a follower that notices the name now points to
a new file finishes the one it had open and goes on with the new one.
"""

from __future__ import annotations

import os
import time

from .. import fastjson  # not json: the monitor writes logs and starts lean (test_startup_budget.py)
from ..base.durations import SECOND, parse_duration
from ..base.times import format_time, now

MAX_PARTIAL = 16 * 1024


class Writer:
    """Appends a container's output to its log file, a line per record; with `max_size`,
    rotated through `max_file` files (module doc)."""

    def __init__(self, path: str, max_size: int = 0, max_file: int = 1) -> None:
        self.path, self.max_size, self.max_file = path, max_size, max(1, max_file)
        self.fd = self._open()
        self.size = os.fstat(self.fd).st_size
        self.partial = {"stdout": b"", "stderr": b""}

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def _emit(self, records: list[str]) -> None:
        if not self.max_size:
            os.write(self.fd, "".join(records).encode())
            return
        batch: list[bytes] = []
        for rec in records:  # Docker's check: a full file is rotated before the next record
            data = rec.encode()
            if self.size >= self.max_size:
                if batch:
                    os.write(self.fd, b"".join(batch))
                    batch = []
                self._rotate()
            batch.append(data)
            self.size += len(data)
        if batch:
            os.write(self.fd, b"".join(batch))

    def _rotate(self) -> None:
        os.close(self.fd)
        if self.max_file > 1:
            for n in range(self.max_file - 1, 0, -1):
                older = f"{self.path}.{n - 1}" if n > 1 else self.path
                try:
                    os.rename(older, f"{self.path}.{n}")  # .N-1 is replaced: the oldest goes
                except FileNotFoundError:
                    pass
        else:
            os.truncate(self.path, 0)
        self.fd = self._open()
        self.size = 0

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
            self._emit(out)

    def flush(self) -> None:
        for stream, rest in self.partial.items():
            if rest:
                self._emit([_record(stream, rest)])
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


def files(path: str) -> list[str]:
    """The log's files, oldest first: <id>-json.log.N ... .1, then <id>-json.log itself."""
    older = []
    n = 1
    while os.path.exists(f"{path}.{n}"):
        older.append(f"{path}.{n}")
        n += 1
    return older[::-1] + [path]


def read(path: str, tail: int | None = None, since: str | None = None) -> list[dict]:
    """Every record of the log, across its rotated files, in order (the last `tail`, those
    from `since` on)."""
    lines: list[str] = []
    for name in files(path):
        try:
            with open(name, errors="replace") as f:
                lines += f.readlines()
        except FileNotFoundError:  # rotated away meanwhile
            continue
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
    """Yield records appended after byte `offset` until alive() is false and the file is read;
    when the writer rotates the file, the rest of the old one, then the new one from its
    start (with max-file=1 it empties the file in place: start again at 0)."""
    f = open(path, "rb")
    try:
        f.seek(offset)
        buf = b""
        while True:
            chunk = f.read()
            last = False
            if not chunk:
                if _rotated(path, f):
                    chunk = f.read()  # what it wrote before it moved the file away
                    f.close()
                    f = open(path, "rb")
                elif os.fstat(f.fileno()).st_size < f.tell():
                    f.seek(0)  # emptied (max-file=1): what comes now is new
                    buf = b""
                    continue
                elif alive():
                    time.sleep(0.05)
                    continue
                else:
                    chunk = f.read()  # what it wrote just before it went: the last records
                    last = True
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                try:
                    yield fastjson.loads(line.decode(errors="replace"))
                except ValueError:
                    continue
            if last:
                return
    finally:
        f.close()


def _rotated(path: str, f) -> bool:
    """Is `path` now another file than the one `f` has open (the writer rotated it)?"""
    try:
        return os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        return False
