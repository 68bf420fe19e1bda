"""kernel/resolve.py: paths inside a root, looked up with openat2(RESOLVE_IN_ROOT) and, where a
kernel lacks it, by the userspace walk -- both run here, on the same cases (no root needed)."""

from __future__ import annotations

import errno
import os
import threading

import pytest

from minirun.kernel import resolve


@pytest.fixture(params=["openat2", "walk"])
def mode(request, monkeypatch):
    monkeypatch.setattr(resolve, "USE_OPENAT2", None if request.param == "openat2" else False)
    return request.param


@pytest.fixture
def tree(tmp_path):
    """root/ with an image's usual traps, and a host/ beside it that must never be reached."""
    root, host = tmp_path / "root", tmp_path / "host"
    (root / "real" / "sub").mkdir(parents=True)
    (root / "real" / "file").write_text("inside\n")
    host.mkdir()
    (host / "file").write_text("HOST\n")
    (root / "abs").symlink_to(str(host))              # absolute: the host's path, read in root
    (root / "up").symlink_to("../../../../" + str(host))  # climbs: stops at the root
    (root / "rel").symlink_to("real")
    (root / "loop").symlink_to("loop")
    (root / "dangling").symlink_to("/nowhere/x")
    return root, host


def _real(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def test_symlinks_and_dotdot_resolve_inside_the_root(tree, mode):
    root, host = tree
    assert _real(resolve.open_in(str(root), "/rel/file")) == str(root / "real" / "file")
    assert _real(resolve.open_in(str(root), "../../../real/sub/..")) == str(root / "real")
    assert _real(resolve.open_in(str(root), "/")) == str(root)
    for path in ("/abs/file", "/up/file"):  # the host's file, named from inside: not there
        with pytest.raises(FileNotFoundError):
            os.close(resolve.open_in(str(root), path))


def test_the_last_link_is_kept_with_o_nofollow_and_loops_fail(tree, mode):
    root, _ = tree
    fd = resolve.open_in(str(root), "/abs", os.O_PATH | os.O_NOFOLLOW)
    assert _real(fd) == str(root / "abs")
    with pytest.raises(OSError) as e:
        resolve.open_in(str(root), "/loop/x")
    assert e.value.errno == errno.ELOOP
    with pytest.raises(OSError) as e:
        resolve.open_in(str(root), "/real/file/x")
    assert e.value.errno == errno.ENOTDIR


def test_reading_a_file_through_an_fd(tree, mode):
    root, _ = tree
    fd = resolve.open_in(str(root), "rel/file", os.O_RDONLY)
    with os.fdopen(fd) as f:
        assert f.read() == "inside\n"


def test_no_xdev_refuses_to_cross_a_mount(mode):
    # / and /proc are different mounts on every Linux host: no privileges needed to see it.
    with pytest.raises(OSError) as e:
        os.close(resolve.open_in("/", "/proc/self", no_xdev=True))
    assert e.value.errno == errno.EXDEV
    os.close(resolve.open_in("/", "/proc/self"))


def test_mkdirs_creates_inside_the_root_through_links(tree, mode):
    root, host = tree
    assert _real(resolve.mkdirs(str(root), "/rel/new/deeper")) == str(root / "real" / "new" /
                                                                     "deeper")
    with pytest.raises(resolve.ResolveError):  # /abs -> the host's path: dangling in the root,
        resolve.mkdirs(str(root), "/abs/new/deeper")  # so refused, and nothing made anywhere
    assert sorted(os.listdir(host)) == ["file"]
    assert _real(resolve.mkdirs(str(root), "/rel/a/../b")) == str(root / "real" / "b")
    with pytest.raises(resolve.ResolveError):
        resolve.mkdirs(str(root), "/real/file/x")  # a file in the way
    with pytest.raises(resolve.ResolveError):
        resolve.mkdirs(str(root), "/dangling")  # the link is there; its target is not made


def test_create_file_refuses_a_symlink_in_the_last_place(tree, mode):
    root, host = tree
    _real(resolve.create_file(str(root), "/etc/resolv.conf"))
    assert (root / "etc" / "resolv.conf").is_file()
    (root / "etc" / "hosts").symlink_to(str(host / "file"))
    with pytest.raises(resolve.ResolveError) as e:
        resolve.create_file(str(root), "/etc/hosts")
    assert "symlink" in str(e.value)
    with pytest.raises(resolve.ResolveError):
        resolve.create_file(str(root), "/real")
    dfd, name = resolve.parent(str(root), "/rel/dev/null")
    assert name == "null" and _real(dfd) == str(root / "real" / "dev")


def test_mkdirs_racing_a_symlink_swap_never_creates_outside(tmp_path, mode):
    """CVE-2024-45310's shape: while we create /vol/d/x/y, another writer keeps swapping /vol/d
    between a directory and a symlink to a host directory. A naive mkdir -p by path would
    follow the fresh link and create x/y on the host; here each component is made relative to
    its parent's fd and opened O_NOFOLLOW, so the result is inside or an error, never outside."""
    root, host = tmp_path / "root", tmp_path / "host"
    (root / "vol").mkdir(parents=True)
    host.mkdir()
    stop = threading.Event()

    def swap():
        d, real, link = root / "vol" / "d", root / "vol" / "d.real", root / "vol" / "d.link"
        real.mkdir()
        link.symlink_to(str(host))
        while not stop.is_set():
            for src in (real, link):
                try:
                    os.rename(src, d)
                    os.rename(d, src)
                except OSError:
                    pass

    t = threading.Thread(target=swap)
    t.start()
    try:
        for _ in range(300):
            try:
                os.close(resolve.mkdirs(str(root), "/vol/d/x/y"))
            except (resolve.ResolveError, OSError):
                pass
    finally:
        stop.set()
        t.join()
    assert os.listdir(host) == []


def test_walk_lists_a_tree_by_fds_without_following_links(tree):
    root, _ = tree
    seen = {rel: os.path.basename(rel) == name for rel, dfd, name, st in resolve.walk(
        os.open(str(root), os.O_PATH | os.O_DIRECTORY))}
    assert "abs" in seen and "real/sub" in seen and "real/file" in seen
    assert not any(k.startswith("abs/") for k in seen)  # a link is an entry, never entered
    assert all(seen.values())
    for rel, dfd, name, st in resolve.walk(os.open(str(root / "real"), os.O_PATH)):
        if name == "file":
            with os.fdopen(resolve.open_entry(dfd, name, st)) as f:
                assert f.read() == "inside\n"


def test_open_entry_refuses_an_entry_swapped_since_the_listing(tree):
    root, host = tree
    dfd = os.open(str(root / "real"), os.O_PATH | os.O_DIRECTORY)
    st = os.stat("file", dir_fd=dfd, follow_symlinks=False)
    os.rename(root / "real" / "file", root / "real" / "old")
    (root / "real" / "file").write_text("other\n")
    with pytest.raises(resolve.ResolveError):
        resolve.open_entry(dfd, "file", st)
    os.unlink(root / "real" / "file")
    (root / "real" / "file").symlink_to(str(host / "file"))
    with pytest.raises(OSError):
        resolve.open_entry(dfd, "file")  # a symlink in its place: ELOOP, never the host's file
    os.close(dfd)


def test_mkdirs_can_follow_a_dangling_link_inside_the_root(tree, mode):
    """follow_dangling (COPY, WORKDIR, an image's /dev -> /missing): the link's target is made,
    inside the root; a loop is still an error, and the host is never touched."""
    root, host = tree
    fd = resolve.mkdirs(str(root), "/abs/new", follow_dangling=True)
    assert _real(fd) == str(root / str(host).lstrip("/") / "new")
    assert sorted(os.listdir(host)) == ["file"]
    assert _real(resolve.mkdirs(str(root), "/dangling", follow_dangling=True)) == \
        str(root / "nowhere" / "x")
    with pytest.raises(resolve.ResolveError):
        resolve.mkdirs(str(root), "/loop/x", follow_dangling=True)
