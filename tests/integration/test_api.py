"""`minirun system service` driven by Docker's own CLI: the core endpoints (system, containers,
images, networks, volumes), errors with Docker's codes, and one set of objects shared with the
minirun CLI. (exec, cp and stats: test_api_exec_cp_stats.py; build, save/load, push:
test_api_images.py.)

The service runs on the module's --root in a fixture, on a socket in tmp; the docker CLI gets
DOCKER_HOST. Skipped where /usr/local/bin/docker (or docker on PATH) is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from helpers import MINIRUN, ApiService, UnixHTTP, drive_pty
from polling import poll

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"


@pytest.fixture(scope="module")
def service(mr_home, tmp_path_factory):
    """The service on the module's root: (socket path, its Popen)."""
    sock = tmp_path_factory.mktemp("api") / "api.sock"
    with ApiService(mr_home / "root", mr_home / "run", sock) as svc:
        yield svc.path, svc.proc


@pytest.fixture
def docker(service, mr):
    if not os.access(DOCKER, os.X_OK):
        pytest.skip("the docker CLI is not installed (/usr/local/bin/docker)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update(DOCKER_HOST=f"unix://{service[0]}", DOCKER_CONFIG=str(mr.root.parent / "dockercfg"))

    def run(*args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([DOCKER, *args], env=env, capture_output=True, text=True,
                              input=input, timeout=timeout)

    return run


def request(service, method: str, path: str, body: object = None) -> tuple[int, dict, bytes]:
    conn = UnixHTTP(service[0])
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def test_version_ping_info_and_negotiation(docker, service):
    r = docker("version", "--format", "{{.Server.APIVersion}} {{.Server.MinAPIVersion}}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1.43", "1.24"]
    status, headers, body = request(service, "GET", "/_ping")
    assert (status, body, headers["Api-Version"]) == (200, b"OK", "1.43")
    assert request(service, "GET", "/v1.24/version")[0] == 200
    status, _, body = request(service, "GET", "/v9.99/version")
    assert status == 400 and b"too new" in body
    r = docker("info", "--format", "{{.OperatingSystem}} {{.Containers}}")
    assert r.returncode == 0, r.stderr


def test_run_rm_gives_output_and_exit_code_and_leaves_nothing(docker, mr):
    r = docker("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
    assert docker("run", "--rm", "-i", "busybox", "cat", input="piped\n").stdout == "piped\n"
    assert mr.ok("ps", "-aq") == ""


def test_detached_containers_are_the_same_objects_for_both_clients(docker, mr):
    r = docker("run", "-d", "--name", "web", "-p", "127.0.0.1:18097:80", "-l", "a=b",
               "--init", "busybox", "httpd", "-f", "-p", "80")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert mr.record("web")["Id"] == cid  # minirun's CLI sees it
    assert "web" in docker("ps", "--format", "{{.Names}}").stdout.split()
    assert docker("inspect", "--format", "{{.State.Running}} {{index .Config.Labels \"a\"}}",
                  "web").stdout == "true b\n"
    assert docker("port", "web", "80").stdout.strip() == "127.0.0.1:18097"
    mine = mr.ok("run", "-d", "--name", "mine", "--init", "busybox", "sleep", "100").strip()
    assert mine in docker("ps", "-q", "--no-trunc").stdout.split()  # and the other way round
    for verb in ("pause", "unpause", "restart", "stop"):
        r = docker(verb, "web")
        assert r.returncode == 0 and r.stdout.strip() == "web", (verb, r.stderr)
    assert docker("ps", "-a", "--filter", "name=web", "--format", "{{.Status}}"
                  ).stdout.startswith("Exited")
    assert docker("rename", "web", "web2").returncode == 0
    assert docker("rm", "-f", "web2", "mine").returncode == 0
    assert mr.ok("ps", "-aq") == ""


def test_logs_wait_top_and_kill(docker):
    cid = docker("run", "-d", "busybox", "sh", "-c", "echo one; echo two >&2; sleep 100").stdout.strip()
    try:
        assert poll(lambda: docker("logs", cid).stdout == "one\n")
        r = docker("logs", cid)
        assert (r.stdout, r.stderr) == ("one\n", "two\n")  # demultiplexed by the CLI
        assert "sleep 100" in docker("top", cid).stdout
        assert docker("kill", "-s", "KILL", cid).returncode == 0
        assert docker("wait", cid).stdout.strip() == "137"
    finally:
        docker("rm", "-f", cid)


def test_errors_have_dockers_codes_and_one_line(docker, service):
    r = docker("rm", "nosuch")
    assert r.returncode == 1 and "No such container: nosuch" in r.stderr
    status, _, body = request(service, "GET", "/containers/nosuch/json")
    assert status == 404 and json.loads(body)["message"]
    status, _, body = request(service, "POST", "/containers/create", {"Image": "nosuch:1"})
    assert status == 404 and json.loads(body)["message"] == "No such image: nosuch:1"
    status, _, body = request(service, "POST", "/containers/create",
                              {"Image": "busybox", "HostConfig": {"Devices": [{"x": 1}]}})
    assert status == 400 and json.loads(body)["message"] == \
        "invalid device mapping: PathOnHost is required"
    cid = docker("run", "-d", "--init", "busybox", "sleep", "100").stdout.strip()
    try:
        status, _, body = request(service, "DELETE", f"/containers/{cid}")
        assert status == 409  # running, no force
        assert request(service, "POST", "/containers/create?name=x", {"Image": "busybox"})[0] == 400
        assert request(service, "POST", "/containers/create?name=xy", {"Image": "busybox"})[0] == 201
        assert request(service, "POST", "/containers/create?name=xy", {"Image": "busybox"})[0] == 409
    finally:
        docker("rm", "-f", cid, "xy")
    status, _, body = request(service, "GET", "/swarm")
    assert status == 501 and json.loads(body)["message"]
    assert request(service, "GET", "/nothing/here")[0] == 404


def test_networks_and_volumes(docker, mr):
    assert docker("network", "create", "--subnet", "10.231.7.0/24", "apinet").returncode == 0
    try:
        assert "apinet" in docker("network", "ls", "--format", "{{.Name}}").stdout.split()
        net = json.loads(docker("network", "inspect", "apinet").stdout)[0]
        assert net["IPAM"]["Config"][0]["Subnet"] == "10.231.7.0/24"
        assert docker("volume", "create", "apivol").stdout.strip() == "apivol"
        r = docker("run", "--rm", "--network", "apinet", "-v", "apivol:/data", "busybox",
                   "sh", "-c", "echo kept > /data/f; ip -4 -o addr show eth0 | grep -o 'inet 10.231.7'")
        assert r.returncode == 0 and r.stdout.strip() == "inet 10.231.7", r.stderr
        r = docker("run", "--rm", "-v", "apivol:/data", "busybox", "cat", "/data/f")
        assert r.stdout == "kept\n"
        assert "apivol" in mr.ok("volume", "ls", "-q").split()
    finally:
        docker("network", "rm", "apinet")
        docker("volume", "rm", "apivol")
    assert "apinet" not in docker("network", "ls").stdout


def test_images_list_tag_inspect_history_and_rmi(docker):
    assert "busybox" in docker("images", "--format", "{{.Repository}}").stdout.split()
    assert docker("tag", "busybox", "mybox:2").returncode == 0
    assert docker("image", "inspect", "--format", "{{.Os}}", "mybox:2").stdout == "linux\n"
    assert docker("history", "-q", "mybox:2").returncode == 0
    r = docker("rmi", "mybox:2")
    assert r.returncode == 0 and "Untagged: mybox:2" in r.stdout


def test_events_from_both_clients_in_order(docker, mr):
    start = f"{time.time():.3f}"
    r = docker("run", "--rm", "--name", "evt", "busybox", "true")
    assert r.returncode == 0, r.stderr
    mr.ok("volume", "create", "evtvol")
    mr.ok("volume", "rm", "evtvol")
    until = f"{time.time() + 0.5:.3f}"
    r = docker("events", "--since", start, "--until", until, "--format",
               "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    container = [line for line in lines if line.startswith("container")]
    assert container == ["container create evt", "container start evt", "container die evt",
                         "container destroy evt"]
    assert [line.split()[:2] for line in lines if line.startswith("volume")] == [
        ["volume", "create"], ["volume", "destroy"]]
    r = docker("events", "--since", start, "--until", until, "--filter", "event=die",
               "--format", "{{.Actor.Attributes.exitCode}}")
    assert r.stdout == "0\n"
    out = mr.ok("events", "--since", start, "--until", until, "--filter", "type=volume")
    assert [line.split()[1:3] for line in out.splitlines()] == [["volume", "create"],
                                                                ["volume", "destroy"]]


def test_socket_activation_and_idle_exit(mr, tmp_path):
    """systemd's way (scripts/systemd/minirun.socket): the listening socket comes as fd 3 with
    LISTEN_PID/LISTEN_FDS; the service answers on it and ends after --time idle seconds."""
    path = str(tmp_path / "activated.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    env = dict(os.environ, MINIRUN_ROOT=str(mr.root), MINIRUN_RUNROOT=str(mr.runroot))
    p = subprocess.Popen(
        ["sh", "-c", f'LISTEN_PID=$$ LISTEN_FDS=1 exec "{MINIRUN}" system service --time 1'],
        env=env, pass_fds=(3,), preexec_fn=lambda: os.dup2(listener.fileno(), 3),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    listener.close()
    try:
        status, _, body = request((path,), "GET", "/_ping")
        assert (status, body) == (200, b"OK")
        assert p.wait(timeout=30) == 0  # idle for a second: gone
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_fifty_concurrent_requests_while_the_cli_runs(service, mr):
    """The API's threads and the CLI share records and locks: nothing half-made, nothing lost."""
    from concurrent.futures import ThreadPoolExecutor

    def life(i: int) -> str:
        status, _, body = request(service, "POST", f"/containers/create?name=conc{i}",
                                  {"Image": "busybox", "Cmd": ["true"]})
        assert status == 201, body
        cid = json.loads(body)["Id"]
        assert request(service, "POST", f"/containers/{cid}/start")[0] == 204
        assert request(service, "GET", "/containers/json?all=1")[0] == 200
        status, _, body = request(service, "POST", f"/containers/{cid}/wait")
        assert status == 200 and json.loads(body)["StatusCode"] == 0
        assert request(service, "DELETE", f"/containers/{cid}?force=1")[0] == 204
        return cid

    with ThreadPoolExecutor(max_workers=50) as pool:
        futures = [pool.submit(life, i) for i in range(50)]
        for _ in range(3):
            assert mr("run", "--rm", "busybox", "true").returncode == 0
        ids = [f.result(timeout=300) for f in futures]
    assert len(set(ids)) == 50
    assert mr.ok("ps", "-aq") == ""
    assert all(n.startswith(".") for n in os.listdir(mr.root / "containers"))  # only locks


def test_run_it_through_a_terminal_gets_its_size(docker, service, mr):
    """`docker run -it` from a terminal: attached before start, raw, and the container's pty
    sized like ours (the CLI's resize request reaches the monitor)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update(DOCKER_HOST=f"unix://{service[0]}", DOCKER_CONFIG=str(mr.root.parent / "dockercfg"))
    status, out = drive_pty([DOCKER, "run", "--rm", "-it", "busybox", "sh", "-c",
                             "sleep 0.3; stty size"], size=(33, 101), env=env, timeout=30)
    assert status == 0, out
    assert "33 101" in out


def test_logs_follow_attach_and_system_df(docker):
    r = docker("run", "-d", "busybox", "sh", "-c",
               "for i in 1 2 3; do echo tick $i; sleep 0.3; done")
    cid = r.stdout.strip()
    try:
        r = docker("logs", "-f", cid, timeout=30)  # ends when the container does
        assert r.stdout == "tick 1\ntick 2\ntick 3\n"
        c2 = docker("run", "-d", "-i", "busybox", "sh", "-c", "read line; echo got $line").stdout.strip()
        try:
            r = docker("attach", c2, input="hello\n", timeout=30)
            assert r.stdout == "got hello\n" and r.returncode == 0
        finally:
            docker("rm", "-f", c2)
    finally:
        docker("rm", "-f", cid)
    r = docker("system", "df", "--format", "{{.Type}}")
    assert r.returncode == 0 and r.stdout.split()[:3] == ["Images", "Containers", "Local"]


def test_bad_http_is_answered_and_the_service_goes_on(service):
    """Malformed requests, oversize headers and bodies get an HTTP error, not a hang or a
    crash; a client that drops a stream mid-way costs nothing."""
    def raw(data: bytes) -> bytes:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(service[0])
        try:
            s.sendall(data)
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out
                out += chunk
        finally:
            s.close()

    assert b"400" in raw(b"NONSENSE\r\n\r\n")  # http.server's answer to a one-word line
    assert raw(b"BREW /coffee HTTP/1.1\r\nConnection: close\r\n\r\n").split(b" ")[1] == b"501"
    assert raw(b"GET /_ping HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n").split(b" ")[1] in (
        b"400", b"431")
    big = b"POST /containers/create HTTP/1.1\r\nContent-Length: 999999999999\r\n" \
          b"Connection: close\r\n\r\n"
    assert raw(big).split(b" ")[1] == b"400"
    # A follow stream dropped at once: the service still answers the next request.
    s = socket.socket(socket.AF_UNIX)
    s.connect(service[0])
    s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    s.recv(100)
    s.close()
    assert request(service, "GET", "/_ping")[0] == 200
    assert service[1].poll() is None


def test_socket_mode_and_group(mr, tmp_path):
    import grp

    group = next((g for g in grp.getgrall() if g.gr_gid != 0), None)
    if group is None:
        pytest.skip("no group besides root on this host")
    path = tmp_path / "g.sock"
    env = dict(os.environ, MINIRUN_ROOT=str(mr.root), MINIRUN_RUNROOT=str(mr.runroot))
    p = subprocess.Popen([MINIRUN, "system", "service", "--time", "0", "--group",
                          group.gr_name, "--host", f"unix://{path}"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert poll(lambda: path.exists() or p.poll() is not None)
        st = os.stat(path)
        assert (oct(st.st_mode & 0o777), st.st_uid, st.st_gid) == ("0o660", 0, group.gr_gid)
        r = subprocess.run([MINIRUN, "system", "service", "--host", f"unix://{path}"], env=env,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 125 and "another service is listening there" in r.stderr
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 0
