"""`exec`: another process in a running container (`sleep 60` as its init).

The exec'd process must share every namespace and cgroup of the init, run with the options
given (--env, --cwd, --user, --additional-gids, --cap, --tty, --process), pass its exit code
back, and fail with one clear line when it cannot start.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from helpers import (NS, READ_NS, alive, console_run, drive_pty, mounts, one_line_error,
                     own_cgroups, pairs, run_detached)

# CapEff of the shell itself (builtins only: an exec'd grep would show its own).
CAPEFF = "while read -r k v; do case $k in CapEff:) echo $v;; esac; done < /proc/self/status"


# --- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def running(oci, bundle, cid, tmp_path):
    """A running container whose init is `sleep 60`: (cid, init pid)."""
    return cid, run_detached(oci, tmp_path, bundle(args=["sleep", "60"]), cid)


def exec_ok(rt, *args: str) -> str:
    r = rt("exec", *args)
    assert r.returncode == 0, f"exec {args}: rc {r.returncode}\n{r.stderr}"
    return r.stdout


# --- namespaces, PID 1, exit codes ----------------------------------------------------------------


def test_exec_shares_the_namespaces(oci, running):
    cid, pid = running
    inside = pairs(exec_ok(oci, cid, "sh", "-c", READ_NS))
    for n in NS:
        assert inside[n] == os.readlink(f"/proc/{pid}/ns/{n}"), n
    assert inside["pid"] != os.readlink("/proc/self/ns/pid")


def test_exec_sees_the_init_as_pid_1(oci, running):
    cid, _ = running
    out = exec_ok(oci, cid, "sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline; echo; echo $$; hostname")
    lines = out.splitlines()
    assert lines[0].strip() == "sleep 60"
    assert lines[1] != "1"
    assert lines[2] == "minirun"


@pytest.mark.parametrize("script, code", [("exit 0", 0), ("exit 7", 7), ("kill -9 $$", 137),
                                          ("kill -TERM $$", 143)])
def test_exec_exit_code(oci, running, script, code):
    cid, _ = running
    assert oci("exec", cid, "sh", "-c", script).returncode == code


def test_exec_stdin_and_stderr(oci, running):
    cid, _ = running
    r = oci("exec", cid, "sh", "-c", "read x; echo out $x; echo err $x >&2", input="line\n")
    assert (r.returncode, r.stdout, r.stderr) == (0, "out line\n", "err line\n")


# --- options --------------------------------------------------------------------------------------


def test_exec_env_and_cwd(oci, running):
    cid, _ = running
    out = exec_ok(oci, "--env", "FOO=bar", "-e", "BAZ=two words", "--cwd", "/tmp", cid,
                  "sh", "-c", 'echo "$FOO|$BAZ|$PATH"; pwd')
    foo, path = out.splitlines()
    assert foo.startswith("bar|two words|/usr/local/sbin:")  # the config's env is kept too
    assert path == "/tmp"


def test_exec_user_and_groups(oci, running):
    cid, _ = running
    assert exec_ok(oci, "--user", "1000:1000", cid, "sh", "-c", "id -u; id -g; id -G").split() \
        == ["1000", "1000", "1000"]
    assert exec_ok(oci, "--user", "1000:1000", "--additional-gids", "2000", "-g", "65534", cid,
                   "sh", "-c", "id -G").split() == ["1000", "2000", "65534"]
    # As the config's user (root), with no extra groups: runc leaves none either.
    assert exec_ok(oci, cid, "sh", "-c", "id -u; id -G").split() == ["0", "0"]


def test_exec_cap(oci, running):
    cid, _ = running
    base = int(exec_ok(oci, cid, "sh", "-c", CAPEFF).strip(), 16)
    more = int(exec_ok(oci, "--cap", "CAP_NET_RAW", "--cap", "CAP_SYS_CHROOT", cid, "sh", "-c",
                       CAPEFF).strip(), 16)
    assert more == base | (1 << 13) | (1 << 18)
    assert not base & (1 << 13)
    r = oci("exec", "--cap", "CAP_NO_SUCH_THING", cid, "true")
    assert r.returncode != 0 and "CAP_NO_SUCH_THING" in one_line_error(r.stderr)


def test_exec_process_file(oci, running, tmp_path):
    cid, _ = running
    proc = {"args": ["sh", "-c", 'echo "$WHO in $(pwd) as $(id -u):$(id -g) $(id -G)"; exit 3'],
            "env": ["PATH=/bin", "WHO=json"], "cwd": "/home/mini",
            "user": {"uid": 1000, "gid": 1000, "additionalGids": [2000]}}
    f = tmp_path / "process.json"
    f.write_text(json.dumps(proc))
    r = oci("exec", "--process", str(f), cid)
    assert r.returncode == 3, r.stderr
    assert r.stdout == "json in /home/mini as 1000:1000 1000 2000\n"


def test_exec_bad_process_file(oci, running, tmp_path):
    cid, _ = running
    f = tmp_path / "process.json"
    f.write_text('{"args": []}')
    r = oci("exec", "--process", str(f), cid)
    assert r.returncode != 0 and "process.args" in one_line_error(r.stderr)


# --- detach, pid file, tty ------------------------------------------------------------------------


def test_exec_detach_with_pid_file(oci, running, tmp_path):
    cid, init = running
    pidfile = tmp_path / "exec.pid"
    with open(tmp_path / "exec.out", "w") as o:  # the detached process keeps stdio open
        r = subprocess.run([oci.binary, "--root", str(oci.root), "exec", "--detach",
                            "--pid-file", str(pidfile), cid, "sleep", "30"],
                           stdin=subprocess.DEVNULL, stdout=o, stderr=subprocess.STDOUT,
                           timeout=30)
    assert r.returncode == 0, (tmp_path / "exec.out").read_text()
    text = pidfile.read_text()
    assert text.isdigit()  # bare number, no newline (runtime-tools and conmon read it so)
    pid = int(text)
    assert alive(pid)
    assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{init}/ns/pid")
    with open(f"/proc/{pid}/status") as f:
        nspid = [ln.split()[1:] for ln in f if ln.startswith("NSpid:")][0]
    assert nspid[0] == str(pid) and nspid[1] != "1"
    assert pid in json.loads(oci("ps", "--format", "json", cid, check=True).stdout)
    # delete --force takes it down with the container.
    oci("delete", "--force", cid, check=True)
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not alive(pid)


def test_exec_tty_detached_with_console_socket(oci, running, console_server, tmp_path):
    cid, _ = running
    srv = console_server()
    with open(tmp_path / "exec.out", "w") as o:
        r = subprocess.run([oci.binary, "--root", str(oci.root), "exec", "--detach", "--tty",
                            "--console-socket", srv.path, cid, "sh", "-c",
                            "tty; [ -t 0 ] && echo stdin-tty; read x; echo got $x"],
                           stdin=subprocess.DEVNULL, stdout=o, stderr=subprocess.STDOUT,
                           timeout=30)
    assert r.returncode == 0, (tmp_path / "exec.out").read_text()
    master = srv.master()
    out = srv.read_until(master, "stdin-tty")
    assert out.splitlines()[0].startswith("/dev/pts/"), out
    os.write(master, b"typed\n")
    assert "got typed" in srv.read_until(master, "got typed")


def test_exec_tty_foreground_with_console_socket(oci, running, console_server):
    cid, _ = running
    srv = console_server()
    rc, out, err = console_run(oci.argv("exec", "-t", "--console-socket", srv.path, cid, "sh", "-c",
                                        "tty; exit 9"), srv)
    assert rc == 9, err
    assert "/dev/pts/" in out


def test_exec_tty_proxied_without_console_socket(oci, running):
    cid, _ = running
    rc, out = drive_pty(oci.argv("exec", "--tty", cid, "sh", "-c",
                                 "tty; read x; echo got $x; exit 4"),
                        typed=b"hi\n", until=b"/dev/pts/")
    assert rc == 4, out
    assert "got hi" in out


def test_exec_detach_tty_without_console_socket_fails(oci, running):
    cid, _ = running
    r = oci("exec", "--detach", "--tty", cid, "true")
    assert r.returncode != 0 and "--console-socket" in one_line_error(r.stderr)


# --- failures -------------------------------------------------------------------------------------


def test_exec_missing_command(oci, running):
    cid, pid = running
    r = oci("exec", cid, "no-such-command")
    assert r.returncode != 0
    assert "no-such-command" in one_line_error(r.stderr)
    r = oci("exec", cid, "/bin/nope")
    assert r.returncode != 0 and "/bin/nope" in one_line_error(r.stderr)
    assert oci.state(cid)["status"] == "running" and alive(pid)


def test_exec_missing_cwd(oci, running):
    cid, _ = running
    r = oci("exec", "--cwd", "/no/such/dir", cid, "true")
    assert r.returncode != 0 and "/no/such/dir" in one_line_error(r.stderr)


def test_exec_in_a_stopped_container(oci, bundle, cid, tmp_path):
    run_detached(oci, tmp_path, bundle(args=["true"]), cid)
    deadline = time.monotonic() + 5
    while oci.state(cid)["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.01)
    r = oci("exec", cid, "true")
    assert r.returncode != 0
    assert "stopped" in one_line_error(r.stderr)


def test_exec_in_a_missing_container(oci):
    r = oci("exec", "no-such-container", "true")
    assert r.returncode != 0 and "does not exist" in one_line_error(r.stderr)


# --- cgroups --------------------------------------------------------------------------------------


def test_exec_joins_the_containers_cgroups(oci, bundle, cid, tmp_path):
    b = bundle(args=["sleep", "60"],
               edit=lambda c: c["linux"].update(cgroupsPath=f"minirun-test-exec/{cid}"))
    init = run_detached(oci, tmp_path, b, cid)
    pidfile = tmp_path / "exec.pid"
    with open(tmp_path / "exec.out", "w") as o:
        r = subprocess.run([oci.binary, "--root", str(oci.root), "exec", "--detach",
                            "--pid-file", str(pidfile), cid, "sleep", "30"],
                           stdin=subprocess.DEVNULL, stdout=o, stderr=subprocess.STDOUT,
                           timeout=30)
    assert r.returncode == 0, (tmp_path / "exec.out").read_text()
    pid = int(pidfile.read_text())
    init_cg = own_cgroups(init)
    assert own_cgroups(pid) == init_cg
    assert all(p.endswith(f"/minirun-test-exec/{cid}") for p in init_cg.values()), init_cg
    # Seen from inside (a cgroup namespace rooted at the container's cgroup): "/" everywhere.
    inside = exec_ok(oci, cid, "cat", "/proc/self/cgroup").splitlines()
    assert all(ln.endswith(":/") for ln in inside), inside
    oci("delete", "--force", cid, check=True)
    where = mounts()  # hierarchy key -> mount point (cgroup2 at .../unified or at the top)
    for key, path in init_cg.items():
        mnt = Path(where[key])
        assert not (mnt / path.lstrip("/")).exists(), key
        assert not (mnt / path.lstrip("/")).parent.exists(), key  # minirun-test-exec too
