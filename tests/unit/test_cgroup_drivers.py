"""The v1 and v2 drivers against fixture directories shaped like cgroupfs (no root needed), and
the verbs on top of them: update flag parsing, pause/resume/update/events on a live container.

Tests that read back what a driver wrote install the real kernel (`kernfs` below); tests about
the *sequence* of writes to one file (io.max, devices.allow, memsw ordering) read the Recorder.
"""

from __future__ import annotations

import errno
import io
import json
import os
import struct
import subprocess
import sys
import time

import pytest

from oneline import one_line_error
from minirun.errors import ContainerError, MinirunError
from minirun.kernel import libc
from minirun.kernel import process as kproc
from minirun.kernel.cgroups import Cgroup, devices
from minirun.kernel.cgroups.resources import ResourceError
from minirun.kernel.cgroups.v1 import V1
from minirun.kernel.cgroups.v2 import V2
from minirun.oci import cli, control
from minirun.oci import state as st
from minirun.oci.spec import default_config

M = 1 << 20
NO_LIMIT_V1 = "9223372036854771712\n"

V2_FILES = {
    "cgroup.procs": "1234\n1240\n",
    "cgroup.threads": "1234\n1240\n1241\n",
    "cgroup.controllers": "cpuset cpu io memory hugetlb pids\n",
    "cgroup.subtree_control": "",
    "cgroup.freeze": "0\n",
    "cgroup.events": "populated 1\nfrozen 0\n",
    "cgroup.kill": "",
    "memory.max": "max\n",
    "memory.low": "0\n",
    "memory.high": "max\n",
    "memory.swap.max": "max\n",
    "memory.current": "5242880\n",
    "memory.peak": "7340032\n",
    "memory.swap.current": "4096\n",
    "memory.events": "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n",
    "memory.stat": "anon 3932160\nfile 1048576\nkernel 262144\nsock 0\nshmem 0\n"
                   "file_mapped 524288\npgfault 1200\npgmajfault 3\n",
    "cpu.max": "max 100000\n",
    "cpu.max.burst": "0\n",
    "cpu.weight": "100\n",
    "cpu.idle": "0\n",
    "cpu.stat": "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\nnr_periods 50\n"
                "nr_throttled 3\nthrottled_usec 7000\nnr_bursts 0\nburst_usec 0\n",
    "cpuset.cpus": "\n",
    "cpuset.mems": "\n",
    "cpuset.cpus.effective": "0-1\n",
    "pids.max": "max\n",
    "pids.current": "3\n",
    "pids.events": "max 0\n",
    "io.max": "",
    "io.weight": "default 100\n",
    "io.stat": "8:0 rbytes=1048576 wbytes=4096 rios=10 wios=1 dbytes=0 dios=0\n"
               "253:0 rbytes=512 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
    "hugetlb.2MB.max": "max\n",
    "hugetlb.2MB.current": "2097152\n",
    "hugetlb.2MB.events": "max 2\n",
    "hugetlb.1GB.max": "max\n",
    "hugetlb.1GB.current": "0\n",
    "hugetlb.1GB.events": "max 0\n",
}

V1_FILES = {
    "memory": {
        "cgroup.procs": "1234\n",
        "memory.limit_in_bytes": NO_LIMIT_V1,
        "memory.memsw.limit_in_bytes": NO_LIMIT_V1,
        "memory.soft_limit_in_bytes": NO_LIMIT_V1,
        "memory.kmem.limit_in_bytes": NO_LIMIT_V1,
        "memory.kmem.tcp.limit_in_bytes": NO_LIMIT_V1,
        "memory.swappiness": "60\n",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        "memory.usage_in_bytes": "5242880\n",
        "memory.max_usage_in_bytes": "7340032\n",
        "memory.failcnt": "4\n",
        "memory.memsw.usage_in_bytes": "5246976\n",
        "memory.kmem.usage_in_bytes": "262144\n",
        "memory.stat": "cache 1048576\nrss 3932160\nmapped_file 524288\nswap 4096\n"
                       "total_cache 1048576\ntotal_rss 3932160\n",
    },
    "cpu": {
        "cgroup.procs": "1234\n",
        "cpu.shares": "1024\n",
        "cpu.cfs_period_us": "100000\n",
        "cpu.cfs_quota_us": "-1\n",
        "cpu.cfs_burst_us": "0\n",
        "cpu.rt_period_us": "1000000\n",
        "cpu.rt_runtime_us": "0\n",
        "cpu.stat": "nr_periods 50\nnr_throttled 3\nthrottled_time 7000000\n",
    },
    "cpuacct": {
        "cgroup.procs": "1234\n",
        "cpuacct.usage": "123456789\n",
        "cpuacct.usage_percpu": "100000000 23456789 \n",
        "cpuacct.stat": "user 10\nsystem 2\n",
    },
    "cpuset": {"cgroup.procs": "1234\n", "cpuset.cpus": "0-1\n", "cpuset.mems": "0\n"},
    "pids": {"cgroup.procs": "1234\n1240\n", "pids.max": "max\n", "pids.current": "3\n"},
    "freezer": {"cgroup.procs": "1234\n", "freezer.state": "THAWED\n"},
    "devices": {"cgroup.procs": "1234\n", "devices.allow": "", "devices.deny": "",
                "devices.list": "a *:* rwm\n"},
    "blkio": {"cgroup.procs": "1234\n", "blkio.weight": "500\n", "blkio.weight_device": "",
              "blkio.leaf_weight": "500\n",
              "blkio.throttle.read_bps_device": "", "blkio.throttle.write_bps_device": "",
              "blkio.throttle.read_iops_device": "", "blkio.throttle.write_iops_device": "",
              "blkio.throttle.io_service_bytes": "8:0 Read 1048576\n8:0 Write 4096\n"
                                                 "8:0 Sync 1052672\n8:0 Async 0\n8:0 Discard 0\n"
                                                 "8:0 Total 1052672\nTotal 1052672\n"},
    "hugetlb": {"cgroup.procs": "1234\n", "hugetlb.2MB.limit_in_bytes": NO_LIMIT_V1,
                "hugetlb.2MB.usage_in_bytes": "2097152\n", "hugetlb.2MB.failcnt": "1\n",
                "hugetlb.1GB.limit_in_bytes": NO_LIMIT_V1, "hugetlb.1GB.usage_in_bytes": "0\n",
                "hugetlb.1GB.failcnt": "0\n"},
    "net_cls,net_prio": {"cgroup.procs": "1234\n", "net_cls.classid": "0\n",
                         "net_prio.ifpriomap": "lo 0\neth0 0\n"},
    "name=systemd": {"cgroup.procs": "1234\n"},
    "": {"cgroup.procs": "1234\n"},  # hybrid: the cgroup2 mount without controllers
}


class Kernfs(libc.Kernel):
    """The real kernel, with one difference for fixture files: a write replaces the contents, as
    a write(2) to a cgroupfs file does (a regular file would keep the old tail: "39" written over
    "100\\n" would read "390")."""

    def write_file(self, path, data, dir_fd=None):
        if dir_fd is None and os.path.isfile(path):
            os.truncate(path, 0)
        super().write_file(path, data, dir_fd)


@pytest.fixture
def kernfs():
    libc.install(Kernfs())  # the autouse fixture puts its Recorder back afterwards


def fill(d, files):
    os.makedirs(d, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    return str(d)


def read(d, name):
    with open(os.path.join(d, name)) as f:
        return f.read()


@pytest.fixture
def v2dir(tmp_path):
    return fill(tmp_path / "unified" / "minirun" / "c1", V2_FILES)


@pytest.fixture
def v1dirs(tmp_path):
    dirs = {}
    for key, files in V1_FILES.items():
        mount = key.replace("name=", "") or "unified"
        dirs[key] = fill(tmp_path / mount / "minirun" / "c1", files)
    return dirs


def writes(rec):
    """(path's last two parts, value) of each write_file the Recorder saw."""
    return [("/".join(c[1].split("/")[-1:]), c[2]) for c in rec.calls if c[0] == "write_file"]


# --- v2 apply ------------------------------------------------------------------------------


def test_v2_apply_writes_every_file(v2dir, kernfs):
    V2({"": v2dir}).apply({
        "memory": {"limit": 64 * M, "reservation": 32 * M, "swap": 192 * M},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 1000, "idle": 0,
                "cpus": "0", "mems": "0"},
        "pids": {"limit": 100},
        "blockIO": {"weight": 500,
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4 * M}],
        "unified": {"memory.high": "50000000"},
    })
    assert read(v2dir, "memory.max") == "67108864"
    assert read(v2dir, "memory.low") == "33554432"
    assert read(v2dir, "memory.swap.max") == str(128 * M)
    assert read(v2dir, "cpu.weight") == "39"
    assert read(v2dir, "cpu.max") == "50000 100000"
    assert read(v2dir, "cpu.max.burst") == "1000"
    assert read(v2dir, "cpu.idle") == "0"
    assert read(v2dir, "cpuset.cpus") == "0" and read(v2dir, "cpuset.mems") == "0"
    assert read(v2dir, "pids.max") == "100"
    assert read(v2dir, "io.weight") == "default 4950"
    assert read(v2dir, "io.max") == "8:0 rbps=1048576"
    assert read(v2dir, "hugetlb.2MB.max") == "4194304"
    assert read(v2dir, "memory.high") == "50000000"


def test_v2_apply_unlimited_values(v2dir, kernfs):
    fill(v2dir, {"memory.max": "67108864\n", "cpu.max": "50000 100000\n", "pids.max": "10\n"})
    V2({"": v2dir}).apply({"memory": {"limit": -1, "swap": -1}, "cpu": {"quota": -1},
                           "pids": {"limit": 0}})
    assert read(v2dir, "memory.max") == "max"
    assert read(v2dir, "memory.swap.max") == "max"
    assert read(v2dir, "cpu.max") == "max 100000"
    assert read(v2dir, "pids.max") == "max"


def test_v2_io_max_gets_one_write_per_device_and_limit(v2dir, recorder):
    dev = {"major": 8, "minor": 0}
    V2({"": v2dir}).apply({"blockIO": {"throttleReadBpsDevice": [dict(dev, rate=1048576)],
                                       "throttleWriteIOPSDevice": [dict(dev, rate=50),
                                                                   {"major": 8, "minor": 16,
                                                                    "rate": 60}]}})
    assert writes(recorder) == [("io.max", "8:0 rbps=1048576"), ("io.max", "8:0 wiops=50"),
                                ("io.max", "8:16 wiops=60")]


def test_v2_failed_write_names_the_field(v2dir, kernfs):
    os.unlink(os.path.join(v2dir, "cpu.weight"))  # the cpu controller is not enabled
    with pytest.raises(ResourceError) as e:
        V2({"": v2dir}).apply({"cpu": {"shares": 1024}})
    assert str(e.value).startswith("config.json: linux.resources.cpu.shares: writing '39' to ")
    assert "No such file or directory" in str(e.value)


def test_v2_missing_swap_file_is_checked_on_the_directory(v2dir, kernfs):
    os.unlink(os.path.join(v2dir, "memory.swap.max"))
    with pytest.raises(ResourceError, match=r"^config.json: linux.resources.memory.swap: "):
        V2({"": v2dir}).apply({"memory": {"limit": 64 * M, "swap": 128 * M}})
    assert read(v2dir, "memory.max") == "max\n"  # nothing written: the plan failed first


def test_v2_unified_file_must_exist_in_the_directory(v2dir, kernfs):
    with pytest.raises(ResourceError, match="unified.memory.oom.group: no such file"):
        V2({"": v2dir}).apply({"unified": {"memory.oom.group": "1"}})


def test_v2_devices_load_and_attach_the_program(v2dir, recorder, monkeypatch):
    # The Recorder's prog_load hands back fd 99, which load_and_attach would really close: give
    # it a real fd of ours instead, and record the program.
    loaded = []
    fd = os.open(os.devnull, os.O_RDONLY)
    monkeypatch.setattr(libc, "bpf_prog_load",
                        lambda ptype, insns, lic, why: loaded.append((ptype, insns, lic)) or fd)
    rules = default_config(False)["linux"]["resources"]["devices"]
    V2({"": v2dir}).apply({"devices": rules})
    want = devices.program(devices.normalise(rules) + devices.normalise(devices.DEFAULT_ALLOW))
    assert loaded == [(devices.BPF_PROG_TYPE_CGROUP_DEVICE, want, "Apache-2.0")]
    assert len(want) // 8 == 47
    bpf = [c for c in recorder.calls if c[0] == "bpf"]
    assert [c[1] for c in bpf] == [8]  # BPF_PROG_ATTACH (no earlier program to detach)
    _, prog_fd, attach_type, flags = struct.unpack("<IIII", bpf[0][2])
    assert (prog_fd, attach_type, flags) == (fd, devices.BPF_CGROUP_DEVICE, devices.BPF_F_ALLOW_MULTI)
    with pytest.raises(OSError):
        os.close(fd)  # load_and_attach closed it


def test_v2_devices_load_failure_is_a_resource_error(v2dir):
    libc.install(libc.Recorder(fail={"bpf": errno.EPERM}))
    with pytest.raises(ResourceError, match=r"^config.json: linux.resources.devices: cannot load"):
        V2({"": v2dir}).apply({"devices": [{"allow": False}]})


def test_v2_enables_controllers_on_the_way_down(tmp_path, recorder, monkeypatch):
    root = fill(tmp_path / "cg", {"cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n",
                                  "cgroup.subtree_control": "cpu memory\n"})
    monkeypatch.setattr(V2, "_mount_of", lambda self, d: root)
    cg = V2({"": os.path.join(root, "minirun", "c1")})
    made = cg.create()
    assert made == [os.path.join(root, "minirun"), os.path.join(root, "minirun", "c1")]
    assert [(c[1], c[2]) for c in recorder.calls if c[0] == "write_file"] == [
        (os.path.join(root, "cgroup.subtree_control"), "+cpuset +io +hugetlb +pids +misc")]


def test_v2_no_internal_processes_moves_us_into_a_leaf(tmp_path, monkeypatch):
    root = fill(tmp_path / "cg", {"cgroup.controllers": "cpu memory\n", "cgroup.subtree_control": ""})

    class Busy(libc.Recorder):
        def write_file(self, path, data, dir_fd=None):
            self.calls.append(("write_file", path, data, dir_fd))
            if path.endswith("subtree_control") and len(self.calls) == 1:
                raise OSError(errno.EBUSY, "Device or resource busy")

    rec = Busy()
    libc.install(rec)
    monkeypatch.setattr(V2, "_mount_of", lambda self, d: root)
    V2({"": os.path.join(root, "c1")}).create()
    assert [(os.path.relpath(c[1], root), c[2]) for c in rec.calls] == [
        ("cgroup.subtree_control", "+cpu +memory"),
        ("minirun-runtime/cgroup.procs", "0"),
        ("cgroup.subtree_control", "+cpu +memory")]


# --- v2 freeze, kill, OOM, stats -----------------------------------------------------------


def test_v2_freeze_and_thaw(v2dir, kernfs):
    cg = V2({"": v2dir})
    assert not cg.frozen()
    fill(v2dir, {"cgroup.events": "populated 1\nfrozen 1\n"})  # the kernel says: all stopped
    t0 = time.monotonic()
    cg.freeze()
    assert time.monotonic() - t0 < 0.5  # returned on "frozen 1", not after the wait ran out
    assert read(v2dir, "cgroup.freeze") == "1" and cg.frozen()
    fill(v2dir, {"cgroup.events": "populated 1\nfrozen 0\n"})
    cg.thaw()
    assert read(v2dir, "cgroup.freeze") == "0" and not cg.frozen()


def test_v2_kill_all_uses_cgroup_kill(v2dir, recorder):
    V2({"": v2dir}).kill_all()
    assert writes(recorder) == [("cgroup.kill", "1")]


def test_v2_kill_all_without_cgroup_kill_signals_each_process(v2dir):
    child = subprocess.Popen(["sleep", "60"])
    try:
        os.unlink(os.path.join(v2dir, "cgroup.kill"))  # before Linux 5.14
        fill(v2dir, {"cgroup.procs": f"{child.pid}\n"})
        V2({"": v2dir}).kill_all()
        assert child.wait(timeout=5) == -9
    finally:
        child.kill()
        child.wait()


def test_v2_oom_kills(v2dir):
    assert V2({"": v2dir}).oom_kills() == 1
    os.unlink(os.path.join(v2dir, "memory.events"))
    assert V2({"": v2dir}).oom_kills() == 0


def test_v2_stats(v2dir):
    s = V2({"": v2dir}).stats()
    assert set(s) == {"cpu", "memory", "pids", "blkio", "hugetlb"}
    assert s["cpu"] == {"usage": {"total": 123456000, "user": 100000000, "kernel": 23456000},
                        "throttling": {"periods": 50, "throttledPeriods": 3,
                                       "throttledTime": 7000000}}
    mem = s["memory"]
    assert mem["usage"] == {"usage": 5242880, "limit": -1, "max": 7340032, "failcnt": 4}
    assert mem["swap"] == {"usage": 4096, "limit": -1}
    assert mem["cache"] == 1048576 and mem["oomKills"] == 1
    assert mem["raw"]["anon"] == 3932160 and mem["raw"]["pgmajfault"] == 3
    assert s["pids"] == {"current": 3, "limit": -1}
    assert s["blkio"]["ioServiceBytesRecursive"] == [
        {"major": 8, "minor": 0, "op": "Read", "value": 1048576},
        {"major": 8, "minor": 0, "op": "Write", "value": 4096},
        {"major": 253, "minor": 0, "op": "Read", "value": 512},
        {"major": 253, "minor": 0, "op": "Write", "value": 0}]
    assert s["hugetlb"] == {"1GB": {"usage": 0, "failcnt": 0},
                            "2MB": {"usage": 2097152, "failcnt": 2}}
    json.dumps(s)  # what `events` prints


def test_v2_stats_with_limits_set(v2dir):
    fill(v2dir, {"memory.max": "67108864\n", "pids.max": "100\n", "memory.swap.max": "0\n"})
    s = V2({"": v2dir}).stats()
    assert s["memory"]["usage"]["limit"] == 67108864 and s["pids"]["limit"] == 100


def test_v2_stats_of_an_empty_directory(tmp_path):
    s = V2({"": str(tmp_path)}).stats()
    assert s["cpu"]["usage"]["total"] == 0 and s["memory"]["usage"]["limit"] == -1
    assert s["blkio"]["ioServiceBytesRecursive"] == [] and s["hugetlb"] == {}


def test_v2_procs(v2dir):
    assert V2({"": v2dir}).procs() == [1234, 1240]


# --- v1 apply ------------------------------------------------------------------------------


def test_v1_apply_writes_every_file(v1dirs, kernfs):
    V1(v1dirs).apply({
        "memory": {"limit": 64 * M, "reservation": 32 * M, "swap": 128 * M, "kernel": 16 * M,
                   "kernelTCP": 8 * M, "swappiness": 10, "disableOOMKiller": True},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 1000,
                "realtimePeriod": 1000000, "realtimeRuntime": 0, "cpus": "0", "mems": "0"},
        "pids": {"limit": 100},
        "blockIO": {"weight": 300, "leafWeight": 200,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 400}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                    "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2097152}],
                    "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 50}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4 * M}],
        "network": {"classID": 0x100001, "priorities": [{"name": "eth0", "priority": 5}]},
    })
    mem, cpu, blk = v1dirs["memory"], v1dirs["cpu"], v1dirs["blkio"]
    assert read(mem, "memory.limit_in_bytes") == "67108864"
    assert read(mem, "memory.memsw.limit_in_bytes") == "134217728"
    assert read(mem, "memory.soft_limit_in_bytes") == "33554432"
    assert read(mem, "memory.kmem.limit_in_bytes") == "16777216"
    assert read(mem, "memory.kmem.tcp.limit_in_bytes") == "8388608"
    assert read(mem, "memory.swappiness") == "10"
    assert read(mem, "memory.oom_control") == "1"
    assert read(cpu, "cpu.shares") == "512"
    assert read(cpu, "cpu.cfs_period_us") == "100000" and read(cpu, "cpu.cfs_quota_us") == "50000"
    assert read(cpu, "cpu.cfs_burst_us") == "1000"
    assert read(cpu, "cpu.rt_period_us") == "1000000" and read(cpu, "cpu.rt_runtime_us") == "0"
    assert read(v1dirs["cpuset"], "cpuset.cpus") == "0" and read(v1dirs["cpuset"], "cpuset.mems") == "0"
    assert read(v1dirs["pids"], "pids.max") == "100"
    assert read(blk, "blkio.weight") == "300" and read(blk, "blkio.leaf_weight") == "200"
    assert read(blk, "blkio.weight_device") == "8:0 400"
    assert read(blk, "blkio.throttle.read_bps_device") == "8:0 1048576"
    assert read(blk, "blkio.throttle.write_bps_device") == "8:0 2097152"
    assert read(blk, "blkio.throttle.read_iops_device") == "8:0 100"
    assert read(blk, "blkio.throttle.write_iops_device") == "8:0 50"
    assert read(v1dirs["hugetlb"], "hugetlb.2MB.limit_in_bytes") == "4194304"
    assert read(v1dirs["net_cls,net_prio"], "net_cls.classid") == "1048577"
    assert read(v1dirs["net_cls,net_prio"], "net_prio.ifpriomap") == "eth0 5"


def test_v1_cpu_quota_minus_one_and_pids_max(v1dirs, kernfs):
    fill(v1dirs["cpu"], {"cpu.cfs_quota_us": "50000\n"})
    V1(v1dirs).apply({"cpu": {"quota": -1}, "pids": {"limit": -1}})
    assert read(v1dirs["cpu"], "cpu.cfs_quota_us") == "-1"
    assert read(v1dirs["pids"], "pids.max") == "max"


def test_v1_memsw_order_from_the_current_value(v1dirs, recorder):
    V1(v1dirs).apply({"memory": {"limit": 64 * M, "swap": 128 * M}})  # from unlimited: shrink
    assert writes(recorder) == [("memory.limit_in_bytes", "67108864"),
                                ("memory.memsw.limit_in_bytes", "134217728")]
    recorder.calls.clear()
    fill(v1dirs["memory"], {"memory.limit_in_bytes": "67108864\n",
                            "memory.memsw.limit_in_bytes": "134217728\n"})
    V1(v1dirs).apply({"memory": {"limit": 256 * M, "swap": 512 * M}})  # grow
    assert writes(recorder) == [("memory.memsw.limit_in_bytes", "536870912"),
                                ("memory.limit_in_bytes", "268435456")]


def test_v1_missing_controller_is_named(tmp_path):
    mem = fill(tmp_path / "memory" / "c", V1_FILES["memory"])
    with pytest.raises(ResourceError, match=r"^config.json: linux.resources.pids.limit: the pids "
                                            r"controller is not mounted"):
        V1({"memory": mem}).apply({"pids": {"limit": 5}})
    with pytest.raises(ResourceError, match=r"^config.json: linux.resources.devices: "):
        V1({"memory": mem}).apply({"devices": [{"allow": False}]})
    with pytest.raises(ResourceError, match=r"^config.json: linux.resources.network.classID: "):
        V1({"memory": mem}).apply({"network": {"classID": 1}})


def test_v1_failed_write_names_the_field(v1dirs, kernfs):
    os.unlink(os.path.join(v1dirs["cpu"], "cpu.cfs_burst_us"))  # a kernel before 5.14
    with pytest.raises(ResourceError, match=r"^config.json: linux.resources.cpu.burst: writing "
                                            r"'1000' to .*cpu.cfs_burst_us: No such file"):
        V1(v1dirs).apply({"cpu": {"burst": 1000}})


def test_v1_devices_default_rules(v1dirs, recorder):
    rules = default_config(False)["linux"]["resources"]["devices"]
    assert rules == [{"allow": False, "access": "rwm"}]
    V1(v1dirs).apply({"devices": rules})
    calls = [c for c in recorder.calls if c[0] == "write_file"]
    assert {os.path.dirname(c[1]) for c in calls} == {v1dirs["devices"]}
    assert writes(recorder) == [("devices.deny", "a")] + [("devices.allow", x) for x in (
        "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 1:8 rwm", "c 1:9 rwm",
        "c 5:2 rwm", "c 136:* rwm")]


def test_v1_devices_files_keep_the_last_write(v1dirs, kernfs):
    V1(v1dirs).apply({"devices": [{"allow": False, "access": "rwm"},
                                  {"allow": True, "type": "b", "major": 8, "minor": 0, "access": "r"}]})
    assert read(v1dirs["devices"], "devices.deny") == "a"
    assert read(v1dirs["devices"], "devices.allow") == "c 136:* rwm"


def test_v1_bad_device_rule_writes_nothing(v1dirs, recorder):
    with pytest.raises(devices.DeviceRuleError, match=r"devices\[0\]\.type"):
        V1(v1dirs).apply({"devices": [{"allow": True, "type": "q"}]})
    assert writes(recorder) == []


# --- v1 cpuset, create, join, remove ----------------------------------------------------------


def test_v1_new_cpuset_copies_the_parent(tmp_path, kernfs):
    parent = fill(tmp_path / "cpuset" / "minirun", {"cpuset.cpus": "0-3\n", "cpuset.mems": "0\n"})
    child = fill(tmp_path / "cpuset" / "minirun" / "c1", {"cpuset.cpus": "\n", "cpuset.mems": ""})
    V1({"cpuset": child})._prepare_new("cpuset", child)
    assert read(child, "cpuset.cpus") == "0-3" and read(child, "cpuset.mems") == "0"
    assert read(parent, "cpuset.cpus") == "0-3\n"


def test_v1_new_cpuset_keeps_values_already_set(tmp_path, recorder):
    fill(tmp_path / "cpuset", {"cpuset.cpus": "0-3\n", "cpuset.mems": "0\n"})
    child = fill(tmp_path / "cpuset" / "c1", {"cpuset.cpus": "1\n", "cpuset.mems": "\n"})
    V1({"cpuset": child})._prepare_new("cpuset", child)
    assert writes(recorder) == [("cpuset.mems", "0")]


def test_v1_prepare_only_touches_cpuset(tmp_path, recorder):
    V1({"cpu,cpuacct": str(tmp_path)})._prepare_new("cpu,cpuacct", str(tmp_path))
    assert recorder.calls == []


def test_v1_create_makes_each_hierarchy_and_fills_cpuset(tmp_path, recorder):
    fill(tmp_path / "cpuset", {"cpuset.cpus": "0-1\n", "cpuset.mems": "0\n"})
    os.makedirs(tmp_path / "memory")
    dirs = {"cpuset": str(tmp_path / "cpuset" / "c1"), "memory": str(tmp_path / "memory" / "c1")}
    made = V1(dirs).create()
    assert made == [dirs["cpuset"], dirs["memory"]] and all(os.path.isdir(d) for d in made)
    assert [(c[1], c[2]) for c in recorder.calls if c[0] == "write_file"] == [
        (os.path.join(dirs["cpuset"], "cpuset.cpus"), "0-1"),
        (os.path.join(dirs["cpuset"], "cpuset.mems"), "0")]


def test_join_writes_the_pid_in_every_hierarchy(v1dirs, recorder):
    V1(v1dirs).join(4321)
    calls = [c for c in recorder.calls if c[0] == "write_file"]
    want = sorted(os.path.join(d, "cgroup.procs") for d in v1dirs.values())
    assert sorted(c[1] for c in calls) == want
    assert {c[2] for c in calls} == {"4321"}


def test_v1_procs_is_the_union(v1dirs):
    assert V1(v1dirs).procs() == [1234, 1240]
    assert V1({"memory": "/nonexistent"}).procs() == []


def test_remove_deepest_first(tmp_path):
    a = tmp_path / "a"
    (a / "b" / "c").mkdir(parents=True)
    made = [str(a), str(a / "b"), str(a / "b" / "c")]
    Cgroup({"": str(a / "b" / "c")}).remove(made)
    assert not a.exists()


def test_remove_leaves_a_parent_in_use(tmp_path):
    p = tmp_path / "minirun"
    (p / "c1").mkdir(parents=True)
    (p / "c2").mkdir()  # another container's cgroup
    Cgroup({"": str(p / "c1")}).remove([str(p), str(p / "c1")])
    assert p.is_dir() and not (p / "c1").exists() and (p / "c2").is_dir()


def test_remove_of_what_create_made(tmp_path, recorder):
    (tmp_path / "memory").mkdir()
    cg = V1({"memory": str(tmp_path / "memory" / "minirun" / "c1")})
    made = cg.create()
    assert made == [str(tmp_path / "memory" / "minirun"), str(tmp_path / "memory" / "minirun" / "c1")]
    cg.remove()
    assert os.listdir(tmp_path / "memory") == []
    cg.remove()  # already gone: not an error


# --- v1 freeze, kill, OOM, stats -----------------------------------------------------------


def test_v1_freeze_and_thaw(v1dirs, kernfs):
    cg = V1(v1dirs)
    assert not cg.frozen()
    cg.freeze()
    assert read(v1dirs["freezer"], "freezer.state") == "FROZEN" and cg.frozen()
    cg.thaw()
    assert read(v1dirs["freezer"], "freezer.state") == "THAWED" and not cg.frozen()
    fill(v1dirs["freezer"], {"freezer.state": "FREEZING\n"})
    assert cg.frozen()  # on its way: not running either


def test_v1_freeze_without_freezer(tmp_path):
    cg = V1({"memory": str(tmp_path)})
    assert not cg.frozen()
    with pytest.raises(MinirunError, match="freezer cgroup controller is not mounted"):
        cg.freeze()


def test_v1_kill_all_freezes_signals_thaws(v1dirs, kernfs):
    child = subprocess.Popen(["sleep", "60"])
    try:
        for d in v1dirs.values():
            fill(d, {"cgroup.procs": f"{child.pid}\n"})
        V1(v1dirs).kill_all()
        assert child.wait(timeout=5) == -9
        assert read(v1dirs["freezer"], "freezer.state") == "THAWED"
    finally:
        child.kill()
        child.wait()


def test_v1_oom_kills(v1dirs):
    assert V1(v1dirs).oom_kills() == 2
    assert V1({"pids": v1dirs["pids"]}).oom_kills() == 0


def test_v1_stats(v1dirs):
    s = V1(v1dirs).stats()
    tick = 10**9 // os.sysconf("SC_CLK_TCK")
    assert set(s) == {"cpu", "memory", "pids", "blkio", "hugetlb"}
    assert s["cpu"] == {"usage": {"total": 123456789, "percpu": [100000000, 23456789],
                                  "user": 10 * tick, "kernel": 2 * tick},
                        "throttling": {"periods": 50, "throttledPeriods": 3,
                                       "throttledTime": 7000000}}
    mem = s["memory"]
    assert mem["usage"] == {"usage": 5242880, "limit": 9223372036854771712, "max": 7340032,
                            "failcnt": 4}
    assert mem["swap"] == {"usage": 5246976, "limit": 9223372036854771712}
    assert mem["kernel"] == {"usage": 262144}
    assert mem["cache"] == 1048576 and mem["oomKills"] == 2 and mem["raw"]["rss"] == 3932160
    assert s["pids"] == {"current": 3, "limit": -1}
    ops = [(e["op"], e["value"]) for e in s["blkio"]["ioServiceBytesRecursive"]]
    assert ops == [("Read", 1048576), ("Write", 4096), ("Sync", 1052672), ("Async", 0),
                   ("Discard", 0), ("Total", 1052672)]  # the device-less "Total" line is left out
    assert s["hugetlb"] == {"1GB": {"usage": 0, "failcnt": 0}, "2MB": {"usage": 2097152, "failcnt": 1}}
    json.dumps(s)


def test_v1_stats_with_cpu_and_cpuacct_comounted(tmp_path):
    d = fill(tmp_path / "cpu,cpuacct" / "c", {**V1_FILES["cpu"], **V1_FILES["cpuacct"]})
    s = V1({"cpu,cpuacct": d}).stats()
    assert s["cpu"]["usage"]["total"] == 123456789 and s["cpu"]["throttling"]["periods"] == 50
    assert s["memory"]["usage"]["usage"] == 0 and s["pids"]["limit"] == -1


def test_read_int():
    assert Cgroup.read_int("/nonexistent") is None


def test_read_int_values(tmp_path):
    for text, want in (("max\n", -1), ("42\n", 42), ("7 8\n", 7), ("", None), ("x", None)):
        p = tmp_path / "f"
        p.write_text(text)
        assert Cgroup.read_int(str(p)) == want


# --- update's flags --------------------------------------------------------------------------


@pytest.mark.parametrize("text, value", [
    ("512m", 512 * M), ("1g", 1 << 30), ("1024", 1024), ("-1", -1), ("max", -1),
    ("64k", 65536), ("2T", 2 << 40), ("64MB", 64 * M), ("1.5g", 3 << 29), (" 8m ", 8 * M),
])
def test_parse_bytes(text, value):
    assert control.parse_bytes(text) == value


@pytest.mark.parametrize("text", ["bad", "", "m", "12x", "1..2g"])
def test_parse_bytes_errors(text):
    with pytest.raises(MinirunError, match="is not a size"):
        control.parse_bytes(text)


@pytest.mark.parametrize("text, seconds", [
    ("5s", 5.0), ("500ms", 0.5), ("1m", 60.0), ("2h", 7200.0), ("3", 3.0), ("1.5s", 1.5), ("0s", 0.0),
])
def test_parse_duration(text, seconds):
    assert control.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["bad", "5x", "s", "ms", "", "-1s", "-5"])
def test_parse_duration_errors(text):
    with pytest.raises(MinirunError, match="is not a duration"):
        control.parse_duration(text)


def test_resources_from_flags():
    res = control.resources_from_flags({
        "memory": "64m", "memory-reservation": "32m", "memory-swap": "-1", "kernel-memory": "1m",
        "kernel-memory-tcp": "1k", "cpu-shares": "512", "cpu-quota": "20000", "cpu-period": "50000",
        "cpu-burst": "1000", "cpu-rt-period": "1000000", "cpu-rt-runtime": "0",
        "cpuset-cpus": "0-1", "cpuset-mems": "0", "cpu-idle": "1", "pids-limit": "64",
        "blkio-weight": "300"})
    assert res == {
        "memory": {"limit": 64 * M, "reservation": 32 * M, "swap": -1, "kernel": M,
                   "kernelTCP": 1024},
        "cpu": {"shares": 512, "quota": 20000, "period": 50000, "burst": 1000,
                "realtimePeriod": 1000000, "realtimeRuntime": 0, "cpus": "0-1", "mems": "0",
                "idle": 1},
        "pids": {"limit": 64}, "blockIO": {"weight": 300}}


def test_resources_from_flags_bad_integer():
    with pytest.raises(MinirunError, match=r"^update --cpu-shares: 'x' is not an integer$"):
        control.resources_from_flags({"cpu-shares": "x"})


def test_every_update_flag_is_parsed():
    assert set(control.UPDATE_FLAGS) <= set(cli.COMMANDS["update"])


# --- `minirun-oci update` and friends on the command line ------------------------------------


def run_cli(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_update_of_a_missing_container(tmp_path, capsys):
    rc, out, err = run_cli(capsys, "--root", str(tmp_path), "update", "--memory", "64m", "nope")
    assert rc == 1 and out == ""
    assert one_line_error(err, "minirun-oci: ") == "container nope does not exist"


def test_update_without_limits(tmp_path, capsys):
    rc, _, err = run_cli(capsys, "--root", str(tmp_path), "update", "nope")
    assert rc == 1
    assert one_line_error(err, "minirun-oci: ") == "update: give --resources FILE or limits such as --memory 64m"


def test_update_without_an_id(tmp_path, capsys):
    rc, _, err = run_cli(capsys, "--root", str(tmp_path), "update", "--memory", "1m")
    assert rc == 1 and "missing the container ID" in one_line_error(err, "minirun-oci: ")


@pytest.mark.parametrize("argv, message", [
    (["--memory", "lots"], "'lots' is not a size (use a number with k, m, g or t)"),
    (["--pids-limit", "ten"], "update --pids-limit: 'ten' is not an integer"),
    (["--memoryy", "1m"], "unknown option --memoryy (see minirun-oci --help)"),
    (["--memory"], "option --memory needs a value"),
])
def test_update_bad_flags(tmp_path, capsys, argv, message):
    cid = ["nope"] if len(argv) > 1 else []
    rc, _, err = run_cli(capsys, "--root", str(tmp_path), "update", *argv, *cid)
    assert rc == 1 and one_line_error(err, "minirun-oci: ") == message


def test_update_resources_file(tmp_path, capsys):
    bad = tmp_path / "r.json"
    bad.write_text("[1]")
    rc, _, err = run_cli(capsys, "--root", str(tmp_path), "update", "--resources", str(bad), "nope")
    assert rc == 1 and one_line_error(err, "minirun-oci: ").endswith("must be a JSON object (linux.resources)")
    rc, _, err = run_cli(capsys, "--root", str(tmp_path), "update", "-r", str(tmp_path / "none"), "x")
    assert rc == 1 and one_line_error(err, "minirun-oci: ").startswith(f"update --resources {tmp_path}/none: ")
    good = tmp_path / "g.json"
    good.write_text('{"pids": {"limit": 5}}')
    rc, _, err = run_cli(capsys, "--root", str(tmp_path), "update", "-r", str(good), "nope")
    assert one_line_error(err, "minirun-oci: ") == "container nope does not exist"


def test_update_resources_from_stdin(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("not json"))
    rc, _, err = run_cli(capsys, "--root", str(tmp_path), "update", "--resources", "-", "nope")
    assert rc == 1 and one_line_error(err, "minirun-oci: ").startswith("update --resources -: ")


def test_events_bad_interval(tmp_path, capsys):
    rc, _, err = run_cli(capsys, "--root", str(tmp_path), "events", "--interval", "-1s", "nope")
    assert rc == 1 and one_line_error(err, "minirun-oci: ") == "'-1s' is not a duration (e.g. 5s, 500ms)"


# --- the verbs on a container state (our own process stands in for the init) ------------------


def make_state(root, cid, cgroup_dirs, version, alive=True, resources=None):
    os.makedirs(os.path.join(root, cid))
    me = os.getpid()
    s = st.State(id=cid, pid=me, pid_start=kproc.start_time(me) if alive else 1,
                 bundle="/b", rootfs="/b/rootfs", created="2024-01-01T00:00:00Z",
                 cgroup_paths=cgroup_dirs, cgroup_version=version,
                 config={"linux": {"resources": resources or {}}}, root_dir=str(root))
    s.save()
    return s


def test_update_a_running_v2_container(tmp_path, v2dir, kernfs, capsys):
    root = tmp_path / "state"
    make_state(root, "c1", {"": v2dir}, 2, resources={"memory": {"limit": 32 * M}})
    rc, out, err = run_cli(capsys, "--root", str(root), "update", "--memory", "64m",
                           "--cpu-quota", "20000", "--cpu-period", "50000", "--pids-limit", "10", "c1")
    assert (rc, out, err) == (0, "", "")
    assert read(v2dir, "memory.max") == "67108864"
    assert read(v2dir, "cpu.max") == "20000 50000" and read(v2dir, "pids.max") == "10"
    saved = st.load(str(root), "c1").config["linux"]["resources"]
    assert saved == {"memory": {"limit": 64 * M}, "cpu": {"quota": 20000, "period": 50000},
                     "pids": {"limit": 10}}


def test_update_one_half_of_a_pair_keeps_the_other(tmp_path, v2dir, kernfs):
    # v2 writes quota and period to one file, and swap relative to the limit: an update of one
    # must not reset the other to a default.
    root = tmp_path / "state"
    make_state(root, "c1", {"": v2dir}, 2, resources={
        "memory": {"limit": 64 * M, "swap": 128 * M}, "cpu": {"quota": 20000, "period": 50000}})
    control.update(str(root), "c1", {"cpu": {"period": 40000}})
    assert read(v2dir, "cpu.max") == "20000 40000"
    control.update(str(root), "c1", {"cpu": {"quota": 10000}})
    assert read(v2dir, "cpu.max") == "10000 40000"
    control.update(str(root), "c1", {"memory": {"swap": 256 * M}})
    assert read(v2dir, "memory.swap.max") == str(192 * M)
    control.update(str(root), "c1", {"memory": {"limit": 128 * M}})
    assert read(v2dir, "memory.max") == str(128 * M)
    assert read(v2dir, "memory.swap.max") == str(128 * M)  # memory+swap stays 256M
    with pytest.raises(ResourceError, match="below memory.limit"):
        control.update(str(root), "c1", {"memory": {"limit": 512 * M}})
    saved = st.load(str(root), "c1").config["linux"]["resources"]
    assert saved == {"memory": {"limit": 128 * M, "swap": 256 * M},
                     "cpu": {"quota": 10000, "period": 40000}}


def test_update_a_v1_container(tmp_path, v1dirs, kernfs):
    root = tmp_path / "state"
    make_state(root, "c1", v1dirs, 1)
    control.update(str(root), "c1", control.resources_from_flags({"memory": "64m", "cpu-shares": "512"}))
    assert read(v1dirs["memory"], "memory.limit_in_bytes") == "67108864"
    assert read(v1dirs["cpu"], "cpu.shares") == "512"


def test_update_error_leaves_the_state(tmp_path, v2dir, kernfs):
    root = tmp_path / "state"
    make_state(root, "c1", {"": v2dir}, 2)
    with pytest.raises(ResourceError, match=r"^config.json: linux.resources.memory.kernel: "):
        control.update(str(root), "c1", {"memory": {"kernel": M}})
    assert st.load(str(root), "c1").config["linux"]["resources"] == {}


def test_pause_resume_a_v2_container(tmp_path, v2dir, kernfs, capsys):
    root = tmp_path / "state"
    make_state(root, "c1", {"": v2dir}, 2)
    fill(v2dir, {"cgroup.events": "populated 1\nfrozen 1\n"})
    assert run_cli(capsys, "--root", str(root), "pause", "c1") == (0, "", "")
    assert st.load(str(root), "c1").status() == "paused"
    rc, _, err = run_cli(capsys, "--root", str(root), "pause", "c1")
    assert rc == 1 and one_line_error(err, "minirun-oci: ") == "cannot pause container c1: it is paused"
    fill(v2dir, {"cgroup.events": "populated 1\nfrozen 0\n"})
    assert run_cli(capsys, "--root", str(root), "resume", "c1") == (0, "", "")
    assert st.load(str(root), "c1").status() == "running"
    rc, _, err = run_cli(capsys, "--root", str(root), "resume", "c1")
    assert rc == 1 and one_line_error(err, "minirun-oci: ") == "cannot resume container c1: it is running"


def test_pause_resume_a_v1_container(tmp_path, v1dirs, kernfs):
    root = tmp_path / "state"
    make_state(root, "c1", v1dirs, 1)
    control.pause(str(root), "c1")
    assert st.load(str(root), "c1").status() == "paused"
    control.resume(str(root), "c1")
    assert read(v1dirs["freezer"], "freezer.state") == "THAWED"


def test_events_stats_once(tmp_path, v2dir, capsys):
    root = tmp_path / "state"
    make_state(root, "c1", {"": v2dir}, 2)
    rc, out, err = run_cli(capsys, "--root", str(root), "events", "--stats", "c1")
    assert rc == 0 and err == ""
    ev = json.loads(out)
    assert ev["type"] == "stats" and ev["id"] == "c1"
    assert ev["data"]["memory"]["oomKills"] == 1 and ev["data"]["pids"]["current"] == 3


def test_verbs_on_a_stopped_container(tmp_path, v2dir, capsys):
    root = tmp_path / "state"
    make_state(root, "c1", {"": v2dir}, 2, alive=False)
    for verb, argv in (("update", ["--memory", "1m"]), ("pause", []), ("resume", [])):
        rc, _, err = run_cli(capsys, "--root", str(root), verb, *argv, "c1")
        assert rc == 1 and one_line_error(err, "minirun-oci: ") == f"cannot {verb} container c1: it is stopped"
    rc, _, err = run_cli(capsys, "--root", str(root), "events", "c1")
    assert rc == 1 and one_line_error(err, "minirun-oci: ") == "container c1 is stopped: no events to follow"


def test_verbs_on_a_container_without_cgroup(tmp_path, capsys):
    root = tmp_path / "state"
    make_state(root, "c1", {}, 0)
    rc, _, err = run_cli(capsys, "--root", str(root), "update", "--pids-limit", "5", "c1")
    assert one_line_error(err, "minirun-oci: ") == "cannot update container c1: it has no cgroup"
    rc, _, err = run_cli(capsys, "--root", str(root), "events", "--stats", "c1")
    assert one_line_error(err, "minirun-oci: ") == "container c1 has no cgroup: no events to report"
    with pytest.raises(ContainerError):
        control.pause(str(root), "c1")
