"""Several containers' output on one screen, as Compose shows it: `web-1  | line`.

Each container gets a prefix (its name without the project's, as Compose v2 shows it, padded
to the longest, then ` | `), coloured per container on a terminal. A thread per container follows its log through the engine API and
hands whole lines to one writer, so lines of two containers never mix within a line.
`follow()` returns when every container it follows has stopped, with their exit codes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..engine.api import containers as api
from ..engine.lifecycle import Engine
from ..errors import MinirunError

# Compose's rotation of colours for prefixes (ANSI: cyan, yellow, green, magenta, blue, ...).
COLOURS = ("36", "33", "32", "35", "34", "96", "93", "92", "95", "94")


@dataclass
class Printer:
    """Writes prefixed lines; `write` gets the final text (stdout in the CLI)."""

    write: Callable[[str], None]
    project: str = ""  # `<project>-` is left out of the names shown (not of a container_name)
    width: int = 0
    colour: bool = False
    prefix: bool = True
    timestamps: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    colours: dict[str, str] = field(default_factory=dict)

    def shown(self, name: str) -> str:
        """The name as a prefix shows it: `web-1` for the container shop-web-1."""
        lead = f"{self.project}-"
        return name[len(lead):] if self.project and name.startswith(lead) else name

    def add(self, names: Iterable[str]) -> None:
        for name in names:
            self.width = max(self.width, len(self.shown(name)))
            self.colours.setdefault(name, COLOURS[len(self.colours) % len(COLOURS)])

    def line(self, name: str, text: str) -> None:
        if self.prefix:
            head = f"{self.shown(name):<{self.width}}  | "
            if self.colour:
                head = f"\x1b[{self.colours.get(name, '0')}m{head}\x1b[0m"
            text = head + text
        with self.lock:
            self.write(text if text.endswith("\n") else text + "\n")

    def note(self, text: str) -> None:
        with self.lock:
            self.write(text + "\n")


def _lines(frames: Iterable[tuple[str, bytes]]) -> Iterable[str]:
    """Whole lines out of log frames (a frame may hold part of a line, or several)."""
    pending = b""
    for _stream, data in frames:
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            yield line.decode(errors="replace")
    if pending:
        yield pending.decode(errors="replace")


def show(eng: Engine, names: list[str], printer: Printer, tail: str = "all") -> None:
    """Every container's log so far, merged in time order (`compose logs` without -f)."""
    printer.add(names)
    entries = []
    for name in names:
        for line in _lines(api.logs(eng, name, tail=tail, timestamps=True)):
            stamp, _, text = line.partition(" ")
            entries.append((stamp, name, f"{stamp} {text}" if printer.timestamps else text))
    for _stamp, name, text in sorted(entries, key=lambda e: e[0]):
        printer.line(name, text)


def follow(eng: Engine, names: list[str], printer: Printer, tail: str = "all", since: str = "",
           on_exit: Callable[[str, int], None] | None = None,
           stop: threading.Event | None = None) -> dict[str, int]:
    """Follow every container's log until each has stopped; their exit codes by name.
    `since`: only what was written from then on (an attached `up` shows this run's output, not
    that of an earlier run of the same container). `on_exit(name, code)` is called as each
    one stops (an attached `up` may stop the rest)."""
    printer.add(names)
    codes: dict[str, int] = {}

    def one(name: str) -> None:
        try:
            for line in _lines(api.logs(eng, name, follow=True, tail=tail, since=since,
                                        timestamps=printer.timestamps)):
                printer.line(name, line)
                if stop is not None and stop.is_set():
                    return
            state = api.inspect(eng, name)["State"]
            codes[name] = int(state.get("ExitCode") or 0)
        except MinirunError:  # removed meanwhile (down from another terminal)
            codes[name] = 0
        if on_exit is not None:
            on_exit(name, codes[name])

    threads = [threading.Thread(target=one, args=(n,), daemon=True) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.2)  # a short join keeps the main thread able to take Ctrl-C
    return codes
