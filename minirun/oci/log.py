"""The runtime's own log lines: runc's global --log FILE, --log-format text|json and --debug.

Errors always go to stderr (runtime-tools, podman and conmon show it) and also to --log FILE.
Debug lines say where the runtime did something other than config.json literally asks, and why
(e.g. an SELinux label ignored on a host without SELinux); they are written only under --debug,
to FILE when --log is given (containerd reads it there), else to stderr, as runc does.
Imports nothing heavy: every minirun-oci call loads this module.
"""

from __future__ import annotations

import sys

from .. import fastjson

_debug = False
_file: str | None = None
_json = False


def configure(debug: bool, file: str | None, fmt: str | None) -> None:
    """Set from the global flags, once per call, before the command runs."""
    global _debug, _file, _json
    _debug, _file, _json = debug, file, fmt == "json"


def error(msg: str) -> None:
    sys.stderr.write(f"minirun-oci: {msg}\n")
    _to_file("error", msg)


def debug(msg: str) -> None:
    if not _debug:
        return
    if _file:
        _to_file("debug", msg)
    else:
        sys.stderr.write(f"minirun-oci: debug: {msg}\n")


def _to_file(level: str, msg: str) -> None:
    if not _file:
        return
    from ..base.times import now  # lazy: only a --log file needs times (start-up budget)

    if _json:
        line = fastjson.dumps({"level": level, "msg": msg, "time": now()})
    else:
        quoted = msg.replace("\\", "\\\\").replace('"', '\\"')
        line = f'time="{now()}" level={level} msg="{quoted}"'
    try:
        with open(_file, "a") as f:
            f.write(line + "\n")
    except OSError:
        pass  # a log we cannot write must not turn success into failure
