"""Build small images straight into a Store (no registry): blobs, a layer unpacked by
apply_layer from a tiny tar, a config with Cmd/Env/Labels/history, a manifest, the record."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

from minirun.image.layers import apply_layer
from minirun.image.store import ImageRecord, Store


DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files: dict[str, bytes]) -> bytes:
    """An uncompressed layer tar holding `files` (name -> content), directories implied."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({"/".join(n.split("/")[:i]) for n in files for i in range(1, n.count("/") + 1)})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1700000000
            tar.addfile(info)
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), 0o644, 1700000000
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def build_image(store: Store, tags=("busybox:latest",), *, digests=(), layers=None,
                created="2024-01-01T00:00:00Z", labels=None, cmd=("sh",), env=None,
                entrypoint=None, history=None, extra_config=None) -> ImageRecord:
    """An image with one layer per dict in `layers` (default: one with bin/sh, 4 kB) and a
    config like one a Dockerfile build makes; returns the stored record."""
    if layers is None:
        layers = [{"bin/sh": b"#!busybox\n" + b"x" * 4000, "etc/motd": b"hi\n"}]
    diff_ids, blob_digests = [], []
    for files in layers:
        tar = layer_tar(files)
        digest = sha(tar)
        store.put_blob(tar, digest)
        with store.new_layer(digest) as target:
            if target is not None:
                info = apply_layer(io.BytesIO(tar), target)
                assert info.diff_id == digest
        diff_ids.append(digest)
        blob_digests.append(digest)
    if history is None:
        history = []
        for i, _ in enumerate(layers):
            history.append({"created": created,
                            "created_by": f"/bin/sh -c #(nop) ADD file:{i:064x} in / "})
        history.append({"created": created, "empty_layer": True,
                        "created_by": f"/bin/sh -c #(nop)  CMD {json.dumps(list(cmd or []))}"})
    config = {
        "architecture": "amd64", "os": "linux", "created": created, "author": "tests",
        "config": {"Env": env if env is not None else [DEFAULT_PATH],
                   "Cmd": list(cmd) if cmd is not None else None,
                   "Labels": labels if labels is not None else {"org.example.kind": "test"},
                   "WorkingDir": "/", **({"Entrypoint": list(entrypoint)} if entrypoint else {})},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
        **(extra_config or {}),
    }
    config_bytes = json.dumps(config).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config_bytes),
                   "size": len(config_bytes)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d}
                   for d in blob_digests],
    }).encode()
    store.put_blob(config_bytes, sha(config_bytes))
    store.put_blob(manifest, sha(manifest))
    return store.add_image(ImageRecord(
        id=sha(config_bytes), diff_ids=diff_ids, layers=blob_digests, manifest=sha(manifest),
        repo_tags=list(tags), repo_digests=list(digests), created=created, platform="linux/amd64"))
