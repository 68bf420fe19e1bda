"""HEALTHCHECK through the front end: the --health-* flags, the checks the monitor runs inside the
container, State.Health in inspect, ps's STATUS column, timeouts, restarts, and nothing left
behind. Intervals are 1 s: each test waits a few checks at most."""

from __future__ import annotations

from helpers import alive, poll, processes_mentioning


def health(mr, ref: str) -> dict:
    return mr.record(ref)["State"]["Health"]


def test_starting_then_healthy_then_unhealthy(mr):
    mr.ok("run", "-d", "--name", "hc", "--health-cmd", "test -f /tmp/ok", "--health-interval",
          "1s", "--health-retries", "2", "busybox", "sleep", "100")
    rec = mr.record("hc")
    assert rec["Config"]["Healthcheck"] == {"Test": ["CMD-SHELL", "test -f /tmp/ok"],
                                            "Interval": 1_000_000_000, "Retries": 2}
    # The first check comes an interval after the start; one failure is not yet unhealthy.
    assert rec["State"]["Health"]["Status"] == "starting"
    assert "(health: starting)" in mr.ok("ps", "--filter", "name=hc")
    mr.ok("exec", "hc", "touch", "/tmp/ok")
    assert poll(lambda: health(mr, "hc")["Status"] == "healthy", timeout=5)
    assert mr.ok("inspect", "-f", "{{.State.Health.Status}}", "hc") == "healthy\n"
    status = mr.ok("ps", "--format", "{{.Names}} {{.Status}}").splitlines()
    assert any(s.startswith("hc Up ") and s.endswith(" (healthy)") for s in status), status
    assert mr.ok("ps", "--filter", "health=healthy", "--format", "{{.Names}}") == "hc\n"
    mr.ok("exec", "hc", "rm", "/tmp/ok")
    assert poll(lambda: health(mr, "hc")["Status"] == "unhealthy", timeout=5)
    h = health(mr, "hc")
    assert h["FailingStreak"] >= 2
    assert 1 <= len(h["Log"]) <= 5
    assert all(set(e) == {"Start", "End", "ExitCode", "Output"} for e in h["Log"])
    assert h["Log"][-1]["ExitCode"] == 1 and h["Log"][-1]["Output"] == ""
    assert any(e["ExitCode"] == 0 for e in h["Log"])
    assert "(unhealthy)" in mr.ok("ps", "--filter", "health=unhealthy")
    # Plain Docker only reports: an unhealthy container runs on.
    assert mr.record("hc")["State"]["Status"] == "running"


def test_the_check_sees_the_container_and_its_output_is_logged(mr):
    mr.ok("run", "-d", "--name", "hco", "-e", "GREETING=hi", "-w", "/tmp", "--health-cmd",
          'echo "$GREETING from $(hostname) in $(pwd)"; cat /proc/1/cmdline; exit 3',
          "--health-interval", "1s", "busybox", "sleep", "100")
    assert poll(lambda: health(mr, "hco")["Log"], timeout=5)
    entry = health(mr, "hco")["Log"][0]
    host = mr.record("hco")["Config"]["Hostname"]
    assert entry["ExitCode"] == 3
    assert entry["Output"] == f"hi from {host} in /tmp\nsleep\x00100\x00"


def test_a_check_past_its_timeout_is_killed_and_logged(mr):
    mr.ok("run", "-d", "--name", "hct", "--health-cmd", "echo started; sleep 77",
          "--health-interval", "1s", "--health-timeout", "1s", "--health-retries", "1",
          "busybox", "sleep", "100")
    assert poll(lambda: health(mr, "hct")["Status"] == "unhealthy", timeout=8)
    entry = health(mr, "hct")["Log"][0]
    assert entry["ExitCode"] == -1
    assert entry["Output"] == "Health check exceeded timeout (1s): started\n"
    # The timed-out check is gone (the next one may be running: at most one at a time).
    assert len([p for p in processes_mentioning("sleep 77")]) <= 1
    mr.ok("rm", "-f", "hct")
    assert poll(lambda: processes_mentioning("sleep 77") == [])


def test_no_healthcheck_and_flag_errors(mr):
    mr.ok("run", "-d", "--name", "hcn", "--no-healthcheck", "busybox", "sleep", "100")
    rec = mr.record("hcn")
    assert rec["Config"]["Healthcheck"] == {"Test": ["NONE"]}
    assert "Health" not in rec["State"]
    assert "(" not in mr.ok("ps", "--filter", "name=hcn", "--format", "{{.Status}}")
    assert mr.ok("ps", "--filter", "health=none", "--format", "{{.Names}}") == "hcn\n"
    mr.ok("run", "-d", "--name", "hcplain", "busybox", "sleep", "100")
    plain = mr.record("hcplain")
    assert "Healthcheck" not in plain["Config"] and "Health" not in plain["State"]
    for flags, message in (
            (["--no-healthcheck", "--health-cmd", "true"],
             "--no-healthcheck conflicts with --health-* options"),
            (["--health-interval", "soon"],
             'invalid argument "soon" for "--health-interval" flag: time: invalid duration '
             '"soon"'),
            (["--health-timeout", "-1s"], "--health-timeout cannot be negative")):
        r = mr("run", "--rm", *flags, "busybox", "true")
        assert r.returncode == 125 and message in r.stderr and "Traceback" not in r.stderr


def test_a_restarted_container_is_starting_again(mr):
    # A start period: failures do not count while it is still starting (every 1 s here).
    mr.ok("run", "-d", "--name", "hcr", "--health-cmd", "test -f /tmp/ok", "--health-interval",
          "1s", "--health-start-period", "60s", "--health-start-interval", "1s",
          "--health-retries", "1", "busybox", "sleep", "100")
    assert poll(lambda: len(health(mr, "hcr")["Log"]) >= 1, timeout=5)
    h = health(mr, "hcr")
    assert (h["Status"], h["FailingStreak"]) == ("starting", 0)  # logged, not counted
    mr.ok("exec", "hcr", "touch", "/tmp/ok")
    assert poll(lambda: health(mr, "hcr")["Status"] == "healthy", timeout=5)
    mr.ok("exec", "hcr", "rm", "/tmp/ok")
    mr.ok("restart", "-t", "0", "hcr")
    h = health(mr, "hcr")
    assert (h["Status"], h["FailingStreak"]) == ("starting", 0)
    last = h["Log"][-1]["Start"]
    assert poll(lambda: health(mr, "hcr")["Log"][-1]["Start"] != last, timeout=5)
    h = health(mr, "hcr")
    assert h["Log"][-1]["ExitCode"] == 1  # /tmp/ok is gone ...
    assert h["Status"] == "starting"  # ... but it is in its start period again
    mr.ok("stop", "-t", "0", "hcr")
    assert health(mr, "hcr")["Status"] == "unhealthy"  # dockerd's word for "not checked"


def test_the_monitor_stays_small_and_nothing_is_left_after_rm(mr):
    mr.ok("run", "-d", "--name", "hcm", "--health-cmd", "sleep 0.2; true", "--health-interval",
          "1s", "busybox", "sleep", "100")
    cid = mr.record("hcm")["Id"]
    mon = mr.monitor_pid("hcm")
    assert poll(lambda: len(health(mr, "hcm")["Log"]) >= 2, timeout=6)
    with open(f"/proc/{mon}/status") as f:
        rss_kb = next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS"))
    assert rss_kb < 15 * 1024, f"the monitor uses {rss_kb} kB"
    mr.ok("rm", "-f", "hcm")  # most likely while a check runs
    assert poll(lambda: not alive(mon))
    assert poll(lambda: processes_mentioning("sleep 0.2") == [])
    assert processes_mentioning(cid) == []
    # The checks' runners are forks of the monitor: its command line names the --root.
    assert processes_mentioning(str(mr.root)) == []
