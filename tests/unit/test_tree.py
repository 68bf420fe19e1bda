"""base/tree.py: rm -rf without shutil, never following a symlink out of the tree."""

from __future__ import annotations

import os

import pytest

from minirun.base.tree import remove_tree


def test_removes_a_tree_with_files_links_and_empty_dirs(tmp_path):
    top = tmp_path / "top"
    (top / "a" / "b" / "c").mkdir(parents=True)
    (top / "a" / "f").write_text("x")
    (top / "empty").mkdir()
    os.symlink("a/f", top / "link")
    os.mkfifo(top / "fifo")
    remove_tree(str(top))
    assert not top.exists() and list(tmp_path.iterdir()) == []


def test_a_symlink_to_a_directory_is_removed_not_followed(tmp_path):
    """The test a naive walk (os.path.isdir, then recurse) fails: it empties the target."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("precious")
    top = tmp_path / "top"
    top.mkdir()
    os.symlink(outside, top / "escape")
    remove_tree(str(top))
    assert not top.exists()
    assert (outside / "keep").read_text() == "precious"


def test_the_path_itself_a_symlink_is_unlinked(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    os.symlink(outside, tmp_path / "link")
    remove_tree(str(tmp_path / "link"))
    assert not os.path.lexists(tmp_path / "link") and (outside / "keep").exists()


def test_missing_path_and_plain_file(tmp_path):
    remove_tree(str(tmp_path / "nothing"))  # no error
    f = tmp_path / "file"
    f.write_text("x")
    remove_tree(str(f))
    assert not f.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="a mode-000 directory is removable by root only "
                    "(overlayfs leaves work/work so)")
def test_mode_000_directory_as_root(tmp_path):
    top = tmp_path / "work"
    (top / "work").mkdir(parents=True)
    (top / "work" / "f").write_text("x")
    os.chmod(top / "work", 0)
    remove_tree(str(top))
    assert not top.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may remove anything: needs a denial")
def test_ignore_errors_removes_what_it_can(tmp_path):
    top = tmp_path / "top"
    (top / "locked").mkdir(parents=True)
    (top / "locked" / "f").write_text("x")
    (top / "free").write_text("x")
    os.chmod(top / "locked", 0o500)  # its entries cannot be unlinked
    try:
        with pytest.raises(PermissionError):
            remove_tree(str(top))
        remove_tree(str(top), ignore_errors=True)
        assert (top / "locked" / "f").exists() and not (top / "free").exists()
    finally:
        os.chmod(top / "locked", 0o700)
