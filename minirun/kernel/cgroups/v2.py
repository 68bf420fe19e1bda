"""The cgroup v2 driver: one directory in the unified hierarchy.

The v2 rules that shape this file:
  * a controller works in a cgroup only if every ancestor lists it in cgroup.subtree_control,
    so we enable them on the way down from the root;
  * "no internal processes": a cgroup with processes in it cannot enable controllers for its
    children (EBUSY). If our own cgroup is such a parent, we first move ourselves into a leaf
    (nsjail and docker-in-docker do the same);
  * freezing is cgroup.freeze, killing everything is cgroup.kill (Linux 5.14+), and an OOM kill
    is counted in memory.events (oom_kill).
"""

from __future__ import annotations

import os
import time

from ...errors import MinirunError
from . import Cgroup, mark

WANTED = ("cpuset", "cpu", "io", "memory", "hugetlb", "pids", "misc")


class V2(Cgroup):
    version = 2

    @property
    def dir(self) -> str:
        return next(iter(self.dirs.values()))

    def populated(self) -> bool:
        """cgroup.events says it in one word, for the whole subtree."""
        return "populated 1" in (self.read(os.path.join(self.dir, "cgroup.events")) or "")

    def create(self) -> list[str]:
        self._enable_controllers()
        return super().create()

    def _enable_controllers(self) -> None:
        """Enable the controllers we use in every ancestor's cgroup.subtree_control."""
        mnt = self._mount_of(self.dir)
        rel = os.path.relpath(os.path.dirname(self.dir), mnt)
        parts = [] if rel == "." else rel.split("/")
        path = mnt
        for i in range(len(parts) + 1):
            if not os.path.isdir(path):
                try:
                    os.mkdir(path)
                    mark(path)
                    self.made.append(path)
                except FileExistsError:
                    pass  # another container's create made it just now
            have = set((self.read(os.path.join(path, "cgroup.controllers")) or "").split())
            on = set((self.read(os.path.join(path, "cgroup.subtree_control")) or "").split())
            want = [c for c in WANTED if c in have and c not in on]
            if want:
                self._subtree_control(path, want)
            if i < len(parts):
                path = os.path.join(path, parts[i])

    def _subtree_control(self, path: str, ctrls: list[str]) -> None:
        from .. import libc  # lazy: kill, delete and pause do not pay for it (cgroups/__init__.py)

        value = " ".join("+" + c for c in ctrls)
        why = "let the children of this cgroup use these controllers"
        try:
            libc.write_file(os.path.join(path, "cgroup.subtree_control"), value, why)
        except OSError as e:
            if e.errno != 16:  # EBUSY: the no-internal-processes rule
                raise
            leaf = os.path.join(path, "minirun-runtime")
            made_leaf = not os.path.isdir(leaf)
            os.makedirs(leaf, exist_ok=True)
            libc.write_file(os.path.join(leaf, "cgroup.procs"), "0",
                            "no internal processes: move ourselves into a leaf so the parent "
                            "may hand controllers down")
            try:
                libc.write_file(os.path.join(path, "cgroup.subtree_control"), value, why)
            except OSError as e2:
                if e2.errno != 16:
                    raise
                # Other processes share the cgroup: not ours to move. Go back and leave no leaf
                # behind (a failed create leaves nothing), then say why and what to do.
                others = (self.read(os.path.join(path, "cgroup.procs")) or "").split()
                try:
                    libc.write_file(os.path.join(path, "cgroup.procs"), "0",
                                    "back to the cgroup we came from")
                    if made_leaf:
                        os.rmdir(leaf)
                except OSError:
                    pass
                raise MinirunError(
                    f"cgroup {path} also holds processes {' '.join(others[:5])}"
                    f"{' ...' if len(others) > 5 else ''}: cgroup v2's \"no internal processes\" "
                    f"rule stops it from enabling controllers for {self.dir}; use an absolute "
                    "linux.cgroupsPath, or run the runtime from a cgroup of its own") from None

    def apply(self, resources: dict) -> None:
        # lazy: only create and update apply resources (start-up budget of kill, delete, pause)
        from .. import libc
        from . import devices
        from .resources import ResourceError, plan_v2

        d = self.dir
        for name, value in plan_v2(resources, lambda n: os.path.exists(os.path.join(d, n))):
            self.write(os.path.join(d, name), value, _field_of(name), f"limit: {name}")
        if resources.get("devices") is not None:
            rules = devices.with_defaults(devices.normalise(resources["devices"]))
            try:
                devices.load_and_attach(d, rules)
            except libc.KernelError as e:
                raise ResourceError("devices", f"cannot load the eBPF device filter: {e}") from None

    def freeze(self) -> None:
        self._freeze("1", "stop every process of the container where it stands")

    def thaw(self) -> None:
        self._freeze("0", "let the container's processes run again")

    def _freeze(self, value: str, why: str) -> None:
        from .. import libc  # lazy: kill, delete and pause do not pay for it (cgroups/__init__.py)

        libc.write_file(os.path.join(self.dir, "cgroup.freeze"), value, why)
        # The write returns at once; cgroup.events says when every task has stopped.
        for _ in range(1000):
            if f"frozen {value}" in (self.read(os.path.join(self.dir, "cgroup.events")) or ""):
                return
            time.sleep(0.001)

    def frozen(self) -> bool:
        return (self.read(os.path.join(self.dir, "cgroup.freeze")) or "0").strip() == "1"

    def kill_all(self) -> None:
        from .. import libc  # lazy: kill, delete and pause do not pay for it (cgroups/__init__.py)

        path = os.path.join(self.dir, "cgroup.kill")
        if os.path.exists(path):
            libc.write_file(path, "1", "SIGKILL every process in the cgroup, atomically")
            return
        for pid in self.procs():  # before Linux 5.14
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass

    def oom_kills(self) -> int:
        return self.flat_keyed(os.path.join(self.dir, "memory.events")).get("oom_kill", 0)

    def stats(self) -> dict:
        d = self.dir
        cpu = self.flat_keyed(os.path.join(d, "cpu.stat"))
        mem_stat = self.flat_keyed(os.path.join(d, "memory.stat"))
        events = self.flat_keyed(os.path.join(d, "memory.events"))
        out: dict = {
            "cpu": {"usage": {"total": cpu.get("usage_usec", 0) * 1000,
                              "user": cpu.get("user_usec", 0) * 1000,
                              "kernel": cpu.get("system_usec", 0) * 1000},
                    "throttling": {"periods": cpu.get("nr_periods", 0),
                                   "throttledPeriods": cpu.get("nr_throttled", 0),
                                   "throttledTime": cpu.get("throttled_usec", 0) * 1000}},
            "memory": {"usage": {"usage": self.read_int(os.path.join(d, "memory.current")) or 0,
                                 "limit": self.read_int(os.path.join(d, "memory.max")) or -1,
                                 "max": self.read_int(os.path.join(d, "memory.peak")) or 0,
                                 "failcnt": events.get("max", 0)},
                       "swap": {"usage": self.read_int(os.path.join(d, "memory.swap.current")) or 0,
                                "limit": self.read_int(os.path.join(d, "memory.swap.max")) or -1},
                       "cache": mem_stat.get("file", 0),
                       "oomKills": events.get("oom_kill", 0),
                       "raw": mem_stat},
            "pids": {"current": self.read_int(os.path.join(d, "pids.current")) or 0,
                     "limit": self.read_int(os.path.join(d, "pids.max")) or -1},
            "blkio": {"ioServiceBytesRecursive": _io_stat(self.read(os.path.join(d, "io.stat")))},
        }
        huge = {}
        for name in sorted(os.listdir(d)):
            if name.startswith("hugetlb.") and name.endswith(".current"):
                size = name.split(".")[1]
                huge[size] = {"usage": self.read_int(os.path.join(d, name)) or 0,
                              "failcnt": self.flat_keyed(os.path.join(d, f"hugetlb.{size}.events")).get("max", 0)}
        out["hugetlb"] = huge
        return out


def _io_stat(text: str | None) -> list[dict]:
    """io.stat lines "MAJ:MIN rbytes=.. wbytes=.." as runc's blkio entries."""
    out = []
    for line in (text or "").splitlines():
        dev, *kvs = line.split()
        major, _, minor = dev.partition(":")
        vals = dict(kv.split("=", 1) for kv in kvs if "=" in kv)
        for op, key in (("Read", "rbytes"), ("Write", "wbytes")):
            if key in vals:
                out.append({"major": int(major), "minor": int(minor), "op": op, "value": int(vals[key])})
    return out


_FIELDS = {"memory.max": "memory.limit", "memory.low": "memory.reservation",
           "memory.swap.max": "memory.swap", "cpu.weight": "cpu.shares", "cpu.max": "cpu.quota",
           "cpu.max.burst": "cpu.burst", "cpu.idle": "cpu.idle", "cpuset.cpus": "cpu.cpus",
           "cpuset.mems": "cpu.mems", "pids.max": "pids.limit", "io.max": "blockIO",
           "io.weight": "blockIO.weight", "io.bfq.weight": "blockIO.weight"}


def _field_of(name: str) -> str:
    return _FIELDS.get(name, "hugepageLimits" if name.startswith("hugetlb.") else f"unified.{name}")
