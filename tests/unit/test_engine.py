"""The front end's engine, without root: how Docker's flags become a bundle, how users and mount
specs are read, and the record, log and attach formats."""

from __future__ import annotations

import json
import os

import pytest

from minirun.engine import attach, bundle, logs, mounts, users
from minirun.engine.records import Conflict, Container, Containers, NoSuchContainer, valid_name
from minirun.engine.volumes import VolumeError, Volumes
from minirun.network import dns

# --- ENTRYPOINT, CMD and the environment ------------------------------------------------------------


@pytest.mark.parametrize("image,entrypoint,cmd,expected", [
    ({"Entrypoint": ["ep"], "Cmd": ["c"]}, None, [], ["ep", "c"]),
    ({"Entrypoint": ["ep"], "Cmd": ["c"]}, None, ["x", "y"], ["ep", "x", "y"]),  # COMMAND replaces CMD
    ({"Entrypoint": ["ep"], "Cmd": ["c"]}, "other", [], ["other"]),  # --entrypoint drops CMD too
    ({"Entrypoint": ["ep"], "Cmd": ["c"]}, "other", ["a"], ["other", "a"]),
    ({"Entrypoint": ["ep"], "Cmd": ["c"]}, "", ["ls"], ["ls"]),  # "" clears the entrypoint
    ({"Cmd": ["sh"]}, None, [], ["sh"]),
    ({"Cmd": ["sh"]}, None, ["echo", "hi"], ["echo", "hi"]),
])
def test_entrypoint_and_cmd_are_joined_as_docker_does(image, entrypoint, cmd, expected):
    assert bundle.command(image, entrypoint, cmd) == expected


def test_no_command_at_all_is_a_125():
    with pytest.raises(bundle.BundleError) as e:
        bundle.command({}, None, [])
    assert e.value.exit_code == 125


def test_environment_order_overrides_and_defaults(monkeypatch):
    monkeypatch.setenv("FROM_CALLER", "yes")
    env = bundle.environment(["B=1", "A=2"], ["A=3", "C=4", "FROM_CALLER"], "host1", tty=True)
    assert env[0] == "HOSTNAME=host1"
    assert env[1:] == ["B=1", "A=3", "PATH=" + bundle.DEFAULT_PATH, "TERM=xterm", "C=4",
                       "FROM_CALLER=yes"]
    assert "TERM=xterm" not in bundle.environment([], [], "h", tty=False)
    assert "PATH=/x" in bundle.environment(["PATH=/x"], [], "h", tty=False)
    with pytest.raises(bundle.BundleError):
        bundle.environment([], ["=x"], "h", tty=False)


def test_capabilities_default_add_drop():
    assert bundle.capabilities([], [], False) == bundle.DEFAULT_CAPS
    assert bundle.capabilities([], ["ALL"], False) == []
    assert bundle.capabilities(["net_admin"], ["CAP_CHOWN", "kill"], False) == \
        [c for c in bundle.DEFAULT_CAPS if c not in ("CAP_CHOWN", "CAP_KILL")] + ["CAP_NET_ADMIN"]
    with pytest.raises(bundle.BundleError, match="unknown capability"):
        bundle.capabilities(["CAP_FLY"], [], False)


def test_privileged_gives_only_what_we_hold(monkeypatch):
    monkeypatch.setattr(bundle, "_bounding_caps", lambda names: ["CAP_CHOWN", "CAP_SYS_ADMIN"])
    assert bundle.capabilities([], [], True) == ["CAP_CHOWN", "CAP_SYS_ADMIN"]


def test_resources_from_host_config():
    r = bundle.resources({"Memory": 64 << 20, "MemorySwap": 128 << 20, "NanoCpus": 1_500_000_000,
                          "CpuShares": 512, "CpusetCpus": "0-1", "PidsLimit": 50})
    assert r == {"memory": {"limit": 64 << 20, "swap": 128 << 20},
                 "cpu": {"period": 100000, "quota": 150000, "shares": 512, "cpus": "0-1"},
                 "pids": {"limit": 50}}
    assert bundle.resources({"Privileged": True})["devices"] == [{"allow": True, "access": "rwm"}]
    with pytest.raises(bundle.BundleError, match="--memory-swap needs --memory"):
        bundle.resources({"MemorySwap": 1 << 30})


def _container(**hc) -> Container:
    c = Container(id="a" * 64, name="web", image="busybox", image_id="sha256:" + "b" * 64,
                  created="2026-01-01T00:00:00Z", path="sh", args=["-c", "true"])
    c.config = {"Hostname": "aaaaaaaaaaaa", "Env": ["PATH=/bin"], "Tty": False, "Labels": {"k": "v"}}
    c.host_config = dict(hc)
    return c


def test_oci_config_carries_dockers_defaults(tmp_path):
    c = _container()
    c.mounts = [{"Type": "bind", "Source": "/srv/a/b", "Destination": "/a/b", "RW": False},
                {"Type": "volume", "Source": "/v/_data", "Destination": "/a", "RW": True},
                {"Type": "tmpfs", "Destination": "/t", "Options": ["size=1m"]}]
    cfg = bundle.oci_config(c, str(tmp_path), users.ResolvedUser(1000, 1000, [2000], "/home/u"),
                            cgroup_v2=False)
    p = cfg["process"]
    assert p["args"] == ["sh", "-c", "true"] and p["user"]["additionalGids"] == [2000]
    assert "HOME=/home/u" in p["env"] and p["capabilities"]["bounding"] == bundle.DEFAULT_CAPS
    assert {n["type"] for n in cfg["linux"]["namespaces"]} == {"mount", "pid", "ipc", "uts", "network"}
    assert cfg["linux"]["cgroupsPath"] == "/minirun/" + "a" * 64
    assert cfg["linux"]["maskedPaths"] == bundle.MASKED
    etc = {m["destination"]: m["source"] for m in cfg["mounts"] if m["destination"].startswith("/etc")}
    assert etc == {f"/etc/{n}": str(tmp_path / n) for n in ("hostname", "hosts", "resolv.conf")}
    user_dests = [m["destination"] for m in cfg["mounts"][-3:]]
    assert user_dests.index("/a") < user_dests.index("/a/b")  # parents first
    ro = next(m for m in cfg["mounts"] if m["destination"] == "/a/b")
    assert "ro" in ro["options"]
    assert cfg["annotations"]["org.minirun.label.k"] == "v"
    assert bundle.INIT_ANNOTATION not in cfg["annotations"]


def test_oci_config_host_modes_privileged_and_init(tmp_path):
    c = _container(PidMode="host", IpcMode="host", UTSMode="host", NetworkMode="host",
                   Privileged=True, Init=True, ReadonlyRootfs=True)
    cfg = bundle.oci_config(c, str(tmp_path), users.ResolvedUser(0, 0), cgroup_v2=True)
    assert {n["type"] for n in cfg["linux"]["namespaces"]} == {"mount", "cgroup"}
    assert "maskedPaths" not in cfg["linux"] and "hostname" not in cfg
    assert cfg["root"]["readonly"] is True
    assert cfg["annotations"][bundle.INIT_ANNOTATION] == "true"
    sysfs = next(m for m in cfg["mounts"] if m["type"] == "sysfs")
    assert "ro" not in sysfs["options"]


# --- -v and --mount ------------------------------------------------------------------------------------


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


# --- users -----------------------------------------------------------------------------------------------


@pytest.fixture
def rootfs(tmp_path):
    etc = tmp_path / "realetc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nmini:x:1000:1000::/home/mini:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\nmini:x:1000:\nextra:x:2000:mini,other\nwheel:x:10:\n")
    (tmp_path / "etc").symlink_to("/realetc")  # absolute: must resolve inside the rootfs
    return str(tmp_path)


@pytest.mark.parametrize("spec,uid,gid,extra", [
    ("", 0, 0, []), ("root", 0, 0, []), ("mini", 1000, 1000, [2000]), ("1000", 1000, 1000, [2000]),
    ("mini:wheel", 1000, 10, []), ("1000:5", 1000, 5, []), ("4242", 4242, 0, []),
])
def test_users_come_from_the_image(rootfs, spec, uid, gid, extra):
    u = users.resolve(rootfs, spec)
    assert (u.uid, u.gid, u.additional_gids) == (uid, gid, extra)


def test_unknown_user_and_group_have_dockers_messages(rootfs):
    with pytest.raises(users.UserError, match="unable to find user nobody: no matching entries in passwd file"):
        users.resolve(rootfs, "nobody")
    with pytest.raises(users.UserError, match="unable to find group nogroup"):
        users.resolve(rootfs, "mini:nogroup")


def test_home_comes_from_passwd(rootfs):
    assert users.resolve(rootfs, "mini").home == "/home/mini"


# --- records ------------------------------------------------------------------------------------------------


def test_records_ids_names_and_lookup(tmp_path):
    cs = Containers(str(tmp_path))
    a = cs.new(Container(id="", name="", image="i", image_id="x", created="t"))
    assert len(a.id) == 64 and "_" in a.name
    b = cs.new(Container(id="", name="web", image="i", image_id="x", created="t"))
    with pytest.raises(Conflict, match='The container name "/web" is already in use'):
        cs.new(Container(id="", name="web", image="i", image_id="x", created="t"))
    assert cs.find("web").id == b.id and cs.find(b.id).id == b.id
    assert cs.find(b.id[:5]).id == b.id or b.id[:5] == a.id[:5]
    with pytest.raises(NoSuchContainer, match="No such container: nope"):
        cs.find("nope")
    cs.rename(b.id, "web2")
    assert cs.find("web2").id == b.id
    cs.update(b.id, lambda c: setattr(c.state, "status", "running"))
    assert cs.load(b.id).state.status == "running"
    cs.remove_dir(b.id)
    assert [c.id for c in cs.all()] == [a.id]


def test_single_character_names_are_invalid_as_in_docker():
    assert not valid_name("p") and valid_name("p1") and not valid_name("-x") and not valid_name("a b")


def test_record_json_round_trip():
    c = _container()
    c.state.status, c.state.exit_code, c.state.oom_killed = "exited", 137, True
    back = Container.from_dict(json.loads(c.to_json()))
    assert back == c


# --- logs and the attach stream -----------------------------------------------------------------------------


def test_log_lines_are_split_and_partials_held(tmp_path):
    path = str(tmp_path / "log")
    w = logs.Writer(path)
    w.write("stdout", b"a\nb")
    w.write("stderr", b"err\n")
    w.write("stdout", b"c\n")
    w.close()
    recs = logs.read(path)
    assert [(r["stream"], r["log"]) for r in recs] == [("stdout", "a\n"), ("stderr", "err\n"),
                                                       ("stdout", "bc\n")]
    assert [r["log"] for r in logs.read(path, tail=1)] == ["bc\n"]
    assert logs.read(path, since="9999") == []


def test_since_accepts_durations_timestamps_and_times():
    assert logs.parse_since("10m") < logs.parse_since("1s")
    assert logs.parse_since("0").startswith("1970-01-01T00:00:00")
    assert logs.parse_since("2026-01-02T03:04:05Z") == "2026-01-02T03:04:05"  # UTC, compared as text
    with pytest.raises(ValueError):
        logs.parse_since("yesterday")


def test_follow_yields_what_comes_later_and_stops(tmp_path):
    path = str(tmp_path / "log")
    w = logs.Writer(path)
    w.write("stdout", b"first\n")
    calls = []

    def alive():
        calls.append(1)
        if len(calls) == 1:
            w.write("stdout", b"second\n")
            return True
        return False

    assert [r["log"] for r in logs.follow(path, 0, alive)] == ["first\n", "second\n"]


def test_attach_frames_survive_any_chunking():
    data = attach.frame(attach.STDOUT, b"hello") + attach.frame(attach.EXIT, b"3") + \
        attach.frame(attach.RESIZE, b"24 80")
    for cut in range(1, len(data)):
        r = attach.Reader()
        got = r.feed(data[:cut]) + r.feed(data[cut:])
        assert got == [(attach.STDOUT, b"hello"), (attach.EXIT, b"3"), (attach.RESIZE, b"24 80")]


# --- volumes and /etc files -----------------------------------------------------------------------------------


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
    vs.seed(v, str(src))
    assert open(os.path.join(v.Mountpoint, "sub", "f")).read() == "x"
    vs.remove("data")
    assert [x.Name for x in vs.all()] == [anon.Name]
    with pytest.raises(VolumeError, match="no such volume"):
        vs.get("data")


def test_resolv_conf_drops_loopback_resolvers():
    assert dns.resolv_conf("nameserver 127.0.0.53\nsearch x\n") == \
        "search x\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
    assert dns.resolv_conf("nameserver 10.0.0.1\nnameserver ::1\n") == "nameserver 10.0.0.1\n"


def test_etc_files(tmp_path):
    dns.write(str(tmp_path), "box", "example.org")
    assert (tmp_path / "hostname").read_text() == "box\n"
    hosts = (tmp_path / "hosts").read_text()
    assert "127.0.0.1\tlocalhost" in hosts and "box.example.org box" in hosts
    assert (tmp_path / "resolv.conf").exists()
