"""Attach: a client's stdio joined to a container's, through its monitor (engine/attach.py).

    attach(eng, ref, stdin)                    -> {"StatusCode", "Detached", "Tty"}
                                                  POST /containers/{id}/attach, on our stdio
    stream(eng, ref)                           -> iterator of (stream, bytes) until it exits
                                                  POST /containers/{id}/attach?stream=1
    start_attached(eng, ref, sig_proxy, monitor, stdin) -> {"StatusCode", "Detached", "Tty"}
                                                  what `run` and `start -a` do: attach first,
                                                  then start, so no output is missed
    join(eng, ref, client, stdin, start)       -> the exit code, or None
                                                  a client's socket joined to the container's
                                                  stdio (the API service's hijacked attach):
                                                  Docker's multiplexed frames without a TTY

`attach` and `start_attached` run the session on the caller's own stdin, stdout and stderr (a
terminal in raw mode with -t: ctrl-p ctrl-q detaches), as exec.start does. StatusCode is the
container's exit code, or None when the client detached while it runs on. Errors: NotFound (no
such container), Conflict (not running, for attach; running already, for start_attached).
"""

from __future__ import annotations

import os
import select
import signal
import socket
from typing import Iterator

from ...errors import Conflict, InvalidArgument, MinirunError
from .. import attach as frames
from ..lifecycle import Engine, MonitorHandle
from ..records import Container


def attach(eng: Engine, ref: str, stdin: bool = True, detach_keys: bytes = frames.DETACH
           ) -> dict:
    """Join our stdio to running container `ref`'s (our stdin too if it keeps one open and
    `stdin`), until it exits or the user detaches (`detach_keys`: --detach-keys)."""
    c = eng.get(ref)
    if not c.state.running:
        raise Conflict("You cannot attach to a stopped container, start it first")
    sock = frames.connect(eng.cdir(c.id))
    tty = bool(c.config.get("Tty"))
    code = frames.session(sock, tty, bool(c.config.get("OpenStdin")) and stdin,
                          detach_keys=detach_keys)
    return {"StatusCode": code, "Detached": code is None, "Tty": tty}


def stream(eng: Engine, ref: str) -> Iterator[tuple[str, bytes]]:
    """Running container `ref`'s output from now on, as (stream, bytes) frames, stream
    "stdout" or "stderr", until it exits (a last ("exit", code) frame) or its monitor goes."""
    c = eng.get(ref)
    if not c.state.running:
        raise Conflict("You cannot attach to a stopped container, start it first")
    sock = frames.connect(eng.cdir(c.id))

    def read() -> Iterator[tuple[str, bytes]]:
        reader = frames.Reader()
        names = {frames.STDOUT: "stdout", frames.STDERR: "stderr", frames.EXIT: "exit"}
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                for kind, payload in reader.feed(data):
                    if kind in names:
                        yield names[kind], payload
                    if kind == frames.EXIT:
                        return
        finally:
            sock.close()

    return read()


def join(eng: Engine, ref: str, client: socket.socket, stdin: bool = False,
         start: bool = False, detach_keys: bytes = b"") -> int | None:
    """Bridge `client` (a hijacked HTTP connection) and the container's monitor until the
    container exits or either side goes: its output to the client (raw with a TTY, else in
    Docker's 8-byte frames), the client's bytes to its stdin when `stdin` (the client's
    half-close is the stdin's end). `start`: the monitor waits for us (an attach made before
    `start`, as the docker CLI's `run` does): tell it to go. `detach_keys` in the client's
    bytes end the session, the container running on (Docker's daemon watches for them: the
    API's detachKeys). Returns the exit code, or None."""
    from ...base.detachkeys import Matcher  # (small; only a session with stdin needs it)

    keys = Matcher(detach_keys) if detach_keys else None
    c = eng.get(ref)
    tty = bool(c.config.get("Tty"))
    mon = frames.connect(eng.cdir(c.id))
    stdin = stdin and bool(c.config.get("OpenStdin"))
    reader = frames.Reader()
    try:
        if start:
            mon.sendall(frames.frame(frames.START))
        watch = [mon] + ([client] if stdin else [])
        while True:
            ready, _, _ = select.select(watch, [], [])
            if mon in ready:
                data = mon.recv(65536)
                if not data:
                    return None
                for kind, payload in reader.feed(data):
                    if kind in (frames.STDOUT, frames.STDERR):
                        if not tty:
                            payload = frames.frame(kind, payload)  # the same 8-byte header
                        client.sendall(payload)
                    elif kind == frames.EXIT:
                        return int(payload or b"0")
            if client in ready:
                data = client.recv(65536)
                if not data:
                    watch.remove(client)
                    mon.sendall(frames.frame(frames.STDIN_EOF))
                else:
                    detached = False
                    if keys is not None:
                        data, detached = keys.feed(data)
                    if data:
                        mon.sendall(frames.frame(frames.STDIN, data))
                    if detached:
                        return None
    except OSError:  # the client went away: the container runs on, as after a detach
        return None
    finally:
        mon.close()


def resize(eng: Engine, ref: str, height: int, width: int) -> None:
    """Size a running container's terminal (POST /containers/{id}/resize): a resize frame
    to its monitor, which sets the pty's size (the program gets SIGWINCH). Without a TTY,
    nothing to do, as in Docker."""
    c = eng.get(ref)
    if not c.state.running:
        raise Conflict(f"Container {c.id} is not running")
    if not c.config.get("Tty"):
        return
    if height <= 0 or width <= 0:
        raise InvalidArgument(f"invalid terminal size {height}x{width}")
    sock = frames.connect(eng.cdir(c.id))
    try:
        sock.sendall(frames.frame(frames.RESIZE, f"{height} {width}".encode()))
    finally:
        sock.close()


def start_attached(eng: Engine, ref: str, sig_proxy: bool = True,
                   monitor: MonitorHandle | None = None, stdin: bool = True,
                   detach_keys: bytes = frames.DETACH) -> dict:
    """Start created or stopped container `ref` with our stdio attached (our stdin too if it
    keeps one open and `stdin`). With `sig_proxy` and no terminal, the signals we get (INT,
    TERM, HUP, QUIT, USR1, USR2) go to the container. `monitor`: one started ahead of time.
    `detach_keys`: the sequence that detaches (--detach-keys)."""
    c = eng.get(ref)
    return run_attached(eng, c, sig_proxy, monitor, stdin, detach_keys)


def run_attached(eng: Engine, c: Container, sig_proxy: bool = True,
                 monitor: MonitorHandle | None = None, stdin: bool = True,
                 detach_keys: bytes = frames.DETACH, prepared: bool = False) -> dict:
    """start_attached on a record already read (`run` has just made it: `prepared` when
    nothing changed since, see Engine.start). The streams shown are those it was made to
    attach (Config.AttachStdout/AttachStderr: `run -a`)."""
    if c.state.running:
        if monitor is not None:
            monitor.cancel()
        raise Conflict(f"container {c.short_id} is already running (use `minirun attach`)")
    eng.start(c, attach=True, monitor=monitor, prepared=prepared)
    sock = frames.connect(eng.cdir(c.id))
    tty = bool(c.config.get("Tty"))
    stdin = stdin and bool(c.config.get("OpenStdin")) and c.config.get("AttachStdin", True)
    streams = tuple(s for s in ("stdout", "stderr")
                    if c.config.get("Attach" + s.capitalize(), True))
    old = {}
    if sig_proxy and not tty:
        def forward(signum, _frame):
            try:
                eng.kill(eng.containers.load(c.id), signum, stop=False)
            except MinirunError:
                pass

        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                  signal.SIGUSR2):
            old[s] = signal.signal(s, forward)
    try:
        code = frames.session(sock, tty, stdin, start=True, detach_keys=detach_keys,
                              streams=streams)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        sock.close()
    if code is None:
        latest = eng.containers.load(c.id) if os.path.exists(eng.cdir(c.id)) else None
        if latest is not None and latest.state.running:
            return {"StatusCode": None, "Detached": True, "Tty": tty}
        code = latest.state.exit_code if latest is not None else 0
    return {"StatusCode": code, "Detached": False, "Tty": tty}


__all__ = ["attach", "stream", "start_attached", "run_attached"]
