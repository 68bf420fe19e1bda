"""`minirun system boot` after a simulated reboot of a private --root/--runroot.

The reboot: every monitor and container process of the root is killed (by the PIDs in the
records), the runtime forgets each container (its state and cgroup: what a reboot takes), the
rootfs overlays are unmounted and the runroot emptied; the records still say running or paused.
Then `system boot` must apply Docker's rules (engine/api/boot.py) once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess

from helpers import alive, mount_points_under, poll


def raw(mr, name: str) -> dict:
    """A container's record as on disk (inspect would refresh it: call a monitorless one dead)."""
    for d in (mr.root / "containers").iterdir():
        p = d / "container.json"
        if p.exists():
            rec = json.loads(p.read_text())
            if rec["name"] == name:
                return rec
    raise KeyError(name)


def reboot(mr) -> None:
    from minirun.oci import container as oci

    records = [json.loads(p.read_text()) for p in (mr.root / "containers").glob("*/container.json")]
    for rec in records:
        if rec["state"]["monitor_pid"]:
            os.kill(rec["state"]["monitor_pid"], signal.SIGKILL)
    for rec in records:
        try:
            oci.delete(str(mr.runroot), rec["id"], force=True)  # kills (and thaws) what is left
        except Exception:
            pass
    for rec in records:
        for pid in (rec["state"]["monitor_pid"], rec["state"]["pid"]):
            if pid:
                assert poll(lambda: not alive(pid), timeout=10), f"PID {pid} survived"
    for m in mount_points_under(mr.root):
        subprocess.run(["umount", "-l", m], check=True)
    for entry in mr.runroot.iterdir():
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def test_boot_applies_restart_policies_once(mr):
    run = ["run", "-d", "--network", "none"]
    script = ["busybox", "sh", "-c", "echo run; exec sleep 1000"]
    mr.ok(*run, "--name", "b-always", "--restart", "always", *script)
    mr.ok(*run, "--name", "b-unless", "--restart", "unless-stopped", *script)
    mr.ok(*run, "--name", "b-onfail", "--restart", "on-failure:3", *script)
    mr.ok(*run, "--name", "b-no", *script)
    mr.ok(*run, "--name", "b-paused", *script)
    mr.ok(*run, "--name", "b-unless-stopped", "--restart", "unless-stopped", *script)
    mr.ok(*run, "--name", "b-always-stopped", "--restart", "always", *script)
    mr.ok("create", "--name", "b-created", "--network", "none", "--restart", "always", *script[:1],
          "true")
    mr.ok("pause", "b-paused")
    mr.ok("stop", "-t", "0", "b-unless-stopped", "b-always-stopped")
    for name in ("b-always", "b-unless", "b-onfail", "b-no", "b-paused"):
        assert poll(lambda: mr.ok("logs", name) == "run\n")
    stopped_code = raw(mr, "b-unless-stopped")["state"]["exit_code"]

    reboot(mr)
    assert raw(mr, "b-always")["state"]["status"] == "running"  # what the records still say
    assert raw(mr, "b-paused")["state"]["status"] == "paused"

    r = mr("system", "boot")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == ["b-always", "b-always-stopped", "b-onfail", "b-unless"]

    def state(name: str) -> dict:
        return mr.record(name)["State"]

    for name in ("b-always", "b-unless", "b-onfail", "b-always-stopped"):
        s = state(name)
        assert s["Status"] == "running" and alive(s["Pid"]), (name, s)
        assert mr.record(name)["RestartCount"] == 0
        want = "run\nrun\n"  # the log goes on from before the reboot
        assert poll(lambda: mr.ok("logs", name) == want), (name, mr.ok("logs", name))
    for name in ("b-no", "b-paused"):  # were running (or paused), no policy: Docker's 255
        s = state(name)
        assert (s["Status"], s["ExitCode"], s["Pid"]) == ("exited", 255, 0), (name, s)
        assert not s["Error"]
    s = state("b-unless-stopped")  # stopped by the user before: untouched
    assert (s["Status"], s["ExitCode"]) == ("exited", stopped_code)
    assert state("b-created")["Status"] == "created"  # never started: dockerd leaves it too
    assert (mr.runroot / "booted").read_text().strip() == \
        open("/proc/sys/kernel/random/boot_id").read().strip()

    # Once per boot: what the user stops after it stays stopped.
    pids = {n: state(n)["Pid"] for n in ("b-always", "b-unless", "b-onfail")}
    mr.ok("stop", "-t", "0", "b-always-stopped")
    r = mr("system", "boot")
    assert (r.returncode, r.stdout) == (0, "")
    assert state("b-always-stopped")["Status"] == "exited"
    # Safe with containers running: without the marker (a root set up again), the live ones
    # are left as they are, same processes.
    (mr.runroot / "booted").unlink()
    mr.ok("stop", "-t", "0", "b-onfail")  # on-failure, exit code 137 != 0: comes back
    r = mr("system", "boot")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == ["b-always-stopped", "b-onfail"]
    for name in ("b-always", "b-unless"):
        assert state(name)["Pid"] == pids[name]
    assert state("b-no")["Status"] == "exited"
