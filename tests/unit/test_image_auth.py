"""minirun.image.auth: a Docker-compatible credentials file."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from minirun.errors import RegistryError
from minirun.image.auth import DOCKER_HUB_KEY, AuthFile, default_path, normalize_host


def test_default_path(monkeypatch):
    monkeypatch.delenv("MINIRUN_AUTH_FILE", raising=False)
    assert default_path("/var/lib/minirun") == "/var/lib/minirun/auth.json"
    monkeypatch.setenv("MINIRUN_AUTH_FILE", "/tmp/x.json")
    assert default_path("/var/lib/minirun") == "/tmp/x.json"


def test_login_writes_docker_format_with_mode_0600(tmp_path):
    a = AuthFile(str(tmp_path / "sub" / "auth.json"))
    assert a.credentials("127.0.0.1:5000") is None
    a.login("127.0.0.1:5000", "user", "pa:ss")
    data = json.loads((tmp_path / "sub" / "auth.json").read_text())
    assert data == {"auths": {"127.0.0.1:5000": {"auth": base64.b64encode(b"user:pa:ss").decode()}}}
    assert stat.S_IMODE(os.stat(tmp_path / "sub" / "auth.json").st_mode) == 0o600
    assert a.credentials("127.0.0.1:5000") == ("user", "pa:ss")
    assert sorted(os.listdir(tmp_path / "sub")) == ["auth.json"]  # no temp file left


def test_login_replaces_and_logout_removes_keeping_other_keys(tmp_path):
    p = tmp_path / "config.json"
    p.write_text(json.dumps({"auths": {"https://reg.example:5000/v2/": {"auth": "eDp5"},
                                       "other.example": {"auth": "YTpi"}},
                             "credsStore": "desktop"}))
    a = AuthFile(str(p))
    assert a.credentials("reg.example:5000") == ("x", "y")  # URL keys match by host:port
    a.login("reg.example:5000", "new", "pw")
    data = json.loads(p.read_text())
    assert set(data["auths"]) == {"reg.example:5000", "other.example"}
    assert data["credsStore"] == "desktop"
    assert a.logout("reg.example:5000") is True
    assert a.logout("reg.example:5000") is False
    assert a.credentials("other.example") == ("a", "b")


def test_docker_hub_uses_dockers_key(tmp_path):
    a = AuthFile(str(tmp_path / "a.json"))
    a.login("docker.io", "me", "secret")
    assert list(json.loads((tmp_path / "a.json").read_text())["auths"]) == [DOCKER_HUB_KEY]
    for alias in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        assert a.credentials(alias) == ("me", "secret")
    assert normalize_host("HTTPS://Index.Docker.IO/v1/") == "docker.io"


def test_username_password_fields_are_read(tmp_path):
    p = tmp_path / "a.json"
    p.write_text(json.dumps({"auths": {"r.example": {"username": "u", "password": "p"}}}))
    assert AuthFile(str(p)).credentials("r.example") == ("u", "p")


@pytest.mark.parametrize("content", ["{not json", "[]", '{"auths": []}'])
def test_broken_file_is_a_one_line_error(tmp_path, content):
    p = tmp_path / "a.json"
    p.write_text(content)
    with pytest.raises(RegistryError, match=f"auth file {p}: "):
        AuthFile(str(p)).credentials("x")


def test_bad_auth_entry(tmp_path):
    p = tmp_path / "a.json"
    p.write_text(json.dumps({"auths": {"r.example": {"auth": base64.b64encode(b"nocolon").decode()}}}))
    with pytest.raises(RegistryError, match="is not user:password"):
        AuthFile(str(p)).credentials("r.example")
    with pytest.raises(RegistryError, match="cannot contain ':'"):
        AuthFile(str(p)).login("r.example", "a:b", "c")
