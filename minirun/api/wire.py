"""HTTP/1.1 as the Docker Engine API uses it: JSON in and out, streams, and hijacked connections.

The standard library's http.server, not a framework, for four reasons:
  start-up    `import http.server` costs ~6 ms; aiohttp ~120 ms (and asyncio), on a service
              that socket activation may start for a single request;
  streaming   a handler owns its connection's file objects: a log follow or a pull's progress
              is written chunk by chunk (Transfer-Encoding: chunked) as it happens;
  hijacking   `attach` and `exec start` turn the connection into a raw byte pipe after a
              101 Switching Protocols answer (Docker's `Upgrade: tcp`); with the socket at
              hand that is a few lines, where a framework has to be argued with;
  upkeep      no dependency to declare, pin and follow; one thread per connection, as
              ThreadingMixIn gives, is what a local service with a handful of clients needs.

A handler gets a `Request` and answers with `Response` (a JSON body), a `Stream` (chunks from an
iterator) or `Hijack` (a function that gets the raw socket). Errors of the engine's kinds become
Docker's status codes (errors.py lists them) with a JSON body {"message": "..."}.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from ..errors import Conflict, InvalidArgument, MinirunError, NotFound, Unavailable, Unsupported

MAX_BODY = 64 << 20  # a JSON request body (a build context or an image to load streams instead)


@dataclass
class Request:
    method: str
    path: str  # without the /vX.Y prefix
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    rfile: object  # the connection's reader: bodies are read from it
    connection: socket.socket | None = None
    version: str = ""  # the API version the client asked for ("" for an unversioned path)
    _body: bytes | None = None

    # -- query parameters, as Docker's handlers read them -------------------------------------
    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean parameter: 1/true/True (Docker's httputils.BoolValue), else false."""
        if name not in self.query:
            return default
        return self.arg(name).strip().lower() not in ("", "0", "false", "no", "none")

    def integer(self, name: str, default: int | None = None) -> int | None:
        text = self.arg(name)
        if not text:
            return default
        try:
            return int(text)
        except ValueError:
            raise InvalidArgument(f"invalid value for {name}: {text!r} is not an integer") from None

    def filters(self) -> dict[str, list[str]]:
        """`filters={"label":["a=b"]}` (or the old map form {"label":{"a=b":true}})."""
        text = self.arg("filters")
        if not text:
            return {}
        try:
            raw = json.loads(text)
        except ValueError:
            raise InvalidArgument(f"invalid filters: {text!r} is not JSON") from None
        out = {}
        for key, values in (raw or {}).items():
            out[key] = list(values) if isinstance(values, list) else \
                [v for v, on in values.items() if on]
        return out

    # -- the body ----------------------------------------------------------------------------
    def body(self) -> bytes:
        if self._body is None:
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY:
                raise InvalidArgument(f"request body of {length} bytes: at most {MAX_BODY}")
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                self._body = b"".join(read_chunks(self.rfile, MAX_BODY))
            else:
                self._body = self.rfile.read(length) if length else b""
        return self._body

    def json(self, default: object = None) -> object:
        data = self.body()
        if not data.strip():
            return default
        try:
            return json.loads(data)
        except ValueError as e:
            raise InvalidArgument(f"invalid JSON body: {e}") from None

    def stream_body(self) -> Iterable[bytes]:
        """The body piece by piece (an image or a build context: no bound, no copy)."""
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            yield from read_chunks(self.rfile, None)
            return
        left = int(self.headers.get("content-length") or 0)
        while left > 0:
            piece = self.rfile.read(min(left, 1 << 16))
            if not piece:
                return
            left -= len(piece)
            yield piece


def read_chunks(rfile, limit: int | None) -> Iterable[bytes]:
    total = 0
    while True:
        line = rfile.readline(1024)
        try:
            size = int(line.split(b";")[0].strip() or b"0", 16)
        except ValueError:
            raise InvalidArgument("malformed chunked body") from None
        if size == 0:
            while rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return
        total += size
        if limit is not None and total > limit:
            raise InvalidArgument(f"request body over {limit} bytes")
        data = rfile.read(size)
        rfile.readline(16)  # the CRLF after the chunk
        yield data


@dataclass
class Response:
    status: int = 200
    body: object = None  # JSON-encoded unless bytes; None: no body
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class Stream:
    """A body written as it is produced (chunked). `chunks` yields bytes."""

    chunks: Iterable[bytes]
    status: int = 200
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    on_close: Callable[[], None] | None = None  # the client went away, or the stream ended


@dataclass
class Hijack:
    """Switch the connection to a raw stream (attach, exec start): `run(sock)` owns it then."""

    run: Callable[[socket.socket], None]
    upgrade: bool = True  # the client asked for `Upgrade: tcp`: answer 101, else 200
    content_type: str = "application/vnd.docker.raw-stream"


def no_content() -> Response:
    return Response(204)


def ok(body: object = None, status: int = 200) -> Response:
    return Response(status, body)


# Docker's status codes for the engine's error kinds (minirun/errors.py).
# In this order: an error of two kinds (a BundleError that is also Unavailable) takes the first.
STATUS: list[tuple[type, int]] = [(NotFound, 404), (Conflict, 409), (Unsupported, 501),
                                  (Unavailable, 500), (InvalidArgument, 400)]


def status_of(e: MinirunError) -> int:
    for kind, code in STATUS:
        if isinstance(e, kind):
            return code
    return 500


def error(status: int, message: str) -> Response:
    return Response(status, {"message": message})


def client_gone(sock: socket.socket | None) -> bool:
    """Has the client closed its end? (Readable, and a peek reads nothing.) A stream that has
    nothing to send for a while asks this, or it would outlive its client."""
    if sock is None:
        return False
    import select  # (only streams that wait ask)

    ready, _, _ = select.select([sock], [], [], 0)
    if not ready:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


# -- the multiplexed stream (Docker's stdcopy) --------------------------------------------------

STREAM_IDS = {"stdin": 0, "stdout": 1, "stderr": 2}


def frame(stream: str, data: bytes) -> bytes:
    """One frame of a stream without a TTY: [stream id, 0, 0, 0, size (big-endian u32)] + data."""
    return bytes([STREAM_IDS.get(stream, 1), 0, 0, 0]) + len(data).to_bytes(4, "big") + data


def parse_qs_path(target: str) -> tuple[str, dict[str, list[str]]]:
    path, _, qs = target.partition("?")
    return path, parse_qs(qs, keep_blank_values=True)
