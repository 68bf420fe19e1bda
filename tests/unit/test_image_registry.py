"""minirun.image.registry and platform: the parts that need no server (platforms, challenges,
errors)."""

from __future__ import annotations

import os

import pytest

from minirun.errors import RegistryError
from minirun.image import platform as platform_mod
from minirun.image import registry
from minirun.image.platform import host_platform, parse_platform, select_platform
from minirun.image.registry import blob_path, error_text, is_loopback, parse_challenge

INDEX = {"manifests": [
    {"digest": "sha256:" + "1" * 64, "platform": {"os": "linux", "architecture": "amd64"}},
    {"digest": "sha256:" + "2" * 64, "platform": {"os": "linux", "architecture": "arm64",
                                                  "variant": "v8"}},
    {"digest": "sha256:" + "3" * 64, "platform": {"os": "linux", "architecture": "arm",
                                                  "variant": "v6"}},
    {"digest": "sha256:" + "4" * 64, "platform": {"os": "linux", "architecture": "arm"}},
    {"digest": "sha256:" + "5" * 64, "platform": {"os": "unknown", "architecture": "unknown"}},
]}


def fake_machine(monkeypatch, machine: str) -> None:
    real = os.uname()
    monkeypatch.setattr(platform_mod.os, "uname", lambda: os.uname_result(
        (real.sysname, real.nodename, real.release, real.version, machine)))


@pytest.mark.parametrize("machine, platform", [
    ("x86_64", ("linux", "amd64", "")), ("aarch64", ("linux", "arm64", "v8")),
    ("armv7l", ("linux", "arm", "v7")), ("i686", ("linux", "386", "")),
    ("s390x", ("linux", "s390x", ""))])
def test_host_platform(monkeypatch, machine, platform):
    fake_machine(monkeypatch, machine)
    assert host_platform() == platform


def test_select_platform_host_default(monkeypatch):
    fake_machine(monkeypatch, "x86_64")
    assert select_platform(INDEX)["digest"].endswith("1" * 64)
    fake_machine(monkeypatch, "aarch64")
    assert select_platform(INDEX)["digest"].endswith("2" * 64)
    fake_machine(monkeypatch, "armv7l")  # arm without a variant means v7
    assert select_platform(INDEX)["digest"].endswith("4" * 64)


def test_select_platform_explicit():
    assert select_platform(INDEX, "linux", "arm64", "")["digest"].endswith("2" * 64)
    assert select_platform(INDEX, "linux", "arm64", "v8")["digest"].endswith("2" * 64)
    assert select_platform(INDEX, "linux", "arm", "v6")["digest"].endswith("3" * 64)
    assert select_platform(INDEX, "linux", "arm")["digest"].endswith("4" * 64)  # no variant first
    arm64_bare = {"manifests": [{"digest": "d", "platform": {"os": "linux", "architecture": "arm64"}}]}
    assert select_platform(arm64_bare, "linux", "arm64", "v8")["digest"] == "d"  # v8 is implied


def test_select_platform_error_lists_platforms_but_not_attestations():
    with pytest.raises(RegistryError) as e:
        select_platform(INDEX, "windows", "amd64")
    assert str(e.value) == ("no image for platform windows/amd64 (available: linux/amd64, "
                            "linux/arm64/v8, linux/arm/v6, linux/arm)")
    with pytest.raises(RegistryError, match=r"available: none\)$"):
        select_platform({"manifests": []}, "linux", "amd64")


def test_parse_platform():
    assert parse_platform("linux/arm64/v8") == ("linux", "arm64", "v8")
    assert parse_platform("Linux/AMD64") == ("linux", "amd64", "")
    for bad in ("amd64", "linux/", "a/b/c/d"):
        with pytest.raises(RegistryError, match="invalid platform"):
            parse_platform(bad)


def test_parse_challenge():
    h = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",' \
        'scope="repository:library/alpine:pull,push"'
    assert parse_challenge(h) == {"scheme": "bearer", "realm": "https://auth.docker.io/token",
                                  "service": "registry.docker.io",
                                  "scope": "repository:library/alpine:pull,push"}
    assert parse_challenge('Basic realm="Registry Realm"') == {"scheme": "basic",
                                                              "realm": "Registry Realm"}
    assert parse_challenge('Bearer realm=http://x/t, error="insufficient_scope"')["realm"] == "http://x/t"
    assert parse_challenge("") is None


def test_error_text():
    body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}'
    assert error_text(404, "Not Found", body) == "manifest unknown"
    two = b'{"errors":[{"code":"DENIED"},{"code":"X","message":"a\\nb"}]}'
    assert error_text(403, "Forbidden", two) == "DENIED; a b"
    assert error_text(502, "Bad Gateway", b"<html>") == "HTTP 502 Bad Gateway"
    assert len(error_text(500, "", b'{"errors":[{"message":"' + b"x" * 1000 + b'"}]}')) == 300


def test_is_loopback():
    for h in ("localhost", "localhost:5000", "127.0.0.1", "127.1.2.3:80", "[::1]:5000", "::1"):
        assert is_loopback(h), h
    for h in ("docker.io", "10.0.0.1:5000", "127.example.com", "[fe80::1]:5000"):
        assert not is_loopback(h), h


def test_blob_path_refuses_bad_digests():
    assert blob_path("/b", "sha256:" + "a" * 64) == "/b/sha256/" + "a" * 64
    for bad in ("sha256:../../etc", "md5:" + "a" * 32, "sha256:" + "A" * 64):
        with pytest.raises(RegistryError, match="invalid digest"):
            blob_path("/b", bad)


def test_docker_hub_api_host():
    assert registry.Registry("docker.io").api_host == "registry-1.docker.io"
    assert registry.Registry("docker.io").scheme == "https"
    assert registry.Registry("127.0.0.1:5000", insecure=True).scheme == "http"
