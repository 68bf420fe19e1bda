"""A service of the canonical model -> the engine's RunOptions for one of its containers.

This is `docker compose`'s service-to-container translation (compose's convert.go), key by
key: what `minirun run` would be given for the same container. Keys the engine has no way to
honour are refused with their key path; keys Compose itself ignores on a single host (swarm's
deploy.placement, update_config ...) only warn. Nothing is dropped silently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..base.durations import parse_duration
from ..base.units import parse_bytes
from ..engine.lifecycle import RunOptions
from ..errors import InvalidArgument, Unsupported
from . import naming

# Service keys this module turns into RunOptions (or the orchestrator handles: build, scale,
# depends_on, profiles, pull_policy, platform). Anything else is refused by name.
HANDLED = {
    "image", "build", "command", "entrypoint", "environment", "ports", "expose", "volumes",
    "tmpfs", "networks", "network_mode", "depends_on", "healthcheck", "restart", "deploy",
    "mem_limit", "memswap_limit", "cpus", "pids_limit", "cpu_shares", "cpuset", "working_dir",
    "user", "hostname", "domainname", "cap_add", "cap_drop", "privileged", "read_only", "init",
    "stop_signal", "stop_grace_period", "labels", "extra_hosts", "dns", "dns_search",
    "sysctls", "ulimits", "security_opt", "shm_size", "tty", "stdin_open", "container_name",
    "pull_policy", "secrets", "configs", "profiles", "scale", "platform", "ipc", "pid", "uts",
    "userns_mode", "logging", "annotations", "attach", "group_add", "mac_address", "volumes_from",
}
# Keys that mean something only to Swarm or to Docker Desktop: Compose ignores them on a
# single engine too, so a warning (not an error) says so.
IGNORED_DEPLOY = ("mode", "placement", "update_config", "rollback_config", "endpoint_mode",
                  "labels")
LOG_DRIVERS = ("json-file", "local", "none", "")  # engine/logconfig.py


@dataclass
class Plan:
    """One container of a service, as the engine will be asked to make it."""

    options: RunOptions
    networks: list[tuple[str, list[str], str | None, str | None]] = field(default_factory=list)
    # ^ the networks after the first: (network name, aliases, ipv4_address, ipv6_address),
    #   joined before start
    bind_dirs: list[str] = field(default_factory=list)  # create_host_path sources to make
    warnings: list[str] = field(default_factory=list)


def check_keys(name: str, service: dict) -> list[str]:
    """Refuse what the engine cannot do; return warnings for what Compose ignores too."""
    warnings = []
    for key in service:
        if key not in HANDLED:
            raise Unsupported(f"services.{name}.{key}: not supported by minirun compose "
                              "(remove it from the service)")
    deploy = service.get("deploy") or {}
    for key in deploy:
        if key in IGNORED_DEPLOY:
            warnings.append(f"services.{name}.deploy.{key}: ignored (Swarm only)")
        elif key not in ("replicas", "resources", "restart_policy"):
            raise Unsupported(f"services.{name}.deploy.{key}: not supported by minirun compose")
    reservations = (deploy.get("resources") or {}).get("reservations")
    if reservations:
        warnings.append(f"services.{name}.deploy.resources.reservations: ignored (a single "
                        "host reserves nothing)")
    driver = (service.get("logging") or {}).get("driver", "")
    if driver not in LOG_DRIVERS:
        raise Unsupported(f"services.{name}.logging.driver: {driver} is not supported (minirun "
                          "keeps a json-file log per container, or none)")
    if service.get("platform") and service["platform"].split("/")[0] != "linux":
        raise Unsupported(f"services.{name}.platform: {service['platform']}: only linux images "
                          "run here")
    return warnings


def replicas(name: str, service: dict) -> int:
    """deploy.replicas, or scale, or 1 (Compose: they must agree when both are given)."""
    scale = service.get("scale")
    deploy = (service.get("deploy") or {}).get("replicas")
    if scale is not None and deploy is not None and scale != deploy:
        raise InvalidArgument(f"services.{name}: scale ({scale}) and deploy.replicas ({deploy}) "
                              "disagree: keep one")
    n = scale if scale is not None else deploy if deploy is not None else 1
    if n > 1 and service.get("container_name"):
        raise InvalidArgument(f"services.{name}: container_name {service['container_name']!r} "
                              f"can name one container only, and {n} replicas are asked for")
    return n


def healthcheck(hc: dict | None) -> dict | None:
    """Compose's healthcheck -> the engine's (Docker's Healthcheck: nanoseconds)."""
    if not hc:
        return None
    if hc.get("disable") or (hc.get("test") or [None])[0] == "NONE":
        return {"Test": ["NONE"]}
    out: dict = {}
    if hc.get("test"):
        out["Test"] = list(hc["test"])
    for key, docker in (("interval", "Interval"), ("timeout", "Timeout"),
                        ("start_period", "StartPeriod"), ("start_interval", "StartInterval")):
        if hc.get(key) is not None:
            out[docker] = parse_duration(str(hc[key]))
    if hc.get("retries") is not None:
        out["Retries"] = int(hc["retries"])
    return out


def restart_policy(service: dict) -> str:
    if service.get("restart"):
        return str(service["restart"])
    policy = (service.get("deploy") or {}).get("restart_policy") or {}
    condition = policy.get("condition")
    if condition in (None, "none"):
        return "no"
    if condition == "on-failure":
        n = policy.get("max_attempts")
        return f"on-failure:{n}" if n else "on-failure"
    return "always"  # "any": Swarm restarts whatever the exit; "always" is the engine's word


def _size(value: object) -> int:
    return int(value) if isinstance(value, int) else parse_bytes(str(value))


def _port(p: dict) -> str:
    """A long-syntax port -> the -p spec: [HOST_IP:][PUBLISHED:]TARGET/PROTOCOL."""
    spec = f"{p['target']}/{p.get('protocol') or 'tcp'}"
    published = str(p.get("published") or "")
    if published:
        spec = f"{published}:{spec}"
    if p.get("host_ip"):
        spec = f"{p['host_ip']}:{spec if published else ':' + spec}"
    return spec


def _mount(v: dict, model: dict, project: str, where: str,
           reuse: dict[str, str]) -> tuple[str, str]:
    """A long-syntax volume -> ("volume", -v spec) or ("mount", --mount spec). `reuse`: the
    anonymous volumes of the container this one replaces, by target."""
    kind, target = v["type"], v["target"]
    ro = bool(v.get("read_only"))
    if kind == "volume":
        source = v.get("source") or ""
        if source:
            source = ((model.get("volumes") or {}).get(source) or {}).get("name") or source
        else:
            source = reuse.pop(target, "")
        spec = f"type=volume,target={target}" + (f",source={source}" if source else "")
        return "mount", spec + (",readonly" if ro else "")
    if kind == "bind":
        spec = f"type=bind,source={v['source']},target={target}"
        propagation = (v.get("bind") or {}).get("propagation")
        if propagation:
            spec += f",bind-propagation={propagation}"
        return "mount", spec + (",readonly" if ro else "")
    if kind == "tmpfs":
        spec = f"type=tmpfs,target={target}"
        size = (v.get("tmpfs") or {}).get("size")
        if size:
            spec += f",tmpfs-size={size}"
        mode = (v.get("tmpfs") or {}).get("mode")
        if mode:
            spec += f",tmpfs-mode={mode:o}" if isinstance(mode, int) else f",tmpfs-mode={mode}"
        return "mount", spec + (",readonly" if ro else "")
    raise Unsupported(f"{where}: volume type {kind} is not supported (bind, volume or tmpfs)")


def _file_mounts(kind: str, refs: list, model: dict, name: str) -> list[str]:
    """secrets and configs: their files bound read-only at /run/secrets/NAME or /NAME."""
    out = []
    for i, ref in enumerate(refs or []):
        source = ref["source"]
        top = (model.get(kind) or {}).get(source) or {}
        path = top.get("file")
        if not path:
            raise Unsupported(f"services.{name}.{kind}[{i}]: {kind[:-1]} {source} is not a file "
                              f"(minirun compose mounts file-based {kind} only)")
        target = ref.get("target") or source
        if not target.startswith("/"):
            target = ("/run/secrets/" if kind == "secrets" else "/") + target
        out.append(f"type=bind,source={path},target={target},readonly")
    return out


def _volumes_from(project: str, model: dict, where: str, sources: list[str]) -> list[str]:
    """volumes_from: SERVICE[:ro|rw] (that service's first container, as Compose takes it) or
    container:NAME[:ro|rw] -> --volumes-from CONTAINER[:ro|rw]."""
    out = []
    for src in sources:
        if src.startswith("container:"):
            out.append(src[len("container:"):])
            continue
        service, _, mode = src.partition(":")
        other = (model.get("services") or {}).get(service)
        if other is None:
            raise InvalidArgument(f"{where}.volumes_from: {src}: no service {service} in this "
                                  "project (use container:NAME for a container outside it)")
        cname = other.get("container_name") or naming.container_name(project, service, 1)
        out.append(cname + (f":{mode}" if mode else ""))
    return out


def plan(project: str, model: dict, name: str, number: int, image: str, *,
         config_hash: str = "", image_id: str = "", oneoff: bool = False,
         container_name: str | None = None, labels: dict | None = None,
         network_mode_container: str | None = None,
         anonymous_volumes: dict[str, str] | None = None, use_aliases: bool = False) -> Plan:
    """RunOptions for container `number` of service `name`.

    image: the reference to create it from; network_mode_container: the container that
    `network_mode: service:X` resolves to (the orchestrator knows it); anonymous_volumes: the
    anonymous volumes (target -> volume name) of the container this one replaces, which it
    takes over, as Compose does on a recreate (the image's VOLUMEs included)."""
    svc = model["services"][name]
    where = f"services.{name}"
    warnings = check_keys(name, svc)
    cname = container_name or svc.get("container_name") or naming.container_name(project, name, number)
    all_labels = {**(svc.get("labels") or {}), **(labels or {}),
                  naming.PROJECT: project, naming.SERVICE: name,
                  naming.NUMBER: str(number), naming.ONEOFF: "True" if oneoff else "False",
                  naming.CONFIG_HASH: config_hash, naming.VERSION: naming.COMPOSE_VERSION}
    if image_id:
        all_labels[naming.IMAGE] = image_id
    # A value the loader could not resolve (`- NAME` with NAME unset) stays unset, as Compose
    # leaves it: not handed on as `-e NAME`, which would read minirun's own environment.
    env = [f"{k}={v}" for k, v in (svc.get("environment") or {}).items() if v is not None]
    opts = RunOptions(image=image, name=cname, labels=all_labels, env=env,
                      command=list(svc.get("command") or []))
    if svc.get("entrypoint") is not None:
        opts.entrypoint = list(svc["entrypoint"])
    opts.tty = bool(svc.get("tty"))
    opts.interactive = bool(svc.get("stdin_open"))
    opts.workdir = svc.get("working_dir") or ""
    opts.user = str(svc["user"]) if svc.get("user") is not None else None
    opts.hostname = svc.get("hostname") or ""
    opts.domainname = svc.get("domainname") or ""
    opts.read_only = bool(svc.get("read_only"))
    opts.init = bool(svc.get("init"))
    opts.privileged = bool(svc.get("privileged"))
    opts.cap_add = list(svc.get("cap_add") or [])
    opts.cap_drop = list(svc.get("cap_drop") or [])
    opts.security_opt = list(svc.get("security_opt") or [])
    opts.stop_signal = svc.get("stop_signal") or ""
    if svc.get("stop_grace_period") is not None:
        opts.stop_timeout = max(0, parse_duration(str(svc["stop_grace_period"])) // 10**9)
    opts.restart = "no" if oneoff else restart_policy(svc)
    opts.dns = list(svc.get("dns") or [])
    opts.dns_search = list(svc.get("dns_search") or [])
    opts.add_hosts = [h.replace("=", ":", 1) if "=" in h else h for h in svc.get("extra_hosts") or []]
    opts.sysctls = {k: str(v) for k, v in (svc.get("sysctls") or {}).items()}
    opts.ulimits = [{"Name": k, "Soft": int(v["soft"]), "Hard": int(v["hard"])}
                    for k, v in (svc.get("ulimits") or {}).items()]
    if svc.get("shm_size") is not None:
        opts.shm_size = _size(svc["shm_size"])
    opts.healthcheck = healthcheck(svc.get("healthcheck"))
    logging = svc.get("logging") or {}  # checked by the engine as --log-driver/--log-opt
    opts.log_driver = logging.get("driver") or ""
    opts.log_opts = {str(k): str(v) for k, v in (logging.get("options") or {}).items()}
    opts.volumes_from = _volumes_from(project, model, where, svc.get("volumes_from") or [])
    opts.group_add = [str(g) for g in svc.get("group_add") or []]
    opts.mac_address = str(svc.get("mac_address") or "")
    for key, attr in (("ipc", "ipc_mode"), ("pid", "pid_mode"), ("uts", "uts_mode")):
        value = svc.get(key)
        if value and value not in ("host", "private", "shareable"):
            raise Unsupported(f"{where}.{key}: {value}: only host or private is supported")
        setattr(opts, attr, "host" if value == "host" else "")
    if svc.get("userns_mode"):
        opts.userns = str(svc["userns_mode"])

    # Resources: deploy.resources.limits, or the short keys (Compose: they must agree).
    limits = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    memory = limits.get("memory", svc.get("mem_limit"))
    if memory is not None:
        opts.memory = _size(memory)
    if svc.get("memswap_limit") is not None:
        opts.memory_swap = -1 if svc["memswap_limit"] in (-1, "-1") else _size(svc["memswap_limit"])
    cpus = limits.get("cpus", svc.get("cpus"))
    if cpus is not None:
        opts.nano_cpus = int(float(cpus) * 1e9)
    pids = limits.get("pids", svc.get("pids_limit"))
    if pids is not None:
        opts.pids_limit = int(pids)
    if svc.get("cpu_shares") is not None:
        opts.cpu_shares = int(svc["cpu_shares"])
    if svc.get("cpuset"):
        opts.cpuset_cpus = str(svc["cpuset"])

    # Files: volumes, tmpfs, secrets, configs.
    p = Plan(options=opts, warnings=warnings)
    reuse = dict(anonymous_volumes or {})
    for i, v in enumerate(svc.get("volumes") or []):
        kind, spec = _mount(v, model, project, f"{where}.volumes[{i}]", reuse)
        (opts.volumes if kind == "volume" else opts.mounts).append(spec)
        if v["type"] == "bind" and (v.get("bind") or {}).get("create_host_path") and \
                not os.path.exists(v["source"]):
            p.bind_dirs.append(v["source"])
    for target, volume in sorted(reuse.items()):  # the image's VOLUMEs, kept too
        opts.mounts.append(f"type=volume,target={target},source={volume}")
    opts.tmpfs = [str(t) for t in svc.get("tmpfs") or []]
    opts.mounts += _file_mounts("secrets", svc.get("secrets"), model, name)
    opts.mounts += _file_mounts("configs", svc.get("configs"), model, name)

    # Network: network_mode, or the service's networks (the first at create, then the rest).
    mode = svc.get("network_mode")
    if mode:
        if mode.startswith("service:"):
            if not network_mode_container:
                raise InvalidArgument(f"{where}.network_mode: {mode}: that service has no "
                                      "container to share a network namespace with")
            opts.network = f"container:{network_mode_container}"
        elif mode in ("host", "none", "bridge") or mode.startswith("container:"):
            opts.network = mode
        else:
            raise Unsupported(f"{where}.network_mode: {mode}: use host, none, bridge, "
                              "service:NAME or container:NAME")
    else:
        nets = svc.get("networks") or {"default": None}
        for i, (key, cfg) in enumerate(sorted(nets.items(), key=_network_order)):
            net = ((model.get("networks") or {}).get(key) or {}).get("name") or key
            cfg = cfg or {}
            # A one-off (`compose run`) does not answer to the service's names, or clients
            # would reach it instead of the service; unless --use-aliases asks for that.
            aliases = [name, *(cfg.get("aliases") or [])] if not oneoff or use_aliases else []
            ip, ip6 = cfg.get("ipv4_address"), cfg.get("ipv6_address")
            if i == 0:
                opts.network, opts.aliases, opts.ip, opts.ip6 = net, aliases, ip, ip6
            else:
                p.networks.append((net, aliases, ip, ip6))
    if not oneoff:
        opts.publish = [_port(port) for port in svc.get("ports") or []]
    opts.expose = [str(e) for e in svc.get("expose") or []]
    return p


def _network_order(item: tuple[str, dict | None]) -> tuple[int, str]:
    """Compose joins networks by priority (highest first), then by name."""
    key, cfg = item
    return (-int((cfg or {}).get("priority") or 0), key)
