"""Container lifecycle commands: run, create, start, attach, stop, kill, restart, rm, pause,
unpause, wait, rename, container prune, and cp, diff, export; the `container` group.

(ps, inspect, logs, top and port are in listing.py, exec in exec.py, stats in stats.py.)
They parse Docker's flags (run's into engine.RunOptions) and call the engine API
(engine/api/containers.py); every line of output is shaped like Docker's. At a terminal, `minirun run IMAGE sh` without -i/-t does what the user
means: it runs as if `-it` had been given (docker would run sh with stdin closed, and it would
exit at once). Scripts, with no terminal, get exactly Docker's behaviour.
"""

from __future__ import annotations

import os
import sys

import click

from ..base.units import parse_bytes
from ..errors import MinirunError
from . import container_group, main, runflags
from .pull import ensure_image
from .render import confirm, deleted


def _engine(obj):
    return obj.engine()


def _api():
    """The engine API's containers module. Imported when a command runs, not at the top:
    every minirun command imports this module, and `minirun version` needs no engine."""
    from ..engine.api import containers  # lazily: the start-up of every command (see above)

    return containers


def _attach_api():
    """The engine API's attach module (run in the foreground, start -a, attach)."""
    from ..engine.api import attach  # lazily: start-up (see _api)

    return attach


def _files_api():
    """The engine API's files module (cp, diff, export)."""
    from ..engine.api import files  # lazily: start-up (see _api)

    return files


# --- run and create --------------------------------------------------------------------------------


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
    from ..engine.lifecycle import RunOptions  # lazily: start-up (see _api)

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
    from ..engine import bundle, health, limits  # lazily: start-up (see _api)

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
    from ..engine import devices, limits  # lazily: start-up (see _api)

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


_RUN_SETTINGS = {"allow_interspersed_args": False, "ignore_unknown_options": False}


@main.command(context_settings=_RUN_SETTINGS)
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
            _api().start(eng, cid, monitor=monitor)
            click.echo(cid)
            return
        code = _exit_code(_attach_api().run_attached(eng, eng.containers.load(cid), sig_proxy,
                                                     monitor, detach_keys=keys))
    except MinirunError:
        if kw["auto_remove"]:  # --rm: a container that could not start goes too
            eng.remove_files(eng.containers.load(cid), volumes=True)
        raise
    sys.exit(code)


@main.command(context_settings=_RUN_SETTINGS)
@_run_options
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def create(obj, image: str, command: tuple[str, ...], **kw) -> None:
    """Create a container from IMAGE without starting it; print its ID."""
    click.echo(_create(obj, image, command, kw))


def _detach_keys(text: str) -> bytes:
    """--detach-keys, checked before anything is made (base/detachkeys.py)."""
    from ..base import detachkeys  # lazily: start-up (see _api)

    try:
        return detachkeys.parse(text)
    except detachkeys.DetachKeysError as e:
        raise MinirunError(str(e)) from None


def _exit_code(result: dict) -> int:
    """What `run`, `start -a` and `attach` exit with: the container's code, or 0 when the user
    detached (with a word about it at a terminal, as Docker's)."""
    if result["Detached"]:
        click.echo("\r\nread escape sequence" if result["Tty"] else "", err=True)
        return 0
    return result["StatusCode"]


# --- start, attach, stop, kill, restart, rm, pause, unpause, wait, rename -----------------------


@main.command()
@click.option("-a", "--attach", "attach_", is_flag=True, help="Attach STDOUT/STDERR.")
@click.option("-i", "--interactive", is_flag=True, help="Attach STDIN.")
@click.option("--detach-keys", default="", help="Override the key sequence for detaching "
              "(default ctrl-p,ctrl-q).")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def start(obj, attach_: bool, interactive: bool, detach_keys: str,
          containers: tuple[str, ...]) -> None:
    """Start one or more created or stopped containers (their filesystem is kept)."""
    eng = _engine(obj)
    keys = _detach_keys(detach_keys)
    if attach_ or interactive:
        if len(containers) > 1:
            raise MinirunError("you cannot start and attach multiple containers at once")
        sys.exit(_exit_code(_attach_api().start_attached(eng, containers[0],
                                                         stdin=interactive, detach_keys=keys)))
    _each(containers, lambda ref: (_api().start(eng, ref), ref)[1])


@main.command("attach")
@click.option("--no-stdin", is_flag=True, help="Do not attach STDIN.")
@click.option("--detach-keys", default="", help="Override the key sequence for detaching "
              "(default ctrl-p,ctrl-q).")
@click.argument("container")
@click.pass_obj
def attach_cmd(obj, no_stdin: bool, detach_keys: str, container: str) -> None:
    """Attach this terminal to a running container's stdio (ctrl-p ctrl-q detaches)."""
    result = _attach_api().attach(_engine(obj), container, stdin=not no_stdin,
                                  detach_keys=_detach_keys(detach_keys))
    if result["Detached"]:
        if result["Tty"]:
            click.echo("\r\nread escape sequence", err=True)
        sys.exit(0)
    sys.exit(result["StatusCode"])


@main.command()
@click.option("-t", "--time", "timeout", type=int, default=None,
              help="Seconds to wait before killing it (default 10, or its --stop-timeout).")
@click.option("-s", "--signal", "sig", default="", help="Signal to send (default: its StopSignal).")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def stop(obj, timeout, sig: str, containers) -> None:
    """Stop running containers: the stop signal, then SIGKILL after the timeout."""
    eng = _engine(obj)
    _each(containers, lambda ref: (_api().stop(eng, ref, timeout, sig), ref)[1])


@main.command()
@click.option("-s", "--signal", "sig", default="KILL", help="Signal to send (default KILL).")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def kill(obj, sig: str, containers) -> None:
    """Kill running containers (SIGKILL, or -s SIGNAL)."""
    api, eng = _api(), _engine(obj)
    num = api.parse_signal(sig)  # a bad signal is one error, not one per container
    _each(containers, lambda ref: (api.kill(eng, ref, num), ref)[1])


@main.command()
@click.option("-t", "--time", "timeout", type=int, default=None, help="Seconds before SIGKILL.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def restart(obj, timeout, containers) -> None:
    """Restart containers: stop (if running), then start again."""
    eng = _engine(obj)
    _each(containers, lambda ref: (_api().restart(eng, ref, timeout), ref)[1])


@main.command()
@click.option("-f", "--force", is_flag=True, help="Kill a running container first.")
@click.option("-v", "--volumes", is_flag=True, help="Also remove its anonymous volumes.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def rm(obj, force: bool, volumes: bool, containers) -> None:
    """Remove containers (their writable layer too; named volumes stay)."""
    eng = _engine(obj)
    _each(containers, lambda ref: (_api().remove(eng, ref, force, volumes), ref)[1])


@main.command()
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def pause(obj, containers) -> None:
    """Freeze every process of the containers (the cgroup freezer)."""
    eng = _engine(obj)
    _each(containers, lambda ref: (_api().pause(eng, ref), ref)[1])


@main.command()
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def unpause(obj, containers) -> None:
    """Thaw paused containers."""
    eng = _engine(obj)
    _each(containers, lambda ref: (_api().unpause(eng, ref), ref)[1])


@main.command()
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def wait(obj, containers) -> None:
    """Block until the containers stop; print each exit code."""
    eng = _engine(obj)
    _each(containers, lambda ref: str(_api().wait(eng, ref)["StatusCode"]))


@main.command()
@click.argument("container")
@click.argument("new_name")
@click.pass_obj
def rename(obj, container: str, new_name: str) -> None:
    """Rename a container."""
    _api().rename(_engine(obj), container, new_name)


def _each(refs, fn) -> None:
    """Docker's multi-container verbs: do each, print what fn returns, report failures at the
    end (exit 1 if any failed)."""
    failed = False
    for ref in refs:
        try:
            out = fn(ref)
            if out is not None:
                click.echo(out)
        except MinirunError as e:
            click.echo(f"minirun: {e}", err=True)
            failed = True
    if failed:
        sys.exit(1)


@container_group.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.pass_obj
def container_prune(obj, force: bool) -> None:
    """Remove all stopped containers."""
    confirm(force, "This will remove all stopped containers.")
    render_prune(_api().prune(_engine(obj)))


def render_prune(result: dict) -> None:
    """What `container prune` prints (`system prune` too)."""
    deleted("Containers", result["ContainersDeleted"])


# --- cp, diff, export ---------------------------------------------------------------------------------


def _split_ref(text: str) -> tuple[str | None, str]:
    """"ctr:/path" -> ("ctr", "/path"); a host path (absolute, relative or "-") -> (None, it)."""
    if text == "-" or text.startswith(("/", ".")) or ":" not in text:
        return None, text
    ref, _, path = text.partition(":")
    return ref, path or "/"


@main.command()
@click.option("-a", "--archive", is_flag=True, help="Keep owners (uid/gid) when copying in.")
@click.option("-L", "--follow-link", is_flag=True, help="(accepted) follow a symlink SRC.")
@click.argument("src")
@click.argument("dest")
@click.pass_obj
def cp(obj, archive: bool, follow_link: bool, src: str, dest: str) -> None:
    """Copy files between a container and the host: cp CTR:SRC DEST, cp SRC CTR:DEST
    (- for a tar stream on stdin/stdout)."""
    api, eng = _files_api(), _engine(obj)
    s_ref, s_path = _split_ref(src)
    d_ref, d_path = _split_ref(dest)
    if (s_ref is None) == (d_ref is None):
        raise MinirunError("copying between containers is not supported" if s_ref else
                           "must specify at least one container source (CONTAINER:PATH)")
    if s_ref is not None:
        if d_path == "-":
            if os.isatty(1):
                raise MinirunError("cowardly refusing to write a tar to a terminal: redirect "
                                   "stdout")
            api.archive_get(eng, s_ref, s_path, sys.stdout.buffer)
        else:
            api.copy_from(eng, s_ref, s_path, d_path, archive)
    elif s_path == "-":
        api.archive_put(eng, d_ref, d_path, sys.stdin.buffer)
    else:
        api.copy_to(eng, d_ref, s_path, d_path, archive)


@main.command()
@click.argument("container")
@click.pass_obj
def diff(obj, container: str) -> None:
    """Files changed in a container's filesystem: A added, C changed, D deleted."""
    letters = {kind: letter for letter, kind in _files_api().KINDS.items()}
    for ch in _files_api().changes(_engine(obj), container):
        click.echo(f"{letters[ch['Kind']]} {ch['Path']}")


@main.command()
@click.option("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")
@click.argument("container")
@click.pass_obj
def export(obj, output: str | None, container: str) -> None:
    """Export a container's filesystem as a tar archive (running or not)."""
    api, eng = _files_api(), _engine(obj)
    if output:
        tmp = output + ".tmp"
        try:
            with open(tmp, "wb") as f:
                api.export(eng, container, f)
            os.rename(tmp, output)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return
    if os.isatty(1):
        raise MinirunError("cowardly refusing to save to a terminal. Use the -o flag or "
                           "redirect")
    api.export(eng, container, sys.stdout.buffer)


# `minirun container ls|run|stop|...`: the management-command aliases.


# `minirun container run|stop|...`: the management-command aliases (listing.py, exec.py and
# stats.py add theirs).
for _name, _cmd in (("run", run), ("create", create), ("start", start), ("stop", stop),
                    ("kill", kill), ("restart", restart), ("rm", rm), ("remove", rm),
                    ("attach", attach_cmd), ("wait", wait), ("rename", rename),
                    ("pause", pause), ("unpause", unpause), ("cp", cp), ("diff", diff),
                    ("export", export)):
    container_group.add_command(_cmd, _name)
