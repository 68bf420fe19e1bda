"""linux.resources -> cgroup files: the one table both drivers follow.

Each OCI field becomes a list of (file, value) writes; `plan_v2` and `plan_v1` return them in
the order they must be written, or raise ResourceError naming the field and why it cannot be
applied on this cgroup version. A field is never silently dropped. docs/cgroups.md shows the
same table for people.
"""

from __future__ import annotations

from ...errors import MinirunError

Write = tuple[str, str]  # (file name inside the container's cgroup, value)

MAX_SHARES = 262144
MIN_SHARES = 2


class ResourceError(MinirunError):
    """A resource this host cannot apply: names the field and the reason."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"config.json: linux.resources.{field}: {why}")
        self.field = field
        self.why = why


def shares_to_weight(shares: int) -> int:
    """cpu.shares (2..262144, default 1024) -> cpu.weight (1..10000, default 100).

    The conversion runc, crun and systemd use: a linear map of [2, 262144] onto [1, 10000].
    1024 shares becomes 39, not 100: the two scales do not meet at their defaults.
    """
    shares = max(MIN_SHARES, min(MAX_SHARES, shares))
    return 1 + ((shares - MIN_SHARES) * 9999) // (MAX_SHARES - MIN_SHARES)


def _num(v: "object", field: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ResourceError(field, f"{v!r} is not an integer")
    return v


def _max(v: int) -> str:
    """-1 (and for limits, 0 or less) means no limit: v2 spells it "max"."""
    return "max" if v < 0 else str(v)


def _dev(d: dict, field: str) -> str:
    return f"{_num(d.get('major'), field + '.major')}:{_num(d.get('minor'), field + '.minor')}"


THROTTLES = (("throttleReadBpsDevice", "rbps", "blkio.throttle.read_bps_device"),
             ("throttleWriteBpsDevice", "wbps", "blkio.throttle.write_bps_device"),
             ("throttleReadIOPSDevice", "riops", "blkio.throttle.read_iops_device"),
             ("throttleWriteIOPSDevice", "wiops", "blkio.throttle.write_iops_device"))


def plan_v2(res: dict, exists: "callable") -> list[Write]:
    """Writes for a cgroup v2 directory. `exists(name)` tells whether a file is there."""
    out: list[Write] = []
    mem = res.get("memory") or {}
    if mem:
        if "limit" in mem and mem["limit"] is not None:
            out.append(("memory.max", _max(_num(mem["limit"], "memory.limit"))))
        if mem.get("reservation") is not None:
            out.append(("memory.low", _max(_num(mem["reservation"], "memory.reservation"))))
        if mem.get("swap") is not None:
            swap = _num(mem["swap"], "memory.swap")
            limit = mem.get("limit")
            # OCI's swap is memory+swap (v1's memsw); v2's memory.swap.max is swap alone.
            if swap < 0:
                val = "max"
            elif limit is None or limit < 0:
                raise ResourceError("memory.swap", "on cgroup v2 a swap limit needs a memory "
                                    "limit too (swap is given as memory+swap)")
            elif swap < limit:
                raise ResourceError("memory.swap", f"{swap} is below memory.limit {limit} "
                                    "(it is memory+swap)")
            else:
                val = str(swap - limit)
            if not exists("memory.swap.max"):
                raise ResourceError("memory.swap", "this kernel has no swap accounting "
                                    "(memory.swap.max is missing)")
            out.append(("memory.swap.max", val))
        for key, why in (("kernel", "kernel memory is not limited separately on cgroup v2"),
                         ("kernelTCP", "TCP buffer memory is not limited separately on cgroup v2"),
                         ("swappiness", "cgroup v2 has no per-cgroup swappiness"),
                         ("disableOOMKiller", "cgroup v2 cannot turn the OOM killer off")):
            value = mem.get(key)
            # -1 is how runc and Docker spell "unset" for swappiness; False for the OOM killer.
            if value is None or value is False or (key == "swappiness" and value == -1):
                continue
            raise ResourceError(f"memory.{key}", why)
        if mem.get("useHierarchy") is False:
            raise ResourceError("memory.useHierarchy", "cgroup v2 is always hierarchical")
    cpu = res.get("cpu") or {}
    if cpu:
        if cpu.get("shares") is not None:
            out.append(("cpu.weight", str(shares_to_weight(_num(cpu["shares"], "cpu.shares")))))
        if cpu.get("quota") is not None or cpu.get("period") is not None:
            quota = cpu.get("quota")
            period = cpu.get("period") or 100000
            q = "max" if quota is None or _num(quota, "cpu.quota") <= 0 else str(quota)
            out.append(("cpu.max", f"{q} {_num(period, 'cpu.period')}"))
        if cpu.get("burst") is not None:
            out.append(("cpu.max.burst", str(_num(cpu["burst"], "cpu.burst"))))
        if cpu.get("idle") is not None:
            out.append(("cpu.idle", str(_num(cpu["idle"], "cpu.idle"))))
        for key in ("realtimeRuntime", "realtimePeriod"):
            if cpu.get(key):
                raise ResourceError(f"cpu.{key}", "cgroup v2 has no real-time CPU budget")
        if cpu.get("cpus"):
            out.append(("cpuset.cpus", str(cpu["cpus"])))
        if cpu.get("mems"):
            out.append(("cpuset.mems", str(cpu["mems"])))
    pids = res.get("pids") or {}
    if pids.get("limit") is not None:
        lim = _num(pids["limit"], "pids.limit")
        out.append(("pids.max", "max" if lim <= 0 else str(lim)))
    blk = res.get("blockIO") or {}
    if blk:
        weight_file = "io.bfq.weight" if exists("io.bfq.weight") else "io.weight"
        if blk.get("weight") is not None:
            w = _num(blk["weight"], "blockIO.weight")
            if weight_file == "io.weight":
                w = 1 + (w - 10) * 9999 // 990  # blkio 10..1000 -> io.weight 1..10000
            out.append((weight_file, f"default {w}" if weight_file == "io.weight" else str(w)))
        if blk.get("leafWeight") is not None:
            raise ResourceError("blockIO.leafWeight", "cgroup v2 has no leaf weight")
        for i, d in enumerate(blk.get("weightDevice") or []):
            f = f"blockIO.weightDevice[{i}]"
            if d.get("weight") is not None:
                w = _num(d["weight"], f + ".weight")
                if weight_file == "io.weight":
                    w = 1 + (w - 10) * 9999 // 990  # the same scale as "default N" above
                out.append((weight_file, f"{_dev(d, f)} {w}"))
        for key, name, _ in THROTTLES:
            for i, d in enumerate(blk.get(key) or []):
                f = f"blockIO.{key}[{i}]"
                out.append(("io.max", f"{_dev(d, f)} {name}={_num(d.get('rate'), f + '.rate')}"))
    for i, h in enumerate(res.get("hugepageLimits") or []):
        f = f"hugepageLimits[{i}]"
        size = h.get("pageSize")
        name = f"hugetlb.{size}.max"
        if not exists(name):
            raise ResourceError(f, f"no {name}: hugetlb controller or page size {size} missing")
        out.append((name, str(_num(h.get("limit"), f + ".limit"))))
    net = res.get("network") or {}
    if net.get("classID") is not None or net.get("priorities"):
        raise ResourceError("network", "net_cls/net_prio are cgroup v1 controllers; "
                            "on v2 use an eBPF or nftables cgroup match instead")
    if res.get("rdma"):
        raise ResourceError("rdma", "not supported by minirun")
    for key, value in (res.get("unified") or {}).items():
        if "/" in key or key.startswith(".") or "." not in key:
            raise ResourceError(f"unified.{key}", "is not a cgroup interface file name")
        if not exists(key):
            raise ResourceError(f"unified.{key}", "no such file in the container's cgroup "
                                "(is its controller enabled?)")
        out.append((key, str(value)))
    return out


def plan_v1(res: dict, exists: "callable", current: "callable") -> list[tuple[str, str, str]]:
    """Writes for cgroup v1: (controller, file, value). `exists(ctrl, name)`, `current(ctrl, name)`."""
    out: list[tuple[str, str, str]] = []
    mem = res.get("memory") or {}
    if mem:
        limit, swap = mem.get("limit"), mem.get("swap")
        writes = []
        if limit is not None:
            writes.append(("memory.limit_in_bytes", str(_num(limit, "memory.limit"))))
        if swap is not None:
            if not exists("memory", "memory.memsw.limit_in_bytes"):
                raise ResourceError("memory.swap", "this kernel has no swap accounting "
                                    "(memory.memsw.limit_in_bytes is missing: boot with "
                                    "swapaccount=1)")
            writes.append(("memory.memsw.limit_in_bytes", str(_num(swap, "memory.swap"))))
            # memsw must never be below the memory limit, so the order depends on direction:
            # growing -> memsw first, shrinking -> limit first.
            cur = current("memory", "memory.memsw.limit_in_bytes")
            if swap == -1 or (cur is not None and swap > cur):
                writes.reverse()
        out += [("memory", f, v) for f, v in writes]
        if mem.get("reservation") is not None:
            out.append(("memory", "memory.soft_limit_in_bytes",
                        str(_num(mem["reservation"], "memory.reservation"))))
        if mem.get("kernel") is not None:
            out.append(("memory", "memory.kmem.limit_in_bytes", str(_num(mem["kernel"], "memory.kernel"))))
        if mem.get("kernelTCP") is not None:
            out.append(("memory", "memory.kmem.tcp.limit_in_bytes",
                        str(_num(mem["kernelTCP"], "memory.kernelTCP"))))
        if mem.get("useHierarchy") is not None:
            out.append(("memory", "memory.use_hierarchy", "1" if mem["useHierarchy"] else "0"))
        if mem.get("swappiness") is not None and mem["swappiness"] != -1:  # -1: unset (runc)
            sw = _num(mem["swappiness"], "memory.swappiness")
            if not 0 <= sw <= 100:
                raise ResourceError("memory.swappiness", f"{sw} is not in 0..100")
            out.append(("memory", "memory.swappiness", str(sw)))
        if mem.get("disableOOMKiller"):
            out.append(("memory", "memory.oom_control", "1"))
    cpu = res.get("cpu") or {}
    if cpu:
        if cpu.get("shares") is not None:
            out.append(("cpu", "cpu.shares", str(_num(cpu["shares"], "cpu.shares"))))
        if cpu.get("period") is not None:
            out.append(("cpu", "cpu.cfs_period_us", str(_num(cpu["period"], "cpu.period"))))
        if cpu.get("quota") is not None:
            out.append(("cpu", "cpu.cfs_quota_us", str(_num(cpu["quota"], "cpu.quota"))))
        if cpu.get("burst") is not None:
            out.append(("cpu", "cpu.cfs_burst_us", str(_num(cpu["burst"], "cpu.burst"))))
        if cpu.get("realtimePeriod") is not None:
            out.append(("cpu", "cpu.rt_period_us", str(_num(cpu["realtimePeriod"], "cpu.realtimePeriod"))))
        if cpu.get("realtimeRuntime") is not None:
            out.append(("cpu", "cpu.rt_runtime_us", str(_num(cpu["realtimeRuntime"], "cpu.realtimeRuntime"))))
        if cpu.get("idle") is not None:
            if not exists("cpu", "cpu.idle"):
                raise ResourceError("cpu.idle", "this kernel has no cpu.idle in the v1 cpu "
                                    "controller (SCHED_IDLE cgroups)")
            out.append(("cpu", "cpu.idle", str(_num(cpu["idle"], "cpu.idle"))))
        if cpu.get("cpus"):
            out.append(("cpuset", "cpuset.cpus", str(cpu["cpus"])))
        if cpu.get("mems"):
            out.append(("cpuset", "cpuset.mems", str(cpu["mems"])))
    pids = res.get("pids") or {}
    if pids.get("limit") is not None:
        lim = _num(pids["limit"], "pids.limit")
        out.append(("pids", "pids.max", "max" if lim <= 0 else str(lim)))
    blk = res.get("blockIO") or {}
    if blk:
        wfile = "blkio.weight" if exists("blkio", "blkio.weight") else "blkio.bfq.weight"
        if blk.get("weight") is not None:
            if not exists("blkio", wfile):
                raise ResourceError("blockIO.weight", "no blkio.weight here (needs the CFQ or "
                                    "BFQ I/O scheduler)")
            out.append(("blkio", wfile, str(_num(blk["weight"], "blockIO.weight"))))
        if blk.get("leafWeight") is not None:
            if not exists("blkio", "blkio.leaf_weight"):
                raise ResourceError("blockIO.leafWeight", "no blkio.leaf_weight here (CFQ only)")
            out.append(("blkio", "blkio.leaf_weight", str(_num(blk["leafWeight"], "blockIO.leafWeight"))))
        for i, d in enumerate(blk.get("weightDevice") or []):
            f = f"blockIO.weightDevice[{i}]"
            dfile = "blkio.weight_device" if exists("blkio", "blkio.weight_device") else "blkio.bfq.weight_device"
            if not exists("blkio", dfile):
                raise ResourceError(f, "no per-device blkio weight file here")
            if d.get("weight") is not None:
                out.append(("blkio", dfile, f"{_dev(d, f)} {_num(d['weight'], f + '.weight')}"))
        for key, _, file in THROTTLES:
            for i, d in enumerate(blk.get(key) or []):
                f = f"blockIO.{key}[{i}]"
                out.append(("blkio", file, f"{_dev(d, f)} {_num(d.get('rate'), f + '.rate')}"))
    for i, h in enumerate(res.get("hugepageLimits") or []):
        f = f"hugepageLimits[{i}]"
        name = f"hugetlb.{h.get('pageSize')}.limit_in_bytes"
        if not exists("hugetlb", name):
            raise ResourceError(f, f"no {name}: the hugetlb controller is not mounted or the "
                                "page size is unknown")
        out.append(("hugetlb", name, str(_num(h.get("limit"), f + ".limit"))))
    net = res.get("network") or {}
    if net.get("classID") is not None:
        if not exists("net_cls", "net_cls.classid"):
            raise ResourceError("network.classID", "the net_cls controller is not mounted")
        out.append(("net_cls", "net_cls.classid", str(_num(net["classID"], "network.classID"))))
    for i, p in enumerate(net.get("priorities") or []):
        if not exists("net_prio", "net_prio.ifpriomap"):
            raise ResourceError(f"network.priorities[{i}]", "the net_prio controller is not mounted")
        out.append(("net_prio", "net_prio.ifpriomap", f"{p.get('name')} {_num(p.get('priority'), 'network.priorities')}"))
    if res.get("rdma"):
        raise ResourceError("rdma", "not supported by minirun")
    if res.get("unified"):
        raise ResourceError("unified", "key/value files for cgroup v2; this host uses v1 "
                            "controllers")
    return out
