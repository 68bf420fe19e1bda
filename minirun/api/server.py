"""`minirun system service`: the Docker Engine API on a socket, over the same engine as the CLI.

The service holds no state of its own. Each request opens the engine's records as the CLI
does, under the same locks; a container started here gets its own monitor and outlives the
service, exactly like one `minirun run -d` started. So the CLI and the API see the same
containers, images, volumes and networks at the same moment, and stopping the service stops
nothing but the service.

Where it listens:
  unix://PATH              (default unix://<runroot>/minirun.sock) mode 0660, owner root and
                           --group: whoever can write to it can start a privileged container,
                           so it is root on this host
  tcp://127.0.0.1:PORT     only when asked, with a warning: no authentication at all
  systemd socket activation: LISTEN_PID/LISTEN_FDS (scripts/minirun.socket, minirun.service)

`--time N` ends the service after N seconds without a request (0: never); SIGTERM and SIGINT end
it cleanly: the listening socket closes, requests in flight finish.
"""

from __future__ import annotations

import grp
import os
import signal
import socket
import socketserver
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler

from ..errors import InvalidArgument, MinirunError
from . import routes, wire

MAX_HEADER_LINE = 64 << 10  # http.server's own bound on a header line is 64 KiB too
SD_LISTEN_FDS_START = 3


class Handler(BaseHTTPRequestHandler):
    """One connection: parse, route, answer. Keep-alive as HTTP/1.1 clients expect."""

    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:  # the Server header, once (http.server adds its own)
        return "minirun"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's name
        if self.server.debug:
            sys.stderr.write(f"minirun service: {self.command} {self.path} " + format % args + "\n")

    def handle_one_request(self) -> None:
        self.server.touch()
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away mid-answer
        finally:
            self.server.touch()

    def _dispatch(self) -> None:
        path, query = wire.parse_qs_path(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            version, path = routes.split_version(path)
            req = wire.Request(self.command, path, query, headers, self.rfile,
                               connection=self.connection, version=version)
            answer = routes.dispatch(self.server.engine(), req)
        except MinirunError as e:
            answer = wire.error(wire.status_of(e), str(e))
        except Exception as e:  # a fault: 500 with one line, the traceback only in our log
            if self.server.debug:
                traceback.print_exc()
            answer = wire.error(500, f"internal error: {type(e).__name__}: {e}")
        self._answer(answer)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _dispatch

    # -- writing ----------------------------------------------------------------------------
    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Api-Version", routes.API_VERSION)
        self.send_header("Docker-Experimental", "false")
        self.send_header("Ostype", "linux")
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()

    def _answer(self, answer) -> None:
        if isinstance(answer, wire.Response):
            body = b""
            if answer.body is not None:
                body = answer.body if isinstance(answer.body, bytes) else \
                    (wire.json.dumps(answer.body) + "\n").encode()
            headers = dict(answer.headers)
            if answer.status != 204 and answer.status != 304:
                headers.setdefault("Content-Type", answer.content_type)
                headers["Content-Length"] = str(len(body))
            self._head(answer.status, headers)
            if self.command != "HEAD" and body:
                self.wfile.write(body)
        elif isinstance(answer, wire.Stream):
            self._stream(answer)
        elif isinstance(answer, wire.Hijack):
            self._hijack(answer)

    def _stream(self, s: wire.Stream) -> None:
        self._head(s.status, {"Content-Type": s.content_type, "Transfer-Encoding": "chunked",
                              **s.headers})
        self.wfile.flush()
        try:
            for chunk in s.chunks:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except MinirunError as e:  # after the status line: say it in the stream, then end it
            msg = (wire.json.dumps({"error": str(e), "errorDetail": {"message": str(e)}}) +
                   "\n").encode()
            try:
                self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(msg), msg))
            except OSError:
                pass
            self.close_connection = True
        finally:
            close = getattr(s.chunks, "close", None)
            if close is not None:
                close()  # a generator's finally runs now, not at some later collection
            if s.on_close is not None:
                s.on_close()

    def _hijack(self, h: wire.Hijack) -> None:
        if h.upgrade:
            self._head(101, {"Content-Type": h.content_type, "Connection": "Upgrade",
                             "Upgrade": "tcp"})
        else:
            self._head(200, {"Content-Type": h.content_type})
        self.wfile.flush()
        self.close_connection = True
        try:
            h.run(self.connection)
        except (BrokenPipeError, ConnectionResetError):
            pass


class _Server(socketserver.ThreadingMixIn):
    daemon_threads = True  # a stuck client does not keep the service from ending

    def setup_service(self, engine_factory, debug: bool, idle: float) -> None:
        self._engine_factory, self.debug, self.idle = engine_factory, debug, idle
        self.last = time.monotonic()
        self._local = threading.local()

    def engine(self):
        """An Engine per thread: its lazily opened handles are not shared between requests."""
        eng = getattr(self._local, "engine", None)
        if eng is None:
            eng = self._local.engine = self._engine_factory()
        return eng

    def touch(self) -> None:
        self.last = time.monotonic()


class UnixServer(_Server, socketserver.UnixStreamServer):
    pass


class TCPServer(_Server, socketserver.TCPServer):
    allow_reuse_address = True


def _systemd_socket() -> socket.socket | None:
    """The socket systemd passed (socket activation), if it was passed to us."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or int(os.environ.get("LISTEN_FDS") or 0) < 1:
        return None
    for var in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(var, None)  # not inherited by what we start
    return socket.socket(fileno=SD_LISTEN_FDS_START)


def listen(host: str, group: str | None, engine_factory, debug: bool = False,
           idle: float = 0):
    """The server, bound: from systemd, a Unix socket path or a loopback TCP port."""
    passed = _systemd_socket()
    if passed is not None:
        cls = UnixServer if passed.family == socket.AF_UNIX else TCPServer
        server = cls(passed.getsockname(), Handler, bind_and_activate=False)
        server.socket.close()
        server.socket = passed
    elif host.startswith("unix://"):
        path = host[len("unix://"):]
        os.makedirs(os.path.dirname(path), mode=0o711, exist_ok=True)
        if os.path.exists(path):
            probe = socket.socket(socket.AF_UNIX)
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)  # a stale socket from a service that died
            else:
                raise InvalidArgument(f"{path}: another service is listening there (stop it, or "
                                      "give --host)")
            finally:
                probe.close()
        old = os.umask(0o117)  # 0660 from the start: no moment where others may connect
        try:
            server = UnixServer(path, Handler)
        finally:
            os.umask(old)
        gid = 0
        if group:
            try:
                gid = grp.getgrnam(group).gr_gid
            except KeyError:
                server.server_close()
                os.unlink(path)
                raise InvalidArgument(f"--group {group}: no such group") from None
        os.chown(path, 0, gid)
        os.chmod(path, 0o660)
    elif host.startswith("tcp://"):
        addr, _, port = host[len("tcp://"):].rpartition(":")
        if not port.isdigit():
            raise InvalidArgument(f"--host {host}: use tcp://127.0.0.1:PORT")
        sys.stderr.write(f"minirun service: WARNING: listening on {host} without any "
                         "authentication: whoever can connect is root on this host\n")
        server = TCPServer((addr or "127.0.0.1", int(port)), Handler)
    else:
        raise InvalidArgument(f"--host {host}: use unix://PATH or tcp://127.0.0.1:PORT")
    server.setup_service(engine_factory, debug, idle)
    return server


def serve(server, socket_path: str | None = None) -> None:
    """Answer until SIGTERM/SIGINT or `idle` seconds without a request; then clean up."""
    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    loop = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                            daemon=True)
    loop.start()
    try:
        while not stop.wait(0.5):
            if server.idle and time.monotonic() - server.last > server.idle and \
                    threading.active_count() <= 2:  # us and the accept loop: nobody connected
                break
    finally:
        server.shutdown()
        server.server_close()
        if socket_path and os.path.exists(socket_path):
            os.unlink(socket_path)
        for s, h in old.items():
            signal.signal(s, h)
