"""Terminals: the pseudo-terminal a container gets when process.terminal is true.

A pty is a pair: the *slave* end becomes the container process's stdin/stdout/stderr and
controlling terminal; the *master* end goes to whoever shows it to a person. The OCI way to hand
the master over is --console-socket: a unix socket on which the runtime sends the master's fd
with SCM_RIGHTS (the kernel duplicates an open file into the receiver). The pty is opened
inside the container, after pivot_root, so it belongs to the container's own devpts instance.
"""

from __future__ import annotations

import array
import fcntl
import os
import select
import socket
import struct
import termios

from . import libc

TIOCSCTTY = 0x540E


def connect(path: str):
    """Connect to the caller's console socket (before pivot_root: the path is on the host)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise OSError(e.errno, f"connect to console socket {path}: {e.strerror}") from None
    return s


def open_console(sock, size: tuple[int, int] | None) -> int:
    """Open a pty in the container, bind its slave on /dev/console, send the master; return slave."""
    if libc.trace.enabled:
        libc.trace.step('open("/dev/ptmx") -> master, /dev/pts/N -> slave',
                        "a pseudo-terminal from the container's own devpts")
    master, slave = os.openpty()
    name = os.ttyname(slave)
    if os.path.islink("/dev/console"):
        os.unlink("/dev/console")  # never mount through a symlink the image put there
    if not os.path.lexists("/dev/console"):
        os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
    # CVE-2025-52565: bind the slave we opened (its fd), not the path /dev/pts/N, onto the
    # /dev/console we checked (its fd): neither can be swapped for a symlink in between.
    target = os.open("/dev/console", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        libc.mount(f"/proc/self/fd/{slave}", f"/proc/self/fd/{target}", None, libc.MS_BIND, None,
                   "/dev/console is the container's terminal", shown=(name, "/dev/console"))
    finally:
        os.close(target)
    if size:
        set_size(slave, size[0], size[1])
    send_fd(sock, master)
    os.close(master)
    return slave


def send_fd(sock, fd: int) -> None:
    if libc.trace.enabled:
        libc.trace.step(f"sendmsg(console socket, SCM_RIGHTS [{fd}])",
                        "hand the pty master to the caller: the kernel copies the open file")
    sock.sendmsg([b"/dev/ptmx"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])


def recv_fd(sock) -> int:
    fds = array.array("i")
    _, anc, _, _ = sock.recvmsg(1024, socket.CMSG_LEN(fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:fds.itemsize])
            return fds[0]
    raise OSError(0, "no file descriptor received on the console socket")


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def copy_size(src: int, dst: int) -> None:
    """Give the pty `dst` the window size of the terminal `src` (if src is one)."""
    if os.isatty(src):
        fcntl.ioctl(dst, termios.TIOCSWINSZ, fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8))


def make_controlling(slave: int) -> None:
    """The slave becomes our controlling terminal and our stdio (after setsid())."""
    if libc.trace.enabled:
        libc.trace.step("ioctl(slave, TIOCSCTTY); dup2(slave, 0/1/2)",
                        "the pty becomes the process's controlling terminal and stdio")
    fcntl.ioctl(slave, TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def proxy(master: int, pid: int, detach_keys: bytes = b"") -> int | None:
    """Foreground `run`/`exec` with a terminal and no console socket: be the terminal.

    Puts our stdin in raw mode (keys go to the container untranslated), copies bytes both ways,
    forwards window-size changes (SIGWINCH), and returns the process's wait status; None when
    `detach_keys` were typed at our terminal (`exec -it --detach-keys`: the process runs on,
    see hold()).
    """
    # lazy: only a foreground terminal proxies; create --console-socket (podman's path) loads
    # this module without them (start-up budget: signal imports enum)
    import signal
    import tty

    stdin_tty = os.isatty(0)
    saved = termios.tcgetattr(0) if stdin_tty else None

    def resize(*_: object) -> None:
        if stdin_tty:
            size = fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(master, termios.TIOCSWINSZ, size)

    try:
        if stdin_tty:
            tty.setraw(0)
            resize()
            signal.signal(signal.SIGWINCH, resize)
        fds = [master, 0]
        status = None
        keys = None
        if detach_keys and stdin_tty:
            from ..base.detachkeys import Matcher  # (only an attached terminal watches keys)

            keys = Matcher(detach_keys)
        while True:
            if status is None:
                wpid, st = os.waitpid(pid, os.WNOHANG)
                if wpid == pid:
                    status = st
            try:
                ready, _, _ = select.select(fds, [], [], 0.1)
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                os.write(1, data)
            elif status is not None:
                break
            if 0 in ready:
                data = os.read(0, 65536)
                if data and keys is not None:
                    data, detached = keys.feed(data)
                    if data:
                        os.write(master, data)
                    if detached:
                        return None
                    continue
                if data:
                    os.write(master, data)
                else:
                    fds.remove(0)
        if status is None:
            _, status = os.waitpid(pid, 0)
        return status
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)


def hold(master: int) -> None:
    """After a detach: a child of ours keeps the pty's master open and reads what the process
    writes (to nowhere), so the process neither gets SIGHUP (its terminal hung up) nor blocks
    on a full pty; it goes when the last slave closes. We, the attached client, may exit."""
    if os.fork() == 0:
        try:
            os.setsid()
            null = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)  # the caller's terminal is not held by us
            while os.read(master, 65536):
                pass
        except OSError:  # EIO: the process and everything it started have closed the slave
            pass
        os._exit(0)
    os.close(master)


def open_exec_console(sock, size: tuple[int, int] | None) -> int:
    """A pty for `exec --tty`: like open_console, without /dev/console."""
    if libc.trace.enabled:
        libc.trace.step('open("/dev/ptmx") -> master, /dev/pts/N -> slave',
                        "a pseudo-terminal from the container's devpts for the exec'd process")
    master, slave = os.openpty()
    if size:
        set_size(slave, size[0], size[1])
    send_fd(sock, master)
    os.close(master)
    return slave
