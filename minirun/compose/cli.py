"""`minirun compose ...`: Docker Compose v2's command line, parsing and rendering only.

The commands load the project (loader.py), hand the work to project.py, and print what Compose
prints: progress lines on stderr (` Container p-web-1  Started`), tables and logs on stdout.
Errors are one line and exit 1, as Compose's; a container's own exit code is passed on where
Compose passes it (run, exec, up --exit-code-from).

The `minirun` group (minirun/cli) mounts the group `make()` returns, with its own Group and
Command classes, so that usage errors read as everywhere else in minirun.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import threading
import time

import click

from .. import __version__
from ..base.gotemplate import Format
from ..base.units import human_duration, human_size
from ..engine.api import containers as api
from ..engine.api import images as images_api
from ..engine.lifecycle import MonitorHandle
from ..errors import InvalidArgument, MinirunError
from ..image.auth import default_path as auth_path
from . import loader, logs, naming
from .project import Compose, Events, UpOptions, list_projects


# `ps --format 'table {{.Name}}...'`: each field's column title, as Compose prints them.
PS_HEADERS = {"ID": "CONTAINER ID", "Name": "NAME", "Image": "IMAGE", "Command": "COMMAND",
              "Project": "PROJECT", "Service": "SERVICE", "State": "STATE", "Health": "HEALTH",
              "ExitCode": "EXIT CODE", "Status": "STATUS", "RunningFor": "CREATED",
              "Ports": "PORTS", "CreatedAt": "CREATED AT", "Labels": "LABELS"}


class Settings:
    """The compose group's own flags, and the project they select (loaded on first use)."""

    def __init__(self, obj, files, project_name, project_directory, env_files, profiles,
                 ansi) -> None:
        self.obj = obj  # minirun's Context: --root, --runroot, the engine
        self.files, self.project_name = list(files) or None, project_name
        self.project_directory, self.env_files = project_directory, list(env_files) or None
        self.profiles, self.ansi = list(profiles) or None, ansi
        self._compose: Compose | None = None

    def colour(self, no_color: bool = False) -> bool:
        if no_color or self.ansi == "never" or os.environ.get("NO_COLOR"):
            return False
        return self.ansi == "always" or sys.stdout.isatty()

    def project(self) -> loader.Project:
        return self.compose().project

    def compose(self, by_labels: bool = False) -> Compose:
        """The project. `by_labels`: a command that can work without a file (down, ps, logs,
        stop ...) goes on with `-p NAME` alone, finding the project's objects by label."""
        if self._compose is None:
            try:
                p = loader.load(self.files, project_name=self.project_name,
                                project_directory=self.project_directory,
                                env_files=self.env_files, profiles=self.profiles)
            except loader.NoFiles:
                name = self.project_name or os.environ.get("COMPOSE_PROJECT_NAME")
                if not (by_labels and name):
                    raise
                p = loader.without_files(name)
            for w in p.warnings:
                click.echo(f"WARN[0000] {w}", err=True)
            self._compose = Compose(self.obj.engine(), p, Events(_err), log=_warn)
        return self._compose

    def engine(self):
        return self.obj.engine()


def _err(text: str) -> None:
    click.echo(text, err=True)


def _warn(text: str) -> None:
    click.echo(text.replace("WARN ", "WARN[0000] ", 1) if text.startswith("WARN ") else text,
               err=True)


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def make(group_cls: type[click.Group], command_cls: type[click.Command]) -> click.Group:
    """The `compose` group, on minirun's own Group and Command classes."""

    class ComposeCommand(command_cls):
        def invoke(self, ctx: click.Context):
            try:
                return super().invoke(ctx)
            except MinirunError as e:  # Compose's answer: one line, exit 1
                if os.environ.get("MINIRUN_DEBUG") or "--debug" in sys.argv:
                    raise
                click.echo(f"minirun: {e}", err=True)
                sys.exit(1)

    class ComposeGroup(group_cls):
        command_class = ComposeCommand

    @click.group("compose", cls=ComposeGroup)
    @click.option("-f", "--file", "files", multiple=True, help="Compose configuration files.")
    @click.option("-p", "--project-name", default=None, help="Project name.")
    @click.option("--project-directory", default=None,
                  help="Alternate working directory (default: the first file's directory).")
    @click.option("--env-file", "env_files", multiple=True, help="Alternate environment file.")
    @click.option("--profile", "profiles", multiple=True, help="A profile to enable.")
    @click.option("--ansi", type=click.Choice(["never", "always", "auto"]), default="auto",
                  help="Control when to print ANSI control characters.")
    @click.option("--progress", default="auto", help="Set type of progress output (accepted; "
                  "progress is always plain lines).")
    @click.option("--parallel", type=int, default=-1, help="Accepted, as Compose's.")
    @click.pass_context
    def compose(ctx, files, project_name, project_directory, env_files, profiles, ansi,
                progress, parallel) -> None:
        """Define and run multi-container applications (Docker Compose v2)."""
        ctx.obj = Settings(ctx.obj, files, project_name, project_directory, env_files,
                           profiles, ansi)

    _register(compose)
    return compose


def _scale(values: tuple[str, ...]) -> dict[str, int]:
    out = {}
    for v in values:
        name, eq, n = v.partition("=")
        if not eq or not n.isdigit():
            raise InvalidArgument(f"invalid --scale {v!r}: use SERVICE=NUM")
        out[name] = int(n)
    return out


def _register(compose: click.Group) -> None:  # noqa: C901 - one block per command, as a table
    @compose.command()
    @click.option("-d", "--detach", is_flag=True, help="Run containers in the background.")
    @click.option("--build", is_flag=True, help="Build images before starting containers.")
    @click.option("--no-build", is_flag=True, help="Don't build an image, even if it's missing.")
    @click.option("--pull", type=click.Choice(["always", "missing", "never", "build"]),
                  default=None, help="Pull image before running.")
    @click.option("--force-recreate", is_flag=True, help="Recreate containers even if their "
                  "configuration and image haven't changed.")
    @click.option("--no-recreate", is_flag=True, help="If containers already exist, don't "
                  "recreate them.")
    @click.option("--remove-orphans", is_flag=True, help="Remove containers for services not "
                  "defined in the Compose file.")
    @click.option("--scale", multiple=True, help="Scale SERVICE to NUM instances (SERVICE=NUM).")
    @click.option("--wait", is_flag=True, help="Wait for services to be running|healthy "
                  "(implies --detach).")
    @click.option("--wait-timeout", type=int, default=None, help="Maximum seconds to wait.")
    @click.option("--abort-on-container-exit", is_flag=True, help="Stops all containers if any "
                  "container was stopped.")
    @click.option("--exit-code-from", default=None, help="Return the exit code of the selected "
                  "service container (implies --abort-on-container-exit).")
    @click.option("-t", "--timeout", type=int, default=None, help="Shutdown timeout in seconds.")
    @click.option("--no-deps", is_flag=True, help="Don't start linked services.")
    @click.option("--no-start", is_flag=True, help="Don't start the services after creating "
                  "them.")
    @click.option("--no-color", is_flag=True, help="Produce monochrome output.")
    @click.option("--no-log-prefix", is_flag=True, help="Don't print prefix in logs.")
    @click.option("--quiet-pull", is_flag=True, help="Pull without printing progress.")
    @click.argument("services", nargs=-1)
    @click.pass_obj
    def up(s: Settings, detach, build, no_build, pull, force_recreate, no_recreate,
           remove_orphans, scale, wait, wait_timeout, abort_on_container_exit, exit_code_from,
           timeout, no_deps, no_start, no_color, no_log_prefix, quiet_pull, services) -> None:
        """Create and start containers."""
        if build and no_build:
            raise InvalidArgument("--build and --no-build are incompatible")
        if force_recreate and no_recreate:
            raise InvalidArgument("--force-recreate and --no-recreate are incompatible")
        if exit_code_from:
            abort_on_container_exit = True
        if detach and abort_on_container_exit:
            raise InvalidArgument("--abort-on-container-exit and --detach are incompatible")
        c = s.compose()
        if exit_code_from and exit_code_from not in c.services:
            raise InvalidArgument(f"no such service: {exit_code_from} (in --exit-code-from)")
        o = UpOptions(detach=detach or wait, build=build, no_build=no_build, pull=pull or "",
                      force_recreate=force_recreate, no_recreate=no_recreate,
                      remove_orphans=remove_orphans, scale=_scale(scale), wait=wait,
                      wait_timeout=wait_timeout, no_deps=no_deps, no_start=no_start,
                      timeout=timeout)
        began = f"{time.time():.6f}"
        try:
            names = c.up(services, o)
        except MinirunError as e:
            # Compose stops where it failed and leaves what it started: say what that is.
            running = c.names(running_only=True)
            if running:
                raise type(e)(f"{e} (running now: {', '.join(running)}; `minirun compose "
                              "down` removes the project)") from None
            raise
        if o.detach or no_start:
            return
        sys.exit(_attached(s, c, names, list(services), began, abort_on_container_exit,
                           exit_code_from, timeout, no_color, no_log_prefix))

    @compose.command()
    @click.option("-v", "--volumes", is_flag=True, help="Remove named volumes declared in the "
                  "volumes section and anonymous volumes attached to containers.")
    @click.option("--rmi", type=click.Choice(["local", "all"]), default=None,
                  help="Remove images used by services.")
    @click.option("--remove-orphans", is_flag=True, help="Remove containers for services not "
                  "defined in the Compose file.")
    @click.option("-t", "--timeout", type=int, default=None, help="Shutdown timeout in seconds.")
    @click.pass_obj
    def down(s: Settings, volumes, rmi, remove_orphans, timeout) -> None:
        """Stop and remove containers, networks."""
        s.compose(by_labels=True).down(volumes=volumes, rmi=rmi or "", remove_orphans=remove_orphans,
                         timeout=timeout)

    @compose.command()
    @click.option("-a", "--all", "all_", is_flag=True, help="Show all stopped containers.")
    @click.option("-q", "--quiet", is_flag=True, help="Only display IDs.")
    @click.option("--services", "only_services", is_flag=True, help="Display services.")
    @click.option("--format", "fmt", default="table", help="table, json, or a Go template "
                  "({{.Name}} {{.Service}} {{.State}} ...; `table TEMPLATE` for columns).")
    @click.option("--status", multiple=True, help="Filter services by status.")
    @click.argument("services", nargs=-1)
    @click.pass_obj
    def ps(s: Settings, all_, quiet, only_services, fmt, status, services) -> None:
        """List containers."""
        c = s.compose(by_labels=True)
        rows = [r for r in c.containers(oneoff=None)
                if (all_ or status or r["State"] in ("running", "paused", "restarting"))
                and (not services or r["Labels"].get(naming.SERVICE) in services)
                and (not status or r["State"] in status)]
        if only_services:
            for name in sorted({r["Labels"].get(naming.SERVICE, "") for r in rows}):
                click.echo(name)
            return
        if quiet:
            for r in rows:
                click.echo(r["Id"])
            return
        entries = [_ps_entry(s, c, r) for r in rows]
        if fmt == "json":
            for e in entries:
                click.echo(json.dumps(e))
            return
        if fmt != "table":
            click.echo(Format(fmt, PS_HEADERS).write(entries), nl=False)
            return
        _table(["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"],
               [[e["Name"], e["Image"], _quote_cmd(e["Command"]), e["Service"], e["RunningFor"],
                 e["Status"], e["Ports"]] for e in entries])

    @compose.command("logs")
    @click.option("-f", "--follow", is_flag=True, help="Follow log output.")
    @click.option("-n", "--tail", default="all", help="Number of lines to show from the end.")
    @click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
    @click.option("--no-color", is_flag=True, help="Produce monochrome output.")
    @click.option("--no-log-prefix", is_flag=True, help="Don't print prefix in logs.")
    @click.argument("services", nargs=-1)
    @click.pass_obj
    def logs_(s: Settings, follow, tail, timestamps, no_color, no_log_prefix, services) -> None:
        """View output from containers."""
        c = s.compose(by_labels=True)
        names = c.names(services, oneoff=None)
        printer = logs.Printer(_out, project=c.name, colour=s.colour(no_color),
                               prefix=not no_log_prefix, timestamps=timestamps)
        if follow:
            logs.follow(s.engine(), names, printer, tail=tail)
        else:
            logs.show(s.engine(), names, printer, tail=tail)

    @compose.command()
    @click.option("--no-cache", is_flag=True, help="Do not use cache when building the image.")
    @click.option("--pull", is_flag=True, help="Always attempt to pull a newer version.")
    @click.option("-q", "--quiet", is_flag=True, help="Don't print anything to STDOUT.")
    @click.argument("services", nargs=-1)
    @click.pass_obj
    def build(s: Settings, no_cache, pull, quiet, services) -> None:
        """Build or rebuild services."""
        c = s.compose()
        for name in c.selected(services, with_deps=False):
            if "build" in c.services[name]:
                c.build(name, no_cache=no_cache, pull=pull,
                        out=None if quiet else lambda text: click.echo(text, nl=False, err=True))

    @compose.command()
    @click.option("-q", "--quiet", is_flag=True, help="Pull without printing progress.")
    @click.option("--ignore-pull-failures", is_flag=True, help="Pull what it can and ignore "
                  "images with pull failures.")
    @click.option("--ignore-buildable", is_flag=True, help="Ignore images that can be built.")
    @click.argument("services", nargs=-1)
    @click.pass_obj
    def pull(s: Settings, quiet, ignore_pull_failures, ignore_buildable, services) -> None:
        """Pull service images."""
        c = s.compose()
        for name in c.selected(services, with_deps=False):
            svc = c.services[name]
            if not svc.get("image") or (ignore_buildable and "build" in svc):
                continue
            try:
                c._pull(svc["image"])
            except MinirunError as e:
                if not ignore_pull_failures and "build" not in svc:
                    raise
                _warn(f"WARN {name}: {e}")

    @compose.command()
    @click.option("--ignore-push-failures", is_flag=True, help="Push what it can.")
    @click.option("-q", "--quiet", is_flag=True, help="Push without printing progress.")
    @click.argument("services", nargs=-1)
    @click.pass_obj
    def push(s: Settings, ignore_push_failures, quiet, services) -> None:
        """Push service images."""
        from ..engine.api import distribution  # lazily: the registry client (~21 ms)

        c = s.compose()
        for name in c.selected(services, with_deps=False):
            svc = c.services[name]
            if not svc.get("image"):
                continue
            c.events("Image", svc["image"], "Pushing")
            try:
                distribution.push(s.engine().images(), svc["image"],
                                  auth_file=auth_path(s.engine().root))
            except MinirunError:
                if not ignore_push_failures:
                    raise
                continue
            c.events("Image", svc["image"], "Pushed")

    @compose.command()
    @click.option("--format", "fmt", default="yaml", help="yaml or json.")
    @click.option("--services", "only_services", is_flag=True, help="Print the service names.")
    @click.option("--volumes", "only_volumes", is_flag=True, help="Print the volume names.")
    @click.option("--networks", "only_networks", is_flag=True, help="Print the network names.")
    @click.option("--profiles", "only_profiles", is_flag=True, help="Print the profile names.")
    @click.option("--images", "only_images", is_flag=True, help="Print the image names.")
    @click.option("--hash", "hashes", default=None, help="Print the service config hash "
                  "(SERVICE,... or *).")
    @click.option("-q", "--quiet", is_flag=True, help="Only validate the configuration.")
    @click.option("-o", "--output", default=None, help="Save to file.")
    @click.pass_obj
    def config(s: Settings, fmt, only_services, only_volumes, only_networks, only_profiles,
               only_images, hashes, quiet, output) -> None:
        """Parse, resolve and render compose file in canonical format."""
        p = s.project()
        if quiet:
            return
        lines = None
        if only_services:
            lines = sorted(p.model.get("services") or {})
        elif only_volumes:
            lines = sorted(p.model.get("volumes") or {})
        elif only_networks:
            lines = sorted(p.model.get("networks") or {})
        elif only_profiles:
            lines = sorted({pr for svc in [*(p.model.get("services") or {}).values(),
                                           *p.disabled.values()]
                            for pr in svc.get("profiles") or []})
        elif only_images:
            lines = [svc.get("image") or naming.image_name(p.name, n)
                     for n, svc in sorted((p.model.get("services") or {}).items())]
        elif hashes is not None:
            wanted = None if hashes == "*" else set(hashes.split(","))
            lines = [f"{n} {loader.config_hash(svc)}"
                     for n, svc in sorted((p.model.get("services") or {}).items())
                     if wanted is None or n in wanted]
        text = "\n".join(lines) + ("\n" if lines else "") if lines is not None \
            else loader.dump(p, fmt)
        if output:
            with open(output, "w") as f:
                f.write(text)
        else:
            click.echo(text, nl=False)

    @compose.command("exec", context_settings={"allow_interspersed_args": False})
    @click.option("-d", "--detach", is_flag=True, help="Detached mode: run in the background.")
    @click.option("-T", "--no-TTY", "no_tty", is_flag=True, help="Disable pseudo-TTY allocation.")
    @click.option("-e", "--env", multiple=True, help="Set environment variables.")
    @click.option("-u", "--user", default=None, help="Run the command as this user.")
    @click.option("-w", "--workdir", default=None, help="Path to workdir directory.")
    @click.option("--index", type=int, default=1, help="Index of the container if the service "
                  "has multiple replicas.")
    @click.option("--privileged", is_flag=True, help="Give extended privileges to the process.")
    @click.argument("service")
    @click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
    @click.pass_obj
    def exec_(s: Settings, detach, no_tty, env, user, workdir, index, privileged, service,
              command) -> None:
        """Execute a command in a running container."""
        from ..engine.api import exec as exec_api  # lazily: only exec (start-up of the rest)

        c = s.compose()
        name = c.container_of(service, index)
        tty = not no_tty and not detach and sys.stdin.isatty() and sys.stdout.isatty()
        config = {"Cmd": list(command), "Env": list(env), "Tty": tty, "AttachStdin": not detach,
                  "AttachStdout": not detach, "AttachStderr": not detach,
                  "Privileged": privileged}
        if user is not None:
            config["User"] = user
        if workdir:
            config["WorkingDir"] = workdir
        exec_id = exec_api.create(s.engine(), name, config)["Id"]
        sys.exit(exec_api.start(s.engine(), exec_id, detach=detach))

    @compose.command("run", context_settings={"allow_interspersed_args": False})
    @click.option("-d", "--detach", is_flag=True, help="Run container in background and print "
                  "container ID.")
    @click.option("--rm", is_flag=True, help="Automatically remove the container when it exits.")
    @click.option("--name", default=None, help="Assign a name to the container.")
    @click.option("-e", "--env", multiple=True, help="Set environment variables.")
    @click.option("-l", "--label", "labels", multiple=True, help="Add or override a label.")
    @click.option("-u", "--user", default=None, help="Run as specified username or uid.")
    @click.option("-w", "--workdir", default=None, help="Working directory inside the container.")
    @click.option("--entrypoint", default=None, help="Override the entrypoint of the image.")
    @click.option("-T", "--no-TTY", "no_tty", is_flag=True, help="Disable pseudo-TTY allocation.")
    @click.option("-i", "--interactive/--no-interactive", default=True,
                  help="Keep STDIN open even if not attached.")
    @click.option("-p", "--publish", multiple=True, help="Publish a container's port(s).")
    @click.option("-P", "--service-ports", is_flag=True, help="Run with the service's ports.")
    @click.option("-v", "--volume", "volumes", multiple=True, help="Bind mount a volume.")
    @click.option("--no-deps", is_flag=True, help="Don't start linked services.")
    @click.option("--use-aliases", is_flag=True, help="Use the service's network aliases in "
                  "the network(s) the container connects to.")
    @click.option("--build", is_flag=True, help="Build image before starting container.")
    @click.option("--pull", default="", help="Pull image before running (always|missing|never).")
    @click.option("--quiet-pull", is_flag=True, help="Pull without printing progress.")
    @click.argument("service")
    @click.argument("command", nargs=-1, type=click.UNPROCESSED)
    @click.pass_obj
    def run(s: Settings, detach, rm, name, env, labels, user, workdir, entrypoint, no_tty,
            interactive, publish, service_ports, volumes, no_deps, use_aliases, build, pull,
            quiet_pull, service, command) -> None:
        """Run a one-off command on a service."""
        from ..engine.api import attach as attach_api  # lazily: only run attaches

        c = s.compose()
        tty = not no_tty and not detach and sys.stdin.isatty() and sys.stdout.isatty()
        cname = c.run_container(
            service, list(command) or None, name=name,
            entrypoint=shlex.split(entrypoint) if entrypoint is not None else None,
            env=list(env), user=user, workdir=workdir, tty=tty,
            interactive=interactive and not detach, rm=rm, no_deps=no_deps,
            publish=list(publish), service_ports=service_ports, volumes=list(volumes),
            labels=dict(lb.partition("=")[::2] for lb in labels), build=build, pull=pull,
            use_aliases=use_aliases)
        eng = s.engine()
        if detach:
            api.start(eng, cname, monitor=MonitorHandle(eng))
            click.echo(cname)
            return
        result = attach_api.run_attached(eng, eng.get(cname), True, MonitorHandle(eng),
                                         stdin=interactive)
        sys.exit(0 if result["Detached"] else result["StatusCode"])

    @compose.command()
    @click.argument("services", nargs=-1)
    @click.pass_obj
    def start(s: Settings, services) -> None:
        """Start services."""
        s.compose().start(services)

    @compose.command()
    @click.option("-t", "--timeout", type=int, default=None, help="Shutdown timeout in seconds.")
    @click.argument("services", nargs=-1)
    @click.pass_obj
    def stop(s: Settings, timeout, services) -> None:
        """Stop services."""
        s.compose(by_labels=True).stop(services, timeout)

    @compose.command()
    @click.option("-t", "--timeout", type=int, default=None, help="Shutdown timeout in seconds.")
    @click.option("--no-deps", is_flag=True, help="Don't restart dependent services.")
    @click.argument("services", nargs=-1)
    @click.pass_obj
    def restart(s: Settings, timeout, no_deps, services) -> None:
        """Restart service containers."""
        s.compose().restart(services, timeout)

    @compose.command()
    @click.option("-s", "--signal", "sig", default="SIGKILL", help="SIGNAL to send.")
    @click.option("--remove-orphans", is_flag=True, help="Accepted, as Compose's.")
    @click.argument("services", nargs=-1)
    @click.pass_obj
    def kill(s: Settings, sig, remove_orphans, services) -> None:
        """Force stop service containers."""
        s.compose(by_labels=True).each("kill", services, signal=sig)

    @compose.command()
    @click.argument("services", nargs=-1)
    @click.pass_obj
    def pause(s: Settings, services) -> None:
        """Pause services."""
        s.compose().each("pause", services)

    @compose.command()
    @click.argument("services", nargs=-1)
    @click.pass_obj
    def unpause(s: Settings, services) -> None:
        """Unpause services."""
        s.compose().each("unpause", services)

    @compose.command()
    @click.option("-f", "--force", is_flag=True, help="Don't ask to confirm removal.")
    @click.option("-s", "--stop", "stop_first", is_flag=True, help="Stop the containers, if "
                  "required, before removing.")
    @click.option("-v", "--volumes", is_flag=True, help="Remove any anonymous volumes attached "
                  "to containers.")
    @click.argument("services", nargs=-1)
    @click.pass_obj
    def rm(s: Settings, force, stop_first, volumes, services) -> None:
        """Removes stopped service containers."""
        c = s.compose(by_labels=True)
        if not force and sys.stdin.isatty():
            stopped = [n for n in c.names(services)
                       if not api.inspect(s.engine(), n)["State"]["Running"] or stop_first]
            if not stopped:
                click.echo("No stopped containers", err=True)
                return
            if not click.confirm(f"Going to remove {', '.join(stopped)}\n"
                                 "? Are you sure you want to continue?", err=True):
                return
        if not c.rm(services, stop=stop_first, volumes=volumes):
            click.echo("No stopped containers", err=True)

    @compose.command()
    @click.argument("services", nargs=-1)
    @click.pass_obj
    def top(s: Settings, services) -> None:
        """Display the running processes."""
        c = s.compose()
        for name in c.names(services, running_only=True):
            procs = api.top(s.engine(), name)
            click.echo(name)
            _table(procs["Titles"], procs["Processes"])
            click.echo("")

    @compose.command()
    @click.option("-q", "--quiet", is_flag=True, help="Only display IDs.")
    @click.argument("services", nargs=-1)
    @click.pass_obj
    def images(s: Settings, quiet, services) -> None:
        """List images used by the created containers."""
        c = s.compose()
        rows = []
        for name in c.names(services, oneoff=None):
            info = api.inspect(s.engine(), name)
            img = images_api.inspect(s.engine().images(), info["Image"])
            tags = img.get("RepoTags") or ["<none>:<none>"]
            repo, _, tag = tags[0].rpartition(":")
            rows.append([name, repo, tag, img["Id"].split(":")[-1][:12],
                         _size(img.get("Size") or 0)])
        if quiet:
            for r in sorted({r[3] for r in rows}):
                click.echo(r)
            return
        _table(["CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE"], rows)

    @compose.command()
    @click.option("--protocol", default="tcp", help="tcp or udp.")
    @click.option("--index", type=int, default=1, help="Index of the container if the service "
                  "has multiple replicas.")
    @click.argument("service")
    @click.argument("private_port")
    @click.pass_obj
    def port(s: Settings, protocol, index, service, private_port) -> None:
        """Print the public port for a port binding."""
        c = s.compose()
        name = c.container_of(service, index)
        for b in api.port(s.engine(), name, f"{private_port}/{protocol}"):
            click.echo(f"{b['HostIp']}:{b['HostPort']}")
            return
        raise InvalidArgument(f"no port {private_port}/{protocol} for container {name}")

    @compose.command()
    @click.option("-a", "--all", "all_", is_flag=True, help="Show all stopped Compose projects.")
    @click.option("-q", "--quiet", is_flag=True, help="Only display project names.")
    @click.option("--format", "fmt", default="table", help="table or json.")
    @click.pass_obj
    def ls(s: Settings, all_, quiet, fmt) -> None:
        """List running compose projects."""
        rows = list_projects(s.engine(), all=all_)
        if quiet:
            for r in rows:
                click.echo(r["Name"])
        elif fmt == "json":
            click.echo(json.dumps(rows))
        else:
            _table(["NAME", "STATUS", "CONFIG FILES"],
                   [[r["Name"], r["Status"], r["ConfigFiles"]] for r in rows])

    @compose.command()
    @click.option("--short", is_flag=True, help="Shows only Compose's version number.")
    @click.option("-f", "--format", "fmt", default="pretty", help="pretty or json.")
    def version(short, fmt) -> None:
        """Show the Docker Compose version information."""
        if short:
            click.echo(naming.COMPOSE_VERSION)
        elif fmt == "json":
            click.echo(json.dumps({"version": "v" + naming.COMPOSE_VERSION,
                                   "minirun": __version__}))
        else:
            click.echo(f"minirun compose version v{naming.COMPOSE_VERSION} (minirun "
                       f"{__version__}; Docker Compose v2's behaviour)")


def _attached(s: Settings, c: Compose, names: list[str], services: list[str], since: str,
              abort: bool,
              exit_code_from: str | None, timeout: int | None, no_color: bool,
              no_log_prefix: bool) -> int:
    """An attached `up`: every container's output until they all stop; Ctrl-C stops them
    (a second Ctrl-C kills), --abort-on-container-exit stops them when the first one does."""
    eng = s.engine()
    printer = logs.Printer(_out, project=c.name, colour=s.colour(no_color),
                           prefix=not no_log_prefix)
    printer.note(f"Attaching to {', '.join(printer.shown(n) for n in names)}")
    first: list[tuple[str, int]] = []
    stopping = threading.Event()

    def stop_all() -> None:
        try:
            c.stop(services, timeout)
        except MinirunError as e:
            _warn(f"WARN {e}")

    def on_exit(name: str, code: int) -> None:
        printer.note(f"{printer.shown(name)} exited with code {code}")
        if abort and not stopping.is_set():
            first.append((name, code))
            stopping.set()
            printer.note("Aborting on container exit...")
            threading.Thread(target=stop_all, daemon=True).start()

    try:
        codes = logs.follow(eng, names, printer, since=since, on_exit=on_exit)
    except KeyboardInterrupt:
        _err("Gracefully stopping... (press Ctrl+C again to force)")
        try:
            c.stop(services, timeout)
        except KeyboardInterrupt:
            c.each("kill", services)
        return 130
    if exit_code_from:
        for name, code in codes.items():
            if api.inspect(eng, name)["Config"]["Labels"].get(naming.SERVICE) == exit_code_from:
                return code
    if abort and first:
        return first[0][1]
    return 0


def _ps_entry(s: Settings, c: Compose, row: dict) -> dict:
    labels = row["Labels"]
    info = api.inspect(s.engine(), row["Id"])
    health = (info["State"].get("Health") or {}).get("Status", "")
    ports = ", ".join(
        f"{p['IP'] or '0.0.0.0'}:{p['PublicPort']}->{p['PrivatePort']}/{p['Type']}"
        for p in row["Ports"])
    return {"ID": row["Id"], "Name": row["Names"][0].lstrip("/"), "Image": row["Image"],
            "Command": row["Command"], "Project": labels.get(naming.PROJECT, ""),
            "Service": labels.get(naming.SERVICE, ""), "State": row["State"],
            "Health": health, "ExitCode": info["State"]["ExitCode"] or 0,
            "Status": row["Status"], "RunningFor": _ago(row["Created"]), "Ports": ports,
            "CreatedAt": info["Created"], "Labels": ",".join(f"{k}={v}" for k, v in
                                                            sorted(labels.items())),
            "Publishers": [{"URL": p["IP"] or "0.0.0.0", "TargetPort": p["PrivatePort"],
                            "PublishedPort": p["PublicPort"], "Protocol": p["Type"]}
                           for p in row["Ports"]]}


def _ago(created: int) -> str:
    return human_duration(max(0.0, time.time() - created)) + " ago"


def _quote_cmd(cmd: str) -> str:
    return f'"{cmd[:20]}…"' if len(cmd) > 20 else f'"{cmd}"'


def _size(n: int) -> str:
    return human_size(n)


def _table(header: list[str], rows: list[list[str]]) -> None:
    """Columns as the docker CLI aligns them: each as wide as its widest cell, three spaces."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for line in [header, *rows]:
        click.echo("   ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip())
