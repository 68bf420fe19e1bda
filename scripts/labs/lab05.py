"""Lab 05: cgroups: limits you can read back in the cgroup files, and an OOM kill.

The exercise (docs/labs/05-cgroups.md):

  1. a running container `lab05-capped` (busybox, `sleep 3600`) limited to 48 MiB of memory,
     a quarter of a CPU and 30 processes;
  2. a container `lab05-oom` that the kernel's OOM killer stopped (inspect says OOMKilled).

check() reads the limits from the cgroup files themselves (v1: memory.limit_in_bytes,
cpu.cfs_quota_us/cpu.cfs_period_us, pids.max; v2: memory.max, cpu.max, pids.max), found
through /proc/PID/cgroup, so it checks what the kernel enforces, not what the record says.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import labs as L  # noqa: E402  (the shared helpers: scripts/labs/__init__.py)

TITLE = "cgroups: limits in the cgroup files, and an OOM kill"
VERIFIED = ("lab05-capped's cgroup files say 48 MiB, 25000/100000 us and 30 pids; "
            "lab05-oom was OOM-killed")

CAPPED = "lab05-capped"
OOM = "lab05-oom"
RUN_CAPPED = "minirun run -d --name lab05-capped -m 48m --cpus 0.25 --pids-limit 30 busybox sleep 3600"
RUN_OOM = ("minirun run --name lab05-oom -m 16m --memory-swap 16m busybox "
           "dd if=/dev/zero of=/dev/null bs=64M count=1")

SOLUTION = f"""
{RUN_CAPPED}
{RUN_OOM} || echo "lab05-oom exited with status $?"
"""

MEMORY = 48 * 1024 * 1024
QUOTA, PERIOD = 25000, 100000
PIDS = 30
CG = "/sys/fs/cgroup"


def layout() -> str:
    """'v2' when /sys/fs/cgroup is the unified hierarchy, else 'v1' (v1 or hybrid)."""
    return "v2" if os.path.exists(f"{CG}/cgroup.controllers") else "v1"


def cgroup_dirs(pid: int) -> dict[str, str]:
    """{controller: directory} of a process, from /proc/PID/cgroup ('' = the cgroup2 one)."""
    out: dict[str, str] = {}
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if ctrls == "":
            out[""] = (CG if layout() == "v2" else f"{CG}/unified") + path
            continue
        for ctl in ctrls.split(","):
            # a co-mount (cpu,cpuacct) is reachable under each name's symlink or its own
            for mnt in (f"{CG}/{ctl}", f"{CG}/{ctrls}"):
                if os.path.isdir(mnt + path):
                    out[ctl] = mnt + path
                    break
    return out


def read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def limits(pid: int) -> dict[str, tuple[str, str | None]]:
    """{'memory'|'quota'|'period'|'pids': (file, value)} as the kernel holds them."""
    d = cgroup_dirs(pid)
    if layout() == "v2":
        base = d.get("", "")
        cpu_max = read(f"{base}/cpu.max") or ""
        quota, _, period = cpu_max.partition(" ")
        return {"memory": (f"{base}/memory.max", read(f"{base}/memory.max")),
                "quota": (f"{base}/cpu.max", quota or None),
                "period": (f"{base}/cpu.max", period or None),
                "pids": (f"{base}/pids.max", read(f"{base}/pids.max"))}
    mem, cpu, pids = d.get("memory", ""), d.get("cpu", ""), d.get("pids", "")
    return {"memory": (f"{mem}/memory.limit_in_bytes", read(f"{mem}/memory.limit_in_bytes")),
            "quota": (f"{cpu}/cpu.cfs_quota_us", read(f"{cpu}/cpu.cfs_quota_us")),
            "period": (f"{cpu}/cpu.cfs_period_us", read(f"{cpu}/cpu.cfs_period_us")),
            "pids": (f"{pids}/pids.max", read(f"{pids}/pids.max"))}


def _fix(what: str, flag: str) -> str:
    return (f"{what}: change it live with `minirun update {flag} {CAPPED}` "
            f"(or recreate the container with `{RUN_CAPPED}`)")


def check_capped() -> list[str]:
    pid, problems = L.running_pid(CAPPED, RUN_CAPPED)
    if pid is None:
        return problems
    got = limits(pid)
    f, v = got["memory"]
    if v is None:
        problems.append(f"cannot read {f}: is the memory controller mounted? (`minirun info`)")
    elif v != str(MEMORY):
        shown = "no limit" if v in ("max", "9223372036854771712") else f"{v} bytes"
        problems.append(_fix(f"{f} holds {shown}, the exercise wants 48 MiB = {MEMORY}",
                             "-m 48m"))
    (fq, q), (_, p) = got["quota"], got["period"]
    if q is None or p is None:
        problems.append(f"cannot read {fq}: is the cpu controller mounted?")
    elif (q, p) != (str(QUOTA), str(PERIOD)):
        shown = "no quota" if q in ("-1", "max") else f"{q} us"
        problems.append(_fix(
            f"the CPU quota is {shown} per {p} us period ({fq}), the exercise wants "
            f"{QUOTA} per {PERIOD}: a quarter of one CPU", "--cpus 0.25"))
    f, v = got["pids"]
    if v is None:
        problems.append(f"cannot read {f}: is the pids controller mounted?")
    elif v != str(PIDS):
        problems.append(_fix(f"{f} holds {v}, the exercise wants {PIDS}", "--pids-limit 30"))
    return problems


def check_oom() -> list[str]:
    c = L.container(OOM)
    if c is None:
        return [f"there is no container named {OOM}: make one whose program needs more memory "
                f"than its limit, e.g. `{RUN_OOM}`"]
    st = c.get("State", {})
    if st.get("Running"):
        return [f"{OOM} is still running: the OOM killer has not struck (yet). Give it a "
                f"program that allocates more than its -m (and --memory-swap) limit, e.g. "
                f"`minirun rm -f {OOM}; {RUN_OOM}`"]
    if not st.get("OOMKilled"):
        mem = c.get("HostConfig", {}).get("Memory") or 0
        why = ("it has no memory limit (-m)" if not mem else
               f"its program stayed under its {mem} byte limit, or exited for another reason "
               f"(exit status {st.get('ExitCode')}; a `kill -9` also gives 137, but is no OOM kill)")
        return [f"{OOM} exited but `minirun inspect --format '{{{{.State.OOMKilled}}}}' {OOM}` "
                f"says false: {why}. Remove it and try again, e.g. `minirun rm {OOM}; {RUN_OOM}`"]
    return []


def check() -> list[str]:
    return check_capped() + check_oom()


def cleanup() -> None:
    L.remove_containers("lab05-")
    L.remove_paths("/tmp/lab05")
