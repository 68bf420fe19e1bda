"""The API service's X-Registry-Auth: a client's credentials, used for its request only.

dockerd never stores what a client sends in X-Registry-Auth; neither does minirun's service
(credentials it stores come from `minirun login` / POST /auth only). Against the conftest's
basic-auth registry (htpasswd, lr.USER / lr.PASSWORD)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

import localregistry as lr
from polling import poll

MINIRUN = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "minirun")


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=60)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def pull(sock: str, image: str, auth: dict | None) -> list[dict]:
    headers = {}
    if auth is not None:
        headers["X-Registry-Auth"] = base64.urlsafe_b64encode(json.dumps(auth).encode()).decode()
    conn = UnixHTTP(sock)
    try:
        conn.request("POST", f"/v1.43/images/create?fromImage={image}", headers=headers)
        r = conn.getresponse()
        assert r.status == 200
        return [json.loads(line) for line in r.read().splitlines() if line.strip()]
    finally:
        conn.close()


@pytest.fixture
def service(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the API service's tests need root")
    sock = str(tmp_path / "api.sock")
    p = subprocess.Popen([MINIRUN, "--root", str(tmp_path / "root"), "--runroot",
                          str(tmp_path / "run"), "system", "service", "--time", "0", "--host",
                          f"unix://{sock}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert poll(lambda: os.path.exists(sock))
        yield sock, tmp_path / "root"
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 0


def test_x_registry_auth_is_used_for_the_request_and_not_kept(service, basic_registry):
    sock, root = service
    image = f"{basic_registry.host}/busybox:oci"
    anonymous = pull(sock, image, None)
    assert "error" in anonymous[-1]  # the registry wants credentials
    ok = pull(sock, image, {"username": lr.USER, "password": lr.PASSWORD,
                            "serveraddress": basic_registry.host})
    assert "error" not in ok[-1] and ok[-1]["status"].startswith("Status: ")
    stored = [p for p in root.rglob("*") if p.is_file() and lr.PASSWORD in p.read_text(
        errors="ignore")]
    assert stored == []  # nowhere under --root
    again = subprocess.run([MINIRUN, "--root", str(root), "pull", "--insecure-registry",
                            basic_registry.host, f"{basic_registry.host}/busybox:v2s2"],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode != 0  # the CLI has no credentials either: none were stored
