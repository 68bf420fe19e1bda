"""Image references: Docker's grammar and normalization (distribution/reference's test tables)."""

from __future__ import annotations

import dataclasses

import pytest

from minirun.errors import MinirunError, ReferenceError
from minirun.image.reference import Reference, parse

D1 = "sha256:" + "86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa"
D2 = "sha256:" + "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"
HEX64 = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a"


@pytest.mark.parametrize("text, registry, repository, tag, digest", [
    ("alpine", "docker.io", "library/alpine", "latest", None),
    ("alpine:3.19", "docker.io", "library/alpine", "3.19", None),
    ("library/alpine", "docker.io", "library/alpine", "latest", None),
    ("docker.io/alpine", "docker.io", "library/alpine", "latest", None),
    ("docker.io/library/alpine", "docker.io", "library/alpine", "latest", None),
    ("index.docker.io/alpine", "docker.io", "library/alpine", "latest", None),
    ("index.docker.io/library/alpine:edge", "docker.io", "library/alpine", "edge", None),
    ("user/repo", "docker.io", "user/repo", "latest", None),
    ("docker/docker", "docker.io", "docker/docker", "latest", None),
    ("library/foo/bar", "docker.io", "library/foo/bar", "latest", None),
    ("store/foo/bar", "docker.io", "store/foo/bar", "latest", None),
    ("registry:5000/x/y:tag", "registry:5000", "x/y", "tag", None),
    ("localhost/x", "localhost", "x", "latest", None),
    ("localhost:5000/x", "localhost:5000", "x", "latest", None),
    ("localhost", "docker.io", "library/localhost", "latest", None),  # one component: a Hub name
    ("localhost:5000", "docker.io", "library/localhost", "5000", None),  # ... with a tag
    ("127.0.0.1:5000/busybox:latest", "127.0.0.1:5000", "busybox", "latest", None),
    ("127.0.0.1:5000/library/debian", "127.0.0.1:5000", "library/debian", "latest", None),
    ("example.com/privatebase", "example.com", "privatebase", "latest", None),
    ("example.com:8000/private/moonbase", "example.com:8000", "private/moonbase", "latest", None),
    ("test_com/foo", "docker.io", "test_com/foo", "latest", None),  # no "." or ":": not a host
    ("test-com:8080/foo", "test-com:8080", "foo", "latest", None),
    ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo", "latest", None),
    ("Example.COM/foo", "Example.COM", "foo", "latest", None),  # hosts may be uppercase
    ("[fc00::1]:5000/docker", "[fc00::1]:5000", "docker", "latest", None),
    ("[fc00:1:2:3:4:5:6:7]:5000/library/debian", "[fc00:1:2:3:4:5:6:7]:5000", "library/debian", "latest", None),
    ("[::1]/x", "[::1]", "x", "latest", None),
    ("192.168.0.1", "docker.io", "library/192.168.0.1", "latest", None),
    ("192.168.0.1:80", "docker.io", "library/192.168.0.1", "80", None),
    ("192.168.0.1:8/debian", "192.168.0.1:8", "debian", "latest", None),
    ("thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "docker.io",
     "library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "latest", None),
    (f"docker.io/{HEX64}", "docker.io", f"library/{HEX64}", "latest", None),  # a host removes the ambiguity
    (HEX64[:63], "docker.io", f"library/{HEX64[:63]}", "latest", None),
    ("dbcc1", "docker.io", "library/dbcc1", "latest", None),
    ("docker-rules/docker", "docker.io", "docker-rules/docker", "latest", None),
    ("docker---rules/docker", "docker.io", "docker---rules/docker", "latest", None),
    ("d/docker", "docker.io", "d/docker", "latest", None),
    ("jess/t", "docker.io", "jess/t", "latest", None),
    ("dock__er/docker", "docker.io", "dock__er/docker", "latest", None),
    ("a_b__c-d/e.f", "docker.io", "a_b__c-d/e.f", "latest", None),
    ("a.b/c", "a.b", "c", "latest", None),  # a "." makes the first part a host
    ("alpine:Latest", "docker.io", "library/alpine", "Latest", None),  # tags may be uppercase
    ("alpine:_x", "docker.io", "library/alpine", "_x", None),
    ("alpine:v1.2-rc_3", "docker.io", "library/alpine", "v1.2-rc_3", None),
    ("alpine:" + "t" * 128, "docker.io", "library/alpine", "t" * 128, None),
    (f"redis@{D2}", "docker.io", "library/redis", None, D2),
    (f"dmcgowan/myapp@{D2}", "docker.io", "dmcgowan/myapp", None, D2),
    (f"busybox:latest@{D1}", "docker.io", "library/busybox", "latest", D1),
    (f"127.0.0.1:5000/x/y:v1@{D1}", "127.0.0.1:5000", "x/y", "v1", D1),
    ("x@sha512:" + "ab" * 64, "docker.io", "library/x", None, "sha512:" + "ab" * 64),
    ("sha256:abcdef", "docker.io", "library/sha256", "abcdef", None),  # Docker's reading too
])
def test_valid_references(text, registry, repository, tag, digest):
    ref = parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert Reference.parse(text) == ref
    assert parse(ref.name) == ref  # the canonical form is a fixed point
    assert parse(ref.familiar) == ref


@pytest.mark.parametrize("text, name, familiar", [
    ("alpine", "docker.io/library/alpine:latest", "alpine:latest"),
    ("docker.io/library/alpine:3", "docker.io/library/alpine:3", "alpine:3"),
    ("user/repo", "docker.io/user/repo:latest", "user/repo:latest"),
    ("library/foo/bar", "docker.io/library/foo/bar:latest", "library/foo/bar:latest"),
    ("127.0.0.1:5000/busybox:latest", "127.0.0.1:5000/busybox:latest", "127.0.0.1:5000/busybox:latest"),
    ("127.0.0.1:5000/library/debian", "127.0.0.1:5000/library/debian:latest",
     "127.0.0.1:5000/library/debian:latest"),  # library/ is only dropped on Docker Hub
    ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
    (f"busybox:latest@{D1}", f"docker.io/library/busybox:latest@{D1}", f"busybox:latest@{D1}"),
    (f"redis@{D2}", f"docker.io/library/redis@{D2}", f"redis@{D2}"),
])
def test_name_and_familiar(text, name, familiar):
    ref = parse(text)
    assert ref.name == name == str(ref)
    assert ref.familiar == familiar


def test_repo_and_familiar_repo():
    ref = parse(f"alpine:3@{D1}")
    assert ref.repo == "docker.io/library/alpine"
    assert ref.familiar_repo == "alpine"
    assert parse("ghcr.io/a/b").familiar_repo == "ghcr.io/a/b"


@pytest.mark.parametrize("text, problem", [
    ("", "at least one component"),
    (HEX64, "image ID"),
    ("Alpine", "repository name (library/Alpine) must be lowercase"),
    ("docker/Docker", "must be lowercase"),
    ("docker.io/docker/Docker", "must be lowercase"),
    ("127.0.0.1:5000/Busybox", "must be lowercase"),
    ("Docker/docker", "must be lowercase"),  # the brief's rule: an uppercase first part is no host
    ("https://github.com/docker/docker", "registry (https:)"),
    ("-docker", "component (-docker)"),
    ("-docker/docker", "component"),
    ("-docker.io/docker/docker", "registry (-docker.io)"),
    ("docker-/docker", "component"),
    ("-docker-/docker", "component"),
    ("docker///docker", "empty path component"),
    ("docker.io/docker///docker", "empty path component"),
    ("docker/", "empty path component"),
    ("/alpine", "empty path component"),
    ("____/____", "component"),
    ("_docker/_docker", "component"),
    ("dock..er/docker", "registry (dock..er)"),  # a "." makes it a host, and not a valid one
    ("dock_.er/docker", "registry"),
    ("dock-.er/docker", "registry"),
    ("x/dock..er", "component (dock..er)"),
    ("x/dock_.er", "component"),
    ("x/dock-.er", "component"),
    ("a b", "component"),
    ("[fc00::1]", "tag (1])"),
    ("[fc00::1]:5000", "component"),
    ("fc00::1:5000/debian", "registry"),
    ("[fe80::1%eth0]:5000/debian", "registry"),
    ("[2001:db8:3:4::192.0.2.33]:5000/debian", "registry"),
    ("registry:port/x", "registry"),
    ("x" * 256, "more than 255 characters"),
    ("a/" + "b" * 254, "more than 255 characters"),
    ("alpine:", "tag ()"),
    ("alpine:-x", "tag (-x)"),
    ("alpine:.x", "tag (.x)"),
    ("alpine:" + "t" * 129, "tag ("),
    ("alpine:a+b", "tag (a+b)"),
    (":tag", "empty path component"),
    ("alpine@", "digest ()"),
    ("alpine@sha256:abc", "digest (sha256:abc)"),
    ("alpine@sha256:" + "a" * 63, "64 hex digits, not 63"),
    ("alpine@sha256:" + "a" * 65, "64 hex digits, not 65"),
    ("alpine@sha256:" + "A" * 64, "lowercase"),
    ("alpine@md5:" + "a" * 32, "unsupported digest algorithm (md5)"),
    (f"alpine@{D1}@{D2}", "digest ("),
    (f"@{D1}", "empty path component"),
    (f"alpine:tag@{D1[:-1]}", "not 63"),
])
def test_invalid_references(text, problem):
    with pytest.raises(ReferenceError) as err:
        parse(text)
    msg = str(err.value)
    assert msg.startswith("invalid reference format: ")
    assert problem in msg
    assert f'("{text}")' in msg  # names the reference as typed
    assert "\n" not in msg
    assert err.value.exit_code == 125
    assert isinstance(err.value, MinirunError)
    assert err.value.reference == text


@pytest.mark.parametrize("text, host", [
    ("alpine", "registry-1.docker.io"),
    ("index.docker.io/library/alpine", "registry-1.docker.io"),
    ("ghcr.io/a/b", "ghcr.io"),
    ("127.0.0.1:5000/busybox", "127.0.0.1:5000"),
    ("[::1]:5000/x", "[::1]:5000"),
])
def test_api_host(text, host):
    assert parse(text).api_host == host


@pytest.mark.parametrize("text, insecure", [
    ("localhost/x", True),
    ("localhost:5000/x", True),
    ("127.0.0.1:5000/busybox", True),
    ("127.1.2.3/x", True),
    ("[::1]:5000/x", True),
    ("[::1]/x", True),
    ("alpine", False),
    ("registry:5000/x", False),
    ("10.0.0.1:5000/x", False),
    ("192.168.0.1:8/debian", False),
    ("[fc00::1]:5000/x", False),
    ("localhost.example.com/x", False),
    ("128.0.0.1/x", False),
])
def test_insecure_default(text, insecure):
    assert parse(text).insecure_default is insecure


def test_manifest_ref_prefers_the_digest():
    assert parse("alpine").manifest_ref == "latest"
    assert parse("alpine:3").manifest_ref == "3"
    assert parse(f"alpine@{D1}").manifest_ref == D1
    assert parse(f"alpine:3@{D1}").manifest_ref == D1  # digest wins for pulling ...
    assert parse(f"alpine:3@{D1}").tag == "3"  # ... the tag is kept for naming


def test_with_tag_and_with_digest():
    ref = parse(f"alpine:3@{D1}")
    assert ref.with_tag("edge").name == "docker.io/library/alpine:edge"
    assert ref.with_digest(D2).name == f"docker.io/library/alpine@{D2}"
    assert ref.with_digest(D2).familiar == f"alpine@{D2}"
    assert ref.name == f"docker.io/library/alpine:3@{D1}"  # unchanged: references are values
    with pytest.raises(ReferenceError, match="tag must match"):
        ref.with_tag("-bad")
    with pytest.raises(ReferenceError, match="digest"):
        ref.with_digest("sha256:short")


def test_references_are_frozen_and_hashable():
    ref = parse("alpine")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.tag = "x"  # type: ignore[misc]
    assert {ref, parse("docker.io/library/alpine:latest")} == {ref}
    assert ref != parse("alpine:3")
