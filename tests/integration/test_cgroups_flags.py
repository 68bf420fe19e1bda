"""run's resource flags and `update`, seen from inside the container and in the host's v1 files.

--device (the node and its device-cgroup rule, after Docker's "deny all"), --oom-score-adj,
--cpu-quota/--cpu-period/--cpuset-mems, --memory-reservation, --oom-kill-disable, the blkio
throttles and weight, --cgroup-parent and --cgroupns; `update` of a running, a paused and a
stopped container. Each test runs the offline busybox image on the `mr` fixture's private
--root (which removes the containers); the cgroup v2 variants are in tests/cgroup_v2.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest

from helpers import mounts, one_line_error, v1_hybrid_only
from hostfeatures import blkio_weight_file, block_device, need

pytestmark = v1_hybrid_only("memory", "memory.limit_in_bytes, devices.list, cpu.cfs_quota_us")

MB = 1 << 20


def cgdir(cid: str, ctrl: str, parent: str = "/minirun") -> Path:
    for key, mnt in mounts().items():
        if ctrl in key.split(","):
            return Path(mnt) / parent.lstrip("/") / cid
    raise AssertionError(f"no {ctrl} hierarchy mounted")


def hostfile(cid: str, ctrl: str, name: str) -> str:
    return (cgdir(cid, ctrl) / name).read_text().strip()


def cid_of(mr, name: str) -> str:
    return mr.record(name)["Id"]


# --- devices -------------------------------------------------------------------------------------


def test_device_node_has_the_hosts_numbers_and_its_rule_lets_it_be_read(mr):
    out = mr.ok("run", "--name", "dev", "--device", "/dev/null:/dev/mynull",
                "--device", "/dev/zero:/dev/myzero:r", "busybox", "sh", "-c",
                "stat -c '%F %t:%T' /dev/mynull /dev/myzero; echo hi > /dev/mynull && echo w-ok;"
                " head -c 2 /dev/myzero | wc -c; echo x > /dev/myzero || echo w-denied")
    assert out.split("\n")[:5] == ["character special file 1:3", "character special file 1:5",
                                   "w-ok", "2", "w-denied"]
    hc = mr.record("dev")["HostConfig"]
    assert hc["Devices"] == [
        {"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull", "CgroupPermissions": "rwm"},
        {"PathOnHost": "/dev/zero", "PathInContainer": "/dev/myzero", "CgroupPermissions": "r"}]


def test_devices_list_on_the_host_starts_from_deny_all(mr):
    cid = mr.ok("run", "-d", "--device", "/dev/zero:/dev/myzero:r", "busybox",
                "sleep", "30").strip()
    rules = hostfile(cid, "devices", "devices.list").splitlines()
    assert "a *:* rwm" not in rules  # a v1 child starts with its parent's "allow all"
    assert {"c *:* m", "b *:* m", "c 1:5 r", "c 1:3 rwm"} <= set(rules)


def test_a_device_without_a_rule_cannot_be_opened(mr):
    dev = block_device()
    need(dev, "no block device in /sys/block to make a node of")
    _, major, minor = dev
    r = mr("run", "--rm", "busybox", "sh", "-c",
           f"mknod /dev/disk b {major} {minor} && head -c 512 /dev/disk | wc -c")
    assert "Operation not permitted" in r.stderr, (r.stdout, r.stderr)


def test_a_missing_device_fails_create_and_leaves_nothing(mr):
    r = mr("run", "--name", "nodev", "--device", "/dev/nonexistent", "busybox", "true")
    assert r.returncode == 125
    assert one_line_error(r.stderr) == ("minirun: error gathering device information while "
                                        "adding custom device \"/dev/nonexistent\": no such "
                                        "file or directory")
    assert mr.ok("ps", "-aq") == ""


# --- process and cpu/memory files ---------------------------------------------------------------


def test_oom_score_adj_is_the_containers_init(mr):
    out = mr.ok("run", "--name", "adj", "--oom-score-adj", "500", "busybox",
                "cat", "/proc/1/oom_score_adj")
    assert out.strip() == "500"
    assert mr.record("adj")["HostConfig"]["OomScoreAdj"] == 500


def test_cpu_quota_period_mems_and_reservation_reach_the_files(mr):
    cid = mr.ok("run", "-d", "--name", "cpu", "--cpu-quota", "20000", "--cpu-period", "50000",
                "--cpuset-mems", "0", "-m", "64m", "--memory-reservation", "32m",
                "--oom-kill-disable", "busybox", "sleep", "30").strip()
    assert hostfile(cid, "cpu", "cpu.cfs_quota_us") == "20000"
    assert hostfile(cid, "cpu", "cpu.cfs_period_us") == "50000"
    assert hostfile(cid, "cpuset", "cpuset.mems") == "0"
    assert hostfile(cid, "memory", "memory.soft_limit_in_bytes") == str(32 * MB)
    assert "oom_kill_disable 1" in hostfile(cid, "memory", "memory.oom_control")
    inside = mr.ok("exec", "cpu", "cat", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
                   "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes").split()
    assert inside == ["20000", str(32 * MB)]
    hc = mr.record("cpu")["HostConfig"]
    assert (hc["CpuQuota"], hc["CpuPeriod"], hc["CpusetMems"], hc["MemoryReservation"],
            hc["OomKillDisable"], hc["CgroupnsMode"], hc["CgroupParent"]) == \
        (20000, 50000, "0", 32 * MB, True, "host", "")


def test_blkio_throttles_and_weight(mr):
    dev = block_device()
    need(dev, "no block device in /sys/block to throttle")
    name, major, minor = dev
    args = ["--device-read-bps", f"/dev/{name}:1mb", "--device-write-iops", f"/dev/{name}:100",
            "--blkio-weight", "300"]
    r = mr("run", "-d", *args, "busybox", "sleep", "30")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert hostfile(cid, "blkio", "blkio.throttle.read_bps_device") == f"{major}:{minor} {MB}"
    assert hostfile(cid, "blkio", "blkio.throttle.write_iops_device") == f"{major}:{minor} 100"
    weight = blkio_weight_file()
    if weight:  # CFQ or BFQ: the weight is written
        assert hostfile(cid, "blkio", weight).split()[-1] == "300"
    else:  # none/mq-deadline: Docker's warning, and the weight is dropped
        assert r.stderr.strip() == ("WARNING: Your kernel does not support Block I/O weight or "
                                    "the cgroup is not mounted. Weight discarded.")
        assert mr.record(cid)["HostConfig"]["BlkioWeight"] == 0


# --- checks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("flags, message", [
    (["--cpus", "-1"], "Range of CPUs is from 0.01 to"),
    (["-m", "64m", "--memory-swap", "32m"],
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    (["--cpu-period", "10"], "CPU cfs period can not be less than 1ms"),
    (["--cpuset-cpus", "0-999"], "Requested CPUs are not available - requested 0-999"),
])
def test_a_bad_value_is_one_line_125_and_leaves_no_container(mr, flags, message):
    r = mr("run", "--name", "bad", *flags, "busybox", "true")
    assert r.returncode == 125
    assert message in one_line_error(r.stderr)
    assert mr.ok("ps", "-aq") == ""


# --- cgroup parent and namespace ----------------------------------------------------------------


def test_cgroup_parent_places_the_cgroup_and_rm_removes_what_it_made(mr):
    parent = f"/mr-test-{uuid.uuid4().hex[:8]}/sub"
    cid = mr.ok("run", "-d", "--cgroup-parent", parent, "busybox", "sleep", "30").strip()
    try:
        inside = mr.ok("exec", cid, "cat", "/proc/self/cgroup")
        assert f":memory:{parent}/{cid}" in inside
        assert (cgdir(cid, "memory", parent) / "cgroup.procs").read_text().strip()
        assert mr.record(cid)["HostConfig"]["CgroupParent"] == parent
    finally:
        mr.ok("rm", "-f", cid)
    top = parent.split("/")[1]
    left = [str(Path(mnt) / top) for mnt in mounts().values() if (Path(mnt) / top).exists()]
    assert not left, f"cgroups left behind: {left}"


def test_cgroupns_private_shows_the_container_its_root(mr):
    out = mr.ok("run", "--rm", "--cgroupns", "private", "busybox", "cat", "/proc/self/cgroup")
    assert all(line.endswith(":/") for line in out.splitlines()), out
    out = mr.ok("run", "--rm", "busybox", "cat", "/proc/self/cgroup")  # v1 default: host
    assert "/minirun/" in out


def test_systemd_slice_parent_is_refused_in_one_line(mr):
    r = mr("run", "--cgroup-parent", "my.slice", "busybox", "true")
    assert r.returncode == 125
    assert "systemd slices are not supported" in one_line_error(r.stderr)


# --- update -------------------------------------------------------------------------------------


def test_update_changes_a_running_containers_files(mr):
    cid = mr.ok("run", "-d", "--name", "up", "-m", "64m", "busybox", "sleep", "60").strip()
    out = mr.ok("update", "-m", "128m", "--cpu-quota", "30000", "--cpu-period", "60000",
                "--memory-reservation", "40m", "--pids-limit", "50", "up")
    assert out == "up\n"
    assert hostfile(cid, "memory", "memory.limit_in_bytes") == str(128 * MB)
    assert hostfile(cid, "memory", "memory.soft_limit_in_bytes") == str(40 * MB)
    assert hostfile(cid, "cpu", "cpu.cfs_quota_us") == "30000"
    assert hostfile(cid, "cpu", "cpu.cfs_period_us") == "60000"
    assert hostfile(cid, "pids", "pids.max") == "50"
    assert mr.ok("exec", "up", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes").strip() \
        == str(128 * MB)
    hc = mr.record("up")["HostConfig"]
    assert (hc["Memory"], hc["CpuQuota"], hc["CpuPeriod"], hc["PidsLimit"]) == \
        (128 * MB, 30000, 60000, 50)
    # Docker's event for it (the journal `events` and the API's /events read)
    ev = mr.ok("events", "--since", "0", "--until", f"{time.time() + 0.5:.3f}", "--filter",
               "event=update", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
    assert ev.splitlines() == ["update up"]


def test_update_of_a_paused_container_works(mr):
    cid = mr.ok("run", "-d", "--name", "paused", "busybox", "sleep", "60").strip()
    mr.ok("pause", "paused")
    assert mr.ok("update", "--cpus", "0.5", "paused") == "paused\n"
    assert hostfile(cid, "cpu", "cpu.cfs_quota_us") == "50000"
    mr.ok("unpause", "paused")


def test_update_of_a_stopped_container_applies_at_its_next_start(mr):
    cid = mr.ok("create", "--name", "later", "-m", "64m", "busybox", "sleep", "60").strip()
    assert mr.ok("update", "-m", "96m", "--cpuset-cpus", "0", "--restart", "always",
                 "later") == "later\n"
    mr.ok("start", "later")
    assert hostfile(cid, "memory", "memory.limit_in_bytes") == str(96 * MB)
    assert hostfile(cid, "cpuset", "cpuset.cpus") == "0"
    assert mr.record("later")["HostConfig"]["RestartPolicy"]["Name"] == "always"


def test_update_errors_are_dockers_and_change_nothing(mr):
    cid = mr.ok("run", "-d", "--name", "busy", "-m", "64m", "--memory-swap", "64m", "busybox",
                "sh", "-c", "head -c 30000000 /dev/zero > /dev/shm/f; touch /tmp/ready; "
                "sleep 60").strip()
    mr.ok("exec", "busy", "sh", "-c", "while [ ! -e /tmp/ready ]; do sleep 0.1; done")
    r = mr("update", "-m", "8m", "--memory-swap", "8m", "busy")
    assert r.returncode == 1
    assert one_line_error(r.stderr).startswith(f"minirun: Cannot update container {cid}: "
                                               "unable to set memory limit to 8388608 "
                                               "(current usage: ")
    assert hostfile(cid, "memory", "memory.limit_in_bytes") == str(64 * MB)
    assert mr.record("busy")["HostConfig"]["Memory"] == 64 * MB
    r = mr("update", "--cpu-period", "10", "busy", "nosuch")
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"minirun: Cannot update container {cid}: CPU cfs period can not be less than 1ms "
        "(i.e. 1000) or larger than 1s (i.e. 1000000)",
        "minirun: No such container: nosuch"]
    r = mr("update", "busy")
    assert (r.returncode, r.stderr.strip()) == (125, "minirun: you must provide one or more "
                                                     "flags when using this command")


def test_api_update_and_create_take_the_fields(mr):
    """The engine API the service calls (POST /containers/{id}/update): {"Warnings": []}."""
    cid = mr.ok("run", "-d", "--name", "api", "-m", "64m", "busybox", "sleep", "60").strip()
    import subprocess
    import sys

    code = ("import json, sys; from minirun.engine.lifecycle import Engine; "
            "from minirun.engine.api import containers as c; "
            "eng = Engine(sys.argv[1], sys.argv[2], None); "
            "print(json.dumps(c.update(eng, 'api', {'Memory': 100 << 20, 'CpuShares': 0, "
            "'KernelMemory': 0, 'CpusetMems': '0'})))")
    r = subprocess.run([sys.executable, "-c", code, str(mr.root), str(mr.runroot)],
                       capture_output=True, text=True, env=mr.env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"Warnings": []}
    assert hostfile(cid, "memory", "memory.limit_in_bytes") == str(100 * MB)
    assert hostfile(cid, "cpuset", "cpuset.mems") == "0"
