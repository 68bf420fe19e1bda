"""Work that runs in a thread while its messages go out as a stream: a pull's progress, a
build's output. One queue between the worker and the response's chunks; the worker's error
becomes the stream's last message ({"error", "errorDetail"}), as Docker ends such streams."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator

from ..errors import MinirunError

_END = object()


def json_messages(work: Callable[[Callable[[dict], None]], object]) -> Iterator[bytes]:
    """Run `work(send)` in a thread; yield each message it sends as a JSON line."""
    q: queue.Queue = queue.Queue()

    def run() -> None:
        try:
            work(q.put)
        except MinirunError as e:
            q.put({"error": str(e), "errorDetail": {"message": str(e)}})
        except Exception as e:  # a fault: still a message, never a dropped connection
            q.put({"error": f"internal error: {type(e).__name__}: {e}",
                   "errorDetail": {"message": str(e)}})
        finally:
            q.put(_END)

    threading.Thread(target=run, daemon=True).start()
    while True:
        item = q.get()
        if item is _END:
            return
        yield (json.dumps(item) + "\r\n").encode()


class _QueueWriter:
    """A file-like object whose writes become chunks of a stream."""

    def __init__(self, q: queue.Queue, cancelled: threading.Event) -> None:
        self.q, self.cancelled = q, cancelled

    def write(self, data: bytes) -> int:
        while data:
            if self.cancelled.is_set():
                raise BrokenPipeError("the client went away")
            try:
                self.q.put(bytes(data), timeout=0.5)
                break
            except queue.Full:
                continue
        return len(data)

    def flush(self) -> None:
        pass


def from_writer(work: Callable[[object], object], limit: int = 64) -> Iterator[bytes]:
    """Run `work(out)` in a thread, `out` a binary file object; yield what it writes. The queue
    is bounded: a slow client slows the writer instead of filling our memory; a client that
    goes away (the generator closed) makes the writer's next write fail, so it ends too."""
    q: queue.Queue = queue.Queue(maxsize=limit)
    cancelled = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work(_QueueWriter(q, cancelled))
        except BaseException as e:  # noqa: BLE001 - handed to the reading side, raised there
            failure.append(e)
        finally:
            while True:
                try:
                    q.put(_END, timeout=0.5)
                    break
                except queue.Full:
                    if cancelled.is_set():
                        break

    threading.Thread(target=run, daemon=True).start()
    try:
        while True:
            item = q.get()
            if item is _END:
                break
            yield item
    finally:
        cancelled.set()
    if failure and not isinstance(failure[0], BrokenPipeError):
        raise failure[0]
