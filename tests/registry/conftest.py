"""Fixtures for the registry client tests: local registries, test images, tiny fake servers.

No root needed. Tests on a real registry skip (with the reason) when docker-registry or skopeo is
missing (scripts/setup installs them), or bcrypt / cryptography for the auth modes; the fake
server tests run everywhere.

    def test_x(open_registry, image):       # docker-registry on 127.0.0.1:<free port>, images pushed
        reg = Registry(open_registry.host, insecure=True)
    def test_y(fake):                       # fake(route) -> a FakeHTTP started on 127.0.0.1:0
        srv = fake(lambda req: (200, {}, b"{}"))

Images in every registry (one storage directory shared by the three modes, pushed once):
busybox:latest (OCI index: linux/amd64 + a fake linux/arm64/v8), busybox:oci (OCI manifest),
busybox:v2s2 (Docker v2 schema 2), busybox:list (Docker manifest list).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import localregistry as lr  # noqa: E402


def _need(*tools: str) -> None:
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install docker-registry skopeo; "
                    "scripts/setup does it)")


def _need_module(name: str) -> None:
    try:
        __import__(name)
    except ImportError:
        pytest.skip(f"python module {name} missing (pip install '.[test]')")


@pytest.fixture(scope="session")
def image(tmp_path_factory) -> dict:
    """The test OCI layout (see localregistry.build_layout): descriptors and blobs by digest."""
    d = tmp_path_factory.mktemp("image")
    rootfs = None
    if Path("/bin/busybox").exists():
        rootfs = d / "rootfs"
        subprocess.run([str(REPO / "scripts" / "build-rootfs"), str(rootfs)], check=True)
    return lr.build_layout(d / "layout", rootfs)


@pytest.fixture(scope="session")
def registry_storage(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("registry-data")


def _start(tmp_path_factory, mode: str, storage: Path) -> lr.LocalRegistry:
    return lr.LocalRegistry(tmp_path_factory.mktemp(f"registry-{mode}"), mode, storage).start()


@pytest.fixture(scope="session")
def open_registry(tmp_path_factory, registry_storage, request):
    """An open registry with the test images pushed by skopeo."""
    _need("docker-registry", "skopeo")
    image = request.getfixturevalue("image")  # only now: no image built for a skipped test
    reg = _start(tmp_path_factory, "open", registry_storage)
    try:
        layout = image["path"]
        lr.skopeo_copy(layout, "multi", f"{reg.host}/busybox:latest", all_=True)
        lr.skopeo_copy(layout, "amd64", f"{reg.host}/busybox:oci")
        lr.skopeo_copy(layout, "amd64", f"{reg.host}/busybox:v2s2", fmt="v2s2")
        lr.skopeo_copy(layout, "multi", f"{reg.host}/busybox:list", fmt="v2s2", all_=True)
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory, registry_storage, open_registry):
    """htpasswd (bcrypt) basic auth over the same storage: lr.USER / lr.PASSWORD."""
    _need_module("bcrypt")
    reg = _start(tmp_path_factory, "basic", registry_storage)
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory, registry_storage, open_registry):
    """Token auth (JWT from tests/registry/tokenserver.py): anonymous pull, lr.USER may push."""
    _need_module("cryptography")
    reg = _start(tmp_path_factory, "token", registry_storage)
    yield reg
    reg.stop()


# ---- fake servers ----------------------------------------------------------------------------

class Request:
    def __init__(self, method: str, path: str, headers, body: bytes) -> None:
        self.method, self.path, self.headers, self.body = method, path, headers, body


class FakeHTTP:
    """An HTTP/1.1 server on 127.0.0.1:<free port> in a thread.

    route(req) returns (status, headers, body), or a callable(handler) that writes the raw
    answer itself (to cut a body short). .requests lists every Request seen.
    """

    def __init__(self, route) -> None:
        self.route = route
        self.requests: list[Request] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10  # a kept-alive client connection never pins a handler thread for long

            def handle_one(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                req = Request(self.command, self.path, self.headers, self.rfile.read(n) if n else b"")
                outer.requests.append(req)
                answer = outer.route(req)
                if callable(answer):
                    answer(self)
                    return
                status, headers, body = answer
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = handle_one

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # A short poll: shutdown() waits for it (0.5 s per server by default).
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def fake():
    servers: list[FakeHTTP] = []

    def make(route) -> FakeHTTP:
        servers.append(FakeHTTP(route))
        return servers[-1]

    yield make
    for s in servers:
        s.stop()
