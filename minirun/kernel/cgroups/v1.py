"""The cgroup v1 driver: one directory per controller hierarchy.

v1 details that shape this file:
  * each controller is its own tree (/sys/fs/cgroup/memory/..., /sys/fs/cgroup/cpu/...), so a
    container is a directory in every one, and a process joins each separately;
  * a new cpuset cgroup starts with empty cpuset.cpus and cpuset.mems, and no task may join it
    until both are set: we copy the parent's;
  * freezing is freezer.state (FROZEN / THAWED); there is no cgroup.kill, so killing everything
    is freeze, signal each task, thaw (no task can fork in between);
  * an OOM kill is counted in memory.oom_control (oom_kill, Linux 4.13+).
"""

from __future__ import annotations

import os
import time

from ...errors import MinirunError
from . import Cgroup


class V1(Cgroup):
    version = 1

    def ctrl_dir(self, controller: str) -> str | None:
        """The directory of the hierarchy carrying `controller` ("memory", "cpu" ...)."""
        for key, d in self.dirs.items():
            if controller in key.split(","):
                return d
        return None

    def _prepare_new(self, key: str, path: str) -> None:
        from .. import libc  # lazy: kill, delete and pause do not pay for it (cgroups/__init__.py)

        if "cpuset" not in key.split(","):
            return
        for f in ("cpuset.cpus", "cpuset.mems"):
            if (self.read(os.path.join(path, f)) or "").strip():
                continue
            # Copy from the nearest ancestor that has a value, filling the empty ones on the way
            # down: a parent that another create made a moment ago may still be empty, and a
            # task cannot join an empty cpuset (ENOSPC).
            chain, d, value = [], path, ""
            while True:
                chain.append(d)
                up = os.path.dirname(d)
                if up == d or not os.path.exists(os.path.join(up, f)):
                    break
                value = (self.read(os.path.join(up, f)) or "").strip()
                if value:
                    break
                d = up
            if not value:
                continue
            for d in reversed(chain):
                if not (self.read(os.path.join(d, f)) or "").strip():
                    libc.write_file(os.path.join(d, f), value, "a new v1 cpuset is empty: copy "
                                    "the parent's so tasks may join")

    def apply(self, resources: dict) -> None:
        # lazy: only create and update apply resources (start-up budget of kill, delete, pause)
        from . import devices
        from .resources import ResourceError, plan_v1

        def exists(ctrl: str, name: str) -> bool:
            d = self.ctrl_dir(ctrl)
            return d is not None and os.path.exists(os.path.join(d, name))

        def current(ctrl: str, name: str) -> int | None:
            d = self.ctrl_dir(ctrl)
            return None if d is None else self.read_int(os.path.join(d, name))

        for ctrl, name, value in plan_v1(resources, exists, current):
            d = self.ctrl_dir(ctrl)
            if d is None:
                raise ResourceError(_field_of(name), f"the {ctrl} controller is not mounted")
            try:
                self.write(os.path.join(d, name), value, _field_of(name), f"limit: {name}")
            except ResourceError as e:
                if name != "memory.limit_in_bytes" or "busy" not in str(e).lower():
                    raise
                # EBUSY: the kernel could not reclaim down to the new limit (update below the
                # current usage). runc's words, which Docker passes on.
                usage = self.read_int(os.path.join(d, "memory.usage_in_bytes"))
                peak = self.read_int(os.path.join(d, "memory.max_usage_in_bytes"))
                raise ResourceError("memory.limit", f"unable to set memory limit to {value} "
                                    f"(current usage: {usage}, peak usage: {peak})") from None
        if resources.get("devices") is not None:
            d = self.ctrl_dir("devices")
            if d is None:
                raise ResourceError("devices", "the devices controller is not mounted")
            rules = devices.with_defaults(devices.normalise(resources["devices"]))
            for name, line in devices.v1_lines(rules):
                self.write(os.path.join(d, name), line, "devices", "device access rule")

    def freeze(self) -> None:
        self._freeze("FROZEN", "stop every process of the container where it stands")

    def thaw(self) -> None:
        self._freeze("THAWED", "let the container's processes run again")

    def _freeze(self, state: str, why: str) -> None:
        from .. import libc  # lazy: kill, delete and pause do not pay for it (cgroups/__init__.py)

        d = self.ctrl_dir("freezer")
        if d is None:
            raise MinirunError("the freezer cgroup controller is not mounted: cannot pause")
        path = os.path.join(d, "freezer.state")
        for _ in range(1000):
            libc.write_file(path, state, why)
            # FREEZING means some task has not stopped yet: write again until it reads FROZEN.
            if (self.read(path) or "").strip() == state:
                return
            time.sleep(0.001)

    def frozen(self) -> bool:
        d = self.ctrl_dir("freezer")
        return d is not None and (self.read(os.path.join(d, "freezer.state")) or "").strip() != "THAWED"

    def kill_all(self) -> None:
        frozen = False
        if self.ctrl_dir("freezer") is not None:
            self.freeze()  # no fork can race the signals
            frozen = True
        for pid in self.procs():
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        if frozen:
            self.thaw()  # SIGKILL is delivered when the tasks run again

    def oom_kills(self) -> int:
        d = self.ctrl_dir("memory")
        return 0 if d is None else self.flat_keyed(os.path.join(d, "memory.oom_control")).get("oom_kill", 0)

    def stats(self) -> dict:
        mem = self.ctrl_dir("memory") or "/nonexistent"
        acct = self.ctrl_dir("cpuacct") or "/nonexistent"
        cpu = self.ctrl_dir("cpu") or "/nonexistent"
        pids = self.ctrl_dir("pids") or "/nonexistent"
        blk = self.ctrl_dir("blkio") or "/nonexistent"
        cpu_stat = self.flat_keyed(os.path.join(cpu, "cpu.stat"))
        acct_stat = self.flat_keyed(os.path.join(acct, "cpuacct.stat"))
        tick_ns = 10**9 // os.sysconf("SC_CLK_TCK")
        mem_stat = self.flat_keyed(os.path.join(mem, "memory.stat"))
        r = lambda d, n: self.read_int(os.path.join(d, n))  # noqa: E731
        out: dict = {
            "cpu": {"usage": {"total": r(acct, "cpuacct.usage") or 0,
                              "percpu": [int(x) for x in (self.read(os.path.join(acct, "cpuacct.usage_percpu")) or "").split()],
                              "user": acct_stat.get("user", 0) * tick_ns,
                              "kernel": acct_stat.get("system", 0) * tick_ns},
                    "throttling": {"periods": cpu_stat.get("nr_periods", 0),
                                   "throttledPeriods": cpu_stat.get("nr_throttled", 0),
                                   "throttledTime": cpu_stat.get("throttled_time", 0)}},
            "memory": {"usage": {"usage": r(mem, "memory.usage_in_bytes") or 0,
                                 "limit": r(mem, "memory.limit_in_bytes") or -1,
                                 "max": r(mem, "memory.max_usage_in_bytes") or 0,
                                 "failcnt": r(mem, "memory.failcnt") or 0},
                       "swap": {"usage": r(mem, "memory.memsw.usage_in_bytes") or 0,
                                "limit": r(mem, "memory.memsw.limit_in_bytes") or -1},
                       "kernel": {"usage": r(mem, "memory.kmem.usage_in_bytes") or 0},
                       "cache": mem_stat.get("cache", 0),
                       "oomKills": self.oom_kills(),
                       "raw": mem_stat},
            "pids": {"current": r(pids, "pids.current") or 0, "limit": r(pids, "pids.max") or -1},
            "blkio": {"ioServiceBytesRecursive": _blkio(self.read(os.path.join(blk, "blkio.throttle.io_service_bytes")))},
            "hugetlb": {},
        }
        huge = self.ctrl_dir("hugetlb")
        if huge:
            for name in sorted(os.listdir(huge)):
                if name.endswith(".usage_in_bytes") and name.startswith("hugetlb."):
                    size = name.split(".")[1]
                    out["hugetlb"][size] = {"usage": r(huge, name) or 0,
                                            "failcnt": r(huge, f"hugetlb.{size}.failcnt") or 0}
        return out


def _blkio(text: str | None) -> list[dict]:
    out = []
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 3 and ":" in parts[0]:
            major, minor = parts[0].split(":")
            out.append({"major": int(major), "minor": int(minor), "op": parts[1], "value": int(parts[2])})
    return out


_FIELDS = {"memory.limit_in_bytes": "memory.limit", "memory.memsw.limit_in_bytes": "memory.swap",
           "memory.soft_limit_in_bytes": "memory.reservation", "memory.kmem.limit_in_bytes": "memory.kernel",
           "memory.kmem.tcp.limit_in_bytes": "memory.kernelTCP", "memory.swappiness": "memory.swappiness",
           "memory.oom_control": "memory.disableOOMKiller", "cpu.shares": "cpu.shares",
           "cpu.cfs_period_us": "cpu.period", "cpu.cfs_quota_us": "cpu.quota", "cpu.cfs_burst_us": "cpu.burst",
           "cpu.rt_period_us": "cpu.realtimePeriod", "cpu.rt_runtime_us": "cpu.realtimeRuntime",
           "cpu.idle": "cpu.idle", "cpuset.cpus": "cpu.cpus", "cpuset.mems": "cpu.mems", "pids.max": "pids.limit",
           "net_cls.classid": "network.classID", "net_prio.ifpriomap": "network.priorities"}


def _field_of(name: str) -> str:
    if name.startswith("blkio."):
        return "blockIO"
    if name.startswith("hugetlb."):
        return "hugepageLimits"
    return _FIELDS.get(name, name)
