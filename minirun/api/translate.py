"""Docker's container create body (Config + HostConfig + NetworkingConfig) -> RunOptions.

The same RunOptions the CLI builds from `minirun run`'s flags: the body is the docker CLI's
flags after it parsed them, so each field has a flag it came from (PortBindings is -p, Binds
is -v, Mounts is --mount ...). A field minirun cannot honour is refused by name, 400, rather
than dropped: a client must not believe it got what it did not.
"""

from __future__ import annotations

from ..engine.lifecycle import RunOptions
from ..errors import InvalidArgument

# HostConfig fields that carry no request when empty/zero, but that minirun cannot honour
# otherwise (a non-default value is refused).
UNHONOURED = ("BlkioWeightDevice", "CpuRealtimePeriod", "CpuRealtimeRuntime",
              "DeviceCgroupRules", "DeviceRequests", "KernelMemoryTCP",
              "Links", "CpuCount",
              "CpuPercent", "IOMaximumIOps", "IOMaximumBandwidth", "StorageOpt", "Runtime",
              "Isolation", "MaskedPaths", "ReadonlyPaths", "Annotations")


def _restart(policy: dict | None) -> str:
    name = (policy or {}).get("Name") or "no"
    if name == "on-failure" and (policy or {}).get("MaximumRetryCount"):
        return f"on-failure:{policy['MaximumRetryCount']}"
    return name


def _mount(m: dict) -> str:
    """A HostConfig.Mounts entry -> the --mount spec."""
    kind = (m.get("Type") or "volume").lower()
    spec = f"type={kind},target={m.get('Target') or ''}"
    if m.get("Source"):
        spec += f",source={m['Source']}"
    if m.get("ReadOnly"):
        spec += ",readonly"
    bind = m.get("BindOptions") or {}
    if bind.get("Propagation"):
        spec += f",bind-propagation={bind['Propagation']}"
    tmpfs = m.get("TmpfsOptions") or {}
    if tmpfs.get("SizeBytes"):
        spec += f",tmpfs-size={tmpfs['SizeBytes']}"
    if tmpfs.get("Mode"):
        spec += f",tmpfs-mode={tmpfs['Mode']:o}"
    return spec


def _ports(bindings: dict | None) -> list[str]:
    """PortBindings {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]} -> -p specs."""
    out = []
    for key, binds in (bindings or {}).items():
        port, _, proto = key.partition("/")
        target = f"{port}/{proto or 'tcp'}"
        for b in binds or [{}]:
            ip, host_port = (b or {}).get("HostIp") or "", (b or {}).get("HostPort") or ""
            if ip:
                out.append(f"[{ip}]:{host_port}:{target}" if ":" in ip else
                           f"{ip}:{host_port}:{target}")
            elif host_port:
                out.append(f"{host_port}:{target}")
            else:
                out.append(target)
    return out


def _resources(hc: dict, o: RunOptions) -> None:
    """The resource fields of HostConfig (--cpu-quota ... --device, --cgroup-parent): already
    in Docker's shapes; the engine checks the values (engine/limits.py) as dockerd does."""
    from ..engine import devices  # (the engine's --device rules)

    o.cpu_quota = int(hc.get("CpuQuota") or 0)
    o.cpu_period = int(hc.get("CpuPeriod") or 0)
    o.cpuset_mems = hc.get("CpusetMems") or ""
    o.memory_reservation = int(hc.get("MemoryReservation") or 0)
    o.oom_kill_disable = bool(hc.get("OomKillDisable"))
    o.oom_score_adj = int(hc.get("OomScoreAdj") or 0)
    o.blkio_weight = int(hc.get("BlkioWeight") or 0)
    o.devices = [devices.check(d) for d in hc.get("Devices") or []]
    for key, attr in (("BlkioDeviceReadBps", "device_read_bps"),
                      ("BlkioDeviceWriteBps", "device_write_bps"),
                      ("BlkioDeviceReadIOps", "device_read_iops"),
                      ("BlkioDeviceWriteIOps", "device_write_iops")):
        entries = hc.get(key) or []
        for t in entries:
            if not isinstance(t, dict) or not t.get("Path") or not isinstance(t.get("Rate"), int):
                raise InvalidArgument(f"HostConfig.{key}: entries are {{\"Path\", \"Rate\"}}")
        setattr(o, attr, [{"Path": t["Path"], "Rate": t["Rate"]} for t in entries])
    o.cgroup_parent = hc.get("CgroupParent") or ""
    o.cgroupns = hc.get("CgroupnsMode") or ""


def run_options(body: dict, name: str = "") -> RunOptions:
    if not isinstance(body, dict):
        raise InvalidArgument("container config: a JSON object is expected")
    image = body.get("Image")
    if not image:
        raise InvalidArgument("Config.Image: no image given")
    hc = body.get("HostConfig") or {}
    for key in UNHONOURED:
        if hc.get(key):
            raise InvalidArgument(f"HostConfig.{key}: not supported by minirun")
    o = RunOptions(image=image, name=name)
    o.command = list(body.get("Cmd") or [])
    if body.get("Entrypoint") is not None:
        ep = body["Entrypoint"]
        o.entrypoint = list(ep) if isinstance(ep, list) else [ep]
    o.env = list(body.get("Env") or [])
    o.tty = bool(body.get("Tty"))
    o.interactive = bool(body.get("OpenStdin"))
    o.workdir = body.get("WorkingDir") or ""
    o.user = body.get("User") or None
    o.hostname = body.get("Hostname") or ""
    o.domainname = body.get("Domainname") or ""
    o.labels = dict(body.get("Labels") or {})
    o.stop_signal = body.get("StopSignal") or ""
    o.stop_timeout = body.get("StopTimeout")
    o.expose = list((body.get("ExposedPorts") or {}).keys())
    if body.get("Healthcheck"):
        o.healthcheck = dict(body["Healthcheck"])
    o.mounts = [_mount(m) for m in hc.get("Mounts") or []]
    o.tmpfs = [f"{path}:{opts}" if opts else path for path, opts in (hc.get("Tmpfs") or {}).items()]
    # Config.Volumes: anonymous volumes, but not where a bind, mount or tmpfs goes already
    # (docker-py lists its binds' targets there too; dockerd skips those the same way).
    taken = {b.split(":")[1] for b in hc.get("Binds") or [] if b.count(":") >= 1} | \
        {m.get("Target") for m in hc.get("Mounts") or []} | set(hc.get("Tmpfs") or {})
    o.volumes = list(hc.get("Binds") or []) + [
        v for v in (body.get("Volumes") or {}) if v not in taken]
    o.publish = _ports(hc.get("PortBindings"))
    o.publish_all = bool(hc.get("PublishAllPorts"))
    o.restart = _restart(hc.get("RestartPolicy"))
    o.auto_remove = bool(hc.get("AutoRemove"))
    o.memory = int(hc.get("Memory") or 0)
    o.memory_swap = int(hc.get("MemorySwap") or 0)
    o.nano_cpus = int(hc.get("NanoCpus") or 0)
    _resources(hc, o)
    o.cpu_shares = int(hc.get("CpuShares") or 0)
    o.cpuset_cpus = hc.get("CpusetCpus") or ""
    o.pids_limit = int(hc.get("PidsLimit") or 0) if (hc.get("PidsLimit") or 0) > 0 else 0
    o.cap_add = list(hc.get("CapAdd") or [])
    o.cap_drop = list(hc.get("CapDrop") or [])
    o.privileged = bool(hc.get("Privileged"))
    o.security_opt = list(hc.get("SecurityOpt") or [])
    o.read_only = bool(hc.get("ReadonlyRootfs"))
    o.init = bool(hc.get("Init"))
    o.dns = list(hc.get("Dns") or [])
    o.dns_search = list(hc.get("DnsSearch") or [])
    o.add_hosts = list(hc.get("ExtraHosts") or [])
    o.ulimits = [dict(u) for u in hc.get("Ulimits") or []]
    o.sysctls = dict(hc.get("Sysctls") or {})
    o.shm_size = int(hc.get("ShmSize") or 0)
    for key, attr in (("PidMode", "pid_mode"), ("IpcMode", "ipc_mode"), ("UTSMode", "uts_mode")):
        value = hc.get(key) or ""
        if value not in ("", "host", "private", "shareable"):
            raise InvalidArgument(f"HostConfig.{key}: {value}: only host or private")
        setattr(o, attr, "host" if value == "host" else "")
    if hc.get("UsernsMode"):
        o.userns = hc["UsernsMode"]
    mode = hc.get("NetworkMode") or "default"
    o.network = "bridge" if mode == "default" else mode
    endpoints = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
    if len(endpoints) > 1:
        raise InvalidArgument("NetworkingConfig: one network at create (connect the others "
                              "before start, as the docker CLI does)")
    for net, ep in endpoints.items():
        if mode in ("default", "bridge") and net not in ("bridge", "default"):
            o.network = net
        ep = ep or {}
        o.aliases = list(ep.get("Aliases") or [])
        o.ip = ((ep.get("IPAMConfig") or {}).get("IPv4Address")) or None
        o.ip6 = ((ep.get("IPAMConfig") or {}).get("IPv6Address")) or None
    _process_and_logging(body, hc, endpoints, o)
    return o


def _process_and_logging(body: dict, hc: dict, endpoints: dict, o: RunOptions) -> None:
    """GroupAdd, LogConfig, VolumesFrom and the MAC address (Config.MacAddress from API
    clients before 1.44, the endpoint's from later ones: docker CLI 28 sends both ways). The
    engine checks them as for the CLI's flags (engine/logconfig.py, lifecycle._mac_address)."""
    o.group_add = [str(g) for g in hc.get("GroupAdd") or []]
    log = hc.get("LogConfig") or {}
    if not isinstance(log, dict):
        raise InvalidArgument("HostConfig.LogConfig: {\"Type\", \"Config\"} is expected")
    o.log_driver = log.get("Type") or ""
    o.log_opts = dict(log.get("Config") or {})
    o.volumes_from = list(hc.get("VolumesFrom") or [])
    o.mac_address = body.get("MacAddress") or next(
        (ep.get("MacAddress") for ep in endpoints.values() if (ep or {}).get("MacAddress")), "")
