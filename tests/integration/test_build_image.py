"""scripts/build-image: the offline demo image is a valid, reproducible OCI image layout."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def build(out: Path, *flags: str) -> dict:
    subprocess.run([str(REPO / "scripts" / "build-image"), str(out), *flags], check=True,
                   capture_output=True)
    return json.loads((out / "index.json").read_text())


def test_same_busybox_gives_the_same_digests(tmp_path):
    a, b = build(tmp_path / "a"), build(tmp_path / "b")
    assert a == b
    top = a["manifests"][0]
    assert top["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    blob = tmp_path / "a" / "blobs" / "sha256" / top["digest"].split(":")[1]
    manifest = json.loads(blob.read_text())
    assert manifest["layers"][0]["mediaType"].endswith("tar+gzip")


def test_multi_arch_index_names_two_platforms(tmp_path):
    index = build(tmp_path / "m", "--multi-arch")
    top = index["manifests"][0]
    assert top["mediaType"] == "application/vnd.oci.image.index.v1+json"
    inner = json.loads((tmp_path / "m" / "blobs" / "sha256" / top["digest"].split(":")[1]).read_text())
    assert sorted(m["platform"]["architecture"] for m in inner["manifests"]) == ["amd64", "arm64"]


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
def test_skopeo_accepts_it(tmp_path):
    build(tmp_path / "s")
    r = subprocess.run(["skopeo", "inspect", f"oci:{tmp_path / 's'}:latest"], capture_output=True,
                       text=True, check=True)
    info = json.loads(r.stdout)
    assert info["Os"] == "linux" and len(info["Layers"]) == 1
