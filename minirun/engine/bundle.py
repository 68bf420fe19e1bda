"""An image and `run`'s flags, turned into an OCI bundle's config.json, with Docker's defaults.

This is the seam between the two halves of a container runtime: above it, images, names and
flags; below it, the runtime spec. Everything Docker decides for a container is decided here:

  process   ENTRYPOINT + CMD (run's COMMAND replaces CMD; --entrypoint replaces ENTRYPOINT and
            drops the image's CMD), the image's Env + -e/--env-file, PATH if the image has none,
            HOSTNAME, TERM=xterm with -t; WorkingDir/-w; USER/-u resolved in the image;
            Docker's 14 default capabilities (+/- --cap-add/--cap-drop; all of ours when
            --privileged); no new privileges only on request (security.py); --ulimit as
            rlimits
  root      rootfs/ (the overlay mount), read-only with --read-only
  mounts    /proc, /dev, /dev/pts, /dev/shm (64 MiB, or --shm-size), /dev/mqueue, /sys (ro), /sys/fs/cgroup (ro), the
            container's /etc/hostname, /etc/hosts, /etc/resolv.conf, then volumes, binds and
            tmpfs mounts, parents before children
  linux     new pid, ipc, uts, mount and network namespaces (each `host` mode skips one), a
            cgroup namespace on cgroup v2 hosts (Docker's default there), the cgroup
            /minirun/<id>, -m/--cpus/--pids-limit ... as linux.resources, Docker's masked and
            read-only /proc and /sys paths and its seccomp profile (none with --privileged,
            which brings the host's devices instead: security.py), --sysctl as linux.sysctl
            (namespaced ones only: kernel/sysctl.py)
"""

from __future__ import annotations

import os

from ..base.bundle_defaults import INIT_ANNOTATION, READONLY_PATHS, default_mounts
from ..errors import InvalidArgument, Unavailable
from ..kernel import sysctl
from . import devices, security, userns
from .records import Conflict, Container
from .users import ResolvedUser

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Docker's default capability set (moby oci/caps/defaults.go).
DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]

MASKED = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
          "/sys/firmware", "/sys/devices/virtual/powercap"]


class BundleError(InvalidArgument):
    """A container config that cannot become a bundle: a bad mount, environment, option mix
    (errors.InvalidArgument: 400 in the API)."""

    exit_code = 125


class HostCannot(BundleError, Unavailable):
    """A bundle this host cannot run (errors.Unavailable; a BundleError as before). Here, not
    in lifecycle.py, so that lifecycle.py need not import this module to define it."""


class NotRunning(BundleError, Conflict):
    """A bundle that needs another container running (errors.Conflict; a BundleError)."""


def command(image_cfg: dict, entrypoint: str | list[str] | None, cmd: list[str]) -> list[str]:
    """Docker's rule: ENTRYPOINT + CMD, where COMMAND replaces CMD, and --entrypoint replaces
    ENTRYPOINT and also drops the image's CMD ("" clears the entrypoint). A list is a whole
    entrypoint (the API's and compose's form); the CLI's string is one program."""
    if isinstance(entrypoint, list):
        ep = list(entrypoint)
        default_cmd: list[str] = []
    elif entrypoint is not None:
        ep = [entrypoint] if entrypoint else []
        default_cmd = []
    else:
        ep = list(image_cfg.get("Entrypoint") or [])
        default_cmd = list(image_cfg.get("Cmd") or [])
    args = ep + (list(cmd) if cmd else default_cmd)
    if not args:
        raise BundleError("no command specified: the image has no CMD or ENTRYPOINT; give one "
                          "after the image name")
    return args


def environment(image_env: list[str], extra: list[str], hostname: str, tty: bool) -> list[str]:
    """The image's Env, then -e/--env-file (later wins), PATH if missing, HOSTNAME, TERM."""
    env: dict[str, str] = {}
    for item in image_env or []:
        k, _, v = item.partition("=")
        env[k] = v
    env.setdefault("PATH", DEFAULT_PATH)
    env["HOSTNAME"] = hostname
    if tty:
        env.setdefault("TERM", "xterm")
    for item in extra:
        k, eq, v = item.partition("=")
        if not k:
            raise BundleError(f"invalid environment variable: {item!r} (use NAME=VALUE)")
        if eq:
            env[k] = v
        elif k in os.environ:  # -e NAME: take the caller's value, as docker does
            env[k] = os.environ[k]
    # Docker keeps the image's order and appends new names; HOSTNAME goes first.
    out = [f"HOSTNAME={env.pop('HOSTNAME')}"]
    out += [f"{k}={v}" for k, v in env.items()]
    return out


def capabilities(cap_add: list[str], cap_drop: list[str], privileged: bool) -> list[str]:
    from ..kernel.capnames import NAMES  # (not kernel/capabilities.py: it loads prctl)

    def norm(c: str) -> str:
        c = c.strip().upper()
        return c if c.startswith("CAP_") or c == "ALL" else "CAP_" + c

    if privileged:
        return sorted(_bounding_caps(NAMES), key=NAMES.get)
    caps = list(DEFAULT_CAPS)
    drops = [norm(c) for c in cap_drop]
    adds = [norm(c) for c in cap_add]
    for c in drops + adds:
        if c != "ALL" and c not in NAMES:
            raise BundleError(f"unknown capability: {c!r} (see capabilities(7))")
    if "ALL" in drops:
        caps = []
    else:
        caps = [c for c in caps if c not in drops]
    if "ALL" in adds:  # Docker: every capability, less the ones dropped by name
        caps = [c for c in sorted(_bounding_caps(NAMES), key=NAMES.get) if c not in drops]
    else:
        caps += [c for c in adds if c not in caps]
    return caps


def _bounding_caps(names: dict[str, int]) -> list[str]:
    """Every capability in our own bounding set: --privileged can give no more than we hold
    (this VM's root lacks CAP_SYS_RESOURCE, so "all" would fail capset)."""
    try:
        with open("/proc/self/status") as f:
            bnd = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    except (OSError, StopIteration, ValueError):
        bnd = (1 << 41) - 1
    return [n for n, bit in names.items() if bnd & (1 << bit)]


def resources(hc: dict) -> dict:
    """HostConfig limits -> linux.resources (the runtime writes the cgroup files)."""
    r: dict = {}
    mem = hc.get("Memory") or 0
    swap = hc.get("MemorySwap") or 0
    if mem:
        r["memory"] = {"limit": mem}
        if swap:
            r["memory"]["swap"] = -1 if swap == -1 else swap  # OCI swap = memory + swap, like -memory-swap
    elif swap:
        raise BundleError("--memory-swap needs --memory too (it is memory plus swap)")
    cpu: dict = {}
    if hc.get("NanoCpus"):
        cpu["period"] = 100000
        cpu["quota"] = hc["NanoCpus"] * 100000 // 10**9
    if hc.get("CpuShares"):
        cpu["shares"] = hc["CpuShares"]
    if hc.get("CpusetCpus"):
        cpu["cpus"] = hc["CpusetCpus"]
    # --cpu-quota/--cpu-period/--cpuset-mems, --memory-reservation, --oom-kill-disable,
    # --blkio-weight and the throttles (engine/limits.py checked them; docs/cgroups.md)
    if hc.get("CpuQuota"):
        cpu["quota"] = hc["CpuQuota"]
    if hc.get("CpuPeriod"):
        cpu["period"] = hc["CpuPeriod"]
    if hc.get("CpusetMems"):
        cpu["mems"] = hc["CpusetMems"]
    if hc.get("MemoryReservation"):
        r.setdefault("memory", {})["reservation"] = hc["MemoryReservation"]
    if hc.get("OomKillDisable"):
        r.setdefault("memory", {})["disableOOMKiller"] = True
    blkio = _block_io(hc)
    if blkio:
        r["blockIO"] = blkio
    if cpu:
        r["cpu"] = cpu
    if hc.get("PidsLimit"):
        r["pids"] = {"limit": hc["PidsLimit"]}
    if hc.get("Privileged"):
        r["devices"] = [{"allow": True, "access": "rwm"}]
    return r


# HostConfig's throttle lists -> linux.resources.blockIO's (v1 blkio.throttle.*, v2 io.max)
THROTTLES = (("BlkioDeviceReadBps", "throttleReadBpsDevice"),
             ("BlkioDeviceWriteBps", "throttleWriteBpsDevice"),
             ("BlkioDeviceReadIOps", "throttleReadIOPSDevice"),
             ("BlkioDeviceWriteIOps", "throttleWriteIOPSDevice"))


def _block_io(hc: dict) -> dict:
    """--blkio-weight and --device-{read,write}-{bps,iops}: the kernel names a disk by its
    major:minor, so each path is looked up on the host now (as Docker does at each start)."""
    out: dict = {}
    if hc.get("BlkioWeight"):
        out["weight"] = hc["BlkioWeight"]
    for key, oci_key in THROTTLES:
        for t in hc.get(key) or []:
            major, minor = devices.block_device(t["Path"])
            out.setdefault(oci_key, []).append({"major": major, "minor": minor,
                                                "rate": t["Rate"]})
    return out


# --ulimit's names (Docker's, from go-units ulimit.go) and the rlimit each sets.
ULIMITS = {"as": "RLIMIT_AS", "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA",
           "fsize": "RLIMIT_FSIZE", "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK",
           "msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE",
           "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO",
           "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK"}
UNLIMITED = 2**64 - 1  # RLIM_INFINITY; Docker's -1


def ulimit(u: dict) -> dict:
    """A HostConfig.Ulimits entry {"Name", "Soft", "Hard"}, checked: a known name, soft <= hard
    (the kernel refuses setrlimit otherwise), -1 for unlimited."""
    name, soft, hard = u.get("Name"), u.get("Soft"), u.get("Hard")
    if name not in ULIMITS:
        raise InvalidArgument(f"invalid ulimit {name!r}: use one of {', '.join(sorted(ULIMITS))}")
    for v in (soft, hard):
        if not isinstance(v, int) or isinstance(v, bool) or v < -1:
            raise InvalidArgument(f"invalid ulimit {name}: {v!r} is not a number (or -1)")
    if hard != -1 and (soft == -1 or soft > hard):
        raise InvalidArgument(f"invalid ulimit {name}: soft limit {soft} is above the hard "
                              f"limit {hard}")
    return {"Name": name, "Soft": soft, "Hard": hard}


def parse_ulimit(text: str) -> dict:
    """--ulimit NAME=SOFT[:HARD] (HARD defaults to SOFT) -> a HostConfig.Ulimits entry."""
    name, sep, values = text.partition("=")
    soft, _, hard = values.partition(":")
    try:
        s = int(soft)
        h = int(hard) if hard else s
    except ValueError:
        raise InvalidArgument(f"invalid --ulimit {text!r}: use NAME=SOFT[:HARD], e.g. "
                              "nofile=1024:2048") from None
    if not sep:
        raise InvalidArgument(f"invalid --ulimit {text!r}: use NAME=SOFT[:HARD]")
    return ulimit({"Name": name, "Soft": s, "Hard": h})


def check_sysctls(hc: dict) -> None:
    """Docker's rule (and runc's): only a sysctl the container's own namespace owns, and only
    while it has that namespace (no net.* with --network host)."""
    modes = {"ipc": hc.get("IpcMode"), "network": hc.get("NetworkMode"), "uts": hc.get("UTSMode")}
    for key in hc.get("Sysctls") or {}:
        ns = sysctl.namespace_of(key)
        if ns is None:
            raise InvalidArgument(f"sysctl {key} is not namespaced: setting it would change the "
                                  "host (allowed: net.*, kernel.msg*/sem/shm*, fs.mqueue.*)")
        if modes[ns] == "host":
            flag = {"ipc": "--ipc", "network": "--network", "uts": "--uts"}[ns]
            raise InvalidArgument(f"sysctl {key} belongs to the {ns} namespace, which "
                                  f"{flag} host shares with the host: drop one of the two")


def exposed_ports(specs: list[str]) -> dict:
    """--expose PORT[-PORT][/PROTO] -> Config.ExposedPorts keys ("80/tcp": {})."""
    out: dict = {}
    for spec in specs:
        ports, _, proto = str(spec).partition("/")
        proto = proto or "tcp"
        first, _, last = ports.partition("-")
        try:
            lo, hi = int(first), int(last or first)
        except ValueError:
            lo = hi = -1
        if proto not in ("tcp", "udp", "sctp") or not 0 < lo <= hi <= 65535:
            raise InvalidArgument(f"invalid --expose {spec!r}: use PORT[-PORT][/tcp|udp|sctp]")
        for p in range(lo, hi + 1):
            out[f"{p}/{proto}"] = {}
    return out


def _mount_sort_key(m: dict) -> int:
    return os.path.normpath(m["destination"]).count("/")


def oci_config(c: Container, cdir: str, user: ResolvedUser, cgroup_v2: bool,
               netns_path: str | None = None, etc_dir: str | None = None) -> dict:
    """The config.json for container `c`, whose bundle is its own directory `cdir`.

    netns_path: join that network namespace (--network container:X), whose container's
    /etc/hosts and resolv.conf (in etc_dir) it shares too."""
    cfg, hc = c.config, c.host_config
    privileged = bool(hc.get("Privileged"))
    maps = hc.get("IDMappings")
    caps = capabilities(hc.get("CapAdd") or [], hc.get("CapDrop") or [], privileged)
    process = {
        "terminal": bool(cfg.get("Tty")),
        "user": {"uid": user.uid, "gid": user.gid, **({"additionalGids": user.additional_gids}
                                                       if user.additional_gids else {})},
        "args": [c.path, *c.args],
        "env": list(cfg.get("Env") or []),
        "cwd": cfg.get("WorkingDir") or "/",
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": security.no_new_privileges(hc),
    }
    if not any(e.startswith("HOME=") for e in process["env"]):
        process["env"].append(f"HOME={user.home}")
    if hc.get("Ulimits"):
        process["rlimits"] = [{"type": ULIMITS[u["Name"]],
                               "soft": UNLIMITED if u["Soft"] == -1 else u["Soft"],
                               "hard": UNLIMITED if u["Hard"] == -1 else u["Hard"]}
                              for u in hc["Ulimits"]]
    # Docker's: /proc nosuid,noexec,nodev; /sys writable only for a privileged container.
    mounts = default_mounts(proc_options=("nosuid", "noexec", "nodev"), sys_readonly=not privileged)
    if hc.get("ShmSize"):
        for m in mounts:
            if m["destination"] == "/dev/shm":
                m["options"] = [o for o in m["options"] if not o.startswith("size=")] + \
                    [f"size={hc['ShmSize']}"]
    for name in ("hostname", "hosts", "resolv.conf"):
        src_dir = cdir if name == "hostname" else (etc_dir or cdir)
        mounts.append({"destination": f"/etc/{name}", "type": "bind",
                       "source": os.path.join(src_dir, name),
                       "options": ["rbind", "rprivate"]})
    user_mounts = []
    for m in c.mounts:
        opts = ["rbind"] + (["ro"] if not m.get("RW", True) else []) + ["rprivate"]
        if m["Type"] == "tmpfs":
            user_mounts.append({"destination": m["Destination"], "type": "tmpfs",
                                "source": "tmpfs",
                                "options": ["nosuid", "nodev", "noexec"] + m.get("Options", [])})
        else:
            entry = {"destination": m["Destination"], "type": "bind", "source": m["Source"],
                     "options": opts}
            if maps and m["Type"] == "volume":
                # A volume belongs to the container's root, seen through an idmapped mount (as
                # Docker does, bind mounts of host paths are left as they are).
                entry["uidMappings"] = userns.oci_maps(maps["UidMap"])
                entry["gidMappings"] = userns.oci_maps(maps["GidMap"])
            user_mounts.append(entry)
    mounts += sorted(user_mounts, key=_mount_sort_key)

    namespaces = [{"type": "mount"}]
    for ns, mode_key in (("pid", "PidMode"), ("ipc", "IpcMode"), ("uts", "UTSMode")):
        if hc.get(mode_key) != "host":
            namespaces.append({"type": ns})
    if netns_path:
        namespaces.append({"type": "network", "path": netns_path})
    elif hc.get("NetworkMode") != "host":
        namespaces.append({"type": "network"})
    # --cgroupns (create recorded Docker's default for this host: private on v2, host on v1)
    cgroupns = hc.get("CgroupnsMode") or ("private" if cgroup_v2 else "host")
    if cgroupns == "private":
        namespaces.append({"type": "cgroup"})
    linux = {
        "namespaces": namespaces,
        # --cgroup-parent: Docker's filepath.Join(parent, id); relative stays relative (the
        # runtime puts it under its caller's cgroup)
        "cgroupsPath": os.path.join(hc["CgroupParent"], c.id) if hc.get("CgroupParent")
        else f"/minirun/{c.id}",
        "resources": resources(hc),
    }
    # --device: the nodes, and the rules after Docker's "deny all" (engine/devices.py)
    dev_nodes, dev_rules = devices.gather(hc.get("Devices") or [])
    if not privileged:
        linux["resources"]["devices"] = devices.DEFAULT_RULES + dev_rules
    if hc.get("OomScoreAdj"):
        process["oomScoreAdj"] = hc["OomScoreAdj"]
    if hc.get("Sysctls"):
        linux["sysctl"] = dict(hc["Sysctls"])
    if maps:  # --userns=auto / --userns-remap (userns.py)
        namespaces.append({"type": "user"})
        linux["uidMappings"] = userns.oci_maps(maps["UidMap"])
        linux["gidMappings"] = userns.oci_maps(maps["GidMap"])
    if security.masks_paths(hc):
        linux["maskedPaths"] = list(MASKED)
        linux["readonlyPaths"] = list(READONLY_PATHS)
    seccomp = security.seccomp_for(hc, caps)
    if seccomp is not None:
        linux["seccomp"] = seccomp
    if privileged:
        linux["devices"] = security.host_devices()
    if dev_nodes:
        taken = {d["path"] for d in dev_nodes}
        linux["devices"] = [d for d in linux.get("devices", []) if d["path"] not in taken] + \
            dev_nodes
    annotations = {f"org.minirun.label.{k}": str(v) for k, v in (cfg.get("Labels") or {}).items()}
    annotations["org.minirun.container.name"] = c.name
    if hc.get("Init"):
        annotations[INIT_ANNOTATION] = "true"
    out = {
        "ociVersion": "1.2.0",
        "process": process,
        "root": {"path": "rootfs", "readonly": bool(hc.get("ReadonlyRootfs"))},
        "hostname": cfg.get("Hostname") or c.id[:12],
        "mounts": mounts,
        "linux": linux,
        "annotations": annotations,
    }
    if cfg.get("Domainname"):
        out["domainname"] = cfg["Domainname"]
    if hc.get("UTSMode") == "host":
        out.pop("hostname")
    return out
