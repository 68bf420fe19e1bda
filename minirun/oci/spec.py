"""config.json (OCI runtime-spec 1.x, Linux) as dataclasses, with validation.

Rules from the spec: unknown properties are ignored; invalid values are errors. Every error
names the field (`process.args`, `mounts[3].destination` ...) so the fix is obvious.
"""

from __future__ import annotations

import os

from .. import fastjson
from ..base.bundle_defaults import READONLY_PATHS, default_mounts
from ..errors import ConfigError
from ..kernel import capabilities, process
from ..kernel.devices import Device  # linux.devices entries: the kernel layer's own record
from ..kernel.namespaces import TYPES as NS_TYPES
from ..record import dataclass, field

# JSON values not yet checked are `object` (no `typing.Any`: `import typing` costs ~7 ms).

HOOK_NAMES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop")
PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable",
                "runbindable")
DEVICE_TYPES = ("c", "b", "u", "p")


@dataclass
class User:
    uid: int = 0
    gid: int = 0
    umask: int | None = None
    additional_gids: list[int] = field(default_factory=list)


@dataclass
class Rlimit:
    type: str
    soft: int
    hard: int


@dataclass
class Process:
    args: list[str]
    cwd: str = "/"
    env: list[str] = field(default_factory=list)
    terminal: bool = False
    console_size: tuple[int, int] | None = None  # (height, width)
    user: User = field(default_factory=User)
    capabilities: dict[str, list[str]] | None = None
    rlimits: list[Rlimit] = field(default_factory=list)
    no_new_privileges: bool = False
    oom_score_adj: int | None = None

    def env_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.env:
            k, _, v = item.partition("=")
            out[k] = v
        return out


@dataclass
class Mount:
    destination: str
    type: str | None = None
    source: str | None = None
    options: list[str] = field(default_factory=list)
    # An idmapped bind mount (runtime-spec 1.1): the files seen through these maps.
    uid_mappings: list[IDMap] = field(default_factory=list)
    gid_mappings: list[IDMap] = field(default_factory=list)

    @property
    def idmapped(self) -> bool:
        return bool(self.uid_mappings) or "idmap" in self.options or "ridmap" in self.options


@dataclass
class Hook:
    path: str
    args: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    timeout: int | None = None


@dataclass
class Namespace:
    type: str
    path: str | None = None


@dataclass
class IDMap:
    container_id: int
    host_id: int
    size: int


@dataclass
class Linux:
    namespaces: list[Namespace] = field(default_factory=list)
    uid_mappings: list[IDMap] = field(default_factory=list)
    gid_mappings: list[IDMap] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    cgroups_path: str = ""
    resources: dict[str, object] = field(default_factory=dict)
    sysctl: dict[str, str] = field(default_factory=dict)
    masked_paths: list[str] = field(default_factory=list)
    readonly_paths: list[str] = field(default_factory=list)
    rootfs_propagation: str = ""
    seccomp: dict[str, object] | None = None

    def ns(self, nstype: str) -> Namespace | None:
        for n in self.namespaces:
            if n.type == nstype:
                return n
        return None


@dataclass
class Spec:
    oci_version: str
    root_path: str  # absolute
    root_readonly: bool
    process: Process | None
    hostname: str | None = None
    domainname: str | None = None
    mounts: list[Mount] = field(default_factory=list)
    hooks: dict[str, list[Hook]] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    linux: Linux = field(default_factory=Linux)
    raw: dict[str, object] = field(default_factory=dict)
    # Fields accepted but not applied on this host, with why (create logs them under --debug).
    ignored: list[str] = field(default_factory=list)


# --- small typed getters that name the field on error -------------------------------------


def _obj(d: object, name: str) -> dict:
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise ConfigError(name, "must be an object")
    return d


def _list(d: object, name: str) -> list:
    if d is None:
        return []
    if not isinstance(d, list):
        raise ConfigError(name, "must be an array")
    return d


def _str(v: object, name: str, required: bool = False) -> str | None:
    if v is None:
        if required:
            raise ConfigError(name, "is required")
        return None
    if not isinstance(v, str):
        raise ConfigError(name, "must be a string")
    return v


def _int(v: object, name: str, required: bool = False, lo: int | None = None,
         hi: int | None = None) -> int | None:
    if v is None:
        if required:
            raise ConfigError(name, "is required")
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(name, "must be an integer")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ConfigError(name, f"{v} is out of range [{lo}, {hi}]")
    return v


def _bool(v: object, name: str) -> bool:
    if v is None:
        return False
    if not isinstance(v, bool):
        raise ConfigError(name, "must be true or false")
    return v


def _strs(v: object, name: str) -> list[str]:
    items = _list(v, name)
    for i, s in enumerate(items):
        if not isinstance(s, str):
            raise ConfigError(f"{name}[{i}]", "must be a string")
    return items


def _abs(v: str, name: str) -> str:
    if not v.startswith("/"):
        raise ConfigError(name, f"{v!r} must be an absolute path")
    return v


# --- parsing ------------------------------------------------------------------------------


def load(bundle: str) -> Spec:
    """Read and validate BUNDLE/config.json."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError("config.json", f"not found in bundle {bundle} (create one with "
                          "`minirun-oci spec`)") from None
    except OSError as e:
        raise ConfigError("config.json", f"cannot read {path}: {e.strerror}") from None
    try:
        raw = fastjson.loads(data)
    except (fastjson.JSONError, UnicodeDecodeError) as e:
        raise ConfigError("config.json", f"not valid JSON: {e}") from None
    return parse(raw, bundle)


def parse(raw: object, bundle: str) -> Spec:
    """Validate a decoded config.json; `bundle` resolves a relative root.path."""
    raw = _obj(raw, "config.json")
    version = _str(raw.get("ociVersion"), "ociVersion", required=True)
    major = version.split(".")[0]
    if not major.isdigit() or major != "1":
        raise ConfigError("ociVersion", f"{version!r} is not a 1.x runtime-spec version")

    root = _obj(raw.get("root"), "root")
    root_path = _str(root.get("path"), "root.path", required=True)
    root_path = os.path.normpath(os.path.join(bundle, root_path))
    if not os.path.isdir(root_path):
        raise ConfigError("root.path", f"{root_path} is not a directory")

    proc = parse_process(raw.get("process")) if raw.get("process") is not None else None
    linux = _linux(_obj(raw.get("linux"), "linux"))

    mounts = []
    for i, m in enumerate(_list(raw.get("mounts"), "mounts")):
        m = _obj(m, f"mounts[{i}]")
        dest = _str(m.get("destination"), f"mounts[{i}].destination", required=True)
        if not dest.startswith("/"):
            # runc accepts relative destinations as relative to / (with a warning); so do we.
            dest = "/" + dest
        mount = Mount(
            destination=os.path.normpath(dest),
            type=_str(m.get("type"), f"mounts[{i}].type"),
            source=_str(m.get("source"), f"mounts[{i}].source"),
            options=_strs(m.get("options"), f"mounts[{i}].options"),
            uid_mappings=_idmaps(m.get("uidMappings"), f"mounts[{i}].uidMappings"),
            gid_mappings=_idmaps(m.get("gidMappings"), f"mounts[{i}].gidMappings"))
        _check_idmapped(mount, i, linux)
        mounts.append(mount)

    hooks = parse_hooks(raw.get("hooks"))

    annotations = _obj(raw.get("annotations"), "annotations")
    for k, v in annotations.items():
        if not isinstance(v, str):
            raise ConfigError(f"annotations.{k}", "must be a string")

    if linux.ns("mount") is None and linux.ns("user") is not None:
        # Without a mount namespace the container's mounts are made in the host's, which a
        # user namespace may not touch (kernel/host_mountns.py).
        raise ConfigError("linux.namespaces", "a user namespace needs a mount namespace too: "
                          "add {\"type\": \"mount\"}")

    hostname = _str(raw.get("hostname"), "hostname")
    domainname = _str(raw.get("domainname"), "domainname")
    if (hostname or domainname) and linux.ns("uts") is None:
        raise ConfigError("hostname" if hostname else "domainname",
                          "needs a private UTS namespace: add {\"type\": \"uts\"} to linux.namespaces")

    spec = Spec(oci_version=version, root_path=root_path,
                root_readonly=_bool(root.get("readonly"), "root.readonly"), process=proc,
                hostname=hostname, domainname=domainname, mounts=mounts, hooks=hooks,
                annotations=annotations, linux=linux, raw=raw)
    if spec.linux.sysctl:
        _check_sysctl(spec)
    for where, label in (("process.selinuxLabel", (raw.get("process") or {}).get("selinuxLabel")),
                         ("linux.mountLabel", (raw.get("linux") or {}).get("mountLabel"))):
        if label:  # only reached when SELinux is off (refuse_label_if_selinux)
            spec.ignored.append(f"{where} {label!r} ignored: SELinux is not enabled on this host")
    return spec


def selinux_enabled() -> bool:
    """Is SELinux on here? libselinux's test: selinuxfs is mounted (at /sys/fs/selinux)."""
    return os.path.exists("/sys/fs/selinux/enforce")


def refuse_label_if_selinux(where: str) -> None:
    """An SELinux label (process.selinuxLabel, linux.mountLabel) on an SELinux host is refused:
    minirun does not apply labels, and running unlabelled there would pretend confinement.
    Without SELinux a label means nothing to the kernel, so it is ignored, as crun does (runc
    adds a context= mount option, which such a kernel refuses). The runtime-spec gives no rule
    for a host without the LSM."""
    if selinux_enabled():
        raise ConfigError(where, "SELinux is enabled on this host and minirun does not apply "
                          "SELinux labels; remove it")


def _check_idmapped(m: Mount, i: int, linux: Linux) -> None:
    """runtime-spec's rules for idmapped mounts: both maps or neither, bind mounts only, and a
    user namespace (an "idmap" option with no maps of its own takes the container's)."""
    where = f"mounts[{i}]"
    if bool(m.uid_mappings) != bool(m.gid_mappings):
        raise ConfigError(f"{where}.uidMappings", "needs gidMappings too (and the other way round)")
    if not m.idmapped:
        return
    if m.type not in (None, "bind", "none") and "bind" not in m.options and "rbind" not in m.options:
        raise ConfigError(where, f"only bind mounts can be idmapped, not {m.type!r}")
    if linux.ns("user") is None:
        raise ConfigError(where, "an idmapped mount needs a user namespace in linux.namespaces")
    if not m.uid_mappings:
        if not linux.uid_mappings:
            raise ConfigError(where, "the idmap option takes the container's uidMappings: "
                              "there are none")
        m.uid_mappings, m.gid_mappings = list(linux.uid_mappings), list(linux.gid_mappings)


def parse_hooks(raw_hooks: object) -> dict[str, list[Hook]]:
    """config.json's hooks object -> {phase: [Hook, ...]}."""
    hooks: dict[str, list[Hook]] = {}
    raw_hooks = _obj(raw_hooks, "hooks")
    for name in HOOK_NAMES:
        for i, h in enumerate(_list(raw_hooks.get(name), f"hooks.{name}")):
            where = f"hooks.{name}[{i}]"
            h = _obj(h, where)
            hooks.setdefault(name, []).append(Hook(
                path=_abs(_str(h.get("path"), f"{where}.path", required=True), f"{where}.path"),
                args=_strs(h.get("args"), f"{where}.args"),
                env=_strs(h.get("env"), f"{where}.env"),
                timeout=_int(h.get("timeout"), f"{where}.timeout", lo=1)))
    return hooks


def parse_process(p: object) -> Process:
    """process (from config.json, or an exec --process file)."""
    p = _obj(p, "process")
    args = _strs(p.get("args"), "process.args")
    if not args:
        raise ConfigError("process.args", "must name the program to run (at least one entry)")
    cwd = _str(p.get("cwd"), "process.cwd") or "/"
    _abs(cwd, "process.cwd")
    env = _strs(p.get("env"), "process.env")
    for i, e in enumerate(env):
        if "=" not in e:
            raise ConfigError(f"process.env[{i}]", f"{e!r} is not KEY=VALUE")

    u = _obj(p.get("user"), "process.user")
    user = User(uid=_int(u.get("uid"), "process.user.uid", lo=0, hi=2**32 - 2) or 0,
                gid=_int(u.get("gid"), "process.user.gid", lo=0, hi=2**32 - 2) or 0,
                umask=_int(u.get("umask"), "process.user.umask", lo=0, hi=0o777))
    for i, g in enumerate(_list(u.get("additionalGids"), "process.user.additionalGids")):
        user.additional_gids.append(_int(g, f"process.user.additionalGids[{i}]", lo=0))
    if u.get("username"):
        raise ConfigError("process.user.username", "is for Windows; use uid and gid")

    caps = None
    if p.get("capabilities") is not None:
        caps = {}
        c = _obj(p.get("capabilities"), "process.capabilities")
        for s in capabilities.SETS:
            names = _strs(c.get(s), f"process.capabilities.{s}")
            for n in names:
                if n not in capabilities.NAMES:
                    raise ConfigError(f"process.capabilities.{s}", f"unknown capability {n!r}")
            caps[s] = names

    rlimits, seen = [], set()
    for i, r in enumerate(_list(p.get("rlimits"), "process.rlimits")):
        r = _obj(r, f"process.rlimits[{i}]")
        t = _str(r.get("type"), f"process.rlimits[{i}].type", required=True)
        if t not in process.RLIMITS:
            raise ConfigError(f"process.rlimits[{i}].type", f"unknown resource {t!r}")
        if t in seen:
            raise ConfigError(f"process.rlimits[{i}].type", f"{t} is listed twice")
        seen.add(t)
        soft = _int(r.get("soft"), f"process.rlimits[{i}].soft", required=True, lo=0, hi=2**64 - 1)
        hard = _int(r.get("hard"), f"process.rlimits[{i}].hard", required=True, lo=0, hi=2**64 - 1)
        if soft > hard:
            raise ConfigError(f"process.rlimits[{i}]", f"soft limit {soft} exceeds hard limit {hard}")
        rlimits.append(Rlimit(t, soft, hard))

    size = None
    if p.get("consoleSize") is not None:
        cs = _obj(p.get("consoleSize"), "process.consoleSize")
        size = (_int(cs.get("height"), "process.consoleSize.height", required=True, lo=0),
                _int(cs.get("width"), "process.consoleSize.width", required=True, lo=0))

    if p.get("apparmorProfile"):
        raise ConfigError("process.apparmorProfile", "AppArmor is not supported by minirun; remove it")
    if p.get("selinuxLabel"):
        refuse_label_if_selinux("process.selinuxLabel")

    return Process(args=args, cwd=os.path.normpath(cwd), env=env,
                   terminal=_bool(p.get("terminal"), "process.terminal"), console_size=size,
                   user=user, capabilities=caps, rlimits=rlimits,
                   no_new_privileges=_bool(p.get("noNewPrivileges"), "process.noNewPrivileges"),
                   oom_score_adj=_int(p.get("oomScoreAdj"), "process.oomScoreAdj", lo=-1000, hi=1000))


def _idmaps(v: object, name: str) -> list[IDMap]:
    out = []
    for i, m in enumerate(_list(v, name)):
        m = _obj(m, f"{name}[{i}]")
        out.append(IDMap(_int(m.get("containerID"), f"{name}[{i}].containerID", required=True, lo=0),
                         _int(m.get("hostID"), f"{name}[{i}].hostID", required=True, lo=0),
                         _int(m.get("size"), f"{name}[{i}].size", required=True, lo=1)))
    return out


def _linux(lx: dict) -> Linux:
    linux = Linux()
    seen = set()
    for i, n in enumerate(_list(lx.get("namespaces"), "linux.namespaces")):
        n = _obj(n, f"linux.namespaces[{i}]")
        t = _str(n.get("type"), f"linux.namespaces[{i}].type", required=True)
        if t not in NS_TYPES:
            raise ConfigError(f"linux.namespaces[{i}].type", f"unknown namespace type {t!r}")
        if t in seen:
            raise ConfigError(f"linux.namespaces[{i}].type", f"{t} namespace is listed twice")
        seen.add(t)
        path = _str(n.get("path"), f"linux.namespaces[{i}].path")
        if path:
            _abs(path, f"linux.namespaces[{i}].path")
            if not os.path.exists(path):
                raise ConfigError(f"linux.namespaces[{i}].path", f"{path} does not exist")
        linux.namespaces.append(Namespace(t, path or None))

    linux.uid_mappings = _idmaps(lx.get("uidMappings"), "linux.uidMappings")
    linux.gid_mappings = _idmaps(lx.get("gidMappings"), "linux.gidMappings")
    userns = linux.ns("user")
    if (linux.uid_mappings or linux.gid_mappings) and userns is None:
        raise ConfigError("linux.uidMappings", "needs a user namespace in linux.namespaces")
    if userns is not None and userns.path is None and not (linux.uid_mappings and linux.gid_mappings):
        raise ConfigError("linux.uidMappings", "a new user namespace needs uidMappings and gidMappings")

    for i, d in enumerate(_list(lx.get("devices"), "linux.devices")):
        where = f"linux.devices[{i}]"
        d = _obj(d, where)
        t = _str(d.get("type"), f"{where}.type", required=True)
        if t not in DEVICE_TYPES:
            raise ConfigError(f"{where}.type", f"{t!r} is not one of c, b, u, p")
        dev = Device(type=t, path=_abs(_str(d.get("path"), f"{where}.path", required=True), f"{where}.path"),
                     major=_int(d.get("major"), f"{where}.major", required=t != "p", lo=0) or 0,
                     minor=_int(d.get("minor"), f"{where}.minor", required=t != "p", lo=0) or 0,
                     file_mode=_int(d.get("fileMode"), f"{where}.fileMode", lo=0, hi=0o7777),
                     uid=_int(d.get("uid"), f"{where}.uid", lo=0),
                     gid=_int(d.get("gid"), f"{where}.gid", lo=0))
        linux.devices.append(dev)

    linux.cgroups_path = _str(lx.get("cgroupsPath"), "linux.cgroupsPath") or ""
    linux.resources = _obj(lx.get("resources"), "linux.resources")
    sysctl = _obj(lx.get("sysctl"), "linux.sysctl")
    for k, v in sysctl.items():
        if not isinstance(v, str):
            raise ConfigError(f"linux.sysctl.{k}", "must be a string")
    linux.sysctl = sysctl
    linux.masked_paths = [_abs(p, "linux.maskedPaths") for p in _strs(lx.get("maskedPaths"), "linux.maskedPaths")]
    linux.readonly_paths = [_abs(p, "linux.readonlyPaths")
                            for p in _strs(lx.get("readonlyPaths"), "linux.readonlyPaths")]
    prop = _str(lx.get("rootfsPropagation"), "linux.rootfsPropagation") or ""
    if prop and prop not in PROPAGATIONS:
        raise ConfigError("linux.rootfsPropagation", f"{prop!r} is not one of {', '.join(PROPAGATIONS)}")
    linux.rootfs_propagation = prop
    if lx.get("seccomp") is not None:
        linux.seccomp = _obj(lx.get("seccomp"), "linux.seccomp")
    if lx.get("mountLabel"):
        refuse_label_if_selinux("linux.mountLabel")
    if lx.get("intelRdt"):
        raise ConfigError("linux.intelRdt", "Intel RDT is not supported by minirun; remove it")
    if lx.get("personality"):
        pers = _obj(lx.get("personality"), "linux.personality")
        if pers.get("domain") not in ("LINUX", None):
            raise ConfigError("linux.personality.domain", "only LINUX is supported")
    return linux


def _check_sysctl(spec: Spec) -> None:
    """Only a sysctl the container's own namespace owns (kernel/sysctl.py; runc's rules)."""
    from ..kernel import sysctl  # lazy: only a spec with linux.sysctl (start-up budget)

    for key in spec.linux.sysctl:
        name = f"linux.sysctl.{key}"
        ns = sysctl.namespace_of(key)
        if ns is None:
            raise ConfigError(name, "is not namespaced: setting it would change the host")
        if spec.linux.ns(ns) is None:
            label = {"ipc": "IPC", "network": "network", "uts": "UTS"}[ns]
            raise ConfigError(name, f"needs a private {label} namespace")


def default_config(rootless: bool = False) -> dict[str, object]:
    """What `minirun-oci spec` writes: runc's default config.json, hostname "minirun".

    `rootless` adapts it for an unprivileged user (runc spec --rootless): a user namespace
    mapping the caller to root, no network namespace (it could not be configured), the host's
    /sys bound read-only (sysfs needs a network namespace we own), no gid=5 on devpts (that
    group is not mapped) and no resource limits (cgroups are not ours to write).
    """
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    cfg: dict[str, object] = {
        "ociVersion": "1.2.0",
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm"],
            "cwd": "/",
            "capabilities": {s: list(caps) for s in ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "minirun",
        "mounts": default_mounts(),  # runc spec's: /proc without options, /sys read-only
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": list(READONLY_PATHS),
        },
    }
    if rootless:
        lx = cfg["linux"]
        lx["namespaces"] = [n for n in lx["namespaces"] if n["type"] != "network"] + [{"type": "user"}]
        lx["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
        lx["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
        del lx["resources"]
        for m in cfg["mounts"]:
            if m["type"] == "sysfs":
                m.update(type="none", source="/sys",
                         options=["rbind", "nosuid", "noexec", "nodev", "ro"])
            if m["type"] == "devpts":
                m["options"] = [o for o in m["options"] if o != "gid=5"]
    return cfg
