"""Container lifecycle commands: start, attach, stop, kill, restart, rm, pause, unpause, wait,
rename, container prune, and cp, diff, export; their `container` group aliases.

(run is in run.py, create in create.py, ps, inspect, logs, top and port in listing.py, exec in
exec.py, stats in stats.py.)
They parse Docker's flags and call the engine API (engine/api/containers.py); every line of
output is shaped like Docker's.
"""

from __future__ import annotations

import os
import sys

import click

from ..errors import MinirunError
from . import container_group, main
from .common import attach_api as _attach_api, containers_api as _api, \
    detach_keys as _detach_keys, engine as _engine, exit_code as _exit_code, files_api as _files_api
from .render import confirm, deleted, each as _each


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
for _name, _cmd in (("start", start), ("stop", stop),
                    ("kill", kill), ("restart", restart), ("rm", rm), ("remove", rm),
                    ("attach", attach_cmd), ("wait", wait), ("rename", rename),
                    ("pause", pause), ("unpause", unpause), ("cp", cp), ("diff", diff),
                    ("export", export)):
    container_group.add_command(_cmd, _name)
