"""linux.resources on this hybrid host: the limits are written to the v1 files and hold.

Each test runs a busybox container under a limit and watches the kernel enforce it: a memory hog
is OOM-killed (and the kill is counted), a fork loop stops at pids.max, a busy loop is throttled,
device rules refuse what they deny. The v1 files are read from the host under the default cgroup
/minirun/<id> (FACTS.md section 2). A field this host cannot apply fails `create` with one line
naming it and leaves nothing behind. Pure cgroup v2 hosts skip this file: tests/cgroup_v2 runs
the v2 checks in a VM.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers import (all_dirs, create, launch, mounts, one_line_error, poll, read, status,
                     v1_hybrid_only)
from hostfeatures import blkio_weight_file, block_device, hugepage_sizes, need, v1_controller

pytestmark = v1_hybrid_only("memory", "memory.limit_in_bytes, cpu.stat")

MiB = 1 << 20


# --- helpers -----------------------------------------------------------------------------------


def flat(cid: str, ctrl: str, name: str) -> dict[str, int]:
    return {k: int(v) for k, v in (ln.split() for ln in read(cid, ctrl, name).splitlines())}


def stats(rt, cid: str) -> dict:
    r = rt("events", "--stats", cid, check=True)
    lines = r.stdout.splitlines()
    assert len(lines) == 1, r.stdout
    ev = json.loads(lines[0])
    assert ev["type"] == "stats" and ev["id"] == cid
    return ev["data"]


def resources(**res):
    """edit= for bundle(): set linux.resources sections (devices stay as the default)."""
    def edit(cfg: dict) -> None:
        cfg["linux"].setdefault("resources", {}).update(res)
    return edit


def memory(limit: int) -> dict:
    """A memory limit with swap (memory+swap) equal to it where swap accounting exists, so the
    hog cannot escape to swap."""
    m = {"limit": limit}
    if os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"):
        m["swap"] = limit
    return m


HOG = "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived ${#x}"


# --- memory ------------------------------------------------------------------------------------


@pytest.mark.parametrize("runtime", ["oci", "runc"])
def test_memory_hog_is_oom_killed(request, bundle, cid, runtime):
    """run returns 137 (128 + SIGKILL) when the kernel's OOM killer ends the container."""
    rt = request.getfixturevalue(runtime)
    b = bundle(args=["sh", "-c", HOG], edit=resources(memory=memory(32 * MiB)))
    r = rt("run", "--bundle", b, cid)
    assert r.returncode == 137, (r.returncode, r.stdout, r.stderr)
    assert "survived" not in r.stdout


def test_oom_kill_is_counted_until_delete(oci, bundle, cid, tmp_path):
    b = bundle(args=["sh", "-c", HOG], edit=resources(memory=memory(32 * MiB)))
    r = create(oci, tmp_path, b, cid)
    assert read(cid, "memory", "memory.limit_in_bytes") == str(32 * MiB)
    if "swap" in memory(1):
        assert read(cid, "memory", "memory.memsw.limit_in_bytes") == str(32 * MiB)
    oci("start", cid, check=True)
    assert poll(lambda: status(oci, cid) == "stopped"), oci.state(cid)
    assert "survived" not in r.stdout
    # The container is stopped but not deleted: its cgroup still holds the counters.
    assert flat(cid, "memory", "memory.oom_control")["oom_kill"] >= 1
    data = stats(oci, cid)
    assert data["memory"]["oomKills"] >= 1, data["memory"]
    assert data["memory"]["usage"]["limit"] == 32 * MiB
    oci("delete", cid, check=True)
    assert not any(d.exists() for d in all_dirs(cid))


def test_a_32m_limit_is_usable(oci, bundle, cid, tmp_path):
    """The runtime's own (Python) memory must not be charged to the container: its init joins
    the cgroup just before exec, so 8 MiB held in a shell variable plus 16 MiB streamed through
    a pipe fit under 32 MiB."""
    script = ("x=$(head -c 8388608 /dev/zero | tr '\\0' a); echo ${#x}; "
              "head -c 16777216 /dev/zero | tr '\\0' a | wc -c")
    b = bundle(args=["sh", "-c", script], edit=resources(memory=memory(32 * MiB)))
    r = create(oci, tmp_path, b, cid)
    charged = int(read(cid, "memory", "memory.max_usage_in_bytes"))
    assert charged < 4 * MiB, f"{charged} bytes charged to a created container (the runtime's?)"
    oci("start", cid, check=True)
    assert poll(lambda: status(oci, cid) == "stopped")
    assert r.stdout.split() == ["8388608", "16777216"], (r.stdout, r.stderr)
    assert flat(cid, "memory", "memory.oom_control")["oom_kill"] == 0
    oci("delete", cid, check=True)

    r = oci("run", "--bundle", b, cid)  # and the same through run's exit code
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert r.stdout.split() == ["8388608", "16777216"]


# --- pids --------------------------------------------------------------------------------------


def test_fork_loop_stops_at_pids_max(oci, bundle, cid, tmp_path):
    # A child shell starts 40 background sleeps; busybox sh dies at the first failed fork
    # ("can't fork"). The init then reports without forking (read and echo are builtins) and
    # execs a sleep, so the host can look while the sleeps still hold their PIDs.
    script = ("sh -c 'i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); echo spawned $i; done'; "
              "echo spawner-exit=$?; read n < /sys/fs/cgroup/pids/pids.current; echo current=$n; "
              "exec sleep 100")
    b = bundle(args=["sh", "-c", script], edit=resources(pids={"limit": 20}))
    r = create(oci, tmp_path, b, cid)
    assert read(cid, "pids", "pids.max") == "20"
    oci("start", cid, check=True)
    seen = []

    def reported() -> bool:
        seen.append(int(read(cid, "pids", "pids.current")))
        return "current=" in r.stdout

    assert poll(reported), (r.stdout, r.stderr)
    out = r.stdout.split()
    spawned = [ln for ln in r.stdout.splitlines() if ln.startswith("spawned ")]
    # 20 = the init + the spawner shell + 18 sleeps.
    assert len(spawned) == 18, r.stdout
    assert "spawner-exit=0" not in out, "the 19th fork did not fail"
    assert "can't fork" in r.stderr, r.stderr
    assert max(seen) <= 20, seen
    current = int(r.stdout.split("current=")[1].split()[0])
    assert 1 <= current <= 20
    assert flat(cid, "pids", "pids.events")["max"] >= 1
    data = stats(oci, cid)
    assert data["pids"]["limit"] == 20
    assert 1 <= data["pids"]["current"] <= 20
    oci("delete", "--force", cid, check=True)
    assert not any(d.exists() for d in all_dirs(cid))


# --- cpu, cpuset, blkio --------------------------------------------------------------------------


def test_busy_loop_is_throttled_by_the_quota(oci, bundle, cid, tmp_path):
    b = bundle(args=["sh", "-c", "while :; do :; done"],
               edit=resources(cpu={"quota": 10000, "period": 100000}))
    create(oci, tmp_path, b, cid)
    assert read(cid, "cpu", "cpu.cfs_quota_us") == "10000"
    assert read(cid, "cpu", "cpu.cfs_period_us") == "100000"
    assert flat(cid, "cpu", "cpu.stat")["nr_throttled"] == 0
    oci("start", cid, check=True)
    # 10 ms of CPU per 100 ms: the loop uses up its quota in every period.
    assert poll(lambda: flat(cid, "cpu", "cpu.stat")["nr_throttled"] >= 2, timeout=5), \
        read(cid, "cpu", "cpu.stat")
    throttling = stats(oci, cid)["cpu"]["throttling"]
    assert throttling["throttledPeriods"] > 0 and throttling["throttledTime"] > 0, throttling
    # Over the periods so far the loop got at most ~10% of one CPU.
    used_ns = int(read(cid, "cpuacct", "cpuacct.usage"))
    periods = flat(cid, "cpu", "cpu.stat")["nr_periods"]
    assert used_ns <= (periods + 1) * 10_000_000 * 1.5, (used_ns, periods)
    oci("delete", "--force", cid, check=True)


def runc_files(runc, cid: str, files: list[tuple[str, str]]) -> dict[str, str]:
    """The same files as runc wrote them for its container `cid`."""
    theirs = {}
    mem = mounts()
    rpid = runc.state(cid)["pid"]
    for line in Path(f"/proc/{rpid}/cgroup").read_text().splitlines():
        _, key, path = line.split(":", 2)
        for ctrl, name in files:
            if ctrl in key.split(","):
                theirs[name] = (Path(mem[key] + path) / name).read_text().strip()
    return theirs


def test_shares_cpuset_and_blkio_throttle_files(oci, runc, bundle, cid, tmp_path):
    """The v1 files hold what the config asks for, as runc writes them."""
    disk = block_device()
    need(disk, "no block device in /sys/block to throttle")
    _, major, minor = disk
    b = bundle(args=["sleep", "100"], edit=resources(
        cpu={"shares": 512, "cpus": "0", "mems": "0"},
        blockIO={"throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
                 "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 100}]}))
    files = [("cpu", "cpu.shares"), ("cpuset", "cpuset.cpus"), ("cpuset", "cpuset.mems"),
             ("blkio", "blkio.throttle.read_bps_device"),
             ("blkio", "blkio.throttle.write_iops_device")]
    create(oci, tmp_path, b, cid)
    ours = {name: read(cid, ctrl, name) for ctrl, name in files}
    assert ours == {"cpu.shares": "512", "cpuset.cpus": "0", "cpuset.mems": "0",
                    "blkio.throttle.read_bps_device": f"{major}:{minor} 1048576",
                    "blkio.throttle.write_iops_device": f"{major}:{minor} 100"}
    # The init is in those cgroups, and the cpuset holds.
    pid = oci.state(cid)["pid"]
    assert str(pid) in read(cid, "cpuset", "cgroup.procs").split()
    oci("start", cid, check=True)
    assert "Cpus_allowed_list:\t0\n" in Path(f"/proc/{pid}/status").read_text()

    create(runc, tmp_path, b, cid + "-runc")
    theirs = runc_files(runc, cid + "-runc", files)
    runc("delete", "--force", cid + "-runc", check=True)
    assert ours == theirs
    oci("delete", "--force", cid, check=True)


def test_blkio_weight_where_the_scheduler_has_one(oci, runc, bundle, cid, tmp_path):
    """blockIO.weight goes to CFQ's blkio.weight or BFQ's blkio.bfq.weight, as runc does it;
    a host whose I/O schedulers have no weights (none, mq-deadline) gets a clear refusal."""
    b = bundle(args=["sleep", "100"], edit=resources(blockIO={"weight": 500}))
    wfile = blkio_weight_file()
    if wfile is None:
        r = launch(oci, tmp_path, "create", "--bundle", b, cid)
        assert r.returncode != 0
        msg = one_line_error(r.stderr)
        assert "blockIO.weight" in msg and "BFQ" in msg, msg
        assert not os.path.exists(f"/sys/fs/cgroup/blkio/minirun/{cid}")
        return
    create(oci, tmp_path, b, cid)
    assert read(cid, "blkio", wfile) == "500"
    create(runc, tmp_path, b, cid + "-runc")
    assert runc_files(runc, cid + "-runc", [("blkio", wfile)]) == {wfile: "500"}
    runc("delete", "--force", cid + "-runc", check=True)
    oci("delete", "--force", cid, check=True)


UNSUPPORTED = {
    # name: (linux.resources, the field the one-line error must name)
    "unified": ({"unified": {"memory.max": "33554432"}}, "unified"),
    "blockIO.leafWeight": ({"blockIO": {"leafWeight": 300}}, "blockIO.leafWeight"),
    "memory.swappiness": ({"memory": {"swappiness": 101}}, "memory.swappiness"),
    "pids.limit-not-int": ({"pids": {"limit": "many"}}, "pids.limit"),
    "cpu.burst-too-big": ({"cpu": {"quota": 10000, "period": 100000, "burst": 10**9}}, "cpu.burst"),
}


@pytest.mark.parametrize("case", UNSUPPORTED, ids=list(UNSUPPORTED))
def test_unsupported_or_invalid_field_fails_create_and_leaves_nothing(oci, bundle, cid, tmp_path,
                                                                       case):
    res, field = UNSUPPORTED[case]
    b = bundle(args=["true"], edit=resources(**res))
    r = launch(oci, tmp_path, "create", "--bundle", b, cid)
    assert r.returncode != 0
    msg = one_line_error(r.stderr)
    assert f"linux.resources.{field}:" in msg, msg
    assert not (oci.root / cid).exists()
    assert oci("state", cid).returncode == 1
    left = [d for d in all_dirs(cid) if d.exists()]
    assert left == [], left
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and int(p.name) != os.getpid():
            try:
                assert cid not in (p / "cmdline").read_text(), p
            except OSError:
                pass


# Fields whose controller some hosts of this kind mount and others do not: applied where the
# hierarchy is there, refused with one line naming the field where it is not.
HOST_DEPENDENT = {
    # name: (linux.resources, field, v1 controller, file, value written)
    "hugepageLimits": ({"hugepageLimits": [{"pageSize": "2MB", "limit": 2 * MiB}]},
                       "hugepageLimits[0]", "hugetlb", "hugetlb.2MB.limit_in_bytes", str(2 * MiB)),
    "network.classID": ({"network": {"classID": 0x100001}}, "network.classID", "net_cls",
                        "net_cls.classid", str(0x100001)),
    "network.priorities": ({"network": {"priorities": [{"name": "lo", "priority": 1}]}},
                           "network.priorities[0]", "net_prio", "net_prio.ifpriomap", None),
}


@pytest.mark.parametrize("case", HOST_DEPENDENT, ids=list(HOST_DEPENDENT))
def test_host_dependent_field_is_applied_or_refused(oci, bundle, cid, tmp_path, case):
    res, field, ctrl, name, value = HOST_DEPENDENT[case]
    if ctrl == "hugetlb" and "2MB" not in hugepage_sizes():
        pytest.skip("this host lacks it: no 2 MB huge pages (/sys/kernel/mm/hugepages)")
    b = bundle(args=["sleep", "100"], edit=resources(**res))
    if not v1_controller(ctrl):
        r = launch(oci, tmp_path, "create", "--bundle", b, cid)
        assert r.returncode != 0
        msg = one_line_error(r.stderr)
        assert f"linux.resources.{field}:" in msg, msg
        assert not (oci.root / cid).exists()
        return
    create(oci, tmp_path, b, cid)
    got = read(cid, ctrl, name)
    assert (got == value) if value is not None else ("lo 1" in got.splitlines()), got
    oci("delete", "--force", cid, check=True)


# --- devices -----------------------------------------------------------------------------------


DEFAULT_LIST = {"c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 1:8 rwm", "c 1:9 rwm",
                "c 5:2 rwm", "c 136:* rwm"}


def test_default_device_rules_keep_the_standard_nodes(oci, bundle, cid, tmp_path):
    script = ("echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | wc -c; "
              "head -c 4 /dev/urandom | wc -c; "
              "mknod /dev/sda-test b 8 0 2>&1 || echo mknod-refused")

    def edit(cfg: dict) -> None:
        for s in ("bounding", "effective", "permitted"):  # only the cgroup may refuse mknod
            cfg["process"]["capabilities"][s].append("CAP_MKNOD")

    b = bundle(args=["sh", "-c", script], edit=edit)
    r = create(oci, tmp_path, b, cid)
    listed = set(read(cid, "devices", "devices.list").splitlines())
    assert listed == DEFAULT_LIST, listed  # deny all, then only the defaults: no "a *:* rwm"
    oci("start", cid, check=True)
    assert poll(lambda: "mknod-refused" in r.stdout), (r.stdout, r.stderr)
    assert r.stdout.split()[:3] == ["null-ok", "4", "4"], r.stdout
    assert "Operation not permitted" in r.stdout


def test_deny_rule_for_dev_zero(oci, bundle, cid, tmp_path):
    """An explicit rule for one device wins over the default allow list (the rules apply in
    order; the defaults only fill in for devices the config does not name)."""
    def edit(cfg: dict) -> None:
        cfg["linux"]["resources"]["devices"].append(
            {"allow": False, "type": "c", "major": 1, "minor": 5, "access": "rwm"})

    script = "head -c 4 /dev/zero; echo zero-rc=$?; echo x > /dev/null && echo null-ok"
    b = bundle(args=["sh", "-c", script], edit=edit)
    r = create(oci, tmp_path, b, cid)
    assert set(read(cid, "devices", "devices.list").splitlines()) == DEFAULT_LIST - {"c 1:5 rwm"}
    oci("start", cid, check=True)
    assert poll(lambda: "null-ok" in r.stdout or status(oci, cid) == "stopped")
    assert poll(lambda: status(oci, cid) == "stopped")
    assert "zero-rc=1" in r.stdout and "null-ok" in r.stdout, (r.stdout, r.stderr)
    assert "/dev/zero" in r.stderr and "Operation not permitted" in r.stderr, r.stderr


def test_read_only_rule_for_a_default_device(oci, bundle, cid):
    def edit(cfg: dict) -> None:
        cfg["linux"]["resources"]["devices"].append(
            {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "r"})  # /dev/zero

    script = ("head -c 2 /dev/zero | wc -c; echo x > /dev/zero && echo write-ok; "
              "cat /sys/fs/cgroup/devices/devices.list")
    r = oci("run", "--bundle", bundle(args=["sh", "-c", script], edit=edit), cid)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "2" and "write-ok" not in lines, r.stdout
    assert "/dev/zero" in r.stderr and "Operation not permitted" in r.stderr, r.stderr
    assert "c 1:5 r" in lines and "c 1:5 rwm" not in lines, lines
