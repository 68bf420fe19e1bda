"""The registry client against Debian's docker-registry: open, basic auth and token auth."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

import localregistry as lr
from minirun.errors import RegistryError
from minirun.image.platform import select_platform
from minirun.image.registry import (DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST,
                                    Registry, blob_path, fetch_blobs)

CREDS = (lr.USER, lr.PASSWORD)


@pytest.fixture
def reg(open_registry):
    r = Registry(open_registry.host, insecure=True, backoff=0.01)
    yield r
    r.close()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---- manifests -------------------------------------------------------------------------------

@pytest.mark.parametrize("tag, media_type", [("latest", OCI_INDEX), ("oci", OCI_MANIFEST),
                                             ("v2s2", DOCKER_MANIFEST), ("list", DOCKER_LIST)])
def test_manifest_by_tag_has_the_type_and_digest_of_its_bytes(reg, open_registry, tag, media_type):
    m = reg.get_manifest("busybox", tag)
    assert m.media_type == media_type
    assert m.digest == sha(m.raw_bytes)
    _, headers, _ = open_registry.get(f"/v2/busybox/manifests/{tag}", {"Accept": media_type})
    assert headers["Docker-Content-Digest"] == m.digest
    assert m.is_index == (media_type in (OCI_INDEX, DOCKER_LIST))


def test_oci_content_is_served_as_pushed(reg, image):
    assert reg.get_manifest("busybox", "latest").digest == image["multi"]["digest"]
    assert reg.get_manifest("busybox", "oci").digest == image["amd64"]["digest"]


def test_manifest_by_digest(reg, image):
    digest = image["amd64"]["digest"]
    m = reg.get_manifest("busybox", digest)
    assert m.digest == digest
    assert m.raw_bytes == image["blobs"][digest]
    assert m.json["config"]["mediaType"] == lr.OCI_CONFIG


@pytest.mark.parametrize("tag", ["latest", "list"])
def test_index_platform_selection(reg, image, tag):
    index = reg.get_manifest("busybox", tag)
    amd64 = select_platform(index.json, "linux", "amd64")
    arm64 = select_platform(index.json, "linux", "arm64")  # the index says v8: any variant fits
    assert select_platform(index.json, "linux", "arm64", "v8") == arm64
    child = reg.get_manifest("busybox", amd64["digest"])
    assert child.media_type == (OCI_MANIFEST if tag == "latest" else DOCKER_MANIFEST)
    assert child.media_type == amd64["mediaType"]
    assert reg.get_manifest("busybox", arm64["digest"]).json["layers"][0]["size"] > 0
    if tag == "latest":
        assert amd64["digest"] == image["amd64"]["digest"]


def test_no_matching_platform_lists_the_available_ones(reg):
    index = reg.get_manifest("busybox", "latest")
    with pytest.raises(RegistryError) as e:
        select_platform(index.json, "linux", "s390x", what="pull x/busybox:latest")
    assert str(e.value) == ("pull x/busybox:latest: no image for platform linux/s390x "
                            "(available: linux/amd64, linux/arm64/v8)")
    with pytest.raises(RegistryError, match="linux/arm64/v7"):
        select_platform(index.json, "linux", "arm64", "v7")


def test_unknown_tag_and_repository_are_one_line_errors(reg, open_registry):
    with pytest.raises(RegistryError) as e:
        reg.get_manifest("busybox", "nosuch")
    assert str(e.value) == f"pull {open_registry.host}/busybox:nosuch: manifest unknown"
    with pytest.raises(RegistryError) as e:
        reg.get_manifest("nosuch", "latest")
    assert str(e.value) == f"pull {open_registry.host}/nosuch:latest: manifest unknown"
    assert e.value.exit_code == 125


def test_connection_refused():
    port = lr.free_port()
    r = Registry(f"127.0.0.1:{port}", insecure=True, backoff=0.01)
    with pytest.raises(RegistryError) as e:
        r.get_manifest("busybox", "latest")
    assert str(e.value) == f"cannot reach registry 127.0.0.1:{port}: connection refused"


def test_bad_names_never_reach_the_registry(reg):
    for repo, ref in [("../x", "latest"), ("busybox", "a/../../b"), ("busybox", "sha256:zz"),
                      ("Busybox", "latest")]:
        with pytest.raises(RegistryError, match="invalid"):
            reg.get_manifest(repo, ref)


# ---- blobs -----------------------------------------------------------------------------------

def _image_blobs(m) -> list[dict]:
    return [m.json["config"], *m.json["layers"]]


@pytest.mark.parametrize("tag", ["oci", "v2s2"])
def test_fetch_blobs_verified(reg, image, tmp_path, tag):
    m = reg.get_manifest("busybox", tag)
    descs = _image_blobs(m)
    seen: dict[str, int] = {}
    got = fetch_blobs(reg, "busybox", descs, str(tmp_path / "blobs"),
                      progress=lambda d, n, total: seen.__setitem__(d, n))
    assert sorted(got) == sorted(d["digest"] for d in descs)
    for d in descs:
        data = open(got[d["digest"]], "rb").read()
        assert sha(data) == d["digest"] and len(data) == d["size"]
        assert seen[d["digest"]] == d["size"]
        if tag == "oci":  # skopeo kept our blobs byte for byte
            assert data == image["blobs"][d["digest"]]
    # Nothing but the blobs: no temp files left next to them.
    assert sorted(os.listdir(tmp_path / "blobs" / "sha256")) == sorted(
        d["digest"].split(":")[1] for d in descs)


def test_fetch_blobs_skips_what_the_store_has(reg, tmp_path):
    descs = _image_blobs(reg.get_manifest("busybox", "oci"))
    have = {descs[1]["digest"]}
    got = fetch_blobs(reg, "busybox", descs + descs, str(tmp_path), workers=2,
                      have=lambda d: d in have)
    assert sorted(got) == sorted(d["digest"] for d in descs if d["digest"] not in have)
    assert not os.path.exists(blob_path(str(tmp_path), descs[1]["digest"]))


def test_unknown_blob_fails_and_keeps_nothing(reg, open_registry, tmp_path):
    digest = sha(b"never pushed")
    assert reg.blob_exists("busybox", digest) is False
    with pytest.raises(RegistryError) as e:
        reg.fetch_blob("busybox", digest, str(tmp_path / "blob"))
    assert str(e.value) == f"pull {open_registry.host}/busybox@{digest}: blob unknown to registry"
    assert os.listdir(tmp_path) == []


def test_wrong_expected_size_fails_and_keeps_nothing(reg, tmp_path):
    config = reg.get_manifest("busybox", "oci").json["config"]
    assert reg.blob_exists("busybox", config["digest"])
    with pytest.raises(RegistryError, match="more than the 10 bytes"):
        reg.fetch_blob("busybox", config["digest"], str(tmp_path / "c"), expected_size=10)
    with pytest.raises(RegistryError, match="size mismatch"):
        reg.fetch_blob("busybox", config["digest"], str(tmp_path / "c"),
                       expected_size=config["size"] + 1)
    assert os.listdir(tmp_path) == []


# ---- push ------------------------------------------------------------------------------------

def _push_image(r: Registry, repo: str, image: dict, tmp_path, tag: str = "pushed") -> str:
    manifest_bytes = image["blobs"][image["amd64"]["digest"]]
    manifest = json.loads(manifest_bytes)
    for d in [manifest["config"], *manifest["layers"]]:
        p = tmp_path / d["digest"].split(":")[1]
        p.write_bytes(image["blobs"][d["digest"]])
        r.upload_blob(repo, str(p), d["digest"])
    return r.put_manifest(repo, tag, manifest_bytes, OCI_MANIFEST)


def test_push_blob_and_manifest_round_trip(reg, image, tmp_path):
    digest = _push_image(reg, "pushed/open", image, tmp_path)
    assert digest == image["amd64"]["digest"]
    m = reg.get_manifest("pushed/open", "pushed")
    assert m.digest == digest and m.raw_bytes == image["blobs"][digest]
    # Pushed again: every blob is there already, nothing is uploaded.
    layer = m.json["layers"][0]["digest"]
    (tmp_path / "again").write_bytes(image["blobs"][layer])
    assert reg.upload_blob("pushed/open", str(tmp_path / "again"), layer) is False


def test_push_of_a_blob_with_the_wrong_digest_is_refused(reg, tmp_path):
    (tmp_path / "b").write_bytes(b"some bytes")
    with pytest.raises(RegistryError, match="provided digest did not match uploaded content"):
        reg.upload_blob("pushed/bad", str(tmp_path / "b"), sha(b"other bytes"))


def test_push_of_an_index_naming_missing_manifests_is_refused(reg, image):
    index = image["blobs"][image["multi"]["digest"]]
    with pytest.raises(RegistryError) as e:
        reg.put_manifest("pushed/empty", "latest", index, OCI_INDEX)
    assert str(e.value).startswith(f"push {reg.host}/pushed/empty:latest: ")
    assert "\n" not in str(e.value)


# ---- basic auth ------------------------------------------------------------------------------

def test_basic_auth_without_credentials(basic_registry):
    r = Registry(basic_registry.host, insecure=True)
    r.ping()  # a 401 from /v2/ still is a live registry
    with pytest.raises(RegistryError) as e:
        r.get_manifest("busybox", "latest")
    assert str(e.value) == (f"pull {basic_registry.host}/busybox:latest: unauthorized: the "
                            f"repository does not exist or needs `minirun login {basic_registry.host}`")


def test_basic_auth_with_wrong_credentials(basic_registry):
    r = Registry(basic_registry.host, insecure=True, credentials=(lr.USER, "wrong"))
    for call in (r.ping, lambda: r.get_manifest("busybox", "latest")):
        with pytest.raises(RegistryError, match=r"unauthorized: check `minirun login 127\.0\.0\.1:"):
            call()


def test_basic_auth_with_credentials(basic_registry, image, tmp_path):
    with Registry(basic_registry.host, insecure=True, credentials=CREDS) as r:
        r.ping()
        m = r.get_manifest("busybox", "oci")
        got = fetch_blobs(r, "busybox", _image_blobs(m), str(tmp_path / "blobs"))
        assert len(got) == 3
        assert _push_image(r, "pushed/basic", image, tmp_path) == image["amd64"]["digest"]


# ---- token auth ------------------------------------------------------------------------------

def test_token_auth_anonymous_pull(token_registry, tmp_path):
    with Registry(token_registry.host, insecure=True) as r:
        m = r.get_manifest("busybox", "oci")
        fetch_blobs(r, "busybox", _image_blobs(m), str(tmp_path), workers=3)
        r.get_manifest("busybox", "latest")
    asked = [p for p in token_registry.token_requests() if "busybox" in p]
    # One token for the scope, fetched once and reused by the manifest and the blob requests
    # (the workers fetch theirs with the cached token too).
    assert asked == ["/token?service=minirun-registry&scope=repository%3Abusybox%3Apull"]


def test_token_auth_anonymous_push_is_unauthorized(token_registry, image, tmp_path):
    r = Registry(token_registry.host, insecure=True)
    with pytest.raises(RegistryError) as e:
        _push_image(r, "pushed/anon", image, tmp_path)
    assert "unauthorized" in str(e.value)
    assert str(e.value).startswith(f"push {token_registry.host}/pushed/anon@sha256:")


def test_token_auth_push_asks_for_push_scope(token_registry, image, tmp_path):
    with Registry(token_registry.host, insecure=True, credentials=CREDS) as r:
        r.ping()
        assert _push_image(r, "pushed/token", image, tmp_path) == image["amd64"]["digest"]
        # The pull,push token serves pulls of that repository too: no new token.
        before = len(token_registry.token_requests())
        assert r.get_manifest("pushed/token", "pushed").digest == image["amd64"]["digest"]
        assert len(token_registry.token_requests()) == before
    assert ("/token?service=minirun-registry&scope=repository%3Apushed%2Ftoken%3Apull%2Cpush"
            in token_registry.token_requests())


def test_token_auth_wrong_password(token_registry):
    r = Registry(token_registry.host, insecure=True, credentials=(lr.USER, "wrong"))
    with pytest.raises(RegistryError) as e:
        r.get_manifest("busybox", "latest")
    assert str(e.value) == (f"pull {token_registry.host}/busybox:latest: unauthorized: "
                            f"check `minirun login {token_registry.host}`")
