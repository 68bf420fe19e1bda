"""minirun: the docker-like front end.

The front end parses flags, calls the engine and renders what it returns; it never calls the
kernel itself. One module per command family registers its commands on `main`, and is imported
only when one of its commands runs: cli/registry.py names each command's module and one-line
help, so `--help` and the start of `minirun ps` import none of the others (Group.get_command):

  containers.py  start, attach, stop, kill, restart, rm, pause, unpause, wait, rename, cp,
                 diff, export, container prune; the `container` group
  run.py         run (create, start, attach or -d), with the flags below
  create.py      create (run's flags, not started)
  runflags.py    run's and create's flags for the process, logs, sharing and resources
  common.py      what the container commands share: the engine and its API modules
  manifest.py    manifest inspect (what a registry holds, nothing pulled)
  listing.py     ps, inspect, logs, top, port
  exec.py        exec
  stats.py       stats
  images.py      images, tag, rmi, image inspect, history, image prune
  pull.py        pull, login, logout
  push.py        push
  archive.py     save, load, import
  build.py       build, commit, builder prune
  network.py     network create, ls, inspect, rm, connect, disconnect, prune
  volumes.py     volume create, ls, inspect, rm, prune
  system.py      version, info, system df, system prune, system boot
  completion.py  completion bash|zsh|fish (and the names a <Tab> offers)
  update.py      update (limits and restart policy of containers)
  render.py      what several families print or ask alike: filters, inspect, prune
  registry.py    the command table: name -> module and short help, for every group
  progress.py    the progress of pull and push
  manpage.py     man pages from the click definitions (scripts/gen-man)

click is imported here only: the OCI runtime's hot path (minirun-oci) stays lean.

Global options: --root DIR (images, containers, volumes: default /var/lib/minirun, or
$MINIRUN_ROOT) and --runroot DIR (runtime state: default /run/minirun, or $MINIRUN_RUNROOT), so
tests never touch the real ones. Errors are one line on stderr, with Docker's exit codes (125
for minirun's own errors), never a traceback (unless --debug). A command line that cannot be
parsed (an unknown flag or command, a missing argument, a bad flag value) gets one line, in
Docker's words, with where to look ("minirun: unknown flag: --x (see 'minirun run --help')"),
and exit 125, not click's usage block and 2.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click

from .. import __version__
from ..errors import CommandError, MinirunError

DEFAULT_ROOT = "/var/lib/minirun"
DEFAULT_RUNROOT = "/run/minirun"


class Context:
    """What every command gets (click's ctx.obj): where things live, opened lazily.

    (A plain class, not a dataclass: `import dataclasses` costs ~10 ms of every command.)"""

    def __init__(self, root: str, runroot: str, debug: bool = False) -> None:
        self.root, self.runroot, self.debug = root, runroot, debug
        self._store = None
        self._engine = None

    def store(self):
        """The image store under --root (created on first use)."""
        if self._store is None:
            from ..image.store import Store  # lazy: dataclasses (start-up of `ps`, --help)

            self._store = Store(os.path.join(self.root, "image"))
        return self._store

    def engine(self):
        """Containers and volumes under --root, runtime state under --runroot."""
        if self._engine is None:
            from ..engine.lifecycle import Engine  # lazy: ~17 modules (start-up of --help)

            self._engine = Engine(self.root, self.runroot, self.store)
        return self._engine

    @property
    def auth_path(self) -> str:
        from ..image.auth import default_path  # lazy: json, base64 (registry commands only)

        return default_path(self.root)


class UnknownCommand(click.UsageError):
    """A command name the group does not have (click before 8.4 raises a bare UsageError)."""

    def __init__(self, name: str, ctx: click.Context | None) -> None:
        super().__init__(f"No such command {name!r}.", ctx)
        self.command_name = name


class Command(click.Command):
    """A command whose flag and argument errors are Docker's two lines and exit 125."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as e:
            if e.ctx is None:  # click's parser raises some without it (a flag missing its value)
                e.ctx = ctx
            usage_error(e)


class Group(click.Group):
    """A click group whose errors are one line and exit with Docker's codes.

    Usage errors (an unknown flag or command, a missing argument, a bad value) are caught
    here, not by click's main(), which would print a usage block and exit 2: Docker prints
    what is wrong and where the help is, and exits 125."""

    command_class = Command  # what @group.command() makes

    # Called with (group, name, command) for each command get_command returns, when set: shell
    # completion attaches its name callbacks this way, to the commands a <Tab> loads only.
    on_load = None

    def __init__(self, *args, table: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # This group's entries in cli/registry.py (None: all its commands are registered
        # already, as compose's are).
        self.table: dict[str, tuple] = _table(table)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # The group's own options: `minirun --bogus ps`, or a group given nothing to do.
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as e:
            if e.ctx is None:
                e.ctx = ctx
            usage_error(e)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        try:
            name, cmd, rest = super().resolve_command(ctx, args)
        except (click.NoSuchOption, UnknownCommand):
            raise
        except click.UsageError as e:  # NoSuchCommand (8.4+), or the bare one before it
            raise UnknownCommand(getattr(e, "command_name", args[0]), ctx) from None
        # The name as typed: `image ls` is `images` registered twice, and older click names
        # it `images` in "See 'minirun image images --help'."
        return (args[0] if cmd is not None else name), cmd, rest

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as e:  # an unknown command; a bad value found in a callback
            usage_error(e)
        except MinirunError as e:
            if _debug():
                raise
            click.echo(f"minirun: {e}", err=True)
            if isinstance(e, CommandError):  # the container's command: 127 not found, 126 not runnable
                sys.exit(e.command_code)
            if getattr(e, "docker_status", False):  # the status docker gives it (templates: 1, 64)
                sys.exit(e.exit_code)
            sys.exit(e.exit_code if e.exit_code != 1 else 125)
        except KeyboardInterrupt:
            sys.exit(130)
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:
            # `minirun export c | tar t | head`: the reader left. Go programs die of SIGPIPE
            # here; exit as they would (128 + 13), without a word.
            os._exit(141)
        except OSError as e:
            if _debug():
                raise
            where = f"{e.filename}: " if e.filename else ""
            click.echo(f"minirun: {where}{e.strerror or e}", err=True)
            sys.exit(125)
        except Exception as e:  # a bug: still one line, the traceback only with --debug
            if _debug() or isinstance(e, click.ClickException):
                raise
            click.echo(f"minirun: internal error: {type(e).__name__}: {e} (run with --debug "
                       "for the traceback)", err=True)
            sys.exit(125)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.table})

    def get_command(self, ctx: click.Context, name: str):
        """The command, its module imported now if it was not (the lazy group pattern)."""
        cmd = self.commands.get(name)
        if cmd is None and name in self.table:
            _load(self.table[name][0])
            cmd = self.commands.get(name)
        if cmd is not None and Group.on_load is not None and self.table:
            Group.on_load(self, name, cmd)
        return cmd

    def visible_commands(self, ctx: click.Context, prefix: str = ""):
        """(name, short help as a function of its length limit) of the commands --help shows,
        from the table: nothing imported."""
        rows = []
        for name in self.list_commands(ctx):
            if not name.startswith(prefix):
                continue
            entry = self.table.get(name)
            if entry is None:
                cmd = self.commands[name]
                if not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str))
            elif len(entry) < 3:  # (module, help); a third item is HIDDEN
                rows.append((name, lambda limit=45, text=entry[1]: _short_help(text, limit)))
        return rows

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's command list (the same limit, the same rows), read from the table."""
        rows = self.visible_commands(ctx)
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, help(limit)) for name, help in rows])

    def shell_complete(self, ctx: click.Context, incomplete: str):
        """Command names from the table (a <Tab> after `minirun ` imports no command module),
        then the group's flags (click.Command's part of click's Group.shell_complete)."""
        from click.shell_completion import CompletionItem

        names = [CompletionItem(name, help=help()) for name, help in
                 self.visible_commands(ctx, incomplete)]
        return names + click.Command.shell_complete(self, ctx, incomplete)


class MainGroup(Group):
    """`minirun` itself. `compose` is mounted on first use, from the compose package (it brings
    PyYAML: no other command should pay for it)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, table="main", **kwargs)

    def _main_shell_completion(self, ctx_args, prog_name, complete_var=None) -> None:
        # Only when a shell asks (_MINIRUN_COMPLETE set) are the name completions attached:
        # every other command pays one environment lookup (cli/completion.py).
        var = complete_var or f"_{prog_name}_COMPLETE".replace("-", "_").upper()
        if os.environ.get(var):
            from .completion import install  # lazy: only when a shell asks (see above)

            install(self)
        return super()._main_shell_completion(ctx_args, prog_name, complete_var)

    def get_command(self, ctx: click.Context, name: str):
        if name == "compose" and name not in self.commands:
            from ..compose.cli import make  # lazily: only `minirun compose` loads it

            self.add_command(make(Group, Command), "compose")
        return super().get_command(ctx, name)


def _table(name: str | None) -> dict[str, tuple]:
    """A group's entries in the command table (cli/registry.py)."""
    if name is None:
        return {}
    from .registry import COMMANDS  # (a dict literal: ~0.1 ms)

    return COMMANDS[name]


def _load(module: str) -> None:
    """Import a command module (a table's name: relative to this package): its commands
    register on their groups as it is imported."""
    if module != ".":
        __import__(f"minirun.{module[2:]}" if module.startswith("..") else f"{__name__}.{module}")


def _short_help(text: str, limit: int) -> str:
    """What click's get_short_help_str makes of a command's help (the first sentence, cut to
    the limit), from the table's copy."""
    return click.Command(None, help=text).get_short_help_str(limit)


def usage_error(e: click.UsageError) -> NoReturn:
    """Docker's answer to a command line it cannot parse: what is wrong on one line, then where
    the help is (`docker run --bogus` prints the same two lines), and exit 125."""
    ctx = e.ctx
    if isinstance(e, _NO_ARGS_IS_HELP) and ctx is not None:
        # `minirun` or `minirun network` alone: Docker prints the help and exits 0 (as click
        # did before 8.2 made this an error).
        click.echo(ctx.get_help())
        sys.exit(0)
    # One line, as every minirun error is: what is wrong, then where the fix is.
    see = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    click.echo(f"minirun: {usage_message(e).rstrip('.')}{see}", err=True)
    sys.exit(125)


def usage_message(e: click.UsageError) -> str:
    """click's usage error in Docker's words, on one line."""
    if isinstance(e, UnknownCommand):
        return f"'{e.command_name}' is not a minirun command."
    if isinstance(e, click.NoSuchOption):
        name = e.option_name
        if name.startswith("--"):
            return f"unknown flag: {name}"
        return f"unknown shorthand flag: {name.lstrip('-')[:1]!r} in {name}"
    if isinstance(e, click.MissingParameter) and isinstance(e.param, click.Argument) \
            and e.ctx is not None:
        args = [p for p in e.ctx.command.params if isinstance(p, click.Argument)]
        need = sum(1 if p.nargs < 0 else p.nargs for p in args if p.required)
        exact = all(p.required and p.nargs > 0 for p in args)
        plural = "s" if need != 1 else ""
        return (f'"{e.ctx.command_path}" requires {"exactly" if exact else "at least"} '
                f"{need} argument{plural}.")
    if isinstance(e, click.BadParameter) and not isinstance(e, click.MissingParameter) \
            and e.param is not None:
        if isinstance(e.param, click.Option):
            where = f'"{", ".join(e.param.opts)}" flag'
        else:
            where = e.param.human_readable_name
        return _one_line(f"invalid argument for {where}: {e.message}")
    if isinstance(e, click.BadOptionUsage) and "requires an argument" in e.message:
        return f"flag needs an argument: {e.option_name}"
    if type(e) in (click.UsageError, click.BadArgumentUsage) and e.ctx is not None \
            and not isinstance(e.ctx.command, click.Group) \
            and not any(isinstance(p, click.Argument) for p in e.ctx.command.params):
        return f'"{e.ctx.command_path}" accepts no arguments.'  # click: "unexpected extra ..."
    text = e.format_message()
    return _one_line(text[:1].lower() + text[1:])


def _one_line(text: str) -> str:
    return " ".join(text.split())


# click 8.2+ raises this for a group given no arguments; before, it printed the help itself.
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _debug() -> bool:
    return bool(os.environ.get("MINIRUN_DEBUG")) or "--debug" in sys.argv


@click.group(cls=MainGroup, invoke_without_command=True, subcommand_metavar="COMMAND [ARGS]...",
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", message="minirun version %(version)s")
@click.option("--root", envvar="MINIRUN_ROOT", default=DEFAULT_ROOT, show_default=True,
              help="Where images, containers and volumes live ($MINIRUN_ROOT).")
@click.option("--runroot", envvar="MINIRUN_RUNROOT", default=DEFAULT_RUNROOT, show_default=True,
              help="Where runtime state lives ($MINIRUN_RUNROOT).")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.option("--trace", is_flag=True, help="Narrate every step on stderr, with the reason: "
              "image, rootfs, bundle, the runtime's kernel calls, network, exit and cleanup "
              "(also MINIRUN_TRACE=1; docs/trace.md).")
@click.pass_context
def main(ctx: click.Context, root: str, runroot: str, debug: bool, trace: bool) -> None:
    """A container runtime in readable Python: namespaces, cgroups, overlayfs, OCI."""
    if ctx.invoked_subcommand is None:  # `minirun` (flags, no command): Docker shows the help
        click.echo(ctx.get_help())
        ctx.exit()
    if trace or os.environ.get("MINIRUN_TRACE", "") not in ("", "0"):
        from .. import trace as narration  # (only then: `ps` never loads it)

        if not narration.enabled:  # (`run`: on already, since engine/early.py)
            narration.enable("cli")
    ctx.obj = Context(root=os.path.abspath(root), runroot=os.path.abspath(runroot), debug=debug)


# The two groups whose commands come from several modules live here; the others (network,
# volume, system, builder, manifest) with their commands, in their module.
@main.group(cls=Group, table="image")
def image() -> None:
    """Manage images (the docker image ... management commands)."""


@main.group("container", cls=Group, table="container")
def container_group() -> None:
    """Manage containers (the docker container ... management commands)."""


def load_all() -> None:
    """Import every command module (the man page generator and the tests walk them all)."""
    for group in _table("main").values():
        _load(group[0])
    for name in ("image", "container"):
        for entry in _table(name).values():
            _load(entry[0])
