"""Push: an image in the store -> the blobs the registry lacks -> its manifest under a tag.

    pushed = push(store, "127.0.0.1:5000/busybox:latest", auth_file=path, progress=display)
    pushed[0].digest   # sha256:... of the manifest, now also a RepoDigest of the image

What a push sends, per tag (the order distribution needs: blobs before the manifest naming them):
  1. the config, then the layers, `workers` at a time. For every blob: HEAD, and skip it if the
     repository has it ("Layer already exists"); else ask for a cross-repository mount from
     another repository of that registry known to hold it (the names there of any image in the
     store with that blob: "Mounted from x"); else upload it (registry.py: one PUT, or chunked
     PATCHes above MONOLITHIC_MAX);
  2. the manifest, PUT under the tag;
  3. the manifest's digest recorded as a RepoDigest of the image (store.add_image).

Layers the store keeps uncompressed (blob digest = diff_id: `import`, `load` of a docker-archive,
`build`) are gzipped on the way out, as Docker always pushes gzip. Which digest that gave is kept
in <store>/compressed-layers.json ({diff_id: {digest, size}}), so a later push can ask the
registry about the compressed blob (HEAD, mount) without compressing the layer again; the
gzip itself is made in a staging directory and not kept. Such an image gets a new OCI manifest
(layers tar+gzip) around its config blob, unchanged: the image ID stays the same. An image whose
layers are all compressed blobs in the store (a pulled one) is pushed with its stored manifest,
byte for byte, so a Docker v2s2 image stays v2s2 and its digest stays the one it was pulled by.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Iterable

from ..base.mediatypes import (DOCKER_LAYER_FOREIGN_GZIP, DOCKER_LAYER_GZIP, MANIFEST_TYPES,
                               OCI_CONFIG, OCI_LAYER, OCI_LAYER_GZIP,
                               OCI_LAYER_NONDISTRIBUTABLE_GZIP, OCI_LAYER_ZSTD, OCI_MANIFEST)
from ..errors import ImageError
from . import reference
from .pull import registry_for
from .registry import Registry
from .store import ImageRecord, Store

# Docker's layer types, for an OCI manifest made around layers a Docker manifest named.
_TO_OCI = {DOCKER_LAYER_GZIP: OCI_LAYER_GZIP,
           DOCKER_LAYER_FOREIGN_GZIP: OCI_LAYER_NONDISTRIBUTABLE_GZIP}
# zlib's default, and Go's, so what Docker pushes with. Measured on a busybox rootfs and on
# Python's stdlib tree: level 9 is only ~1% smaller at 2-7x the time, level 1 ~6-15% bigger. A
# layer is compressed once (compressed-layers.json) and downloaded many times: the middle.
GZIP_LEVEL = 6
WORKERS = 4  # layers pushed at once (Docker: 5)
MAX_MOUNT_SOURCES = 3  # repositories asked for a mount before uploading (Docker asks 3)
INDEX_FILE = "compressed-layers.json"
SHORT = 12
_CHUNK = 1 << 20


@dataclass
class Pushed:
    """One tag pushed: `tag: digest: <digest> size: <size>`."""

    name: str  # canonical repo:tag
    tag: str
    digest: str  # of the manifest
    size: int  # bytes of the manifest


class Progress:
    """What push() reports; this base class shows nothing (quiet, library use).

    The CLI's display (cli/push.py) overrides these. layer() may be called from worker threads.
    """

    def start(self, ref: reference.Reference) -> None:
        """Before anything is sent: "The push refers to repository [127.0.0.1:5000/busybox]"."""

    def layer(self, key: str, status: str, done: int | None = None,
              total: int | None = None) -> None:
        """A layer's state (key: 12 hex of its diff_id, as Docker shows it): "Preparing",
        "Pushing" (with done/total), then "Pushed", "Layer already exists" or "Mounted from X"."""

    def finish(self, pushed: Pushed) -> None:
        """After the manifest: "latest: digest: sha256:... size: 527"."""

    def close(self) -> None:
        """Stop any redrawing (called whatever happened)."""


FINAL = ("Pushed", "Layer already exists", "Mounted from ")


def has_tag(text: str) -> bool:
    """Whether the user typed a tag ("x:1", not "x" or "host:5000/x")."""
    name = text.partition("@")[0]
    return ":" in name.rpartition("/")[2]


def push(store: Store, reference_text: str, *, all_tags: bool = False,
         insecure_registries: Iterable[str] = (), auth_file: str | None = None,
         progress: Progress | None = None, workers: int = WORKERS,
         credentials: tuple[str, str] | None = None) -> list[Pushed]:
    """Push the image NAME[:TAG] names (with all_tags: every tag of NAME) from the store.
    `credentials`: this push's (user, password), instead of the stored ones."""
    ref = reference.parse(reference_text)
    if ref.digest:
        raise ImageError(f"cannot push a digest reference ({reference_text}): push NAME[:TAG]")
    if all_tags and has_tag(reference_text):
        raise ImageError("tag can't be used with --all-tags/-a")
    display = progress or Progress()
    try:
        # ingest(): `image prune` waits, so no blob we are reading disappears under us.
        with store.ingest():
            records = store.images()
            tags = _local_tags(records, ref)
            if not all_tags:
                if ref.name not in tags:
                    raise ImageError(f"tag does not exist: {ref.familiar}")
                tags = {ref.name: tags[ref.name]}
            index = _Index(store)
            with registry_for(ref.registry, insecure_registries=insecure_registries,
                              auth_file=auth_file, credentials=credentials) as reg, \
                    store.staging() as staging:
                display.start(ref)
                out = []
                try:
                    for name, record in sorted(tags.items()):
                        target = reference.parse(name)
                        job = _Push(store, reg, target, record, staging, index, display,
                                    _mount_sources(records, record, target), max(1, workers))
                        out.append(job.run())
                finally:
                    index.save()  # what was compressed stays known, even after a failure
                return out
    finally:
        display.close()


def _local_tags(records: list[ImageRecord], ref: reference.Reference) -> dict[str, ImageRecord]:
    """{canonical repo:tag: record} for every tag of ref's repository in the store."""
    tags = {}
    for record in records:
        for t in record.repo_tags:
            if reference.parse(t).repo == ref.repo:
                tags[t] = record
    if not tags:
        # Docker's words (and its familiar name, without the tag).
        raise ImageError(f"An image does not exist locally with the tag: {ref.familiar_repo}")
    return tags


class _Index:
    """<store>/compressed-layers.json: which gzip blob a push made of an uncompressed layer."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.path = os.path.join(store.root, INDEX_FILE)
        self._lock = threading.Lock()
        self._new: dict[str, dict] = {}
        self._known = self._load()

    def _load(self) -> dict[str, dict]:
        try:
            with open(self.path, "rb") as f:
                data = json.loads(f.read())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # a damaged index costs a compression, nothing else: start over
        return data if isinstance(data, dict) else {}

    def get(self, diff_id: str) -> tuple[str, int] | None:
        with self._lock:
            entry = self._new.get(diff_id) or self._known.get(diff_id)
        if (isinstance(entry, dict) and isinstance(entry.get("digest"), str)
                and entry["digest"].startswith("sha256:") and len(entry["digest"]) == 71
                and isinstance(entry.get("size"), int)):
            return entry["digest"], entry["size"]
        return None

    def put(self, diff_id: str, digest: str, size: int) -> None:
        with self._lock:
            self._new[diff_id] = {"digest": digest, "size": size}

    def save(self) -> None:
        with self._lock:
            new = dict(self._new)
        if not new:
            return
        try:
            with self.store.lock():  # another push may have added entries: merge, then replace
                data = self._load()
                data.update(new)
                self.store._write_atomic(self.path, data)  # the store's temp-fsync-rename
        except OSError:
            pass  # a cache: losing it costs the next push a compression, not a failure


@dataclass
class _Blob:
    """A blob to send: where it is, what it is."""

    key: str  # display key: 12 hex of the diff_id (Docker's), "" for the config
    diff_id: str
    stored: str  # the blob's digest in the store
    media_type: str
    gzip: bool  # stored uncompressed: gzip it on the way out
    digest: str = ""  # what is pushed (known once compressed, or from the index)
    size: int = 0
    path: str = ""


class _Push:
    """One tag of one image to one repository."""

    def __init__(self, store: Store, reg: Registry, ref: reference.Reference, record: ImageRecord,
                 staging: str, index: _Index, display: Progress, sources: dict[str, list[str]],
                 workers: int) -> None:
        self.store, self.reg, self.ref, self.record = store, reg, ref, record
        self.staging, self.index, self.display, self.workers = staging, index, display, workers
        self.sources = sources  # stored blob digest -> repositories to mount it from
        self.repo = ref.repository
        self.what = f"push {ref.familiar}"
        self.stop = threading.Event()  # set on a failure or Ctrl-C: running uploads give up

    def run(self) -> Pushed:
        stored = self._read_manifest()
        layers = self._layers(stored[1] if stored else {})
        config = _Blob("", "", self.record.id, OCI_CONFIG, False)
        # The config first, alone: its requests meet the registry's auth challenge and get the
        # tokens (push here, pull on a mount source) that the layer workers then share.
        self._send(config)
        self._send_all(layers)
        if stored is not None and self._reusable(stored[1]) and not any(b.gzip for b in layers):
            data = stored[0]  # a pulled image: its own manifest, byte for byte
            media_type = stored[1].get("mediaType") or OCI_MANIFEST
        else:
            data, media_type = self._oci_manifest(layers, config), OCI_MANIFEST
        digest = self.reg.put_manifest(self.repo, self.ref.tag or "latest", data, media_type)
        # Docker shows RepoDigests: ["host/name@sha256:..."] after a push: so do we.
        self.store.add_image(ImageRecord(**{**self.record.to_dict(), "repo_tags": [],
                                            "repo_digests": [self.ref.with_digest(digest).name]}))
        pushed = Pushed(name=self.ref.name, tag=self.ref.tag or "latest", digest=digest,
                        size=len(data))
        self.display.finish(pushed)
        return pushed

    # -- what to send ---------------------------------------------------------------------------

    def _read_manifest(self) -> tuple[bytes, dict] | None:
        """The record's manifest (bytes, parsed), if the store has it and it is JSON."""
        r = self.record
        if not r.manifest or not self.store.has_blob(r.manifest):
            return None
        with self.store.open_blob(r.manifest) as f:
            data = f.read()
        try:
            doc = json.loads(data)
        except ValueError:
            return None
        return (data, doc) if isinstance(doc, dict) else None

    def _reusable(self, doc: dict) -> bool:
        """Whether the stored manifest describes this image exactly: its config, its layer
        blobs in order, every one of them in the store."""
        try:
            layers = [d["digest"] for d in doc["layers"]]
            config = doc["config"]["digest"]
        except (KeyError, TypeError):
            return False
        return ((doc.get("mediaType") or OCI_MANIFEST) in MANIFEST_TYPES
                and config == self.record.id and layers == self.record.layers
                and all(self.store.has_blob(d) for d in layers))

    def _layers(self, manifest: dict) -> list[_Blob]:
        """The layers to send, top first (Docker's order), each blob once. Media types come
        from the stored manifest where it names the same blob, else from the blob's bytes."""
        r = self.record
        if len(r.layers) != len(r.diff_ids):
            raise ImageError(f"{self.what}: the image's record lists {len(r.layers)} layer blobs "
                             f"for {len(r.diff_ids)} diff_ids (load or pull it again)")
        descs = manifest.get("layers") if isinstance(manifest.get("layers"), list) else []
        types = [d.get("mediaType") or "" if isinstance(d, dict) and d.get("digest") == b else ""
                 for d, b in zip(descs, r.layers)]
        out, seen = [], set()
        for i, (blob, diff_id) in reversed(list(enumerate(zip(r.layers, r.diff_ids)))):
            if blob in seen:
                continue
            seen.add(blob)
            gzip = blob == diff_id  # stored uncompressed
            if not gzip and not self.store.has_blob(blob):
                raise ImageError(f"{self.what}: layer blob {blob} is not in the store: pull the "
                                 "image again")
            media = types[i] if i < len(types) and types[i] else _sniff(self.store, blob)
            out.append(_Blob(diff_id.partition(":")[2][:SHORT], diff_id, blob, media, gzip))
        return out

    def _oci_manifest(self, layers: list[_Blob], config: _Blob) -> bytes:
        by_stored = {b.stored: b for b in layers}
        descs = []
        for blob in self.record.layers:  # base first, as manifests list them
            b = by_stored[blob]
            media = OCI_LAYER_GZIP if b.gzip else _TO_OCI.get(b.media_type, b.media_type)
            descs.append({"mediaType": media, "digest": b.digest, "size": b.size})
        doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
               "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": config.size},
               "layers": descs}
        return json.dumps(doc, indent=2).encode()

    # -- sending --------------------------------------------------------------------------------

    def _send_all(self, layers: list[_Blob]) -> None:
        """Every layer, `workers` at a time; the first failure cancels the ones not started."""
        for b in layers:
            self.display.layer(b.key, "Preparing")
        if not layers:
            return
        pool = ThreadPoolExecutor(max_workers=min(self.workers, len(layers)),
                                  thread_name_prefix="minirun-push")
        first: BaseException | None = None
        try:
            futures = [pool.submit(self._send, b) for b in layers]
            for fut in as_completed(futures):
                try:
                    fut.result()
                except BaseException as e:  # noqa: BLE001 - re-raised below, once the others stop
                    if first is None:
                        first = e
                        self.stop.set()
                        for other in futures:
                            other.cancel()
        except BaseException:
            self.stop.set()  # Ctrl-C: running uploads stop at their next block
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if first is not None:
            raise first

    def _send(self, b: _Blob) -> None:
        """One blob: already there, mounted, or uploaded (gzipped first if it must be)."""
        location = None
        if b.gzip:
            known = self.index.get(b.diff_id)
            if known is not None:
                b.digest, b.size = known
                found, location = self._elsewhere(b)
                if found:
                    return
            self._compress(b)
            if known is None or known[0] != b.digest:  # (another zlib may give other bytes)
                found, other = self._elsewhere(b, location)
                if found:
                    return
                location = other or location
        else:
            b.digest, b.path = b.stored, self.store.blob_path(b.stored)
            b.size = os.path.getsize(b.path)
            found, location = self._elsewhere(b)
            if found:
                return
        if b.key:
            self.display.layer(b.key, "Pushing", 0, b.size)

        def progress(done: int, total: int | None) -> None:
            self._check_stop()
            if b.key:
                self.display.layer(b.key, "Pushing", done, total)

        self.reg.upload_blob(self.repo, b.path, b.digest, location=location, progress=progress)
        if b.key:
            self.display.layer(b.key, "Pushed")

    def _elsewhere(self, b: _Blob, location: str | None = None) -> tuple[bool, str | None]:
        """(True, None) if the repository has the blob or could mount it; else (False, the URL
        of an upload a refused mount opened, or None). `location`: an upload we already hold."""
        if self.reg.blob_exists(self.repo, b.digest, push=True):
            if location:
                self.reg.cancel_upload(location)
            if b.key:
                self.display.layer(b.key, "Layer already exists")
            return True, None
        for source in self.sources.get(b.stored, ()):
            opened = self.reg.mount_blob(self.repo, b.digest, source)
            if location:
                self.reg.cancel_upload(location)  # one open upload is enough
            location = opened
            if opened is None:
                if b.key:
                    self.display.layer(b.key, f"Mounted from {source}")
                return True, None
        return False, location

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise ImageError(f"{self.what}: cancelled")

    def _compress(self, b: _Blob) -> None:
        """gzip the stored tar into staging (checking it still hashes to its diff_id); note the
        result in the index."""
        b.path = os.path.join(self.staging, f"{b.diff_id.partition(':')[2]}.tar.gz")
        # wbits 31: a gzip wrapper with mtime 0 and no file name, so the same layer gives the
        # same bytes (and digest) on every push with this zlib.
        z = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
        raw, packed, size = hashlib.sha256(), hashlib.sha256(), 0
        with self.store.open_blob(b.stored) as src, open(b.path, "wb") as dst:
            while chunk := src.read(_CHUNK):
                self._check_stop()
                raw.update(chunk)
                out = z.compress(chunk)
                packed.update(out)
                dst.write(out)
                size += len(out)
            out = z.flush()
            packed.update(out)
            dst.write(out)
            size += len(out)
        if "sha256:" + raw.hexdigest() != b.diff_id:
            raise ImageError(f"{self.what}: layer {b.diff_id} in the store is damaged (it hashes "
                             f"to sha256:{raw.hexdigest()}): pull or load the image again")
        b.digest, b.size = "sha256:" + packed.hexdigest(), size
        self.index.put(b.diff_id, b.digest, b.size)


def _mount_sources(records: list[ImageRecord], image: ImageRecord,
                   ref: reference.Reference) -> dict[str, list[str]]:
    """{stored blob digest: other repositories of ref's registry that should hold it}: those of
    every image in the store with that blob (its config or a layer), so a layer of a base image
    is mounted from where the base came from, as Docker's distribution metadata would have it.
    The pushed image's own names first, repo digests (the registry has those for sure) before
    tags; at most MAX_MOUNT_SOURCES each."""
    out: dict[str, list[str]] = {}
    for record in sorted(records, key=lambda r: r.id != image.id):
        repos = []
        for name in [*record.repo_digests, *record.repo_tags]:
            r = reference.parse(name)
            if r.registry == ref.registry and r.repository != ref.repository:
                repos.append(r.repository)
        for blob in (record.id, *record.layers):
            have = out.setdefault(blob, [])
            have += [x for x in dict.fromkeys(repos) if x not in have]
    return {blob: repos[:MAX_MOUNT_SOURCES] for blob, repos in out.items()}


def _sniff(store: Store, digest: str) -> str:
    """A layer's media type from its first bytes (records without a manifest to say it)."""
    with store.open_blob(digest) as f:
        head = f.read(4)
    if head[:2] == b"\x1f\x8b":
        return OCI_LAYER_GZIP
    if head == b"\x28\xb5\x2f\xfd":
        return OCI_LAYER_ZSTD
    return OCI_LAYER

