"""engine.mounts: `-v` and `--mount` specs parsed into Docker's Mounts entries."""

from __future__ import annotations

import os

import pytest

from minirun.engine import mounts
from minirun.engine.mounts import MountSpecError, parse_mount, parse_volume


# --- -v -------------------------------------------------------------------------------------


def test_a_lone_path_is_an_anonymous_volume():
    assert parse_volume("/data") == {"Type": "volume", "Name": "", "Destination": "/data",
                                     "Mode": "", "RW": True, "Anonymous": True}


def test_name_and_path_is_a_named_volume():
    assert parse_volume("db:/var/lib/db") == {"Type": "volume", "Name": "db",
                                              "Destination": "/var/lib/db", "Mode": "",
                                              "RW": True}


def test_absolute_host_path_is_a_bind_mount():
    m = parse_volume("/srv/www:/usr/share/nginx/html")
    assert m == {"Type": "bind", "Source": "/srv/www", "Destination": "/usr/share/nginx/html",
                 "Mode": "", "RW": True, "Propagation": "rprivate"}


def test_relative_host_path_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    m = parse_volume("./site:/srv")
    assert m["Type"] == "bind" and m["Source"] == os.path.join(str(tmp_path), "site")


def test_ro_mode_makes_the_mount_read_only():
    assert parse_volume("/h:/c:ro")["RW"] is False
    assert parse_volume("data:/c:ro")["RW"] is False
    m = parse_volume("/h:/c:rw,Z")
    assert m["RW"] is True and m["Mode"] == "rw,Z"


def test_unknown_mode_is_an_error():
    with pytest.raises(MountSpecError, match="invalid mode: rx"):
        parse_volume("/h:/c:rx")


@pytest.mark.parametrize("spec", ["/a:/b:ro:extra", ":/c", "/h:", "a:b:c:d"])
def test_malformed_volume_spec_is_an_error(spec):
    with pytest.raises(MountSpecError, match="invalid volume specification") as e:
        parse_volume(spec)
    assert e.value.exit_code == 125


# --- --mount --------------------------------------------------------------------------------


def test_mount_bind_with_readonly_flag():
    m = parse_mount("type=bind,source=/srv,target=/data,readonly")
    assert m == {"Type": "bind", "Source": "/srv", "Destination": "/data", "Mode": "",
                 "RW": False, "Propagation": "rprivate"}


def test_mount_accepts_src_dst_aliases_and_readonly_values():
    m = parse_mount("type=bind,src=/srv,dst=/data,readonly=true")
    assert m["Source"] == "/srv" and m["Destination"] == "/data" and m["RW"] is False
    assert parse_mount("type=bind,src=/srv,destination=/d,readonly=false")["RW"] is True


def test_mount_bind_needs_a_source():
    with pytest.raises(MountSpecError, match="needs source"):
        parse_mount("type=bind,target=/data")


def test_mount_volume_named_and_anonymous():
    assert parse_mount("type=volume,source=db,target=/db") == {
        "Type": "volume", "Name": "db", "Destination": "/db", "Mode": "", "RW": True,
        "Anonymous": False}
    assert parse_mount("target=/cache")["Anonymous"] is True  # type defaults to volume


def test_mount_tmpfs_with_size_and_mode():
    m = parse_mount("type=tmpfs,target=/run,tmpfs-size=64m,tmpfs-mode=1770")
    assert m == {"Type": "tmpfs", "Source": "", "Destination": "/run", "Mode": "", "RW": True,
                 "Options": ["size=64m", "mode=1770"]}


def test_mount_tmpfs_readonly_adds_ro_and_refuses_a_source():
    assert parse_mount("type=tmpfs,target=/run,readonly")["Options"] == ["ro"]
    with pytest.raises(MountSpecError, match="no source"):
        parse_mount("type=tmpfs,source=x,target=/run")


def test_mount_without_target_is_an_error():
    with pytest.raises(MountSpecError, match="target is required"):
        parse_mount("type=bind,source=/srv")


def test_mount_of_unknown_type_is_an_error():
    with pytest.raises(MountSpecError, match="invalid mount type 'nfs'"):
        parse_mount("type=nfs,target=/x")


@pytest.mark.parametrize("spec,expected", [
    ("/data", {"Type": "volume", "Name": "", "Destination": "/data", "Anonymous": True}),
    ("vol:/data", {"Type": "volume", "Name": "vol", "Destination": "/data", "RW": True}),
    ("vol:/data:ro", {"Type": "volume", "Name": "vol", "RW": False}),
    ("/host:/ctr", {"Type": "bind", "Source": "/host", "Destination": "/ctr", "RW": True}),
    ("/host:/ctr:ro,z", {"Type": "bind", "RW": False}),
])
def test_volume_specs(spec, expected):
    got = mounts.parse_volume(spec)
    assert {k: got[k] for k in expected} == expected


def test_relative_bind_sources_are_made_absolute():
    assert mounts.parse_volume("./here:/x")["Source"] == os.path.abspath("here")


@pytest.mark.parametrize("spec", ["a:b:c:d", ":/x", "/h:/c:bogus"])
def test_bad_volume_specs(spec):
    with pytest.raises(mounts.MountSpecError):
        mounts.parse_volume(spec)


def test_mount_specs():
    assert mounts.parse_mount("type=bind,source=/s,target=/t,readonly")["RW"] is False
    assert mounts.parse_mount("type=volume,src=v,dst=/t")["Name"] == "v"
    assert mounts.parse_mount("type=volume,target=/t")["Anonymous"] is True
    t = mounts.parse_mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1777")
    assert t["Options"] == ["size=1m", "mode=1777"]
    for bad in ("type=bind,target=/t", "source=/s", "type=nfs,target=/t", "type=tmpfs,src=x,target=/t"):
        with pytest.raises(mounts.MountSpecError):
            mounts.parse_mount(bad)
