"""The image store: verified blobs, layers unpacked once, image records and tags, on disk.

Layout under the root (default /var/lib/minirun; the caller passes it), after /var/lib/docker
and containerd's content store:

  blobs/sha256/<hex>     content by digest: manifests, configs, compressed layers. A file here
                         always hashes to its name: it is streamed to tmp/ through sha256,
                         fsynced, and renamed in only if the digest matches.
  layers/<id>/           one unpacked layer, used read-only as an overlay lowerdir. <id> is the
                         first 12 hex of the layer's diff_id (longer only if two diff_ids share
                         those 12): overlay takes all lowerdirs in one page of mount options, and
                         short names are what lets an image with 100+ layers fit.
  layers/<id>.json       {"diff_id", "size", "created"}: maps the short name back to the full
                         diff_id. Written before the directory is renamed in, so every layer
                         directory has its record (the record alone is not a layer).
  images/<hex>.json      one ImageRecord per image; <hex> is the config digest, i.e. the image ID.
  repositories.json      {"docker.io/library/alpine:latest": "sha256:<id>", ...}: every tag and
                         repo digest in one file, so moving a tag is a single atomic rename.
  tmp/                   downloads and unpacks in flight. Each entry is flock()ed by the process
                         writing it, so one nobody holds is junk from a crash; opening the store
                         or prune_unused() clears it.
  lock                   flock: one writer of records and tags at a time (readers need no lock:
                         every file they read is replaced whole by rename).
  ingest.lock            flock: shared while a pull or load adds content, exclusive for
                         prune_unused(), so content not yet named by a record is never collected.

Crash consistency at any point comes from three rules:
  1. Everything appears by rename(2) of a complete, fsynced object, then an fsync of its directory.
  2. Order: blobs and layers before the record naming them, the record before the tags naming it;
     removal in reverse (tags, then the record; unreferenced content later, by prune_unused).
  3. A crash therefore leaves junk only in tmp/ or as unreferenced content, never a record
     pointing at a missing layer, nor a half-written blob or layer under its final name.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import threading
from typing import BinaryIO, Iterator

# hashlib (~2 ms: it loads libcrypto), shutil (~1.5 ms with bz2, lzma) and tempfile (~0.8 ms)
# are imported where blobs are written, layers removed or tmp/ entries made: `minirun images`
# and `inspect` only read records.

from .. import fastjson
from ..base.atomicfile import AtomicFile, fsync_dir, write_atomic
from ..base.filelock import FileLock, same_file
from ..base.times import now
from ..errors import DigestError, ImageError, InvalidArgument, KernelError, NotFound, \
    ReferenceError
from ..record import asdict, dataclass, field, field_names
from . import reference

DEFAULT_ROOT = "/var/lib/minirun"
SHORT_ID = 12  # hex digits in a layer directory name and the shortest image ID prefix accepted
_SHA256 = re.compile(r"sha256:([0-9a-f]{64})")
_ID_PREFIX = re.compile(r"(?:sha256:)?([0-9a-f]{%d,64})" % SHORT_ID)
_CHUNK = 1 << 20


class NoSuchImage(ImageError, NotFound):
    """No image by that name, ID or ID prefix (Docker's "No such image", 404)."""


class AmbiguousImage(ImageError, InvalidArgument):
    """An ID prefix that matches several images: give more digits."""


@dataclass
class ImageRecord:
    """What the store knows about one image (images/<hex>.json, plus its tags).

    repo_tags and repo_digests are canonical references (docker.io/library/alpine:latest); on
    disk they live in repositories.json, and the store fills them in when it reads a record.
    """

    id: str  # config digest, "sha256:<hex>": the image ID
    diff_ids: list[str] = field(default_factory=list)  # uncompressed layer digests, base first
    layers: list[str] = field(default_factory=list)  # compressed layer blob digests (manifest order)
    manifest: str = ""  # digest of the image manifest
    index: str = ""  # digest of the index / manifest list it was chosen from, if any
    repo_tags: list[str] = field(default_factory=list)
    repo_digests: list[str] = field(default_factory=list)
    created: str = ""  # from the config, RFC 3339
    size: int = 0  # bytes of unpacked layers (Docker's Size); filled by add_image when 0
    platform: str = ""  # os/architecture[/variant]

    @property
    def short_id(self) -> str:
        """The 12 hex digits `docker images` shows."""
        return self.id.partition(":")[2][:SHORT_ID]

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return fastjson.dumps(dict(sorted(self.to_dict().items())), indent=1)  # flat: sorted

    @classmethod
    def from_dict(cls, data: dict) -> ImageRecord:
        """Build from a dict; keys this version does not know are ignored (forward compatible)."""
        known = set(field_names(cls))
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_json(cls, text: str | bytes) -> ImageRecord:
        return cls.from_dict(fastjson.loads(text))


@dataclass
class Pruned:
    """What prune_unused() removed."""

    blobs: list[str] = field(default_factory=list)  # digests
    layers: list[str] = field(default_factory=list)  # diff_ids
    reclaimed: int = 0  # bytes


class BlobWriter:
    """A blob being written: hashes what it is given; the store verifies and commits it."""

    def __init__(self, fileobj: BinaryIO, expected: str) -> None:
        import hashlib  # (~2 ms: see the imports)

        self._file = fileobj
        self._hash = hashlib.sha256()
        self.expected = expected
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self._file.write(data)
        self.size += len(data)
        return len(data)

    @property
    def digest(self) -> str:
        """The digest of what was written so far."""
        return "sha256:" + self._hash.hexdigest()


class Store:
    """The content-addressed image store under `root` (see the module docstring for the layout).

    Opening it creates the layout if needed and clears tmp/ entries left by crashed writers.
    `sync=False` skips the fsyncs and the sync before a layer is committed (tests, throwaway
    stores): a process crash is still safe, a power loss may not be.
    """

    def __init__(self, root: str = DEFAULT_ROOT, *, sync: bool = True) -> None:
        self.root = os.path.abspath(root)
        self.sync = sync
        self.blobs_dir = os.path.join(self.root, "blobs", "sha256")
        self.layers_dir = os.path.join(self.root, "layers")
        self.images_dir = os.path.join(self.root, "images")
        self.tmp_dir = os.path.join(self.root, "tmp")
        self.refs_path = os.path.join(self.root, "repositories.json")
        self._local = threading.local()  # per-thread depth of lock() / ingest()
        # 0700, every directory (Docker's /var/lib/docker/image and overlay2, after
        # CVE-2021-41091): layers/<id> holds an image's files, setuid-root programs included,
        # and overlay's options in /proc/mounts, which any host user may read, name them.
        # Searchable by others, layers/ would let any of them run the image's setuid binaries
        # as root on the host (or read its files); blobs/ holds the same files compressed and
        # images/ their configs. Containers need none of it: overlayfs checks its lower
        # directories with the credentials of its mounter (root), a user-namespaced container's
        # too (tests/integration/test_cve_2021_41091.py). A store an older minirun made 0755 is
        # fixed here (a few stats per open).
        for d in (self.blobs_dir, os.path.dirname(self.blobs_dir), self.layers_dir,
                  self.images_dir, self.tmp_dir):
            os.makedirs(d, mode=0o700, exist_ok=True)
            try:
                if stat.S_IMODE(os.stat(d).st_mode) != 0o700:
                    os.chmod(d, 0o700)
            except OSError:
                pass  # not ours (another user's store, read only)
        self.clean_tmp()

    # --- locks -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the writer lock: records and tags change under it. Re-entrant within a thread,
        so a command can group steps (rmi: untag, then delete if no tag is left) atomically.
        Do not fork while holding it: the child shares the flock and keeps it held."""
        depth = getattr(self._local, "lock_depth", 0)
        if depth:
            self._local.lock_depth = depth + 1
            try:
                yield
            finally:
                self._local.lock_depth -= 1
            return
        with FileLock(os.path.join(self.root, "lock")):
            self._local.lock_depth = 1
            try:
                yield
            finally:
                self._local.lock_depth = 0

    @contextlib.contextmanager
    def ingest(self) -> Iterator[None]:
        """Wrap a pull, load or build: while any is open, prune_unused() waits, so blobs and
        layers written but not yet named by a record are not collected as unused."""
        self._local.ingest_depth = getattr(self._local, "ingest_depth", 0) + 1
        try:
            with FileLock(os.path.join(self.root, "ingest.lock"), shared=True):
                yield
        finally:
            self._local.ingest_depth -= 1

    # --- blobs -------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> str:
        """Where the blob with this digest lives (whether or not it is there)."""
        return os.path.join(self.blobs_dir, _hex(digest))

    def has_blob(self, digest: str) -> bool:
        return os.path.isfile(self.blob_path(digest))

    def open_blob(self, digest: str) -> BinaryIO:
        """The blob, opened for binary reading."""
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise ImageError(f"blob {digest} is not in the store ({self.root})") from None

    def blobs(self) -> list[str]:
        """Digests of every blob in the store."""
        return sorted("sha256:" + n for n in os.listdir(self.blobs_dir) if _SHA256.fullmatch("sha256:" + n))

    @contextlib.contextmanager
    def new_blob(self, expected_digest: str) -> Iterator[BlobWriter]:
        """Stream a blob in: write() to the yielded BlobWriter; on a clean exit the content is
        verified against `expected_digest` and renamed into blobs/. On an exception or a digest
        mismatch (DigestError naming both digests) nothing is kept."""
        hexd = _hex(expected_digest)
        path, fd = self._tmp_entry(f"blob-{hexd[:SHORT_ID]}-", directory=False)
        try:
            # Written in tmp/ (flocked: clean_tmp leaves it alone), renamed in once verified.
            with AtomicFile(self.blob_path(expected_digest), mode=0o644, fsync=self.sync,
                            fsync_dir=self.sync, tmp=path) as f:
                writer = BlobWriter(f, expected_digest)
                yield writer
                if writer.digest != expected_digest:
                    raise DigestError(f"blob {expected_digest}: content has digest "
                                      f"{writer.digest} ({writer.size} bytes); nothing was kept")
        finally:
            os.close(fd)

    def put_blob(self, src: BinaryIO | str | os.PathLike | bytes, expected_digest: str, *,
                 verified: bool = False) -> str:
        """Store content from a file object, a path or bytes under `expected_digest`; returns its
        path. Verified before it is kept: a mismatch raises DigestError and keeps nothing. A blob
        already present is not read again (content-addressed: same digest, same bytes).

        A path inside a staging() directory is moved, not copied: a 100 MB layer downloaded there
        is hashed once more and renamed into blobs/, never written twice. `verified=True` says
        that this process has just hashed and fsynced that file while writing it (the registry
        client's fetch_blob does, and renames it to its name only once the digest matched): it
        is renamed in without being read a second time. Only for a path in tmp/ (0700, ours)."""
        if self.has_blob(expected_digest):
            return self.blob_path(expected_digest)
        if isinstance(src, (str, os.PathLike)) and os.path.abspath(src).startswith(self.tmp_dir + os.sep):
            return self._adopt(os.path.abspath(src), expected_digest, verified=verified)
        with self.new_blob(expected_digest) as w:
            if isinstance(src, (bytes, bytearray, memoryview)):
                w.write(bytes(src))
            elif isinstance(src, (str, os.PathLike)):
                with open(src, "rb") as f:
                    _copy(f, w)
            else:
                _copy(src, w)
        return self.blob_path(expected_digest)

    @contextlib.contextmanager
    def staging(self) -> Iterator[str]:
        """A private directory in tmp/ for downloads (e.g. the registry client's fetch_blobs
        dest_dir), removed on exit. It is flock()ed, so clean_tmp() run by another process
        (any Store() open) leaves it alone; after a crash it is junk and is cleared."""
        path, fd = self._tmp_entry("staging-", directory=True)
        try:
            yield path
        finally:
            _remove_tree(path)
            os.close(fd)

    def private_dir(self, prefix: str) -> tuple[str, int]:
        """A new directory in tmp/ for work that outlives one call (a build step's overlay):
        its path and the fd whose flock keeps clean_tmp() -- any Store() opened by another
        command or API request meanwhile -- from removing it. Close the fd when done."""
        return self._tmp_entry(prefix, directory=True)

    def _adopt(self, path: str, expected_digest: str, *, verified: bool = False) -> str:
        """Verify a file already in tmp/ (same filesystem) and rename it into blobs/
        (verified: the caller hashed and fsynced it as it wrote it: see put_blob)."""
        import hashlib  # (~2 ms: see the imports)

        target = self.blob_path(expected_digest)
        if verified:
            actual = expected_digest
        else:
            with open(path, "rb") as f:
                actual = "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()
                if actual == expected_digest and self.sync:
                    os.fsync(f.fileno())
        if actual != expected_digest:
            _unlink(path)
            raise DigestError(f"blob {expected_digest}: content has digest {actual}; nothing was kept")
        os.chmod(path, 0o644)
        os.rename(path, target)
        self._fsync_dir(self.blobs_dir)
        return target

    # --- layers ------------------------------------------------------------------------------

    def has_layer(self, diff_id: str) -> bool:
        return self._layer_name(_hex(diff_id)) is not None

    def layer_name(self, diff_id: str) -> str:
        """The layer's directory name under layers_dir: short, for overlay's one-page options."""
        name = self._layer_name(_hex(diff_id))
        if name is None:
            raise ImageError(f"layer {diff_id} is not in the store ({self.root}): pull the image again")
        return name

    def layer_dir(self, diff_id: str) -> str:
        """The unpacked layer's directory (an overlay lowerdir); ImageError if it is missing."""
        return os.path.join(self.layers_dir, self.layer_name(diff_id))

    def layer_size(self, diff_id: str) -> int:
        """Bytes in the unpacked layer, as measured when it was committed."""
        return int(_read_json(os.path.join(self.layers_dir, self.layer_name(diff_id) + ".json"))["size"])

    def layers(self) -> list[str]:
        """diff_ids of every layer in the store."""
        return sorted(diff for diff, _ in self._layer_records() if self.has_layer(diff))

    @contextlib.contextmanager
    def new_layer(self, diff_id: str) -> Iterator[str | None]:
        """Create a layer once. Yields an empty directory for the unpacker to fill, renamed into
        place when the block exits cleanly and removed if it raises; yields None when the layer
        is already there, including when a concurrent creator (thread or process) finished it
        while we waited: the caller then skips its unpack.

            with store.new_layer(diff_id) as target:
                if target is not None:
                    layers.apply(blob, target)
        """
        hexd = _hex(diff_id)
        if self._layer_name(hexd) is not None:
            yield None
            return
        # Creators of layers sharing a short name serialize here; the loser finds it done.
        with FileLock(os.path.join(self.tmp_dir, f"layer-{hexd[:SHORT_ID]}.lock"),
                      remove=True):
            if self._layer_name(hexd) is not None:
                yield None
                return
            name = self._claim_layer_name(hexd)
            tmp, fd = self._tmp_entry(f"layer-{hexd[:SHORT_ID]}-", directory=True)
            try:
                os.chmod(tmp, 0o755)  # the rootfs "/" of a container unless the tar sets it
                yield tmp
                size = _tree_size(tmp)
                if self.sync:
                    # the files' data must be on disk before the rename makes them a layer: one
                    # syncfs() of the store's filesystem, not a fsync per file, nor a sync() of
                    # every filesystem of the host
                    _syncfs(fd, tmp)
                final = os.path.join(self.layers_dir, name)
                if os.path.lexists(final):  # a directory without its record: junk from tampering
                    self._discard(final)
                self._write_atomic(os.path.join(self.layers_dir, name + ".json"),
                                   {"diff_id": diff_id, "size": size, "created": now(6)})
                os.rename(tmp, final)
                self._fsync_dir(self.layers_dir)
            except BaseException:
                _remove_tree(tmp)
                raise
            finally:
                os.close(fd)

    # --- images and tags ---------------------------------------------------------------------

    def has_image(self, image_id: str) -> bool:
        return os.path.isfile(self._image_path(image_id))

    def image(self, image_id: str) -> ImageRecord:
        """The record of the image with this full ID ("sha256:<hex>" or "<hex>")."""
        try:
            data = _read_json(self._image_path(image_id))
        except FileNotFoundError:
            raise NoSuchImage(f"no such image: {image_id}") from None
        record = ImageRecord.from_dict(data)
        self._attach_refs([record], self._refs())
        return record

    def images(self) -> list[ImageRecord]:
        """Every image, newest first (as `docker images` lists them)."""
        records = []
        for name in os.listdir(self.images_dir):
            if name.endswith(".json") and _SHA256.fullmatch("sha256:" + name[:-5]):
                try:
                    records.append(ImageRecord.from_dict(_read_json(os.path.join(self.images_dir, name))))
                except FileNotFoundError:  # deleted while we listed
                    continue
        self._attach_refs(records, self._refs())
        records.sort(key=lambda r: (r.created, r.id), reverse=True)
        return records

    def dangling(self) -> list[ImageRecord]:
        """Images without a tag (`<none>:<none>`; a repo digest alone does not name an image)."""
        return [r for r in self.images() if not r.repo_tags]

    def add_image(self, record: ImageRecord) -> ImageRecord:
        """Write an image record, then point its repo_tags and repo_digests at it (moving a tag
        from another image leaves that one dangling; existing refs to this image are kept).
        Its config blob and every layer must already be in the store. Returns the stored record."""
        for digest in (record.id, *record.diff_ids, *record.layers, record.manifest, record.index):
            if digest:
                _hex(digest)
        names = [_ref_name(t, want="tag") for t in record.repo_tags]
        names += [_ref_name(d, want="digest") for d in record.repo_digests]
        with self.lock():
            if not self.has_blob(record.id):
                raise ImageError(f"image {record.id}: its config blob is not in the store; put it first")
            missing = [d for d in record.diff_ids if not self.has_layer(d)]
            if missing:
                raise ImageError(f"image {record.id}: layer {missing[0]} is not in the store; "
                                 "unpack the layers before adding the image")
            on_disk = ImageRecord(**{**record.to_dict(), "repo_tags": [], "repo_digests": []})
            if not on_disk.size:
                on_disk.size = sum(self.layer_size(d) for d in dict.fromkeys(record.diff_ids))
            self._write_atomic(self._image_path(record.id), on_disk.to_dict())
            refs = self._refs()
            if any(refs.get(n) != record.id for n in names):
                refs.update(dict.fromkeys(names, record.id))
                self._write_refs(refs)
            return self.image(record.id)

    def tag(self, ref: str | reference.Reference, image_id: str) -> str:
        """Point tag `ref` (moved if it names another image) at an image; returns its canonical name."""
        name = _ref_name(ref, want="tag")
        with self.lock():
            full = self.image(image_id).id
            refs = self._refs()
            if refs.get(name) != full:
                refs[name] = full
                self._write_refs(refs)
        return name

    def untag(self, ref: str | reference.Reference) -> str:
        """Remove a tag or repo digest; returns the ID of the image it named."""
        r = ref if isinstance(ref, reference.Reference) else reference.parse(ref)
        with self.lock():
            refs = self._refs()
            image_id = refs.pop(r.name, None)
            if image_id is None:
                raise NoSuchImage(f"no such image: {r.familiar}")
            self._write_refs(refs)
        return image_id

    def resolve(self, text: str) -> ImageRecord:
        """The image `text` names, as `docker run`/`rmi`/`inspect` accept it: a reference
        (alpine, alpine:3, name@sha256:..., name:tag@sha256:..., the digest winning), a full image
        ID, or a unique prefix of one of at least 12 hex digits (optionally "sha256:")."""
        id_match = _ID_PREFIX.fullmatch(text)
        if id_match and len(id_match[1]) == 64:
            return self.image(id_match[1])
        try:
            ref = reference.parse(text)
        except ReferenceError:
            if not id_match:
                raise
            ref = None
        if ref is not None:
            refs = self._refs()
            # The digest wins: name:tag@digest must not give whatever the tag names now.
            key = ref.with_digest(ref.digest).name if ref.digest else ref.name
            if key in refs and self.has_image(refs[key]):
                return self.image(refs[key])
        if id_match:
            prefix = id_match[1]
            found = [n[:-5] for n in os.listdir(self.images_dir)
                     if n.endswith(".json") and n.startswith(prefix)]
            if len(found) == 1:
                return self.image(found[0])
            if len(found) > 1:
                raise AmbiguousImage(f"image ID prefix {prefix} is ambiguous: it matches {len(found)} "
                                 "images; give more digits")
        raise NoSuchImage(f"no such image: {ref.familiar if ref else text}")

    def delete_image(self, image_id: str) -> None:
        """Remove an image's tags, repo digests and record. Its layers and blobs stay until
        prune_unused() finds no other image uses them."""
        with self.lock():
            full = self.image(image_id).id
            refs = self._refs()
            kept = {k: v for k, v in refs.items() if v != full}
            if kept != refs:
                self._write_refs(kept)  # tags first: a crash now leaves a dangling image, not a dead tag
            os.unlink(self._image_path(full))
            self._fsync_dir(self.images_dir)

    # --- garbage collection ------------------------------------------------------------------

    def prune_unused(self, only: set[str] | None = None) -> Pruned:
        """Remove blobs and layers no image record references, tags naming missing images, and
        tmp/ junk. Waits for pulls in progress (ingest()) to finish; must not be called inside
        lock() or ingest() (lock order: ingest.lock, then lock).

        `only`: consider just these blob digests and layer diff_ids (what a failed pull added:
        it takes back what no image came to use meanwhile)."""
        if getattr(self._local, "lock_depth", 0) or getattr(self._local, "ingest_depth", 0):
            raise ImageError("prune_unused() called inside lock() or ingest(): it would deadlock")
        pruned = Pruned()
        with FileLock(os.path.join(self.root, "ingest.lock")), self.lock():
            self.clean_tmp()
            records = self.images()
            refs = self._refs()
            live = {r.id for r in records}
            if any(v not in live for v in refs.values()):
                self._write_refs({k: v for k, v in refs.items() if v in live})
            keep_blobs = {d for r in records for d in (r.id, r.manifest, r.index, *r.layers) if d}
            keep_layers = {d for r in records for d in r.diff_ids}
            # The build cache (engine/builder.py) names configs of steps no image keeps: they,
            # and their layers, stay until `builder prune` forgets the cache.
            for digest in self._build_cache_configs():
                keep_blobs.add(digest)
                try:
                    with self.open_blob(digest) as f:
                        keep_layers.update(fastjson.loads(f.read())["rootfs"]["diff_ids"])
                except (OSError, ValueError, KeyError, TypeError):
                    pass

            for digest in self.blobs():
                if digest not in keep_blobs and (only is None or digest in only):
                    path = self.blob_path(digest)
                    pruned.reclaimed += os.lstat(path).st_size
                    os.unlink(path)
                    pruned.blobs.append(digest)
            self._fsync_dir(self.blobs_dir)

            named = set()
            for diff_id, name in self._layer_records():
                named.add(name)
                if diff_id in keep_layers or (only is not None and diff_id not in only):
                    continue
                directory = os.path.join(self.layers_dir, name)
                if os.path.lexists(directory):
                    pruned.reclaimed += _tree_size(directory)
                    pruned.layers.append(diff_id)
                    self._discard(directory)  # out of layers/ first: never a half-removed layer
                _unlink(os.path.join(self.layers_dir, name + ".json"))
            for name in os.listdir(self.layers_dir) if only is None else ():  # without a record
                if not name.endswith(".json") and name not in named:
                    self._discard(os.path.join(self.layers_dir, name))
            self._fsync_dir(self.layers_dir)
        return pruned

    def _build_cache_configs(self) -> set[str]:
        try:
            with open(os.path.join(self.root, "build-cache.json")) as f:
                return {d for d in fastjson.loads(f.read()).values() if isinstance(d, str) and self.has_blob(d)}
        except (OSError, ValueError, AttributeError):
            return set()

    def clean_tmp(self) -> None:
        """Remove tmp/ entries no live writer holds (junk from a crash). Safe to run while other
        processes write: each entry is flock()ed by its writer, and we only take free ones."""
        try:
            names = os.listdir(self.tmp_dir)
        except OSError:
            return
        for name in names:
            path = os.path.join(self.tmp_dir, name)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as e:
                if e.errno == errno.ELOOP:  # a symlink: no writer of ours makes one
                    _unlink(path)
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue  # a live writer holds it
            try:
                _remove_tree(path)
            except OSError:
                pass  # best effort: the next open or prune tries again
            finally:
                os.close(fd)

    # --- internals ---------------------------------------------------------------------------

    def _image_path(self, image_id: str) -> str:
        hexd = image_id if _SHA256.fullmatch("sha256:" + image_id) else _hex(image_id)
        return os.path.join(self.images_dir, hexd + ".json")

    def _refs(self) -> dict[str, str]:
        try:
            return dict(_read_json(self.refs_path))
        except FileNotFoundError:
            return {}

    def _write_refs(self, refs: dict[str, str]) -> None:
        self._write_atomic(self.refs_path, dict(sorted(refs.items())))

    @staticmethod
    def _attach_refs(records: list[ImageRecord], refs: dict[str, str]) -> None:
        by_id = {r.id: r for r in records}
        for r in records:
            r.repo_tags, r.repo_digests = [], []
        for name, image_id in sorted(refs.items()):
            record = by_id.get(image_id)
            if record is not None:
                (record.repo_digests if "@" in name else record.repo_tags).append(name)

    def _layer_records(self) -> Iterator[tuple[str, str]]:
        """(diff_id, short name) for every layers/<name>.json."""
        for entry in os.listdir(self.layers_dir):
            if entry.endswith(".json"):
                try:
                    yield _read_json(os.path.join(self.layers_dir, entry))["diff_id"], entry[:-5]
                except (FileNotFoundError, KeyError, ValueError):
                    continue

    def _layer_name(self, hexd: str) -> str | None:
        """The committed layer's short name: the shortest prefix whose record names this diff_id
        and whose directory exists. Every length is tried: a clash may have pushed it longer."""
        for n in range(SHORT_ID, 65, 4):
            name = hexd[:n]
            try:
                owner = _read_json(os.path.join(self.layers_dir, name + ".json")).get("diff_id")
                if owner == "sha256:" + hexd:
                    return name if os.path.isdir(os.path.join(self.layers_dir, name)) else None
            except (FileNotFoundError, ValueError):
                continue
        return None

    def _claim_layer_name(self, hexd: str) -> str:
        """The shortest prefix not held by another diff_id's record (called under the layer lock)."""
        for n in range(SHORT_ID, 65, 4):
            name = hexd[:n]
            try:
                owner = _read_json(os.path.join(self.layers_dir, name + ".json")).get("diff_id")
            except FileNotFoundError:
                return name
            except ValueError:
                owner = None  # an unreadable record claims nothing
            if owner in (None, "sha256:" + hexd):
                return name
        raise ImageError(f"layer sha256:{hexd}: every name is taken (corrupt store at {self.layers_dir})")

    def _tmp_entry(self, prefix: str, *, directory: bool) -> tuple[str, int]:
        """A new file or directory in tmp/, flock()ed by us (so clean_tmp leaves it alone).
        Returns its path and the fd holding the lock."""
        import tempfile  # (~0.8 ms: see the imports)

        while True:
            if directory:
                path = tempfile.mkdtemp(prefix=prefix, dir=self.tmp_dir)
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            else:
                fd, path = tempfile.mkstemp(prefix=prefix, dir=self.tmp_dir)
            fcntl.flock(fd, fcntl.LOCK_EX)
            # A cleaner may have taken and removed it between creation and our flock: retry.
            if same_file(fd, path):
                return path, fd
            os.close(fd)

    def _write_atomic(self, path: str, data: dict) -> None:
        """Replace `path` with JSON `data`: temp file in tmp/ (flocked, so clean_tmp leaves it
        alone), fsync, rename, fsync the directory (base/atomicfile.py)."""
        tmp, fd = self._tmp_entry("json-", directory=False)
        try:
            write_atomic(path, fastjson.dumps(data, indent=1), mode=0o644, fsync=self.sync,
                         fsync_dir=self.sync, tmp=tmp)
        finally:
            os.close(fd)

    def _discard(self, path: str) -> None:
        """Remove a tree atomically as far as readers can tell: rename it into tmp/, then delete."""
        junk, fd = self._tmp_entry("discard-", directory=True)
        try:
            os.rename(path, os.path.join(junk, "x"))
            _remove_tree(junk)
        finally:
            os.close(fd)

    def _fsync_dir(self, path: str) -> None:
        if self.sync:
            fsync_dir(path)


# --- helpers -------------------------------------------------------------------------------


def _hex(digest: str) -> str:
    """The hex of a sha256 digest; ImageError for anything else (digests from registries and
    manifests are untrusted and become file names: "sha256:../../x" must never pass)."""
    m = _SHA256.fullmatch(digest) if isinstance(digest, str) else None
    if m is None:
        raise ImageError(f"invalid digest {digest!r}: the store takes sha256:<64 lowercase hex>")
    return m[1]


def _ref_name(ref: str | reference.Reference, *, want: str) -> str:
    """Canonical name of a tag (want="tag": no digest) or repo digest (want="digest": no tag)."""
    r = ref if isinstance(ref, reference.Reference) else reference.parse(ref)
    if want == "tag" and r.digest:
        raise ReferenceError(str(ref), "a tag cannot contain a digest")
    if want == "digest" and (r.tag or not r.digest):
        raise ReferenceError(str(ref), "a repo digest is name@digest, without a tag")
    return r.name


def _syncfs(fd: int, shown: str) -> None:
    """syncfs(2) of the filesystem holding fd, through the kernel layer's seam (--trace shows
    it); a sync() of every filesystem if that fails (the same guarantee, and more)."""
    from ..kernel import libc  # lazy: ctypes (~3 ms), only a layer commit needs it

    try:
        libc.syncfs(fd, shown, "the layer's files on disk before the rename makes them a "
                    "layer: one syncfs of the store's filesystem, not an fsync per file")
    except (KernelError, AttributeError, OSError):  # (AttributeError: a libc without syncfs)
        os.sync()


def _copy(src: BinaryIO, dst: BlobWriter) -> None:
    while chunk := src.read(_CHUNK):
        dst.write(chunk)


def _read_json(path: str) -> dict:
    with open(path, "rb") as f:
        return fastjson.loads(f.read())


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _remove_tree(path: str) -> None:
    """rm -rf. Layers may hold read-only directories (0555), which block unlinking their
    entries when we are not root: on a permission error, make every directory ours and retry."""
    import shutil  # (~1.5 ms: see the imports)

    if os.path.islink(path) or not os.path.isdir(path):
        _unlink(path)
        return
    try:
        shutil.rmtree(path)
        return
    except FileNotFoundError:
        return
    except PermissionError:
        pass
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)
    for top, dirs, _files in os.walk(path):  # top-down: each directory opened before we descend
        for d in dirs:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(top, d), 0o700)
    shutil.rmtree(path)


def _tree_size(path: str) -> int:
    """Bytes held by files under `path` (lstat sizes, each hard-linked inode once)."""
    total, seen = 0, set()
    stack = [path]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR):
                continue
            raise
        with entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
                elif st.st_nlink > 1:
                    if (st.st_dev, st.st_ino) not in seen:
                        seen.add((st.st_dev, st.st_ino))
                        total += st.st_size
                else:
                    total += st.st_size
    return total
