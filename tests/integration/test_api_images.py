"""`minirun system service`'s image endpoints driven by Docker's own clients: build (the classic
builder: DOCKER_BUILDKIT=0), commit, push and pull through a local registry, save and load --
with the docker CLI, with docker-py, and raw where a client would hide the answer (unsafe
contexts, a client that goes away mid-build, error codes).

The service runs on the module's --root (busybox loaded) on a socket in tmp. Every test removes
the images, containers and registry repositories it made, and no build context may be left
spooled under the root. Skipped without /usr/local/bin/docker (docker-py tests: without the
`docker` package; push/pull: without docker-registry).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from helpers import ApiService, UnixHTTP
from polling import poll

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
REGISTRY_TESTS = Path(__file__).resolve().parents[1] / "registry"

DOCKERFILE = """\
FROM busybox
RUN echo built > /built.txt && echo run-output && echo run-stderr >&2
COPY hello.txt /hello.txt
CMD ["sh", "-c", "cat /hello.txt /built.txt"]
"""


# -- the service and its clients ---------------------------------------------------------------

@pytest.fixture(scope="module")
def service(mr_home, tmp_path_factory):
    """`minirun system service` on the module's root: its socket path (helpers.ApiService:
    SIGTERM at the end, exit 0, the socket gone)."""
    with ApiService(mr_home / "root", mr_home / "run",
                    tmp_path_factory.mktemp("api") / "api.sock") as svc:
        yield svc.path


@pytest.fixture
def made(mr):
    """made(ref, ...): images this test makes, removed after it (also when it fails); then
    dangling images and the build cache go, and no build context may be left in the store's
    tmp/ (the service removes each one when its build ends, however it ends)."""
    refs: list[str] = []
    yield lambda *r: refs.extend(r)
    for ref in refs:
        mr("rmi", "-f", ref)
    mr("image", "prune", "-f")
    mr("builder", "prune", "-f")
    tmp = mr.root / "image" / "tmp"
    assert poll(lambda: not list(tmp.glob("build-context-*"))), os.listdir(tmp)


@pytest.fixture
def docker(service, mr, tmp_path):
    """docker(*args) -> CompletedProcess: the docker CLI on the service, classic builder."""
    if not os.access(DOCKER, os.X_OK):
        pytest.skip("the docker CLI is not installed (/usr/local/bin/docker)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update(DOCKER_HOST=f"unix://{service}", DOCKER_BUILDKIT="0",
               DOCKER_CONFIG=str(tmp_path / "dockercfg"))

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([DOCKER, *args], env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    return run


@pytest.fixture
def client(service):
    """A docker-py client on the service."""
    docker_py = pytest.importorskip("docker", reason="docker-py missing (pip install '.[test]')")
    c = docker_py.DockerClient(base_url=f"unix://{service}", version="1.43", timeout=120)
    yield c
    c.close()


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """Debian's docker-registry on 127.0.0.1 (tests/registry/localregistry.py), empty."""
    if not shutil.which("docker-registry"):
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    sys.path.insert(0, str(REGISTRY_TESTS))
    try:
        import localregistry
    finally:
        sys.path.remove(str(REGISTRY_TESTS))
    reg = localregistry.LocalRegistry(tmp_path_factory.mktemp("registry")).start()
    yield reg
    reg.stop()


def request(service: str, method: str, path: str, body: bytes | None = None,
            headers: dict | None = None) -> tuple[int, bytes]:
    conn = UnixHTTP(service)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def messages(body: bytes) -> list[dict]:
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def context_dir(d: Path, dockerfile: str = DOCKERFILE, **files: str) -> Path:
    d.mkdir()
    (d / "Dockerfile").write_text(dockerfile)
    (d / "hello.txt").write_text("hello\n")
    for name, text in files.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_text(text)
    return d


def tar_of(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def entry(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


# -- build ---------------------------------------------------------------------------------------

def test_docker_build_then_run_prints_what_cmd_prints(docker, made, tmp_path):
    made("apitest-build:1", "apitest-build:q")
    ctx = context_dir(tmp_path / "ctx")
    r = docker("build", "-t", "apitest-build:1", str(ctx))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for line in ("Step 1/4 : FROM busybox\n", "Step 2/4 : RUN echo built", "run-output\n",
                 "run-stderr", "Step 4/4 : CMD", "Successfully tagged apitest-build:1\n"):
        assert line in out, out
    short = out.split("Successfully built ")[1].split()[0]
    r = docker("run", "--rm", "apitest-build:1")
    assert (r.returncode, r.stdout) == (0, "hello\nbuilt\n"), r.stderr
    full = docker("inspect", "--format", "{{.Id}}", "apitest-build:1").stdout.strip()
    assert full.startswith("sha256:" + short)
    # -q: the image ID is the whole output (the CLI prints the stream's last message).
    r = docker("build", "-q", "-t", "apitest-build:q", str(ctx))
    assert (r.returncode, r.stdout.strip()) == (0, full), r.stderr


def test_build_options_file_args_labels_target(docker, made, tmp_path):
    made("apitest-opts:1")
    ctx = context_dir(tmp_path / "ctx", dockerfile="FROM scratch\n", **{"sub/Other": (
        "FROM busybox AS first\nARG V\nRUN test \"$V\" = value && echo \"$V\" > /v\n"
        "FROM first AS second\nRUN false\n")})
    r = docker("build", "-f", str(ctx / "sub" / "Other"), "--build-arg", "V=value",
               "--label", "team=api", "--target", "first", "--network", "none",
               "-t", "apitest-opts:1", str(ctx))
    assert r.returncode == 0, r.stdout + r.stderr
    assert docker("inspect", "--format", '{{index .Config.Labels "team"}}',
                  "apitest-opts:1").stdout == "api\n"
    assert docker("run", "--rm", "apitest-opts:1", "cat", "/v").stdout == "value\n"


def test_failing_run_fails_the_build_with_its_line(docker, made, mr, tmp_path):
    ctx = context_dir(tmp_path / "ctx", "FROM busybox\nRUN echo failing-step; exit 3\n")
    r = docker("build", "-t", "apitest-fail:1", str(ctx))
    assert r.returncode != 0
    assert "failing-step" in r.stdout
    assert "The command '/bin/sh -c echo failing-step; exit 3' returned a non-zero code: 3" in \
        r.stdout + r.stderr
    assert docker("image", "inspect", "apitest-fail:1").returncode != 0
    assert mr.ok("ps", "-aq") == ""  # the step's container went too


def test_unsafe_contexts_are_refused_and_nothing_escapes(service, made, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    df = b"FROM busybox\nCMD true\n"
    cases = {
        "dot-dot": [(entry("Dockerfile"), df), (entry("../escaped"), b"x")],
        "through a symlink": [(entry("Dockerfile"), df),
                              (entry("link", tarfile.SYMTYPE, str(outside)), None),
                              (entry("link/escaped"), b"x")],
        "hard link out": [(entry("Dockerfile"), df),
                          (entry("hl", tarfile.LNKTYPE, "../../etc/passwd"), None)],
        "no tar": None,
    }
    for what, entries in cases.items():
        body = tar_of(entries) if entries is not None else b"this is not a tar archive\n" * 100
        status, answer = request(service, "POST", "/v1.43/build?t=apitest-unsafe", body,
                                 {"Content-Type": "application/x-tar"})
        assert status == 400, (what, answer)
        assert b"\n" not in answer.strip() and b"Traceback" not in answer, answer
    assert list(outside.iterdir()) == []
    # A device node and a fifo in a context are skipped, not made; the build goes on.
    ok = [(entry("Dockerfile"), b"FROM busybox\nCOPY . /ctx/\nCMD ls /ctx\n"),
          (entry("dev", tarfile.CHRTYPE), None), (entry("fifo", tarfile.FIFOTYPE), None)]
    made("apitest-unsafe")
    status, answer = request(service, "POST", "/build?t=apitest-unsafe", tar_of(ok))
    assert status == 200 and "error" not in messages(answer)[-1], answer
    status, answer = request(service, "POST", "/build?dockerfile=../Dockerfile", tar_of(ok))
    assert (status, json.loads(answer)["message"]) == (
        400, "the Dockerfile (../Dockerfile) must be within the build context")
    status, answer = request(service, "POST", "/build?dockerfile=sub/missing", tar_of(ok))
    assert (status, json.loads(answer)["message"]) == (
        400, "Cannot locate specified Dockerfile: sub/missing")
    status, answer = request(service, "POST", "/build?networkmode=container:x", tar_of(ok))
    assert status == 400, answer


def test_a_client_that_goes_away_cancels_the_build(service, made, mr, tmp_path):
    """Docker cancels a build whose client disconnects; its RUN container and its context go."""
    body = tar_of([(entry("Dockerfile"), b"FROM busybox\nRUN echo started; sleep 60\n")])
    s = socket.socket(socket.AF_UNIX)
    s.connect(service)
    s.sendall(b"POST /v1.43/build?t=apitest-gone HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/x-tar\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    seen = b""
    deadline = time.monotonic() + 30
    while b"started" not in seen and time.monotonic() < deadline:
        seen += s.recv(65536)
    s.close()
    assert b"started" in seen, seen
    started = time.monotonic()
    assert poll(lambda: mr.ok("ps", "-aq") == "", timeout=20), mr.ok("ps", "-a")
    assert time.monotonic() - started < 20  # not the 60 s the RUN would take
    assert mr("image", "inspect", "apitest-gone").returncode != 0


# -- commit --------------------------------------------------------------------------------------

def test_docker_commit_of_a_running_container(docker, made, mr):
    made("apitest-commit:1")
    r = docker("run", "-d", "--name", "apitest-c", "busybox", "sh", "-c",
               "echo data > /made.txt; echo ready; exec sleep 100")
    assert r.returncode == 0, r.stderr
    try:
        assert poll(lambda: docker("logs", "apitest-c").stdout == "ready\n")
        r = docker("commit", "-c", 'CMD ["cat", "/made.txt"]', "-c", "ENV K=v", "-m", "why",
                   "-a", "me", "apitest-c", "apitest-commit:1")
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("sha256:")
        assert docker("inspect", "--format", "{{.State.Running}}", "apitest-c").stdout == \
            "true\n"  # paused for the commit, running again
    finally:
        docker("rm", "-f", "apitest-c")
    r = docker("run", "--rm", "apitest-commit:1")
    assert (r.returncode, r.stdout) == (0, "data\n"), r.stderr
    assert docker("inspect", "--format", "{{.Author}} {{index .Config.Env 1}}",
                  "apitest-commit:1").stdout == "me K=v\n"
    # (-m is in the history; Docker also shows it as the image's .Comment, minirun not yet.)
    assert docker("history", "--format", "{{.Comment}}", "apitest-commit:1").stdout.startswith(
        "why\n")
    assert docker("commit", "no-such-container").stderr.strip().endswith(
        "no-such-container")  # a 404, one line


# -- save and load -------------------------------------------------------------------------------

def test_docker_save_rmi_load_brings_the_image_back(docker, made, tmp_path, service):
    made("apitest-save:1")
    ctx = context_dir(tmp_path / "ctx", "FROM busybox\nRUN echo saved > /saved.txt\n"
                      "CMD [\"cat\", \"/saved.txt\"]\n")
    assert docker("build", "-t", "apitest-save:1", str(ctx)).returncode == 0
    out = tmp_path / "f.tar"
    r = docker("save", "apitest-save:1", "-o", str(out))
    assert r.returncode == 0, r.stderr
    with tarfile.open(out) as tf:
        assert "manifest.json" in tf.getnames()
    assert docker("rmi", "apitest-save:1").returncode == 0
    assert docker("image", "inspect", "apitest-save:1").returncode != 0
    r = docker("load", "-i", str(out))
    assert (r.returncode, r.stdout) == (0, "Loaded image: apitest-save:1\n"), r.stderr
    assert docker("run", "--rm", "apitest-save:1").stdout == "saved\n"
    # The other route and the errors, raw: a 404 before any byte of tar.
    status, body = request(service, "GET", "/images/apitest-save:1/get")
    assert status == 200 and tarfile.open(fileobj=io.BytesIO(body)).getmember("manifest.json")
    assert request(service, "GET", "/images/get?names=apitest-nothere")[0] == 404
    assert request(service, "GET", "/images/apitest-nothere/get")[0] == 404
    assert request(service, "GET", "/images/get")[0] == 400
    status, body = request(service, "POST", "/images/load", b"not an archive" * 1000)
    assert status == 500 and b"Traceback" not in body, body


# -- push and pull -------------------------------------------------------------------------------

def test_docker_push_then_pull_through_a_local_registry(docker, made, registry, tmp_path):
    name = f"{registry.host}/apitest/pushed:1"
    made("apitest-push:1", name)
    ctx = context_dir(tmp_path / "ctx", "FROM busybox\nRUN echo pushed > /p.txt\n"
                      "CMD [\"cat\", \"/p.txt\"]\n")
    assert docker("build", "-t", "apitest-push:1", str(ctx)).returncode == 0
    assert docker("tag", "apitest-push:1", name).returncode == 0
    r = docker("push", name)
    assert r.returncode == 0, r.stderr
    assert f"The push refers to repository [{registry.host}/apitest/pushed]" in r.stdout
    assert "1: digest: sha256:" in r.stdout
    digest = r.stdout.split("1: digest: ")[1].split()[0]
    status, _, manifest = registry.get("/v2/apitest/pushed/manifests/1",
                                       {"Accept": "application/vnd.oci.image.manifest.v1+json,"
                                        "application/vnd.docker.distribution.manifest.v2+json"})
    assert status == 200 and len(json.loads(manifest)["layers"]) == 2
    assert docker("rmi", name).returncode == 0
    r = docker("pull", name)
    assert r.returncode == 0, r.stderr
    assert f"Digest: {digest}" in r.stdout
    assert docker("run", "--rm", name).stdout == "pushed\n"
    r = docker("push", f"{registry.host}/apitest/nothere:1")
    assert r.returncode != 0
    assert "An image does not exist locally with the tag" in r.stderr


# -- docker-py -----------------------------------------------------------------------------------

def test_docker_py_build_save_load_commit(client, made, mr, tmp_path):
    import docker as docker_py

    made("apitest-py:1", "apitest-pycommit:1")
    ctx = context_dir(tmp_path / "ctx")
    image, logs = client.images.build(path=str(ctx), tag="apitest-py:1", rm=True)
    assert "apitest-py:1" in image.tags
    assert any("run-output" in m.get("stream", "") for m in logs)
    data = b"".join(image.save())
    client.images.remove("apitest-py:1")
    loaded = client.images.load(data)
    assert [i.id for i in loaded] == [image.id]
    assert mr.ok("run", "--rm", "apitest-py:1") == "hello\nbuilt\n"
    bad = context_dir(tmp_path / "bad", "FROM busybox\nRUN exit 7\n")
    with pytest.raises(docker_py.errors.BuildError, match="returned a non-zero code: 7"):
        client.images.build(path=str(bad), rm=True)
    mr.ok("run", "--name", "apitest-pyc", "busybox", "sh", "-c", "echo py > /py.txt")
    c = client.containers.get("apitest-pyc")
    committed = c.commit("apitest-pycommit", "1", changes=['CMD ["cat", "/py.txt"]'],
                         conf={"Env": ["FROM_BODY=1"], "Labels": {"via": "body"}})
    mr.ok("rm", "apitest-pyc")
    assert "apitest-pycommit:1" in committed.tags
    assert committed.labels["via"] == "body"
    assert "FROM_BODY=1" in committed.attrs["Config"]["Env"]
    assert mr.ok("run", "--rm", "apitest-pycommit:1") == "py\n"
