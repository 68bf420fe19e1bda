"""The stream between a container's monitor and the CLIs attached to it.

The monitor owns the container's stdio (pipes, or the pty master with -t) and listens on a
unix socket, containers/<id>/attach.sock. `run` (in the foreground), `start -a` and `attach`
connect to it. Both directions carry frames, Docker's stdcopy header extended with control
frames:

    byte 0: type   bytes 1-3: 0   bytes 4-7: payload length (big endian)   payload

    monitor -> CLI   1 stdout   2 stderr   3 exit (payload: the exit code, decimal)
    CLI -> monitor   0 stdin    5 stdin closed   6 resize ("ROWS COLS")   7 start

A foreground `run` attaches *before* the process starts (frame 7 tells the monitor to go on),
so not a byte of output is missed. With -t the CLI puts its terminal in raw mode, sends a
resize on start and on every SIGWINCH, and ctrl-p ctrl-q (or --detach-keys: base/detachkeys.py)
detaches (the container runs on).
The socket is bound and reached through /proc/self/fd/N/attach.sock, N an O_PATH descriptor
of the container's directory: sun_path holds only 108 bytes, and a --root under a test's tmp
path is longer than that. (Not a chdir: the API service connects from many threads at once,
and the working directory is the whole process's.)
"""

from __future__ import annotations

import fcntl
import os
import select
import struct
import time

# socket, signal, termios and tty are imported where used: the monitor imports this module for
# the frames and listen(), and socket's and signal's enums would cost it ~1 MB (monitor.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

STDIN, STDOUT, STDERR, EXIT, STDIN_EOF, RESIZE, START = 0, 1, 2, 3, 5, 6, 7
SOCK = "attach.sock"
DETACH = b"\x10\x11"  # ctrl-p ctrl-q
_HDR = struct.Struct(">B3xI")


def frame(kind: int, payload: bytes = b"") -> bytes:
    return _HDR.pack(kind, len(payload)) + payload


class Reader:
    """Splits a byte stream into (type, payload) frames."""

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buf += data
        out = []
        while len(self.buf) >= 8:
            kind, n = _HDR.unpack_from(self.buf)
            if len(self.buf) < 8 + n:
                break
            out.append((kind, self.buf[8:8 + n]))
            self.buf = self.buf[8 + n:]
        return out


def _in_dir(cdir: str, fn):
    """Run fn(path) with a short path to cdir/attach.sock: through an O_PATH descriptor of the
    directory (/proc/self/fd/N/...), whatever cdir's length, in any thread."""
    fd = os.open(cdir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return fn(f"/proc/self/fd/{fd}/{SOCK}")
    finally:
        os.close(fd)


def listen(cdir: str, raw: bool = False):
    """The listening socket. `raw`: a bare _socket.socket (accept with _accept(): the
    connection's fd), for the monitor, which does without the socket module."""
    if raw:
        import _socket as socket  # lazy: see the note at the top (the monitor's memory)
    else:
        import socket  # lazy: see the note at the top (the monitor's memory)

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.unlink(os.path.join(cdir, SOCK))
    except FileNotFoundError:
        pass
    _in_dir(cdir, s.bind)
    os.chmod(os.path.join(cdir, SOCK), 0o600)  # root's: stdin of a root container
    s.listen(16)
    return s


def connect(cdir: str, timeout: float = 10.0) -> socket.socket:
    """Connect to a monitor's attach socket (retrying while it is being set up)."""
    import socket  # lazy: see the note at the top (the monitor's memory)

    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            _in_dir(cdir, s.connect)
            return s
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def session(sock: socket.socket, tty: bool, stdin: bool, start: bool = False,
            detach_keys: bytes = DETACH, streams: tuple = ("stdout", "stderr")) -> int | None:
    """Be the attached terminal: copy our stdin to the container and its output to ours.

    Returns the container's exit code, or None when the user detached (`detach_keys` typed
    at a terminal: --detach-keys, base/detachkeys.py) or the monitor went away without
    saying. `streams`: the output streams shown (`run -a stdout` leaves stderr out).
    """
    import signal
    import termios
    import tty as ttymod

    from ..base.detachkeys import Matcher  # (small; only an attached session needs it)

    saved = None
    in_tty = stdin and tty and os.isatty(0)
    old_winch = None

    def resize(*_: object) -> None:
        if os.isatty(1) or os.isatty(0):
            fd = 0 if os.isatty(0) else 1
            rows, cols = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))[:2]
            try:
                sock.sendall(frame(RESIZE, f"{rows} {cols}".encode()))
            except OSError:
                pass

    try:
        if in_tty:
            saved = termios.tcgetattr(0)
            ttymod.setraw(0, termios.TCSANOW)  # TCSAFLUSH (the default) would drop typed-ahead keys
        if tty:
            resize()
            old_winch = signal.signal(signal.SIGWINCH, resize)
        if start:
            sock.sendall(frame(START))
        reader = Reader()
        fds = [sock.fileno()] + ([0] if stdin else [])
        keys = Matcher(detach_keys)  # typed bytes that may start the sequence wait in it
        while True:
            try:
                ready, _, _ = select.select(fds, [], [])
            except InterruptedError:
                continue
            if sock.fileno() in ready:
                data = sock.recv(65536)
                if not data:
                    return None
                for kind, payload in reader.feed(data):
                    if kind == STDOUT and "stdout" in streams:
                        _write_all(1, payload)
                    elif kind == STDERR and "stderr" in streams:
                        _write_all(2, payload)
                    elif kind == EXIT:
                        return int(payload or b"0")
            if 0 in ready:
                data = os.read(0, 65536)
                if not data:
                    fds.remove(0)
                    sock.sendall(frame(STDIN_EOF))
                    continue
                if in_tty:
                    data, detached = keys.feed(data)
                    if detached:
                        if data:
                            sock.sendall(frame(STDIN, data))
                        return None
                if data:
                    sock.sendall(frame(STDIN, data))
    finally:
        if old_winch is not None:
            signal.signal(signal.SIGWINCH, old_winch)
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            n = os.write(fd, data)
        except BrokenPipeError:
            return
        data = data[n:]
