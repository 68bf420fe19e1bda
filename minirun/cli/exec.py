"""`exec`: run a command in a running container (engine/api/exec.py does the work).

The front end's part is the terminal: the console size, and stdin, which a process gets only
with -i (without it, or with -d, the process reads /dev/null, as with Docker).
"""

from __future__ import annotations

import os
import sys

import click

from ..errors import CommandError
from . import container_group, main
from .common import RUN_SETTINGS as _RUN_SETTINGS, detach_keys as _detach_keys, engine as _engine


def _api():
    """The engine API's exec module, imported when `exec` runs (the start-up of every other
    command does without it)."""
    from ..engine.api import exec as exec_api  # lazily: every minirun command imports this

    return exec_api


@main.command("exec", context_settings=_RUN_SETTINGS)
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY.")
@click.option("-d", "--detach", is_flag=True, help="Run the command in the background.")
@click.option("-e", "--env", multiple=True, help="Set an environment variable.")
@click.option("-w", "--workdir", default="", help="Working directory in the container.")
@click.option("-u", "--user", default=None, help="user[:group].")
@click.option("--privileged", is_flag=True, help="Every capability for this process.")
@click.option("--detach-keys", default="", help="Override the key sequence for detaching "
              "(default ctrl-p,ctrl-q; with -it).")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def exec_(obj, interactive, tty, detach, env, workdir, user, privileged, detach_keys,
          container, command) -> None:
    """Run a command in a running container (every namespace and the cgroup joined)."""
    api, eng = _api(), _engine(obj)
    keys = _detach_keys(detach_keys)
    config = {"Cmd": list(command), "Env": list(env), "WorkingDir": workdir, "User": user,
              "Privileged": privileged, "Tty": tty, "AttachStdin": interactive and not detach}
    if tty and os.isatty(1):
        import shutil  # here: it loads bz2, lzma and zlib, ~3 ms of every command's start-up

        cols, rows = shutil.get_terminal_size()
        config["ConsoleSize"] = [rows, cols]
    exec_id = api.create(eng, container, config)["Id"]
    saved = None
    if not interactive or detach:
        saved = os.dup(0)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    try:
        code = api.start(eng, exec_id, detach=detach, detach_keys=keys if interactive else b"")
    except CommandError as e:  # not found (127) or not executable (126): Docker's exit codes
        click.echo(f"minirun: {e}", err=True)
        sys.exit(e.command_code)
    finally:
        if saved is not None:
            os.dup2(saved, 0)
            os.close(saved)
    sys.exit(code)


container_group.add_command(exec_, "exec")
