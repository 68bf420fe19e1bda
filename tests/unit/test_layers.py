"""Layer application (minirun/image/layers.py) on layer tars built here with tarfile.

Everything is written under tmp_path. Checks that need root (devices, whiteouts, trusted.* and
security.* xattrs, owners) skip with the reason otherwise; the safety tests run for everyone and
check that a sentinel host directory next to the layer directory is never touched.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import threading
import tracemalloc

import pytest

from minirun.errors import MinirunError
from minirun.image import layers
from minirun.image.layers import LayerError, LayerInfo, apply_layer

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root (mknod, chown, trusted./security. "
                                                 "xattrs)")
MTIME = 1_600_000_000
# a v2 file capability: cap_net_bind_service+ep
CAP_NET_BIND = bytes.fromhex("0100000200040000000000000000000000000000")
OCI_TAR = "application/vnd.oci.image.layer.v1.tar"


# --- building layers ----------------------------------------------------------------------------


def E(name: str, type: bytes = tarfile.REGTYPE, data: bytes = b"", mode: int | None = None,
      **attrs) -> tuple[tarfile.TarInfo, bytes]:
    """One tar entry: E("a/f", data=b"x"), E("d", tarfile.DIRTYPE, mode=0o1777), ..."""
    ti = tarfile.TarInfo(name)
    ti.type = type
    ti.mode = mode if mode is not None else (0o755 if type == tarfile.DIRTYPE else 0o644)
    ti.mtime = attrs.pop("mtime", MTIME)
    ti.uid = attrs.pop("uid", 0)
    ti.gid = attrs.pop("gid", 0)
    xattrs = attrs.pop("xattrs", {})
    if xattrs:
        ti.pax_headers = {f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape")
                          for k, v in xattrs.items()}
    for k, v in attrs.items():
        setattr(ti, k, v)
    if type in (tarfile.REGTYPE, tarfile.CONTTYPE):
        ti.size = len(data)
    return ti, data


def D(name: str, mode: int = 0o755, **attrs):
    return E(name, tarfile.DIRTYPE, mode=mode, **attrs)


def SYM(name: str, target: str, **attrs):
    return E(name, tarfile.SYMTYPE, linkname=target, mode=0o777, **attrs)


def HARD(name: str, target: str):
    return E(name, tarfile.LNKTYPE, linkname=target)


def make_tar(entries, compress: str | None = None, fmt=tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for ti, data in entries:
            t.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
    raw = buf.getvalue()
    if compress == "gzip":
        return gzip.compress(raw, mtime=0)
    if compress == "bzip2":
        return bz2.compress(raw)
    if compress == "xz":
        return lzma.compress(raw)
    return raw


def unpack(tmp_path, entries, **kw) -> tuple[str, LayerInfo]:
    dest = str(tmp_path / "layer")
    info = apply_layer(io.BytesIO(make_tar(entries, **kw.pop("tar", {}))), dest, **kw)
    return dest, info


def lst(path: str) -> os.stat_result:
    return os.lstat(path)


# --- entry types, modes, owners, times --------------------------------------------------------


def test_regular_files_and_directories(tmp_path):
    dest, info = unpack(tmp_path, [
        D("etc"), E("etc/hostname", data=b"box\n"), E("bin/tool", data=b"#!x", mode=0o755),
        E("empty")])
    assert open(f"{dest}/etc/hostname", "rb").read() == b"box\n"
    assert stat.S_IMODE(lst(f"{dest}/etc/hostname").st_mode) == 0o644
    assert stat.S_IMODE(lst(f"{dest}/bin/tool").st_mode) == 0o755
    assert lst(f"{dest}/empty").st_size == 0
    # bin/ had no entry of its own: made 0755 as Docker does
    assert stat.S_IMODE(lst(f"{dest}/bin").st_mode) == 0o755
    assert info.size == 7 and info.files == 4


def test_all_mode_bits_are_kept(tmp_path):
    dest, _ = unpack(tmp_path, [
        D("tmp", 0o1777), E("bin/su", data=b"x", mode=0o4755),
        E("bin/wall", data=b"x", mode=0o2755),
        D("shared", 0o2775), D("locked", 0o500), E("locked/inside", data=b"still written"),
        E("secret", data=b"s", mode=0o400), E("o", data=b"", mode=0o7777)])
    modes = {p: stat.S_IMODE(lst(f"{dest}/{p}").st_mode)
             for p in ("tmp", "bin/su", "bin/wall", "shared", "locked", "secret", "o")}
    assert modes == {"tmp": 0o1777, "bin/su": 0o4755, "bin/wall": 0o2755, "shared": 0o2775,
                     "locked": 0o500, "secret": 0o400, "o": 0o7777}
    assert open(f"{dest}/locked/inside", "rb").read() == b"still written"


def test_mtimes_of_files_dirs_and_symlinks(tmp_path):
    dest, _ = unpack(tmp_path, [
        D("d", mtime=1_000_000_000), E("d/f", data=b"x", mtime=1_100_000_000),
        SYM("d/l", "/nowhere", mtime=1_200_000_000), D("d/sub", mtime=1_300_000_000),
        E("d/sub/g", data=b"y", mtime=1_400_000_000)])
    # directory times are set after their contents are written
    assert lst(f"{dest}/d").st_mtime == 1_000_000_000
    assert lst(f"{dest}/d/sub").st_mtime == 1_300_000_000
    assert lst(f"{dest}/d/f").st_mtime == 1_100_000_000
    assert lst(f"{dest}/d/l").st_mtime == 1_200_000_000
    assert lst(f"{dest}/d/sub/g").st_mtime == 1_400_000_000


def test_pax_subsecond_mtime(tmp_path):
    ti, data = E("f", data=b"x")
    ti.pax_headers = {"mtime": "1600000000.25"}
    dest, _ = unpack(tmp_path, [(ti, data)])
    assert lst(f"{dest}/f").st_mtime_ns == 1_600_000_000_250_000_000


@needs_root
def test_numeric_owners_on_every_type(tmp_path):
    dest, _ = unpack(tmp_path, [
        D("home/u", 0o700, uid=1000, gid=1000), E("home/u/f", data=b"x", uid=1000, gid=2000),
        SYM("home/u/l", "f", uid=1001, gid=1002), E("home/u/p", tarfile.FIFOTYPE, uid=7, gid=8),
        E("suid", data=b"x", mode=0o4755, uid=0, gid=50),
        E("sgid", data=b"x", mode=0o2755, uid=5, gid=6),
        E("x", data=b"x", uid=1234, gid=5678, uname="root", gname="root")])
    own = {p: (lst(f"{dest}/{p}").st_uid, lst(f"{dest}/{p}").st_gid)
           for p in ("home/u", "home/u/f", "home/u/l", "home/u/p", "suid", "sgid", "x")}
    # numeric ids: the names in the tar (here "root") mean the image's users, not the host's
    assert own == {"home/u": (1000, 1000), "home/u/f": (1000, 2000), "home/u/l": (1001, 1002),
                   "home/u/p": (7, 8), "suid": (0, 50), "sgid": (5, 6), "x": (1234, 5678)}
    # chown happens before chmod, which would otherwise clear setuid/setgid
    assert stat.S_IMODE(lst(f"{dest}/suid").st_mode) == 0o4755
    assert stat.S_IMODE(lst(f"{dest}/sgid").st_mode) == 0o2755


def test_symlinks_absolute_and_relative_are_never_followed(tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    dest, _ = unpack(tmp_path, [
        SYM("bin/sh", "/bin/busybox"), SYM("rel", "../../../host"), SYM("abs", str(host)),
        SYM("dangling", "does/not/exist"), E("bin/busybox", data=b"bb", mode=0o755)])
    assert os.readlink(f"{dest}/bin/sh") == "/bin/busybox"
    assert os.readlink(f"{dest}/rel") == "../../../host"
    assert os.readlink(f"{dest}/abs") == str(host)
    assert os.readlink(f"{dest}/dangling") == "does/not/exist"
    assert list(host.iterdir()) == []


def test_hardlinks_share_the_inode(tmp_path):
    dest, info = unpack(tmp_path, [
        E("bin/busybox", data=b"BB", mode=0o4755), HARD("bin/ls", "bin/busybox"),
        HARD("sbin/init", "./bin/busybox"), HARD("bin/again", "/bin/busybox"),
        SYM("s", "target"), HARD("s2", "s"), HARD("bin/busybox", "bin/busybox")])
    ino = lst(f"{dest}/bin/busybox").st_ino
    assert all(lst(f"{dest}/{p}").st_ino == ino for p in ("bin/ls", "sbin/init", "bin/again"))
    assert lst(f"{dest}/bin/busybox").st_nlink == 4
    assert stat.S_IMODE(lst(f"{dest}/bin/ls").st_mode) == 0o4755
    # a hardlink to a symlink links the symlink itself
    assert os.path.islink(f"{dest}/s2") and lst(f"{dest}/s2").st_ino == lst(f"{dest}/s").st_ino
    assert info.size == 2


def test_fifo(tmp_path):
    dest, _ = unpack(tmp_path, [E("run/fifo", tarfile.FIFOTYPE, mode=0o620)])
    st = lst(f"{dest}/run/fifo")
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o620


@needs_root
def test_devices(tmp_path):
    dest, _ = unpack(tmp_path, [
        E("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3),
        E("dev/sda", tarfile.BLKTYPE, mode=0o660, devmajor=8, devminor=0, gid=6)])
    null, sda = lst(f"{dest}/dev/null"), lst(f"{dest}/dev/sda")
    assert stat.S_ISCHR(null.st_mode) and (os.major(null.st_rdev), os.minor(null.st_rdev)) == (1, 3)
    assert stat.S_IMODE(null.st_mode) == 0o666
    assert stat.S_ISBLK(sda.st_mode) and (os.major(sda.st_rdev), os.minor(sda.st_rdev)) == (8, 0)
    assert sda.st_gid == 6


def test_device_as_non_root_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(layers.os, "geteuid", lambda: 1000)
    with pytest.raises(LayerError, match=r"'dev/null': device nodes can only be created as root"):
        unpack(tmp_path, [E("ok", data=b"x"),
                          E("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3)])
    assert not (tmp_path / "layer").exists()


def test_user_xattrs(tmp_path):
    dest, _ = unpack(tmp_path, [
        D("d", xattrs={"user.dir": b"on dir"}),
        E("d/f", data=b"x", xattrs={"user.bin": b"\x00\xff\x01"})])
    try:
        assert os.getxattr(f"{dest}/d/f", "user.bin") == b"\x00\xff\x01"
    except OSError as e:
        pytest.skip(f"no user xattrs on this filesystem: {e}")
    assert os.getxattr(f"{dest}/d", "user.dir") == b"on dir"


@needs_root
def test_security_capability_and_trusted_xattrs(tmp_path):
    dest, _ = unpack(tmp_path, [
        E("bin/ping", data=b"\x7fELF", mode=0o755, uid=0, gid=0,
          xattrs={"security.capability": CAP_NET_BIND}),
        E("t", data=b"x", xattrs={"trusted.note": b"kept"}),
        D("fake", xattrs={"trusted.overlay.opaque": b"y", "trusted.overlay.redirect": b"/etc"})])
    assert os.getxattr(f"{dest}/bin/ping", "security.capability") == CAP_NET_BIND
    assert os.getxattr(f"{dest}/t", "trusted.note") == b"kept"
    # overlayfs obeys trusted.overlay.*: a layer may not forge them, only whiteouts make them
    assert not [x for x in os.listxattr(f"{dest}/fake") if x.startswith("trusted.overlay.")]


def test_libarchive_xattr_records(tmp_path):
    ti, data = E("f", data=b"x")
    ti.pax_headers = {"LIBARCHIVE.xattr.user.a%3Db": "aGVsbG8"}  # base64 "hello", unpadded
    dest, _ = unpack(tmp_path, [(ti, data)])
    try:
        assert os.getxattr(f"{dest}/f", "user.a=b") == b"hello"
    except OSError as e:
        pytest.skip(f"no user xattrs on this filesystem: {e}")


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_names_and_link_targets(tmp_path, fmt):
    deep = "/".join(["directory-with-a-long-name"] * 8)
    target = "/" + "/".join(["t" * 60] * 4)
    dest, _ = unpack(tmp_path, [E(f"{deep}/file-{'x' * 120}", data=b"long"),
                                SYM(f"{deep}/link", target),
                                HARD(f"{deep}/hard-{'y' * 110}", f"{deep}/file-{'x' * 120}")],
                     tar={"fmt": fmt})
    assert open(f"{dest}/{deep}/file-{'x' * 120}", "rb").read() == b"long"
    assert os.readlink(f"{dest}/{deep}/link") == target
    assert lst(f"{dest}/{deep}/hard-{'y' * 110}").st_nlink == 2


def test_non_utf8_names(tmp_path):
    ti, data = E("caf\udce9", data=b"latin-1 name")  # the byte 0xe9, kept as it is
    dest, _ = unpack(tmp_path, [(ti, data)])
    assert os.listdir(os.fsencode(dest)) == [b"caf\xe9"]


def test_contiguous_file_is_a_regular_file(tmp_path):
    dest, _ = unpack(tmp_path, [E("c", tarfile.CONTTYPE, data=b"contig")],
                     tar={"fmt": tarfile.GNU_FORMAT})
    assert open(f"{dest}/c", "rb").read() == b"contig"


@pytest.mark.skipif(not shutil.which("tar"), reason="GNU tar makes the sparse archive")
def test_gnu_sparse_file(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "sparse", "wb") as f:
        f.seek(3 << 20)
        f.write(b"end")
        f.seek(1 << 20)
        f.write(b"middle")
    for fmt in ("gnu", "posix"):
        tar = tmp_path / f"s-{fmt}.tar"
        subprocess.run(["tar", "--sparse", f"--format={fmt}", "-cf", str(tar), "-C", str(src), "."],
                       check=True)
        dest = str(tmp_path / f"layer-{fmt}")
        apply_layer(str(tar), dest)
        assert open(f"{dest}/sparse", "rb").read() == open(src / "sparse", "rb").read()


def test_unsupported_entry_type_is_refused(tmp_path):
    with pytest.raises(LayerError, match=r"'vol': unsupported tar entry type b'V'"):
        unpack(tmp_path, [E("ok", data=b"x"), E("vol", b"V")], tar={"fmt": tarfile.GNU_FORMAT})
    assert not (tmp_path / "layer").exists()


def test_root_entry_sets_the_layer_directory_attributes(tmp_path):
    dest, _ = unpack(tmp_path, [D(".", 0o750, mtime=1_234_567_890), E("./f", data=b"x")])
    st = lst(dest)
    assert stat.S_IMODE(st.st_mode) == 0o750 and st.st_mtime == 1_234_567_890
    with pytest.raises(LayerError, match="only a directory may name the layer root"):
        unpack(tmp_path / "layer", [E("./", data=b"x")])


# --- replacing what is already there ----------------------------------------------------------


def test_directory_over_directory_changes_only_attributes(tmp_path):
    dest, _ = unpack(tmp_path, [D("d", 0o755), E("d/keep", data=b"k"), D("d", 0o700, mtime=42)])
    assert os.listdir(f"{dest}/d") == ["keep"]
    assert stat.S_IMODE(lst(f"{dest}/d").st_mode) == 0o700 and lst(f"{dest}/d").st_mtime == 42


def test_anything_else_is_replaced(tmp_path):
    dest, _ = unpack(tmp_path, [
        D("a"), E("a/child", data=b"c"), E("a", data=b"file now"),     # file over dir
        E("b", data=b"file"), D("b"),                                     # dir over file
        SYM("c", "/etc"), E("c", data=b"plain"),                          # file over symlink
        E("d", data=b"old"), SYM("d", "/etc/shadow"),                     # symlink over file
        E("e", data=b"one"), HARD("e2", "e"), E("e", data=b"two")])       # new inode for e
    assert open(f"{dest}/a", "rb").read() == b"file now"
    assert os.path.isdir(f"{dest}/b") and not os.path.islink(f"{dest}/b")
    assert open(f"{dest}/c", "rb").read() == b"plain" and not os.path.islink(f"{dest}/c")
    assert os.readlink(f"{dest}/d") == "/etc/shadow"
    assert open(f"{dest}/e2", "rb").read() == b"one" and open(f"{dest}/e", "rb").read() == b"two"


def test_hardlink_to_a_file_that_was_removed_is_refused(tmp_path):
    with pytest.raises(LayerError, match="not a file written earlier in this layer"):
        unpack(tmp_path, [D("d"), E("d/f", data=b"x"), E("d", data=b"now a file"),
                          HARD("h", "d/f")])


def test_hardlink_to_a_directory_is_refused(tmp_path):
    with pytest.raises(LayerError, match="not a file written earlier"):
        unpack(tmp_path, [D("d"), HARD("h", "d")])


# --- compression, sources, digests ------------------------------------------------------------


ENTRIES = [D("etc"), E("etc/os-release", data=b"ID=test\n" * 1000), SYM("etc/mtab", "/proc/mounts"),
           E("random", data=os.urandom(4096))]


@pytest.mark.parametrize("compress", [None, "gzip", "bzip2", "xz"])
def test_compressions_are_detected_by_magic(tmp_path, compress, gzip_module):
    raw = make_tar(ENTRIES)
    blob = make_tar(ENTRIES, compress=compress)
    # the media type says plain tar: the magic bytes decide, as in Docker
    info = apply_layer(io.BytesIO(blob), str(tmp_path / "l"), OCI_TAR)
    assert info.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert info == LayerInfo(info.diff_id, 8000 + 4096, 4)
    assert open(tmp_path / "l/etc/os-release", "rb").read() == b"ID=test\n" * 1000


def test_zstd(tmp_path):
    zstandard = pytest.importorskip("zstandard",
                                    reason="the optional zstandard module is not installed")
    raw = make_tar(ENTRIES)
    blob = zstandard.ZstdCompressor().compress(raw)
    info = apply_layer(io.BytesIO(blob), str(tmp_path / "l"), OCI_TAR + "+zstd")
    assert info.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_zstd_without_the_module_is_a_one_line_error_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "zstandard", None)  # import fails
    blob = b"\x28\xb5\x2f\xfd" + b"\x00" * 64
    with pytest.raises(LayerError, match="zstd-compressed but the Python module 'zstandard' is not "
                                         "installed") as err:
        apply_layer(io.BytesIO(blob), str(tmp_path / "l"))
    assert "pip install 'minirun[zstd]'" in str(err.value)
    assert "\n" not in str(err.value) and not (tmp_path / "l").exists()


def test_zstd_image_archive_without_the_module_names_the_extra(tmp_path, monkeypatch):
    # `load` and `import` read archives through the same decompressor: the same one line.
    monkeypatch.setitem(sys.modules, "zstandard", None)
    from minirun.image import archive
    from minirun.image.store import Store

    src = tmp_path / "rootfs.tar.zst"
    src.write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 64)
    with pytest.raises(MinirunError) as err:
        archive.import_tar(Store(str(tmp_path / "store")), str(src), "mini:1")
    assert "pip install 'minirun[zstd]'" in str(err.value) and "\n" not in str(err.value)


def test_path_source_and_unseekable_stream(tmp_path):
    blob = make_tar(ENTRIES, compress="gzip")
    (tmp_path / "blob").write_bytes(blob)
    a = apply_layer(str(tmp_path / "blob"), str(tmp_path / "a"))
    r, w = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(w, blob), os.close(w)))
    writer.start()
    with os.fdopen(r, "rb", buffering=0) as pipe:  # no seek, short reads
        b = apply_layer(pipe, str(tmp_path / "b"),
                        "application/vnd.docker.image.rootfs.diff.tar.gzip")
    writer.join()
    assert a == b


@pytest.fixture(params=["isal", "zlib"])
def gzip_module(request, monkeypatch):
    """Run the test with ISA-L's inflate and with zlib's (layers.GZIP_MODULE): the same bytes
    out, the same errors, the same bounded memory. isal is in the test extra; skip without it."""
    if request.param == "isal":
        pytest.importorskip("isal", reason="isal is not installed (pip install 'minirun[isal]')")
    monkeypatch.setattr(layers, "GZIP_MODULE", request.param)
    return request.param


def test_gzip_goes_through_the_module_asked_for(monkeypatch, gzip_module):
    import zlib

    mod = layers._gzip_module()
    assert (mod is zlib) == (gzip_module == "zlib")


def test_multi_member_gzip_and_trailing_padding(tmp_path, gzip_module):
    raw = make_tar(ENTRIES)
    half = len(raw) // 2
    blob = gzip.compress(raw[:half]) + gzip.compress(raw[half:]) + b"\x00" * 512
    info = apply_layer(io.BytesIO(blob), str(tmp_path / "l"))
    assert info.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_diff_id_covers_the_whole_uncompressed_tar(tmp_path, gzip_module):
    raw = make_tar(ENTRIES) + b"\x00" * 10240  # extra blocking after the end-of-archive marker
    info = apply_layer(io.BytesIO(gzip.compress(raw)), str(tmp_path / "l"))
    assert info.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_empty_layer(tmp_path, gzip_module):
    raw = make_tar([])
    info = apply_layer(io.BytesIO(gzip.compress(raw)), str(tmp_path / "l"))
    assert info == LayerInfo("sha256:" + hashlib.sha256(raw).hexdigest(), 0, 0)
    assert os.listdir(tmp_path / "l") == []


@pytest.mark.parametrize("blob, rule", [
    (b"this is not a tar archive at all" * 40, "not a valid tar"),
    (gzip.compress(make_tar(ENTRIES))[:-200], "cannot be read"),
    (b"\x1f\x8b\x08\x00garbage garbage garbage", "cannot be read"),
    (make_tar(ENTRIES)[:1500], "unexpected end of data"),
])
def test_corrupt_layers(tmp_path, blob, rule, gzip_module):
    with pytest.raises(LayerError, match=rule) as err:
        apply_layer(io.BytesIO(blob), str(tmp_path / "l"))
    assert "\n" not in str(err.value) and not (tmp_path / "l").exists()


def test_wrong_media_type_and_missing_source(tmp_path):
    with pytest.raises(LayerError, match="not a .* tar layer"):
        apply_layer(io.BytesIO(b""), str(tmp_path / "l"),
                    "application/vnd.oci.image.config.v1+json")
    with pytest.raises(LayerError, match="not a .* tar layer"):
        apply_layer(io.BytesIO(b""), str(tmp_path / "l"), OCI_TAR + "+gzip+encrypted")
    with pytest.raises(LayerError, match="No such file"):
        apply_layer(str(tmp_path / "missing"), str(tmp_path / "l"))
    assert not (tmp_path / "l").exists()


def test_dest_must_be_empty_and_is_kept_on_failure(tmp_path):
    (tmp_path / "l").mkdir()
    (tmp_path / "l" / "other").write_text("not ours")
    with pytest.raises(LayerError, match="is not empty"):
        apply_layer(io.BytesIO(make_tar(ENTRIES)), str(tmp_path / "l"))
    assert (tmp_path / "l" / "other").read_text() == "not ours"
    # an existing empty dest stays (empty) when the layer fails
    (tmp_path / "m").mkdir()
    with pytest.raises(LayerError):
        apply_layer(io.BytesIO(make_tar(ENTRIES + [E("../x")])), str(tmp_path / "m"))
    assert os.listdir(tmp_path / "m") == []


def test_errors_are_minirun_errors():
    assert issubclass(LayerError, MinirunError)


class Zeros(io.RawIOBase):
    """A tar with one big file, produced on the fly (the test holds no big buffer either)."""

    def __init__(self, size: int) -> None:
        ti = tarfile.TarInfo("big")
        ti.size = size
        self.head = ti.tobuf(tarfile.PAX_FORMAT)
        self.left = size + (-size % 512) + 1024

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self.head:
            n = min(len(b), len(self.head))
            b[:n], self.head = self.head[:n], self.head[n:]
            return n
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def test_memory_stays_flat(tmp_path):
    size = 64 << 20
    tracemalloc.start()
    try:
        info = apply_layer(io.BufferedReader(Zeros(size), 1 << 16), str(tmp_path / "l"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.size == size and os.path.getsize(tmp_path / "l/big") == size
    assert peak < 12 << 20, f"peak {peak >> 20} MiB for a {size >> 20} MiB layer"


def test_gzip_bomb_is_decompressed_in_bounded_chunks(tmp_path, gzip_module):
    size = 48 << 20
    raw = Zeros(size)
    comp = io.BytesIO()
    with gzip.GzipFile(fileobj=comp, mode="wb", compresslevel=9) as g:
        while chunk := raw.read(1 << 20):
            g.write(chunk)
    blob = comp.getvalue()  # ~50 KiB
    tracemalloc.start()
    try:
        apply_layer(io.BytesIO(blob), str(tmp_path / "l"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12 << 20


# --- safety: nothing is ever written outside dest ----------------------------------------------


def snapshot(top) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            data = open(p, "rb").read() if stat.S_ISREG(st.st_mode) else None
            out[os.path.relpath(p, top)] = (st.st_mode, st.st_nlink, st.st_mtime_ns, data)
    return out


@pytest.fixture
def host(tmp_path):
    """A sentinel 'host' directory next to the layer directory: it must never change."""
    h = tmp_path / "host"
    (h / "etc").mkdir(parents=True)
    (h / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (h / "x").write_text("host x\n")
    before = snapshot(h)
    yield h
    assert snapshot(h) == before, "a layer wrote outside its directory"


def refused(tmp_path, entries, rule: str):
    with pytest.raises(LayerError, match=rule) as err:
        unpack(tmp_path, entries)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("layer entry ")
    assert not (tmp_path / "layer").exists()
    assert sorted(os.listdir(tmp_path)) == ["host"]
    return msg


@pytest.mark.parametrize("name", ["../x", "a/../../x", "./../host/x", "a/b/../../../host/x", "..",
                                  "/../x"])
def test_dotdot_climbing_out_is_refused(tmp_path, host, name):
    msg = refused(tmp_path, [E("a/ok", data=b"fine"), E(name, data=b"pwned")],
                  r"climbs out of the layer directory with '\.\.'")
    assert repr(name) in msg


def test_dotdot_that_stays_inside_is_folded(tmp_path, host):
    dest, _ = unpack(tmp_path, [SYM("a", str(host)), E("a/../b/../c", data=b"inside")])
    assert open(f"{dest}/c", "rb").read() == b"inside"


def test_absolute_names_are_taken_inside_the_layer(tmp_path, host):
    dest, _ = unpack(tmp_path, [E("/etc/x", data=b"layer"), E(f"{host}/x", data=b"layer"),
                                D("/"), E("//etc//y", data=b"y")])
    assert open(f"{dest}/etc/x", "rb").read() == b"layer"
    assert open(f"{dest}{host}/x", "rb").read() == b"layer"
    assert open(f"{dest}/etc/y", "rb").read() == b"y"


def test_write_through_a_symlink_parent_is_refused(tmp_path, host):
    refused(tmp_path, [SYM("etc", str(host / "etc")), E("etc/passwd", data=b"pwned")],
            r"'etc/passwd': etc is a symlink: refusing to write through it")


def test_write_through_a_relative_symlink_parent_is_refused(tmp_path, host):
    refused(tmp_path, [D("a"), SYM("a/up", "../../host"), E("a/up/x", data=b"pwned")],
            r"a/up is a symlink")


def test_directory_through_a_symlink_is_refused(tmp_path, host):
    refused(tmp_path, [SYM("l", str(host)), D("l/newdir")], "l is a symlink")


def test_symlink_then_a_file_through_it_deep(tmp_path, host):
    refused(tmp_path, [D("usr"), SYM("usr/lib", "/"),
                       E("usr/lib/" + str(host)[1:] + "/x", data=b"p")],
            "usr/lib is a symlink")


def test_hardlink_through_a_symlink_parent_is_refused(tmp_path, host):
    refused(tmp_path, [E("f", data=b"x"), SYM("l", str(host)), HARD("l/f", "f")], "l is a symlink")


def test_hardlink_climbing_out_is_refused(tmp_path, host):
    refused(tmp_path, [E("f", data=b"x"), HARD("pw", "../../etc/passwd")],
            r"hardlink target climbs out of the layer directory")


def test_hardlink_to_an_absolute_host_path_is_refused(tmp_path, host):
    msg = refused(tmp_path, [HARD("pw", str(host / "etc" / "passwd"))],
                  "is not a file written earlier in this layer")
    assert str(host / "etc" / "passwd") in msg
    refused(tmp_path, [HARD("pw", "/etc/passwd")], "not a file written earlier")


def test_hardlink_target_through_a_symlink_is_refused(tmp_path, host):
    # the layer wrote d/f, then swapped d for a symlink to the host: d/f is no longer ours
    refused(tmp_path, [D("d"), E("d/f", data=b"x"), SYM("d", str(host / "etc")), HARD("h", "d/f")],
            "not a file written earlier")


@pytest.mark.parametrize("name, victim", [(".wh...", ".."), ("a/.wh...", ".."), (".wh..", "."),
                                          (".wh.", "")])
def test_whiteout_of_dot_or_dotdot_is_refused(tmp_path, host, name, victim):
    refused(tmp_path, [D("a"), E(name)], f"whiteout of {victim!r} is not allowed")


def test_whiteout_climbing_out_is_refused(tmp_path, host):
    refused(tmp_path, [E("../.wh.x")], "climbs out")
    refused(tmp_path, [E("a/../../host/.wh..wh..opq")], "climbs out")


def test_whiteout_through_a_symlink_is_refused(tmp_path, host):
    refused(tmp_path, [SYM("l", str(host)), E("l/.wh.x")], "l is a symlink")
    refused(tmp_path, [SYM("l", str(host)), E("l/.wh..wh..opq")], "l is a symlink")


def test_device_outside_is_impossible_too(tmp_path, host):
    refused(tmp_path, [SYM("dev", str(host)), E("dev/null", tarfile.FIFOTYPE)], "dev is a symlink")


def test_file_under_a_file_is_refused(tmp_path, host):
    refused(tmp_path, [E("f", data=b"x"), E("f/g", data=b"y")], "f is not a directory")


# --- whiteouts and opaque directories (overlayfs format) ------------------------------------


def is_whiteout(path: str) -> bool:
    st = os.lstat(path)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


@needs_root
def test_whiteout_becomes_a_0_0_char_device(tmp_path):
    dest, info = unpack(tmp_path, [D("etc", mtime=77), E("etc/.wh.motd"), E(".wh.gone-dir"),
                                   E("deep/er/.wh.x")])
    assert is_whiteout(f"{dest}/etc/motd") and is_whiteout(f"{dest}/gone-dir")
    assert is_whiteout(f"{dest}/deep/er/x")
    assert not os.path.lexists(f"{dest}/etc/.wh.motd")
    assert lst(f"{dest}/etc").st_mtime == 77  # the whiteout did not change the directory's time
    assert info.files == 4


@needs_root
def test_opaque_marker_keeps_this_layers_entries_in_any_order(tmp_path):
    dest, _ = unpack(tmp_path, [D("a"), E("a/first", data=b"1"), E("a/.wh..wh..opq"),
                                E("a/second", data=b"2"), E("b/.wh..wh..opq")])
    assert os.getxattr(f"{dest}/a", "trusted.overlay.opaque") == b"y"
    assert sorted(os.listdir(f"{dest}/a")) == ["first", "second"]
    assert os.getxattr(f"{dest}/b", "trusted.overlay.opaque") == b"y"  # b made for its marker


@needs_root
@pytest.mark.parametrize("order", ["whiteout-first", "whiteout-last"])
def test_own_entry_wins_over_own_whiteout(tmp_path, order):
    wh = [E(".wh.f"), E(".wh.d")]
    own = [E("f", data=b"mine"), D("d"), E("d/new", data=b"n")]
    dest, _ = unpack(tmp_path, wh + own if order == "whiteout-first" else own + wh)
    assert open(f"{dest}/f", "rb").read() == b"mine"
    # the lower d is deleted, this layer's d is new: opaque, so lower children stay hidden
    assert os.getxattr(f"{dest}/d", "trusted.overlay.opaque") == b"y"
    assert os.listdir(f"{dest}/d") == ["new"]


def test_aufs_metadata_is_skipped(tmp_path):
    dest, info = unpack(tmp_path, [D(".wh..wh.plnk"), E(".wh..wh.plnk/1.2", data=b"x"),
                                   E(".wh..wh.aufs"), E("real", data=b"r")])
    assert os.listdir(dest) == ["real"] and info.files == 1


def test_whiteouts_as_non_root_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(layers.os, "geteuid", lambda: 1000)
    with pytest.raises(LayerError, match=r"'a/.wh.x': whiteouts \(char device 0:0\) can only be "
                                         "created as root"):
        unpack(tmp_path, [D("a"), E("a/.wh.x")])
    assert not (tmp_path / "layer").exists()


def test_huge_pax_header_is_refused_before_it_is_read(tmp_path):
    ti = tarfile.TarInfo("x")
    ti.type = tarfile.XHDTYPE
    ti.size = 1 << 30  # announced only: the check comes before tarfile reads it
    blob = ti.tobuf(tarfile.USTAR_FORMAT) + b"0" * 4096
    with pytest.raises(LayerError, match="metadata header .* over the 1048576-byte limit"):
        apply_layer(io.BytesIO(blob), str(tmp_path / "l"))


def test_reader_thread_stops_when_the_layer_is_refused_early(tmp_path):
    before = threading.active_count()
    ti, _ = E("../evil")
    ti.size = 64 << 20
    head = make_tar([])  # only to get the end blocks
    blob = gzip.compress(ti.tobuf(tarfile.PAX_FORMAT) + bytes(64 << 20) + head, compresslevel=1)
    with pytest.raises(LayerError, match="climbs out"):
        apply_layer(io.BytesIO(blob), str(tmp_path / "l"))
    assert threading.active_count() == before


def test_layers_apply_concurrently(tmp_path):
    """The store unpacks several layers at once: no process-wide state (umask, cwd) is used."""
    blobs = [make_tar([D(f"d{i}", 0o750), E(f"d{i}/f", data=os.urandom(200_000), mode=0o4711)],
                      compress="gzip") for i in range(6)]
    results: dict[int, LayerInfo] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(
        i, apply_layer(io.BytesIO(blobs[i]), str(tmp_path / f"l{i}")))) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(6):
        assert stat.S_IMODE(lst(f"{tmp_path}/l{i}/d{i}").st_mode) == 0o750
        assert stat.S_IMODE(lst(f"{tmp_path}/l{i}/d{i}/f").st_mode) == 0o4711
        raw = gzip.decompress(blobs[i])
        assert results[i].diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
