"""What the container commands share: the engine and its API modules (imported when a command
runs), run's parser settings, --detach-keys, and the exit code of an attached run.

Its own module so that each command module loads only itself and this: `run` builds its ~100
options without also building `create`'s copy of them and every other container command
(cli/run.py, cli/create.py, cli/containers.py; ~2 ms of a `minirun run`).
"""

from __future__ import annotations

import click

from ..errors import MinirunError

# run, create and exec: their flags end at the image (or container); the rest is the command's.
RUN_SETTINGS = {"allow_interspersed_args": False, "ignore_unknown_options": False}


def engine(obj):
    return obj.engine()


def containers_api():
    """The engine API's containers module. Imported when a command runs, not at the top:
    every container command imports this module, and `minirun version` needs no engine."""
    from ..engine.api import containers  # lazily: the start-up of every command (see above)

    return containers


def attach_api():
    """The engine API's attach module (run in the foreground, start -a, attach)."""
    from ..engine.api import attach  # lazily: start-up (see containers_api)

    return attach


def files_api():
    """The engine API's files module (cp, diff, export)."""
    from ..engine.api import files  # lazily: start-up (see containers_api)

    return files


def detach_keys(text: str) -> bytes:
    """--detach-keys, checked before anything is made (base/detachkeys.py)."""
    from ..base import detachkeys  # lazily: start-up (see containers_api)

    try:
        return detachkeys.parse(text)
    except detachkeys.DetachKeysError as e:
        raise MinirunError(str(e)) from None


def exit_code(result: dict) -> int:
    """What `run`, `start -a` and `attach` exit with: the container's code, or 0 when the user
    detached (with a word about it at a terminal, as Docker's)."""
    if result["Detached"]:
        click.echo("\r\nread escape sequence" if result["Tty"] else "", err=True)
        return 0
    return result["StatusCode"]
