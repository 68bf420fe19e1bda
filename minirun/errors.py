"""One exception family: each error is one line that names the object and the fix.

The command-line layers catch `MinirunError` and print `str(err)`; only `--debug` shows a
traceback. `exit_code` follows the conventions of the layer that raises: runc exits 1 on its own
errors, Docker uses 125 for the CLI's own errors and 126/127 when the command cannot be run.
"""

from __future__ import annotations


class MinirunError(Exception):
    """Base class: a one-line, user-facing error."""

    exit_code = 1


class ConfigError(MinirunError):
    """config.json is invalid or asks for something we cannot do; names the field."""

    def __init__(self, field: str, problem: str) -> None:
        where = "config.json" if field == "config.json" else f"config.json: {field}"
        super().__init__(f"{where}: {problem}")
        self.field = field


class ContainerError(MinirunError):
    """A container is missing, in the wrong state, or its ID is taken."""


class KernelError(MinirunError):
    """A system call failed; the message names the call, its object and errno."""

    def __init__(self, call: str, obj: str, errno: int, hint: str = "") -> None:
        import os

        msg = f"{call} {obj}: {os.strerror(errno)}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)
        self.errno = errno
