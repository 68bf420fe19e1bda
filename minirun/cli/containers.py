"""Container commands: run, create, start, stop, kill, restart, rm, ps, logs, exec, attach,
inspect, wait, rename, pause, unpause, top, port, container prune (and `container ...`).

They parse Docker's flags into engine.RunOptions and call the engine; every line of output is
shaped like Docker's. At a terminal, `minirun run IMAGE sh` without -i/-t does what the user
means: it runs as if `-it` had been given (docker would run sh with stdin closed, and it would
exit at once). Scripts, with no terminal, get exactly Docker's behaviour.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import click

from ..errors import CommandError, MinirunError
from . import main

TIME_FMT = "%Y-%m-%dT%H:%M:%S"


@main.group("container", cls=type(main))
def container_group() -> None:
    """Manage containers (the docker container ... management commands)."""


def _engine(obj):
    return obj.engine()


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
        click.option("--network-alias", "aliases", multiple=True,
                     help="Another name for it on a user network."),
        click.option("--dns", multiple=True, help="A DNS server for its resolv.conf."),
        click.option("--dns-search", multiple=True, help="A DNS search domain."),
        click.option("--add-host", multiple=True, help="An /etc/hosts entry: HOST:IP."),
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
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _options(image: str, command: tuple[str, ...], kw: dict):
    from ..engine.lifecycle import RunOptions

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
            cpus = int(float(kw["cpus"]) * 1e9)
        except ValueError:
            raise MinirunError(f"invalid argument {kw['cpus']!r} for --cpus: a number") from None
    try:
        if kw["memory"] or kw["memory_swap"]:
            from ..oci.control import parse_bytes  # (the runtime's: only when a size is given)
        memory = parse_bytes(kw["memory"]) if kw["memory"] else 0
        swap = parse_bytes(kw["memory_swap"]) if kw["memory_swap"] else 0
    except (ValueError, MinirunError) as e:
        raise MinirunError(f"invalid size for --memory/--memory-swap: {e}") from None
    if memory and 0 < memory < 6 * 1024 * 1024:
        raise MinirunError("Minimum memory limit allowed is 6MB")
    from ..engine import health

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
        ip=kw["ip"], aliases=list(kw["aliases"]), dns=list(kw["dns"]),
        dns_search=list(kw["dns_search"]), add_hosts=list(kw["add_host"]), labels=labels,
        stop_signal=kw["stop_signal"], stop_timeout=kw["stop_timeout"],
        security_opt=list(kw["security_opt"]), userns=kw["userns"],
        userns_remap=kw["userns_remap"], healthcheck=healthcheck)


def _create(obj, image: str, command, kw):
    from .pull import ensure_image

    opts = _options(image, command, kw)
    record = ensure_image(obj, image, kw["pull_policy"], kw["platform"])
    return _engine(obj).create(opts, record)


_RUN_SETTINGS = {"allow_interspersed_args": False, "ignore_unknown_options": False}


@main.command(context_settings=_RUN_SETTINGS)
@_run_options
@click.option("-d", "--detach", is_flag=True, help="Run in the background; print the ID.")
@click.option("--sig-proxy/--no-sig-proxy", default=True,
              help="Forward signals to the container (without -t).")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def run(obj, image: str, command: tuple[str, ...], detach: bool, sig_proxy: bool, **kw) -> None:
    """Create and start a container from IMAGE, running COMMAND (or the image's default)."""
    if not detach and not kw["tty"] and not kw["interactive"] and os.isatty(0) and os.isatty(1):
        kw["tty"] = kw["interactive"] = True  # what a person at a terminal means (module doc)
    from ..engine.lifecycle import MonitorHandle

    eng = _engine(obj)
    monitor = MonitorHandle(eng)  # its start-up overlaps ours (lifecycle.MonitorHandle)
    try:
        c = _create(obj, image, command, kw)
    except BaseException:
        monitor.cancel()
        raise
    try:
        if detach:
            eng.start(c, monitor=monitor)
            click.echo(c.id)
            return
        code = _attached_start(eng, c, sig_proxy, monitor)
    except MinirunError:
        if kw["auto_remove"]:  # --rm: a container that could not start goes too
            eng.remove_files(eng.containers.load(c.id), volumes=True)
        raise
    sys.exit(code)


@main.command(context_settings=_RUN_SETTINGS)
@_run_options
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def create(obj, image: str, command: tuple[str, ...], **kw) -> None:
    """Create a container from IMAGE without starting it; print its ID."""
    c = _create(obj, image, command, kw)
    click.echo(c.id)


def _attached_start(eng, c, sig_proxy: bool = True, monitor=None, stdin: bool = True) -> int:
    """Start `c` with this terminal attached (its stdin too if it keeps one open and `stdin`);
    the container's exit code."""
    from ..engine import attach

    eng.start(c, attach=True, monitor=monitor)
    sock = attach.connect(eng.cdir(c.id))
    tty = bool(c.config.get("Tty"))
    stdin = stdin and bool(c.config.get("OpenStdin"))
    old = {}
    if sig_proxy and not tty:
        def forward(signum, _frame):
            try:
                eng.kill(eng.containers.load(c.id), signum, stop=False)
            except MinirunError:
                pass

        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                  signal.SIGUSR2):
            old[s] = signal.signal(s, forward)
    try:
        code = attach.session(sock, tty, stdin, start=True)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        sock.close()
    if code is None:
        latest = eng.containers.load(c.id) if os.path.exists(eng.cdir(c.id)) else None
        if latest is not None and latest.state.running:
            click.echo("\r\nread escape sequence" if tty else "", err=True)
            return 0
        code = latest.state.exit_code if latest is not None else 0
    return code


# --- start, attach, stop, kill, restart, rm ----------------------------------------------------------


@main.command()
@click.option("-a", "--attach", "attach_", is_flag=True, help="Attach STDOUT/STDERR.")
@click.option("-i", "--interactive", is_flag=True, help="Attach STDIN.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def start(obj, attach_: bool, interactive: bool, containers: tuple[str, ...]) -> None:
    """Start one or more created or stopped containers (their filesystem is kept)."""
    eng = _engine(obj)
    if attach_ or interactive:
        if len(containers) > 1:
            raise MinirunError("you cannot start and attach multiple containers at once")
        c = eng.get(containers[0])
        if c.state.running:
            raise MinirunError(f"container {c.short_id} is already running (use `minirun "
                               "attach`)")
        sys.exit(_attached_start(eng, c, stdin=interactive))
    _each(containers, lambda ref: (eng.start(eng.get(ref)), ref)[1])


@main.command("attach")
@click.option("--no-stdin", is_flag=True, help="Do not attach STDIN.")
@click.argument("container")
@click.pass_obj
def attach_cmd(obj, no_stdin: bool, container: str) -> None:
    """Attach this terminal to a running container's stdio (ctrl-p ctrl-q detaches)."""
    from ..engine import attach

    eng = _engine(obj)
    c = eng.get(container)
    if not c.state.running:
        raise MinirunError("You cannot attach to a stopped container, start it first")
    sock = attach.connect(eng.cdir(c.id))
    tty = bool(c.config.get("Tty"))
    code = attach.session(sock, tty, bool(c.config.get("OpenStdin")) and not no_stdin)
    if code is None:
        if tty:
            click.echo("\r\nread escape sequence", err=True)
        sys.exit(0)
    sys.exit(code)


@main.command()
@click.option("-t", "--time", "timeout", type=int, default=None,
              help="Seconds to wait before killing it (default 10, or its --stop-timeout).")
@click.option("-s", "--signal", "sig", default="", help="Signal to send (default: its StopSignal).")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def stop(obj, timeout, sig: str, containers) -> None:
    """Stop running containers: the stop signal, then SIGKILL after the timeout."""
    eng = _engine(obj)

    def one(ref: str) -> str:
        c = eng.get(ref)
        if sig:
            c.config["StopSignal"] = sig
        eng.stop(c, timeout)
        return ref

    _each(containers, one)


@main.command()
@click.option("-s", "--signal", "sig", default="KILL", help="Signal to send (default KILL).")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def kill(obj, sig: str, containers) -> None:
    """Kill running containers (SIGKILL, or -s SIGNAL)."""
    from ..engine.lifecycle import _signal_number

    eng = _engine(obj)
    num = _signal_number(sig)
    _each(containers, lambda ref: (eng.kill(eng.get(ref), num), ref)[1])


@main.command()
@click.option("-t", "--time", "timeout", type=int, default=None, help="Seconds before SIGKILL.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def restart(obj, timeout, containers) -> None:
    """Restart containers: stop (if running), then start again."""
    eng = _engine(obj)

    def one(ref: str) -> str:
        c = eng.get(ref)
        eng.stop(c, timeout)
        eng.start(eng.get(c.id))
        return ref

    _each(containers, one)


@main.command()
@click.option("-f", "--force", is_flag=True, help="Kill a running container first.")
@click.option("-v", "--volumes", is_flag=True, help="Also remove its anonymous volumes.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def rm(obj, force: bool, volumes: bool, containers) -> None:
    """Remove containers (their writable layer too; named volumes stay)."""
    eng = _engine(obj)
    _each(containers, lambda ref: (eng.remove(eng.get(ref), force, volumes), ref)[1])


@main.command()
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def pause(obj, containers) -> None:
    """Freeze every process of the containers (the cgroup freezer)."""
    eng = _engine(obj)
    _each(containers, lambda ref: (eng.pause(eng.get(ref)), ref)[1])


@main.command()
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def unpause(obj, containers) -> None:
    """Thaw paused containers."""
    eng = _engine(obj)
    _each(containers, lambda ref: (eng.unpause(eng.get(ref)), ref)[1])


@main.command()
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def wait(obj, containers) -> None:
    """Block until the containers stop; print each exit code."""
    eng = _engine(obj)

    def one(ref: str) -> str:
        c = eng.get(ref)
        eng.wait_exit(c, None)
        return str(eng.containers.load(c.id).state.exit_code)

    _each(containers, one)


@main.command()
@click.argument("container")
@click.argument("new_name")
@click.pass_obj
def rename(obj, container: str, new_name: str) -> None:
    """Rename a container."""
    eng = _engine(obj)
    eng.containers.rename(eng.get(container).id, new_name)


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


# --- ps -----------------------------------------------------------------------------------------------

PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
              "RunningFor": "CREATED", "CreatedAt": "CREATED AT", "Status": "STATUS",
              "Ports": "PORTS", "Names": "NAMES", "Labels": "LABELS", "State": "STATE",
              "Size": "SIZE", "Mounts": "MOUNTS"}
PS_DEFAULT = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t"
              "{{.Ports}}\t{{.Names}}")


def _parse_time(text: str) -> float:
    import calendar

    if not text or text.startswith("0001"):
        return 0.0
    base = calendar.timegm(time.strptime(text[:19], TIME_FMT))
    return base + (float("0." + text[20:-1]) if len(text) > 20 else 0.0)


def status_text(c, now: float | None = None) -> str:
    from .images import human_duration

    now = time.time() if now is None else now
    s = c.state
    if s.status == "running":
        up = f"Up {human_duration(now - _parse_time(s.started_at))}"
        if s.health is not None:
            from ..engine.health import describe

            up += f" ({describe(s.health)})"  # Up 5 seconds (healthy), (health: starting)
        return up
    if s.status == "paused":
        return f"Up {human_duration(now - _parse_time(s.started_at))} (Paused)"
    if s.status == "restarting":
        return f"Restarting ({s.exit_code}) {human_duration(now - _parse_time(s.finished_at))} ago"
    if s.status == "exited":
        return f"Exited ({s.exit_code}) {human_duration(now - _parse_time(s.finished_at))} ago"
    if s.status == "dead":
        return "Dead"
    return "Created"


def _command_text(c, no_trunc: bool) -> str:
    text = " ".join([c.path, *c.args])
    if not no_trunc and len(text) > 20:
        text = text[:19] + "…"
    return f'"{text}"'


def ps_row(c, no_trunc: bool = False) -> dict:
    from .images import human_duration

    created = _parse_time(c.created)
    labels = c.config.get("Labels") or {}
    return {
        "ID": c.id if no_trunc else c.short_id, "Image": c.image,
        "Command": _command_text(c, no_trunc),
        "RunningFor": f"{human_duration(time.time() - created)} ago",
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(created)),
        "Status": status_text(c), "State": c.state.status, "Ports": ports_text(c),
        "Names": c.name,
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        "Mounts": ",".join(m.get("Name") or m.get("Source", "") for m in c.mounts),
        "Size": "",
    }


def port_lines(c) -> list[str]:
    """`docker port`'s lines: 80/tcp -> 0.0.0.0:8080."""
    out = []
    for key, binds in sorted((c.host_config.get("PortBindings") or {}).items()):
        for b in binds:
            out.append(f"{key} -> {b.get('HostIp') or '0.0.0.0'}:{b['HostPort']}")
    return out


def ports_text(c) -> str:
    """The PORTS column of `ps`: 0.0.0.0:8080->80/tcp, for a running container."""
    if not c.state.running:
        return ""
    return ", ".join(f"{b.get('HostIp') or '0.0.0.0'}:{b['HostPort']}->{key}"
                     for key, binds in sorted((c.host_config.get("PortBindings") or {}).items())
                     for b in binds)


def _ps_filter(c, filters: list[str]) -> bool:
    for f in filters:
        k, _, v = f.partition("=")
        if k == "status" and c.state.status != v:
            return False
        if k == "name" and v not in c.name:
            return False
        if k == "id" and not c.id.startswith(v):
            return False
        if k == "label":
            lk, eq, lv = v.partition("=")
            labels = c.config.get("Labels") or {}
            if lk not in labels or (eq and labels[lk] != lv):
                return False
        if k == "ancestor" and v not in (c.image, c.image_id, c.image_id.split(":")[-1][:12]):
            return False
        if k == "exited" and (c.state.status != "exited" or str(c.state.exit_code) != v):
            return False
        if k == "health":
            if v not in ("starting", "healthy", "unhealthy", "none"):
                raise MinirunError(f"Unrecognised filter value for health: {v}")
            if ((c.state.health or {}).get("Status") or "none") != v:
                return False
        if k not in ("status", "name", "id", "label", "ancestor", "exited", "health"):
            raise MinirunError(f"invalid filter '{k}': status, name, id, label, ancestor, "
                               "exited or health")
    return True


@main.command()
@click.option("-a", "--all", "all_", is_flag=True, help="Show all containers (default: running).")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output.")
@click.option("-f", "--filter", "filters", multiple=True,
              help="status=, name=, id=, label=k[=v], ancestor=, exited=, health=.")
@click.option("--format", "fmt", default="", help="json, table, or a Go template.")
@click.option("-n", "--last", type=int, default=-1, help="Show the n last created containers.")
@click.option("-l", "--latest", is_flag=True, help="Show the latest created container.")
@click.pass_obj
def ps(obj, all_: bool, quiet: bool, no_trunc: bool, filters, fmt: str, last: int,
       latest: bool) -> None:
    """List containers."""
    from .template import Format

    eng = _engine(obj)
    cs = sorted(eng.all(), key=lambda c: c.created, reverse=True)
    if latest:
        last = 1
    if last >= 0:
        all_ = True
        cs = cs[:last]
    if not all_ and not any(f.startswith("status=") for f in filters):
        cs = [c for c in cs if c.state.status in ("running", "paused", "restarting")]
    cs = [c for c in cs if _ps_filter(c, filters)]
    if quiet:
        for c in cs:
            click.echo(c.id if no_trunc else c.short_id)
        return
    rows = [ps_row(c, no_trunc) for c in cs]
    click.echo(Format(fmt or PS_DEFAULT, PS_HEADERS, PS_DEFAULT[6:]).write(rows), nl=False)


# --- inspect ------------------------------------------------------------------------------------------


def inspect_container(eng, c) -> dict:
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
        "LogPath": os.path.join(cdir, f"{c.id}-json.log"),
        "Name": "/" + c.name, "RestartCount": s.restart_count, "Driver": "overlay",
        "Platform": "linux", "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
        "HostConfig": dict(c.host_config),
        "GraphDriver": {"Name": "overlay", "Data": {"LowerDir": lower, "UpperDir": upper,
                                                    "WorkDir": work, "MergedDir": merged}},
        "Mounts": [{k: v for k, v in m.items() if k in ("Type", "Name", "Source", "Destination",
                                                         "Driver", "Mode", "RW", "Propagation")}
                   for m in c.mounts],
        "Config": dict(c.config),
        "NetworkSettings": _network_settings(c),
    }


def _network_settings(c) -> dict:
    """Docker's NetworkSettings: the endpoints, and the top-level fields of the default one."""
    mode = c.host_config.get("NetworkMode", "bridge")
    nets = {name: {k: v for k, v in ep.items() if k not in ("IfName", "Order")}
            for name, ep in c.networks.items()}
    if not nets and mode in ("none", "host"):
        nets = {mode: {}}
    first = next(iter(c.networks.values()), {})
    ports = {}
    for key, binds in (c.host_config.get("PortBindings") or {}).items():
        ports[key] = [{"HostIp": b.get("HostIp") or "0.0.0.0", "HostPort": b["HostPort"]}
                      for b in binds]
    running = c.state.running
    return {"Networks": nets, "Ports": ports if running else {},
            "IPAddress": first.get("IPAddress", "") if running else "",
            "IPPrefixLen": first.get("IPPrefixLen", 0), "Gateway": first.get("Gateway", ""),
            "MacAddress": first.get("MacAddress", ""),
            "SandboxKey": f"/proc/{c.state.pid}/ns/net" if c.state.pid else ""}


def _inspect_rows(obj, names: tuple[str, ...], kind: str | None) -> list[dict]:
    eng = _engine(obj)
    out = []
    missing = []
    for name in names:
        found = None
        if kind in (None, "container"):
            try:
                found = inspect_container(eng, eng.get(name))
            except MinirunError:
                found = None
        if found is None and kind in (None, "image"):
            try:
                from .images import inspect_image

                found = inspect_image(obj.store(), obj.store().resolve(name))
            except (MinirunError, ImportError):
                found = None
        if found is None and kind in (None, "volume"):
            try:
                found = eng.volumes.get(name).inspect()
            except MinirunError:
                found = None
        if found is None:
            missing.append(name)
        else:
            out.append(found)
    for name in missing:
        click.echo(f"Error: No such object: {name}", err=True)
    if missing:
        obj._inspect_failed = True
    return out


@main.command()
@click.option("-f", "--format", "fmt", default="", help="Go template, e.g. {{.State.Pid}}.")
@click.option("--type", "kind", type=click.Choice(["container", "image", "volume"]),
              default=None, help="Only look for this kind of object.")
@click.option("-s", "--size", is_flag=True, help="(accepted; sizes are not computed)")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def inspect(obj, fmt: str, kind, size: bool, names) -> None:
    """Low-level information on containers, images or volumes, as JSON (or --format)."""
    _print_inspect(obj, _inspect_rows(obj, names, kind), fmt)


def _print_inspect(obj, rows: list[dict], fmt: str) -> None:
    from .template import inspect_output

    click.echo(inspect_output(rows, fmt), nl=False)
    if getattr(obj, "_inspect_failed", False):
        sys.exit(1)


@container_group.command("inspect")
@click.option("-f", "--format", "fmt", default="")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def container_inspect(obj, fmt: str, names) -> None:
    """Low-level information on containers."""
    _print_inspect(obj, _inspect_rows(obj, names, "container"), fmt)


# --- logs -----------------------------------------------------------------------------------------------


@main.command()
@click.option("-f", "--follow", is_flag=True, help="Follow the output.")
@click.option("-n", "--tail", default="all", help="Lines from the end (default all).")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@click.option("--since", default="", help="Since a time, a timestamp or a duration (10m).")
@click.option("--until", default="", help="Until a time, a timestamp or a duration.")
@click.argument("container")
@click.pass_obj
def logs(obj, follow: bool, tail: str, timestamps: bool, since: str, until: str,
         container: str) -> None:
    """Fetch a container's logs (stdout to stdout, stderr to stderr)."""
    from ..engine import logs as logmod

    eng = _engine(obj)
    c = eng.get(container)
    path = os.path.join(eng.cdir(c.id), f"{c.id}-json.log")
    try:
        n = None if tail == "all" else int(tail)
        since_t = logmod.parse_since(since) if since else None
        until_t = logmod.parse_since(until) if until else None
    except ValueError as e:
        raise MinirunError(str(e)) from None
    size = os.path.getsize(path) if os.path.exists(path) else 0
    recs = logmod.read(path, tail=n, since=since_t)

    def emit(r: dict) -> None:
        if until_t and r.get("time", "") > until_t:
            return
        text = r.get("log", "")
        if timestamps:
            text = f"{r.get('time', '')} {text}"
        out = sys.stderr if r.get("stream") == "stderr" else sys.stdout
        out.write(text)
        out.flush()

    for r in recs:
        emit(r)
    if follow:
        def alive() -> bool:
            try:
                return eng.refresh(eng.containers.load(c.id)).state.running
            except MinirunError:
                return False

        if os.path.exists(path):
            for r in logmod.follow(path, size, alive):
                emit(r)


# --- exec -------------------------------------------------------------------------------------------------


@main.command("exec", context_settings=_RUN_SETTINGS)
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY.")
@click.option("-d", "--detach", is_flag=True, help="Run the command in the background.")
@click.option("-e", "--env", multiple=True, help="Set an environment variable.")
@click.option("-w", "--workdir", default="", help="Working directory in the container.")
@click.option("-u", "--user", default=None, help="user[:group].")
@click.option("--privileged", is_flag=True, help="Every capability for this process.")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def exec_(obj, interactive, tty, detach, env, workdir, user, privileged, container,
          command) -> None:
    """Run a command in a running container (every namespace and the cgroup joined)."""
    import json

    from ..engine import bundle, users
    from ..oci import execute, spec

    eng = _engine(obj)
    c = eng.get(container)
    if c.state.status != "running":
        if c.state.status == "paused":
            raise MinirunError(f"Container {c.id} is paused, unpause the container before exec")
        raise MinirunError(f"Container {c.id} is not running")
    cdir = eng.cdir(c.id)
    with open(os.path.join(cdir, "config.json")) as f:
        cfg = json.load(f)
    rootfs = os.path.join(cdir, "rootfs")
    u = users.resolve(rootfs, user if user is not None else (c.config.get("User") or ""))
    base_env = list(cfg["process"]["env"])
    env_list = bundle.environment(base_env, list(env), c.config.get("Hostname", ""), tty)
    if not any(e.startswith("HOME=") for e in env_list):
        env_list.append(f"HOME={u.home}")
    caps = cfg["process"].get("capabilities")
    if privileged:
        all_caps = bundle.capabilities([], [], True)
        caps = {k: all_caps for k in ("bounding", "effective", "permitted")}
    p = {"args": list(command), "env": env_list, "cwd": workdir or cfg["process"].get("cwd", "/"),
         "terminal": tty, "user": {"uid": u.uid, "gid": u.gid,
                                   "additionalGids": u.additional_gids},
         "capabilities": caps, "noNewPrivileges": cfg["process"].get("noNewPrivileges", False)}
    if tty and os.isatty(1):
        import shutil

        cols, rows = shutil.get_terminal_size()
        p["consoleSize"] = {"height": rows, "width": cols}
    proc = spec.parse_process(p)
    if detach and tty:
        tty = False
        proc.terminal = False
    saved = None
    if not interactive or detach:
        saved = os.dup(0)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    try:
        code = execute.exec_process(eng.runroot, c.id, proc, detach=detach)
    except CommandError as e:
        click.echo(f"minirun: {e}", err=True)
        sys.exit(e.command_code)
    except MinirunError as e:
        text = str(e)
        if "executable file not found" in text or "no such file or directory" in text:
            click.echo(f"minirun: {text}", err=True)
            sys.exit(127)
        if "permission denied" in text:
            click.echo(f"minirun: {text}", err=True)
            sys.exit(126)
        raise
    finally:
        if saved is not None:
            os.dup2(saved, 0)
            os.close(saved)
    sys.exit(code)


# --- top, port -----------------------------------------------------------------------------------------


@main.command()
@click.argument("container")
@click.argument("ps_args", nargs=-1)
@click.pass_obj
def top(obj, container: str, ps_args) -> None:
    """The running processes of a container (as host PIDs)."""
    from ..oci import container as oci
    from ..oci import state as st

    eng = _engine(obj)
    c = eng.get(container)
    if not c.state.running:
        raise MinirunError(f"Container {c.id} is not running")
    pids = oci.container_pids(st.load(eng.runroot, c.id))
    rows = [("UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD")]
    for pid in sorted(pids):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            uid = os.stat(f"/proc/{pid}").st_uid
        except OSError:
            continue
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = (int(fields[11]) + int(fields[12])) // ticks
        rows.append((_user_name(uid), str(pid), fields[1], "0", "-", "?",
                     f"{cpu // 3600:02d}:{cpu // 60 % 60:02d}:{cpu % 60:02d}", cmd))
    from .template import tabwrite

    click.echo(tabwrite(["\t".join(r) for r in rows]), nl=False)


def _user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


@main.command()
@click.argument("container")
@click.argument("private_port", required=False)
@click.pass_obj
def port(obj, container: str, private_port) -> None:
    """List a container's published ports (or the host side of one: port CTR 80/tcp)."""
    c = _engine(obj).get(container)
    lines = port_lines(c)
    if private_port:
        key = private_port if "/" in private_port else private_port + "/tcp"
        lines = [ln.split(" -> ")[1] for ln in lines if ln.startswith(key + " ")]
        if not lines:
            raise MinirunError(f"No public port '{key}' published for {c.name}")
    for ln in lines:
        click.echo(ln)


@container_group.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.pass_obj
def container_prune(obj, force: bool) -> None:
    """Remove all stopped containers."""
    if not force and os.isatty(0):
        click.confirm("WARNING! This will remove all stopped containers.\nAre you sure you want "
                      "to continue?", abort=True)
    eng = _engine(obj)
    removed = []
    for c in eng.all():
        if c.state.status in ("exited", "created", "dead"):
            eng.remove_files(c, volumes=False)
            removed.append(c.id)
    if removed:
        click.echo("Deleted Containers:")
        for cid in removed:
            click.echo(cid)
        click.echo("")
    click.echo("Total reclaimed space: 0B")


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
    from ..engine import files

    eng = _engine(obj)
    s_ref, s_path = _split_ref(src)
    d_ref, d_path = _split_ref(dest)
    if (s_ref is None) == (d_ref is None):
        raise MinirunError("copying between containers is not supported" if s_ref else
                           "must specify at least one container source (CONTAINER:PATH)")
    if s_ref is not None:
        if d_path == "-" and os.isatty(1):
            raise MinirunError("cowardly refusing to write a tar to a terminal: redirect stdout")
        files.copy_out(eng, eng.get(s_ref), s_path, d_path, archive)
    else:
        files.copy_in(eng, eng.get(d_ref), s_path, d_path, archive)


@main.command()
@click.argument("container")
@click.pass_obj
def diff(obj, container: str) -> None:
    """Files changed in a container's filesystem: A added, C changed, D deleted."""
    from ..engine import files

    eng = _engine(obj)
    for kind, path in files.diff(eng, eng.get(container)):
        click.echo(f"{kind} {path}")


@main.command()
@click.option("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")
@click.argument("container")
@click.pass_obj
def export(obj, output: str | None, container: str) -> None:
    """Export a container's filesystem as a tar archive (running or not)."""
    from ..engine import files

    eng = _engine(obj)
    c = eng.get(container)
    if output:
        tmp = output + ".tmp"
        try:
            with open(tmp, "wb") as f:
                files.export(eng, c, f)
            os.rename(tmp, output)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return
    if os.isatty(1):
        raise MinirunError("cowardly refusing to save to a terminal. Use the -o flag or "
                           "redirect")
    files.export(eng, c, sys.stdout.buffer)


# `minirun container ls|run|stop|...`: the management-command aliases.
for _name, _cmd in (("ls", ps), ("list", ps), ("ps", ps), ("run", run), ("create", create),
                    ("start", start), ("stop", stop), ("kill", kill), ("restart", restart),
                    ("rm", rm), ("remove", rm), ("logs", logs), ("exec", exec_), ("attach", attach_cmd),
                    ("wait", wait), ("rename", rename), ("pause", pause), ("unpause", unpause),
                    ("top", top), ("port", port), ("cp", cp), ("diff", diff),
                    ("export", export)):
    container_group.add_command(_cmd, _name)


# --- stats ---------------------------------------------------------------------------------------------

STATS_HEADERS = {"ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
                 "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
                 "BlockIO": "BLOCK I/O", "PIDs": "PIDS", "Container": "CONTAINER"}
STATS_DEFAULT = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t"
                 "{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}")


def binary_size(n: float) -> str:
    """go-units BytesSize: 1024-based, as docker stats shows memory ("1.5MiB")."""
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n /= 1024
        i += 1
    return f"{n:.4g}{units[i]}"


def _sample(eng, c) -> dict | None:
    from ..oci import container as oci
    from ..oci import state as st

    try:
        cg = oci.cgroup_of(st.load(eng.runroot, c.id))
        data = cg.stats() if cg is not None else {}
    except (MinirunError, OSError):
        return None
    rx = tx = 0
    try:
        with open(f"/proc/{c.state.pid}/net/dev") as f:  # the container's network namespace
            for line in f.readlines()[2:]:
                name, _, rest = line.partition(":")
                if name.strip() != "lo":
                    v = rest.split()
                    rx, tx = rx + int(v[0]), tx + int(v[8])
    except (OSError, ValueError, IndexError):
        pass
    return {"t": time.monotonic(), "data": data, "rx": rx, "tx": tx}


def _stats_row(c, a: dict, b: dict) -> dict:
    from .images import human_size

    d = b["data"]
    cpu_ns = (d.get("cpu", {}).get("usage", {}).get("total", 0)
              - a["data"].get("cpu", {}).get("usage", {}).get("total", 0))
    wall_ns = max((b["t"] - a["t"]) * 1e9, 1)
    mem = d.get("memory", {})
    usage = mem.get("usage", {}).get("usage", 0)
    raw = mem.get("raw", {})
    # Docker subtracts the page cache it could drop: inactive_file (v2) / total_inactive_file (v1).
    usage -= raw.get("total_inactive_file", raw.get("inactive_file", 0)) or 0
    limit = mem.get("usage", {}).get("limit", 0) or 0
    host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if not limit or limit > host:
        limit = host
    rd = wr = 0
    for e in d.get("blkio", {}).get("ioServiceBytesRecursive", []) or []:
        if e.get("op") == "Read":
            rd += e.get("value", 0)
        elif e.get("op") == "Write":
            wr += e.get("value", 0)
    return {"ID": c.short_id, "Container": c.short_id, "Name": c.name,
            "CPUPerc": f"{100.0 * cpu_ns / wall_ns:.2f}%",
            "MemUsage": f"{binary_size(max(usage, 0))} / {binary_size(limit)}",
            "MemPerc": f"{100.0 * max(usage, 0) / limit:.2f}%",
            "NetIO": f"{human_size(b['rx'], 3)} / {human_size(b['tx'], 3)}",
            "BlockIO": f"{human_size(rd, 3)} / {human_size(wr, 3)}",
            "PIDs": str(d.get("pids", {}).get("current", 0))}


@main.command()
@click.option("-a", "--all", "all_", is_flag=True, help="All containers (default: running).")
@click.option("--no-stream", is_flag=True, help="One sample, then exit.")
@click.option("--format", "fmt", default="", help="json, table, or a Go template.")
@click.argument("containers", nargs=-1)
@click.pass_obj
def stats(obj, all_: bool, no_stream: bool, fmt: str, containers) -> None:
    """Live resource usage: CPU %, memory, network and block I/O, PIDs (from the cgroup)."""
    from .template import Format

    eng = _engine(obj)
    form = Format(fmt or STATS_DEFAULT, STATS_HEADERS, STATS_DEFAULT[6:])
    while True:
        cs = [eng.get(r) for r in containers] if containers else \
            [c for c in eng.all() if all_ or c.state.running]
        first = {c.id: _sample(eng, c) for c in cs if c.state.running}
        time.sleep(0.5)
        rows = []
        for c in cs:
            a, b = first.get(c.id), _sample(eng, c) if c.state.running else None
            if a is None or b is None:
                rows.append({"ID": c.short_id, "Container": c.short_id, "Name": c.name,
                             "CPUPerc": "0.00%", "MemUsage": "0B / 0B", "MemPerc": "0.00%",
                             "NetIO": "0B / 0B", "BlockIO": "0B / 0B", "PIDs": "0"})
            else:
                rows.append(_stats_row(c, a, b))
        text = form.write(rows)
        if no_stream:
            click.echo(text, nl=False)
            return
        click.echo("\033[2J\033[H" + text, nl=False)


container_group.add_command(stats, "stats")
