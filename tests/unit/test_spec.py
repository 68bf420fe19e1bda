"""config.json parsing and validation: valid configs parse, each error names its field."""

from __future__ import annotations

import copy
import json
import os

import pytest

from minirun.errors import ConfigError
from minirun.oci import spec


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "rootfs").mkdir()
    return str(tmp_path)


@pytest.fixture
def cfg():
    return copy.deepcopy(spec.default_config())


def parse_error(raw, bundle) -> str:
    with pytest.raises(ConfigError) as e:
        spec.parse(raw, bundle)
    return str(e.value)


def test_default_config_parses_into_records(cfg, bundle):
    s = spec.parse(cfg, bundle)
    assert s.oci_version.startswith("1.")
    assert s.root_path == os.path.join(bundle, "rootfs") and s.root_readonly
    assert s.process.args == ["sh"] and s.process.cwd == "/"
    assert s.process.env_dict()["TERM"] == "xterm"
    assert s.process.rlimits == [spec.Rlimit("RLIMIT_NOFILE", 1024, 1024)]
    assert "CAP_KILL" in s.process.capabilities["bounding"]
    assert s.hostname == "minirun"
    assert [m.destination for m in s.mounts][:2] == ["/proc", "/dev"]
    assert isinstance(s.mounts[0], spec.Mount) and s.mounts[0].type == "proc"
    assert s.linux.ns("mount") == spec.Namespace("mount") and s.linux.ns("user") is None
    assert "/proc/kcore" in s.linux.masked_paths
    assert s.raw is cfg


def test_absolute_root_path_is_used_as_is(cfg, tmp_path):
    cfg["root"]["path"] = str(tmp_path)
    assert spec.parse(cfg, "/nonexistent-bundle").root_path == str(tmp_path)


def test_unknown_top_level_properties_are_ignored(cfg, bundle):
    cfg["somethingNew"] = {"x": 1}
    cfg["process"]["futureField"] = True
    assert spec.parse(cfg, bundle).process.args == ["sh"]


def _set(path: str, value):
    """An edit that sets cfg[a][b]... = value (ints index lists)."""
    def edit(cfg):
        keys = [int(k) if k.isdigit() else k for k in path.split(".")]
        obj = cfg
        for k in keys[:-1]:
            obj = obj[k]
        obj[keys[-1]] = value
    return edit


def _del(path: str):
    def edit(cfg):
        keys = path.split(".")
        obj = cfg
        for k in keys[:-1]:
            obj = obj[k]
        del obj[keys[-1]]
    return edit


def _linux(key, value):
    return _set(f"linux.{key}", value)


def _ns(*types):
    return [{"type": t} for t in types]


def _both(*edits):
    def edit(cfg):
        for e in edits:
            e(cfg)
    return edit


INVALID = {
    "ociVersion not 1.x": (_set("ociVersion", "2.0.0"), "ociVersion"),
    "ociVersion garbage": (_set("ociVersion", "x.y"), "ociVersion"),
    "root.path missing": (_del("root.path"), "root.path"),
    "root.path not a dir": (_set("root.path", "nope"), "root.path"),
    "empty args": (_set("process.args", []), "process.args"),
    "relative cwd": (_set("process.cwd", "tmp"), "process.cwd"),
    "env without =": (_set("process.env", ["PATH=/bin", "JUSTKEY"]), "process.env[1]"),
    "unknown capability": (_set("process.capabilities.effective", ["CAP_FLY"]),
                           "process.capabilities.effective"),
    "duplicate rlimit": (_set("process.rlimits", [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}] * 2),
                         "process.rlimits[1].type"),
    "soft > hard": (_set("process.rlimits", [{"type": "RLIMIT_CORE", "soft": 2, "hard": 1}]),
                    "process.rlimits[0]"),
    "unknown rlimit": (_set("process.rlimits", [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]),
                       "process.rlimits[0].type"),
    "uid negative": (_set("process.user.uid", -1), "process.user.uid"),
    "apparmor": (_set("process.apparmorProfile", "docker-default"), "process.apparmorProfile"),
    "unknown namespace": (_linux("namespaces", _ns("mount", "galaxy")), "linux.namespaces[1].type"),
    "duplicate namespace": (_linux("namespaces", _ns("mount", "pid", "mount")),
                            "linux.namespaces[2].type"),
    "namespace path missing": (_linux("namespaces", [{"type": "network", "path": "/nonexistent/ns"}]),
                               "linux.namespaces[0].path"),
    "namespace path relative": (_linux("namespaces", [{"type": "network", "path": "proc/1/ns/net"}]),
                                "linux.namespaces[0].path"),
    "uidMappings without user ns": (
        _linux("uidMappings", [{"containerID": 0, "hostID": 1000, "size": 1}]), "linux.uidMappings"),
    "new user ns without mappings": (_linux("namespaces", _ns("mount", "user")), "linux.uidMappings"),
    "bad device type": (_linux("devices", [{"type": "x", "path": "/dev/foo", "major": 1, "minor": 1}]),
                        "linux.devices[0].type"),
    "device path relative": (_linux("devices", [{"type": "c", "path": "dev/foo", "major": 1, "minor": 1}]),
                             "linux.devices[0].path"),
    "hostname without uts": (_linux("namespaces", _ns("mount", "pid")), "hostname"),
    "user ns without mount ns": (_both(_linux("namespaces", _ns("pid", "user")),
                                       _linux("uidMappings", [{"containerID": 0, "hostID": 1000,
                                                               "size": 1}]),
                                       _linux("gidMappings", [{"containerID": 0, "hostID": 1000,
                                                               "size": 1}])),
                                 "linux.namespaces"),
    "net sysctl without netns": (_both(_linux("namespaces", _ns("mount", "uts")),
                                       _linux("sysctl", {"net.ipv4.ip_forward": "1"})),
                                 "linux.sysctl.net.ipv4.ip_forward"),
    "shm sysctl without ipc ns": (_both(_linux("namespaces", _ns("mount", "uts")),
                                        _linux("sysctl", {"kernel.shmmax": "1"})),
                                  "linux.sysctl.kernel.shmmax"),
    "non-namespaced sysctl": (_linux("sysctl", {"vm.swappiness": "10"}), "linux.sysctl.vm.swappiness"),
    "sysctl value not a string": (_linux("sysctl", {"net.core.somaxconn": 1}),
                                  "linux.sysctl.net.core.somaxconn"),
    "bad rootfsPropagation": (_linux("rootfsPropagation", "sideways"), "linux.rootfsPropagation"),
    "hook path relative": (_set("hooks", {"prestart": [{"path": "bin/hook"}]}), "hooks.prestart[0].path"),
    "hook timeout < 1": (_set("hooks", {"poststop": [{"path": "/bin/true", "timeout": 0}]}),
                         "hooks.poststop[0].timeout"),
    "mounts not a list": (_set("mounts", {"destination": "/x"}), "mounts"),
    "mount without destination": (_set("mounts", [{"type": "tmpfs"}]), "mounts[0].destination"),
    "annotation not a string": (_set("annotations", {"a": 1}), "annotations.a"),
}


@pytest.mark.parametrize("edit, field", INVALID.values(), ids=INVALID.keys())
def test_invalid_config_error_names_the_field(cfg, bundle, edit, field):
    edit(cfg)
    msg = parse_error(cfg, bundle)
    assert f"config.json: {field}:" in msg
    assert "\n" not in msg


LABELS = {"process.selinuxLabel": _set("process.selinuxLabel", "system_u:system_r:x:s0"),
          "linux.mountLabel": _linux("mountLabel", "system_u:object_r:x:s0:c1,c2")}


@pytest.mark.parametrize("field", LABELS)
def test_selinux_label_is_ignored_and_noted_without_selinux(cfg, bundle, monkeypatch, field):
    """A label means nothing to a kernel without SELinux: ignored, as crun does, and noted
    (create logs spec.ignored under --debug)."""
    monkeypatch.setattr(spec, "selinux_enabled", lambda: False)
    LABELS[field](cfg)
    s = spec.parse(cfg, bundle)
    assert len(s.ignored) == 1
    note = s.ignored[0]
    assert note.startswith(f"{field} 'system_u:") and "SELinux is not enabled" in note


@pytest.mark.parametrize("field", LABELS)
def test_selinux_label_is_refused_with_selinux(cfg, bundle, monkeypatch, field):
    """With SELinux on, running unlabelled would pretend a confinement minirun does not give."""
    monkeypatch.setattr(spec, "selinux_enabled", lambda: True)
    LABELS[field](cfg)
    msg = parse_error(cfg, bundle)
    assert f"config.json: {field}: SELinux is enabled" in msg and "remove it" in msg


def test_no_mount_namespace_is_accepted(cfg, bundle):
    """runtime-spec: an unlisted namespace is inherited, the mount namespace too."""
    cfg["linux"]["namespaces"] = _ns("pid")
    cfg.pop("hostname")
    assert spec.parse(cfg, bundle).linux.ns("mount") is None


VALID_SYSCTLS = {
    "net.* with network ns": {"net.ipv4.ip_forward": "1"},
    "kernel.shm* with ipc ns": {"kernel.shmmax": "1024", "kernel.shm_rmid_forced": "1"},
    "fs.mqueue with ipc ns": {"fs.mqueue.msg_max": "10"},
    "kernel.hostname with uts ns": {"kernel.hostname": "box"},
}


@pytest.mark.parametrize("sysctl", VALID_SYSCTLS.values(), ids=VALID_SYSCTLS.keys())
def test_namespaced_sysctls_are_accepted_with_their_namespace(cfg, bundle, sysctl):
    cfg["linux"]["sysctl"] = sysctl
    assert spec.parse(cfg, bundle).linux.sysctl == sysctl


def test_joined_namespace_path_and_user_ns_by_path_need_no_mappings(cfg, bundle):
    cfg["linux"]["namespaces"] += [{"type": "user", "path": "/proc/self/ns/user"}]
    s = spec.parse(cfg, bundle)
    assert s.linux.ns("user").path == "/proc/self/ns/user"


def test_hooks_parse_in_phase_order_with_args_env_timeout(cfg, bundle):
    cfg["hooks"] = {"prestart": [{"path": "/bin/a", "args": ["a", "-x"], "env": ["K=V"], "timeout": 5}],
                    "poststop": [{"path": "/bin/b"}], "madeUpPhase": [{"path": "rel"}]}
    hooks = spec.parse(cfg, bundle).hooks
    assert hooks == {"prestart": [spec.Hook("/bin/a", ["a", "-x"], ["K=V"], 5)],
                     "poststop": [spec.Hook("/bin/b")]}


def test_relative_mount_destination_is_taken_from_slash(cfg, bundle):
    cfg["mounts"] = [{"destination": "data/../srv", "type": "tmpfs"}]
    assert spec.parse(cfg, bundle).mounts[0].destination == "/srv"


def test_config_without_process_parses(cfg, bundle):
    del cfg["process"]
    assert spec.parse(cfg, bundle).process is None


def test_parse_process_alone_validates_like_config(cfg):
    p = spec.parse_process({"args": ["ls", "-l"], "cwd": "/tmp/../work", "env": ["A=1=2"],
                            "user": {"uid": 5, "gid": 6, "additionalGids": [7]},
                            "consoleSize": {"height": 24, "width": 80}})
    assert (p.args, p.cwd, p.env_dict()) == (["ls", "-l"], "/work", {"A": "1=2"})
    assert p.user == spec.User(5, 6, None, [7]) and p.console_size == (24, 80)
    assert p.capabilities is None


def test_load_reads_config_json(cfg, bundle):
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f)
    assert spec.load(bundle).process.args == ["sh"]


def test_load_invalid_json_is_a_config_error(bundle):
    with open(os.path.join(bundle, "config.json"), "w") as f:
        f.write('{"ociVersion": "1.0.0",')
    with pytest.raises(ConfigError, match="not valid JSON"):
        spec.load(bundle)


def test_load_non_utf8_is_a_config_error(bundle):
    with open(os.path.join(bundle, "config.json"), "wb") as f:
        f.write(b'{"ociVersion": "\xff"}')
    with pytest.raises(ConfigError, match="not valid JSON"):
        spec.load(bundle)


def test_load_missing_config_says_how_to_make_one(tmp_path):
    with pytest.raises(ConfigError, match="minirun-oci spec"):
        spec.load(str(tmp_path))


def test_load_top_level_not_an_object(bundle):
    with open(os.path.join(bundle, "config.json"), "w") as f:
        f.write("[1, 2]")
    with pytest.raises(ConfigError, match="must be an object"):
        spec.load(bundle)


def test_rootless_default_maps_the_caller_and_drops_what_it_cannot_do(bundle):
    cfg = spec.default_config(rootless=True)
    lx = cfg["linux"]
    types = [n["type"] for n in lx["namespaces"]]
    assert "user" in types and "network" not in types
    assert lx["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert lx["gidMappings"] == [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    assert "resources" not in lx
    sys_mount = next(m for m in cfg["mounts"] if m["destination"] == "/sys")
    assert sys_mount["source"] == "/sys" and "rbind" in sys_mount["options"]
    assert "ro" in sys_mount["options"]
    devpts = next(m for m in cfg["mounts"] if m["type"] == "devpts")
    assert "gid=5" not in devpts["options"]
    assert spec.parse(cfg, bundle).linux.uid_mappings == [spec.IDMap(0, os.geteuid(), 1)]


def test_default_config_calls_are_independent():
    a = spec.default_config()
    a["process"]["args"].append("x")
    a["mounts"].clear()
    b = spec.default_config()
    assert b["process"]["args"] == ["sh"] and b["mounts"]
