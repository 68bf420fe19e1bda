"""Shell completion for bash, zsh and fish: commands, flags, and the names of containers,
images, networks and volumes.

    minirun completion bash > /etc/bash_completion.d/minirun
    minirun completion zsh  > "${fpath[1]}/_minirun"
    minirun completion fish > ~/.config/fish/completions/minirun.fish

The scripts are click's (click.shell_completion): at each <Tab> the shell runs `minirun` again
with _MINIRUN_COMPLETE=bash_complete (zsh_complete, fish_complete) and the words typed in
COMP_WORDS/COMP_CWORD, and click answers with the candidates. Commands and flags come from the
command definitions as they are; names come from the callbacks here, which read the records
under --root directly (engine/api/names.py: a directory listing and small JSON files, no refresh
of container states, no lock), so a <Tab> costs about what `minirun ps` does.

Normal commands pay nothing for this: the callbacks are attached to the arguments by argument
name (`install`) only when click sees the completion variable (MainGroup._main_shell_completion
in cli/__init__.py), and this module is imported then, or for `minirun completion`. Command
names come from the command table (cli/registry.py), so completing one imports no command.
"""

from __future__ import annotations

import os

import click

from . import main

SHELLS = ("bash", "zsh", "fish")

# Which containers a command wants: Docker's own completion offers running containers to stop
# and exited ones to start.
_RUNNING_ONLY = {"stop", "kill", "pause", "exec", "attach", "top", "stats", "port"}
_STOPPED_ONLY = {"start"}
_PAUSED_ONLY = {"unpause"}


@main.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the shell completion script for bash, zsh or fish."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    click.echo(cls(main, {}, "minirun", "_MINIRUN_COMPLETE").source())


# -- where the names are read ---------------------------------------------------------------------

def _root(ctx: click.Context) -> str:
    """--root as typed before the word being completed (or $MINIRUN_ROOT, or the default): the
    group's callback has not run during completion, so there is no ctx.obj."""
    root = ctx.find_root().params.get("root") or os.environ.get("MINIRUN_ROOT") \
        or "/var/lib/minirun"
    return os.path.abspath(root)


# -- the callbacks ---------------------------------------------------------------------------------

def _names():
    from ..engine.api import names  # (light: os and fastjson; only when completing)

    return names


def _items(names: list[str], incomplete: str):
    from click.shell_completion import CompletionItem  # lazy: only a <Tab> (~0.3 ms)

    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


def _containers(want: str):
    def complete(ctx: click.Context, param: click.Parameter, incomplete: str):
        return _items(_names().container_names(_root(ctx), want), incomplete)
    return complete


def complete_images(ctx: click.Context, param: click.Parameter, incomplete: str):
    return _items(_names().image_names(_root(ctx)), incomplete)


def complete_networks(ctx: click.Context, param: click.Parameter, incomplete: str):
    return _items(_names().network_names(_root(ctx)), incomplete)


def complete_volumes(ctx: click.Context, param: click.Parameter, incomplete: str):
    """Volume names; after a name, `-v NAME:` is left to the user (the path in the container)."""
    return _items(_names().volume_names(_root(ctx)), incomplete)


def complete_objects(ctx: click.Context, param: click.Parameter, incomplete: str):
    """`inspect`: containers and images."""
    root = _root(ctx)
    return _items(_names().container_names(root) + _names().image_names(root), incomplete)


def _for_argument(group: str, command: str, name: str):
    """The completion callback for one argument, by where it is and what it is called."""
    if group == "network":
        if name in ("names",) or (name == "name" and command in ("connect", "disconnect")):
            return complete_networks
        if name == "container":
            return _containers("any")
        return None
    if group == "volume":
        return complete_volumes if name == "names" else None
    if name in ("container", "containers"):
        want = ("running" if command in _RUNNING_ONLY else "stopped" if command in _STOPPED_ONLY
                else "paused" if command in _PAUSED_ONLY else "any")
        return _containers(want)
    if name in ("image", "images", "image_name", "source") or \
            (name == "repository" and command in ("images", "ls", "list")) or \
            (name == "name" and command == "push"):
        return complete_images
    if name == "names":
        return _containers("any") if group == "container" else complete_objects
    return None


_OPTIONS = {"network": complete_networks, "net": complete_networks,
            "volumes_from": _containers("any"), "volumes": complete_volumes}


def install(group: click.Group) -> None:
    """Attach the name callbacks to the commands' arguments and name-taking flags (click's
    Parameter.shell_complete calls `_custom_shell_complete` when it is set), each command as
    its group loads it (Group.on_load, cli/__init__.py): a <Tab> imports only the module of the
    command being completed, not every command's."""
    from . import Group

    Group.on_load = _attach


def _attach(group: click.Group, name: str, cmd: click.Command) -> None:
    """The callbacks of one command (`name` in `group`: a group's commands come on their own)."""
    if isinstance(cmd, click.Group):
        return
    path = "" if group is main else (group.name or "")
    for p in cmd.params:
        if getattr(p, "_custom_shell_complete", None) is not None:
            continue
        if isinstance(p, click.Argument):
            fn = _for_argument(path, name, p.name or "")
        elif isinstance(p, click.Option) and not p.is_flag:
            fn = _OPTIONS.get(p.name or "") if path != "network" else None
        else:
            fn = None
        if fn is not None:
            p._custom_shell_complete = fn
