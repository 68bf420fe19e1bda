"""Layers applied by minirun/image/layers.py, used the way the runtime uses them: as overlayfs
lowerdirs. Needs root (whiteout devices, trusted.overlay.opaque, mount).

- three layers (base; whiteouts of a file and a directory, an opaque directory; a re-added
  file) unpacked into three directories and mounted lowerdir=L3:L2:L1: the merged view is
  what the image-spec says, also seen from inside a container run on it;
- GNU tar as the oracle: a tree with every entry type, unpacked by `tar -xp --xattrs` and by
  apply_layer, must give the same modes, owners, times, link targets, devices and xattrs.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from minirun.image.layers import apply_layer

MTIME = 1_650_000_000


def E(name: str, type: bytes = tarfile.REGTYPE, data: bytes = b"", mode: int | None = None,
      **attrs) -> tuple[tarfile.TarInfo, bytes]:
    ti = tarfile.TarInfo(name)
    ti.type = type
    ti.mode = mode if mode is not None else (0o755 if type == tarfile.DIRTYPE else 0o644)
    ti.mtime = MTIME
    for k, v in attrs.items():
        setattr(ti, k, v)
    ti.size = len(data) if type == tarfile.REGTYPE else 0
    return ti, data


def D(name: str, mode: int = 0o755):
    return E(name, tarfile.DIRTYPE, mode=mode)


def layer_blob(entries) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as t:
        for ti, data in entries:
            t.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
    return buf.getvalue()


BASE = [
    D("etc"), E("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n"), E("etc/motd", data=b"hello\n"),
    D("keep"), E("keep/a", data=b"a"),
    D("gone-dir"), E("gone-dir/child", data=b"c"),
    D("opq"), E("opq/old1", data=b"1"), D("opq/sub"), E("opq/sub/old2", data=b"2"),
    D("replaced"), E("replaced/old", data=b"old"),
    E("readd", data=b"from L1"),
    D("tmp", 0o1777),
]
CHANGES = [
    E("opq/new2", data=b"L2"),          # before the opaque marker: it stays all the same
    E("opq/.wh..wh..opq"),
    E("etc/.wh.motd"), E(".wh.gone-dir"), E(".wh.readd"),
    D("replaced"), E("replaced/new", data=b"new"), E(".wh.replaced"),  # own dir wins, opaque
]
READD = [E("readd", data=b"from L3"), E("opq/new3", data=b"L3")]


@pytest.fixture
def overlay(tmp_path):
    """overlay(lowers) -> merged dir; unmounted at teardown, also when the test fails."""
    mounted: list[Path] = []

    def mount(lowers: list[str]) -> Path:
        n = len(mounted)
        upper, work, merged = (tmp_path / f"{x}{n}" for x in ("upper", "work", "merged"))
        for d in (upper, work, merged):
            d.mkdir()
        opts = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)], check=True)
        mounted.append(merged)
        return merged

    yield mount
    for m in reversed(mounted):
        subprocess.run(["umount", str(m)], check=False)


def test_three_layers_as_overlay_lowerdirs(tmp_path, overlay):
    dirs = []
    for i, entries in enumerate([BASE, CHANGES, READD], 1):
        d = str(tmp_path / f"L{i}")
        apply_layer(io.BytesIO(layer_blob(entries)), d,
                    "application/vnd.oci.image.layer.v1.tar+gzip")
        dirs.append(d)
    l2 = dirs[1]
    for p in ("etc/motd", "gone-dir", "readd"):
        st = os.lstat(f"{l2}/{p}")
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0, p
    assert os.getxattr(f"{l2}/opq", "trusted.overlay.opaque") == b"y"
    assert os.getxattr(f"{l2}/replaced", "trusted.overlay.opaque") == b"y"

    merged = overlay(dirs[::-1])  # lowerdir=L3:L2:L1, the top layer first
    assert not (merged / "etc" / "motd").exists()                        # deleted file
    assert (merged / "etc" / "passwd").read_text().startswith("root:")
    assert not (merged / "gone-dir").exists()                            # deleted directory
    assert (merged / "keep" / "a").read_text() == "a"                     # untouched
    assert sorted(os.listdir(merged / "opq")) == ["new2", "new3"]       # opaque: L1 hidden
    assert os.listdir(merged / "replaced") == ["new"]                   # whiteout + own dir
    assert (merged / "readd").read_text() == "from L3"                    # re-added
    assert stat.S_IMODE(os.stat(merged / "tmp").st_mode) == 0o1777


def test_merged_layers_run_as_a_container_rootfs(tmp_path, overlay, rootfs_dir, oci, bundle, cid):
    """The busybox rootfs as layer 1 (a tar made by GNU tar), the test layers on top."""
    base = tmp_path / "busybox.tar"
    subprocess.run(["tar", "--numeric-owner", "-cf", str(base), "-C", str(rootfs_dir), "."],
                   check=True)
    dirs = [str(tmp_path / "L1")]
    apply_layer(str(base), dirs[0])
    for i, entries in enumerate([BASE, CHANGES, READD], 2):
        dirs.append(str(tmp_path / f"L{i}"))
        apply_layer(io.BytesIO(layer_blob(entries)), dirs[-1])
    merged = overlay(dirs[::-1])

    def edit(cfg):
        cfg["root"] = {"path": str(merged), "readonly": False}

    script = "ls /opq; cat /readd; echo; ls /etc/motd 2>&1; ls -ld /tmp"
    b = bundle(args=["sh", "-c", script], edit=edit)
    r = oci("run", "--bundle", b, cid)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[:3] == ["new2", "new3", "from L3"]
    assert "No such file" in out[3] and out[4].startswith("drwxrwxrwt")


# --- GNU tar as the oracle ----------------------------------------------------------------------


def build_tree(src: Path) -> None:
    """Every entry type GNU tar archives, with owners, special modes, times and xattrs."""
    (src / "usr" / "bin").mkdir(parents=True)
    (src / "usr" / "bin" / "su").write_bytes(b"\x7fELF su")
    os.chmod(src / "usr" / "bin" / "su", 0o4755)
    (src / "usr" / "bin" / "wall").write_bytes(b"wall")
    os.chown(src / "usr" / "bin" / "wall", 0, 5)
    os.chmod(src / "usr" / "bin" / "wall", 0o2755)
    os.link(src / "usr" / "bin" / "su", src / "usr" / "bin" / "su-again")
    (src / "usr" / "bin" / "ping").write_bytes(b"ping")
    os.setxattr(src / "usr" / "bin" / "ping", "security.capability",
                bytes.fromhex("0100000200200000000000000000000000000000"))
    os.setxattr(src / "usr" / "bin" / "ping", "user.note", b"any \x00 bytes \xff")
    (src / "tmp").mkdir()
    os.chmod(src / "tmp", 0o1777)
    (src / "home" / "u").mkdir(parents=True)
    (src / "home" / "u" / "file").write_bytes(os.urandom(300_000))
    for p in ("home/u", "home/u/file"):
        os.chown(src / p, 1000, 1000)
    os.chmod(src / "home" / "u", 0o700)
    (src / "ro").mkdir()
    (src / "ro" / "inside").write_text("x")
    os.symlink("/usr/bin/su", src / "abs-link")
    os.symlink("../usr/bin", src / "home" / "rel-link")
    os.lchown(src / "abs-link", 7, 7)
    os.mknod(src / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(src / "loop0", 0o660 | stat.S_IFBLK, os.makedev(7, 0))
    os.mkfifo(src / "fifo", 0o640)
    long_dir = src / ("d" * 90) / ("e" * 90)
    long_dir.mkdir(parents=True)
    (long_dir / ("f" * 120)).write_text("long")
    os.chmod(src / "ro", 0o555)
    for dirpath, dirnames, filenames in os.walk(src, topdown=False):
        for n in filenames + dirnames + [""]:
            os.utime(os.path.join(dirpath, n), (MTIME, MTIME + 17), follow_symlinks=False)


def describe(top: Path) -> dict:
    out: dict = {}
    inodes: dict = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, top)
            kind = stat.S_IFMT(st.st_mode)
            device = kind in (stat.S_IFCHR, stat.S_IFBLK)
            xattrs = {} if kind == stat.S_IFLNK else {
                x: os.getxattr(p, x, follow_symlinks=False) for x in os.listxattr(p)}
            d = {"mode": oct(st.st_mode), "uid": st.st_uid, "gid": st.st_gid,
                 "mtime": st.st_mtime_ns, "rdev": st.st_rdev if device else 0, "xattrs": xattrs}
            if kind == stat.S_IFREG:
                d["sha"] = hashlib.sha256(open(p, "rb").read()).hexdigest()
                d["links"] = inodes.setdefault(st.st_ino, rel)
            if kind == stat.S_IFLNK:
                d["target"] = os.readlink(p)
            out[rel] = d
    return out


def test_same_result_as_gnu_tar(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    build_tree(src)
    tar = tmp_path / "layer.tar"
    subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "--format=posix",
                    "-cf", str(tar), "-C", str(src), "."], check=True)
    ref, ours = tmp_path / "ref", tmp_path / "ours"
    ref.mkdir()
    subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "--same-owner",
                    "-xpf", str(tar), "-C", str(ref)], check=True)
    info = apply_layer(str(tar), str(ours))
    assert describe(ours) == describe(ref)
    assert info.diff_id == "sha256:" + hashlib.sha256(tar.read_bytes()).hexdigest()
    assert describe(ours)["usr/bin/ping"]["xattrs"]["security.capability"].startswith(b"\x01")
