"""docker-py and testcontainers-python against `minirun system service`: Docker's Python
clients, through their own code paths (docker-py's low-level APIClient and its models;
testcontainers' wait for a log line), on the service of test_api.py's kind."""

from __future__ import annotations


import pytest

from helpers import ApiService
from polling import poll

docker = pytest.importorskip("docker", reason="docker-py is not installed (pip install '.[test]')")


@pytest.fixture(scope="module")
def sock(mr_home, tmp_path_factory):
    with ApiService(mr_home / "root", mr_home / "run",
                    tmp_path_factory.mktemp("api") / "api.sock") as svc:
        yield svc.path


@pytest.fixture
def client(sock, mr):
    c = docker.DockerClient(base_url=f"unix://{sock}", version="auto", timeout=60)
    yield c
    c.close()


def test_docker_py_models(client, mr):
    assert client.ping() is True
    assert client.version()["ApiVersion"] == "1.43"
    out = client.containers.run("busybox", ["sh", "-c", "echo hi; echo err >&2"], remove=True,
                                stderr=True)
    assert out == b"hi\nerr\n"
    c = client.containers.run("busybox", ["sleep", "100"], detach=True, name="pyc",
                              labels={"k": "v"}, init=True)
    try:
        assert c.status in ("created", "running")
        c.reload()
        assert c.status == "running" and c.labels["k"] == "v"  # (the image's labels too)
        assert [x.name for x in client.containers.list(filters={"label": "k=v"})] == ["pyc"]
        assert mr.record("pyc")["Id"] == c.id
        c.stop(timeout=1)
        assert c.wait()["StatusCode"] in (0, 143)
    finally:
        c.remove(force=True)
    net = client.networks.create("pynet", driver="bridge")
    vol = client.volumes.create("pyvol")
    try:
        assert client.networks.get("pynet").name == "pynet"
        assert client.volumes.get("pyvol").name == "pyvol"
        out = client.containers.run("busybox", ["sh", "-c", "echo x > /v/f; cat /v/f"],
                                    network="pynet", volumes={"pyvol": {"bind": "/v"}},
                                    remove=True)
        assert out == b"x\n"
    finally:
        net.remove()
        vol.remove()
    assert [i.tags for i in client.images.list(name="busybox")] == [["busybox:latest"]]


def test_docker_py_low_level_logs_stream(client):
    api = client.api
    cid = api.create_container("busybox", ["sh", "-c", "for i in 1 2 3; do echo $i; done"])["Id"]
    try:
        api.start(cid)
        assert api.wait(cid)["StatusCode"] == 0
        assert api.logs(cid) == b"1\n2\n3\n"
        frames = list(api.logs(cid, stream=True, follow=True))
        assert b"".join(frames) == b"1\n2\n3\n"
        assert api.inspect_container(cid)["State"]["Status"] == "exited"
    finally:
        api.remove_container(cid, force=True)


def test_testcontainers_waits_for_a_log_line(sock, monkeypatch):
    tc = pytest.importorskip("testcontainers.core.container",
                             reason="testcontainers is not installed (pip install '.[test]')")
    from testcontainers.core.waiting_utils import wait_for_logs

    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")  # Ryuk's image is not here
    with tc.DockerContainer("busybox").with_command(
            "sh -c 'sleep 0.3; echo ready; exec sleep 100'") as c:
        wait_for_logs(c, "ready", timeout=30)
        wrapped = c.get_wrapped_container()
        wrapped.reload()  # docker-py's status is the one seen at create
        assert wrapped.status == "running"


def test_docker_py_attach_with_logs(client):
    c = client.containers.run("busybox", ["sh", "-c", "echo before; sleep 0.5; echo after"],
                              detach=True)
    try:
        assert c.wait()["StatusCode"] == 0
        assert c.attach(logs=True, stream=False) == b"before\nafter\n"  # logs only: it exited
    finally:
        c.remove(force=True)
    c = client.containers.run("busybox", ["sh", "-c", "echo first; sleep 1; echo second"],
                              detach=True)
    try:
        assert poll(lambda: c.logs() == b"first\n")
        out = b"".join(c.attach(logs=True, stream=True))  # the past, then the rest live
        assert out == b"first\nsecond\n"
    finally:
        c.remove(force=True)
