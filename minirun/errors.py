"""One exception family: each error is one line that names the object and the fix.

The command-line layers catch `MinirunError` and print `str(err)`; only `--debug` shows a
traceback. `exit_code` follows the conventions of the layer that raises: runc exits 1 on its own
errors, Docker uses 125 for the CLI's own errors and 126/127 when the command cannot be run.

The engine API (minirun/engine/api/) raises errors of five kinds, so that each front end can
answer in its own terms without reading messages. The older classes (ContainerError, ImageError)
stay; an engine error of a clear kind is both (records.NoSuchContainer is a ContainerError and
a NotFound), so code that catches either keeps working. What each front end makes of them:

    kind              CLI (minirun)                  Docker API service (to come)
    NotFound          one line, exit 125             404 Not Found
    Conflict          one line, exit 125             409 Conflict
    InvalidArgument   one line, exit 125             400 Bad Request
    Unsupported       one line, exit 125             501 Not Implemented
    Unavailable       one line, exit 125             500 Internal Server Error
    CommandError      one line, exit 126 or 127      500 (exec start: the ExitCode)
    any other         one line, exit 125             500 Internal Server Error

(A command acting on several containers, `minirun stop a b`, prints each failure and exits 1,
as Docker's does.) Compose prints the message under the service it was acting on.
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


class NotFound(MinirunError):
    """The object named does not exist: no such container, image, volume, network or exec."""

    exit_code = 125


class Conflict(MinirunError):
    """The object is in a state that forbids the request: a name in use, a container running
    (or not running), a volume or image in use."""

    exit_code = 125


class InvalidArgument(MinirunError):
    """The request itself is wrong: a bad signal, filter, restart policy, size or option mix."""

    exit_code = 125


class Unsupported(MinirunError):
    """A request minirun understands but does not implement (Docker's 501 Not Implemented)."""

    exit_code = 125


class Unavailable(MinirunError):
    """The request is valid but this host cannot do it: a kernel feature or a tool is missing,
    user namespaces are disabled."""

    exit_code = 125


class ContainerError(MinirunError):
    """A container is missing, in the wrong state, or its ID is taken."""


class CommandError(MinirunError):
    """The container's command cannot be run: not found (Docker's 127) or not executable (126).

    The OCI runtime itself exits 1, as runc does; `command_code` is for the front end.
    """

    def __init__(self, message: str, command_code: int) -> None:
        super().__init__(message)
        self.command_code = command_code


class KernelError(MinirunError):
    """A system call failed; the message names the call, its object and errno."""

    def __init__(self, call: str, obj: str, errno: int, hint: str = "") -> None:
        import os  # lazy: ~0.9 ms of a bare start (oci/quick.py does without os)

        msg = f"{call} {obj}: {os.strerror(errno)}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)
        self.errno = errno


class RegistryError(MinirunError):
    """A registry is unreachable, refused a request or served bad content; names the image."""

    exit_code = 125


class ReferenceError(InvalidArgument):  # noqa: A001 - Docker's name; shadows the builtin only where imported
    """An image reference does not follow Docker's grammar; names the reference and the rule.
    (An InvalidArgument: the engine API's front ends answer 400 Bad Request.)"""

    exit_code = 125

    def __init__(self, reference: str, problem: str) -> None:
        super().__init__(f'invalid reference format: {problem} ("{reference}")')
        self.reference = reference
        self.problem = problem


class ImageError(MinirunError):
    """An image, tag, layer or blob is missing, ambiguous or inconsistent in the local store."""


class DigestError(ImageError):
    """Content does not hash to the digest it was promised under; nothing of it was kept."""
