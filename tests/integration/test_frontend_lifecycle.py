"""The container lifecycle through the front end: states, stop and kill, restart policies, the
monitor, and many containers at once."""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from helpers import alive, mount_points_under, poll, processes_mentioning


def status(mr, ref: str) -> str:
    return mr.record(ref)["State"]["Status"]


def test_create_start_stop_start_keeps_the_filesystem(mr):
    cid = mr.ok("create", "--name", "keep", "busybox", "sh", "-c",
                "date +%s%N >> /runs; cat /runs | wc -l; sleep 100").strip()
    assert status(mr, "keep") == "created"
    assert "Created" in mr.ok("ps", "-a", "--filter", "name=keep")
    mr.ok("start", "keep")
    assert status(mr, "keep") == "running"
    mr.ok("stop", "-t", "1", "keep")
    assert status(mr, "keep") == "exited"
    mr.ok("start", "keep")
    assert poll(lambda: "2" in mr.ok("logs", "keep").split())  # the second run saw the first's file
    mr.ok("kill", "keep")
    assert poll(lambda: status(mr, "keep") == "exited")
    assert mr.record(cid)["State"]["ExitCode"] == 137


def test_stop_waits_then_kills_a_pid_1_that_ignores_sigterm(mr):
    mr.ok("run", "-d", "--name", "stubborn", "busybox", "sleep", "100")
    t = time.monotonic()
    mr.ok("stop", "-t", "1", "stubborn")
    assert time.monotonic() - t > 0.9  # the grace period was waited out (no upper bound here:
    # speed is measured in bench/, and a slow machine is not a failure)
    # A PID 1 with no handler is immune to SIGTERM (the kernel drops it): SIGKILL after 1 s.
    assert mr.record("stubborn")["State"]["ExitCode"] == 137


def test_with_init_stop_is_quick_and_the_program_gets_sigterm(mr):
    mr.ok("run", "-d", "--init", "--name", "polite", "busybox", "sleep", "100")
    assert "minirun-init -- sleep 100" in mr.ok("exec", "polite", "cat", "/proc/1/cmdline") \
        .replace("\0", " ")
    mr.ok("stop", "polite")
    # 143 = 128 + SIGTERM: the init passed the signal on and the program ended on it, before
    # any SIGKILL (which would give 137 after the 10 s grace period).
    assert mr.record("polite")["State"]["ExitCode"] == 143


def test_init_reaps_orphans(mr):
    out = mr.ok("run", "--rm", "--init", "busybox", "sh", "-c",
                "(sleep 0.2 &) ; sleep 0.5; ps -o stat,comm | grep -c Z || true")
    assert out.strip() == "0"


def test_rm_refuses_a_running_container_unless_forced(mr):
    mr.ok("run", "-d", "--name", "busy", "busybox", "sleep", "100")
    r = mr("rm", "busy")
    assert r.returncode == 1 and "cannot remove a running container" in r.stderr
    mr.ok("rm", "-f", "busy")
    assert mr.ok("ps", "-aq") == ""


def test_pause_and_unpause(mr):
    mr.ok("run", "-d", "--name", "pz", "busybox", "sh", "-c",
          "while true; do date +%s%N > /tmp/t; sleep 0.05; done")
    cid = mr.record("pz")["Id"]
    upper = mr.root / "containers" / cid / "upper" / "tmp" / "t"

    def stamp() -> str:
        try:
            return upper.read_text()
        except FileNotFoundError:
            return ""

    assert poll(lambda: stamp().strip())  # the loop runs
    mr.ok("pause", "pz")
    assert status(mr, "pz") == "paused" and "(Paused)" in mr.ok("ps")
    before = stamp()
    # Frozen: two more front-end calls (each longer than a loop iteration) see no progress.
    assert "(Paused)" in mr.ok("ps") and status(mr, "pz") == "paused"
    assert stamp() == before
    mr.ok("unpause", "pz")
    assert poll(lambda: upper.read_text() != before)
    assert status(mr, "pz") == "running"


def test_wait_prints_the_exit_code_and_rename_works(mr):
    mr.ok("run", "-d", "--name", "wt", "busybox", "sh", "-c", "sleep 0.3; exit 5")
    assert mr.ok("wait", "wt") == "5\n"
    mr.ok("rename", "wt", "w2")
    assert mr.record("w2")["Name"] == "/w2"
    r = mr("run", "--name", "w2", "busybox", "true")
    assert r.returncode == 125 and 'The container name "/w2" is already in use' in r.stderr


def test_restart_on_failure_runs_three_times_in_all(mr):
    mr.ok("run", "-d", "--name", "rf", "--restart", "on-failure:2", "busybox", "sh", "-c",
          "echo run; exit 1")
    assert poll(lambda: status(mr, "rf") == "exited", timeout=15)
    rec = mr.record("rf")
    assert rec["RestartCount"] == 2 and rec["State"]["ExitCode"] == 1
    assert mr.ok("logs", "rf").split() == ["run"] * 3


def test_restart_always_comes_back_until_stopped(mr):
    mr.ok("run", "-d", "--name", "ra", "--restart", "always", "busybox", "sh", "-c",
          "sleep 0.1; exit 0")
    assert poll(lambda: mr.record("ra")["RestartCount"] >= 2, timeout=15)
    mr.ok("stop", "ra")
    assert poll(lambda: status(mr, "ra") == "exited", timeout=15)
    n = mr.record("ra")["RestartCount"]
    # Stopped by the user: the monitor has ended, so nothing is left that could restart it.
    assert poll(lambda: not alive(mr.monitor_pid("ra")))
    assert mr.record("ra")["RestartCount"] == n and status(mr, "ra") == "exited"


def test_the_monitor_outlives_the_cli_and_owns_the_logs(mr):
    mr.ok("run", "-d", "--name", "mon", "busybox", "sh", "-c", "echo one; sleep 100")
    mon = mr.monitor_pid("mon")
    assert alive(mon)
    with open(f"/proc/{mon}/status") as f:
        rss_kb = next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS"))
    # ~9.4 MB: the runtime ran in its maker (monitor.Maker), never in the monitor itself
    assert rss_kb < 11 * 1024, f"the monitor uses {rss_kb} kB"
    with open(f"/proc/{mon}/maps") as f:
        assert "_ctypes" not in f.read()  # nor ctypes (the runtime's system calls)
    assert poll(lambda: mr.ok("logs", "mon") == "one\n")
    with open(f"/proc/{mon}/stat") as f:
        _state, ppid, _pgrp, session = f.read().rsplit(")", 1)[1].split()[:4]
    assert int(session) == mon  # a session of its own: no terminal hang-up reaches it
    assert int(ppid) != os.getpid()  # nobody's child here: adopted when its first copy exited


def test_a_killed_monitor_is_noticed_and_nothing_leaks(mr):
    mr.ok("run", "-d", "--name", "orphan", "busybox", "sleep", "100")
    cid = mr.record("orphan")["Id"]
    pid = mr.record("orphan")["State"]["Pid"]
    mon = mr.monitor_pid("orphan")
    os.kill(mon, signal.SIGKILL)
    assert poll(lambda: not alive(mon))
    # The process runs on: the container is still running, and says why its logs stopped.
    assert poll(lambda: "monitor" in mr.record("orphan")["State"]["Error"])
    assert mr.record("orphan")["State"]["Running"]
    mr.ok("kill", "orphan")
    assert poll(lambda: not alive(pid))
    assert poll(lambda: status(mr, "orphan") == "dead")
    mr.ok("rm", "orphan")
    assert mount_points_under(mr.root) == []
    assert not (mr.runroot / cid).exists()
    assert processes_mentioning(cid) == []


def test_fifty_detached_containers_in_parallel(mr):
    def one(i: int) -> str:
        return mr.ok("run", "-d", "--name", f"par{i}", "busybox", "sleep", "100",
                     timeout=120).strip()

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(one, range(50)))
    assert len(set(ids)) == 50
    rows = mr.ok("ps", "--format", "{{.Names}} {{.State}}").split("\n")
    names = {r.split()[0] for r in rows if r}
    assert names == {f"par{i}" for i in range(50)}
    assert all(r.endswith("running") for r in rows if r)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: mr.ok("rm", "-f", f"par{i}", timeout=120), range(50)))
    assert mr.ok("ps", "-aq") == ""
    assert mount_points_under(mr.root) == []


def test_ps_formats_and_filters(mr):
    mr.ok("run", "-d", "--name", "a1", "-l", "tier=web", "busybox", "sleep", "100")
    assert mr("run", "--name", "a2", "busybox", "sh", "-c", "exit 2").returncode == 2
    assert mr.ok("ps", "--format", "{{.Names}}") == "a1\n"
    assert sorted(mr.ok("ps", "-a", "--format", "{{.Names}}").split()) == ["a1", "a2"]
    assert mr.ok("ps", "-a", "-f", "status=exited", "--format", "{{.Names}}") == "a2\n"
    assert mr.ok("ps", "-a", "-f", "label=tier=web", "--format", "{{.Names}}") == "a1\n"
    assert mr.ok("ps", "-a", "-f", "exited=2", "--format", "{{.Status}}").startswith("Exited (2)")
    line = json.loads(mr.ok("ps", "--format", "json"))
    assert line["Names"] == "a1" and line["State"] == "running"


def test_inspect_has_dockers_keys(mr):
    mr.ok("run", "-d", "--name", "ins", "-e", "A=1", "busybox", "sleep", "100")
    rec = mr.record("ins")
    for key in ("Id", "Created", "Path", "Args", "State", "Image", "Name", "HostConfig",
                "GraphDriver", "Mounts", "Config", "NetworkSettings", "LogPath"):
        assert key in rec, key
    assert rec["Path"] == "sleep" and rec["Args"] == ["100"]
    assert "A=1" in rec["Config"]["Env"]
    pid = rec["State"]["Pid"]
    assert mr.ok("inspect", "-f", "{{.State.Pid}}", "ins").strip() == str(pid)
    # The workshop move: the container's namespaces are the PID's.
    assert os.readlink(f"/proc/{pid}/ns/net") == mr.ok("exec", "ins", "readlink",
                                                      "/proc/1/ns/net").strip()
    r = mr("inspect", "nothing-here")
    assert r.returncode == 1 and "No such object: nothing-here" in r.stderr


def test_top_and_stats(mr):
    mr.ok("run", "-d", "--name", "ts", "-m", "64m", "busybox", "sleep", "100")
    top = mr.ok("top", "ts").splitlines()
    assert top[0].split()[:2] == ["UID", "PID"] and "sleep 100" in top[1]
    lines = mr.ok("stats", "--no-stream").splitlines()
    assert lines[0].split()[:4] == ["CONTAINER", "ID", "NAME", "CPU"]
    assert "ts" in lines[1] and "/ 64MiB" in lines[1]


def test_system_df_and_prune(mr):
    mr.ok("run", "--name", "done1", "busybox", "true")
    df = mr.ok("system", "df").splitlines()
    assert df[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    out = mr.ok("system", "prune", "-f")
    assert "Deleted Containers:" in out
    assert mr.ok("ps", "-aq") == ""
    assert mr.ok("images", "-q") != ""  # busybox is tagged: not dangling, kept


def test_rmi_refuses_an_image_a_container_uses(mr):
    mr.ok("create", "--name", "user", "busybox", "true")
    r = mr("rmi", "busybox")
    assert r.returncode == 1 and "is using its referenced image" in r.stderr
