"""The cgroup v2 driver on a pure cgroup2 host (run in a VM by scripts/test-cgroup-v2).

What is checked, each against the kernel's own files: the container's cgroup and the controllers
enabled down its path; memory.max (an OOM kill, counted in memory.events and `events --stats`,
and an allocation that fits); pids.max; cpu.max throttling and cpu.weight; the freezer; `update`;
the eBPF device filter; the no-internal-processes rule for a relative cgroupsPath; delete via
cgroup.kill; the container's view through its cgroup namespace.

Each container start costs ~1-2 s under TCG: tests share containers' work where they can.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

CGROOT = Path("/sys/fs/cgroup")
MiB = 1 << 20


def cgdir(cid: str) -> Path:
    return CGROOT / "minirun" / cid


def read(p: Path) -> str:
    return p.read_text().strip()


def keyed(p: Path) -> dict[str, int]:
    """A flat-keyed cgroup file (cpu.stat, memory.events ...) as a dict."""
    return {k: int(v) for k, v in (ln.split() for ln in p.read_text().splitlines())}


def own_cgroup(pid: int | str) -> str:
    return Path(f"/proc/{pid}/cgroup").read_text().strip()


def start_detached(oci, tmp_path: Path, b: str, cid: str) -> int:
    """run --detach with the container's stdio on a file (a pipe would keep subprocess waiting);
    returns the init's PID."""
    oci.ids.add(cid)
    out = tmp_path / f"{cid}.out"
    with open(out, "w") as o:
        r = subprocess.run(oci.argv("run", "--detach", "--bundle", b, cid), stdin=subprocess.DEVNULL,
                           stdout=o, stderr=subprocess.STDOUT, timeout=60)
    assert r.returncode == 0, out.read_text()
    return oci.state(cid)["pid"]


def wait_for(cond, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# --- placement, controllers, cpu ----------------------------------------------------------------


def test_cgroup_path_and_controllers_enabled_down_the_path(oci, bundle, cid, tmp_path):
    b = bundle(["sleep", "600"], {"memory": {"limit": 32 * MiB},
                                  "cpu": {"shares": 1024}, "pids": {"limit": 20}})
    pid = start_detached(oci, tmp_path, b, cid)
    assert own_cgroup(pid) == f"0::/minirun/{cid}"
    assert (cgdir(cid) / "cgroup.procs").read_text().split() == [str(pid)]
    for parent in (CGROOT, CGROOT / "minirun"):
        on = read(parent / "cgroup.subtree_control").split()
        assert {"memory", "pids", "cpu", "io", "cpuset"} <= set(on), (parent, on)
    d = cgdir(cid)
    assert read(d / "memory.max") == str(32 * MiB)
    assert read(d / "pids.max") == "20"
    # runc's linear map of cpu.shares [2, 262144] onto cpu.weight [1, 10000]: 1024 -> 39
    assert read(d / "cpu.weight") == "39"
    assert read(d / "cpu.max") == "max 100000"  # no quota asked for


def test_cpu_max_throttles_a_busy_loop(oci, bundle, cid, tmp_path):
    b = bundle(["sh", "-c", "while :; do :; done"], {"cpu": {"quota": 10000, "period": 100000}})
    start_detached(oci, tmp_path, b, cid)
    d = cgdir(cid)
    assert read(d / "cpu.max") == "10000 100000"
    wait_for(lambda: keyed(d / "cpu.stat")["nr_throttled"] > 0, what="a throttled period")
    first = keyed(d / "cpu.stat")
    wait_for(lambda: keyed(d / "cpu.stat")["nr_periods"] >= first["nr_periods"] + 10,
             timeout=30, what="ten more periods")
    second = keyed(d / "cpu.stat")
    assert second["nr_throttled"] > first["nr_throttled"], (first, second)
    # 10 ms per 100 ms period: over those periods it may not use much more than its quota
    used = second["usage_usec"] - first["usage_usec"]
    periods = second["nr_periods"] - first["nr_periods"]
    assert used <= (periods + 1) * 10_000 * 1.5, (first, second)


# --- memory ----------------------------------------------------------------------------------


def test_memory_hog_is_oom_killed_and_counted(oci, bundle, cid):
    # dd's 64 MiB buffer, filled from /dev/zero, cannot fit in 32 MiB (no swap: swap = limit)
    b = bundle(["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
               {"memory": {"limit": 32 * MiB, "swap": 32 * MiB}})
    r = oci("run", "--keep", "--bundle", b, cid, timeout=120)
    assert r.returncode == 137, (r.stdout, r.stderr)  # 128 + SIGKILL from the OOM killer
    d = cgdir(cid)
    assert read(d / "memory.max") == str(32 * MiB)
    assert read(d / "memory.swap.max") == "0"
    assert keyed(d / "memory.events")["oom_kill"] >= 1
    ev = json.loads(oci("events", "--stats", cid, check=True).stdout)
    assert ev["type"] == "stats" and ev["id"] == cid
    assert ev["data"]["memory"]["oomKills"] >= 1
    assert ev["data"]["memory"]["usage"]["limit"] == 32 * MiB
    oci("delete", cid, check=True)
    assert not d.exists()


def test_allocation_under_the_limit_succeeds(oci, bundle, cid):
    b = bundle(["dd", "if=/dev/zero", "of=/dev/null", "bs=16M", "count=1"],
               {"memory": {"limit": 32 * MiB}})
    r = oci("run", "--keep", "--bundle", b, cid, timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert keyed(cgdir(cid) / "memory.events")["oom_kill"] == 0
    oci("delete", cid, check=True)


# --- pids ------------------------------------------------------------------------------------


def test_pids_max_holds_a_fork_loop(oci, bundle, cid):
    # A subshell forks sleepers until fork() fails (ash then gives up on the subshell); the
    # outer shell reads the counters with builtins only: every fork is refused by now.
    script = ("( i=0; while [ $i -lt 60 ]; do sleep 60 & i=$((i+1)); done ) 2>/dev/null; "
              "read cur < /sys/fs/cgroup/pids.current; read max < /sys/fs/cgroup/pids.max; "
              "echo current=$cur max=$max")
    b = bundle(["sh", "-c", script], {"pids": {"limit": 20}})
    r = oci("run", "--keep", "--bundle", b, cid, timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr)
    fields = dict(kv.split("=") for kv in r.stdout.split())
    assert fields["max"] == "20"
    assert 10 <= int(fields["current"]) <= 20, r.stdout
    d = cgdir(cid)
    assert keyed(d / "pids.events")["max"] >= 1  # fork() refused at least once
    if (d / "pids.peak").exists():
        assert int(read(d / "pids.peak")) <= 20
    oci("delete", cid, check=True)


# --- freezer, update -------------------------------------------------------------------------


def test_pause_and_resume_use_cgroup_freeze(oci, bundle, cid, tmp_path):
    b = bundle(["sleep", "600"])
    pid = start_detached(oci, tmp_path, b, cid)
    d = cgdir(cid)
    oci("pause", cid, check=True)
    assert oci.state(cid)["status"] == "paused"
    assert read(d / "cgroup.freeze") == "1"
    assert keyed(d / "cgroup.events")["frozen"] == 1
    assert Path(f"/proc/{pid}/stat").exists()
    oci("resume", cid, check=True)
    assert oci.state(cid)["status"] == "running"
    assert read(d / "cgroup.freeze") == "0"
    assert keyed(d / "cgroup.events")["frozen"] == 0


def test_update_changes_live_limits(oci, bundle, cid, tmp_path):
    b = bundle(["sleep", "600"], {"memory": {"limit": 32 * MiB}, "pids": {"limit": 20}})
    start_detached(oci, tmp_path, b, cid)
    d = cgdir(cid)
    oci("update", "--memory", "64m", "--pids-limit", "50", cid, check=True)
    assert read(d / "memory.max") == str(64 * MiB)
    assert read(d / "pids.max") == "50"
    ev = json.loads(oci("events", "--stats", cid, check=True).stdout)
    assert ev["data"]["memory"]["usage"]["limit"] == 64 * MiB
    assert ev["data"]["pids"]["limit"] == 50


# --- devices (eBPF) --------------------------------------------------------------------------


def test_device_rules_are_enforced_by_the_ebpf_filter(oci, bundle, cid):
    """After the default "deny all": write-only access to c 1:11 (/dev/kmsg, a node outside the
    standard set) and a deny of c 1:5. A rule naming a standard node replaces its default allow,
    so /dev/zero becomes unusable while /dev/null keeps the default "rwm" (mknod included)."""
    script = "; ".join([
        "echo x > /dev/null && echo null:ok || echo null:denied",
        "echo minirun-devices-test > /dev/kmsg && echo kmsg-write:ok || echo kmsg-write:denied",
        "mknod /dev/kmsg2 c 1 11 2>/dev/null && echo kmsg-mknod:ok || echo kmsg-mknod:denied",
        "mknod /dev/null2 c 1 3 && echo null-mknod:ok || echo null-mknod:denied",
        "mknod /dev/blk b 8 0 2>/dev/null && echo blk-mknod:ok || echo blk-mknod:denied",
        "head -c 4 /dev/zero >/dev/null 2>&1 && echo zero:ok || echo zero:denied",
    ])

    def edit(cfg: dict) -> None:
        cfg["linux"]["devices"] = [{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11,
                                    "fileMode": 0o666, "uid": 0, "gid": 0}]
        for s in ("bounding", "effective", "permitted"):  # mknod needs it; the filter decides
            cfg["process"]["capabilities"][s].append("CAP_MKNOD")

    b = bundle(["sh", "-c", script], {"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"},
        {"allow": False, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    ]}, edit=edit)
    r = oci("run", "--bundle", b, cid, timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr)
    got = dict(ln.split(":") for ln in r.stdout.split())
    assert got == {"null": "ok", "kmsg-write": "ok", "kmsg-mknod": "denied",
                   "null-mknod": "ok", "blk-mknod": "denied", "zero": "denied"}, (r.stdout, r.stderr)


# --- relative cgroupsPath: the no-internal-processes rule ------------------------------------


def in_cgroup(cgroup: Path, argv: list[str]) -> list[str]:
    """argv, run as a process of `cgroup` (a shell joins it, then execs argv)."""
    return ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(cgroup), *argv]


def test_relative_path_from_a_busy_cgroup_moves_the_runtime_into_a_leaf(
        oci, bundle, cid, tmp_path, scratch_cgroups):
    caller = CGROOT / f"{cid}-caller"
    caller.mkdir()
    scratch_cgroups.append(caller)
    b = bundle(["sleep", "600"], {"memory": {"limit": 32 * MiB}},
               edit=lambda c: c["linux"].__setitem__("cgroupsPath", "ctr"))
    oci.ids.add(cid)
    out = tmp_path / "out"
    with open(out, "w") as o:
        r = subprocess.run(in_cgroup(caller, oci.argv("--trace", "run", "--detach", "--bundle",
                                                      b, cid)),
                           stdin=subprocess.DEVNULL, stdout=o, stderr=subprocess.STDOUT, timeout=120)
    trace = out.read_text()
    assert r.returncode == 0, trace
    # The runtime was a process of `caller`, so `caller` could not enable controllers for its
    # children (EBUSY) until the runtime moved itself into a leaf.
    assert f'write("{caller}/minirun-runtime/cgroup.procs", "0")' in trace, trace
    assert {"memory", "pids", "cpu"} <= set(read(caller / "cgroup.subtree_control").split())
    pid = oci.state(cid)["pid"]
    assert own_cgroup(pid) == f"0::/{caller.name}/ctr"
    assert read(caller / "ctr" / "memory.max") == str(32 * MiB)
    oci("delete", "--force", cid, check=True)
    assert not (caller / "ctr").exists()


def test_relative_path_beside_another_process_fails_cleanly(oci, bundle, cid, scratch_cgroups):
    caller = CGROOT / f"{cid}-caller"
    caller.mkdir()
    scratch_cgroups.append(caller)
    other = subprocess.Popen(in_cgroup(caller, ["sleep", "600"]), stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: str(other.pid) in read(caller / "cgroup.procs").split(),
                 what="the other process to join")
        b = bundle(["true"], {"memory": {"limit": 32 * MiB}},
                   edit=lambda c: c["linux"].__setitem__("cgroupsPath", "ctr"))
        oci.ids.add(cid)
        r = subprocess.run(in_cgroup(caller, oci.argv("run", "--bundle", b, cid)),
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        # That process is not the runtime's to move: it must say why, and undo what it did.
        assert r.returncode != 0
        assert "no internal processes" in r.stderr and str(other.pid) in r.stderr, r.stderr
        assert sorted(p.name for p in caller.iterdir() if p.is_dir()) == []
        assert read(caller / "cgroup.procs").split() == [str(other.pid)]
        assert not (oci.root / cid).exists()
    finally:
        other.kill()
        other.wait()


# --- delete, cgroup namespace ----------------------------------------------------------------


def test_delete_kills_the_cgroup_and_removes_it(oci, bundle, cid, tmp_path):
    b = bundle(["sh", "-c", "sleep 600 & sleep 600 & sleep 600"])
    start_detached(oci, tmp_path, b, cid)
    d = cgdir(cid)
    wait_for(lambda: len(read(d / "cgroup.procs").split()) == 3, what="three processes")
    r = oci("--trace", "delete", "--force", cid)
    assert r.returncode == 0, r.stderr
    assert f'write("{d}/cgroup.kill", "1")' in r.stderr, r.stderr
    assert not d.exists()


def test_cgroup_namespace_shows_the_container_its_own_cgroup(oci, bundle, cid):
    # The host's tree (/sys/fs/cgroup/minirun ...) is out of sight: the root is the container's.
    script = ("cat /proc/self/cgroup /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; "
              "[ -e /sys/fs/cgroup/minirun ] && echo host-tree || echo own-tree")
    b = bundle(["sh", "-c", script], {"memory": {"limit": 48 * MiB}, "pids": {"limit": 30}})
    r = oci("run", "--bundle", b, cid, timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.split() == ["0::/", str(48 * MiB), "30", "own-tree"], r.stdout
