"""After a reboot: restart policies applied as dockerd applies them when it starts.

    boot(eng) -> {"Started": [names], "Exited": [names], "Failed": {name: error}, "Done": bool}

minirun has no daemon that outlives a reboot: each container's monitor is a process, and a
reboot takes it, the container's processes and the runtime state under --runroot (/run/minirun,
a tmpfs) away, while the records under --root still say running, paused or restarting. This
is what dockerd does in daemon.restore() for its containers, run once per boot by a systemd
unit (scripts/systemd/minirun-boot.service, as podman-restart.service runs `podman start --all
--filter restart-policy=always`):

  1. A container whose record says running/paused/restarting but whose monitor is gone is
     marked exited with exit code 255 (Docker's code for "the daemon lost the process and its
     exit status"), what it held released (its rootfs mount, runtime state, network ports).
     One whose monitor is alive (started since the boot) is left alone.
  2. Every container that has been started before and whose restart policy says so is started
     again, Docker's RestartManager rule: `always`; `unless-stopped` unless the user stopped it
     (stop/kill); `on-failure[:N]` when its last exit code is not 0 (255 after a reboot) and it
     has restarts left. As with `docker start`, its restart count begins again at 0. Note that
     an `always` container the user stopped comes back too, as it does when dockerd restarts.

Once per boot: the first call leaves <runroot>/booted holding the kernel's boot ID
(/proc/sys/kernel/random/boot_id) and later calls in the same boot do nothing (Done False), so
a second call does not resurrect what the user stopped since. Run it before anything else
reads the records (`ps` would call a monitorless container dead): the unit is ordered before
minirun.socket.
"""

from __future__ import annotations

import os

from ...base.atomicfile import write_atomic
from ...base.filelock import FileLock
from ...base.times import ZERO_TIME, now
from ...errors import MinirunError
from ...kernel.process import start_time
from ..lifecycle import Engine
from ..records import Container

LOST_EXIT_CODE = 255  # moby daemon.restore(): a task gone with no exit status
BOOT_ID = "/proc/sys/kernel/random/boot_id"
MARKER = "booted"


def boot_id() -> str:
    """This boot's ID (a new random UUID at every boot)."""
    try:
        with open(BOOT_ID) as f:
            return f.read().strip()
    except OSError:
        return ""


def should_restart(c: Container) -> bool:
    """Docker's rule on daemon start (container.ShouldRestart and HasBeenStartedBefore)."""
    s = c.state
    if s.started_at == ZERO_TIME:
        return False  # created, never started: dockerd leaves those too
    policy = c.host_config.get("RestartPolicy") or {}
    name = policy.get("Name") or "no"
    if name == "always":
        return True
    if name == "unless-stopped":
        return not s.stop_requested
    if name == "on-failure" and s.exit_code != 0:
        limit = policy.get("MaximumRetryCount") or 0
        return not limit or s.restart_count < limit
    return False


def _monitor_alive(c: Container) -> bool:
    s = c.state
    return bool(s.monitor_pid) and start_time(s.monitor_pid) == s.monitor_start


def boot(eng: Engine) -> dict:
    """Mark what the reboot stopped as exited and start what its restart policy brings back
    (see the module docstring); once per boot."""
    os.makedirs(eng.runroot, mode=0o711, exist_ok=True)
    marker = os.path.join(eng.runroot, MARKER)
    result: dict = {"Started": [], "Exited": [], "Failed": {}, "Done": False}
    with FileLock(os.path.join(eng.runroot, "boot.lock")):
        this_boot = boot_id()
        try:
            with open(marker) as f:
                if f.read().strip() == this_boot:
                    return result
        except OSError:
            pass
        for c in eng.containers.all():
            if c.state.running and not _monitor_alive(c):
                _mark_exited(eng, c)
                result["Exited"].append(c.name)
        for c in eng.containers.all():
            if c.state.running or not should_restart(c):
                continue
            try:
                eng.containers.update(c.id, _fresh_count)
                eng.start(eng.containers.load(c.id))
                result["Started"].append(c.name)
            except MinirunError as e:
                result["Failed"][c.name] = str(e)
        write_atomic(marker, this_boot + "\n", mode=0o644)
    result["Done"] = True
    return result


def _fresh_count(c: Container) -> None:
    c.state.restart_count = 0  # moby containerStart(resetRestartManager=true), as `start`


def _mark_exited(eng: Engine, c: Container) -> None:
    def exited(x: Container) -> None:
        x.state.status = "exited"
        x.state.exit_code = LOST_EXIT_CODE
        x.state.pid = 0
        x.state.monitor_pid = x.state.monitor_start = 0
        x.state.finished_at = now()
        x.state.error = ""

    c = eng.containers.update(c.id, exited)
    eng._release(c)  # a real reboot left nothing mounted; a simulated one may have
    if c.networks:
        try:
            eng.net.finished(eng.containers, c)
        except MinirunError:
            pass  # the bridge went with the reboot: its next start sets it up again
