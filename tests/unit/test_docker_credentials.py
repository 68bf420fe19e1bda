"""Docker's config.json and its credential helpers (image/auth.py DockerConfig, Credentials;
image/credhelper.py), with a helper program the test writes and puts on PATH."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from credhelpers import calls, kept, write_helper
from minirun.errors import RegistryError
from minirun.image.auth import (DOCKER_HUB_KEY, AuthFile, Credentials, DockerConfig,
                                docker_config_path)
from minirun.image.credhelper import Helper


@pytest.fixture
def bindir(tmp_path, monkeypatch):
    d = tmp_path / "bin"
    d.mkdir()
    monkeypatch.setenv("PATH", f"{d}:{os.environ['PATH']}")
    return d


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_path_follows_docker_config_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "dc"))
    assert docker_config_path() == str(tmp_path / "dc" / "config.json")
    monkeypatch.delenv("DOCKER_CONFIG")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert docker_config_path() == str(tmp_path / "home" / ".docker" / "config.json")


def test_login_writes_auths_0600_keeping_other_keys(tmp_path):
    p = tmp_path / "config.json"
    p.write_text(json.dumps({"auths": {"other.example": {"auth": b64("a:b")}},
                             "psFormat": "table {{.ID}}", "detachKeys": "ctrl-x"}))
    os.chmod(p, 0o644)
    cfg = DockerConfig(str(p))
    cfg.login("127.0.0.1:5000", "user", "pw")
    data = json.loads(p.read_text())
    assert data["auths"]["127.0.0.1:5000"] == {"auth": b64("user:pw")}
    assert data["psFormat"] == "table {{.ID}}" and data["detachKeys"] == "ctrl-x"
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["config.json"]  # atomic: no temp file left
    assert cfg.credentials("127.0.0.1:5000") == ("user", "pw")
    assert cfg.logout("127.0.0.1:5000") is True
    assert json.loads(p.read_text())["auths"] == {"other.example": {"auth": b64("a:b")}}


def test_docker_hub_key(tmp_path):
    cfg = DockerConfig(str(tmp_path / "config.json"))
    cfg.login("docker.io", "me", "s")
    assert list(json.loads((tmp_path / "config.json").read_text())["auths"]) == [DOCKER_HUB_KEY]
    assert cfg.credentials("registry-1.docker.io") == ("me", "s")


def test_helper_protocol(bindir):
    write_helper(bindir, "t1")
    h = Helper("t1")
    assert h.get("127.0.0.1:5000") is None  # "credentials not found in native keychain"
    h.store("127.0.0.1:5000", "u", "p")
    assert h.get("127.0.0.1:5000") == ("u", "p")
    assert h.erase("127.0.0.1:5000") is True
    assert h.erase("127.0.0.1:5000") is False
    assert calls(bindir, "t1") == ["get 127.0.0.1:5000", "store 127.0.0.1:5000 u",
                                   "get 127.0.0.1:5000", "erase 127.0.0.1:5000",
                                   "erase 127.0.0.1:5000"]


def test_missing_helper_is_one_line(bindir):
    with pytest.raises(RegistryError, match=r"^credential helper docker-credential-nope: not "
                                            r"found in PATH: install it, or remove it"):
        Helper("nope").get("x.example")


def test_bad_helper_answer(bindir):
    (bindir / "docker-credential-bad").write_text("#!/bin/sh\necho 'keyring locked' >&2\nexit 3\n")
    os.chmod(bindir / "docker-credential-bad", 0o755)
    with pytest.raises(RegistryError, match="docker-credential-bad get r.example: keyring locked"):
        Helper("bad").get("r.example")


def test_creds_store_keeps_the_secret_out_of_the_file(tmp_path, bindir):
    write_helper(bindir, "store1")
    p = tmp_path / "config.json"
    p.write_text(json.dumps({"credsStore": "store1"}))
    cfg = DockerConfig(str(p))
    cfg.login("127.0.0.1:5000", "user", "secret")
    cfg.login("docker.io", "hub", "hubsecret")
    assert json.loads(p.read_text()) == {"credsStore": "store1",
                                         "auths": {"127.0.0.1:5000": {}, DOCKER_HUB_KEY: {}}}
    assert "secret" not in p.read_text()
    assert kept(bindir, "store1") == {"127.0.0.1:5000": ["user", "secret"],
                                      DOCKER_HUB_KEY: ["hub", "hubsecret"]}
    assert cfg.credentials("127.0.0.1:5000") == ("user", "secret")
    assert cfg.credentials("index.docker.io") == ("hub", "hubsecret")
    assert cfg.logout("127.0.0.1:5000") is True
    assert cfg.credentials("127.0.0.1:5000") is None
    assert json.loads(p.read_text())["auths"] == {DOCKER_HUB_KEY: {}}


def test_cred_helpers_per_registry_win_over_creds_store(tmp_path, bindir):
    write_helper(bindir, "per")
    write_helper(bindir, "all")
    p = tmp_path / "config.json"
    p.write_text(json.dumps({"credsStore": "all", "credHelpers": {"127.0.0.1:5000": "per"},
                             "auths": {}}))
    cfg = DockerConfig(str(p))
    cfg.login("127.0.0.1:5000", "u", "p")
    cfg.login("other.example", "o", "q")
    assert kept(bindir, "per") == {"127.0.0.1:5000": ["u", "p"]}
    assert kept(bindir, "all") == {"other.example": ["o", "q"]}


def test_docker_config_first_then_minirun_file(tmp_path, bindir):
    docker = DockerConfig(str(tmp_path / "docker" / "config.json"))
    mine = tmp_path / "root" / "auth.json"
    AuthFile(str(mine)).login("a.example", "old", "1")
    AuthFile(str(mine)).login("b.example", "only-minirun", "2")
    docker.login("a.example", "new", "3")
    creds = Credentials(str(mine), docker)
    assert creds.get("a.example") == ("new", "3")  # Docker's config wins
    assert creds.get("b.example") == ("only-minirun", "2")  # minirun's file: the fallback
    assert creds.get("c.example") is None
    creds.store("c.example", "u", "p")  # login writes Docker's file only
    assert docker.credentials("c.example") == ("u", "p")
    assert AuthFile(str(mine)).credentials("c.example") is None
    assert creds.erase("b.example") is True  # logout forgets it in both
    assert creds.get("b.example") is None
    assert creds.erase("a.example") is True and creds.get("a.example") is None
    assert creds.erase("a.example") is False
