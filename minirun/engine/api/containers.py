"""Containers: the verbs of Docker's /containers endpoints, on names and IDs, in plain data.

    create(eng, opts, image)            -> {"Id", "Warnings"}      POST /containers/create
    start / stop / kill / restart / pause / unpause / rename / remove    POST, DELETE ...
    wait(eng, ref)                      -> {"StatusCode", "Error"}  POST /containers/{id}/wait
    inspect(eng, ref)                   -> ContainerJSON            GET /containers/{id}/json
    list_(eng, all, limit, filters)     -> [row, ...]               GET /containers/json
    top(eng, ref)                       -> {"Titles", "Processes"}  GET /containers/{id}/top
    logs(eng, ref, ...)                 -> iterator of (stream, bytes)   GET .../logs
    port(eng, ref, private_port)        -> [{"PrivatePort", "HostIp", "HostPort"}]
    prune(eng)                          -> {"ContainersDeleted", "SpaceReclaimed"}
    update(eng, ref, config)            -> {"Warnings"}             POST /containers/{id}/update

(attach is in attach.py; cp, diff and export in files.py; exec in exec.py; stats in stats.py;
the events feed in events.py.)

`ref` is a name, a full ID or a unique ID prefix. Errors: NotFound (no such container),
Conflict (a name in use, a container running or not running), InvalidArgument (a bad signal,
filter or tail).
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from typing import Iterator

from ...base.units import human_duration
from ...errors import Conflict, InvalidArgument, MinirunError, NotFound, Unsupported
from .. import events as journal
from ..lifecycle import Engine, MonitorHandle, RunOptions, _restart_policy, _signal_number
from ..records import Container

LIST_FILTERS = ("status", "name", "id", "label", "ancestor", "exited", "health")


# --- lifecycle ----------------------------------------------------------------------------------


def create(eng: Engine, opts: RunOptions, image_record) -> dict:
    """A new container from an image in the store (not started): its record, writable layer
    and bundle. Conflict if the name is taken."""
    warnings: list[str] = []  # limits this host discards, in Docker's words (engine/limits.py)
    c = eng.create(opts, image_record, warnings)
    return {"Id": c.id, "Warnings": warnings}


def start(eng: Engine, ref: str, monitor: MonitorHandle | None = None,
          attach: bool = False, prepared: bool = False) -> None:
    """Start a created or stopped container (a running one is left alone, as Docker does).
    `monitor`: one started ahead of time, so its start-up overlaps the caller's. `attach`: a
    client attached before the start (attach.join with start=True) tells the process to go,
    so none of its output is missed (without it, the monitor goes on after 30 s).
    `prepared`: the caller created it just now and changed nothing since (`run`)."""
    eng.start(eng.get(ref), attach=attach, monitor=monitor, prepared=prepared)


def stop(eng: Engine, ref: str, timeout: int | None = None, signal: str = "") -> None:
    """The stop signal (its StopSignal, or `signal`), then SIGKILL after `timeout` seconds."""
    c = eng.get(ref)
    if signal:
        c.config["StopSignal"] = signal  # this stop only: the record keeps its own
    eng.stop(c, timeout)


def kill(eng: Engine, ref: str, signal: str | int = "KILL") -> None:
    """Send a signal (a name, SIGNAME or a number). Conflict if the container is not running."""
    eng.kill(eng.get(ref), parse_signal(signal))


def restart(eng: Engine, ref: str, timeout: int | None = None) -> None:
    """Stop (if running), then start again."""
    c = eng.get(ref)
    eng.stop(c, timeout)
    eng.start(eng.get(c.id))


def remove(eng: Engine, ref: str, force: bool = False, volumes: bool = False) -> None:
    """Remove a container and its writable layer (anonymous volumes too with `volumes`).
    Conflict if it runs, unless `force` (then it is killed first)."""
    eng.remove(eng.get(ref), force, volumes)


def pause(eng: Engine, ref: str) -> None:
    """Freeze every process (the cgroup freezer). Conflict unless running."""
    eng.pause(eng.get(ref))


def unpause(eng: Engine, ref: str) -> None:
    """Thaw a paused container. Conflict unless paused."""
    eng.unpause(eng.get(ref))


WAIT_CONDITIONS = ("not-running", "next-exit", "removed")


def wait(eng: Engine, ref: str, condition: str = "not-running") -> dict:
    """Block until the container stops: {"StatusCode": its exit code, "Error": None}.

    condition (Docker's): not-running, at once for one that is not running; next-exit, the end
    of its next run (a created container is waited for through its start); removed, until its
    record is gone too (`run --rm`: the monitor removes it after the exit)."""
    if condition not in WAIT_CONDITIONS:
        raise InvalidArgument(f"invalid condition: {condition!r} (not-running, next-exit or "
                              "removed)")
    c = eng.get(ref)
    first = c.state.finished_at
    code = c.state.exit_code
    try:
        seen = os.path.getsize(journal.path(eng.root))  # the journal's end before we wait
    except OSError:
        seen = 0
    while True:
        try:
            now = eng.refresh(eng.containers.load(c.id))
        except NotFound:
            if condition == "removed":
                # `run --rm`: the monitor may record the exit and remove the record between two
                # of our looks; its "die" event in the journal still has the exit code.
                return {"StatusCode": _died_with(eng.root, c.id, seen, code), "Error": None}
            raise
        s = now.state
        code = s.exit_code
        if not s.running:
            done = {"not-running": True,
                    "next-exit": s.finished_at != first,
                    "removed": False}[condition]
            if done:
                return {"StatusCode": code, "Error": None}
        time.sleep(0.02)


def _died_with(root: str, cid: str, offset: int, default: int) -> int:
    """The exit code of container cid's last "die" event written after journal offset
    `offset` (from the start if the journal was trimmed since), else `default`."""
    events, _ = journal.read(root, offset)
    if not events and offset:
        events, _ = journal.read(root, 0)
    for e in reversed(events):
        if e.get("Action") == "die" and (e.get("Actor") or {}).get("ID") == cid:
            try:
                return int(e["Actor"]["Attributes"]["exitCode"])
            except (KeyError, TypeError, ValueError):
                break
    return default


def rename(eng: Engine, ref: str, name: str) -> None:
    """Give a container a new name. Conflict if it is taken, InvalidArgument if invalid."""
    c = eng.get(ref)
    eng.containers.rename(c.id, name)
    journal.record(eng.root, "container", "rename", c.id,
                   {**journal.container_attributes(c), "name": name, "oldName": "/" + c.name})


def prune(eng: Engine) -> dict:
    """Remove every stopped container (created, exited, dead)."""
    removed = []
    for c in eng.all():
        if c.state.status in ("exited", "created", "dead"):
            eng.remove_files(c, volumes=False)
            removed.append(c.id)
    return {"ContainersDeleted": removed, "SpaceReclaimed": 0}


UPDATE_FIELDS = ("Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuShares",
                 "CpuQuota", "CpuPeriod", "CpusetCpus", "CpusetMems", "PidsLimit",
                 "BlkioWeight", "RestartPolicy")


class _CannotUpdate(InvalidArgument):
    """Docker's "Cannot update container ID: why" (400 in the API, 1 from the CLI)."""


def update(eng: Engine, ref: str, config: dict) -> dict:
    """Change a container's resources (Docker's UpdateConfig: Memory, MemorySwap,
    MemoryReservation, NanoCpus, CpuShares, CpuQuota, CpuPeriod, CpusetCpus, CpusetMems,
    PidsLimit, BlkioWeight) and RestartPolicy ({"Name", "MaximumRetryCount"}). A zero or empty
    value leaves that one as it is, as in Docker. A running (or paused) container's cgroup gets
    them first, through the runtime's update verb (oci/control.py, runc's `update`); then the
    record keeps them, and the next start writes them into the bundle, which is all a stopped
    container gets. Values are checked as at create (engine/limits.py), with Docker's update
    rules on top. InvalidArgument for another field or a limit that cannot be;
    {"Warnings": [...]}: what this host discards."""
    from .. import limits as checks  # (start-up: `minirun run` imports this module)

    c = eng.get(ref)
    unknown = sorted(k for k, v in config.items() if k not in UPDATE_FIELDS and v)
    if unknown:  # the docker CLI sends every Resources field, most of them zero
        raise InvalidArgument(f"update: {', '.join(unknown)} cannot be updated: "
                              f"{', '.join(UPDATE_FIELDS)} can")
    changes = {k: v for k, v in config.items() if k in UPDATE_FIELDS and v}

    def cannot(why: str) -> _CannotUpdate:
        return _CannotUpdate(f"Cannot update container {c.id}: {why}")

    hc = c.host_config
    if "RestartPolicy" in changes:
        p = changes["RestartPolicy"]
        text = p.get("Name") or "no"
        if p.get("MaximumRetryCount"):
            text += f":{p['MaximumRetryCount']}"
        changes["RestartPolicy"] = _restart_policy(text)
        if changes["RestartPolicy"]["Name"] != "no" and hc.get("AutoRemove"):
            raise Conflict("Restart policy cannot be updated because AutoRemove is enabled for "
                           "the container")
    # Docker's update rules (container/container_unix.go UpdateContainer): --cpus sets quota
    # and period itself, so one cannot be changed once the other way was used.
    for new, old, what in (("NanoCpus", "CpuPeriod", "CPU Period"),
                           ("NanoCpus", "CpuQuota", "CPU Quota"),
                           ("CpuPeriod", "NanoCpus", "CPU Period"),
                           ("CpuQuota", "NanoCpus", "CPU Quota")):
        if changes.get(new) and hc.get(old):
            raise cannot(f"Conflicting options: {what} cannot be updated as NanoCPUs has "
                         "already been set")
    swap_now = hc.get("MemorySwap") or 0
    if changes.get("Memory") and "MemorySwap" not in changes and 0 < swap_now < changes["Memory"]:
        raise cannot("Memory limit should be smaller than already set memoryswap limit, "
                     "update the memoryswap at the same time")
    merged = {**hc, **changes}
    try:
        warnings = checks.check(merged, update=True)
    except InvalidArgument as e:
        raise cannot(str(e)) from None
    changes = {k: v for k, v in changes.items() if merged.get(k)}  # less what the host discards
    if not changes:
        return {"Warnings": warnings}
    live = {k: v for k, v in changes.items() if k != "RestartPolicy"}
    if live and c.state.running:
        # Fields the kernel takes together go with their saved partners (memory+swap: the v1
        # memsw order, the v2 memory.swap.max subtraction; oci/control.py pairs cpu quota and
        # period itself).
        given = {**{k: merged.get(k) for k in ("Memory", "MemorySwap")}, **live}
        from .. import bundle  # (~1.4 ms with what it brings: only update needs it here)

        try:
            resources = bundle.resources(given)
        except bundle.BundleError as e:
            raise cannot(str(e)) from None
        resources.pop("devices", None)
        from ...kernel.cgroups.resources import ResourceError  # (cgroup code: only update)
        from ...oci import control  # (start-up: see above)

        try:
            control.update(eng.runroot, c.id, resources)
        except ResourceError as e:
            raise cannot(e.why) from None
        except MinirunError as e:
            raise cannot(str(e)) from None
    c = eng.containers.update(c.id, lambda x: x.host_config.update(changes))
    journal.record(eng.root, "container", "update", c.id, journal.container_attributes(c))
    return {"Warnings": warnings}


def parse_signal(signal: str | int) -> int:
    """A signal's number from KILL, SIGKILL or 9. InvalidArgument if there is no such signal."""
    return _signal_number(signal)


# --- inspection ---------------------------------------------------------------------------------


def inspect(eng: Engine, ref: str) -> dict:
    """Docker's ContainerJSON: what `docker inspect` prints for a container."""
    c = eng.get(ref)
    cdir = eng.cdir(c.id)
    s = c.state
    upper, work, merged = (os.path.join(cdir, n) for n in ("upper", "work", "rootfs"))
    lower = ":".join(os.path.join(eng.root, "image", "layers", n) for n in reversed(c.layers))
    state = {"Status": s.status, "Running": s.status in ("running", "paused"),
             "Paused": s.status == "paused", "Restarting": s.status == "restarting",
             "OOMKilled": s.oom_killed, "Dead": s.status == "dead", "Pid": s.pid,
             "ExitCode": s.exit_code, "Error": s.error, "StartedAt": s.started_at,
             "FinishedAt": s.finished_at}
    if s.health is not None:
        state["Health"] = s.health  # only with a healthcheck, as in Docker
    return {
        "Id": c.id, "Created": c.created, "Path": c.path, "Args": list(c.args),
        "State": state,
        "Image": c.image_id,
        "ResolvConfPath": os.path.join(cdir, "resolv.conf"),
        "HostnamePath": os.path.join(cdir, "hostname"),
        "HostsPath": os.path.join(cdir, "hosts"),
        "LogPath": "" if (c.host_config.get("LogConfig") or {}).get("Type") == "none" else
        os.path.join(cdir, f"{c.id}-json.log"),
        "Name": "/" + c.name, "RestartCount": s.restart_count, "Driver": "overlay",
        "Platform": "linux", "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
        "HostConfig": {"LogConfig": {"Type": "json-file", "Config": {}},  # before --log-driver
                       "PortBindings": _port_bindings(c), "Runtime": "minirun-oci",
                       **c.host_config},
        "GraphDriver": {"Name": "overlay", "Data": {"LowerDir": lower, "UpperDir": upper,
                                                    "WorkDir": work, "MergedDir": merged}},
        "Mounts": [{k: v for k, v in m.items() if k in ("Type", "Name", "Source", "Destination",
                                                         "Driver", "Mode", "RW", "Propagation")}
                   for m in c.mounts],
        "Config": dict(c.config),
        "NetworkSettings": _network_settings(c),
    }


def _network_settings(c: Container) -> dict:
    """Docker's NetworkSettings: the endpoints, and the top-level fields of the default one."""
    mode = c.host_config.get("NetworkMode", "bridge")
    nets = {name: {**_NO_IPV6, **{k: v for k, v in ep.items() if k not in ("IfName", "Order")}}
            for name, ep in c.networks.items()}
    if not nets and mode in ("none", "host"):
        nets = {mode: {}}
    first = next(iter(c.networks.values()), {})
    running = c.state.running
    return {"Networks": nets, "Ports": _port_bindings(c) if running else {},
            "IPAddress": first.get("IPAddress", "") if running else "",
            "IPPrefixLen": first.get("IPPrefixLen", 0), "Gateway": first.get("Gateway", ""),
            "MacAddress": first.get("MacAddress", ""),
            **{k: first.get(k, v) for k, v in _NO_IPV6.items()},
            "SandboxKey": f"/proc/{c.state.pid}/ns/net" if c.state.pid else ""}


# Docker's endpoint fields for IPv6, as an endpoint on an IPv4-only network has them (and a
# record made before minirun had IPv6).
_NO_IPV6 = {"IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0}


def _port_bindings(c: Container) -> dict:
    """{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}, in the record's order. A port
    published on every address ("") of a container with an IPv6 address is there twice, on
    0.0.0.0 and on ::, as Docker shows a dual-stack container's."""
    first = next(iter(c.networks.values()), {})
    every = ("0.0.0.0", "::") if first.get("GlobalIPv6Address") else ("0.0.0.0",)
    return {key: [{"HostIp": ip, "HostPort": b["HostPort"]}
                  for b in binds for ip in ((b.get("HostIp"),) if b.get("HostIp") else every)]
            for key, binds in (c.host_config.get("PortBindings") or {}).items()}


def port(eng: Engine, ref: str, private_port: str | None = None) -> list[dict]:
    """The published ports, sorted: [{"PrivatePort": "80/tcp", "HostIp", "HostPort"}]; only
    those of `private_port` (80 is 80/tcp) if given -- NotFound when it has none."""
    c = eng.get(ref)
    out = [{"PrivatePort": key, **b} for key, binds in sorted(_port_bindings(c).items())
           for b in binds]
    if private_port:
        key = private_port if "/" in private_port else private_port + "/tcp"
        out = [p for p in out if p["PrivatePort"] == key]
        if not out:
            raise NotFound(f"No public port '{key}' published for {c.name}")
    return out


def list_(eng: Engine, all: bool = False, limit: int = -1,  # noqa: A002 - Docker's name
          filters: dict[str, list[str]] | None = None) -> list[dict]:
    """Docker's container rows, newest first: running ones (all of them with `all`, or the
    `limit` newest), those matching every filter (status, name, id, label, ancestor, exited,
    health: {"status": ["exited"]}). InvalidArgument for an unknown filter."""
    filters = filters or {}
    for k, values in filters.items():
        if k not in LIST_FILTERS:
            raise InvalidArgument(f"invalid filter '{k}': status, name, id, label, ancestor, "
                                  "exited or health")
        for v in values:
            if k == "health" and v not in ("starting", "healthy", "unhealthy", "none"):
                raise InvalidArgument(f"Unrecognised filter value for health: {v}")
    cs = sorted(eng.all(), key=lambda c: c.created, reverse=True)
    if limit >= 0:
        all = True
        cs = cs[:limit]
    if not all and "status" not in filters:
        cs = [c for c in cs if c.state.status in ("running", "paused", "restarting")]
    return [_row(c) for c in cs if _matches(c, filters)]


def _matches(c: Container, filters: dict[str, list[str]]) -> bool:
    """Every value of every filter must match (minirun's rule: Docker ORs one key's values)."""
    labels = c.config.get("Labels") or {}
    for k, values in filters.items():
        for v in values:
            if k == "status" and c.state.status != v:
                return False
            if k == "name" and v not in c.name:
                return False
            if k == "id" and not c.id.startswith(v):
                return False
            if k == "label":
                lk, eq, lv = v.partition("=")
                if lk not in labels or (eq and labels[lk] != lv):
                    return False
            if k == "ancestor" and v not in (c.image, c.image_id,
                                             c.image_id.split(":")[-1][:12]):
                return False
            if k == "exited" and (c.state.status != "exited" or str(c.state.exit_code) != v):
                return False
            if k == "health" and ((c.state.health or {}).get("Status") or "none") != v:
                return False
    return True


def _row(c: Container) -> dict:
    """One row of GET /containers/json (Created in seconds, as Docker has it)."""
    created = parse_time(c.created)
    running = c.state.running
    return {
        "Id": c.id, "Names": ["/" + c.name], "Image": c.image, "ImageID": c.image_id,
        "Command": " ".join([c.path, *c.args]), "Created": int(created),
        "Ports": [{"IP": b["HostIp"], "PrivatePort": int(key.split("/")[0]),
                   "PublicPort": int(b["HostPort"]), "Type": key.partition("/")[2] or "tcp"}
                  for key, binds in sorted(_port_bindings(c).items()) for b in binds]
        if running else [],
        "Labels": dict(c.config.get("Labels") or {}),
        "State": c.state.status, "Status": status_text(c),
        "HostConfig": {"NetworkMode": c.host_config.get("NetworkMode", "bridge")},
        "Mounts": [{k: v for k, v in m.items() if k in ("Type", "Name", "Source",
                                                         "Destination", "Driver", "Mode", "RW")}
                   for m in c.mounts],
    }


def status_text(c: Container, now: float | None = None) -> str:
    """The Status of a row: Up 5 seconds (healthy), Exited (3) 2 minutes ago, Created."""
    now = time.time() if now is None else now
    s = c.state
    if s.status == "running":
        up = f"Up {human_duration(now - parse_time(s.started_at))}"
        if s.health is not None:
            from .. import health  # (~0.4 ms with select: only a container with a healthcheck)

            up += f" ({health.describe(s.health)})"  # Up 5 seconds (healthy), (health: starting)
        return up
    if s.status == "paused":
        return f"Up {human_duration(now - parse_time(s.started_at))} (Paused)"
    if s.status == "restarting":
        return f"Restarting ({s.exit_code}) {human_duration(now - parse_time(s.finished_at))} ago"
    if s.status == "exited":
        return f"Exited ({s.exit_code}) {human_duration(now - parse_time(s.finished_at))} ago"
    if s.status == "dead":
        return "Dead"
    return "Created"


def parse_time(text: str) -> float:
    """An RFC 3339 time of a record (UTC, nanoseconds) in seconds since the epoch; 0 for none."""
    if not text or text.startswith("0001"):
        return 0.0
    base = datetime.fromisoformat(text[:19]).replace(tzinfo=timezone.utc).timestamp()
    return base + (float("0." + text[20:-1]) if len(text) > 20 else 0.0)


def top(eng: Engine, ref: str, ps_args: tuple[str, ...] = ()) -> dict:
    """The processes of a running container, as host PIDs, from /proc: {"Titles": [UID, PID,
    PPID, C, STIME, TTY, TIME, CMD], "Processes": [[...], ...]}. (`ps_args` are accepted; the
    columns are always these.) Conflict if it is not running."""
    # Imported here: `minirun run` imports this module and never needs the runtime's (start-up).
    from ...oci import container as oci
    from ...oci import state as st

    c = eng.get(ref)
    if not c.state.running:
        raise Conflict(f"Container {c.id} is not running")
    pids = oci.container_pids(st.load(eng.runroot, c.id))
    ticks = os.sysconf("SC_CLK_TCK")
    procs = []
    for pid in sorted(pids):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            uid = os.stat(f"/proc/{pid}").st_uid
        except OSError:
            continue  # gone meanwhile
        cpu = (int(fields[11]) + int(fields[12])) // ticks  # utime + stime
        procs.append([_user_name(uid), str(pid), fields[1], "0", "-", "?",
                      f"{cpu // 3600:02d}:{cpu // 60 % 60:02d}:{cpu % 60:02d}", cmd])
    return {"Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
            "Processes": procs}


def _user_name(uid: int) -> str:
    import pwd  # (only `top` needs it)

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def logs(eng: Engine, ref: str, follow: bool = False, tail: str | int = "all",
         timestamps: bool = False, since: str = "", until: str = ""
         ) -> Iterator[tuple[str, bytes]]:
    """A container's log as (stream, bytes) frames, stream "stdout" or "stderr": the last
    `tail` lines, those between `since` and `until` (a time, a timestamp or a duration: 10m),
    each prefixed with its time with `timestamps`; with `follow`, then what comes until the
    container stops. The container and the arguments are checked before the first frame."""
    from .. import logs as logmod  # (only `logs` reads them: not on `minirun run`'s path)

    c = eng.get(ref)
    if (c.host_config.get("LogConfig") or {}).get("Type") == "none":
        raise Unsupported("configured logging driver does not support reading")  # Docker's 501
    path = os.path.join(eng.cdir(c.id), f"{c.id}-json.log")
    try:
        n = None if tail in ("all", None) else int(tail)
        since_t = logmod.parse_since(since) if since else None
        until_t = logmod.parse_since(until) if until else None
    except ValueError as e:
        raise InvalidArgument(str(e)) from None
    size = os.path.getsize(path) if os.path.exists(path) else 0
    recs = logmod.read(path, tail=n, since=since_t)

    def frames() -> Iterator[tuple[str, bytes]]:
        def alive() -> bool:
            try:
                return eng.refresh(eng.containers.load(c.id)).state.running
            except MinirunError:
                return False

        more = logmod.follow(path, size, alive) if follow and os.path.exists(path) else ()
        for recs_ in (recs, more):
            for r in recs_:
                if until_t and r.get("time", "") > until_t:
                    continue
                text = r.get("log", "")
                if timestamps:
                    text = f"{r.get('time', '')} {text}"
                yield ("stderr" if r.get("stream") == "stderr" else "stdout",
                       text.encode(errors="surrogateescape"))

    return frames()


__all__ = ["create", "start", "stop", "kill", "restart", "remove", "pause", "unpause", "wait",
           "rename", "prune", "update", "parse_signal", "inspect", "port", "list_", "status_text", "top",
           "logs", "parse_time"]
