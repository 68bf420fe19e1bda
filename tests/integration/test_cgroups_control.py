"""The verbs that act on a live container's cgroup, on this hybrid host (v1 + unified).

pause/resume (freezer.state), update (live limits), events (--stats and the stream with its OOM
line), ps (cgroup.procs), and the end of it all: delete, delete --force and kill --all reach every
process of the cgroup and remove its directory in every hierarchy; the default parent /minirun
goes with the last container in it (unless it was there before). The container's cgroup is the
default /minirun/<id>. Pure cgroup v2 hosts skip this file: tests/cgroup_v2 runs in a v2 VM.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from helpers import (alive, all_dirs, cg, launch, one_line_error, parents, poll, read,
                     run_detached, status, v1_hybrid_only, with_shared)

pytestmark = v1_hybrid_only("freezer", "freezer.state, memory.limit_in_bytes")

MiB = 1 << 20


# --- helpers -----------------------------------------------------------------------------------


def procs(cid: str) -> set[int]:
    out: set[int] = set()
    for d in all_dirs(cid):
        out.update(int(x) for x in (d / "cgroup.procs").read_text().split())
    return out


# Three sleeps, one of them orphaned (re-parented to the init), and TERM trapped by the init.
FAMILY = ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & sleep 1000 & (sleep 1000 &); "
                      "echo ready > /tmp/marker; wait"]


def start_family(oci, bundle, cid: str, tmp_path: Path, **res) -> tuple[int, set[int]]:
    shared = tmp_path / "shared"
    pid = run_detached(oci, tmp_path, bundle(args=FAMILY, edit=with_shared(shared, **res)), cid)
    assert poll(lambda: (shared / "marker").exists())
    assert poll(lambda: len(procs(cid)) == 4), procs(cid)
    return pid, procs(cid)


# --- pause / resume -------------------------------------------------------------------------------


def test_pause_stops_progress_and_resume_continues(oci, bundle, cid, tmp_path):
    shared = tmp_path / "shared"
    count = shared / "count"
    script = "i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.01; done"
    run_detached(oci, tmp_path, bundle(args=["sh", "-c", script], edit=with_shared(shared)), cid)

    def progress() -> int:
        try:
            return int(count.read_text() or 0)
        except (OSError, ValueError):
            return 0

    assert poll(lambda: progress() >= 3)
    assert read(cid, "freezer", "freezer.state") == "THAWED"

    seen = progress()
    oci("pause", cid, check=True)
    assert status(oci, cid) == "paused"
    assert read(cid, "freezer", "freezer.state") == "FROZEN"
    # FROZEN is the kernel's word that every task of the cgroup is frozen; the count is read
    # again after two more runtime calls, which take longer than several loop iterations.
    before = count.read_text()  # may be empty: frozen between the truncate and the write
    r = oci("exec", cid, "true")
    assert r.returncode != 0 and "paused" in one_line_error(r.stderr)
    r = oci("pause", cid)
    assert r.returncode != 0 and "paused" in one_line_error(r.stderr)
    assert count.read_text() == before, "the container made progress while paused"

    oci("resume", cid, check=True)
    assert status(oci, cid) == "running"
    assert read(cid, "freezer", "freezer.state") == "THAWED"
    assert poll(lambda: progress() > seen + 3), "no progress after resume"
    r = oci("resume", cid)
    assert r.returncode != 0 and "running" in one_line_error(r.stderr)
    oci("delete", "--force", cid, check=True)


def test_pause_and_resume_of_a_stopped_container_fail(oci, bundle, cid, tmp_path):
    r = launch(oci, tmp_path, "run", "--detach", "--bundle", bundle(args=["true"]), cid)
    assert r.returncode == 0, r.stderr
    assert poll(lambda: status(oci, cid) == "stopped")
    for verb in ("pause", "resume"):
        r = oci(verb, cid)
        assert r.returncode != 0 and "stopped" in one_line_error(r.stderr), verb
    oci("delete", cid, check=True)


# --- update ------------------------------------------------------------------------------------


INITIAL = dict(memory={"limit": 128 * MiB}, pids={"limit": 100},
               cpu={"shares": 1024, "quota": 50000, "period": 100000})


def test_update_changes_live_limits(oci, bundle, cid, tmp_path):
    start_family(oci, bundle, cid, tmp_path, **INITIAL)
    assert read(cid, "memory", "memory.limit_in_bytes") == str(128 * MiB)

    oci("update", "--memory", "64m", cid, check=True)
    assert read(cid, "memory", "memory.limit_in_bytes") == str(64 * MiB)
    oci("update", "--pids-limit", "10", cid, check=True)
    assert read(cid, "pids", "pids.max") == "10"
    oci("update", "--cpu-quota", "20000", "--cpu-period", "50000", cid, check=True)
    assert (read(cid, "cpu", "cpu.cfs_quota_us"), read(cid, "cpu", "cpu.cfs_period_us")) == \
        ("20000", "50000")
    oci("update", "--cpu-period=200000", cid, check=True)  # the quota stays
    assert (read(cid, "cpu", "cpu.cfs_quota_us"), read(cid, "cpu", "cpu.cfs_period_us")) == \
        ("20000", "200000")
    oci("update", "--cpuset-cpus", "0", "--cpu-shares", "256", cid, check=True)
    assert read(cid, "cpuset", "cpuset.cpus") == "0" and read(cid, "cpu", "cpu.shares") == "256"

    res = {"memory": {"limit": 96 * MiB}, "pids": {"limit": 30}, "cpu": {"quota": -1}}
    oci("update", "--resources", "-", cid, input=json.dumps(res), check=True)
    assert read(cid, "memory", "memory.limit_in_bytes") == str(96 * MiB)
    assert read(cid, "pids", "pids.max") == "30"
    assert read(cid, "cpu", "cpu.cfs_quota_us") == "-1"
    # The new limits are what a later update merges with (and what the state remembers).
    saved = json.loads((oci.root / cid / "state.json").read_text())
    text = json.dumps(saved)
    assert str(96 * MiB) in text and status(oci, cid) == "running"

    oci("delete", "--force", cid, check=True)
    assert not any(d.exists() for d in all_dirs(cid))


BAD_UPDATES = {
    # name: (update arguments, stdin, a word the one-line error must contain)
    "memory-not-a-size": (["--memory", "lots"], None, "lots"),
    "pids-not-an-integer": (["--pids-limit", "ten"], None, "ten"),
    "quota-not-an-integer": (["--cpu-quota", "1.5"], None, "1.5"),
    "cpuset-no-such-cpu": (["--cpuset-cpus", "99"], None, "cpu.cpus"),
    "unknown-flag": (["--memroy", "64m"], None, "--memroy"),
    "no-limits": ([], None, "update"),
    "resources-bad-json": (["--resources", "-"], "{not json", "--resources"),
    "resources-not-an-object": (["--resources", "-"], "[1, 2]", "JSON object"),
    "resources-bad-value": (["--resources", "-"], '{"cpu": {"shares": "lots"}}', "cpu.shares"),
    "resources-no-file": (["--resources", "/nonexistent/minirun-res.json"], None,
                          "minirun-res.json"),
}


@pytest.mark.parametrize("case", BAD_UPDATES, ids=list(BAD_UPDATES))
def test_update_rejects_bad_values(oci, bundle, cid, tmp_path, case):
    args, stdin, word = BAD_UPDATES[case]
    start_family(oci, bundle, cid, tmp_path, **INITIAL)
    files = [("memory", "memory.limit_in_bytes"), ("pids", "pids.max"), ("cpu", "cpu.shares"),
             ("cpu", "cpu.cfs_quota_us"), ("cpuset", "cpuset.cpus")]
    before = {name: read(cid, ctrl, name) for ctrl, name in files}
    r = oci("update", *args, cid, input=stdin)
    assert r.returncode != 0
    assert word in one_line_error(r.stderr), r.stderr
    assert {name: read(cid, ctrl, name) for ctrl, name in files} == before
    assert status(oci, cid) == "running"


def test_update_of_a_stopped_container_fails(oci, bundle, cid, tmp_path):
    r = launch(oci, tmp_path, "run", "--detach", "--bundle", bundle(args=["true"]), cid)
    assert r.returncode == 0, r.stderr
    assert poll(lambda: status(oci, cid) == "stopped")
    r = oci("update", "--memory", "64m", cid)
    assert r.returncode != 0 and "stopped" in one_line_error(r.stderr)
    r = oci("update", "--memory", "64m", "t-no-such-container")
    assert r.returncode != 0 and "does not exist" in one_line_error(r.stderr)


# --- events ------------------------------------------------------------------------------------


def test_events_stats_prints_one_json_line(oci, bundle, cid, tmp_path):
    start_family(oci, bundle, cid, tmp_path, memory={"limit": 64 * MiB}, pids={"limit": 50})
    r = oci("events", "--stats", cid, check=True)
    lines = r.stdout.splitlines()
    assert len(lines) == 1, r.stdout
    ev = json.loads(lines[0])
    assert ev["type"] == "stats" and ev["id"] == cid
    data = ev["data"]
    assert {"cpu", "memory", "pids", "blkio"} <= set(data), data.keys()
    assert data["pids"] == {"current": 4, "limit": 50}
    assert data["memory"]["usage"]["limit"] == 64 * MiB
    assert 0 < data["memory"]["usage"]["usage"] <= 64 * MiB
    assert data["memory"]["oomKills"] == 0
    assert data["cpu"]["usage"]["total"] > 0
    assert isinstance(data["blkio"]["ioServiceBytesRecursive"], list)


def test_events_stream_reports_an_oom_kill_and_ends_with_the_container(oci, bundle, cid, tmp_path):
    shared = tmp_path / "shared"
    # The hog runs in a subshell that the OOM killer takes (the kernel may take the init too,
    # in the same breath: either way the container stops soon after).
    script = ("while [ ! -e /tmp/go ]; do sleep 0.02; done; "
              "(x=$(head -c 67108864 /dev/zero | tr '\\0' a)); sleep 0.3")
    mem = {"limit": 32 * MiB}
    if os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"):
        mem["swap"] = 32 * MiB
    r = launch(oci, tmp_path, "run", "--detach", "--bundle",
               bundle(args=["sh", "-c", script], edit=with_shared(shared, memory=mem)), cid)
    assert r.returncode == 0, r.stderr
    ev = subprocess.Popen([oci.binary, "--root", str(oci.root), "events", "--interval", "200ms",
                           cid], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(ev.stdout.readline())  # following before the hog starts
        assert first["type"] == "stats" and first["id"] == cid
        (shared / "go").write_text("")
        out, err = ev.communicate(timeout=10)  # ends by itself when the container stops
    finally:
        if ev.poll() is None:
            ev.kill()
            ev.communicate()
    assert ev.returncode == 0, err
    events = [first] + [json.loads(ln) for ln in out.splitlines()]
    assert {"type": "oom", "id": cid} in events, events
    assert all(e["type"] in ("stats", "oom") and e["id"] == cid for e in events)
    assert status(oci, cid) == "stopped"
    assert int(read(cid, "memory", "memory.oom_control").split("oom_kill ")[1].split()[0]) >= 1

    r = oci("events", cid)  # nothing left to follow
    assert r.returncode != 0 and "stopped" in one_line_error(r.stderr)
    r = oci("events", "--interval", "soon", cid)
    assert r.returncode != 0 and "soon" in one_line_error(r.stderr)


# --- ps ----------------------------------------------------------------------------------------


def test_ps_lists_every_process_of_the_cgroup(oci, bundle, cid, tmp_path):
    pid, family = start_family(oci, bundle, cid, tmp_path)
    pid_file = tmp_path / "exec.pid"
    r = launch(oci, tmp_path, "exec", "--detach", "--pid-file", str(pid_file), cid, "sleep", "1000")
    assert r.returncode == 0, r.stderr
    exec_pid = int(pid_file.read_text())
    listed = json.loads(oci("ps", "--format", "json", cid, check=True).stdout)
    assert exec_pid in listed and pid in listed
    assert set(listed) == family | {exec_pid} == procs(cid)
    table = oci("ps", cid, check=True).stdout.splitlines()
    assert len(table) == 1 + 5 and any(ln.split()[1] == str(exec_pid) for ln in table[1:])

    # ps reads cgroup.procs, not the PID namespace: a host process moved into the container's
    # cgroups is listed too, and delete kills it with the rest.
    host = subprocess.Popen(["sleep", "1000"])
    try:
        for d in all_dirs(cid):
            (d / "cgroup.procs").write_text(str(host.pid))
        assert host.pid in json.loads(oci("ps", "--format", "json", cid, check=True).stdout)
        oci("delete", "--force", cid, check=True)
        assert host.wait(timeout=5) == -9
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
    assert not any(alive(p) for p in family | {exec_pid})
    assert not any(d.exists() for d in all_dirs(cid))


# --- kill --all and delete ------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["running", "paused"])
def test_delete_force_kills_the_whole_cgroup(oci, bundle, cid, tmp_path, how):
    pid, family = start_family(oci, bundle, cid, tmp_path)
    if how == "paused":
        oci("pause", cid, check=True)
        assert status(oci, cid) == "paused"
    r = oci("delete", cid)
    assert r.returncode != 0 and how in one_line_error(r.stderr)
    oci("delete", "--force", cid, check=True)
    assert poll(lambda: not any(alive(p) for p in family)), [p for p in family if alive(p)]
    left = [d for d in all_dirs(cid) if d.exists()]
    assert left == [], left
    assert not (oci.root / cid).exists()


def test_kill_all_signals_every_process(oci, bundle, cid, tmp_path):
    shared = tmp_path / "shared"
    # The init catches USR1 (a handler: not inherited by what it runs), the sleeps die of it.
    script = ("trap 'echo usr1 >> /tmp/log' USR1; sleep 1000 & sleep 1000 & "
              "echo ready > /tmp/marker; while :; do wait; sleep 0.05; done")
    pid = run_detached(oci, tmp_path, bundle(args=["sh", "-c", script], edit=with_shared(shared)),
                       cid)
    assert poll(lambda: (shared / "marker").exists())
    assert poll(lambda: len(procs(cid)) == 3)
    sleeps = procs(cid) - {pid}

    oci("kill", cid, "USR1", check=True)  # the init only
    assert poll(lambda: (shared / "log").exists())
    assert all(alive(p) for p in sleeps)
    oci("kill", "--all", cid, "USR1", check=True)
    assert poll(lambda: not any(alive(p) for p in sleeps)), sleeps
    assert alive(pid) and status(oci, cid) == "running"

    oci("kill", "--all", cid, "KILL", check=True)
    assert poll(lambda: status(oci, cid) == "stopped")
    oci("delete", cid, check=True)
    assert not any(d.exists() for d in all_dirs(cid))


def test_delete_of_a_stopped_container_kills_leftovers(oci, bundle, cid, tmp_path):
    """A stopped container whose cgroup still holds a process (one that never was in its PID
    namespace) is emptied by delete, without --force, and its cgroup removed."""
    r = launch(oci, tmp_path, "create", "--bundle", bundle(args=["true"]), cid)
    assert r.returncode == 0, r.stderr
    host = subprocess.Popen(["sleep", "1000"])
    try:
        (cg(cid, "pids") / "cgroup.procs").write_text(str(host.pid))
        oci("start", cid, check=True)
        assert poll(lambda: status(oci, cid) == "stopped")
        assert procs(cid) == {host.pid}
        oci("delete", cid, check=True)
        assert host.wait(timeout=5) == -9
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
    assert not any(d.exists() for d in all_dirs(cid))


# --- the default parent /minirun ------------------------------------------------------------------


def _parent_free() -> None:
    if any(p.exists() for p in parents()):
        pytest.skip("the default parent /minirun exists already (another minirun container is "
                    "running on this host): cannot tell who is last")


def test_default_parent_goes_with_the_last_container(oci, bundle, cid, tmp_path):
    _parent_free()
    a, b = cid + "a", cid + "b"
    run_detached(oci, tmp_path, bundle(args=["sleep", "1000"]), a)
    assert all(p.is_dir() for p in parents())
    run_detached(oci, tmp_path, bundle(args=["sleep", "1000"]), b)
    # The first container made the parent, but leaves before the second one.
    oci("delete", "--force", a, check=True)
    assert not any(d.exists() for d in all_dirs(a))
    assert all(d.is_dir() for d in all_dirs(b))
    oci("delete", "--force", b, check=True)
    left = [p for p in parents() if p.exists()]
    assert left == [], left

    # A failed create does not leave it either.
    r = launch(oci, tmp_path, "create", "--bundle", bundle(args=["/no/such/program"]), a)
    assert r.returncode != 0
    assert [p for p in parents() if p.exists()] == []


def test_default_parent_made_by_someone_else_stays(oci, bundle, cid, tmp_path):
    _parent_free()
    made = []
    try:
        for p in parents():
            p.mkdir()
            made.append(p)
            if (p / "cpuset.cpus").exists():  # a new v1 cpuset is empty: no task could join
                for f in ("cpuset.cpus", "cpuset.mems"):
                    (p / f).write_text((p.parent / f).read_text())
        run_detached(oci, tmp_path, bundle(args=["sleep", "1000"]), cid)
        oci("delete", "--force", cid, check=True)
        assert not any(d.exists() for d in all_dirs(cid))
        assert all(p.is_dir() for p in parents())
    finally:
        for p in made:
            for _ in range(100):
                try:
                    p.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)
