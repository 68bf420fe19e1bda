"""Layer application: one image layer tar -> its own directory, in overlayfs lowerdir format.

    info = apply_layer("/var/lib/minirun/blobs/sha256/ab…", "/var/lib/minirun/layers/L1",
                       media_type="application/vnd.oci.image.layer.v1.tar+gzip")
    info.diff_id   # "sha256:…" of the uncompressed tar: compare with the config's rootfs.diff_ids

The tar is read once, as a stream (1 MiB chunks: memory stays flat whatever the layer's size;
tarfile parses the headers, _Headers stands in for TarFile.next(), and file data goes from the
chunks to the files with no copy in Python), and applied with our own rules, never tarfile's
extract() or its filters:
'data' rejects absolute symlinks and devices and drops owners, 'tar' clears setuid/setgid/sticky
(FACTS.md section 5). Compression is found from the magic bytes (gzip, zstd with the optional
`zstandard` module, the extra `minirun[zstd]`, bzip2, xz), as Docker does; the media type only
has to name a tar layer.

Rules (image-spec "Applying changesets", Docker's archive.UnpackLayer where the spec is silent):
- Names: a leading '/' is stripped ("/etc/x" is the layer's etc/x, as GNU tar and Docker do);
  '.' and 'a/..' are folded lexically; a name whose '..' climbs above the layer root is refused.
- Nothing is ever written through a symlink: every directory on the way to an entry is opened
  with O_NOFOLLOW|O_DIRECTORY relative to its parent's fd (the securejoin idea of
  kernel/rootfs.py, but refusing instead of resolving: a layer that writes through its own
  symlink, `link -> /etc` then `link/passwd`, is malformed or hostile). Missing parents are
  created 0755, as Docker does.
- A directory over a directory changes only its attributes; anything else at an entry's name is
  removed (a directory with its contents) and recreated (FACTS.md section 5).
- Symlink targets are stored as they are, absolute ones included: they are resolved inside the
  container later, never followed here.
- A hardlink's target must be a non-directory entry this layer already wrote (after the same
  name normalisation): `/etc/passwd` or `../../etc/passwd` never reaches a host file.
- Owners are numeric uid/gid (the image's /etc/passwd is not the host's), applied only as
  root, chown before chmod (chown clears setuid); all 12 mode bits; mtimes (directories last,
  deepest first, so their contents cannot change them; their mode last too, so a read-only
  directory can still be filled); xattrs from SCHILY.xattr.* and LIBARCHIVE.xattr.* PAX records,
  security.capability included, set after the data is written (a write clears it).
- Devices only as root; fifos always; sparse and contiguous files as regular files; other
  types (volume headers, multi-volume parts, vendor types) refuse the layer.
- Whiteouts, as overlayfs lowerdirs need them: `.wh.NAME` -> char device 0:0 `NAME`;
  `.wh..wh..opq` in D -> xattr trusted.overlay.opaque=y on D (both need root). Both act on
  LOWER layers only (image-spec), so they are applied after the whole tar, whatever their
  place in it: an opaque marker deletes nothing of this layer, and when this layer also has
  NAME, its own NAME wins, in either order (image-spec: "files present in the same layer as a
  whiteout can only be hidden by whiteouts in subsequent layers"; Docker's overlay converter
  instead fails with EEXIST or lets tar order decide). If that own NAME is a directory it
  is made opaque, so the lower NAME's children stay deleted. Other `.wh..wh.*` names (aufs
  metadata such as .wh..wh.plnk) and everything under them are skipped, as Docker does.
- xattrs named trusted.overlay.* in the tar are dropped: overlayfs would obey them
  (opaque, redirect, metacopy) and only the whiteout rules above may make them.

Any refusal raises one-line LayerError naming the entry and the rule, and so does any failure
to apply an entry. On every error apply_layer removes what it wrote before raising: dest is
left as it was found, empty (or absent if apply_layer created it), so the caller only reports.
dest must be empty: the layer is written into its own directory, never over another layer.
"""

from __future__ import annotations

import base64
import bz2
import errno
import hashlib
import lzma
import os
import shutil
import stat
import queue
import tarfile
import threading
import urllib.parse
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator

from ..errors import MinirunError

CHUNK = 1 << 20  # read, decompress and write 1 MiB at a time

# gzip, the compression of nearly every layer: ISA-L's inflate (the `isal` package, the extra
# `minirun[isal]`) where it is installed, zlib's otherwise. ISA-L inflates about twice as fast
# (the 5 layers of bench/pull_bench.py, 124 MB: 483 -> 240 ms of CPU on the development VM),
# with zlib's decompressobj API (max_length, unconsumed_tail, eof, unused_data) and, like
# zlib, without the GIL while it works. "zlib" makes every gzip layer go through zlib (the
# unit tests run both).
GZIP_MODULE = "isal"
OPAQUE_XATTR = "trusted.overlay.opaque"
WH_PREFIX = ".wh."
WH_META_PREFIX = ".wh..wh."
WH_OPAQUE = ".wh..wh..opq"

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_GZIP, _ZSTD, _BZIP2, _XZ = b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"BZh", b"\xfd7zXZ\x00"


class LayerError(MinirunError):
    """A layer is malformed, breaks a safety rule or cannot be applied; names the entry."""


@dataclass(frozen=True)
class LayerInfo:
    diff_id: str  # "sha256:<hex>" of the uncompressed tar (the image config's rootfs.diff_ids)
    size: int     # bytes of file content written
    files: int    # entries applied (files, dirs, links, devices, whiteouts, opaque markers)


def apply_layer(src: str | os.PathLike | BinaryIO, dest: str,
                media_type: str | None = None) -> LayerInfo:
    """Unpack one layer tar (plain, gzip, zstd, bzip2 or xz) into the empty directory dest.

    src: a path, or a binary file object read once to its end (not closed; need not seek).
    dest: created if missing (its parent must exist); if it exists it must be empty.
    Raises LayerError (one line) after removing everything it wrote: dest is left empty, or
    absent if this call created it. Safe to call from several threads at once.
    """
    if media_type and ("tar" not in media_type or "encrypted" in media_type):
        raise LayerError(f"layer media type {media_type}: not a (plain or compressed) tar layer")
    dest = os.fspath(dest)
    try:
        raw = open(src, "rb", buffering=0) if isinstance(src, (str, os.PathLike)) else src
    except OSError as e:
        name = os.fspath(src)  # type: ignore[arg-type]
        raise LayerError(f"layer {name}: {e.strerror}") from None
    try:
        try:
            os.mkdir(dest, 0o755)
            created = True
        except FileExistsError:
            created = False
        root_fd = os.open(dest, _DIR_FLAGS & ~os.O_NOFOLLOW)  # dest is the caller's: trusted
    except OSError as e:
        if raw is not src:
            raw.close()
        raise LayerError(f"layer directory {dest}: {e.strerror}") from None
    if not created and os.listdir(root_fd):
        os.close(root_fd)
        if raw is not src:
            raw.close()
        raise LayerError(f"layer directory {dest} is not empty: a layer is unpacked only into "
                         "its own new directory")
    stream: _TarStream | None = None
    try:
        stream = _TarStream(_decompressed(raw))
        applier = _Applier(root_fd, os.fstat(root_fd))
        applier.run(stream)
        diff_id = stream.drain()
    except BaseException as exc:
        if stream is not None:
            stream.close()
        os.close(root_fd)
        if raw is not src:
            raw.close()
        _undo(dest, created)
        if isinstance(exc, tarfile.TarError):
            raise LayerError(f"layer is not a valid tar: {exc}") from None
        if isinstance(exc, OSError):  # reading src before the tar started
            raise LayerError(f"layer data cannot be read: {exc}") from None
        raise
    os.close(root_fd)
    if raw is not src:
        raw.close()
    return LayerInfo(diff_id=diff_id, size=applier.bytes, files=applier.files)


# --- the uncompressed stream --------------------------------------------------------------------


class _Prefixed:
    """A readable that first returns the bytes already read to sniff the magic."""

    def __init__(self, head: bytes, raw: BinaryIO) -> None:
        self.head, self.raw = head, raw

    def read(self, n: int = -1) -> bytes:
        if self.head:
            out, self.head = self.head, b""
            return out
        return self.raw.read(n)


def _decompressed(raw: BinaryIO) -> Iterator[bytes]:
    """The layer's tar bytes in chunks of at most CHUNK, whatever the compression."""
    head = b""
    while len(head) < 6:
        more = raw.read(6 - len(head))
        if not more:
            break
        head += more
    src = _Prefixed(head, raw)
    if head.startswith(_GZIP):
        gz = _gzip_module()
        return _stdlib_chunks(src, lambda: gz.decompressobj(16 + gz.MAX_WBITS), _GZIP)
    if head.startswith(_ZSTD):
        try:
            # The extra `zstd` (pyproject.toml): only zstd layers need it, and a lazy import
            # keeps it off every other path.
            import zstandard
        except ImportError:
            raise LayerError("layer is zstd-compressed but the Python module 'zstandard' is not "
                             "installed: pip install 'minirun[zstd]'") from None
        reader = zstandard.ZstdDecompressor().stream_reader(src, read_size=CHUNK,
                                                             read_across_frames=True)
        return iter(lambda: reader.read(CHUNK), b"")
    if head.startswith(_BZIP2):
        return _stdlib_chunks(src, bz2.BZ2Decompressor, _BZIP2)
    if head.startswith(_XZ):
        return _stdlib_chunks(src, lzma.LZMADecompressor, _XZ)
    return iter(lambda: src.read(CHUNK), b"")


def _gzip_module():
    """isal.isal_zlib if GZIP_MODULE says so and it is installed, else zlib (see GZIP_MODULE)."""
    if GZIP_MODULE == "isal":
        try:
            from isal import isal_zlib  # lazy: an optional extra, only unpacking needs it
        except ImportError:
            return zlib
        return isal_zlib
    return zlib


def _stdlib_chunks(src: _Prefixed, make: Callable, magic: bytes) -> Iterator[bytes]:
    """zlib/bz2/lzma decompression with max_length, so a small bomb never fills memory.
    Concatenated members (pigz, pbzip2) go on; trailing zero padding is ignored, as gzip(1) does."""
    d = make()
    data = b""
    full = False  # the last call filled its max_length: more output may be pending inside
    while True:
        if not data and not full and getattr(d, "needs_input", True):
            data = src.read(CHUNK)
            if not data:
                raise EOFError("compressed stream ends early")
        out = d.decompress(data, CHUNK)
        full = len(out) == CHUNK
        data = getattr(d, "unconsumed_tail", b"")  # zlib hands back the input it did not use
        if out:
            yield out
        if d.eof:
            rest = d.unused_data or src.read(CHUNK)
            if not rest.startswith(magic):
                return  # padding, or nothing, after the last member
            d, data, full = make(), rest, False


class _TarStream:
    """The uncompressed tar, hashed (diff_id) on the way: read/tell/seek (forward) for tarfile's
    header parsers, write_to() for file data.

    A reader thread reads and decompresses up to QUEUED chunks ahead: zlib and zstandard
    release the GIL, so that work overlaps tarfile's header parsing and our syscalls (a 100 MB
    gzip layer: 0.85 s -> 0.57 s on two cores). Memory stays bounded by the queue. Hashing
    stays here: the reader thread would wait for the GIL once more per chunk.
    """

    QUEUED = 4

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.sha = hashlib.sha256()
        self.buf = b""
        self.pos = 0
        self.offset = 0  # bytes of tar read so far (tell())
        self.queue: queue.Queue = queue.Queue(self.QUEUED)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._produce, args=(chunks,), daemon=True,
                                       name="minirun-layer-reader")
        self.thread.start()

    def _produce(self, chunks: Iterator[bytes]) -> None:
        item: bytes | BaseException | None
        try:
            for chunk in chunks:
                if not self._put(chunk):
                    return
            item = None
        except LayerError as e:
            item = e
        except Exception as e:  # a read error, or corrupt data for zlib, bz2, lzma, zstandard
            # raised as LayerError: tarfile would turn a zlib.error into "invalid tar"
            item = LayerError(f"layer data cannot be read: {e}")
        self._put(item)

    def _put(self, item: bytes | BaseException | None) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def _next(self) -> bytes | None:
        item = self.queue.get()
        if isinstance(item, BaseException):
            self.queue.put(item)  # every later read fails the same way
            raise item
        if item is None:
            self.queue.put(None)
        else:
            self.sha.update(item)
        return item

    def read(self, n: int = -1) -> bytes:
        """n bytes (fewer only at the end), as tarfile's stream gives them; n < 0: what is left
        of the current chunk."""
        buf, pos = self.buf, self.pos
        if n < 0:
            n = max(len(buf) - pos, 0) or CHUNK
        if pos + n <= len(buf):  # a header, or a small file: within the chunk
            self.pos = pos + n
            self.offset += n
            return buf[pos:pos + n]
        parts = [buf[pos:]]
        got = len(buf) - pos
        self.buf, self.pos = b"", 0
        while got < n:
            chunk = self._next()
            if chunk is None:
                break
            take = min(n - got, len(chunk))
            parts.append(chunk[:take] if take < len(chunk) else chunk)
            got += take
            self.buf, self.pos = chunk, take
        self.offset += got
        return b"".join(parts)

    def tell(self) -> int:
        return self.offset

    def seek(self, pos: int) -> None:
        """Forward only (a stream), as tarfile's own stream."""
        if pos < self.offset:
            raise tarfile.StreamError("seeking backwards is not allowed")
        while pos > self.offset:
            if self.pos >= len(self.buf):
                chunk = self._next()
                if chunk is None:
                    return  # past the end: the next read finds nothing
                self.buf, self.pos = chunk, 0
            take = min(pos - self.offset, len(self.buf) - self.pos)
            self.pos += take
            self.offset += take

    def write_to(self, fd: int, n: int) -> None:
        """Write the next n bytes to fd straight from the decompressed chunks (memoryviews: no
        copy in Python). A stream that ends first is a truncated tar."""
        while n:
            if self.pos >= len(self.buf):
                chunk = self._next()
                if chunk is None:
                    raise tarfile.ReadError("unexpected end of data")
                self.buf, self.pos = chunk, 0
            take = min(n, len(self.buf) - self.pos)
            view = memoryview(self.buf)[self.pos:self.pos + take]
            while view:
                view = view[os.write(fd, view):]
            self.pos += take
            self.offset += take
            n -= take

    def drain(self) -> str:
        """Read to the end (the padding after the end-of-archive blocks is part of the
        diff_id) and return "sha256:<hex>"."""
        while self._next() is not None:
            pass
        self.thread.join()
        return "sha256:" + self.sha.hexdigest()

    def close(self) -> None:
        """Stop the reader thread (on errors: it may be blocked on a full queue)."""
        self.stop.set()
        while self.thread.is_alive():
            try:
                self.queue.get_nowait()
            except queue.Empty:
                self.thread.join(0.05)


# --- applying entries ---------------------------------------------------------------------------


def _clean(name: str, what: str = "name") -> tuple[str, ...]:
    """Lexical normalisation inside the layer root: strip '/', fold '.' and '..'."""
    parts: list[str] = []
    for p in name.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if not parts:
                raise LayerError(f"layer entry {name!r}: {what} climbs out of the layer directory "
                                 "with '..'")
            parts.pop()
        else:
            parts.append(p)
    return tuple(parts)


class _Dirs:
    """The open directory fds from the layer root down to the current entry's parent.

    Every step is openat(O_NOFOLLOW|O_DIRECTORY) on the previous fd, so a symlink (or a file)
    on the way fails instead of being followed (CVE-2024-45310 was a MkdirAll through a
    swapped symlink). Tar entries come grouped by directory, so most entries reuse the chain.
    """

    def __init__(self, root_fd: int) -> None:
        self.root = root_fd
        self.names: list[str] = []
        self.fds: list[int] = []

    def get(self, parts: tuple[str, ...], entry: str, create: bool = True) -> int:
        n = 0
        limit = min(len(parts), len(self.names))
        while n < limit and parts[n] == self.names[n]:
            n += 1
        while len(self.names) > n:
            self.names.pop()
            os.close(self.fds.pop())
        parent = self.fds[-1] if self.fds else self.root
        for i in range(n, len(parts)):
            parent = self._open(parent, parts[i], entry, "/".join(parts[:i + 1]), create)
            self.names.append(parts[i])
            self.fds.append(parent)
        return parent

    @staticmethod
    def _open(parent: int, name: str, entry: str, path: str, create: bool) -> int:
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            # O_DIRECTORY|O_NOFOLLOW on a symlink fails with ENOTDIR: say which it was
            if stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
                raise LayerError(f"layer entry {entry!r}: {path} is a symlink: refusing to write "
                                 "through it") from None
            raise LayerError(f"layer entry {entry!r}: {path} is not a directory") from None
        os.mkdir(name, 0o755, dir_fd=parent)
        os.chmod(name, 0o755, dir_fd=parent)  # exactly 0755, whatever the umask (Docker's MkdirAll)
        return os.open(name, _DIR_FLAGS, dir_fd=parent)

    def close(self) -> None:
        while self.fds:
            os.close(self.fds.pop())
        self.names.clear()


class _BoundedTarInfo(tarfile.TarInfo):
    """tarfile reads a PAX or GNU long-name header whole: a 1 GiB one would be 1 GiB of memory.
    Go's archive/tar caps them at 1 MiB (maxSpecialFileSize); so do we."""

    META_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
                  tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in self.META_TYPES and self.size > CHUNK:
            raise LayerError(f"layer entry {self.name!r}: a {self.size}-byte metadata header "
                             f"(type {self.type!r}) is over the {CHUNK}-byte limit")
        return super()._proc_member(tarfile_)  # type: ignore[misc]


class _Headers:
    """tarfile.TarFile.next() for a stream, without TarFile: the headers are parsed by tarfile
    (TarInfo.fromtarfile: ustar, GNU and PAX, long names, sparse maps, checksums), and this
    object is what those parsers read through (fileobj, offset, pax_headers, encoding,
    errors). File data is then written by the applier straight from the stream. The end of
    the archive and the errors are decided as TarFile.next() decides them (Python 3.11-3.13):
    a zero block, or a bad, empty or truncated header after the first one, ends it; a bad
    first header or a bad header after a PAX or GNU long-name one is a ReadError."""

    tarinfo = _BoundedTarInfo
    encoding = "utf-8"  # TarFile's defaults (tarfile.ENCODING on Linux)
    errors = "surrogateescape"

    def __init__(self, stream: _TarStream) -> None:
        self.fileobj = stream
        self.offset = 0  # where the next header starts
        self.pax_headers: dict[str, str] = {}  # global (type g) PAX records

    def next(self) -> tarfile.TarInfo | None:
        stream = self.fileobj
        if self.offset != stream.tell():
            # past the data and padding of the previous member: a short stream is truncated
            stream.seek(self.offset - 1)
            if not stream.read(1):
                raise tarfile.ReadError("unexpected end of data")
        try:
            return self.tarinfo.fromtarfile(self)  # type: ignore[arg-type]
        except tarfile.EOFHeaderError:
            return None
        except tarfile.InvalidHeaderError as e:
            if self.offset == 0:
                raise tarfile.ReadError(str(e)) from None
            return None
        except tarfile.EmptyHeaderError:
            if self.offset == 0:
                raise tarfile.ReadError("empty file") from None
            return None
        except tarfile.TruncatedHeaderError as e:
            if self.offset == 0:
                raise tarfile.ReadError(str(e)) from None
            return None
        except tarfile.SubsequentHeaderError as e:
            raise tarfile.ReadError(str(e)) from None


@dataclass
class _DirAttrs:
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    xattrs: dict[str, bytes]


class _Applier:
    def __init__(self, root_fd: int, root_st: os.stat_result) -> None:
        self.root = root_fd
        self.dirs = _Dirs(root_fd)
        self.is_root = os.geteuid() == 0
        # new files get our uid/gid unless a setgid directory gives its group: then chown is
        # the one syscall per file we can skip (directories get their setgid bit only at the end)
        self.default_owner = (os.geteuid(), -1 if root_st.st_mode & stat.S_ISGID else os.getegid())
        self.bytes = 0
        self.files = 0
        self.links: set[str] = set()            # non-directories written: hardlink targets
        self.dir_attrs: dict[str, _DirAttrs] = {}  # applied at the end, deepest first
        self.whiteouts: dict[str, str] = {}       # "d/name" -> entry name (for errors)
        self.opaque: dict[str, str] = {}          # "d" -> entry name

    def run(self, stream: _TarStream) -> None:
        try:
            tar = _Headers(stream)
            while (m := tar.next()) is not None:
                try:
                    self.entry(tar, m)
                except OSError as e:
                    raise LayerError(f"layer entry {m.name!r}: {e.strerror or e}"
                                     + (f" ({e.filename})" if e.filename else "")) from None
                except (ValueError, OverflowError) as e:
                    raise LayerError(f"layer entry {m.name!r}: {e}") from None
            self.finish()
        finally:
            self.dirs.close()

    # one tar entry

    def entry(self, tar: _Headers, m: tarfile.TarInfo) -> None:
        parts = _clean(m.name)
        base = parts[-1] if parts else ""
        if any(p.startswith(WH_META_PREFIX) for p in parts[:-1]) or \
                (base.startswith(WH_META_PREFIX) and base != WH_OPAQUE):
            return  # aufs metadata (.wh..wh.plnk, .wh..wh.aufs): not part of the image
        if base.startswith(WH_PREFIX):
            self.whiteout(m.name, parts)
            return
        key = "/".join(parts)
        if not parts:
            if not m.isdir():
                raise LayerError(f"layer entry {m.name!r}: only a directory may name the layer "
                                 "root")
            self.dir_attrs[""] = self.attrs(m)
            self.files += 1
            return
        parent = self.dirs.get(parts[:-1], m.name)
        if m.isreg():  # REGTYPE, AREGTYPE, CONTTYPE, GNU sparse: tarfile fills the holes
            self.regular(tar, m, parent, base, key)
        elif m.isdir():
            self.directory(m, parent, base, key)
        elif m.issym():
            if not m.linkname:
                raise LayerError(f"layer entry {m.name!r}: symlink with an empty target")
            self.create(parent, base, key, lambda: os.symlink(m.linkname, base, dir_fd=parent))
            self.meta(m, parent, base, symlink=True)
        elif m.islnk():
            self.hardlink(m, parts, key)
        elif m.isfifo():
            self.create(parent, base, key,
                        lambda: os.mknod(base, stat.S_IFIFO | 0o600, dir_fd=parent))
            self.meta(m, parent, base)
        elif m.ischr() or m.isblk():
            if not self.is_root:
                raise LayerError(f"layer entry {m.name!r}: device nodes can only be created as "
                                 "root")
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            dev = os.makedev(m.devmajor, m.devminor)
            self.create(parent, base, key, lambda: os.mknod(base, kind | 0o600, dev, dir_fd=parent))
            self.meta(m, parent, base)
        else:
            raise LayerError(f"layer entry {m.name!r}: unsupported tar entry type {m.type!r}")
        self.files += 1

    def regular(self, tar: _Headers, m: tarfile.TarInfo, parent: int, base: str,
                key: str) -> None:
        try:
            fd = os.open(base, _FILE_FLAGS, 0o600, dir_fd=parent)
        except FileExistsError:
            self.remove(parent, base, key)
            fd = os.open(base, _FILE_FLAGS, 0o600, dir_fd=parent)
        self.links.add(key)
        try:
            if m.size and m.sparse is None:
                # Straight from the decompressed chunks to the file (next() then skips the
                # padding): no copy in Python, not tarfile's three layers of file objects.
                tar.fileobj.write_to(fd, m.size)
                self.bytes += m.size
            elif m.size:  # sparse: tarfile's reader fills the holes
                f = tarfile.ExFileObject(tar, m)  # type: ignore[arg-type]
                while chunk := f.read(CHUNK):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view):]
                self.bytes += m.size
            # chown clears setuid/setgid and a write clears security.capability: owner, then
            # mode, then xattrs, after the data
            if self.is_root and (m.uid, m.gid) != self.default_owner:
                os.fchown(fd, m.uid, m.gid)
            os.fchmod(fd, m.mode)
            for name, value in _xattrs(m).items():
                os.setxattr(fd, name, value)
            os.utime(fd, ns=(_ns(m), _ns(m)))
        finally:
            os.close(fd)

    def directory(self, m: tarfile.TarInfo, parent: int, base: str, key: str) -> None:
        try:
            os.mkdir(base, 0o700, dir_fd=parent)  # final mode at the end: stay writable till then
        except FileExistsError:
            st = os.stat(base, dir_fd=parent, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):  # a directory over a directory keeps its contents
                self.remove(parent, base, key)
                os.mkdir(base, 0o700, dir_fd=parent)
        self.dir_attrs[key] = self.attrs(m)

    def hardlink(self, m: tarfile.TarInfo, parts: tuple[str, ...], key: str) -> None:
        target = _clean(m.linkname, "hardlink target")
        tkey = "/".join(target)
        if tkey not in self.links:
            raise LayerError(f"layer entry {m.name!r}: hardlink target {m.linkname!r} is not a "
                             "file written earlier in this layer")
        if tkey == key:
            return
        tfd = os.dup(self.dirs.get(target[:-1], m.name, create=False))
        try:
            parent = self.dirs.get(parts[:-1], m.name)
            self.create(parent, parts[-1], key, lambda: os.link(
                target[-1], parts[-1], src_dir_fd=tfd, dst_dir_fd=parent, follow_symlinks=False))
        finally:
            os.close(tfd)
        # the same inode as the target: its owner, mode and mtime are the target's

    def whiteout(self, name: str, parts: tuple[str, ...]) -> None:
        base = parts[-1]
        dkey = "/".join(parts[:-1])
        if base == WH_OPAQUE:
            self.opaque.setdefault(dkey, name)
        else:
            victim = base[len(WH_PREFIX):]
            if victim in ("", ".", ".."):
                raise LayerError(f"layer entry {name!r}: whiteout of {victim!r} is not allowed")
            self.whiteouts.setdefault(f"{dkey}/{victim}" if dkey else victim, name)
        self.files += 1

    # helpers

    def create(self, parent: int, base: str, key: str, make: Callable[[], None]) -> None:
        try:
            make()
        except FileExistsError:
            self.remove(parent, base, key)
            make()
        self.links.add(key)

    def remove(self, parent: int, base: str, key: str) -> None:
        """Clear the way for an entry: what is at its name goes, a directory with its contents."""
        st = os.stat(base, dir_fd=parent, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(base, dir_fd=parent)  # fd-based: never follows a symlink inside
            prefix = key + "/"
            self.links = {k for k in self.links if not k.startswith(prefix)}
            for k in [k for k in self.dir_attrs if k == key or k.startswith(prefix)]:
                del self.dir_attrs[k]
        else:
            os.unlink(base, dir_fd=parent)
            self.links.discard(key)

    def attrs(self, m: tarfile.TarInfo) -> _DirAttrs:
        return _DirAttrs(m.mode, m.uid, m.gid, _ns(m), _xattrs(m))

    def meta(self, m: tarfile.TarInfo, parent: int, base: str, symlink: bool = False) -> None:
        """Owner, mode, xattrs and mtime of a symlink, fifo or device, by name in parent."""
        if self.is_root and (m.uid, m.gid) != self.default_owner:
            os.chown(base, m.uid, m.gid, dir_fd=parent, follow_symlinks=False)
        if not symlink:  # no lchmod on Linux; a symlink's mode is always 0777
            os.chmod(base, m.mode, dir_fd=parent)  # just made by us: not a symlink
        xattrs = _xattrs(m)
        if xattrs:
            # no fd for a symlink or device: the fd's /proc path resolves to this very directory
            path = f"/proc/self/fd/{parent}/{base}"
            for name, value in xattrs.items():
                os.setxattr(path, name, value, follow_symlinks=False)
        os.utime(base, ns=(_ns(m), _ns(m)), dir_fd=parent, follow_symlinks=False)

    # after the last entry

    def finish(self) -> None:
        for key, name in sorted(self.whiteouts.items()):
            self.guarded(name, lambda: self.apply_whiteout(key, name))
        for key, name in sorted(self.opaque.items()):
            self.guarded(name, lambda: self.mark_opaque(key.split("/") if key else [], name))
        for key in sorted(self.dir_attrs, reverse=True):  # children before their parents
            self.guarded(key or ".", lambda: self.apply_dir(key))

    @staticmethod
    def guarded(name: str, step: Callable[[], None]) -> None:
        try:
            step()
        except OSError as e:
            raise LayerError(f"layer entry {name!r}: {e.strerror or e}") from None

    def apply_whiteout(self, key: str, name: str) -> None:
        parts = tuple(key.split("/"))
        parent = self.dirs.get(parts[:-1], name)
        try:
            st = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            if not self.is_root:
                raise LayerError(f"layer entry {name!r}: whiteouts (char device 0:0) can only be "
                                 "created as root") from None
            os.mknod(parts[-1], stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=parent)
            return
        # this layer has its own NAME: it wins; a directory hides the lower NAME's children
        if stat.S_ISDIR(st.st_mode):
            self.mark_opaque(list(parts), name)

    def mark_opaque(self, parts: list[str], name: str) -> None:
        fd = self.dirs.get(tuple(parts), name)
        try:
            os.setxattr(fd, OPAQUE_XATTR, b"y")
        except PermissionError:
            raise LayerError(f"layer entry {name!r}: opaque directories (xattr {OPAQUE_XATTR}) "
                             "can only be marked as root") from None

    def apply_dir(self, key: str) -> None:
        a = self.dir_attrs[key]
        fd = self.dirs.get(tuple(key.split("/")) if key else (), key)
        if self.is_root and (a.uid, a.gid) != self.default_owner:
            os.fchown(fd, a.uid, a.gid)
        os.fchmod(fd, a.mode)
        for name, value in a.xattrs.items():
            os.setxattr(fd, name, value)
        os.utime(fd, ns=(a.mtime_ns, a.mtime_ns))


def _ns(m: tarfile.TarInfo) -> int:
    """mtime in ns; a PAX mtime ("1600000000.25") exactly, not through tarfile's float."""
    pax = m.pax_headers.get("mtime") if m.pax_headers else None
    if pax:
        sec, _, frac = pax.partition(".")
        if sec.lstrip("-").isdigit() and (not frac or frac.isdigit()):
            ns = int(frac[:9].ljust(9, "0")) if frac else 0
            return int(sec) * 1_000_000_000 + (-ns if sec.startswith("-") else ns)
    return round(m.mtime * 1_000_000_000)


def _xattrs(m: tarfile.TarInfo) -> dict[str, bytes]:
    """xattrs from PAX records: SCHILY.xattr.NAME (GNU tar, Go's archive/tar) and
    LIBARCHIVE.xattr.URLENCODED-NAME=BASE64 (bsdtar)."""
    if not m.pax_headers:
        return {}
    out: dict[str, bytes] = {}
    for k, v in m.pax_headers.items():
        if k.startswith("SCHILY.xattr."):
            # tarfile decodes PAX values as UTF-8 with surrogateescape: this gives the bytes back
            out[k[13:]] = v.encode("utf-8", "surrogateescape")
        elif k.startswith("LIBARCHIVE.xattr."):
            out[urllib.parse.unquote(k[17:])] = base64.b64decode(v + "=" * (-len(v) % 4))
    # overlayfs obeys trusted.overlay.* (opaque, redirect, metacopy): only whiteouts may set them
    return {k: v for k, v in out.items() if not k.startswith("trusted.overlay.")}


def _undo(dest: str, created: bool) -> None:
    """Remove what a failed apply_layer wrote: dest back to empty (or gone if we made it)."""
    def retry_writable(func, path, _exc) -> None:
        # as non-root, a directory whose final mode was already applied may be read-only
        parent = os.path.dirname(path)
        if not os.path.islink(parent):
            os.chmod(parent, 0o700)
        func(path)

    if created:
        shutil.rmtree(dest, onerror=retry_writable)
        return
    with os.scandir(dest) as it:
        for e in list(it):
            if e.is_dir(follow_symlinks=False):
                shutil.rmtree(e.path, onerror=retry_writable)
            else:
                os.unlink(e.path)
