"""`minirun system service`: exec, cp (archive) and stats, driven by Docker's own clients.

The docker CLI (/usr/local/bin/docker, DOCKER_HOST at our socket) and docker-py talk to a
service started here on the module's --root; each test's containers go with the `mr` fixture
(also when it fails), and the service must end cleanly (exit 0) on SIGTERM.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import tarfile
import tempfile
import uuid
from pathlib import Path

import pytest

from helpers import ApiService, drive_pty, poll

DOCKER = "/usr/local/bin/docker"
ZERO = "0001-01-01T00:00:00Z"  # Go's zero time: Docker's "read" of a stopped container


@pytest.fixture(scope="module")
def service(mr_home, tmp_path_factory):
    """The API service on a socket of its own: (socket path, its Popen)."""
    sock = tmp_path_factory.mktemp("api") / "api.sock"
    with ApiService(mr_home / "root", mr_home / "run", sock) as svc:
        yield sock, svc.proc


@pytest.fixture
def docker_cli(service, tmp_path):
    """docker_cli(*args, input=None) -> CompletedProcess (text), against the service."""
    if not os.path.exists(DOCKER):
        pytest.skip(f"{DOCKER} is not installed")
    env = dict(os.environ, DOCKER_HOST=f"unix://{service[0]}",
               DOCKER_CONFIG=str(tmp_path / "docker-config"))
    env.pop("DOCKER_CONTEXT", None)

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([DOCKER, *args], env=env, capture_output=True, text=True,
                              input=input, stdin=None if input is not None else
                              subprocess.DEVNULL, timeout=60)

    run.env = env
    return run


@pytest.fixture
def client(service):
    docker = pytest.importorskip("docker", reason="docker-py is not installed (the test extra)")
    c = docker.DockerClient(base_url=f"unix://{service[0]}", version="1.43", timeout=60)
    yield c
    c.close()


@pytest.fixture
def running(mr):
    """A running busybox container (`sleep`), by name; `mr` removes it at teardown."""
    name = "api-" + uuid.uuid4().hex[:8]
    mr.ok("run", "-d", "--name", name, "busybox", "sleep", "3600")
    return name


# -- the docker CLI ----------------------------------------------------------------------------

def test_docker_exec_output_exit_code_and_stdin(docker_cli, running) -> None:
    r = docker_cli("exec", running, "echo", "hi")
    assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr
    r = docker_cli("exec", running, "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (r.returncode, r.stdout, r.stderr) == (7, "out\n", "err\n")
    r = docker_cli("exec", "-i", running, "cat", input="line 1\nline 2\n")
    assert (r.returncode, r.stdout) == (0, "line 1\nline 2\n"), r.stderr
    r = docker_cli("exec", running, "no-such-command")
    assert r.returncode == 127 and "executable file not found" in r.stdout + r.stderr


def test_docker_exec_tty(docker_cli, running) -> None:
    """`docker exec -it` on a real terminal (a pty, as a user's): raw bytes both ways."""
    cli = ["env", f"DOCKER_HOST={docker_cli.env['DOCKER_HOST']}",
           f"DOCKER_CONFIG={docker_cli.env['DOCKER_CONFIG']}", DOCKER, "exec", "-it", running]
    code, out = drive_pty(cli + ["sh"], b"echo $((6*7)); exit\r", until=b"# ", timeout=30)
    assert code == 0 and "\n42\n" in out, out
    code, out = drive_pty(cli + ["sh", "-c", "tty; exit 3"], timeout=30)
    assert code == 3 and "/dev/pts/" in out, out


def test_docker_cp_both_ways(docker_cli, running, tmp_path) -> None:
    src = tmp_path / "src"
    (src / "tree" / "sub").mkdir(parents=True)
    (src / "file.txt").write_text("content\n")
    os.chmod(src / "file.txt", 0o640)
    (src / "tree" / "sub" / "leaf").write_text("leaf\n")
    os.symlink("sub/leaf", src / "tree" / "link")

    assert docker_cli("cp", str(src / "file.txt"), f"{running}:/tmp/").returncode == 0
    assert docker_cli("cp", str(src / "tree"), f"{running}:/tmp/copied").returncode == 0
    r = docker_cli("exec", running, "sh", "-c",
                   "cat /tmp/file.txt /tmp/copied/sub/leaf; stat -c %a /tmp/file.txt; "
                   "readlink /tmp/copied/link")
    assert r.stdout == "content\nleaf\n640\nsub/leaf\n", r.stderr

    back = tmp_path / "back"
    back.mkdir()
    assert docker_cli("cp", f"{running}:/tmp/file.txt", str(back / "f")).returncode == 0
    assert (back / "f").read_text() == "content\n"
    assert (back / "f").stat().st_mode & 0o777 == 0o640
    assert docker_cli("cp", f"{running}:/tmp/copied", str(back / "tree")).returncode == 0
    assert (back / "tree" / "sub" / "leaf").read_text() == "leaf\n"
    assert os.readlink(back / "tree" / "link") == "sub/leaf"

    r = docker_cli("cp", f"{running}:/no/such/path", str(back / "x"))
    assert r.returncode == 1 and "Could not find the file /no/such/path" in r.stderr, r.stderr
    assert not (back / "x").exists()


def test_docker_stats_no_stream(docker_cli, running) -> None:
    r = docker_cli("stats", "--no-stream", running)
    assert r.returncode == 0, r.stderr
    header, row = r.stdout.splitlines()[:2]
    assert "MEM USAGE / LIMIT" in header
    assert running in row.split()
    assert any(unit in row for unit in ("KiB /", "MiB /", "B /")), row


# -- docker-py ---------------------------------------------------------------------------------

def test_docker_py_exec_run(client, running, mr) -> None:
    c = client.containers.get(running)
    r = c.exec_run(["sh", "-c", "echo out; echo err >&2; exit 3"], demux=True)
    assert r.exit_code == 3 and r.output == (b"out\n", b"err\n")
    r = c.exec_run("pwd", workdir="/tmp", environment={"X": "1"})
    assert (r.exit_code, r.output) == (0, b"/tmp\n")
    r = c.exec_run(["sh", "-c", "echo $X"], environment={"X": "from env"}, user="nobody")
    assert r.output == b"from env\n"

    api = client.api
    eid = api.exec_create(running, ["sh", "-c", "exit 5"])["Id"]
    api.exec_start(eid, detach=True)
    info = poll(lambda: (i := api.exec_inspect(eid))["ExitCode"] is not None and i)
    assert info["ExitCode"] == 5 and not info["Running"] and info["Pid"] > 0
    assert info["ContainerID"] == c.id and info["ProcessConfig"]["entrypoint"] == "sh"

    docker = pytest.importorskip("docker")
    with pytest.raises(docker.errors.APIError) as e:
        api.exec_start(eid)  # once only
    assert e.value.status_code == 409
    with pytest.raises(docker.errors.NotFound):
        api.exec_inspect("0" * 64)
    mr.ok("stop", "-t", "0", running)
    with pytest.raises(docker.errors.APIError) as e:
        api.exec_create(running, "true")
    assert e.value.status_code == 409 and "is not running" in e.value.explanation


def test_docker_py_exec_tty_resize(client, running) -> None:
    """A TTY exec: its pty resized through /exec/{id}/resize, then asked its size."""
    api = client.api
    eid = api.exec_create(running, ["sh", "-c", "read x; stty size"], stdin=True,
                          tty=True)["Id"]
    sock = api.exec_start(eid, tty=True, socket=True)._sock
    try:
        poll(lambda: api.exec_inspect(eid)["Running"])
        api.exec_resize(eid, height=33, width=101)
        sock.sendall(b"\n")
        out = _read_all(sock)
    finally:
        sock.close()
    assert "33 101" in out, out
    assert poll(lambda: api.exec_inspect(eid)["ExitCode"] is not None)
    assert api.exec_inspect(eid)["ExitCode"] == 0


def _read_all(sock: socket.socket, timeout: float = 30) -> str:
    sock.settimeout(timeout)
    out = b""
    while True:
        data = sock.recv(65536)
        if not data:
            return out.decode(errors="replace")
        out += data


def test_docker_py_archive(client, running) -> None:
    docker = pytest.importorskip("docker")
    c = client.containers.get(running)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        d = tarfile.TarInfo("dir")
        d.type, d.mode = tarfile.DIRTYPE, 0o750
        tar.addfile(d)
        f = tarfile.TarInfo("dir/secret")
        data = b"s3cret\n"
        f.size, f.mode, f.uid, f.gid = len(data), 0o600, 1234, 5678
        tar.addfile(f, io.BytesIO(data))
    assert c.put_archive("/tmp", buf.getvalue())
    r = c.exec_run(["stat", "-c", "%a %u %g", "/tmp/dir", "/tmp/dir/secret"])
    assert r.output == b"750 0 0\n600 0 0\n"  # the container's root owns them, as Docker's
    stream, stat = c.get_archive("/tmp/dir")
    assert stat["name"] == "dir" and stat["mode"] & 0o777 == 0o750 and stat["mode"] & 1 << 31
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        assert sorted(tar.getnames()) == ["dir", "dir/secret"]
        assert tar.extractfile("dir/secret").read() == data

    with pytest.raises(docker.errors.NotFound):
        c.get_archive("/no/such/path")
    with pytest.raises(docker.errors.NotFound):
        c.put_archive("/no/such/dir", buf.getvalue())
    with pytest.raises(docker.errors.APIError) as e:
        c.put_archive("/tmp/dir/secret", buf.getvalue())  # not a directory
    assert e.value.status_code == 400


def test_archive_options(client, running, service) -> None:
    """PUT's noOverwriteDirNonDir (409 on a clash) and copyUIDGID (the tar's owners kept)."""
    c = client.containers.get(running)
    c.exec_run(["mkdir", "/tmp/isdir"])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        f = tarfile.TarInfo("isdir")  # a file where a directory is
        tar.addfile(f, io.BytesIO(b""))
    status, body = _raw(service[0], "PUT", f"/v1.43/containers/{running}/archive?path=/tmp"
                        "&noOverwriteDirNonDir=1", buf.getvalue())
    assert status == 409 and set(json.loads(body)) == {"message"}, body

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        f = tarfile.TarInfo("owned")
        f.uid, f.gid = 1234, 5678
        tar.addfile(f, io.BytesIO(b""))
    status, _ = _raw(service[0], "PUT", f"/v1.43/containers/{running}/archive?path=/tmp"
                     "&copyUIDGID=1", buf.getvalue())
    assert status == 200
    assert c.exec_run(["stat", "-c", "%u %g", "/tmp/owned"]).output == b"1234 5678\n"


def _raw(path: Path, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
    """One HTTP/1.1 request on a fresh connection: (status, body)."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(path))
    try:
        s.sendall(f"{method} {target} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n"
                  f"Content-Type: application/x-tar\r\nContent-Length: {len(body)}\r\n\r\n"
                  .encode() + body)
        data = _read_all(s).encode()
    finally:
        s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), rest


def test_docker_py_stats(client, running, mr) -> None:
    c = client.containers.get(running)
    s = c.stats(stream=False)
    for key in ("read", "preread", "cpu_stats", "precpu_stats", "memory_stats", "pids_stats",
                "blkio_stats", "networks", "name", "id"):
        assert key in s, key
    assert s["name"] == "/" + running and s["id"] == c.id
    assert s["precpu_stats"]["cpu_usage"]["total_usage"] > 0  # from a reading a second before
    assert s["memory_stats"]["usage"] > 0 and s["memory_stats"]["limit"] > 0
    assert s["pids_stats"]["current"] >= 1
    once = client.api.stats(running, stream=False, one_shot=True)
    assert once["precpu_stats"]["cpu_usage"]["total_usage"] == 0

    stream = client.api.stats(running, stream=True, decode=True)
    first, second = next(stream), next(stream)
    assert first["name"] == second["name"] == "/" + running
    assert second["precpu_stats"]["cpu_usage"]["total_usage"] > 0 and second["preread"] != ZERO
    mr.ok("stop", "-t", "0", running)
    rest = list(stream)  # the stream ends with the container
    assert rest and rest[-1]["read"] == ZERO


# -- a client that goes away ---------------------------------------------------------------------

def _counts(pid: int) -> tuple[int, int]:
    return len(os.listdir(f"/proc/{pid}/fd")), len(os.listdir(f"/proc/{pid}/task"))


@pytest.mark.parametrize("cmd,stdin", [(["cat"], True),
                                        (["sh", "-c", "while :; do echo y; done"], False)],
                         ids=["stdin-cat", "output-loop"])
def test_exec_client_disconnect_leaves_nothing(client, running, service, cmd, stdin) -> None:
    """A client that hangs up mid-exec: the service's fds and threads come back to what they
    were, and the exec has ended (stdin at EOF; or its output pipe closed)."""
    api = client.api
    eid = api.exec_create(running, cmd, stdin=stdin)["Id"]
    pid = service[1].pid
    api.exec_inspect(eid)  # the client's connection is up: part of the baseline
    before, dirs = _counts(pid), _runner_dirs()
    body = json.dumps({"Detach": False, "Tty": False}).encode()
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(service[0]))
    s.sendall(f"POST /v1.43/exec/{eid}/start HTTP/1.1\r\nHost: docker\r\n"
              "Content-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
              f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    s.settimeout(30)
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    assert poll(lambda: api.exec_inspect(eid)["Pid"], timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")  # close: a reset
    s.close()
    info = poll(lambda: (i := api.exec_inspect(eid))["ExitCode"] is not None and i, timeout=30)
    assert info and not info["Running"]
    assert poll(lambda: _counts(pid) == before, timeout=30), (_counts(pid), before)
    assert poll(lambda: _runner_dirs() <= dirs), "a runner's directory is left"


def _runner_dirs() -> set[str]:
    """The exec runners' private directories (tempfile's, minirun-exec-*)."""
    tmp = tempfile.gettempdir()
    return {d for d in os.listdir(tmp) if d.startswith("minirun-exec-")}
