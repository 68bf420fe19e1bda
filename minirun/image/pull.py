"""Pull: a reference -> manifest -> verified blobs -> layers unpacked once -> an image record.

    record = pull(store, "127.0.0.1:5000/busybox:latest", insecure_registries=(), auth_file=path,
                  progress=display)

The steps, in the order that keeps the store consistent whatever happens (store.py's rules):
  1. parse the reference; plain HTTP only for loopback registries or those marked insecure;
  2. the manifest (an index or list -> the entry for this host or `platform`; schema 1 refused);
  3. the config blob (small, first: its rootfs.diff_ids say what each layer must unpack to);
  4. every layer at once (`workers` threads), `unpackers` of them unpacked at a time: download
     into a store.staging() directory (the registry client hashes while streaming, once; the
     store renames the verified file in), unpack it into store.new_layer(diff_id) and check that
     the tar's sha256 IS that diff_id; a mismatch raises inside new_layer, so the half-made
     layer is removed, never committed. A layer that finds an unpacker free is unpacked while it
     downloads (the chunks are handed over as they arrive); the others download meanwhile and
     are unpacked from their verified blobs when an unpacker frees up.
     A layer whose unpacked tree and compressed blob are both in the store is skipped
     ("Already exists"); an unpacked layer without the blob the manifest names is downloaded
     (not unpacked again), so the record never names a missing blob;
  5. the manifest (and index) blobs, then the record, then its tags (store.add_image).

All of it runs inside store.ingest(): prune_unused() cannot collect blobs and layers that are
written but not yet named by a record. A failure anywhere raises one line (MinirunError) and
records nothing: what was already verified (blobs, whole layers) stays as unreferenced content
that the next pull reuses and `image prune` collects. A pull killed at any point leaves only
tmp/ junk (cleared when the store is next opened) and verified content, so the next pull
completes it.

Downloads and unpacks overlap: downloads run `workers` at a time, and the first layer (or the
first `unpackers`) is unpacked as its bytes arrive, not after. Nothing is trusted early for it:
the layer directory stays in tmp/ until fetch_blob has checked the blob's digest and size AND
the unpacked tar hashed to the config's diff_id. A download that fails voids the unpack
(apply_layer undoes it) and fails the pull; one that starts again from byte 0 voids it too,
and the verified blob is unpacked instead. The first failure cancels the rest (`stop`).
"""

from __future__ import annotations

import json
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Callable, Iterable

from .. import trace
from ..errors import ImageError, RegistryError
from . import auth, layers, reference
from .platform import parse_platform, platform_string, select_platform
from .registry import INDEX_TYPES, MANIFEST_TYPES, Registry
from .store import ImageRecord, Store

WORKERS = 6  # layers downloaded at once (podman's default is 6 too)
# Layers unpacked at once. Unpacking is CPU work, much of it under the GIL (tar headers, one
# syscall wrapper after another), and one unpack already keeps about 1.5 cores busy (its
# decompressing reader thread): many at once mostly fight over the GIL (5 layers on 2 cores:
# one at a time 1.29-1.37 CPU-s, two 1.56-1.60, all five 1.60-1.89). Two, not one: when
# creating files is slow in the kernel (ext4 without a journal scanning past inodes deleted in
# the last minutes), two unpacks overlap that wait. pull_bench's image, alternating rounds:
# one 0.90 s / two 1.01 s on a quiet filesystem, 1.67 / 1.36 s after deletions, 0.99 / 0.81 s.
UNPACKERS = max(2, min(3, (os.cpu_count() or 2) // 2))
MAX_CONFIG = 8 << 20  # an image config bigger than this is not one
SHORT = 12


class Progress:
    """What pull() reports; this base class shows nothing (quiet, library use).

    The CLI's display (minirun/cli/progress.py) overrides these. Methods may be called from
    worker threads: implementations lock.
    """

    def start(self, ref: reference.Reference) -> None:
        """Before anything is fetched ("latest: Pulling from library/busybox")."""

    def layer(self, digest: str, status: str, done: int | None = None,
              total: int | None = None) -> None:
        """A layer's state: "Pulling fs layer", "Already exists", "Downloading" (with done/total),
        "Verifying Checksum", "Download complete", "Extracting", "Pull complete"."""

    def finish(self, digest: str, status: str) -> None:
        """After the record is written: the digest pulled and "Downloaded newer image for X" or
        "Image is up to date for X"."""

    def close(self) -> None:
        """Stop any redrawing (called whatever happened)."""


def insecure_for(registry: str, insecure_registries: Iterable[str] = ()) -> bool:
    """Plain HTTP allowed: loopback registries, and those the user marked insecure (by host:port,
    or by host alone for every port). $MINIRUN_INSECURE_REGISTRIES adds a comma-separated list."""
    ref_host = auth.normalize_host(registry)
    if reference.parse(f"{registry}/x").insecure_default:
        return True
    marked = [*insecure_registries,
              *os.environ.get("MINIRUN_INSECURE_REGISTRIES", "").split(",")]
    bare = ref_host[1:].split("]")[0] if ref_host.startswith("[") else ref_host.rsplit(":", 1)[0]
    for item in marked:
        host = auth.normalize_host(item) if item.strip() else ""
        if host and host in (ref_host, bare):  # "host" marks every port of host
            return True
    return False


def registry_for(registry: str, *, insecure_registries: Iterable[str] = (),
                 auth_file: str | None = None,
                 credentials: tuple[str, str] | None = None) -> Registry:
    """A registry client for `registry` with the stored credentials (if any): Docker's
    config.json first, then minirun's `auth_file` (auth.Credentials); none without auth_file."""
    if credentials is None and auth_file:
        credentials = auth.Credentials(auth_file).get(registry)
    return Registry(registry, insecure=insecure_for(registry, insecure_registries),
                    credentials=credentials)


def pull(store: Store, reference_text: str, *, platform: str | None = None,
         insecure_registries: Iterable[str] = (), auth_file: str | None = None,
         progress: Progress | None = None, quiet: bool = False,
         workers: int = WORKERS, credentials: tuple[str, str] | None = None,
         unpackers: int | None = None) -> ImageRecord:
    """Pull an image into the store; returns its record (tags and repo digest set).
    `credentials`: this pull's (user, password), instead of the stored ones (an API client's
    X-Registry-Auth: used for this request, never stored). `workers`: layers downloaded at
    once; `unpackers`: layers unpacked at once (UNPACKERS: 2, 3 from 6 cores)."""
    ref = reference.parse(reference_text)
    display = Progress() if (quiet or progress is None) else progress
    want = parse_platform(platform) if platform else None
    what = f"pull {ref.familiar}"
    added: set[str] = set()  # blobs and layers this pull put in the store
    try:
        with registry_for(ref.registry, insecure_registries=insecure_registries,
                          auth_file=auth_file, credentials=credentials) as reg, store.ingest():
            return _pull(store, reg, ref, want, display, what, max(1, workers), added,
                         unpackers or UNPACKERS)
    except BaseException:
        # A failed pull keeps nothing: what it added and no image uses is taken back (a
        # sibling layer that verified, the config), once the other pulls have named theirs.
        if added:
            try:
                store.prune_unused(only=added)
            except (ImageError, OSError):
                # Best effort (a pull nested in another ingest cannot prune): `image prune`
                # reclaims it later, and the pull's own error is the one to show.
                pass
        raise
    finally:
        display.close()


def _pull(store: Store, reg: Registry, ref: reference.Reference, want: tuple[str, str, str] | None,
          display: Progress, what: str, workers: int, added: set[str],
          unpackers: int) -> ImageRecord:
    repo = ref.repository
    display.start(ref)
    if trace.enabled:
        trace.step(f"GET /v2/{repo}/manifests/{ref.manifest_ref} from {ref.registry}",
                   "the image's manifest (or an index of them, one per platform): its config "
                   "and layers, each named by the sha256 of its bytes")
    top = reg.get_manifest(repo, ref.manifest_ref)
    manifest, index_digest = top, ""
    if top.is_index:
        chosen = select_platform(top.json, *(want or (None, None, None)), what=what)
        manifest = reg.get_manifest(repo, chosen["digest"])
        index_digest = top.digest
        if manifest.media_type not in MANIFEST_TYPES:
            raise RegistryError(f"{what}: the index entry for {platform_string(chosen['platform'])}"
                                f" is a {manifest.media_type}, not an image manifest")
    elif manifest.media_type in INDEX_TYPES or manifest.media_type not in MANIFEST_TYPES:
        raise RegistryError(f"{what}: unsupported manifest type {manifest.media_type}")
    for digest in (manifest.digest, index_digest):
        if digest and not digest.startswith("sha256:"):
            raise RegistryError(f"{what}: digest {digest}: only sha256 content is supported")

    mjson = manifest.json
    config_desc = mjson.get("config")
    layer_descs = mjson.get("layers")
    if not isinstance(config_desc, dict) or not isinstance(layer_descs, list) or not all(
            isinstance(d, dict) for d in layer_descs):
        raise RegistryError(f"{what}: manifest {manifest.digest} has no config or layers list")
    for d in (config_desc, *layer_descs):
        digest = d.get("digest")
        if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71:
            raise RegistryError(f"{what}: manifest {manifest.digest} names an invalid or "
                                f"non-sha256 digest {digest!r}")

    with store.staging() as staging:
        # The config first: it says what each layer must unpack to, before any is unpacked.
        config_id = config_desc["digest"]
        if not store.has_blob(config_id):
            size = config_desc.get("size")
            if isinstance(size, int) and size > MAX_CONFIG:
                raise RegistryError(f"{what}: config {config_id} is {size} bytes: not a config")
            path = reg.fetch_blob(repo, config_id, os.path.join(staging, "config"),
                                  size if isinstance(size, int) else None)
            store.put_blob(path, config_id, verified=True)  # fetch_blob hashed it as it came
            added.add(config_id)
        config = _read_config(store, config_id, what)
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") if isinstance(
            config.get("rootfs"), dict) else None
        if not isinstance(diff_ids, list) or len(diff_ids) != len(layer_descs) or not all(
                isinstance(x, str) for x in diff_ids):
            raise ImageError(f"{what}: config {config_id} lists "
                             f"{len(diff_ids) if isinstance(diff_ids, list) else 'no'} diff_ids "
                             f"for {len(layer_descs)} layers")
        for x in diff_ids:
            if not (x.startswith("sha256:") and len(x) == 71):
                raise ImageError(f"{what}: config {config_id}: invalid diff_id {x!r}")
        if want:
            got = (config.get("os"), config.get("architecture"))
            if got != want[:2]:
                raise RegistryError(f"{what}: the image is for {got[0]}/{got[1]}, not "
                                    f"{'/'.join(p for p in want if p)}")

        if trace.enabled:
            trace.step(f"GET .../blobs/{config_id[:19]}... (the config)", "its rootfs.diff_ids "
                       "say what each layer must unpack to, before any is unpacked")
            for i, (d, diff) in enumerate(zip(layer_descs, diff_ids), 1):
                trace.step(f"GET .../blobs/{d['digest'][:19]}... ({d.get('size', '?')} bytes) "
                           f"-> layer {i}/{len(diff_ids)}, {diff[:19]}...",
                           "downloaded and unpacked as it arrives; kept only if the blob's "
                           "sha256 and the unpacked tar's (its diff_id) both match")
        _layers(store, reg, repo, layer_descs, diff_ids, staging, display, what, workers, added,
                unpackers)

    # Content first, then the record naming it, then the tags (add_image writes both in order).
    store.put_blob(manifest.raw_bytes, manifest.digest)
    if index_digest:
        store.put_blob(top.raw_bytes, index_digest)
    tags = [ref.with_tag(ref.tag).name] if ref.tag else []
    repo_digest = ref.with_digest(top.digest).name
    before = _named(store, tags + [repo_digest])
    record = ImageRecord(
        id=config_id, diff_ids=list(diff_ids), layers=[d["digest"] for d in layer_descs],
        manifest=manifest.digest, index=index_digest, repo_tags=tags, repo_digests=[repo_digest],
        created=str(config.get("created") or ""), platform=_platform_of(config))
    up_to_date = store.has_image(config_id) and all(before.get(n) == config_id for n in before)
    stored = store.add_image(record)
    shown = reference.parse(tags[0]).familiar if tags else reference.parse(repo_digest).familiar
    display.finish(top.digest, ("Image is up to date for " if up_to_date
                                else "Downloaded newer image for ") + shown)
    return stored


def _layers(store: Store, reg: Registry, repo: str, descs: list[dict], diff_ids: list[str],
            staging: str, display: Progress, what: str, workers: int, added: set[str],
            unpackers: int) -> None:
    """Fetch every layer not in the store yet, `workers` at a time, and unpack them,
    `unpackers` at a time; what is new in the store goes into `added`."""
    todo: dict[str, tuple[dict, str]] = {}  # diff_id -> (descriptor, diff_id), each once
    for desc, diff_id in zip(descs, diff_ids):
        key = desc["digest"][7:7 + SHORT]
        # Skip only when both are here: the record names the compressed blob too (save and
        # push need it), and the layer may have come from an archive with other compression.
        if store.has_layer(diff_id) and store.has_blob(desc["digest"]):
            display.layer(key, "Already exists")
        elif diff_id not in todo:
            todo[diff_id] = (desc, diff_id)
            display.layer(key, "Pulling fs layer")
    if not todo:
        return
    stop = threading.Event()
    errors: list[BaseException] = []
    slots = threading.BoundedSemaphore(max(1, unpackers))

    def download(desc: dict, key: str, size: int | None,
                 tee: Callable[[bytes | None], None] | None = None) -> str:
        digest = desc["digest"]
        display.layer(key, "Downloading", 0, size)
        path = reg.fetch_blob(repo, digest, os.path.join(staging, digest[7:]), size,
                              lambda done, total: display.layer(key, "Downloading", done, total),
                              stop=stop, tee=tee)
        display.layer(key, "Verifying Checksum")
        # fetch_blob hashed it while it streamed and fsynced it: renamed in, not read again
        path = store.put_blob(path, digest, verified=True)
        added.add(digest)
        display.layer(key, "Download complete")
        return path

    def check(info: layers.LayerInfo, digest: str, diff_id: str) -> None:
        if info.diff_id != diff_id:
            # Raised inside new_layer: the unpacked directory is removed, not committed.
            raise ImageError(f"{what}: layer {digest} unpacks to {info.diff_id}, but the "
                             f"config says {diff_id}: image refused, nothing was kept")
        added.add(diff_id)

    def apply(src: str | _Tee, target: str, desc: dict) -> layers.LayerInfo:
        try:
            return layers.apply_layer(src, target, desc.get("mediaType"))
        except layers.LayerError as e:
            raise layers.LayerError(f"{what}: layer {desc['digest']}: {e}") from None

    def unpack_slot() -> None:
        """Wait for one of the `unpackers` slots (or for a sibling's failure)."""
        while not slots.acquire(timeout=0.1):
            if stop.is_set():
                raise RegistryError(f"{what}: cancelled")

    def one(desc: dict, diff_id: str) -> None:
        digest = desc["digest"]
        key = digest[7:7 + SHORT]
        size = desc.get("size") if isinstance(desc.get("size"), int) else None
        if store.has_blob(digest):
            path = store.blob_path(digest)
            if stop.is_set():
                raise RegistryError(f"{what}: cancelled")
            display.layer(key, "Extracting")
            with store.new_layer(diff_id) as target:
                if target is not None:
                    unpack_slot()
                    try:
                        check(apply(path, target, desc), digest, diff_id)
                    finally:
                        slots.release()
            display.layer(key, "Pull complete")
            return
        with store.new_layer(diff_id) as target:
            if target is None:  # unpacked already (another pull, or an archive): the blob only
                download(desc, key, size)
            elif slots.acquire(blocking=False):  # unpacked as it arrives
                try:
                    check(streamed(desc, key, size, target), digest, diff_id)
                finally:
                    slots.release()
            else:  # every unpacker is busy: download now, unpack from the blob when one is free
                path = download(desc, key, size)
                unpack_slot()
                try:
                    display.layer(key, "Extracting")
                    check(apply(path, target, desc), digest, diff_id)
                finally:
                    slots.release()
        display.layer(key, "Pull complete")

    def streamed(desc: dict, key: str, size: int | None, target: str) -> layers.LayerInfo:
        """Download and unpack at once: the unpacker (its own thread) reads the chunks fetch_blob
        hands over as they arrive. Nothing is trusted early: the layer directory is committed
        (by new_layer, after this returns) only when the blob's digest matched (fetch_blob
        returned) and the tar's sha256 is the config's diff_id (check)."""
        tee = _Tee(stop)
        out: dict[str, object] = {}

        def unpack() -> None:
            try:
                out["info"] = apply(tee, target, desc)
            except BaseException as e:  # noqa: BLE001 - raised by the worker, below
                out["error"] = e
            finally:
                tee.close()  # the download goes on without it: its own error wins

        thread = threading.Thread(target=unpack, name="minirun-unpack", daemon=True)
        thread.start()
        try:
            path = download(desc, key, size, tee.feed)
        except BaseException:
            tee.fail()
            thread.join()
            raise
        tee.end()
        display.layer(key, "Extracting")
        thread.join()
        if stop.is_set():
            raise RegistryError(f"{what}: cancelled")
        if tee.restarted:
            # The registry sent the blob again from byte 0 (ignored our Range): what was
            # unpacked was undone by apply_layer's error; unpack the verified blob instead.
            return apply(path, target, desc)
        if "error" in out:
            raise out["error"]  # type: ignore[misc]
        return out["info"]  # type: ignore[return-value]

    pool = ThreadPoolExecutor(max_workers=min(workers, len(todo)), thread_name_prefix="minirun-pull")
    try:
        futures = [pool.submit(one, desc, diff_id) for desc, diff_id in todo.values()]
        for fut in as_completed(futures):
            try:
                fut.result()
            except BaseException as e:  # noqa: BLE001 - the first is raised once the rest stop
                if not errors:
                    stop.set()
                    for other in futures:
                        other.cancel()
                errors.append(e)
    except BaseException:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if errors:
        # A sibling's "cancelled" must not hide the error that caused it.
        first = next((e for e in errors if "cancelled" not in str(e)), errors[0])
        raise first


class _Tee:
    """A layer's compressed bytes, from the download (feed) to apply_layer (read), in order.

    The queue holds at most QUEUED chunks (1 MiB each), so a slow unpack slows the download
    instead of filling memory. Once the reader is gone (close: it finished or failed) feed()
    drops chunks, so the download completes and its verdict (digest, size) comes first.
    feed(None) (the download starts again from byte 0) or fail() make read() raise: apply_layer
    then undoes what it wrote.
    """

    QUEUED = 8

    def __init__(self, stop: threading.Event) -> None:
        self.queue: queue.Queue = queue.Queue(self.QUEUED)
        self.stop = stop
        self.closed = False
        self.restarted = False
        self.failed = False
        self.eof = False
        self.buf = b""

    # the download's side

    def feed(self, chunk: bytes | None) -> None:
        if chunk is None:
            self.restarted = True
            self._put(_Broken("the download started again"))
        elif not (self.restarted or self.failed):
            self._put(chunk)

    def end(self) -> None:
        self._put(b"")

    def fail(self) -> None:
        self.failed = True
        self._put(_Broken("the download failed"))

    def _put(self, item: bytes | BaseException) -> None:
        while not self.closed and not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                pass

    # apply_layer's side

    def read(self, n: int = -1) -> bytes:
        while not self.buf:
            if self.eof:
                return b""
            try:
                item = self.queue.get(timeout=0.1)
            except queue.Empty:
                if self.failed or self.stop.is_set():  # fail() may have found no room
                    raise _Broken("the download failed") from None
                continue
            if isinstance(item, BaseException):
                raise item
            if not item:
                self.eof = True
            self.buf = item
        if n < 0 or n >= len(self.buf):
            out, self.buf = self.buf, b""
        else:
            out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def close(self) -> None:
        self.closed = True
        while True:  # unblock a feed() waiting for room
            try:
                self.queue.get_nowait()
            except queue.Empty:
                return


class _Broken(Exception):
    """What a _Tee reader gets when the download it follows failed or restarted."""


def _read_config(store: Store, config_id: str, what: str) -> dict:
    with store.open_blob(config_id) as f:
        data = f.read(MAX_CONFIG + 1)
    try:
        config = json.loads(data)
    except ValueError:
        config = None
    if not isinstance(config, dict):
        raise ImageError(f"{what}: config {config_id} is not a JSON object")
    return config


def _platform_of(config: dict) -> str:
    platform = {k: config.get(k) for k in ("os", "architecture", "variant") if config.get(k)}
    return platform_string(platform) if platform else ""


def _named(store: Store, names: list[str]) -> dict[str, str]:
    """What these canonical names point at now (name -> image ID)."""
    try:
        refs = store._refs()  # noqa: SLF001 - one read of repositories.json
    except (OSError, ValueError):
        return {}
    return {n: refs.get(n, "") for n in names}


__all__ = ["Progress", "pull", "insecure_for", "registry_for"]
