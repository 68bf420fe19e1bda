"""The container verbs as the CLI calls them: create, start, stop, kill, rm, wait, pause ...

`create` makes the record, the writable layer and the bundle; `start` hands the container to a
new monitor (monitor.py), which makes it with the OCI runtime and stays with it until it exits.
The other verbs act through the OCI runtime directly (kill, pause) and read what the monitor
recorded. The runtime's state lives under --runroot (default /run/minirun: `minirun-oci list`
shows these containers too); the container ID is the runtime's ID.
"""

from __future__ import annotations

import os
import time

# What ps, inspect and logs need (reading records) is imported here; what only create, prepare
# and stop use (bundle.py and what it brings, health, security, userns, users, mounts,
# kernel/rootfs.py, signal, json: ~5 ms of each of those commands) is imported in the methods
# that use it.
from ..base.times import ZERO_TIME, now
from ..errors import InvalidArgument, MinirunError
from ..kernel.process import start_time
from ..record import dataclass, field
from . import events
from .monitorhandle import MonitorHandle, plugs_links
from .records import Container, Containers, Conflict, State
from .volumes import Volumes

STOP_TIMEOUT = 10  # s: Docker's default grace period before SIGKILL


def _poll_steps(first: float = 0.001, last: float = 0.02):
    """Sleeps for a polling loop: 1 ms, doubling up to `last`. The monitor records a killed
    container's exit a few ms after the signal: a fixed 20 ms step made each `rm -f` wait a
    whole step (20 ms of the ~24 ms per container of `rm -f` of 100)."""
    step = first
    while True:
        yield step
        step = min(step * 2, last)


@dataclass
class RunOptions:
    """`create`/`run` flags, parsed (cli/run.py turns click's values into these)."""

    image: str
    command: list = field(default_factory=list)
    name: str = ""
    tty: bool = False
    interactive: bool = False
    env: list = field(default_factory=list)
    entrypoint: str | list | None = None  # a string: one program (--entrypoint); a list: all
    workdir: str = ""
    user: str | None = None
    hostname: str = ""
    domainname: str = ""
    read_only: bool = False
    tmpfs: list = field(default_factory=list)  # "/path[:options]"
    volumes: list = field(default_factory=list)  # -v specs
    mounts: list = field(default_factory=list)  # --mount specs
    memory: int = 0
    memory_swap: int = 0
    nano_cpus: int = 0
    cpu_shares: int = 0
    cpuset_cpus: str = ""
    pids_limit: int = 0
    restart: str = "no"
    auto_remove: bool = False
    init: bool = False
    cap_add: list = field(default_factory=list)
    cap_drop: list = field(default_factory=list)
    privileged: bool = False
    pid_mode: str = ""
    ipc_mode: str = ""
    uts_mode: str = ""
    network: str = "bridge"
    publish: list = field(default_factory=list)  # -p specs
    publish_all: bool = False  # -P
    ip: str | None = None
    ip6: str | None = None  # --ip6: its IPv6 address on a dual-stack network
    aliases: list = field(default_factory=list)
    dns: list = field(default_factory=list)
    dns_search: list = field(default_factory=list)
    add_hosts: list = field(default_factory=list)  # "host:ip"
    labels: dict = field(default_factory=dict)
    stop_signal: str = ""
    stop_timeout: int | None = None
    security_opt: list = field(default_factory=list)  # --security-opt values
    userns: str = ""  # --userns: host, auto[:size=N]
    userns_remap: str = ""  # --userns-remap: default or USER[:GROUP]
    healthcheck: dict | None = None  # what the --health-* flags set (engine/health.py)
    ulimits: list = field(default_factory=list)  # {"Name", "Soft", "Hard"} (bundle.ulimit)
    sysctls: dict = field(default_factory=dict)  # namespaced sysctls only (kernel/sysctl.py)
    shm_size: int = 0  # bytes of /dev/shm (0: Docker's 64 MiB)
    expose: list = field(default_factory=list)  # --expose: "80", "8000-8010/udp"
    # resource flags (engine/limits.py checks them, bundle.py turns them into linux.resources)
    cpu_quota: int = 0  # --cpu-quota: µs per period (-1: none)
    cpu_period: int = 0  # --cpu-period: µs
    cpuset_mems: str = ""
    memory_reservation: int = 0  # bytes: the soft limit
    oom_kill_disable: bool = False
    oom_score_adj: int = 0
    blkio_weight: int = 0  # 10..1000
    devices: list = field(default_factory=list)  # {"PathOnHost", "PathInContainer", ...}
    device_read_bps: list = field(default_factory=list)  # {"Path", "Rate"}
    device_write_bps: list = field(default_factory=list)
    device_read_iops: list = field(default_factory=list)
    device_write_iops: list = field(default_factory=list)
    cgroup_parent: str = ""
    cgroupns: str = ""  # host | private ("": Docker's default for this host)
    # process, logging and sharing flags (issue 17)
    group_add: list = field(default_factory=list)  # --group-add: names (image's /etc/group), gids
    log_driver: str = ""  # --log-driver: json-file (""), local, none (engine/logconfig.py)
    log_opts: list | dict = field(default_factory=list)  # --log-opt K=V, or LogConfig.Config
    mac_address: str = ""  # --mac-address: on its first network, instead of 02:42+IPv4
    volumes_from: list = field(default_factory=list)  # --volumes-from CONTAINER[:ro|rw]
    attach: list = field(default_factory=list)  # -a: stdin, stdout, stderr ([]: Docker's default)


class Engine:
    """Where containers, volumes and images live (--root) and runtime state (--runroot)."""

    def __init__(self, root: str, runroot: str, images) -> None:
        self.root, self.runroot = root, runroot
        self.containers = Containers(root)
        self.volumes = Volumes(root)
        self.images = images  # a callable returning the image Store (opened lazily)
        self._net = None

    @property
    def net(self):
        """Networks, addresses and NAT (engine/networking.py), set up on first use."""
        if self._net is None:
            from .networking import Networking  # (start-up: not on `ps`'s path)

            self._net = Networking(self.root, self.runroot)
        return self._net

    def cdir(self, cid: str) -> str:
        return self.containers.path(cid)

    # -- reading state ---------------------------------------------------------------------------
    def get(self, ref: str) -> Container:
        return self.refresh(self.containers.find(ref))

    def all(self) -> list[Container]:
        return [self.refresh(c) for c in self.containers.all()]

    def refresh(self, c: Container) -> Container:
        """Notice a monitor that died (kill -9): its container is `dead` once its process is gone,
        and what it held (cgroup, runtime state, rootfs mount) is cleaned up now."""
        s = c.state
        if not s.running or not s.monitor_pid:
            return c
        if start_time(s.monitor_pid) == s.monitor_start:
            return c
        if s.pid and _oci_alive(self.runroot, c.id):
            if not s.error:
                def note(x: Container) -> None:
                    x.state.error = (f"its monitor (PID {s.monitor_pid}) is gone: the process "
                                     "runs on, but its output is no longer logged")
                c = self.containers.update(c.id, note)
            return c

        marked = False

        def dead(x: Container) -> None:
            nonlocal marked
            if not x.state.running or x.state.monitor_pid != s.monitor_pid:
                # What we read was stale: the monitor recorded the exit and its own end since
                # (a monitor that has just exited is gone too, and it was not killed).
                return
            marked = True
            x.state.status = "dead"
            x.state.pid = 0
            x.state.exit_code = -1
            x.state.error = (f"its monitor (PID {s.monitor_pid}) was killed: the exit status "
                             "is unknown")
            x.state.finished_at = x.state.finished_at if x.state.finished_at != ZERO_TIME else now()
            x.state.monitor_pid = 0

        c = self.containers.update(c.id, dead)
        if not marked:
            return c
        self._release(c)
        if c.networks:
            self.net.finished(self.containers, c)
        return c

    def _release(self, c: Container) -> None:
        """Give back what a stopped container holds: the runtime's state (and its cgroup) and
        the rootfs mount. Its writable layer stays until `rm`."""
        from ..image import overlay  # (start-up: not on `ps`'s path)
        from ..oci import container as oci  # (start-up: not on `ps`'s path)

        try:
            oci.delete(self.runroot, c.id, force=True)
        except MinirunError:
            pass
        try:
            overlay.unmount_rootfs(self.cdir(c.id))
        except OSError:
            pass

    # -- create ----------------------------------------------------------------------------------
    def create(self, opts: RunOptions, image_record, warnings: list | None = None
               ) -> Container:
        """The record, the writable layer and the bundle of a new container (not started).
        `warnings` gets Docker's warnings about limits this host discards."""
        from . import bundle as bundle_mod, health, security  # (~2 ms: only create needs them)
        from .. import trace  # (~0.1 ms, loaded on create's path anyway: kernel/libc.py)

        if warnings is None:
            warnings = []
        store = self.images()
        image_cfg = _image_config(store, image_record)
        icfg = image_cfg.get("config") or {}
        args = bundle_mod.command(icfg, opts.entrypoint, opts.command)
        restart = _restart_policy(opts.restart)
        if restart["Name"] != "no" and opts.auto_remove:
            raise Conflict("Conflicting options: --restart and --rm")
        layers = [store.layer_name(d) for d in image_record.diff_ids]
        if trace.enabled:
            trace.note(f"image {opts.image}: {image_record.id[7:19]} in the store, "
                       f"{len(layers)} layer(s) (pulled first if it was missing: --pull)")
            for name, diff_id in zip(layers, image_record.diff_ids):
                trace.note(f"layer {diff_id[:19]}...: {os.path.join(store.layers_dir, name)}")
        labels = dict(icfg.get("Labels") or {})
        labels.update(opts.labels)
        c = Container(id="", name=opts.name, image=opts.image, image_id=image_record.id,
                      created=now(), layers=layers, path=args[0], args=args[1:])
        c = self.containers.new(c)
        if trace.enabled:
            trace.step(f'mkdir("{self.cdir(c.id)}")', f"container {c.id[:12]}: its record, "
                       "writable layer, bundle and logs live here")
        try:
            hostname = opts.hostname or c.id[:12]
            c.config = {
                "Hostname": hostname, "Domainname": opts.domainname,
                "User": opts.user if opts.user is not None else (icfg.get("User") or ""),
                "AttachStdin": "stdin" in opts.attach if opts.attach else opts.interactive,
                "AttachStdout": "stdout" in opts.attach if opts.attach else True,
                "AttachStderr": "stderr" in opts.attach if opts.attach else True,
                "Tty": opts.tty, "OpenStdin": opts.interactive, "StdinOnce": opts.interactive,
                "Env": bundle_mod.environment(icfg.get("Env") or [], opts.env, hostname, opts.tty),
                "Cmd": list(opts.command) if opts.command else (
                    [] if opts.entrypoint is not None else list(icfg.get("Cmd") or [])),
                "Image": opts.image,
                "Volumes": dict(icfg.get("Volumes") or {}) or None,
                "WorkingDir": opts.workdir or icfg.get("WorkingDir") or "",
                "Entrypoint": _entrypoint(opts.entrypoint, icfg),
                "Labels": labels,
                "StopSignal": opts.stop_signal or icfg.get("StopSignal") or "SIGTERM",
                "ExposedPorts": {**(icfg.get("ExposedPorts") or {}),
                                 **bundle_mod.exposed_ports(opts.expose)} or None,
            }
            if opts.stop_timeout is not None:
                c.config["StopTimeout"] = opts.stop_timeout
            if opts.mac_address:
                c.config["MacAddress"] = _mac_address(opts.mac_address, opts.network)
            if opts.healthcheck or icfg.get("Healthcheck"):
                hc = health.merge(opts.healthcheck, icfg.get("Healthcheck"))
                if hc:
                    c.config["Healthcheck"] = hc
            if icfg.get("Shell"):
                c.config["Shell"] = list(icfg["Shell"])  # SHELL: what CMD-SHELL checks run in
            c.host_config = {
                "Binds": [v for v in opts.volumes if ":" in v and v.split(":")[0].startswith("/")],
                "NetworkMode": opts.network, "RestartPolicy": restart,
                "AutoRemove": opts.auto_remove, "Privileged": opts.privileged,
                "CapAdd": list(opts.cap_add) or None, "CapDrop": list(opts.cap_drop) or None,
                "ReadonlyRootfs": opts.read_only, "Init": opts.init,
                "PidMode": opts.pid_mode, "IpcMode": opts.ipc_mode, "UTSMode": opts.uts_mode,
                "Memory": opts.memory, "MemorySwap": opts.memory_swap, "NanoCpus": opts.nano_cpus,
                "CpuShares": opts.cpu_shares, "CpusetCpus": opts.cpuset_cpus,
                "PidsLimit": opts.pids_limit or None,
                "Tmpfs": {t.split(":")[0]: t.partition(":")[2] for t in opts.tmpfs} or None,
                "SecurityOpt": security.parse(opts.security_opt) or None,
                "Dns": list(opts.dns) or None, "DnsSearch": list(opts.dns_search) or None,
                "ExtraHosts": list(opts.add_hosts) or None, "PublishAllPorts": opts.publish_all,
                "Ulimits": [bundle_mod.ulimit(u) for u in opts.ulimits] or None,
                "Sysctls": dict(opts.sysctls) or None, "ShmSize": opts.shm_size or None,
                **_resource_fields(opts),
            }
            c.host_config.update(_process_and_logging(opts))
            bundle_mod.check_sysctls(c.host_config)
            self._check_limits(c, opts, warnings)
            self._network_mode(opts.network)
            for h in opts.add_hosts:
                if ":" not in h:
                    raise bundle_mod.BundleError(f"invalid --add-host {h!r}: use HOST:IP")
            self.net.plan(c, opts.network, opts.ip, opts.aliases, opts.publish, opts.publish_all,
                          c.config.get("ExposedPorts") or {}, ip6=opts.ip6)
            if c.config.get("MacAddress") and c.networks:  # its first network's, as Docker's
                next(iter(c.networks.values()))["MacAddress"] = c.config["MacAddress"]
            caps = bundle_mod.capabilities(opts.cap_add, opts.cap_drop, opts.privileged)
            security.seccomp_for(c.host_config, caps)  # a profile that cannot apply fails now
            self._user_namespace(c, opts)
            c.mounts = self._mounts(c, opts, icfg)
            self.containers.save(c)
            self.prepare(c, seed=True)
        except BaseException:
            self.remove_files(c, volumes=True, quiet=True)
            raise
        events.record(self.root, "container", "create", c.id, events.container_attributes(c))
        return c

    def _check_limits(self, c: Container, opts: RunOptions, warnings: list) -> None:
        """Docker's checks of the resource values (engine/limits.py), and the defaults it
        records (CgroupnsMode): before any cgroup or bundle is made."""
        from . import limits  # (start-up: not on the monitor's path)

        host = limits.Host.probe()
        hc = c.host_config
        hc["CgroupnsMode"] = limits.cgroupns_mode(opts.cgroupns, host)
        hc["CgroupParent"] = limits.cgroup_parent(opts.cgroup_parent)
        warnings += limits.check(hc, host)

    def _user_namespace(self, c: Container, opts: RunOptions) -> None:
        """--userns / --userns-remap: pick the container's id maps and keep them in its record
        (a restart keeps them). Auto ranges are chosen under a lock, against every other
        container's, so two containers never get the same host uids."""
        from ..base.filelock import FileLock
        from . import bundle as bundle_mod, userns  # (create only: see create)

        mode, user, size = userns.parse(opts.userns, opts.userns_remap)
        if mode == "host":
            return
        if opts.privileged:
            raise bundle_mod.BundleError("--privileged cannot be combined with a user namespace "
                                         "(--userns/--userns-remap): use --userns=host")
        if not userns.enabled():
            raise bundle_mod.HostCannot("user namespaces are disabled on this host "
                                        "(user.max_user_namespaces is 0)")
        with FileLock(os.path.join(self.containers.dir, ".userns.lock")):
            taken = []
            for other in self.containers.all():
                m = other.host_config.get("IDMappings")
                if other.id != c.id and m and other.host_config.get("UsernsMode") == "auto":
                    taken += [(o, n) for _i, o, n in m["UidMap"]]
            uid_map, gid_map = userns.maps_for(mode, user, size, taken)
            c.host_config["UsernsMode"] = "auto" if mode == "auto" else f"remap:{user}"
            c.host_config["IDMappings"] = {"UidMap": uid_map, "GidMap": gid_map}
            self.containers.save(c)

    def _network_mode(self, mode: str) -> None:
        from . import bundle as bundle_mod  # (create only: see create)

        if mode.startswith("container:"):
            other = self.containers.find(mode.split(":", 1)[1])
            if other.host_config.get("NetworkMode", "").startswith("container:"):
                raise bundle_mod.BundleError(f"--network {mode}: that container shares another's "
                                             "network itself; name that one")

    def _mounts(self, c: Container, opts: RunOptions, icfg: dict) -> list[dict]:
        """-v, --mount, --tmpfs and the image's VOLUMEs as Docker's Mounts list."""
        from . import bundle as bundle_mod  # (create only: see create)
        from .mounts import parse_mount, parse_volume

        out: list[dict] = []
        for spec in opts.volumes:
            out.append(parse_volume(spec))
        for spec in opts.mounts:
            out.append(parse_mount(spec))
        for spec in opts.tmpfs:
            dest, _, o = spec.partition(":")
            out.append({"Type": "tmpfs", "Destination": dest, "Source": "", "Mode": o, "RW": True,
                        "Options": [x for x in o.split(",") if x]})
        given = {os.path.normpath(m["Destination"]) for m in out}
        out += [m for m in self._volumes_from(opts.volumes_from) if m["Destination"] not in given]
        taken = {m["Destination"] for m in out}
        for dest in sorted((icfg.get("Volumes") or {})):
            if dest not in taken:
                out.append({"Type": "volume", "Name": "", "Destination": dest, "RW": True,
                            "Mode": "", "Anonymous": True})
        seen: set[str] = set()
        for m in out:
            d = os.path.normpath(m["Destination"])
            if not d.startswith("/"):
                raise bundle_mod.BundleError(f"invalid mount destination {m['Destination']!r}: "
                                             "it must be an absolute path in the container")
            if d in seen:
                raise bundle_mod.BundleError(f"Duplicate mount point: {d}")
            seen.add(d)
            m["Destination"] = d
            if m["Type"] == "volume":
                v, made = self.volumes.create(m.get("Name") or None)
                m.update(Name=v.Name, Source=v.Mountpoint, Driver="local", Seed=made or
                         Volumes.is_empty(v), Anonymous=v.Anonymous)
            elif m["Type"] == "bind":
                if not os.path.exists(m["Source"]):
                    raise bundle_mod.BundleError(
                        f"invalid mount config for type \"bind\": bind source path does not "
                        f"exist: {m['Source']}")
        return out

    def _volumes_from(self, specs: list[str]) -> list[dict]:
        """--volumes-from CONTAINER[:ro|rw]: the volumes and binds of another container (made
        or running), at the same places, each with its own mode unless ro/rw says otherwise;
        the flags' own mounts win at the same destination (Docker's order). An anonymous one
        stays anonymous: `rm -v` of the last container using it removes it, as in Docker."""
        from . import bundle as bundle_mod  # (create only: see create)

        out: list[dict] = []
        for spec in specs:
            ref, _, mode = spec.partition(":")
            if mode not in ("", "ro", "rw"):
                raise bundle_mod.BundleError(f"invalid --volumes-from {spec!r}: the mode must "
                                             "be ro or rw")
            other = self.containers.find(ref)
            for m in other.mounts:
                if m.get("Type") not in ("volume", "bind"):
                    continue  # a tmpfs is the other container's own memory
                copy = {k: v for k, v in m.items() if k != "Seed"}
                if mode:
                    copy["RW"] = mode == "rw"
                    copy["Mode"] = mode
                out.append(copy)
        return out

    def prepare(self, c: Container, seed: bool = False) -> None:
        """Mount the rootfs and write the bundle: config.json and the /etc files."""
        import json  # (~1 ms: see the imports)

        from ..base.atomicfile import write_atomic
        from ..kernel import resolve  # (~0.7 ms with kernel/libc.py)
        from . import bundle as bundle_mod, userns, users  # (~1.4 ms: not on `ps`'s path)
        from ..image import overlay  # (start-up: not on `ps`'s path)
        from ..kernel import cgroups  # (start-up: not on `ps`'s path)
        from ..network import dns  # (start-up: not on `ps`'s path)
        from .. import trace  # (loaded with kernel/libc.py)

        cdir = self.cdir(c.id)
        rootfs = os.path.join(cdir, "rootfs")
        maps = c.host_config.get("IDMappings")
        if maps:
            userns.check_reachable(rootfs, maps)
            for m in c.mounts:
                if m.get("Source"):
                    userns.check_reachable(m["Source"], maps)
        if not os.path.ismount(rootfs):
            overlay.mount_rootfs(os.path.join(self.root, "image", "layers"), c.layers, cdir,
                                 idmaps=maps)
        # one fd on the mounted rootfs: every path below is looked up inside it by the kernel
        # (openat2 RESOLVE_IN_ROOT), and what is made is made relative to fds, never through
        # an image's symlink to the host (CVE-2024-45310, CVE-2018-15664)
        rfd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            user = users.resolve(rfd, c.config.get("User") or "")
            if c.host_config.get("GroupAdd"):
                user.additional_gids = users.group_add(rfd, user.additional_gids,
                                                       c.host_config["GroupAdd"])
            wd = c.config.get("WorkingDir")
            if wd:  # Docker creates a missing WORKDIR (mkdirat + O_NOFOLLOW per component)
                from .build_context import make_dirs  # lazy: build_context imports this module

                os.close(make_dirs(rfd, wd))
            if seed and any(m.get("Seed") for m in c.mounts):
                for m in c.mounts:
                    if m["Type"] == "volume" and m.pop("Seed", False):
                        try:  # the image's content at the destination
                            src = resolve.open_in(rfd, m["Destination"],
                                                  os.O_PATH | os.O_DIRECTORY)
                        except OSError:
                            continue  # nothing there (or no directory): nothing to seed
                        try:
                            self.volumes.seed(self.volumes.get(m["Name"]), src, maps)
                        finally:
                            os.close(src)
                self.containers.save(c)
        finally:
            os.close(rfd)
        mode = c.host_config.get("NetworkMode", "bridge")
        etc_dir, netns = cdir, None
        if mode.startswith("container:"):
            other = self.refresh(self.containers.find(mode.split(":", 1)[1]))
            if other.state.status not in ("running", "paused") or not other.state.pid:
                raise bundle_mod.NotRunning(f"cannot join the network of container "
                                            f"{other.name}: it is not running")
            netns, etc_dir = f"/proc/{other.state.pid}/ns/net", self.cdir(other.id)
            with open(os.path.join(cdir, "hostname"), "w") as f:
                f.write(c.config["Hostname"] + "\n")
        else:
            hc = c.host_config
            if trace.enabled:
                trace.step(f'write("{cdir}/{{hostname,hosts,resolv.conf}}")',
                           "the container's /etc files, bind-mounted over the image's by the "
                           "runtime")
            dns.write(cdir, c.config["Hostname"], c.config.get("Domainname") or "",
                      host_mode=mode == "host", dns=hc.get("Dns"), dns_search=hc.get("DnsSearch"),
                      hosts_text=self.net.hosts_text(c) if mode != "host" else None,
                      embedded_dns=dns.embedded(mode, c.networks))
        if maps:
            uid, gid = userns.host_root(maps)  # the container's root may write its /etc files
            for name in ("hostname", "hosts", "resolv.conf"):
                p = os.path.join(cdir, name)
                if os.path.exists(p):
                    os.chown(p, uid, gid)
        cfg = bundle_mod.oci_config(c, cdir, user, cgroup_v2=cgroups.layout() == "v2",
                                    netns_path=netns, etc_dir=etc_dir)
        if trace.enabled:
            ns = [n.get("type") for n in (cfg.get("linux") or {}).get("namespaces") or []]
            trace.step(f'write("{os.path.join(cdir, "config.json")}")',
                       f"the OCI bundle (root {cfg.get('root', {}).get('path')}, args "
                       f"{(cfg.get('process') or {}).get('args')}, "
                       f"{len(cfg.get('mounts') or [])} mounts, namespaces {ns}): what the "
                       "runtime makes the container from")
        write_atomic(os.path.join(cdir, "config.json"), json.dumps(cfg, indent=1), mode=0o666)

    # -- start -----------------------------------------------------------------------------------
    def start(self, c: Container, attach: bool = False, monitor: "MonitorHandle | None" = None,
              prepared: bool = False) -> int:
        """Hand the container to a monitor (a new one, or one started ahead); returns the
        process's PID once it runs (or, with attach, 0 once it is created and waiting for the
        attached client's start frame). `prepared`: the caller has just created it and changed
        nothing since (`run`), so its bundle is not written again (~4 ms: /etc/passwd, hosts,
        resolv.conf and config.json)."""
        if c.state.status in ("running", "paused", "restarting"):
            if monitor is not None:
                monitor.cancel()
            return c.state.pid
        if monitor is None:  # started now, its start-up overlaps prepare()
            monitor = MonitorHandle(self, network=plugs_links(c.host_config.get("NetworkMode",
                                                                                 "bridge")))
        try:
            if not (prepared and c.state.status == "created" and not c.state.monitor_pid):
                if c.state.status == "dead":
                    self._release(c)
                # A stop (or restart) returns once the exit is recorded; the old monitor may
                # still be tearing down (network, then the rootfs mount). Let it finish first:
                # else it unmounts the rootfs this start finds mounted ("exec: not found").
                self.wait_monitor_gone(c, 10)
                self.prepare(c)

                def reset(x: Container) -> None:
                    x.state.stop_requested = False
                    x.state.error = ""

                self.containers.update(c.id, reset)
        except BaseException:
            monitor.cancel()
            raise
        return monitor.go(c, attach)

    # -- signals and stopping --------------------------------------------------------------------
    def kill(self, c: Container, sig: int, stop: bool = True) -> None:
        from ..oci import container as oci  # (start-up: not on `ps`'s path)

        if not c.state.running:
            raise Conflict(f"Cannot kill container: {c.short_id}: Container {c.id} is not "
                           "running")
        if stop:
            self.containers.update(c.id, lambda x: setattr(x.state, "stop_requested", True))
        if c.state.status == "restarting":
            return  # between two runs: the monitor sees stop_requested and does not go on
        try:
            oci.kill(self.runroot, c.id, sig, all_procs=False)
        except MinirunError as e:
            if not any(w in str(e) for w in ("not running", "stopped", "does not exist")):
                raise
        events.record(self.root, "container", "kill", c.id,
                      {**events.container_attributes(c), "signal": sig})

    def stop(self, c: Container, timeout: int | None = None) -> None:
        """The stop signal, then SIGKILL after the timeout (a PID 1 without a handler for the
        signal ignores it: the kernel drops signals to a namespace's init that it does not
        handle)."""
        import signal  # (~0.3 ms: its enums; not on `ps`'s path)

        if not c.state.running:
            return
        if c.state.status == "paused":
            self.unpause(c)
        t = timeout if timeout is not None else c.config.get("StopTimeout", STOP_TIMEOUT)
        sig = _signal_number(c.config.get("StopSignal") or "SIGTERM")
        try:
            self.kill(c, sig)
        except Conflict:
            return
        if not self.wait_exit(c, t):
            try:
                self.kill(c, signal.SIGKILL)
            except Conflict:
                pass
            self.wait_exit(c, 30)
        events.record(self.root, "container", "stop", c.id, events.container_attributes(c))

    def wait_exit(self, c: Container, timeout: float | None) -> bool:
        """Wait for the container to stop running (and its monitor to record it)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        steps = _poll_steps(last=0.02)
        while True:
            c2 = self.refresh(self.containers.load(c.id))
            if not c2.state.running:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(next(steps))

    def pause(self, c: Container) -> None:
        from ..oci import control  # (start-up: not on `ps`'s path)

        if c.state.status != "running":
            raise Conflict(f"Container {c.id} is not running" if c.state.status != "paused"
                           else f"Container {c.id} is already paused")
        control.pause(self.runroot, c.id)
        events.record(self.root, "container", "pause", c.id, events.container_attributes(c))
        self.containers.update(c.id, lambda x: setattr(x.state, "status", "paused"))

    def unpause(self, c: Container) -> None:
        from ..oci import control  # (start-up: not on `ps`'s path)

        if c.state.status != "paused":
            raise Conflict(f"Container {c.id} is not paused")
        control.resume(self.runroot, c.id)
        events.record(self.root, "container", "unpause", c.id, events.container_attributes(c))
        self.containers.update(c.id, lambda x: setattr(x.state, "status", "running"))

    # -- removal ---------------------------------------------------------------------------------
    def remove(self, c: Container, force: bool = False, volumes: bool = False) -> None:
        import signal  # (~0.3 ms: see stop)

        if c.state.running:
            if not force:
                raise Conflict(f"You cannot remove a running container {c.id}. Stop the "
                               "container before attempting removal or force remove")
            self.kill(c, signal.SIGKILL)
            self.wait_exit(c, 30)
            c = self.containers.load(c.id)
        self.wait_monitor_gone(c, 10)
        self.remove_files(c, volumes)

    def wait_monitor_gone(self, c: Container, timeout: float) -> None:
        """A monitor finishes after it records the exit (unmount, close the log): let it, so
        the two of us never tear the same things down at once."""
        deadline = time.monotonic() + timeout
        steps = _poll_steps(last=0.01)
        while time.monotonic() < deadline:
            try:
                s = self.containers.load(c.id).state
            except MinirunError:
                return
            if not s.monitor_pid or start_time(s.monitor_pid) != s.monitor_start:
                return
            time.sleep(next(steps))

    def remove_files(self, c: Container, volumes: bool, quiet: bool = False) -> None:
        """Everything of a stopped container: runtime state, rootfs mount, writable layer, the
        record; anonymous volumes too when asked (`rm -v`, `--rm`). `quiet`: a create taken
        back, which was never announced, has no destroy event either."""
        if not c.id:
            return
        from .. import trace  # (loaded: the runtime's delete and the unmount narrate through it)

        self._release(c)
        if c.networks:
            if trace.enabled:
                held = ", ".join(f"{n.get('IPAddress')} on {name}" for name, n in
                                 c.networks.items())
                trace.note(f"release {held}: the address goes back to the network's pool")
            self.net.release(self.containers, c)
        if volumes:
            for m in c.mounts:
                if m.get("Type") == "volume" and m.get("Anonymous") and m.get("Name"):
                    if any(o.id != c.id for o in self.users_of_volume(m["Name"])):
                        continue  # still mounted by another (--volumes-from): Docker keeps it
                    try:
                        self.volumes.remove(m["Name"])
                    except MinirunError:
                        pass
        if trace.enabled:
            trace.step(f'rm -rf "{self.cdir(c.id)}"', "the record, the writable layer (upper, "
                       "work), the bundle and the logs")
        self.containers.remove_dir(c.id)
        if not quiet:
            events.record(self.root, "container", "destroy", c.id,
                          events.container_attributes(c))

    def users_of_volume(self, name: str) -> list[Container]:
        return [c for c in self.containers.all()
                if any(m.get("Type") == "volume" and m.get("Name") == name for m in c.mounts)]


def _resource_fields(opts: RunOptions) -> dict:
    """HostConfig's resource fields from run's flags (Docker's names, as inspect shows them)."""
    from . import devices  # (start-up: not on the monitor's path)

    return {"CpuQuota": opts.cpu_quota, "CpuPeriod": opts.cpu_period,
            "CpusetMems": opts.cpuset_mems, "MemoryReservation": opts.memory_reservation,
            "OomKillDisable": opts.oom_kill_disable, "OomScoreAdj": opts.oom_score_adj,
            "BlkioWeight": opts.blkio_weight,
            "Devices": [devices.check(d) for d in opts.devices],
            "BlkioDeviceReadBps": list(opts.device_read_bps),
            "BlkioDeviceWriteBps": list(opts.device_write_bps),
            "BlkioDeviceReadIOps": list(opts.device_read_iops),
            "BlkioDeviceWriteIOps": list(opts.device_write_iops),
            "CgroupParent": opts.cgroup_parent, "CgroupnsMode": opts.cgroupns}


def _oci_alive(runroot: str, cid: str) -> bool:
    from ..oci import state as st  # (start-up: not on `ps`'s path)

    try:
        return st.load(runroot, cid).status() in ("running", "created", "paused")
    except MinirunError:
        return False


def _image_config(store, record) -> dict:
    import json  # (~1 ms: see the imports)

    with store.open_blob(record.id) as f:
        return json.load(f)


def _restart_policy(text: str) -> dict:
    name, _, count = (text or "no").partition(":")
    if name not in ("no", "always", "on-failure", "unless-stopped"):
        raise InvalidArgument(f"invalid restart policy {text!r}: no, always, unless-stopped or "
                           "on-failure[:max-retries]")
    if count and (name != "on-failure" or not count.isdigit()):
        raise InvalidArgument(f"invalid restart policy {text!r}: only on-failure takes a maximum "
                           "retry count (on-failure:3)")
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def _signal_number(text: str | int) -> int:
    import signal  # (~0.3 ms: see Engine.stop)

    if isinstance(text, int) or str(text).isdigit():
        return int(text)
    name = str(text).upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(getattr(signal, name))
    except AttributeError:
        raise InvalidArgument(f"invalid signal: {text}") from None


def _process_and_logging(opts: RunOptions) -> dict:
    """HostConfig's GroupAdd, LogConfig and VolumesFrom from the flags, checked (Docker's
    wording: engine/logconfig.py)."""
    from . import logconfig  # (only create needs the checks)

    try:
        log = logconfig.parse(opts.log_driver, opts.log_opts)
    except logconfig.LogConfigError as e:
        raise InvalidArgument(f"--log-driver/--log-opt: {e}") from None
    return {"GroupAdd": list(opts.group_add) or None, "LogConfig": log,
            "VolumesFrom": list(opts.volumes_from) or None}


def _mac_address(text: str, network: str) -> str:
    """--mac-address, checked: six octets, unicast (the kernel refuses a multicast address on
    a link), not with a network it cannot apply to; written as Docker shows it."""
    if network == "host" or network.startswith("container:"):
        raise InvalidArgument("conflicting options: mac-address and the network mode")
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(ch in "0123456789abcdefABCDEF"
                                                       for ch in p) for p in parts):
        raise InvalidArgument(f"{text} is not a valid mac address")
    if int(parts[0], 16) & 1:
        raise InvalidArgument(f"{text} is not a valid mac address: it is a multicast address "
                              "(the first octet's lowest bit is set)")
    return ":".join(parts).lower()


def _entrypoint(given: str | list | None, icfg: dict) -> list | None:
    """Config.Entrypoint: the image's, or the one given ("" or []: none)."""
    if given is None:
        return icfg.get("Entrypoint") or None
    if isinstance(given, list):
        return list(given) or None
    return [given] if given else None

__all__ = ["Engine", "MonitorHandle", "RunOptions", "State", "STOP_TIMEOUT"]
