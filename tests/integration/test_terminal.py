"""process.terminal: the container's pty, handed over on --console-socket (as conmon and
containerd do) or, for a foreground `run` without one, proxied by the runtime itself.

The console socket server (conftest.ConsoleServer) receives the pty master with SCM_RIGHTS;
the test reads what the container writes from the master and types into it.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from pathlib import Path

from helpers import console_run, drive_pty


def create(rt, tmp_path: Path, b: str, cid: str, *flags: str) -> subprocess.CompletedProcess:
    """`create` with its stdio on files (the container could inherit a pipe)."""
    rt.ids.add(cid)
    with open(tmp_path / f"{cid}.create", "w") as o:
        r = subprocess.run([rt.binary, "--root", str(rt.root), "create", "--bundle", b, *flags,
                            cid], stdin=subprocess.DEVNULL, stdout=o, stderr=subprocess.STDOUT,
                           timeout=30)
    r.stdout = (tmp_path / f"{cid}.create").read_text()
    return r


def wait_stopped(rt, cid: str, timeout: float = 5) -> str:
    deadline = time.monotonic() + timeout
    while True:
        st = rt.state(cid)["status"]
        if st == "stopped" or time.monotonic() > deadline:
            return st
        time.sleep(0.01)


def tty_bundle(bundle, args):
    def edit(c: dict) -> None:
        c["process"]["consoleSize"] = {"height": 30, "width": 100}
    return bundle(args=args, terminal=True, edit=edit)


def test_console_socket_gets_the_pty(oci, bundle, cid, tmp_path, console_server):
    srv = console_server()
    b = tty_bundle(bundle, ["sh", "-c", "tty; stty size; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && "
                            "echo all-tty; ls -l /dev/console | cut -c1; echo done"])
    r = create(oci, tmp_path, b, cid, "--console-socket", srv.path)
    assert r.returncode == 0, r.stdout
    master = srv.master()
    assert os.isatty(master)
    oci("start", cid, check=True)
    out = srv.read_until(master).replace("\r\n", "\n")
    lines = out.splitlines()
    assert lines[0] in ("/dev/console", "/dev/pts/0"), out
    assert lines[1:] == ["30 100", "all-tty", "c", "done"], out
    assert wait_stopped(oci, cid) == "stopped"
    assert r.stdout == ""  # nothing went to create's own stdio


def test_input_through_the_master(oci, bundle, cid, tmp_path, console_server):
    srv = console_server()
    b = tty_bundle(bundle, ["sh", "-c", "echo ready; read x; echo got $x; read y; exit $y"])
    assert create(oci, tmp_path, b, cid, "--console-socket", srv.path).returncode == 0
    master = srv.master()
    oci("start", cid, check=True)
    assert "ready" in srv.read_until(master, "ready")
    os.write(master, b"hello world\n")
    out = srv.read_until(master, "got hello world")
    assert "hello world\r\n" in out  # the line discipline echoes what we typed
    assert "got hello world" in out
    os.write(master, b"7\n")
    srv.read_until(master)
    assert wait_stopped(oci, cid) == "stopped"


def test_ctrl_c_reaches_the_container(oci, bundle, cid, tmp_path, console_server):
    srv = console_server()
    b = tty_bundle(bundle, ["sh", "-c", "trap 'echo caught-int; exit 3' INT; echo ready; "
                            "while :; do sleep 0.05; done"])
    assert create(oci, tmp_path, b, cid, "--console-socket", srv.path).returncode == 0
    master = srv.master()
    oci("start", cid, check=True)
    srv.read_until(master, "ready")
    os.write(master, b"\x03")  # the pty turns ^C into SIGINT for its foreground group
    assert "caught-int" in srv.read_until(master, "caught-int")
    assert wait_stopped(oci, cid) == "stopped"


def test_terminal_without_console_socket_fails(oci, bundle, cid, tmp_path):
    b = tty_bundle(bundle, ["true"])
    r = create(oci, tmp_path, b, cid)
    assert r.returncode != 0
    msg = r.stdout.strip()
    assert "\n" not in msg and "Traceback" not in msg, msg
    assert "--console-socket" in msg
    assert not (oci.root / cid).exists()


def test_console_socket_that_does_not_exist(oci, bundle, cid, tmp_path):
    r = create(oci, tmp_path, tty_bundle(bundle, ["true"]), cid, "--console-socket",
               str(tmp_path / "nobody-listens.sock"))
    assert r.returncode != 0
    assert "console socket" in r.stdout and len(r.stdout.strip().splitlines()) == 1
    assert not (oci.root / cid).exists()


def test_run_with_console_socket(oci, bundle, cid, console_server):
    """run (foreground) with --console-socket: the master goes to the socket, run waits."""
    srv = console_server()
    oci.ids.add(cid)
    rc, out, err = console_run(oci.argv("run", "--console-socket", srv.path, "--bundle",
                                        tty_bundle(bundle, ["sh", "-c", "tty; exit 4"]), cid), srv)
    assert rc == 4, err
    assert "/dev/" in out


def test_foreground_run_proxies_the_terminal(oci, bundle, cid):
    b = tty_bundle(bundle, ["sh", "-c", "tty; echo ready; read x; echo got $x; exit 5"])
    oci.ids.add(cid)
    rc, out = drive_pty([oci.binary, "--root", str(oci.root), "run", "--bundle", b, cid],
                        typed=b"abc\n", until=b"ready")
    assert rc == 5, out
    lines = out.splitlines()
    assert lines[0] in ("/dev/console", "/dev/pts/0"), out
    assert "got abc" in lines
    assert not (oci.root / cid).exists()  # run deleted it


def test_foreground_run_takes_the_callers_window_size(oci, bundle, cid):
    import fcntl
    import struct
    import termios

    b = bundle(args=["sh", "-c", "stty size"], terminal=True)
    oci.ids.add(cid)
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 42, 133, 0, 0))
    p = subprocess.Popen([oci.binary, "--root", str(oci.root), "run", "--bundle", b, cid],
                         stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 10)
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        assert p.wait(timeout=10) == 0, out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    assert b"42 133" in out


def test_foreground_run_with_terminal_and_no_tty_stdin(oci, bundle, cid):
    # stdin is not a terminal (a pipe): run still proxies the container's pty, without raw mode.
    b = tty_bundle(bundle, ["sh", "-c", "read x; echo got $x"])
    r = oci("run", "--bundle", b, cid, input="piped\n")
    assert r.returncode == 0, r.stderr
    assert "got piped" in r.stdout
