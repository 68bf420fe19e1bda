"""save, load and import: images in and out of the store as tar archives, offline.

    load(store, "busybox.tar")                      # docker-archive or OCI layout, tar (gz) or dir
    save(store, ["busybox"], "out.tar")             # docker-archive, as `docker save` writes it
    save(store, ["busybox"], "out.tar", format="oci")
    import_tar(store, "rootfs.tar", "mini:1", changes=['CMD ["sh"]'])

Formats read by load():
- docker-archive: manifest.json ([{"Config", "RepoTags", "Layers"}]) naming files in the tar:
  `<hex>.json` and `<id>/layer.tar` (docker save before 25, skopeo; layers repeated across
  images are symlinks in the tar), or `blobs/sha256/<hex>` (Docker 25+, which also adds an OCI
  index.json: manifest.json wins, it has the full tags).
- OCI image layout (oci-layout, index.json, blobs/sha256/...), as a directory or a tar. Names
  come from the io.containerd.image.name annotation (Docker 25+), else from
  org.opencontainers.image.ref.name: a full reference ("docker.io/library/busybox:latest", as
  podman and minirun write it) is used as is; a bare tag ("latest", as skopeo and
  scripts/build-image write it) becomes `default_repo:tag`, or leaves the image untagged when the
  caller gave no default_repo (Docker does the same). An entry that is an image index is
  resolved for this host's platform.
- The tar may be plain or compressed (gzip, zstd, bzip2, xz: found from the magic bytes).

Trust: nothing in the archive is taken on its word. The tar is unpacked into a staging
directory of the store by our own rules (regular files only; names with '..' or leading '/'
refused; symlinks and hardlinks kept as a name map, never created), every blob is hashed and
compared with the digest that names it (file name, descriptor, image ID = config digest), and
every layer's uncompressed digest with the config's rootfs.diff_ids, before anything is
recorded. Layers are unpacked once (store.new_layer + apply_layer: a layer already in the store
is only hashed). Records and tags are written last, for all images of the archive at once: a bad
archive records nothing (layers it committed before the failure are unreferenced content,
collected by prune_unused(), as after an interrupted pull).

The store keeps layer blobs as they came (compressed or not); a docker-archive's layers are
uncompressed tars whose digest is the diff_id, so save() decompresses when writing one. An
image loaded from a docker-archive gets an OCI manifest made here (the archive has none), so
save(format="oci") works for every image.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
import tarfile
from dataclasses import dataclass, field
from typing import BinaryIO, Iterable, Iterator

from ..base import times
from ..base.atomicfile import AtomicFile
from ..base.mediatypes import (DOCKER_LIST, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST,
                               SCHEMA1_TYPES)
from ..base.names import is_hex_id
from ..errors import DigestError, ImageError, ReferenceError
from . import reference
from .dockerfile.changes import apply_changes
from .layers import CHUNK, LayerError, _clean as _clean_name, _decompressed, apply_layer
from .platform import host_platform, select_platform
from .store import ImageRecord, Store, _hex

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
FORMATS = ("docker-archive", "oci")

_MAGIC = {b"\x1f\x8b": "+gzip", b"\x28\xb5\x2f\xfd": "+zstd"}
_MAX_JSON = 64 << 20  # manifests, configs and indexes are small: refuse a "JSON" bomb
_MAX_LINKS = 40


# --- load ----------------------------------------------------------------------------------------


@dataclass
class _Layer:
    path: str  # the blob file (in the staging dir or the user's layout dir)
    digest: str  # sha256 of the blob as stored
    diff_id: str  # from the config
    media_type: str


@dataclass
class _Image:
    """One image found in the archive, verified but not yet in the store."""

    config: bytes
    config_digest: str
    layers: list[_Layer]
    manifest: bytes
    manifest_digest: str
    index: bytes = b""
    index_digest: str = ""
    tags: list[str] = field(default_factory=list)  # canonical names
    blobs: dict[str, str] = field(default_factory=dict)  # digest -> path, for put_blob


class _Tree:
    """The archive's files: a directory plus the tar's links (name -> name), looked up safely."""

    def __init__(self, root: str, links: dict[str, str] | None = None, what: str = "archive") -> None:
        self.root = root
        self.links = links or {}
        self.what = what

    def resolve(self, name: str) -> str:
        norm = _clean(name, self.what)
        for _ in range(_MAX_LINKS):
            if norm not in self.links:
                break
            norm = self.links[norm]
        else:
            raise ImageError(f"{self.what}: {name}: too many levels of links")
        return norm

    def exists(self, name: str) -> bool:
        try:
            return os.path.isfile(self.path(name))
        except ImageError:
            return False

    def path(self, name: str) -> str:
        norm = self.resolve(name)
        path = os.path.join(self.root, *norm.split("/"))
        # In a user's layout directory a component may be a symlink: stay inside the root.
        real = os.path.realpath(path)
        if not (real + os.sep).startswith(os.path.realpath(self.root) + os.sep):
            raise ImageError(f"{self.what}: {name} points outside the archive")
        return path

    def file(self, name: str) -> str:
        path = self.path(name)
        if not os.path.isfile(path):
            raise ImageError(f"{self.what}: {name} is missing")
        return path

    def read(self, name: str, limit: int = _MAX_JSON) -> bytes:
        with open(self.file(name), "rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise ImageError(f"{self.what}: {name} is larger than {limit} bytes")
        return data

    def blob(self, digest: str) -> str:
        return self.file(f"blobs/sha256/{_hex(digest)}")


def load(store: Store, src: str | os.PathLike | BinaryIO, *,
         default_repo: str | None = None) -> list[ImageRecord]:
    """Load every image of a docker-archive or OCI layout (tar, compressed tar or directory).

    src: a path (file or directory) or a binary file object read once (stdin works).
    default_repo: the repository for OCI entries named only by a tag ("latest").
    Returns the loaded images, in archive order; each record's repo_tags are the tags this
    archive applied (the store may hold more for the same image). Raises ImageError (DigestError
    for content that does not match its digest) and records nothing if any image is bad.
    """
    default = reference.parse(default_repo) if default_repo else None
    if default is not None and default.digest:
        raise ReferenceError(default_repo, "the default repository takes no digest")
    with store.ingest(), store.staging() as staging:
        if isinstance(src, (str, os.PathLike)) and os.path.isdir(src):
            tree = _Tree(os.fspath(src), what=os.fspath(src))
        else:
            what = os.fspath(src) if isinstance(src, (str, os.PathLike)) else "archive"
            root = os.path.join(staging, "archive")
            os.mkdir(root, 0o700)
            if isinstance(src, (str, os.PathLike)):
                try:
                    f = open(src, "rb")
                except OSError as e:
                    raise ImageError(f"load {what}: {e.strerror}") from None
                with f:
                    links = _unpack(f, root, what)
            else:
                links = _unpack(src, root, what)
            tree = _Tree(root, links, what)
        if tree.exists("manifest.json"):
            images = _docker_images(tree)
        elif tree.exists("index.json"):
            images = _oci_images(tree, default)
        else:
            raise ImageError(f"{tree.what}: neither a docker-archive (manifest.json) nor an OCI "
                             "image layout (index.json)")
        if not images:
            raise ImageError(f"{tree.what}: the archive holds no image")
        _unpack_layers(store, images, tree.what)
        return _record(store, images)


def _unpack(fileobj: BinaryIO, root: str, what: str) -> dict[str, str]:
    """Unpack a (compressed) tar of files into root by our rules; returns its links."""
    links: dict[str, str] = {}
    try:
        stream = _ChunkReader(_decompressed(fileobj))
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for m in tar:
                name = _clean(m.name, what)
                if not name:
                    continue
                path = os.path.join(root, *name.split("/"))
                if m.isdir():
                    os.makedirs(path, 0o700, exist_ok=True)
                elif m.isreg():
                    links.pop(name, None)
                    os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)  # a later entry of the same name wins, as in tar
                    src = tar.extractfile(m)
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                                 | os.O_CLOEXEC, 0o600)
                    with os.fdopen(fd, "wb") as out:
                        while chunk := src.read(CHUNK):
                            out.write(chunk)
                elif m.issym():
                    parent = name.rpartition("/")[0]
                    target = m.linkname if m.linkname.startswith("/") else f"{parent}/{m.linkname}"
                    links[name] = _clean(target, what)
                elif m.islnk():
                    links[name] = _clean(m.linkname, what)
                # devices, fifos and the like have no place in an image archive: ignored
    except (tarfile.TarError, EOFError, LayerError) as e:
        raise ImageError(f"{what}: not a valid tar archive: {e}") from None
    except OSError as e:
        raise ImageError(f"{what}: cannot unpack: {e.strerror or e}") from None
    return links


class _ChunkReader:
    """A read()-able over an iterator of byte chunks (what tarfile's stream mode needs).
    tarfile reads 10 KiB at a time: keep an offset into the current chunk, never re-slice it."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks, self.buf, self.pos = chunks, b"", 0

    def read(self, n: int = -1) -> bytes:
        parts = []
        while n != 0:
            if self.pos >= len(self.buf):
                self.buf, self.pos = next(self.chunks, b""), 0
                if not self.buf:
                    break
            end = len(self.buf) if n < 0 else min(len(self.buf), self.pos + n)
            parts.append(self.buf[self.pos:end])
            if n > 0:
                n -= end - self.pos
            self.pos = end
        return b"".join(parts)


def _clean(name: str, what: str) -> str:
    """An archive member's name folded inside the archive (the layer unpacker's rule)."""
    try:
        return "/".join(_clean_name(name))
    except LayerError:
        raise ImageError(f"{what}: entry {name!r} climbs out of the archive with '..'") from None


def _json(data: bytes, what: str) -> dict | list:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ImageError(f"{what} is not valid JSON: {e}") from None


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _file_digest(path: str) -> str:
    with open(path, "rb") as f:
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


def _media_suffix(path: str) -> str:
    with open(path, "rb") as f:
        head = f.read(4)
    return next((s for magic, s in _MAGIC.items() if head.startswith(magic)), "")


def _diff_ids(config: dict, what: str) -> list[str]:
    rootfs = config.get("rootfs") if isinstance(config, dict) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise ImageError(f"{what}: the image config has no rootfs.diff_ids")
    for d in diff_ids:
        _hex(d)
    return diff_ids


def _docker_images(tree: _Tree) -> list[_Image]:
    what = tree.what
    entries = _json(tree.read("manifest.json"), f"{what}: manifest.json")
    if not isinstance(entries, list):
        raise ImageError(f"{what}: manifest.json is not a list of images")
    images = []
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) \
                or not isinstance(entry.get("Layers"), list):
            raise ImageError(f"{what}: manifest.json entry {n} lacks Config or Layers")
        config_name = tree.resolve(entry["Config"])
        config = tree.read(config_name)
        digest = _sha256(config)
        stem = config_name.rsplit("/", 1)[-1].removesuffix(".json")
        if is_hex_id(stem) and stem != _hex(digest):
            raise DigestError(f"{what}: config {entry['Config']} has digest {digest}, not the one "
                              "its name promises; the archive is corrupt or was tampered with")
        cfg = _json(config, f"{what}: config {entry['Config']}")
        diff_ids = _diff_ids(cfg, f"{what}: {entry['Config']}")
        if len(diff_ids) != len(entry["Layers"]):
            raise ImageError(f"{what}: image {digest} lists {len(entry['Layers'])} layers but its "
                             f"config has {len(diff_ids)} diff_ids")
        image = _Image(config=config, config_digest=digest, layers=[], manifest=b"",
                       manifest_digest="", blobs={})
        for layer_name, diff_id in zip(entry["Layers"], diff_ids):
            if not isinstance(layer_name, str):
                raise ImageError(f"{what}: manifest.json: layer {layer_name!r} is not a file name")
            name = tree.resolve(layer_name)
            path = tree.file(name)
            blob_digest = _file_digest(path)
            if name.startswith("blobs/sha256/") and blob_digest != "sha256:" + name[13:]:
                raise DigestError(f"{what}: layer {layer_name} has digest {blob_digest}; the "
                                  "archive is corrupt or was tampered with")
            image.layers.append(_Layer(path, blob_digest, diff_id, OCI_LAYER + _media_suffix(path)))
            image.blobs[blob_digest] = path
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "digest": digest, "size": len(config)},
                    "layers": [{"mediaType": layer.media_type, "digest": layer.digest,
                                "size": os.path.getsize(layer.path)} for layer in image.layers]}
        image.manifest = json.dumps(manifest, indent=2).encode()
        image.manifest_digest = _sha256(image.manifest)
        for tag in entry.get("RepoTags") or []:
            if not isinstance(tag, str):
                raise ImageError(f"{what}: manifest.json: tag {tag!r} is not a string")
            try:
                r = reference.parse(tag)
            except ReferenceError as e:
                raise ImageError(f"{what}: manifest.json: {e}") from None
            if r.digest:
                raise ImageError(f"{what}: manifest.json: RepoTags entry {tag} has a digest")
            image.tags.append(r.name)
        images.append(image)
    return images


def _descriptor_blob(tree: _Tree, desc: dict, what: str) -> tuple[bytes, str]:
    """Read a small blob named by a descriptor and check its digest (and size)."""
    if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str):
        raise ImageError(f"{what}: a descriptor has no digest")
    digest = desc["digest"]
    _hex(digest)
    data = tree.read(f"blobs/sha256/{_hex(digest)}")
    actual = _sha256(data)
    if actual != digest:
        raise DigestError(f"{what}: blob {digest} has digest {actual}; the archive is corrupt or "
                          "was tampered with")
    if isinstance(desc.get("size"), int) and desc["size"] != len(data):
        raise DigestError(f"{what}: blob {digest} is {len(data)} bytes, its descriptor says "
                          f"{desc['size']}")
    return data, digest


def _oci_names(desc: dict, default: reference.Reference | None, what: str) -> list[str]:
    ann = desc.get("annotations") if isinstance(desc.get("annotations"), dict) else {}
    full, short = ann.get(CONTAINERD_NAME), ann.get(REF_NAME)
    text = None
    if isinstance(full, str) and full:
        text = full
    elif isinstance(short, str) and short:
        if any(c in short for c in ":/@"):
            text = short
        elif default is not None:
            text = default.with_tag(short).name
    if text is None:
        return []
    try:
        r = reference.parse(text)
    except ReferenceError as e:
        raise ImageError(f"{what}: index.json: {e}") from None
    return [] if r.digest and not r.tag else [r.with_tag(r.tag).name if r.digest else r.name]


def _oci_images(tree: _Tree, default: reference.Reference | None) -> list[_Image]:

    what = tree.what
    layout = _json(tree.read("oci-layout"), f"{what}: oci-layout") if tree.exists("oci-layout") else {}
    if not isinstance(layout, dict) or layout.get("imageLayoutVersion", "1.0.0") != "1.0.0":
        raise ImageError(f"{what}: unsupported OCI layout version {layout!r}")
    index = _json(tree.read("index.json"), f"{what}: index.json")
    descs = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(descs, list):
        raise ImageError(f"{what}: index.json has no manifests list")
    by_manifest: dict[str, _Image] = {}
    for desc in descs:
        if not isinstance(desc, dict):
            raise ImageError(f"{what}: index.json: a manifest entry is not an object")
        data, digest = _descriptor_blob(tree, desc, what)
        doc = _json(data, f"{what}: {digest}")
        media = desc.get("mediaType") or (doc.get("mediaType") if isinstance(doc, dict) else "")
        index_data, index_digest = b"", ""
        if media in (OCI_INDEX, DOCKER_LIST) or (isinstance(doc, dict) and "manifests" in doc):
            index_data, index_digest = data, digest
            inner = [m for m in doc.get("manifests") or [] if isinstance(m, dict)]
            if len(inner) == 1 and not isinstance(inner[0].get("platform"), dict):
                chosen = inner[0]
            else:
                chosen = select_platform(doc, what=f"{what}: index {digest}")
            data, digest = _descriptor_blob(tree, chosen, what)
            doc = _json(data, f"{what}: {digest}")
            media = chosen.get("mediaType") or doc.get("mediaType", "")
        if media in SCHEMA1_TYPES or (isinstance(doc, dict) and doc.get("schemaVersion") == 1):
            raise ImageError(f"{what}: manifest {digest} is Docker schema 1, which is not supported")
        if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict) \
                or not isinstance(doc.get("layers"), list):
            raise ImageError(f"{what}: {digest} is not an image manifest ({media or 'no media type'})")
        names = _oci_names(desc, default, what)
        if digest in by_manifest:
            by_manifest[digest].tags += [n for n in names if n not in by_manifest[digest].tags]
            continue
        config, config_digest = _descriptor_blob(tree, doc["config"], what)
        cfg = _json(config, f"{what}: config {config_digest}")
        diff_ids = _diff_ids(cfg, f"{what}: config {config_digest}")
        if len(diff_ids) != len(doc["layers"]):
            raise ImageError(f"{what}: manifest {digest} has {len(doc['layers'])} layers but its "
                             f"config has {len(diff_ids)} diff_ids")
        image = _Image(config=config, config_digest=config_digest, layers=[], manifest=data,
                       manifest_digest=digest, index=index_data, index_digest=index_digest,
                       tags=list(names))
        for layer, diff_id in zip(doc["layers"], diff_ids):
            if not isinstance(layer, dict) or not isinstance(layer.get("digest"), str):
                raise ImageError(f"{what}: manifest {digest}: a layer descriptor has no digest")
            path = tree.blob(layer["digest"])
            actual = _file_digest(path)
            if actual != layer["digest"]:
                raise DigestError(f"{what}: layer {layer['digest']} has digest {actual}; the "
                                  "archive is corrupt or was tampered with")
            image.layers.append(_Layer(path, actual, diff_id, layer.get("mediaType") or OCI_LAYER))
            image.blobs[actual] = path
        by_manifest[digest] = image
    return list(by_manifest.values())


def _unpack_layers(store: Store, images: list[_Image], what: str) -> None:
    """Each layer once: unpacked (diff_id checked before it is committed) or, when the store
    already has it, its blob hashed uncompressed and compared."""
    checked: set[tuple[str, str]] = set()
    for image in images:
        for layer in image.layers:
            key = (layer.digest, layer.diff_id)
            if key in checked or layer.digest == layer.diff_id and store.has_layer(layer.diff_id):
                checked.add(key)
                continue
            with store.new_layer(layer.diff_id) as target:
                if target is not None:
                    try:
                        info = apply_layer(layer.path, target, layer.media_type)
                    except LayerError as e:
                        raise ImageError(f"{what}: layer {layer.digest}: {e}") from None
                    actual = info.diff_id
                else:
                    actual = _uncompressed_digest(layer.path, what)
                if actual != layer.diff_id:
                    raise DigestError(f"{what}: layer {layer.digest} unpacks to {actual}, but the "
                                      f"image config says {layer.diff_id}; the archive is corrupt "
                                      "or was tampered with")
            checked.add(key)


def _uncompressed_digest(path: str, what: str) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in _decompressed(f):
                h.update(chunk)
    except (EOFError, OSError, LayerError) as e:
        raise ImageError(f"{what}: layer {path}: cannot decompress: {e}") from None
    return "sha256:" + h.hexdigest()


def _record(store: Store, images: list[_Image]) -> list[ImageRecord]:
    """Blobs, then records, then tags (the store's order); only after every check passed."""
    for image in images:
        if store.has_image(image.config_digest):
            continue
        store.put_blob(image.config, image.config_digest)
        store.put_blob(image.manifest, image.manifest_digest)
        if image.index_digest:
            store.put_blob(image.index, image.index_digest)
        for digest, path in image.blobs.items():
            store.put_blob(path, digest)
    out = []
    with store.lock():
        for image in images:
            if store.has_image(image.config_digest):
                for tag in image.tags:
                    store.tag(tag, image.config_digest)
                record = store.image(image.config_digest)
            else:
                cfg = json.loads(image.config)
                record = store.add_image(ImageRecord(
                    id=image.config_digest, diff_ids=[layer.diff_id for layer in image.layers],
                    layers=[layer.digest for layer in image.layers],
                    manifest=image.manifest_digest, index=image.index_digest,
                    repo_tags=list(image.tags), created=str(cfg.get("created") or ""),
                    platform=_platform(cfg)))
            record.repo_tags = [t for t in record.repo_tags if t in image.tags]
            out.append(record)
    return out


def _platform(cfg: dict) -> str:
    s = f"{cfg.get('os') or 'linux'}/{cfg.get('architecture') or 'unknown'}"
    return s + (f"/{cfg['variant']}" if cfg.get("variant") else "")


# --- save ----------------------------------------------------------------------------------------


def save(store: Store, images: list[str], out: str | os.PathLike | BinaryIO,
         format: str = "docker-archive") -> None:
    """Write images (names or IDs) to `out` (a path, written atomically, or a binary stream).

    docker-archive: manifest.json, <config hex>.json, <v1 id>/layer.tar (+ VERSION, json) and a
    `repositories` file, as docker save wrote it before 25; layers uncompressed (their digest
    is the diff_id). oci: an OCI image layout tar with the blobs and manifests as stored, one
    index.json entry per tag (ref.name and io.containerd.image.name both the full name).
    A name saves that tag; an ID saves the image with all its tags.
    """
    if format not in FORMATS:
        raise ImageError(f"unknown archive format {format!r}: docker-archive or oci")
    if not images:
        raise ImageError("save: name at least one image")
    chosen: dict[str, tuple[ImageRecord, list[str]]] = {}
    for name in images:
        record = store.resolve(name)
        tags = _tags_named(record, name)
        if record.id in chosen:
            chosen[record.id][1].extend(t for t in tags if t not in chosen[record.id][1])
        else:
            chosen[record.id] = (record, tags)
    if isinstance(out, (str, os.PathLike)):
        try:  # a half-written archive never appears under the name (0o666 less the umask)
            with AtomicFile(os.path.abspath(out), mode=0o666) as f:
                _write(store, list(chosen.values()), f, format)
        except OSError as e:
            raise ImageError(f"save to {out}: {e.strerror or e}") from None
    else:
        _write(store, list(chosen.values()), out, format)


def _tags_named(record: ImageRecord, name: str) -> list[str]:
    try:
        r = reference.parse(name)
    except ReferenceError:
        return list(record.repo_tags)
    if r.digest and (r.with_digest(r.digest).name in record.repo_digests):
        return [r.name] if r.tag and r.with_tag(r.tag).name in record.repo_tags else []
    if r.name in record.repo_tags:
        return [r.name]
    return list(record.repo_tags)  # resolved as an image ID


def _write(store: Store, chosen: list[tuple[ImageRecord, list[str]]], out: BinaryIO,
           format: str) -> None:
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        if format == "oci":
            _write_oci(store, chosen, tar)
        else:
            _write_docker(store, chosen, tar)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
    tar.addfile(info)


def _add_file(tar: tarfile.TarFile, name: str, path: str) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = os.path.getsize(path), 0o644, 0
    with open(path, "rb") as f:
        tar.addfile(info, f)


def _read_blob(store: Store, digest: str) -> bytes:
    with store.open_blob(digest) as f:
        return f.read()


def _manifest_of(store: Store, record: ImageRecord) -> tuple[bytes, str, dict]:
    """The stored manifest (or, for a record without one, an OCI manifest made from it)."""
    if record.manifest:
        data = _read_blob(store, record.manifest)
        return data, record.manifest, json.loads(data)
    config = _read_blob(store, record.id)
    layers = []
    for digest in record.layers:
        path = store.blob_path(digest)
        if not os.path.isfile(path):
            raise ImageError(f"image {record.short_id}: layer blob {digest} is not in the store")
        layers.append({"mediaType": OCI_LAYER + _media_suffix(path), "digest": digest,
                       "size": os.path.getsize(path)})
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": OCI_CONFIG, "digest": record.id, "size": len(config)},
           "layers": layers}
    data = json.dumps(doc, indent=2).encode()
    return data, _sha256(data), doc


def _write_oci(store: Store, chosen, tar: tarfile.TarFile) -> None:
    _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
    _add_dir(tar, "blobs/")
    _add_dir(tar, "blobs/sha256/")
    written: set[str] = set()
    entries = []

    def blob(digest: str, data: bytes | None = None) -> None:
        if digest in written:
            return
        written.add(digest)
        name = f"blobs/sha256/{_hex(digest)}"
        if data is not None:
            _add_bytes(tar, name, data)
        else:
            if not store.has_blob(digest):
                raise ImageError(f"blob {digest} is not in the store: pull or load the image again")
            _add_file(tar, name, store.blob_path(digest))

    for record, tags in chosen:
        data, digest, doc = _manifest_of(store, record)
        blob(digest, data)
        blob(doc["config"]["digest"])
        for layer in doc.get("layers") or []:
            blob(layer["digest"])
        desc = {"mediaType": doc.get("mediaType") or OCI_MANIFEST, "digest": digest,
                "size": len(data)}
        os_, _, arch = record.platform.partition("/")
        if os_ and arch:
            arch, _, variant = arch.partition("/")
            desc["platform"] = {"architecture": arch, "os": os_, **({"variant": variant} if variant else {})}
        for tag in tags or [None]:
            entry = dict(desc)
            if tag:
                entry["annotations"] = {CONTAINERD_NAME: tag, REF_NAME: tag}
            entries.append(entry)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    _add_bytes(tar, "index.json", json.dumps(index, indent=2).encode())


def _write_docker(store: Store, chosen, tar: tarfile.TarFile) -> None:
    manifest, repositories = [], {}
    written: set[str] = set()
    with store.staging() as staging:
        for record, tags in chosen:
            config = _read_blob(store, record.id)
            config_name = f"{_hex(record.id)}.json"
            if config_name not in written:
                _add_bytes(tar, config_name, config)
                written.add(config_name)
            if len(record.layers) != len(record.diff_ids):
                raise ImageError(f"image {record.short_id}: its record lists {len(record.layers)} "
                                 f"layer blobs for {len(record.diff_ids)} diff_ids")
            parent, names = "", []
            for blob_digest, diff_id in zip(record.layers, record.diff_ids):
                v1 = hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()
                names.append(f"{v1}/layer.tar")
                if v1 not in written:
                    written.add(v1)
                    _add_dir(tar, f"{v1}/")
                    _add_bytes(tar, f"{v1}/VERSION", b"1.0")
                    meta = {"id": v1, **({"parent": parent} if parent else {}),
                            "created": "1970-01-01T00:00:00Z", "container_config": {}}
                    _add_bytes(tar, f"{v1}/json", json.dumps(meta).encode())
                    _add_file(tar, f"{v1}/layer.tar",
                              _uncompressed(store, blob_digest, diff_id, staging))
                parent = v1
            familiar = [reference.parse(t).familiar for t in tags]
            for t in tags:
                r = reference.parse(t)
                repositories.setdefault(r.familiar_repo, {})[r.tag] = parent
            manifest.append({"Config": config_name, "RepoTags": familiar or None, "Layers": names})
        _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
        if repositories:
            _add_bytes(tar, "repositories", json.dumps(repositories).encode())


def _uncompressed(store: Store, blob_digest: str, diff_id: str, staging: str) -> str:
    """A path holding the layer as an uncompressed tar, checked against its diff_id."""
    if not store.has_blob(blob_digest):
        raise ImageError(f"layer blob {blob_digest} is not in the store: pull or load the image again")
    if blob_digest == diff_id:
        return store.blob_path(blob_digest)
    path = os.path.join(staging, _hex(diff_id))
    h = hashlib.sha256()
    try:
        with store.open_blob(blob_digest) as src, open(path, "wb") as dst:
            for chunk in _decompressed(src):
                h.update(chunk)
                dst.write(chunk)
    except (EOFError, LayerError) as e:
        raise ImageError(f"layer blob {blob_digest} cannot be decompressed: {e}") from None
    if "sha256:" + h.hexdigest() != diff_id:
        raise DigestError(f"layer blob {blob_digest} decompresses to sha256:{h.hexdigest()}, not "
                          f"{diff_id}: the store is damaged (pull or load the image again)")
    return path


# --- import --------------------------------------------------------------------------------------


def import_tar(store: Store, src: str | os.PathLike | BinaryIO, reference_: str | None = None,
               changes: Iterable[str] = (), message: str = "") -> ImageRecord:
    """`docker import`: a flat rootfs tar (plain or compressed; "-" is stdin) becomes a
    one-layer image with a fresh config, tagged `reference_` if given. `changes` are Dockerfile
    instructions for the config: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR,
    STOPSIGNAL. The layer is kept uncompressed (blob digest = diff_id)."""
    ref = None
    if reference_:
        ref = reference.parse(reference_)
        if ref.digest:
            raise ReferenceError(reference_, "import takes REPOSITORY[:TAG], not a digest")
    container_config = apply_changes({}, changes)
    what = "-" if src == "-" else (os.fspath(src) if isinstance(src, (str, os.PathLike)) else "stdin")
    with store.ingest(), store.staging() as staging:
        layer = os.path.join(staging, "layer.tar")
        h = hashlib.sha256()
        try:
            if src == "-":
                f, close = sys.stdin.buffer, False
            elif isinstance(src, (str, os.PathLike)):
                f, close = open(src, "rb"), True
            else:
                f, close = src, False
            try:
                with open(layer, "wb") as dst:
                    for chunk in _decompressed(f):
                        h.update(chunk)
                        dst.write(chunk)
            finally:
                if close:
                    f.close()
        except (EOFError, LayerError) as e:
            raise ImageError(f"import {what}: cannot read the tar: {e}") from None
        except OSError as e:
            raise ImageError(f"import {what}: {e.strerror or e}") from None
        diff_id = "sha256:" + h.hexdigest()
        with store.new_layer(diff_id) as target:
            if target is not None:
                try:
                    info = apply_layer(layer, target)
                except LayerError as e:
                    raise ImageError(f"import {what}: {e}") from None
                if info.diff_id != diff_id:  # the file changed under us
                    raise DigestError(f"import {what}: the tar changed while it was read")
        size = os.path.getsize(layer)
        store.put_blob(layer, diff_id)
        os_, arch, variant = host_platform()
        now = times.now(6)  # image times in microseconds, as minirun's images have them
        config = {"architecture": arch, "os": os_, **({"variant": variant} if variant else {}),
                  "created": now, "config": container_config,
                  "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                  "history": [{"created": now, "created_by": "minirun import",
                               "comment": message or f"Imported from {what}"}]}
        config_data = json.dumps(config, indent=1).encode()
        config_digest = _sha256(config_data)
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "digest": config_digest,
                               "size": len(config_data)},
                    "layers": [{"mediaType": OCI_LAYER, "digest": diff_id, "size": size}]}
        manifest_data = json.dumps(manifest, indent=2).encode()
        store.put_blob(config_data, config_digest)
        store.put_blob(manifest_data, _sha256(manifest_data))
        return store.add_image(ImageRecord(
            id=config_digest, diff_ids=[diff_id], layers=[diff_id], manifest=_sha256(manifest_data),
            repo_tags=[ref.name] if ref else [], created=now,
            platform=f"{os_}/{arch}" + (f"/{variant}" if variant else "")))
