"""`minirun run`: create and start a container, and wait for it (attached) or print its ID (-d).

Its ~100 flags (Docker's names) are defined here once, as _run_options, and shared with `create`
(cli/create.py); `_options` turns them into the engine's RunOptions. At a terminal, `minirun run
IMAGE sh` without -i/-t does what the user means: it runs as if `-it` had been given (docker
would run sh with stdin closed, and it would exit at once). Scripts, with no terminal, get
exactly Docker's behaviour.
"""

from __future__ import annotations

import os
import sys

import click

from ..base.units import parse_bytes
from ..errors import MinirunError
from . import container_group, main, runflags
from .common import RUN_SETTINGS, attach_api as _attach_api, containers_api as _api, \
    detach_keys as _detach_keys, engine as _engine, exit_code as _exit_code
from .pull import ensure_image


def _run_options(f):
    """The flags `run` and `create` share (Docker's names)."""
    opts = [
        click.option("--name", default="", help="Assign a name to the container."),
        click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY."),
        click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open."),
        click.option("-e", "--env", multiple=True, help="Set an environment variable (K=V, or K "
                     "to take the caller's value)."),
        click.option("--env-file", multiple=True, type=click.Path(dir_okay=False),
                     help="Read environment variables from a file (K=V lines)."),
        click.option("--entrypoint", default=None, help="Override the image's ENTRYPOINT."),
        click.option("-w", "--workdir", default="", help="Working directory in the container."),
        click.option("-u", "--user", default=None, help="user[:group], name or number."),
        click.option("-h", "--hostname", default="", help="Container host name."),
        click.option("--domainname", default="", help="Container NIS domain name."),
        click.option("--read-only", is_flag=True, help="Mount the root filesystem read-only."),
        click.option("--tmpfs", multiple=True, help="Mount a tmpfs: /path[:options]."),
        click.option("-v", "--volume", "volumes", multiple=True,
                     help="Bind mount or volume: [SRC:]DEST[:ro|rw]."),
        click.option("--mount", "mounts", multiple=True,
                     help="type=bind|volume|tmpfs,source=..,target=..[,readonly]."),
        click.option("-m", "--memory", default="", help="Memory limit (512m, 1g)."),
        click.option("--memory-swap", default="", help="Memory plus swap (-1: unlimited swap)."),
        click.option("--cpus", default="", help="Number of CPUs (1.5)."),
        click.option("-c", "--cpu-shares", type=int, default=0, help="Relative CPU weight (1024)."),
        click.option("--cpuset-cpus", default="", help="CPUs to run on (0-1, 0,2)."),
        click.option("--pids-limit", type=int, default=0, help="Most processes at once."),
        click.option("--restart", default="no",
                     help="no, always, unless-stopped, on-failure[:max-retries]."),
        click.option("--rm", "auto_remove", is_flag=True, help="Remove the container when it exits."),
        click.option("--init", is_flag=True, help="Run a small PID 1 that forwards signals and "
                     "reaps zombies."),
        click.option("--cap-add", multiple=True, help="Add a Linux capability."),
        click.option("--cap-drop", multiple=True, help="Drop a Linux capability (ALL)."),
        click.option("--privileged", is_flag=True, help="Every capability, no masked paths, all "
                     "devices allowed."),
        click.option("--userns", default="", help="host (default) or auto[:size=N]: a user "
                     "namespace with a range of host ids of its own."),
        click.option("--userns-remap", default="", help="default or USER[:GROUP]: map root to "
                     "USER's first range in /etc/subuid and /etc/subgid."),
        click.option("--pid", "pid_mode", default="", help="host: share the host's PID namespace."),
        click.option("--ipc", "ipc_mode", default="", help="host: share the host's IPC namespace."),
        click.option("--uts", "uts_mode", default="", help="host: share the host's UTS namespace."),
        click.option("--network", "--net", "network", default="bridge",
                     help="bridge (default), a network's name, none, host or container:NAME."),
        click.option("-p", "--publish", multiple=True,
                     help="Publish a port: [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]."),
        click.option("-P", "--publish-all", is_flag=True, help="Publish every EXPOSEd port on a "
                     "random host port."),
        click.option("--ip", default=None, help="The container's IPv4 address on its network."),
        click.option("--ip6", default=None, help="Its IPv6 address (a network made with --ipv6)."),
        click.option("--network-alias", "aliases", multiple=True,
                     help="Another name for it on a user network."),
        click.option("--dns", multiple=True, help="A DNS server for its resolv.conf."),
        click.option("--dns-search", multiple=True, help="A DNS search domain."),
        click.option("--add-host", multiple=True, help="An /etc/hosts entry: HOST:IP."),
        click.option("--expose", multiple=True, help="Expose a port or range: PORT[-PORT][/PROTO]."),
        click.option("--ulimit", "ulimits", multiple=True,
                     help="A resource limit: NAME=SOFT[:HARD] (nofile=1024:2048)."),
        click.option("--sysctl", "sysctls", multiple=True,
                     help="A namespaced kernel setting: KEY=VALUE (net.*, kernel.shm*, ...)."),
        click.option("--shm-size", default="", help="Size of /dev/shm (64m)."),
        click.option("-l", "--label", "labels", multiple=True, help="Set a label (k=v)."),
        click.option("--stop-signal", default="", help="Signal to stop the container."),
        click.option("--stop-timeout", type=int, default=None, help="Seconds before SIGKILL."),
        click.option("--pull", "pull_policy", default="missing", help="always, missing, never."),
        click.option("--platform", default=None, help="Pull this platform (os/arch)."),
        click.option("--security-opt", multiple=True, help="no-new-privileges, seccomp=unconfined, "
                     "seccomp=PROFILE.json, systempaths=unconfined."),
        click.option("--health-cmd", default="", help="Command to run to check health (in a "
                     "shell)."),
        click.option("--health-interval", default="", help="Time between running the check "
                     "(ms|s|m|h) (default 30s)."),
        click.option("--health-timeout", default="", help="Maximum time to allow one check to "
                     "run (ms|s|m|h) (default 30s)."),
        click.option("--health-start-period", default="", help="Start period for the container "
                     "to initialize before counting retries towards unstable (ms|s|m|h)."),
        click.option("--health-start-interval", default="", help="Time between running the "
                     "check during the start period (ms|s|m|h) (default 5s)."),
        click.option("--health-retries", type=int, default=0, help="Consecutive failures "
                     "needed to report unhealthy (default 3)."),
        click.option("--no-healthcheck", is_flag=True, help="Disable any container-specified "
                     "HEALTHCHECK."),
        # resource flags (engine/limits.py checks the values as Docker does; docs/cgroups.md)
        click.option("--cpu-quota", type=int, default=0, help="Limit CPU CFS quota (µs of CPU "
                     "time per period)."),
        click.option("--cpu-period", type=int, default=0, help="Limit CPU CFS period (µs, "
                     "1000-1000000)."),
        click.option("--cpuset-mems", default="", help="Memory nodes to allocate from (0-3, 0,1)."),
        click.option("--memory-reservation", default="", help="Memory soft limit (256m)."),
        click.option("--oom-kill-disable", is_flag=True, help="Disable the OOM killer (cgroup "
                     "v1 only)."),
        click.option("--oom-score-adj", type=int, default=0, help="Tune the host's OOM "
                     "preferences (-1000 to 1000)."),
        click.option("--blkio-weight", type=int, default=0, help="Block IO (relative weight), "
                     "between 10 and 1000, or 0 to disable."),
        click.option("--device", "devices", multiple=True, help="Add a host device to the "
                     "container: HOST[:CONTAINER][:rwm]."),
        click.option("--device-read-bps", multiple=True, help="Limit read rate from a device "
                     "(/dev/sda:1mb)."),
        click.option("--device-write-bps", multiple=True, help="Limit write rate to a device "
                     "(/dev/sda:1mb)."),
        click.option("--device-read-iops", multiple=True, help="Limit read rate (IO per "
                     "second) from a device (/dev/sda:1000)."),
        click.option("--device-write-iops", multiple=True, help="Limit write rate (IO per "
                     "second) to a device (/dev/sda:1000)."),
        click.option("--cgroup-parent", default="", help="Optional parent cgroup for the "
                     "container (a cgroupfs path)."),
        click.option("--cgroupns", default="", help="Cgroup namespace to use: host or private "
                     "(default: private on cgroup v2, host on v1)."),
    ]
    opts += runflags.OPTIONS  # process, logging, sharing; the refused ones (runflags.py)
    for o in reversed(opts):
        f = o(f)
    return f


def _options(image: str, command: tuple[str, ...], kw: dict):
    from ..engine.lifecycle import RunOptions  # lazily: start-up (see common.containers_api)

    env = []
    for path in kw["env_file"]:
        try:
            with open(path) as f:
                env += [ln.rstrip("\n") for ln in f if ln.strip() and not ln.startswith("#")]
        except OSError as e:
            raise MinirunError(f"open {path}: {e.strerror}") from None
    env += list(kw["env"])
    labels = {}
    for text in kw["labels"]:
        k, _, v = text.partition("=")
        labels[k] = v
    for flag, mode in (("--pid", kw["pid_mode"]), ("--ipc", kw["ipc_mode"]),
                       ("--uts", kw["uts_mode"])):
        if mode not in ("", "host", "private"):
            raise MinirunError(f"{flag} {mode}: only host or private is supported")
    if kw["network"] == "default":
        kw["network"] = "bridge"
    cpus = 0
    if kw["cpus"]:
        try:
            cpus = round(float(kw["cpus"]) * 1e9)
        except ValueError:
            raise MinirunError(f"invalid argument \"{kw['cpus']}\" for \"--cpus\" flag: failed "
                               f"to parse {kw['cpus']} as a rational number") from None
    from ..engine import bundle, health, limits  # lazily: start-up (see common.containers_api)

    memory = limits.size(kw["memory"], "-m, --memory") if kw["memory"] else 0
    swap = limits.size(kw["memory_swap"], "--memory-swap", swap=True) if kw["memory_swap"] else 0

    sysctls = {}
    for text in kw["sysctls"]:
        k, sep, v = text.partition("=")
        if not sep or not k:
            raise MinirunError(f"invalid --sysctl {text!r}: use KEY=VALUE")
        sysctls[k] = v
    try:
        shm = parse_bytes(kw["shm_size"]) if kw["shm_size"] else 0
    except (ValueError, MinirunError) as e:
        raise MinirunError(f"invalid size for --shm-size: {e}") from None

    healthcheck = health.from_flags(  # None when no --health-* flag was given
        kw["health_cmd"], kw["health_interval"], kw["health_timeout"], kw["health_start_period"],
        kw["health_start_interval"], kw["health_retries"], kw["no_healthcheck"])
    return RunOptions(
        image=image, command=list(command), name=kw["name"], tty=kw["tty"],
        interactive=kw["interactive"], env=env, entrypoint=kw["entrypoint"],
        workdir=kw["workdir"], user=kw["user"], hostname=kw["hostname"],
        domainname=kw["domainname"], read_only=kw["read_only"], tmpfs=list(kw["tmpfs"]),
        volumes=list(kw["volumes"]), mounts=list(kw["mounts"]), memory=memory,
        memory_swap=swap, nano_cpus=cpus, cpu_shares=kw["cpu_shares"],
        cpuset_cpus=kw["cpuset_cpus"], pids_limit=kw["pids_limit"], restart=kw["restart"],
        auto_remove=kw["auto_remove"], init=kw["init"], cap_add=list(kw["cap_add"]),
        cap_drop=list(kw["cap_drop"]), privileged=kw["privileged"], pid_mode=kw["pid_mode"],
        ipc_mode=kw["ipc_mode"], uts_mode=kw["uts_mode"],
        network=kw["network"], publish=list(kw["publish"]), publish_all=kw["publish_all"],
        ip=kw["ip"], ip6=kw["ip6"], aliases=list(kw["aliases"]), dns=list(kw["dns"]),
        dns_search=list(kw["dns_search"]), add_hosts=list(kw["add_host"]), labels=labels,
        stop_signal=kw["stop_signal"], stop_timeout=kw["stop_timeout"],
        security_opt=list(kw["security_opt"]), userns=kw["userns"],
        userns_remap=kw["userns_remap"], healthcheck=healthcheck,
        ulimits=[bundle.parse_ulimit(u) for u in kw["ulimits"]], sysctls=sysctls, shm_size=shm,
        expose=list(kw["expose"]), **_resource_options(kw))


def _resource_options(kw: dict) -> dict:
    """RunOptions' resource fields from run's flags, parsed as the docker CLI parses them."""
    from ..engine import devices, limits  # lazily: start-up (see common.containers_api)

    def throttles(flag: str, iops: bool) -> list:
        return [limits.throttle(v, "--" + flag, iops) for v in kw[flag.replace("-", "_")]]

    return dict(
        cpu_quota=kw["cpu_quota"], cpu_period=kw["cpu_period"], cpuset_mems=kw["cpuset_mems"],
        memory_reservation=limits.size(kw["memory_reservation"], "--memory-reservation")
        if kw["memory_reservation"] else 0,
        oom_kill_disable=kw["oom_kill_disable"], oom_score_adj=kw["oom_score_adj"],
        blkio_weight=kw["blkio_weight"], devices=[devices.parse(d) for d in kw["devices"]],
        device_read_bps=throttles("device-read-bps", False),
        device_write_bps=throttles("device-write-bps", False),
        device_read_iops=throttles("device-read-iops", True),
        device_write_iops=throttles("device-write-iops", True),
        cgroup_parent=kw["cgroup_parent"], cgroupns=kw["cgroupns"])


def _create(obj, image: str, command, kw) -> str:
    """The new container's ID (written to --cidfile)."""
    opts = _options(image, command, kw)
    runflags.apply(opts, kw)
    cidfile = runflags.CidFile(kw["cidfile"])
    try:
        with runflags.quiet(kw["quiet"]):  # -q: no pull progress
            record = ensure_image(obj, image, kw["pull_policy"], kw["platform"])
        created = _api().create(_engine(obj), opts, record)
    except BaseException:
        cidfile.abandon()
        raise
    cidfile.written(created["Id"])
    for w in created.get("Warnings") or []:  # as the docker CLI prints the daemon's
        click.echo(f"WARNING: {w}", err=True)
    return created["Id"]


@main.command(context_settings=RUN_SETTINGS)
@_run_options
@click.option("-d", "--detach", is_flag=True, help="Run in the background; print the ID.")
@click.option("--sig-proxy/--no-sig-proxy", default=True,
              help="Forward signals to the container (without -t).")
@click.option("--detach-keys", default="", help="Override the key sequence for detaching "
              "(default ctrl-p,ctrl-q).")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def run(obj, image: str, command: tuple[str, ...], detach: bool, sig_proxy: bool,
        detach_keys: str, **kw) -> None:
    """Create and start a container from IMAGE, running COMMAND (or the image's default)."""
    keys = _detach_keys(detach_keys)
    if kw["attach"] and detach:
        raise MinirunError("Conflicting options: -a and -d")
    if not detach and not kw["tty"] and not kw["interactive"] and not kw["attach"] and \
            os.isatty(0) and os.isatty(1):
        kw["tty"] = kw["interactive"] = True  # what a person at a terminal means (module doc)
    # lazy: only run starts a monitor (create does not), and this module is loaded for both
    from ..engine import early
    from ..engine.monitorhandle import MonitorHandle, plugs_links

    eng = _engine(obj)
    # Its start-up overlaps ours (monitorhandle.MonitorHandle), and its network helper's too:
    # started by the launcher before click was imported (engine/early.py), or now.
    monitor = early.take(eng.root, eng.runroot) or \
        MonitorHandle(eng, network=plugs_links(kw["network"]))
    try:
        cid = _create(obj, image, command, kw)
    except BaseException:
        monitor.cancel()
        raise
    try:
        if detach:
            _api().start(eng, cid, monitor=monitor, prepared=True)
            click.echo(cid)
            return
        code = _exit_code(_attach_api().run_attached(eng, eng.containers.load(cid), sig_proxy,
                                                     monitor, detach_keys=keys, prepared=True))
    except MinirunError:
        if kw["auto_remove"]:  # --rm: a container that could not start goes too
            eng.remove_files(eng.containers.load(cid), volumes=True)
        raise
    sys.exit(code)


container_group.add_command(run, "run")  # `minirun container run`
