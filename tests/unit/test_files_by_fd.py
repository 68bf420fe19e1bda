"""cp, the archive API, diff and commit's layer walk read and write a container's files by fds
(engine/files.py, image/assemble.py), so a swap made *after* a path was looked up cannot send
them to the host (CVE-2018-15664). Here the swap is made at exactly that moment, every time:
resolve.open_in (or open_entry) is wrapped to turn /dir into a symlink to a host directory
right after it returned. A copy that went on by path would then walk the symlink against the
host's root and read or write the host; these must keep to the directory they found."""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
from types import SimpleNamespace

import pytest

from minirun.engine import files
from minirun.image import assemble
from minirun.kernel import resolve


@pytest.fixture
def ctr(tmp_path, monkeypatch):
    """(container, root, host): a container whose / is tmp root/, with /dir/sub/file and
    /dir/file saying "inside"; host/ beside it has the same names saying "HOST"."""
    root, host = tmp_path / "root", tmp_path / "host"
    for base, text in ((root / "dir", "inside\n"), (host, "HOST\n")):
        (base / "sub").mkdir(parents=True)
        (base / "sub" / "file").write_text(text)
        (base / "file").write_text(text)

    @contextlib.contextmanager
    def root_of(engine, c, live=True):
        yield str(root)

    monkeypatch.setattr(files, "root_of", root_of)
    c = SimpleNamespace(name="ctr", id="x", host_config={},
                        state=SimpleNamespace(status="running", pid=1))
    return c, root, host


def swap_after_lookup(monkeypatch, root, host, when=lambda path: True) -> None:
    """Once a lookup inside the root returns, /dir becomes a symlink to the host directory."""
    real = resolve.open_in
    done = []

    def open_in(rootfd, path, *args, **kw):
        fd = real(rootfd, path, *args, **kw)
        if not done and when(path):
            os.rename(root / "dir", root / "d.real")
            os.symlink(str(host), root / "dir")
            done.append(path)
        return fd

    monkeypatch.setattr(resolve, "open_in", open_in)


def tar_files(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return {m.name: t.extractfile(m).read() for m in t if m.isreg()}


@pytest.mark.parametrize("src", ["/dir/sub", "/dir/sub/.", "/dir/file"])
def test_archive_out_reads_what_it_found(ctr, monkeypatch, src):
    c, root, host = ctr
    swap_after_lookup(monkeypatch, root, host)
    out = io.BytesIO()
    st = files.archive_out(None, c, src, out)
    got = tar_files(out.getvalue())
    assert got and set(got.values()) == {b"inside\n"}, got
    assert st["name"] == os.path.basename(os.path.normpath(src))


def test_copy_out_reads_what_it_found(ctr, monkeypatch, tmp_path):
    c, root, host = ctr
    swap_after_lookup(monkeypatch, root, host)
    files.copy_out(None, c, "/dir/sub", str(tmp_path / "tree"))
    assert (tmp_path / "tree" / "file").read_text() == "inside\n"
    monkeypatch.undo()
    monkeypatch.setattr(files, "root_of", contextlib.contextmanager(
        lambda engine, c, live=True: (yield str(root))))
    os.unlink(root / "dir")
    os.rename(root / "d.real", root / "dir")
    swap_after_lookup(monkeypatch, root, host)
    files.copy_out(None, c, "/dir/file", str(tmp_path / "one"))
    assert (tmp_path / "one").read_text() == "inside\n"


@pytest.mark.parametrize("dest", ["/dir", "/dir/", "/dir/new"])
def test_copy_in_writes_where_it_looked(ctr, monkeypatch, tmp_path, dest):
    c, root, host = ctr
    before = sorted(os.listdir(host))
    payload = tmp_path / "payload"
    payload.write_text("from cp\n")
    swap_after_lookup(monkeypatch, root, host, when=lambda path: path.startswith("/dir"))
    monkeypatch.setattr(files, "host_root", lambda maps: (os.getuid(), os.getgid()))
    files.copy_in(None, c, str(payload), dest)
    assert sorted(os.listdir(host)) == before
    name = "new" if dest.endswith("new") else "payload"
    assert (root / "d.real" / name).read_text() == "from cp\n"


def test_archive_in_unpacks_where_it_looked(ctr, monkeypatch):
    c, root, host = ctr
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("sub/planted", "planted"):
            info = tarfile.TarInfo(name)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"in\n"))
    swap_after_lookup(monkeypatch, root, host)
    buf.seek(0)
    # each entry's directory is looked up inside the root: /dir is now a symlink whose target
    # is no directory in the container, so the entry fails, never lands on the host
    with pytest.raises(resolve.ResolveError):
        files.archive_in(None, c, "/dir", buf)
    assert "planted" not in os.listdir(host) and "planted" not in os.listdir(host / "sub")


def test_a_tar_entry_through_a_symlink_stays_in_the_root(ctr):
    c, root, host = ctr
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("up")
        link.type, link.linkname = tarfile.SYMTYPE, str(host)
        tar.addfile(link)
        info = tarfile.TarInfo("up/planted")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"in\n"))
    buf.seek(0)
    (root / str(host).lstrip("/")).mkdir(parents=True)  # the link's target, in the container
    files.archive_in(None, c, "/dir", buf)
    assert not (host / "planted").exists()
    assert (root / str(host).lstrip("/") / "planted").read_text() == "in\n"


def test_diff_does_not_follow_a_layers_symlinks(tmp_path):
    host = tmp_path / "host"
    (host / "etc").mkdir(parents=True)
    (host / "etc" / "passwd").write_text("HOST\n")
    layers = tmp_path / "image" / "layers"
    (layers / "l1").mkdir(parents=True)
    (layers / "l1" / "etc").symlink_to(str(host / "etc"))  # the image's own etc -> /host...
    (layers / "l1" / "bin").mkdir()
    (layers / "l1" / "bin" / "sh").write_text("")
    upper = tmp_path / "c" / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "passwd").write_text("new\n")
    (upper / "bin").mkdir()
    (upper / "bin" / "sh").write_text("changed")
    engine = SimpleNamespace(root=str(tmp_path), cdir=lambda cid: str(tmp_path / "c"))
    c = SimpleNamespace(id="x", layers=["l1"])
    assert files.diff(engine, c) == [("C", "/bin"), ("C", "/bin/sh"), ("C", "/etc"),
                                     ("A", "/etc/passwd")]


def test_layer_tar_refuses_a_directory_swapped_mid_walk(tmp_path, monkeypatch):
    upper, host = tmp_path / "upper", tmp_path / "host"
    for base, text in ((upper, "inside\n"), (host, "HOST\n")):
        (base / "a").mkdir(parents=True)
        (base / "a" / "file").write_text(text)
    (upper / "b").write_text("b\n")
    real = resolve.open_entry

    def open_entry(dir_fd, name, st=None, flags=os.O_RDONLY):
        if name == "a" and flags & os.O_DIRECTORY and not (upper / "a").is_symlink():
            os.rename(upper / "a", upper / "a.real")
            os.symlink(str(host), upper / "a")
        return real(dir_fd, name, st, flags)

    monkeypatch.setattr(resolve, "open_entry", open_entry)
    out = io.BytesIO()
    with pytest.raises(resolve.ResolveError):
        assemble.write_layer_tar(str(upper), out)
    assert b"HOST" not in out.getvalue()
