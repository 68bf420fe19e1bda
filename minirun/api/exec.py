"""Exec endpoints, on the engine API's exec module (engine/api/exec.py):

    POST /containers/{id}/exec    ExecConfig -> 201 {"Id"}; 409 if the container is not running
    POST /exec/{id}/start         {Detach, Tty, ConsoleSize}: Detach -> 200, the process runs
                                  on; else the connection is hijacked (101 with `Upgrade: tcp`)
                                  and joined to the process's stdio (engine exec.join)
    POST /exec/{id}/resize        ?h=&w=: the pty's window size
    GET  /exec/{id}/json          ExecInspect (ExitCode once it ended, Running, Pid ...)

Exec instances live in the service's memory, as in Docker's daemon.
"""

from __future__ import annotations

import socket

from ..engine.api import exec as api
from ..errors import Conflict, InvalidArgument
from . import wire
from .routes import route


@route("POST", "/containers/{id}/exec")
def create(eng, req: wire.Request, id: str) -> wire.Response:  # noqa: A002 - Docker's name
    body = req.json({}) or {}
    if not isinstance(body, dict):
        raise InvalidArgument("the exec config must be a JSON object")
    cmd = body.get("Cmd")
    if isinstance(cmd, str):
        body["Cmd"] = cmd = [cmd]
    if not cmd:
        raise InvalidArgument("No exec command specified")  # Docker's words, and its 400
    size = body.get("ConsoleSize")
    if size is not None and (not isinstance(size, list) or len(size) != 2):
        raise InvalidArgument("ConsoleSize must be [height, width]")
    return wire.ok(api.create(eng, id, body), 201)


@route("POST", "/exec/{id}/start")
def start(eng, req: wire.Request, id: str):  # noqa: A002
    body = req.json({}) or {}
    rec = api.inspect(id)  # 404 now, before any hijack
    if rec["Running"] or rec["ExitCode"] is not None:
        raise Conflict(f"Exec {id} has already been started")  # 409, while we still can
    if body.get("Detach"):
        api.start_background(eng, id)
        return wire.Response(200)
    tty = bool(rec["ProcessConfig"]["tty"])
    size = body.get("ConsoleSize")

    def run(sock: socket.socket) -> None:
        api.join(eng, id, sock, console_size=size if isinstance(size, list) else None)
        try:
            sock.shutdown(socket.SHUT_WR)  # the client reads EOF, then asks for the exit code
        except OSError:
            pass

    kind = "application/vnd.docker.raw-stream" if tty else \
        "application/vnd.docker.multiplexed-stream"
    return wire.Hijack(run, req.headers.get("upgrade", "").lower() == "tcp", kind)


@route("POST", "/exec/{id}/resize")
def resize(eng, req: wire.Request, id: str) -> wire.Response:  # noqa: A002
    h, w = req.integer("h", 0), req.integer("w", 0)
    if h < 0 or w < 0 or h > 0xFFFF or w > 0xFFFF:
        raise InvalidArgument(f"invalid size {h}x{w}")
    if h and w:
        api.resize(id, h, w)
    else:
        api.inspect(id)  # 404 for an unknown exec all the same
    return wire.ok()


@route("GET", "/exec/{id}/json")
def inspect(eng, req: wire.Request, id: str) -> wire.Response:  # noqa: A002
    return wire.ok(api.inspect(id))
