"""`minirun manifest inspect` against the conftest's open registry (busybox pushed by skopeo as
an OCI index, an OCI manifest, a Docker v2s2 manifest and a Docker list): what the registry
holds, printed as Docker prints it, and nothing pulled."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

MINIRUN = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "minirun")
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture
def minirun(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if "proxy" not in k.lower() and not k.startswith("MINIRUN_")}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([MINIRUN, "--root", str(tmp_path / "root"), *args], env=env,
                              capture_output=True, text=True, timeout=60)
    yield run
    assert run("images", "-q").stdout == ""  # nothing was pulled


def test_a_manifest_and_an_index_as_the_registry_holds_them(minirun, open_registry, image):
    r = minirun("manifest", "inspect", f"{open_registry.host}/busybox:oci")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('{\n\t"schemaVersion": 2')  # tabs, as docker prints it
    doc = json.loads(r.stdout)
    assert doc == json.loads(image["blobs"][image["amd64"]["digest"]])
    index = json.loads(minirun("manifest", "inspect", f"{open_registry.host}/busybox").stdout)
    assert index["mediaType"] == OCI_INDEX
    assert {m["platform"]["architecture"] for m in index["manifests"]} >= {"amd64", "arm64"}


def test_verbose_gives_descriptors_raw_bytes_and_each_platform(minirun, open_registry):
    host = open_registry.host
    one = json.loads(minirun("manifest", "inspect", "-v", f"{host}/busybox:v2s2").stdout)
    raw = base64.b64decode(one["Raw"])
    assert one["Ref"] == f"{host}/busybox:v2s2"
    assert one["Descriptor"] == {"mediaType": DOCKER_MANIFEST, "size": len(raw),
                                 "digest": "sha256:" + hashlib.sha256(raw).hexdigest()}
    assert one["SchemaV2Manifest"] == json.loads(raw)
    many = json.loads(minirun("manifest", "inspect", "-v", f"{host}/busybox:latest").stdout)
    assert isinstance(many, list) and len(many) >= 2
    for e in many:
        raw = base64.b64decode(e["Raw"])
        assert e["Ref"] == f"{host}/busybox@{e['Descriptor']['digest']}"
        assert e["Descriptor"]["digest"] == "sha256:" + hashlib.sha256(raw).hexdigest()
        assert e["Descriptor"]["platform"]["os"] == "linux"
        assert e["OCIManifest"]["mediaType"] == OCI_MANIFEST


def test_an_unknown_tag_is_one_line(minirun, open_registry):
    r = minirun("manifest", "inspect", f"{open_registry.host}/busybox:nope")
    assert r.returncode == 125
    assert r.stderr.count("\n") == 1 and "busybox:nope" in r.stderr
