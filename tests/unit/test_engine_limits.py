"""Resource flags checked as Docker checks them (engine/limits.py, engine/devices.py), and the
linux.resources they become (engine/bundle.py). No root: the host is a `Host` the test gives."""

from __future__ import annotations

import os

import pytest

from minirun.engine import bundle, devices, limits
from minirun.errors import InvalidArgument

MB = 1 << 20
V1 = limits.Host(num_cpus=2, cpus="0-1", mems="0", cgroup_v2=False, blkio_weight=True)
V2 = limits.Host(num_cpus=2, cpus="0-1", mems="0", cgroup_v2=True, blkio_weight=False)


def refused(hc: dict, message: str, host: limits.Host = V1, update: bool = False) -> None:
    with pytest.raises(InvalidArgument) as e:
        limits.check(hc, host, update=update)
    assert str(e.value) == message


@pytest.mark.parametrize("hc, message", [
    ({"NanoCpus": -10**9}, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
    ({"NanoCpus": 3 * 10**9}, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
    ({"NanoCpus": 10**6}, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
    ({"Memory": 4 * MB}, "Minimum memory limit allowed is 6MB"),
    ({"Memory": 64 * MB, "MemorySwap": 32 * MB},
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    ({"MemorySwap": 64 * MB},
     "You should always set the Memory limit when using Memoryswap limit, see usage"),
    ({"MemoryReservation": 1 * MB}, "Minimum memory reservation allowed is 6MB"),
    ({"Memory": 32 * MB, "MemoryReservation": 64 * MB},
     "Minimum memory limit can not be less than memory reservation limit, see usage"),
    ({"CpuShares": -5}, "invalid CPU shares (-5): value must be a positive integer"),
    ({"CpuPeriod": 999}, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s "
                         "(i.e. 1000000)"),
    ({"CpuPeriod": 1000001}, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than "
                             "1s (i.e. 1000000)"),
    ({"CpuQuota": 999}, "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
    ({"NanoCpus": 10**9, "CpuQuota": 50000},
     "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
    ({"NanoCpus": 10**9, "CpuPeriod": 50000},
     "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
    ({"CpusetCpus": "0-9"}, "Requested CPUs are not available - requested 0-9, available: 0-1"),
    ({"CpusetCpus": "x"}, "Invalid value x for cpuset cpus"),
    ({"CpusetMems": "1"}, "Requested memory nodes are not available - requested 1, available: 0"),
    ({"BlkioWeight": 5}, "Range of blkio weight is from 10 to 1000"),
    ({"BlkioWeight": 1001}, "Range of blkio weight is from 10 to 1000"),
    ({"OomScoreAdj": 1001}, "Invalid value 1001, range for oom score adj is [-1000, 1000]"),
    ({"OomScoreAdj": -1001}, "Invalid value -1001, range for oom score adj is [-1000, 1000]"),
])
def test_docker_refuses_these_values(hc, message):
    refused(hc, message)


def test_values_in_range_pass_without_warnings():
    hc = {"Memory": 6 * MB, "MemorySwap": -1, "MemoryReservation": 6 * MB,
          "CpuShares": 512, "CpuPeriod": 1000, "CpuQuota": -1, "CpusetCpus": "0,1",
          "CpusetMems": "0", "BlkioWeight": 10, "OomScoreAdj": -1000, "PidsLimit": -1}
    assert limits.check(dict(hc), V1) == []
    assert limits.check({"NanoCpus": 10**7}, V1) == limits.check({"NanoCpus": 2 * 10**9}, V1) == []


def test_update_may_set_swap_alone():
    assert limits.check({"MemorySwap": 64 * MB}, V1, update=True) == []


def test_oom_kill_disable_is_discarded_on_v2_with_dockers_warning():
    hc = {"OomKillDisable": True, "Memory": 64 * MB}
    assert limits.check(hc, V2) == ["Your kernel does not support OomKillDisable. "
                                    "OomKillDisable discarded."]
    assert hc["OomKillDisable"] is False
    hc = {"OomKillDisable": True}
    assert "no memory limit is set" in limits.check(hc, V1)[0] and hc["OomKillDisable"]


def test_blkio_weight_without_a_weight_file_is_discarded():
    hc = {"BlkioWeight": 300}
    assert limits.check(hc, V2)[0].startswith("Your kernel does not support Block I/O weight")
    assert hc["BlkioWeight"] == 0


@pytest.mark.parametrize("text, flag, message", [
    ("10x", "-m, --memory", "invalid argument \"10x\" for \"-m, --memory\" flag: invalid size: '10x'"),
    ("-1", "-m, --memory", "invalid argument \"-1\" for \"-m, --memory\" flag: invalid size: '-1'"),
])
def test_bad_sizes(text, flag, message):
    with pytest.raises(InvalidArgument) as e:
        limits.size(text, flag)
    assert str(e.value) == message


def test_sizes():
    assert limits.size("64m", "-m") == 64 * MB
    assert limits.size("-1", "--memory-swap", swap=True) == -1


@pytest.mark.parametrize("spec, iops, message", [
    ("/dev/sda", False, "bad format: /dev/sda"),
    ("sda:1mb", False, "bad format for device path: sda:1mb"),
    ("/dev/sda:fast", False, "invalid rate for device: /dev/sda:fast. The correct format is "
     "<device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and "
     "can be kb, mb, or gb"),
    ("/dev/sda:1mb", True, "invalid rate for device: /dev/sda:1mb. The correct format is "
     "<device-path>:<number>. Number must be a positive integer"),
])
def test_bad_throttles(spec, iops, message):
    with pytest.raises(InvalidArgument) as e:
        limits.throttle(spec, "--device-read-bps", iops)
    assert str(e.value).endswith(message)


def test_throttles():
    assert limits.throttle("/dev/sda:1mb", "--device-read-bps", False) == {"Path": "/dev/sda",
                                                                           "Rate": MB}
    assert limits.throttle("/dev/sda:100", "--device-read-iops", True)["Rate"] == 100


def test_cgroupns_default_follows_the_cgroup_version():
    assert limits.cgroupns_mode("", V2) == "private"
    assert limits.cgroupns_mode("", V1) == "host"
    assert limits.cgroupns_mode("private", V1) == "private"
    with pytest.raises(InvalidArgument, match="host or private"):
        limits.cgroupns_mode("shared", V1)


def test_cgroup_parent():
    assert limits.cgroup_parent("/mygroup/") == "/mygroup"
    assert limits.cgroup_parent("rel") == "rel"
    with pytest.raises(InvalidArgument, match="systemd slices are not supported"):
        limits.cgroup_parent("my.slice")
    with pytest.raises(InvalidArgument, match=r"\.\."):
        limits.cgroup_parent("/a/../b")


@pytest.mark.parametrize("spec, want", [
    ("/dev/null", ("/dev/null", "/dev/null", "rwm")),
    ("/dev/null:r", ("/dev/null", "/dev/null", "r")),
    ("/dev/null:/dev/mynull", ("/dev/null", "/dev/mynull", "rwm")),
    ("/dev/null:/dev/mynull:rw", ("/dev/null", "/dev/mynull", "rw")),
])
def test_device_specs(spec, want):
    d = devices.parse(spec)
    assert (d["PathOnHost"], d["PathInContainer"], d["CgroupPermissions"]) == want


@pytest.mark.parametrize("spec, match", [
    ("/dev/null:/dev/x:rwx", "invalid device mode: rwx"),
    ("/dev/null:x:r", "x is not an absolute path"),
    ("a:b:c:d", "invalid device specification"),
])
def test_bad_device_specs(spec, match):
    with pytest.raises(InvalidArgument, match=match):
        devices.parse(spec)


def test_device_nodes_and_rules_from_the_host():
    nodes, rules = devices.gather([devices.parse("/dev/null:/dev/mynull:r")])
    st = os.stat("/dev/null")
    assert nodes == [{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
                      "fileMode": st.st_mode & 0o7777, "uid": st.st_uid, "gid": st.st_gid}]
    assert rules == [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"}]
    with pytest.raises(InvalidArgument, match="adding custom device \"/nonexistent\": no such"):
        devices.gather([devices.parse("/nonexistent")])
    with pytest.raises(InvalidArgument, match="not a device node"):
        devices.gather([devices.parse("/etc/hostname")])


def test_resources_carry_the_new_fields():
    r = bundle.resources({"CpuQuota": 20000, "CpuPeriod": 50000, "CpusetMems": "0",
                          "MemoryReservation": 32 * MB, "OomKillDisable": True,
                          "BlkioWeight": 300})
    assert r["cpu"] == {"quota": 20000, "period": 50000, "mems": "0"}
    assert r["memory"] == {"reservation": 32 * MB, "disableOOMKiller": True}
    assert r["blockIO"] == {"weight": 300}
    with pytest.raises(InvalidArgument, match="/dev/null is not a block device"):
        bundle.resources({"BlkioDeviceReadBps": [{"Path": "/dev/null", "Rate": 1}]})


def test_api_create_body_maps_the_resource_fields():
    """The Docker API's HostConfig (api/translate.py): the same RunOptions as the flags."""
    from minirun.api.translate import run_options

    o = run_options({"Image": "busybox", "HostConfig": {
        "CpuQuota": 20000, "CpuPeriod": 50000, "CpusetMems": "0", "MemoryReservation": 32 * MB,
        "OomKillDisable": True, "OomScoreAdj": 100, "BlkioWeight": 300,
        "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/x",
                     "CgroupPermissions": "r"}],
        "BlkioDeviceReadBps": [{"Path": "/dev/vda", "Rate": 1024}],
        "CgroupParent": "/p", "CgroupnsMode": "private", "KernelMemory": 0}})
    assert (o.cpu_quota, o.cpu_period, o.nano_cpus, o.cpuset_mems, o.memory_reservation,
            o.oom_kill_disable, o.oom_score_adj, o.blkio_weight, o.cgroup_parent, o.cgroupns) \
        == (20000, 50000, 0, "0", 32 * MB, True, 100, 300, "/p", "private")
    assert o.devices == [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/x",
                          "CgroupPermissions": "r"}]
    assert o.device_read_bps == [{"Path": "/dev/vda", "Rate": 1024}]
    with pytest.raises(InvalidArgument, match="invalid device mode"):
        run_options({"Image": "b", "HostConfig": {"Devices": [
            {"PathOnHost": "/dev/null", "CgroupPermissions": "x"}]}})
