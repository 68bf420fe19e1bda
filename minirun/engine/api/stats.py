"""Stats: a container's resource usage, in Docker's stats JSON (GET /containers/{id}/stats).

    sample(eng, ref, previous)          -> one stats object; precpu_stats from `previous`
    stream(eng, ref, interval)          -> an iterator of them, one per interval

From the container's cgroup (CPU time, memory and its page cache, block I/O, PIDs) and from
/proc/PID/net/dev, read in the container's network namespace. A container that is not running
gives Docker's zeroed object ("read" is 0001-01-01T00:00:00Z).
"""

from __future__ import annotations

import os
import time
from typing import Iterator

from ...base.times import ZERO_TIME, now
from ...errors import MinirunError
from ...oci import container as oci
from ...oci import state as st
from ..lifecycle import Engine


def sample(eng: Engine, ref: str, previous: dict | None = None) -> dict:
    """One reading of container `ref`. CPU % needs two: pass the one before as `previous`
    (its cpu_stats become precpu_stats, its read the preread)."""
    c = eng.get(ref)
    out = _empty(c.id, c.name)
    if previous is not None:
        out["preread"] = previous["read"]
        out["precpu_stats"] = previous["cpu_stats"]
    if not c.state.running:
        return out
    try:
        cg = oci.cgroup_of(st.load(eng.runroot, c.id))
        data = cg.stats() if cg is not None else {}
    except (MinirunError, OSError):
        return out
    out["read"] = now()
    cpu = data.get("cpu", {}).get("usage", {})
    ncpu = os.cpu_count() or 1
    # Docker's system_cpu_usage is the host's CPU time on every CPU since boot (/proc/stat);
    # the time since boot times the CPUs is that without its tick granularity, so that
    # 100 * cpu delta / system delta * online_cpus is this container's share of one CPU.
    out["cpu_stats"] = {"cpu_usage": {"total_usage": cpu.get("total", 0),
                                      "usage_in_kernelmode": cpu.get("kernel", 0),
                                      "usage_in_usermode": cpu.get("user", 0)},
                        "system_cpu_usage": time.monotonic_ns() * ncpu, "online_cpus": ncpu}
    mem = data.get("memory", {})
    limit = mem.get("usage", {}).get("limit", 0) or 0
    host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if not limit or limit > host:
        limit = host  # no limit: Docker reports the host's memory
    out["memory_stats"] = {"usage": mem.get("usage", {}).get("usage", 0), "limit": limit,
                           "stats": dict(mem.get("raw", {}))}
    out["blkio_stats"] = {"io_service_bytes_recursive": [
        {"major": e.get("major", 0), "minor": e.get("minor", 0), "op": e.get("op", ""),
         "value": e.get("value", 0)}
        for e in data.get("blkio", {}).get("ioServiceBytesRecursive", []) or []]}
    out["pids_stats"] = {"current": data.get("pids", {}).get("current", 0)}
    out["networks"] = _networks(c.state.pid)
    return out


def stream(eng: Engine, ref: str, interval: float = 1.0) -> Iterator[dict]:
    """A reading every `interval` seconds, each with the one before as its pre-reading."""
    prev = sample(eng, ref)
    while True:
        time.sleep(interval)
        prev = sample(eng, ref, prev)
        yield prev


def _networks(pid: int) -> dict:
    """/proc/PID/net/dev: the interfaces of the container's network namespace but lo."""
    out = {}
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            for line in f.readlines()[2:]:
                name, _, rest = line.partition(":")
                if name.strip() != "lo":
                    v = rest.split()
                    out[name.strip()] = {"rx_bytes": int(v[0]), "rx_packets": int(v[1]),
                                         "rx_errors": int(v[2]), "rx_dropped": int(v[3]),
                                         "tx_bytes": int(v[8]), "tx_packets": int(v[9]),
                                         "tx_errors": int(v[10]), "tx_dropped": int(v[11])}
    except (OSError, ValueError, IndexError):
        pass
    return out


def _empty(cid: str, name: str) -> dict:
    """Docker's object for a container with nothing to report (not running)."""
    cpu = {"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0, "online_cpus": 0}
    return {"id": cid, "name": "/" + name, "read": ZERO_TIME, "preread": ZERO_TIME,
            "pids_stats": {}, "blkio_stats": {"io_service_bytes_recursive": []},
            "cpu_stats": cpu, "precpu_stats": dict(cpu), "memory_stats": {}, "networks": {}}
