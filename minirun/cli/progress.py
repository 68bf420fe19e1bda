"""The progress display of pull and push: `docker pull`'s and `docker push`'s lines.

It renders Docker's JSON progress messages, as the engine API sends them (engine/api/
distribution.py) and as the docker CLI's jsonmessage renders them: {"status", "id",
"progressDetail": {"current", "total"}} is a layer's line, keyed by its id; {"status", "id"}
without progressDetail is one line "id: status" ("latest: Pulling from library/busybox");
{"status"} alone is one line; {"aux"} is for programs, not shown.

On a terminal, one line per layer, redrawn in place (ANSI cursor-up / erase-line) as it moves
through Pulling fs layer -> Downloading 12.3MB/45.6MB -> Verifying Checksum -> Download complete
-> Extracting -> Pull complete (or Already exists). Elsewhere (a pipe, a log file) plain lines,
one per layer state change: Downloading is printed once, not per chunk, and no carriage
returns or escape sequences. Then `Digest: sha256:...` and `Status: ...` either way.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

REDRAW_EVERY = 0.1  # seconds between redraws of one layer's Downloading line


def human(n: float) -> str:
    """Docker's units (SI): 12.3MB, 512B, 1.05GB."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.3g}{unit}"
        n /= 1000
    raise AssertionError("unreachable")


class Display:
    """Writes to `out` (stdout by default); `tty=None` asks out.isatty(). Called with each
    message (the engine API's `progress` callback); close() when done, whatever happened."""

    def __init__(self, out: TextIO | None = None, tty: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self._lock = threading.Lock()
        self._order: list[str] = []  # layer keys, in the order their lines were printed
        self._lines: dict[str, str] = {}
        self._state: dict[str, str] = {}
        self._drawn: dict[str, float] = {}

    def __call__(self, message: dict) -> None:
        """One of Docker's JSON progress messages."""
        if "aux" in message:
            return
        status = message.get("status", "")
        if "id" in message and "progressDetail" in message:
            detail = message["progressDetail"]
            self.layer(message["id"], status, detail.get("current"), detail.get("total"))
        elif "id" in message:
            self._print(f"{message['id']}: {status}")
        else:
            self._print(status)

    def layer(self, key: str, status: str, done: int | None = None,
              total: int | None = None) -> None:
        self._layer(key, status, done, total, moving="Downloading")

    def _layer(self, key: str, status: str, done: int | None, total: int | None, moving: str,
               logged=lambda status: True) -> None:
        """One layer's line: redrawn in place on a terminal (the `moving` status with its
        bytes, at most every REDRAW_EVERY); elsewhere one plain line per change of status
        that `logged(status)` wants."""
        with self._lock:
            previous = self._state.get(key)
            self._state[key] = status
            if not self.tty:
                if status != previous and logged(status):
                    self.out.write(f"{key}: {status}\n")
                    self.out.flush()
                return
            text = f"{key}: {status}"
            if status == moving and done is not None:
                now = time.monotonic()
                if previous == status and now - self._drawn.get(key, 0) < REDRAW_EVERY and (
                        total is None or done < total):
                    return
                self._drawn[key] = now
                text += f"  {human(done)}" + (f"/{human(total)}" if total else "")
            self._set(key, text)

    def close(self) -> None:
        with self._lock:
            self.out.flush()

    # -- internals ----------------------------------------------------------------------------

    def _print(self, line: str) -> None:
        with self._lock:
            self.out.write(line + "\n")
            self.out.flush()
            self._order.clear()  # lines above a message are not redrawn any more

    def _set(self, key: str, text: str) -> None:
        if key not in self._lines or key not in self._order:
            self._order.append(key)
            self._lines[key] = text
            self.out.write(text + "\n")
        else:
            self._lines[key] = text
            up = len(self._order) - self._order.index(key)
            # Up to the layer's line, erase it, write, and back down to below the last line.
            self.out.write(f"\x1b[{up}A\r\x1b[2K{text}\r\x1b[{up}B")
        self.out.flush()


PUSH_FINAL = ("Pushed", "Layer already exists", "Mounted from ")  # a layer's outcome


class PushDisplay(Display):
    """pull's Display, with push's statuses; `Pushing` carries the bytes sent so far."""

    def layer(self, key: str, status: str, done: int | None = None,
              total: int | None = None) -> None:
        # a log shows the outcome only, one line per layer
        self._layer(key, status, done, total, moving="Pushing",
                    logged=lambda st: st.startswith(PUSH_FINAL))
