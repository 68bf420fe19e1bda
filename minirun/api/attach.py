"""POST /containers/{id}/attach: the connection hijacked and joined to the container's stdio.

The docker CLI's `run` attaches *before* it starts the container, in two requests: attach
(answered 101 at once), then start. So an attach to a container that is not running is kept
pending, by container ID, in this process; the start that follows starts the container with
the monitor waiting for its attached client (containers.start), and the pending attach then
joins and tells the process to go. No output is lost between the start and the attach.
"""

from __future__ import annotations

import socket
import threading
import time

from ..engine.api import attach as api
from ..engine.api import containers as containers_api
from ..base import detachkeys
from ..errors import Conflict, InvalidArgument, MinirunError
from . import wire
from .routes import route

PENDING: dict[str, threading.Event] = {}  # container ID -> set once its start happened
_LOCK = threading.Lock()


def take_pending(cid: str) -> threading.Event | None:
    """The start endpoint's question: is an attach waiting for this container's start?"""
    with _LOCK:
        return PENDING.pop(cid, None)


@route("POST", "/containers/{id}/attach")
def attach(eng, req: wire.Request, id: str):  # noqa: A002 - Docker's name
    c = eng.get(id)
    stdin = req.flag("stdin")
    upgrade = req.headers.get("upgrade", "").lower() == "tcp"
    tty = bool(c.config.get("Tty"))
    wanted = {s for s in ("stdout", "stderr") if req.flag(s, True)}
    try:  # detachKeys (the docker CLI sends its --detach-keys): checked before the upgrade
        keys = detachkeys.parse(req.arg("detachKeys")) if stdin and tty else b""
    except detachkeys.DetachKeysError as e:
        raise InvalidArgument(str(e)) from None
    readable = (c.host_config.get("LogConfig") or {}).get("Type") != "none"

    def replay(sock: socket.socket) -> None:
        """logs=1: what the container wrote so far, first (Docker's attach does the same;
        with the none driver there is nothing to replay)."""
        if req.flag("logs") and readable:
            # Not in the same breath as the 101: docker-py reads the answer's head through a
            # buffered reader, then the stream from the bare socket, and bytes that arrived
            # with the head would be lost in that buffer. (dockerd's own setup takes as long.)
            time.sleep(0.05)
            for stream, data in containers_api.logs(eng, c.id):
                if stream in wanted:
                    sock.sendall(data if tty else wire.frame(stream, data))

    if not req.flag("stream", True):  # the logs only, then the end
        def logs_only(sock: socket.socket) -> None:
            replay(sock)
            _close(sock)

        return wire.Hijack(logs_only, upgrade)
    if c.state.running:
        def run(sock: socket.socket) -> None:
            replay(sock)
            api.join(eng, c.id, sock, stdin=stdin, detach_keys=keys)
            _close(sock)

        return wire.Hijack(run, upgrade)
    if c.state.status not in ("created", "exited"):
        raise Conflict(f"container {c.id} is {c.state.status}: attach to a created or running one")
    started = threading.Event()
    with _LOCK:
        PENDING[c.id] = started

    def run_after_start(sock: socket.socket) -> None:
        try:
            while not started.wait(0.5):
                if wire.client_gone(sock):  # the client gave up before any start
                    return
            try:
                api.join(eng, c.id, sock, stdin=stdin, start=True, detach_keys=keys)
            except (OSError, MinirunError):
                pass  # the start failed (its request says why): nothing to join
            _close(sock)
        finally:
            with _LOCK:
                if PENDING.get(c.id) is started:
                    del PENDING[c.id]

    return wire.Hijack(run_after_start, upgrade)


def _close(sock: socket.socket) -> None:
    """The end of the stream: the client reads EOF (its wait request tells the exit code)."""
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
