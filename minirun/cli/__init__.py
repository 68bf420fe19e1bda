"""minirun: the docker-like front end.

The front end turns an image and flags into an OCI bundle and hands it to the runtime; it never
calls the kernel itself. One module per command family registers its commands on `main`:

  images.py    images, tag, rmi, image inspect, history, image prune
  pull.py      pull, login, logout
  archive.py   save, load, import, export
  system.py    version, info

click is imported here only: the OCI runtime's hot path (minirun-oci) stays lean.

Global options: --root DIR (images, containers, volumes: default /var/lib/minirun, or
$MINIRUN_ROOT) and --runroot DIR (runtime state: default /run/minirun, or $MINIRUN_RUNROOT), so
tests never touch the real ones. Errors are one line on stderr, with Docker's exit codes (125
for minirun's own errors), never a traceback (unless --debug).
"""

from __future__ import annotations

import os
import sys

import click

from .. import __version__
from ..errors import MinirunError

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
            from ..image.store import Store

            self._store = Store(os.path.join(self.root, "image"))
        return self._store

    def engine(self):
        """Containers and volumes under --root, runtime state under --runroot."""
        if self._engine is None:
            from ..engine.lifecycle import Engine

            self._engine = Engine(self.root, self.runroot, self.store)
        return self._engine

    @property
    def auth_path(self) -> str:
        from ..image.auth import default_path

        return default_path(self.root)


class Group(click.Group):
    """A click group whose errors are one line and exit with Docker's codes."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MinirunError as e:
            if _debug():
                raise
            click.echo(f"minirun: {e}", err=True)
            from ..errors import CommandError

            if isinstance(e, CommandError):  # the container's command: 127 not found, 126 not runnable
                sys.exit(e.command_code)
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


def _debug() -> bool:
    return bool(os.environ.get("MINIRUN_DEBUG")) or "--debug" in sys.argv


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", message="minirun version %(version)s")
@click.option("--root", envvar="MINIRUN_ROOT", default=DEFAULT_ROOT, show_default=True,
              help="Where images, containers and volumes live ($MINIRUN_ROOT).")
@click.option("--runroot", envvar="MINIRUN_RUNROOT", default=DEFAULT_RUNROOT, show_default=True,
              help="Where runtime state lives ($MINIRUN_RUNROOT).")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def main(ctx: click.Context, root: str, runroot: str, debug: bool) -> None:
    """A container runtime in readable Python: namespaces, cgroups, overlayfs, OCI."""
    ctx.obj = Context(root=os.path.abspath(root), runroot=os.path.abspath(runroot), debug=debug)


@main.group(cls=Group)
def image() -> None:
    """Manage images (the docker image ... management commands)."""


# Each command family registers itself on `main` (and `image`) when imported.
from . import archive, build, containers, images, network, pull, push, system, volumes  # noqa: E402,F401
