"""Resource values checked as Docker checks them, before anything is made.

The docker daemon refuses a container whose limits cannot be (moby daemon/daemon_unix.go
verifyPlatformContainerResources and verifyPlatformContainerSettings); the docker CLI refuses
values it cannot parse (cli/opts). minirun does both here, with Docker's messages, so that
`run -m 1m` fails in one line before a record, a layer or a cgroup exists, instead of a
cgroup write failing half-way through a start. `check` also discards, with Docker's warning,
what this host cannot do and Docker discards too (--oom-kill-disable on cgroup v2, a blkio
weight without the CFQ/BFQ scheduler).

`Host` is what the checks ask of the machine (CPUs, memory nodes, cgroup version, blkio
weight files); tests give their own.
"""

from __future__ import annotations

import os
from ..base.units import parse_bytes
from ..errors import InvalidArgument
from ..record import dataclass  # (not `dataclasses`: engine modules the monitor may load)

MIN_MEMORY = 6 * 1024 * 1024  # moby's linuxMinMemory: below it a container cannot even start
MIN_CPU_PERIOD, MAX_CPU_PERIOD = 1000, 1000000  # cfs: 1 ms .. 1 s (kernel sched-bwc.rst)
MIN_CPU_QUOTA = 1000


@dataclass
class Host:
    """What the checks need to know about the machine."""

    num_cpus: int  # runtime.NumCPU(): the CPUs we may run on
    cpus: str  # the cpuset a container may ask for, e.g. "0-1"
    mems: str  # the memory nodes, e.g. "0"
    cgroup_v2: bool
    blkio_weight: bool  # a weight file exists (v1: CFQ/BFQ; v2: io.weight or io.bfq.weight)

    @classmethod
    def probe(cls) -> "Host":
        from ..kernel import cgroups  # (start-up: only create and update ask)

        v2 = cgroups.layout() == "v2"
        if v2:
            weight = _exists("/sys/fs/cgroup/io.weight", "/sys/fs/cgroup/io.bfq.weight") or \
                "io" in _read("/sys/fs/cgroup/cgroup.controllers", "").split()
        else:
            weight = _exists("/sys/fs/cgroup/blkio/blkio.weight",
                             "/sys/fs/cgroup/blkio/blkio.bfq.weight")
        return cls(num_cpus=len(os.sched_getaffinity(0)),
                   cpus=_read("/sys/devices/system/cpu/online", "0"),
                   mems=_read("/sys/devices/system/node/online", "0"),
                   cgroup_v2=v2, blkio_weight=weight)


def _read(path: str, default: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip() or default
    except OSError:
        return default


def _exists(*paths: str) -> bool:
    return any(os.path.exists(p) for p in paths)


def parse_list(text: str) -> set[int]:
    """A cpuset list ("0-2,4") as numbers; ValueError if it is not one."""
    out: set[int] = set()
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        a, b = int(lo), int(hi) if dash else int(lo)
        if a < 0 or b < a:
            raise ValueError(text)
        out.update(range(a, b + 1))
    return out


def size(text: str, flag: str, swap: bool = False) -> int:
    """A size flag's value (the CLI's MemBytes / MemSwapBytes): "-1" only where it means
    unlimited (--memory-swap); Docker's message otherwise."""
    try:
        n = parse_bytes(text)
    except ValueError:
        n = None
    if n is None or (n < 0 and not (swap and n == -1)):
        raise InvalidArgument(f"invalid argument \"{text}\" for \"{flag}\" flag: invalid size: "
                              f"'{text}'")
    return n


def throttle(spec: str, flag: str, iops: bool) -> dict:
    """--device-{read,write}-{bps,iops} PATH:RATE -> {"Path", "Rate"} (the CLI's
    ValidateThrottleBpsDevice / ValidateThrottleIOpsDevice)."""
    path, sep, rate = spec.partition(":")
    bad = f"invalid argument \"{spec}\" for \"{flag}\" flag: "
    if not sep or not path:
        raise InvalidArgument(bad + f"bad format: {spec}")
    if not path.startswith("/dev/"):
        raise InvalidArgument(bad + f"bad format for device path: {spec}")
    try:
        n = int(rate) if iops else parse_bytes(rate)
    except ValueError:
        n = -1
    if n < 0:
        fmt = "<device-path>:<number>. Number must be a positive integer" if iops else \
            ("<device-path>:<number>[<unit>]. Number must be a positive integer. Unit is "
             "optional and can be kb, mb, or gb")
        raise InvalidArgument(bad + f"invalid rate for device: {spec}. The correct format is "
                              f"{fmt}")
    return {"Path": path, "Rate": n}


def cgroupns_mode(mode: str, host: Host) -> str:
    """--cgroupns host|private, and Docker's default when not given: private on cgroup v2,
    host on v1 (daemon default-cgroupns-mode)."""
    if mode in ("", None):
        return "private" if host.cgroup_v2 else "host"
    if mode not in ("host", "private"):
        raise InvalidArgument(f"invalid argument \"{mode}\" for \"--cgroupns\" flag: invalid "
                              "cgroup namespace mode: use host or private")
    return mode


def cgroup_parent(parent: str) -> str:
    """--cgroup-parent: a cgroupfs path. Absolute: under each hierarchy's root; relative: under
    the cgroup of the process that creates the container (Docker: the daemon's; minirun: the
    container's monitor, which runs in the caller's cgroup)."""
    if not parent:
        return ""
    if parent.endswith(".slice") or ":" in parent:
        raise InvalidArgument(f"--cgroup-parent {parent}: systemd slices are not supported "
                              "(minirun writes cgroupfs directly); give a path such as /mygroup")
    if ".." in parent.split("/"):
        raise InvalidArgument(f"--cgroup-parent {parent}: \"..\" is not allowed in a cgroup path")
    return parent.rstrip("/") or "/"


def check(hc: dict, host: Host | None = None, update: bool = False) -> list[str]:
    """Refuse what Docker refuses (InvalidArgument with its message); discard, with its warning,
    what Docker discards on such a host. `hc` is a HostConfig (changed in place by discards);
    `update`: the values of `update`, where --memory-swap alone is allowed. Returns the
    warnings."""
    host = host or Host.probe()
    warnings: list[str] = []
    g = lambda k: hc.get(k) or 0  # noqa: E731 - null and 0 are both "not set"
    mem, swap, res = g("Memory"), g("MemorySwap"), g("MemoryReservation")
    if mem != 0 and mem < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if mem > 0 and swap > 0 and swap < mem:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, "
                              "see usage")
    if mem == 0 and swap > 0 and not update:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap "
                              "limit, see usage")
    if res < 0:
        raise InvalidArgument("invalid memory reservation: a size is expected")
    if res > 0 and res < MIN_MEMORY:
        raise InvalidArgument("Minimum memory reservation allowed is 6MB")
    if mem > 0 and res > 0 and mem < res:
        raise InvalidArgument("Minimum memory limit can not be less than memory reservation "
                              "limit, see usage")
    if hc.get("OomKillDisable"):
        if host.cgroup_v2:
            # cgroup v2 has no memory.oom_control: Docker drops the flag with this warning
            warnings.append("Your kernel does not support OomKillDisable. OomKillDisable "
                            "discarded.")
            hc["OomKillDisable"] = False
        elif mem == 0:
            warnings.append("OOM killer is disabled for the container, but no memory limit is "
                            "set, this can result in the system running out of resources.")
    nano, quota, period = g("NanoCpus"), g("CpuQuota"), g("CpuPeriod")
    if nano > 0 and period > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano > 0 and quota > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    # Docker's lower bound is the kernel's (a quota of 1 ms per 100 ms period): 0.01 CPU.
    if nano < 0 or nano > host.num_cpus * 10**9 or 0 < nano < 10**7:
        raise InvalidArgument(f"Range of CPUs is from 0.01 to {host.num_cpus}.00, as there are "
                              f"only {host.num_cpus} CPUs available")
    if g("CpuShares") < 0:
        raise InvalidArgument(f"invalid CPU shares ({hc['CpuShares']}): value must be a "
                              "positive integer")
    if period != 0 and not MIN_CPU_PERIOD <= period <= MAX_CPU_PERIOD:
        raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger "
                              "than 1s (i.e. 1000000)")
    if 0 < quota < MIN_CPU_QUOTA:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    for key, what, have, name in (("CpusetCpus", "cpus", host.cpus, "CPUs"),
                                  ("CpusetMems", "mems", host.mems, "memory nodes")):
        want = hc.get(key) or ""
        if not want:
            continue
        try:
            asked = parse_list(want)
        except ValueError:
            raise InvalidArgument(f"Invalid value {want} for cpuset {what}") from None
        if not asked <= parse_list(have):
            raise InvalidArgument(f"Requested {name} are not available - requested {want}, "
                                  f"available: {have}")
    weight = g("BlkioWeight")
    if weight and not 10 <= weight <= 1000:
        raise InvalidArgument("Range of blkio weight is from 10 to 1000")
    if weight and not host.blkio_weight:
        warnings.append("Your kernel does not support Block I/O weight or the cgroup is not "
                        "mounted. Weight discarded.")
        hc["BlkioWeight"] = 0
    adj = g("OomScoreAdj")
    if not -1000 <= adj <= 1000:
        raise InvalidArgument(f"Invalid value {adj}, range for oom score adj is [-1000, 1000]")
    return warnings
