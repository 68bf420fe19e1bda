"""The engine's reads and writes inside an image's root go by fds (kernel/resolve.py), never by
a path string: COPY/ADD destinations (engine/build_context.py), the WORKDIR made, volume
seeding (Volumes.seed) and /etc/passwd, /etc/group (engine/users.py).

Each rootfs here plants an absolute symlink that names a real directory *of the host* (a temp
dir holding a decoy): a path joined to the rootfs and handed to open/mkdir/cp is resolved by
the host's kernel against the host's /, so a naive implementation reads or writes the decoy.
The resolver follows the same link inside the root (runc CVE-2024-45310, Docker
CVE-2018-15664).
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from minirun.engine import users
from minirun.engine.build_context import copy_into, make_dirs
from minirun.engine.volumes import Volumes
from minirun.image.dockerfile.dockerignore import Matcher
from minirun.kernel import resolve

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="chown to other users needs root")


@pytest.fixture(autouse=True, params=["openat2", "walk"])
def lookups(request, monkeypatch):
    """Every test twice: with openat2, and with resolve's userspace walk (kernels before 5.6)."""
    monkeypatch.setattr(resolve, "USE_OPENAT2", None if request.param == "openat2" else False)
    return request.param


@pytest.fixture
def host(tmp_path) -> Path:
    """A directory of the host an image's symlink points at; its content must never change."""
    d = tmp_path / "host"
    d.mkdir()
    (d / "passwd").write_text("app:x:6666:6666:HOST:/host:/bin/sh\n")
    (d / "group").write_text("app:x:6666:\n")
    return d


@pytest.fixture
def rootfs(tmp_path) -> Path:
    r = tmp_path / "rootfs"
    (r / "etc").mkdir(parents=True)
    return r


def host_unchanged(host: Path) -> None:
    assert sorted(p.name for p in host.iterdir()) == ["group", "passwd"]
    assert (host / "passwd").read_text().startswith("app:x:6666:")


def copy(src: Path, root: Path, dest: str, *, uid: int = 0, gid: int = 0, mode=None,
         extract: bool = False, src_root: Path | None = None, src_rel: str = "") -> None:
    copy_into(str(src), src.name, str(root), dest, uid, gid, mode, extract=extract,
              single=True, matcher=Matcher([]), src_rel=src_rel or src.name,
              src_root=str(src_root) if src_root else None)


# --- users ---------------------------------------------------------------------------------------


def test_users_read_the_images_passwd_through_an_absolute_etc_symlink(rootfs, host):
    """/etc -> <host dir> in the image; the image's own <host dir>/passwd says uid 4321. A
    naive open(rootfs + "/etc/passwd") follows the absolute link on the host and reads the
    decoy (uid 6666)."""
    (rootfs / "etc").rmdir()
    inner = rootfs / str(host).lstrip("/")
    inner.mkdir(parents=True)
    (inner / "passwd").write_text("app:x:4321:4321:image:/home/app:/bin/sh\n")
    (inner / "group").write_text("app:x:4321:\nextra:x:77:app\n")
    os.symlink(str(host), rootfs / "etc")
    u = users.resolve(str(rootfs), "app")
    assert (u.uid, u.gid, u.additional_gids, u.home) == (4321, 4321, [77], "/home/app")
    assert users.group_add(str(rootfs), [], ["extra"]) == [77]
    assert users.exists_in(str(rootfs), "/etc/passwd")
    assert not users.exists_in(str(rootfs), "/etc/shadow")


def test_users_with_etc_pointing_at_a_missing_place_find_nobody(rootfs, host):
    """/etc -> <host dir>, which the image does not have: there is no passwd (naive: the
    host's decoy is read and `app` found)."""
    (rootfs / "etc").rmdir()
    os.symlink(str(host), rootfs / "etc")
    with pytest.raises(users.UserError):
        users.resolve(str(rootfs), "app")
    assert users.resolve(str(rootfs), "0").uid == 0


def test_users_passwd_a_fifo_or_a_loop_reads_as_empty(rootfs):
    """A fifo planted as /etc/passwd must not hang the engine (naive open() blocks), a link
    loop is no file."""
    os.mkfifo(rootfs / "etc" / "passwd")
    os.symlink("group", rootfs / "etc" / "group.x")
    os.symlink("group.x", rootfs / "etc" / "group")
    assert users.resolve(str(rootfs), "1000").uid == 1000
    assert users.group_add(str(rootfs), [], ["5"]) == [5]


# --- COPY / ADD ----------------------------------------------------------------------------------


def test_copy_into_a_dir_symlinked_to_the_host_writes_inside_the_image(rootfs, host, tmp_path):
    """`COPY file /dest/` with /dest -> <host dir> in the image: the file lands in the image's
    <host dir> (made there). Naive: rootfs + "/dest/" + name is opened on the host and the file
    is written into the host's directory."""
    os.symlink(str(host), rootfs / "dest")
    src = tmp_path / "file"
    src.write_text("hello\n")
    copy(src, rootfs, "/dest/")
    assert (rootfs / str(host).lstrip("/") / "file").read_text() == "hello\n"
    host_unchanged(host)


def test_copy_a_directory_over_a_symlinked_subdir_replaces_the_link(rootfs, host, tmp_path):
    """The image has /app/conf -> <host dir>; `COPY ctx/ /app/` with ctx/conf/passwd. Naive
    (makedirs + chmod + open by path): makedirs accepts the link as a directory, and chmod and
    the new passwd go to the host's directory. Docker replaces the link with a directory."""
    (rootfs / "app").mkdir()
    os.symlink(str(host), rootfs / "app" / "conf")
    ctx = tmp_path / "ctx"
    (ctx / "conf").mkdir(parents=True)
    (ctx / "conf" / "passwd").write_text("mine\n")
    os.chmod(ctx / "conf", 0o700)
    copy(ctx, rootfs, "/app/", src_rel="")
    conf = rootfs / "app" / "conf"
    assert conf.is_dir() and not conf.is_symlink()
    assert stat.S_IMODE(conf.stat().st_mode) == 0o700
    assert (conf / "passwd").read_text() == "mine\n"
    host_unchanged(host)
    assert stat.S_IMODE(host.stat().st_mode) != 0o700


def test_copy_a_file_onto_a_symlink_replaces_the_link(rootfs, host, tmp_path):
    """/etc/passwd -> <host dir>/passwd in the image; `COPY passwd /etc/passwd` replaces the
    link (naive open(..., "w") writes through it into the host's file)."""
    os.symlink(str(host / "passwd"), rootfs / "etc" / "passwd")
    src = tmp_path / "passwd"
    src.write_text("root:x:0:0::/root:/bin/sh\n")
    os.chmod(src, 0o640)
    os.utime(src, ns=(1_000_000_000, 2_000_000_000))
    copy(src, rootfs, "/etc/passwd")
    out = rootfs / "etc" / "passwd"
    assert not out.is_symlink() and out.read_text() == src.read_text()
    assert stat.S_IMODE(out.stat().st_mode) == 0o640 and out.stat().st_mtime_ns == 2_000_000_000
    host_unchanged(host)


def test_copy_keeps_docker_rules_chmod_and_dest_as_name(rootfs, tmp_path):
    """A file to a non-directory dest becomes dest; --chmod applies; an existing directory
    (through an in-image symlink) takes the file inside it."""
    src = tmp_path / "f"
    src.write_text("x")
    copy(src, rootfs, "/opt/renamed", mode=0o600)
    assert (rootfs / "opt" / "renamed").read_text() == "x"
    assert stat.S_IMODE((rootfs / "opt" / "renamed").stat().st_mode) == 0o600
    os.symlink("/opt", rootfs / "o")
    copy(src, rootfs, "/o")
    assert (rootfs / "opt" / "f").read_text() == "x"


def test_add_tar_through_symlinks_stays_inside(rootfs, host, tmp_path):
    """ADD a.tar /x/ where the image has /x/sub -> <host dir>, and the archive holds
    sub/passwd and a hard link to it. Naive: the parent sub/ is the host's directory; the hard
    link's target, joined on the host, links a host file into the image."""
    (rootfs / "x").mkdir()
    os.symlink(str(host), rootfs / "x" / "sub")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"from-tar\n"
        ti = tarfile.TarInfo("sub/passwd")
        ti.size, ti.mode = len(data), 0o604
        tar.addfile(ti, io.BytesIO(data))
        hl = tarfile.TarInfo("hard")
        hl.type, hl.linkname = tarfile.LNKTYPE, "sub/passwd"
        tar.addfile(hl)
    (tmp_path / "a.tar").write_bytes(buf.getvalue())
    copy(tmp_path / "a.tar", rootfs, "/x/", extract=True)
    inner = rootfs / str(host).lstrip("/")
    assert (inner / "passwd").read_text() == "from-tar\n"
    assert stat.S_IMODE((inner / "passwd").stat().st_mode) == 0o604
    assert (rootfs / "x" / "hard").stat().st_ino == (inner / "passwd").stat().st_ino
    host_unchanged(host)


def test_copy_from_a_root_reads_it_by_fds(rootfs, host, tmp_path):
    """COPY --from=stage /alias/ where the stage has /alias -> /out (absolute) and
    /out/link -> <host dir>: the source is looked up inside the stage's root and walked by fds,
    the link copied as a link. Naive: stage + "/alias" resolves /out on the host (not there, or
    the host's), and a walk or copy that follows links lists the host's directory."""
    stage = tmp_path / "stage"
    (stage / "out").mkdir(parents=True)
    (stage / "out" / "f").write_text("f\n")
    os.symlink(str(host), stage / "out" / "link")
    os.symlink("/out", stage / "alias")
    copy(stage / "alias", rootfs, "/dst/", src_root=stage, src_rel="alias")
    assert (rootfs / "dst" / "f").read_text() == "f\n"
    assert os.readlink(rootfs / "dst" / "link") == str(host)


def test_make_dirs_follows_a_dangling_link_inside_the_root(rootfs, host):
    """WORKDIR /w with /w -> <host dir>/new in the image: the directory is made inside the
    image, as Docker's MkdirAll does (naive makedirs makes <host dir>/new on the host)."""
    os.symlink(str(host / "new"), rootfs / "w")
    os.close(make_dirs(str(rootfs), "/w/deeper"))
    assert (rootfs / str(host).lstrip("/") / "new" / "deeper").is_dir()
    host_unchanged(host)


# --- volume seeding ------------------------------------------------------------------------------


@root_only
def test_seed_volume_reads_the_image_not_the_host(rootfs, host, tmp_path):
    """The mount destination /p/vol has a parent /p -> <host dir> in the image; the image's
    own <host dir>/vol holds the files to seed. Naive (rootfs + "/p/vol", then cp -a): the
    host's <host dir>/vol is copied into the volume. Owners, modes, links, fifos, hard links
    and mtimes are kept, as cp -a kept them."""
    (host / "vol").mkdir()
    (host / "vol" / "secret").write_text("HOST\n")
    inner = rootfs / str(host).lstrip("/") / "vol"
    (inner / "sub").mkdir(parents=True)
    (inner / "sub" / "f").write_text("image\n")
    os.chown(inner / "sub" / "f", 1234, 5678)
    os.chmod(inner / "sub" / "f", 0o4751)
    os.chown(inner / "sub" / "f", 1234, 5678)
    os.chmod(inner / "sub" / "f", 0o4751)
    os.utime(inner / "sub" / "f", ns=(5_000_000_000, 6_000_000_000))
    os.link(inner / "sub" / "f", inner / "hard")
    os.symlink("/etc/shadow", inner / "link")
    os.mkfifo(inner / "fifo")
    os.chmod(inner / "sub", 0o2750)
    os.chown(inner, 42, 43)
    os.chmod(inner, 0o711)
    os.symlink(str(host), rootfs / "p")
    mp = tmp_path / "volume" / "_data"
    mp.mkdir(parents=True)
    src = resolve.open_in(str(rootfs), "/p/vol", os.O_PATH | os.O_DIRECTORY)
    try:
        Volumes.seed(SimpleNamespace(Name="v", Mountpoint=str(mp)), src)
    finally:
        os.close(src)
    assert sorted(os.listdir(mp)) == ["fifo", "hard", "link", "sub"]
    f = (mp / "sub" / "f").stat()
    assert (f.st_uid, f.st_gid, stat.S_IMODE(f.st_mode)) == (1234, 5678, 0o4751)
    assert f.st_mtime_ns == 6_000_000_000 and (mp / "hard").stat().st_ino == f.st_ino
    assert os.readlink(mp / "link") == "/etc/shadow"
    assert stat.S_ISFIFO((mp / "fifo").lstat().st_mode)
    assert stat.S_IMODE((mp / "sub").stat().st_mode) == 0o2750
    top = mp.stat()
    assert (top.st_uid, top.st_gid, stat.S_IMODE(top.st_mode)) == (42, 43, 0o711)
    assert sorted(os.listdir(host / "vol")) == ["secret"]


def test_seed_volume_from_an_empty_directory_leaves_the_volume_alone(rootfs, tmp_path):
    (rootfs / "empty").mkdir()
    mp = tmp_path / "_data"
    mp.mkdir(mode=0o755)
    src = resolve.open_in(str(rootfs), "/empty", os.O_PATH | os.O_DIRECTORY)
    try:
        Volumes.seed(SimpleNamespace(Name="v", Mountpoint=str(mp)), src)
    finally:
        os.close(src)
    assert os.listdir(mp) == [] and stat.S_IMODE(mp.stat().st_mode) == 0o755


@root_only
def test_seed_volume_racing_a_symlink_swap_never_copies_the_host(rootfs, tmp_path, lookups):
    """While the volume is seeded, /vol/dir flips between a real directory (holding `file`,
    "inside") and a symlink to a host directory whose `file` says "HOST-SECRET" (what a
    container sharing the tree can do: CVE-2024-45310). A copy that lists a directory and then
    opens it by name follows the fresh link to the host now and then. Each seeding must copy
    "inside", a link, or fail -- never the host's bytes."""
    import shutil
    import threading

    from minirun.errors import MinirunError

    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "file").write_text("HOST-SECRET\n")
    vol = rootfs / "vol"
    (vol / "d.real").mkdir(parents=True)
    (vol / "d.real" / "file").write_text("inside\n")
    os.symlink(str(secret), vol / "d.link")
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            for a, b in (("d.real", "dir"), ("dir", "d.real"), ("d.link", "dir"),
                         ("dir", "d.link")):
                try:
                    os.rename(vol / a, vol / b)
                except OSError:
                    pass

    t = threading.Thread(target=swap)
    t.start()
    seen = {"copied": 0, "failed": 0}
    try:
        for n in range(150):
            mp = tmp_path / f"v{n}"
            mp.mkdir()
            src = resolve.open_in(str(rootfs), "/vol", os.O_PATH | os.O_DIRECTORY)
            try:
                Volumes.seed(SimpleNamespace(Name="v", Mountpoint=str(mp)), src)
                seen["copied"] += 1
            except (OSError, MinirunError):
                seen["failed"] += 1
            finally:
                os.close(src)
            for dirpath, _, files in os.walk(mp):  # (os.walk follows no links)
                for f in files:
                    p = os.path.join(dirpath, f)
                    if not os.path.islink(p):
                        assert "HOST" not in Path(p).read_text(), p
            shutil.rmtree(mp)
    finally:
        stop.set()
        t.join()
    assert (secret / "file").read_text() == "HOST-SECRET\n"
    assert seen["copied"] > 0, seen
