"""Verbs that act on a running container's cgroup: pause, resume, update, events.

  pause / resume   freeze and thaw every process (v2 cgroup.freeze, v1 freezer.state)
  update           change linux.resources of a live container (the same table as create)
  events           JSON lines: resource usage (--stats: once), and "oom" when the kernel's OOM
                   killer strikes inside the container (memory.events / memory.oom_control)
"""

from __future__ import annotations

import sys
import time

from .. import fastjson
from ..base.durations import SECOND, parse_duration as parse_go_duration
from ..base.filelock import FileLock
from ..base import units
from ..errors import ContainerError, MinirunError
from . import state as st
from .container import cgroup_of


def _live_cgroup(root_dir: str, cid: str, verb: str, allowed: tuple[str, ...]):
    state = st.load(root_dir, cid)
    status = state.status()
    if status not in allowed:
        raise ContainerError(f"cannot {verb} container {cid}: it is {status}")
    cg = cgroup_of(state)
    if cg is None:
        raise ContainerError(f"cannot {verb} container {cid}: it has no cgroup")
    return state, cg


def pause(root_dir: str, cid: str) -> None:
    _, cg = _live_cgroup(root_dir, cid, "pause", ("running", "created"))
    cg.freeze()


def resume(root_dir: str, cid: str) -> None:
    _, cg = _live_cgroup(root_dir, cid, "resume", ("paused",))
    cg.thaw()


# runc update's flags -> where they go in linux.resources
UPDATE_FLAGS: dict[str, tuple[str, str, str]] = {
    # flag: (section, key, kind)
    "memory": ("memory", "limit", "bytes"), "memory-reservation": ("memory", "reservation", "bytes"),
    "memory-swap": ("memory", "swap", "bytes"), "kernel-memory": ("memory", "kernel", "bytes"),
    "kernel-memory-tcp": ("memory", "kernelTCP", "bytes"),
    "cpu-shares": ("cpu", "shares", "int"), "cpu-quota": ("cpu", "quota", "int"),
    "cpu-period": ("cpu", "period", "int"), "cpu-burst": ("cpu", "burst", "int"),
    "cpu-rt-period": ("cpu", "realtimePeriod", "int"), "cpu-rt-runtime": ("cpu", "realtimeRuntime", "int"),
    "cpuset-cpus": ("cpu", "cpus", "str"), "cpuset-mems": ("cpu", "mems", "str"),
    "cpu-idle": ("cpu", "idle", "int"),
    "pids-limit": ("pids", "limit", "int"), "blkio-weight": ("blockIO", "weight", "int"),
}


def parse_bytes(text: str) -> int:
    """A size flag's value in bytes (base/units.py); a bad one is the runtime's error (exit 1)."""
    try:
        return units.parse_bytes(text)
    except ValueError as e:
        raise MinirunError(str(e)) from None


def resources_from_flags(flags: dict[str, str]) -> dict:
    res: dict = {}
    for flag, value in flags.items():
        section, key, kind = UPDATE_FLAGS[flag]
        if kind == "bytes":
            v: object = parse_bytes(value)
        elif kind == "int":
            try:
                v = int(value)
            except ValueError:
                raise MinirunError(f"update --{flag}: {value!r} is not an integer") from None
        else:
            v = value
        res.setdefault(section, {})[key] = v
    return res


def update(root_dir: str, cid: str, resources: dict) -> None:
    """Apply new limits to a live container and remember them in its state."""
    state, cg = _live_cgroup(root_dir, cid, "update", ("created", "running", "paused"))
    with FileLock(state.dir, directory=True):
        linux = state.config.setdefault("linux", {})
        merged = linux.setdefault("resources", {})
        cg.apply(_with_partners(resources, merged))
        for section, values in resources.items():
            if isinstance(values, dict) and isinstance(merged.get(section), dict):
                merged[section].update(values)
            else:
                merged[section] = values
        state.save()


# Fields the kernel takes together: v2's cpu.max holds quota and period in one write, and its
# memory.swap.max is swap minus limit. An update naming one of a pair is applied with the other's
# saved value, not a default (`update --cpu-period` must not drop the quota); runc merges too.
_PAIRS = (("cpu", "quota", "period"), ("memory", "limit", "swap"))


def _with_partners(new: dict, saved: dict) -> dict:
    out = dict(new)
    for section, a, b in _PAIRS:
        given, old = new.get(section), saved.get(section)
        if not isinstance(given, dict) or not isinstance(old, dict):
            continue
        for x, y in ((a, b), (b, a)):
            if given.get(x) is not None and given.get(y) is None and old.get(y) is not None:
                out[section] = {**given, y: old[y]}
    return out


def stats_event(state: st.State, cg) -> dict:
    return {"type": "stats", "id": state.id, "data": cg.stats()}


def events(root_dir: str, cid: str, stats_once: bool, interval: float) -> int:
    """Print events as JSON lines until the container stops (or once, with --stats)."""
    state = st.load(root_dir, cid)
    cg = cgroup_of(state)
    if cg is None:
        raise ContainerError(f"container {cid} has no cgroup: no events to report")
    if stats_once:
        print(fastjson.dumps(stats_event(state, cg)))
        return 0
    if state.status() == "stopped":
        raise ContainerError(f"container {cid} is stopped: no events to follow")
    ooms = cg.oom_kills()
    next_stats = time.monotonic()
    while True:
        now_ooms = cg.oom_kills()
        if now_ooms > ooms:
            ooms = now_ooms
            print(fastjson.dumps({"type": "oom", "id": cid}), flush=True)
        if time.monotonic() >= next_stats:
            print(fastjson.dumps(stats_event(state, cg)), flush=True)
            next_stats = time.monotonic() + interval
        if state.status() == "stopped":
            return 0
        time.sleep(min(0.1, interval))


def parse_duration(text: str) -> float:
    """--interval in seconds: a Go duration as runc takes it ('5s', '500ms', '1m30s'), or a
    plain number of seconds."""
    t = text.strip()
    try:
        seconds = parse_go_duration(t) / SECOND
    except ValueError:
        try:
            seconds = float(t)
        except ValueError:
            seconds = None
    if seconds is None or not seconds >= 0:  # a negative interval would crash time.sleep
        raise MinirunError(f"{text!r} is not a duration (e.g. 5s, 500ms)")
    return seconds


def read_resources(source: str) -> dict:
    """update --resources FILE (or - for stdin): a linux.resources JSON object."""
    try:
        data = sys.stdin.read() if source == "-" else open(source).read()
        res = fastjson.loads(data)
    except (OSError, ValueError) as e:
        raise MinirunError(f"update --resources {source}: {e}") from None
    if not isinstance(res, dict):
        raise MinirunError(f"update --resources {source}: must be a JSON object (linux.resources)")
    return res


