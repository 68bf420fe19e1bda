"""engine.volumes: named and anonymous volumes under <root>/volumes, and seeding them."""

from __future__ import annotations

import os
import re

import pytest

from minirun.engine.volumes import VolumeError, Volumes


@pytest.fixture
def vols(tmp_path):
    return Volumes(str(tmp_path))


def test_create_a_named_volume(vols, tmp_path):
    v, made = vols.create("data", labels={"app": "db"})
    assert made is True
    assert v.Name == "data" and v.Driver == "local" and v.Labels == {"app": "db"}
    assert v.Mountpoint == str(tmp_path / "volumes" / "data" / "_data")
    assert os.path.isdir(v.Mountpoint) and not v.Anonymous
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", v.CreatedAt)
    assert vols.get("data") == v


def test_create_an_anonymous_volume_names_it_with_64_hex(vols):
    v, made = vols.create()
    assert made and v.Anonymous
    assert re.fullmatch(r"[0-9a-f]{64}", v.Name)
    assert vols.exists(v.Name)


def test_create_twice_returns_the_same_volume_not_made_now(vols):
    first, _ = vols.create("data")
    again, made = vols.create("data", labels={"ignored": "yes"})
    assert made is False and again == first


@pytest.mark.parametrize("name", ["a", "bad/name", "-x", "has space", "..", "a:b"])
def test_invalid_volume_names_are_refused(vols, name):
    with pytest.raises(VolumeError, match="includes invalid characters"):
        vols.create(name)
    assert vols.all() == []


def test_all_lists_volumes_by_name(vols):
    vols.create("zeta")
    vols.create("alpha")
    assert [v.Name for v in vols.all()] == ["alpha", "zeta"]


def test_inspect_hides_the_anonymous_flag(vols):
    v, _ = vols.create("data")
    assert "Anonymous" not in v.inspect() and v.inspect()["Name"] == "data"


def test_remove_deletes_the_volume_and_its_content(vols):
    v, _ = vols.create("data")
    open(os.path.join(v.Mountpoint, "f"), "w").close()
    vols.remove("data")
    assert not vols.exists("data") and vols.all() == []
    assert not os.path.exists(os.path.dirname(v.Mountpoint))
    assert vols.create("data")[1] is True  # the name is free again


def test_remove_or_get_of_a_missing_volume_is_an_error(vols):
    with pytest.raises(VolumeError, match="get nope: no such volume"):
        vols.remove("nope")
    with pytest.raises(VolumeError, match="no such volume"):
        vols.get("nope")


def seed(v, path: str) -> None:
    """Volumes.seed as the engine calls it: an fd on the image's directory (kernel/resolve.py
    looked it up inside the rootfs)."""
    fd = os.open(path, os.O_PATH | os.O_DIRECTORY)
    try:
        Volumes.seed(v, fd)
    finally:
        os.close(fd)


def image_dir(tmp_path):
    src = tmp_path / "image-etc-app"
    (src / "conf.d").mkdir(parents=True)
    (src / "app.conf").write_text("port=80\n")
    (src / "conf.d" / "extra.conf").write_text("x=1\n")
    (src / "current").symlink_to("app.conf")
    os.chmod(src, 0o750)
    return src


def test_seed_copies_the_images_files_into_an_empty_volume(vols, tmp_path):
    v, _ = vols.create("cfg")
    assert Volumes.is_empty(v)
    seed(v, str(image_dir(tmp_path)))
    root = v.Mountpoint
    assert open(os.path.join(root, "app.conf")).read() == "port=80\n"
    assert open(os.path.join(root, "conf.d", "extra.conf")).read() == "x=1\n"
    assert os.readlink(os.path.join(root, "current")) == "app.conf"
    assert os.stat(root).st_mode & 0o7777 == 0o750
    assert not Volumes.is_empty(v)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_seed_keeps_owners(vols, tmp_path):
    src = image_dir(tmp_path)
    os.chown(src, 123, 456)
    os.chown(src / "app.conf", 789, 790)
    v, _ = vols.create("cfg")
    seed(v, str(src))
    st_root, st_file = os.stat(v.Mountpoint), os.stat(os.path.join(v.Mountpoint, "app.conf"))
    assert (st_root.st_uid, st_root.st_gid) == (123, 456)
    assert (st_file.st_uid, st_file.st_gid) == (789, 790)


def test_seed_does_nothing_for_an_empty_source(vols, tmp_path):
    v, _ = vols.create("cfg")
    (tmp_path / "empty").mkdir()
    seed(v, str(tmp_path / "empty"))
    assert Volumes.is_empty(v)


def test_volumes(tmp_path):
    vs = Volumes(str(tmp_path))
    v, made = vs.create("data", {"a": "b"})
    assert made and v.Mountpoint.endswith("volumes/data/_data") and os.path.isdir(v.Mountpoint)
    assert vs.create("data") == (vs.get("data"), False)
    anon, _ = vs.create(None)
    assert len(anon.Name) == 64 and anon.Anonymous
    with pytest.raises(VolumeError, match="includes invalid characters"):
        vs.create("bad/name")
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_text("x")
    seed(v, str(src))
    assert open(os.path.join(v.Mountpoint, "sub", "f")).read() == "x"
    vs.remove("data")
    assert [x.Name for x in vs.all()] == [anon.Name]
    with pytest.raises(VolumeError, match="no such volume"):
        vs.get("data")
