"""engine.bundle: an image and `run`'s flags -> the OCI config, checked against Docker's rules."""

from __future__ import annotations

import pytest

from minirun.engine import bundle, devices, users
from minirun.engine.bundle import BundleError
from minirun.engine.records import Container
from minirun.engine.users import ResolvedUser
from minirun.errors import InvalidArgument
from minirun.kernel.capabilities import NAMES

CID = "c0ffee" + "0" * 58
IMAGE = {"Entrypoint": ["/docker-entrypoint.sh"], "Cmd": ["nginx", "-g", "daemon off;"]}


# --- command --------------------------------------------------------------------------------


def test_command_joins_entrypoint_and_cmd():
    assert bundle.command(IMAGE, None, []) == ["/docker-entrypoint.sh", "nginx", "-g",
                                               "daemon off;"]


def test_command_given_after_the_image_replaces_cmd_but_keeps_entrypoint():
    assert bundle.command(IMAGE, None, ["sh"]) == ["/docker-entrypoint.sh", "sh"]


def test_entrypoint_flag_replaces_entrypoint_and_drops_the_image_cmd():
    assert bundle.command(IMAGE, "/bin/sh", []) == ["/bin/sh"]
    assert bundle.command(IMAGE, "/bin/sh", ["-c", "id"]) == ["/bin/sh", "-c", "id"]


def test_empty_entrypoint_clears_it_and_runs_the_command_alone():
    assert bundle.command(IMAGE, "", ["ls", "-l"]) == ["ls", "-l"]


def test_image_with_only_cmd_runs_the_cmd():
    assert bundle.command({"Cmd": ["/bin/sh"]}, None, []) == ["/bin/sh"]


@pytest.mark.parametrize("image, entrypoint", [({}, None), ({"Cmd": ["/bin/sh"]}, ""),
                                               ({"Entrypoint": None, "Cmd": None}, None)])
def test_no_command_at_all_is_a_bundle_error_with_exit_code_125(image, entrypoint):
    with pytest.raises(BundleError) as e:
        bundle.command(image, entrypoint, [])
    assert e.value.exit_code == 125
    assert "no command" in str(e.value)


# --- environment ----------------------------------------------------------------------------


def test_environment_puts_hostname_first_and_keeps_the_image_order():
    env = bundle.environment(["PATH=/bin", "B=2", "A=1"], [], "web", False)
    assert env == ["HOSTNAME=web", "PATH=/bin", "B=2", "A=1"]


def test_environment_adds_the_default_path_when_the_image_has_none():
    env = bundle.environment(["A=1"], [], "web", False)
    assert f"PATH={bundle.DEFAULT_PATH}" in env


def test_e_flag_overrides_the_image_value_in_place_and_appends_new_names():
    env = bundle.environment(["PATH=/bin", "A=1", "B=2"], ["A=x", "C=3", "A=y"], "h", False)
    assert env == ["HOSTNAME=h", "PATH=/bin", "A=y", "B=2", "C=3"]


def test_value_may_contain_equals_signs_and_be_empty():
    env = bundle.environment([], ["URL=a=b", "EMPTY="], "h", False)
    assert "URL=a=b" in env and "EMPTY=" in env


def test_term_is_xterm_only_with_a_tty():
    assert "TERM=xterm" in bundle.environment([], [], "h", True)
    assert not any(e.startswith("TERM=") for e in bundle.environment([], [], "h", False))


def test_e_term_overrides_the_tty_default():
    env = bundle.environment([], ["TERM=vt100"], "h", True)
    assert "TERM=vt100" in env and "TERM=xterm" not in env


def test_e_name_without_value_takes_the_callers_value(monkeypatch):
    monkeypatch.setenv("MINIRUN_TEST_SECRET", "s3cret")
    monkeypatch.delenv("MINIRUN_TEST_UNSET", raising=False)
    env = bundle.environment(["A=1"], ["MINIRUN_TEST_SECRET", "MINIRUN_TEST_UNSET"], "h", False)
    assert "MINIRUN_TEST_SECRET=s3cret" in env
    assert not any(e.startswith("MINIRUN_TEST_UNSET") for e in env)


def test_environment_entry_without_a_name_is_a_bundle_error():
    with pytest.raises(BundleError, match="invalid environment variable"):
        bundle.environment([], ["=x"], "h", False)


# --- capabilities ---------------------------------------------------------------------------


def test_default_capabilities_are_dockers_fourteen():
    caps = bundle.capabilities([], [], False)
    assert len(caps) == 14
    assert set(caps) == {"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER",
                         "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP",
                         "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
                         "CAP_AUDIT_WRITE"}
    assert "CAP_SYS_ADMIN" not in caps and "CAP_NET_ADMIN" not in caps


def test_cap_add_appends_and_cap_drop_removes():
    caps = bundle.capabilities(["CAP_NET_ADMIN"], ["CAP_NET_RAW"], False)
    assert "CAP_NET_ADMIN" in caps and "CAP_NET_RAW" not in caps
    assert len(caps) == 14


def test_cap_drop_all_leaves_only_the_added_ones():
    assert bundle.capabilities(["NET_ADMIN"], ["ALL"], False) == ["CAP_NET_ADMIN"]
    assert bundle.capabilities([], ["all"], False) == []


def test_capability_names_without_prefix_and_in_lowercase_are_accepted():
    caps = bundle.capabilities(["net_admin", "Sys_Ptrace"], ["chown"], False)
    assert "CAP_NET_ADMIN" in caps and "CAP_SYS_PTRACE" in caps and "CAP_CHOWN" not in caps


def test_adding_a_default_capability_does_not_duplicate_it():
    caps = bundle.capabilities(["CHOWN"], [], False)
    assert caps.count("CAP_CHOWN") == 1


@pytest.mark.parametrize("add, drop", [(["CAP_FLY"], []), ([], ["bogus"])])
def test_unknown_capability_is_a_bundle_error(add, drop):
    with pytest.raises(BundleError, match="unknown capability"):
        bundle.capabilities(add, drop, False)


def test_cap_add_all_gives_every_capability_we_hold(monkeypatch):
    monkeypatch.setattr(bundle, "_bounding_caps", lambda names: ["CAP_SYS_ADMIN", "CAP_CHOWN"])
    assert bundle.capabilities(["ALL"], [], False) == ["CAP_CHOWN", "CAP_SYS_ADMIN"]


def test_cap_add_all_still_honours_cap_drop():
    caps = bundle.capabilities(["ALL"], ["CHOWN"], False)
    assert "CAP_CHOWN" not in caps and "CAP_SYS_ADMIN" in caps


def test_privileged_gives_only_the_capabilities_in_our_bounding_set(monkeypatch):
    monkeypatch.setattr(bundle, "_bounding_caps", lambda names: ["CAP_KILL", "CAP_CHOWN"])
    assert bundle.capabilities(["NET_ADMIN"], ["ALL"], True) == ["CAP_CHOWN", "CAP_KILL"]


def test_bounding_caps_match_proc_self_status():
    with open("/proc/self/status") as f:
        bnd = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    caps = bundle.capabilities([], [], True)
    assert caps == sorted(caps, key=NAMES.get)
    assert all(bnd & (1 << NAMES[c]) for c in caps)
    assert len(caps) == sum(1 for bit in NAMES.values() if bnd & (1 << bit))


# --- resources ------------------------------------------------------------------------------


def test_no_limits_means_empty_resources():
    assert bundle.resources({}) == {}


def test_memory_becomes_memory_limit_and_swap_is_memory_plus_swap():
    assert bundle.resources({"Memory": 64 << 20}) == {"memory": {"limit": 64 << 20}}
    r = bundle.resources({"Memory": 64 << 20, "MemorySwap": 128 << 20})
    assert r["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    assert bundle.resources({"Memory": 1 << 20, "MemorySwap": -1})["memory"]["swap"] == -1


def test_memory_swap_without_memory_is_a_bundle_error():
    with pytest.raises(BundleError, match="--memory-swap"):
        bundle.resources({"MemorySwap": 128 << 20})


def test_cpus_become_quota_over_a_100ms_period():
    assert bundle.resources({"NanoCpus": 1_500_000_000})["cpu"] == {"period": 100000,
                                                                   "quota": 150000}


def test_cpu_shares_cpuset_and_pids_limit():
    r = bundle.resources({"CpuShares": 512, "CpusetCpus": "0-1", "PidsLimit": 100})
    assert r == {"cpu": {"shares": 512, "cpus": "0-1"}, "pids": {"limit": 100}}


def test_privileged_allows_every_device():
    assert bundle.resources({"Privileged": True})["devices"] == [{"allow": True,
                                                                  "access": "rwm"}]
    assert "devices" not in bundle.resources({})


# --- oci_config -----------------------------------------------------------------------------


def container(config=None, host_config=None, mounts=None) -> Container:
    cfg = {"Tty": False, "Env": ["HOSTNAME=web", "PATH=/bin"], "WorkingDir": "", "Hostname": "",
           "Labels": {}}
    cfg.update(config or {})
    return Container(id=CID, name="web", image="alpine", image_id="sha256:" + "1" * 64,
                     created="2026-01-01T00:00:00Z", config=cfg, host_config=host_config or {},
                     mounts=mounts or [], path="/bin/sh", args=["-c", "id"])


USER = ResolvedUser(uid=1000, gid=1000, additional_gids=[27], home="/home/u")


def config(c=None, cdir="/var/lib/minirun/containers/x", user=USER, v2=True) -> dict:
    return bundle.oci_config(c or container(), cdir, user, v2)


def ns_types(cfg: dict) -> list[str]:
    return [n["type"] for n in cfg["linux"]["namespaces"]]


def test_process_has_args_user_cwd_and_terminal():
    p = config(container({"Tty": True, "WorkingDir": "/app"}))["process"]
    assert p["args"] == ["/bin/sh", "-c", "id"]
    assert p["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [27]}
    assert p["cwd"] == "/app" and p["terminal"] is True
    assert p["noNewPrivileges"] is False


def test_cwd_defaults_to_root_and_no_additional_gids_key_without_groups():
    p = config(user=ResolvedUser(0, 0))["process"]
    assert p["cwd"] == "/" and p["user"] == {"uid": 0, "gid": 0}


def test_home_is_added_from_the_user_when_env_has_none():
    assert "HOME=/home/u" in config()["process"]["env"]
    env = config(container({"Env": ["HOME=/data"]}))["process"]["env"]
    assert env == ["HOME=/data"]


def test_default_capabilities_in_the_three_sets():
    caps = config()["process"]["capabilities"]
    assert caps["bounding"] == caps["effective"] == caps["permitted"]
    assert len(caps["bounding"]) == 14


def test_all_namespaces_are_new_by_default_with_cgroup_on_v2():
    assert ns_types(config()) == ["mount", "pid", "ipc", "uts", "network", "cgroup"]
    assert "cgroup" not in ns_types(config(v2=False))


@pytest.mark.parametrize("key, ns", [("PidMode", "pid"), ("IpcMode", "ipc"), ("UTSMode", "uts"),
                                     ("NetworkMode", "network")])
def test_host_mode_shares_the_hosts_namespace(key, ns):
    types = ns_types(config(container(host_config={key: "host"})))
    assert ns not in types and "mount" in types


def test_hostname_is_the_short_id_unless_set_and_absent_with_uts_host():
    assert config()["hostname"] == CID[:12]
    assert config(container({"Hostname": "web"}))["hostname"] == "web"
    assert "hostname" not in config(container(host_config={"UTSMode": "host"}))


def test_masked_and_readonly_paths_by_default():
    linux = config()["linux"]
    assert "/proc/kcore" in linux["maskedPaths"] and "/sys/firmware" in linux["maskedPaths"]
    assert "/proc/sys" in linux["readonlyPaths"]


def test_privileged_has_no_masked_or_readonly_paths_and_a_writable_sys():
    cfg = config(container(host_config={"Privileged": True}))
    assert "maskedPaths" not in cfg["linux"] and "readonlyPaths" not in cfg["linux"]
    sys_mount = next(m for m in cfg["mounts"] if m["destination"] == "/sys")
    assert "ro" not in sys_mount["options"]
    assert cfg["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]


def test_sys_is_read_only_without_privileged():
    sys_mount = next(m for m in config()["mounts"] if m["destination"] == "/sys")
    assert "ro" in sys_mount["options"]


def test_etc_files_are_bind_mounted_from_the_container_directory(tmp_path):
    cfg = config(cdir=str(tmp_path))
    binds = {m["destination"]: m["source"] for m in cfg["mounts"] if m["type"] == "bind"}
    assert binds == {"/etc/hostname": str(tmp_path / "hostname"),
                     "/etc/hosts": str(tmp_path / "hosts"),
                     "/etc/resolv.conf": str(tmp_path / "resolv.conf")}


def test_user_mounts_come_after_the_system_ones_parents_first():
    mounts = [{"Type": "bind", "Source": "/h/c", "Destination": "/a/b/c", "RW": True},
              {"Type": "bind", "Source": "/h/a", "Destination": "/a", "RW": False},
              {"Type": "volume", "Source": "/v/_data", "Destination": "/a/b", "RW": True}]
    cfg = config(container(mounts=mounts))
    dests = [m["destination"] for m in cfg["mounts"]]
    assert dests[:2] == ["/proc", "/dev"]
    assert dests[-3:] == ["/a", "/a/b", "/a/b/c"]
    a = cfg["mounts"][-3]
    assert a == {"destination": "/a", "type": "bind", "source": "/h/a",
                 "options": ["rbind", "ro", "rprivate"]}
    assert cfg["mounts"][-2]["options"] == ["rbind", "rprivate"]


def test_tmpfs_mount_keeps_its_options():
    mounts = [{"Type": "tmpfs", "Source": "", "Destination": "/run", "RW": True,
               "Options": ["size=64m"]}]
    m = config(container(mounts=mounts))["mounts"][-1]
    assert m["type"] == "tmpfs" and m["destination"] == "/run"
    assert m["options"] == ["nosuid", "nodev", "noexec", "size=64m"]


def test_cgroups_path_root_readonly_and_resources():
    cfg = config(container(host_config={"ReadonlyRootfs": True, "Memory": 1 << 20}))
    assert cfg["linux"]["cgroupsPath"] == f"/minirun/{CID}"
    assert cfg["root"] == {"path": "rootfs", "readonly": True}
    assert cfg["linux"]["resources"] == {"memory": {"limit": 1 << 20},
                                         "devices": devices.DEFAULT_RULES}
    assert config()["root"]["readonly"] is False


def test_annotations_carry_labels_name_and_init():
    cfg = config(container({"Labels": {"tier": "web"}}, {"Init": True}))
    assert cfg["annotations"] == {"org.minirun.label.tier": "web",
                                  "org.minirun.container.name": "web",
                                  "run.minirun.init": "true"}
    assert bundle.INIT_ANNOTATION not in config()["annotations"]


def test_domainname_only_when_set():
    assert config(container({"Domainname": "example.org"}))["domainname"] == "example.org"
    assert "domainname" not in config()


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


# --- --ulimit, --sysctl, --shm-size, --expose ---------------------------------------------------


def test_parse_ulimit_takes_soft_and_optional_hard():
    assert bundle.parse_ulimit("nofile=1024:2048") == {"Name": "nofile", "Soft": 1024, "Hard": 2048}
    assert bundle.parse_ulimit("nproc=50") == {"Name": "nproc", "Soft": 50, "Hard": 50}
    assert bundle.parse_ulimit("core=-1") == {"Name": "core", "Soft": -1, "Hard": -1}
    for bad, words in (("nofile", "NAME=SOFT"), ("nofile=x", "NAME=SOFT"),
                       ("files=1", "invalid ulimit 'files'"), ("nofile=10:5", "above the hard"),
                       ("nofile=-1:5", "above the hard"), ("nofile=-2", "not a number")):
        with pytest.raises(InvalidArgument, match=words):
            bundle.parse_ulimit(bad)


def test_ulimits_become_rlimits_with_minus_one_unlimited():
    hc = {"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 20},
                      {"Name": "core", "Soft": -1, "Hard": -1}]}
    assert config(container(host_config=hc))["process"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20},
        {"type": "RLIMIT_CORE", "soft": 2**64 - 1, "hard": 2**64 - 1}]
    assert "rlimits" not in config()["process"]


def test_sysctls_only_namespaced_and_only_with_their_namespace():
    hc = {"Sysctls": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000", "fs.mqueue.msg_max": "5"}}
    bundle.check_sysctls(hc)
    assert config(container(host_config=hc))["linux"]["sysctl"] == hc["Sysctls"]
    with pytest.raises(InvalidArgument, match="vm.swappiness is not namespaced"):
        bundle.check_sysctls({"Sysctls": {"vm.swappiness": "1"}})
    with pytest.raises(InvalidArgument, match="--network host"):
        bundle.check_sysctls({"Sysctls": {"net.core.somaxconn": "1"}, "NetworkMode": "host"})
    with pytest.raises(InvalidArgument, match="--ipc host"):
        bundle.check_sysctls({"Sysctls": {"kernel.sem": "1 2 3 4"}, "IpcMode": "host"})
    assert "sysctl" not in config()["linux"]


def test_shm_size_replaces_the_default_size_of_dev_shm():
    def shm(cfg):
        return next(m for m in cfg["mounts"] if m["destination"] == "/dev/shm")["options"]

    assert "size=65536k" in shm(config())
    opts = shm(config(container(host_config={"ShmSize": 2 << 20})))
    assert "size=2097152" in opts and not any(o == "size=65536k" for o in opts)


def test_expose_gives_exposed_port_keys():
    assert bundle.exposed_ports(["80", "53/udp", "7000-7002"]) == {
        "80/tcp": {}, "53/udp": {}, "7000/tcp": {}, "7001/tcp": {}, "7002/tcp": {}}
    for bad in ("http", "0", "80/icmp", "9-8", "70000"):
        with pytest.raises(InvalidArgument, match="invalid --expose"):
            bundle.exposed_ports([bad])
