"""`commit -c` and `import -c`: Dockerfile instructions applied to an image's config.

    apply_changes(config, ["CMD [\"sh\"]", "ENV A=1", "EXPOSE 80"]) -> a new config dict

Docker's small second reader of Dockerfile instructions (its dockerfile.ParseCommand for
--change): CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL, one per
change, without variable expansion. Errors are ImageError, naming the change.
"""

from __future__ import annotations

import json
import os
import shlex
from typing import Iterable

from ...errors import ImageError

_CHANGES = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "USER", "VOLUME", "WORKDIR", "STOPSIGNAL")


def apply_changes(config: dict, changes: Iterable[str]) -> dict:
    """Apply Dockerfile instructions (`docker import -c`/`commit -c`) to an image's config."""
    config = dict(config)
    for change in changes:
        instr, _, rest = change.strip().partition(" ")
        if not rest.strip() and "=" not in instr:
            instr, _, rest = change.strip().partition("=")  # "CMD=..." is not Docker's form
            if instr.upper() not in _CHANGES or not rest:
                raise ImageError(f"invalid change {change!r}: expected INSTRUCTION ARGUMENTS")
        instr, rest = instr.upper(), rest.strip()
        if instr not in _CHANGES:
            raise ImageError(f"invalid change {change!r}: {instr} is not one of {', '.join(_CHANGES)}")
        if instr in ("CMD", "ENTRYPOINT"):
            config["Cmd" if instr == "CMD" else "Entrypoint"] = _exec_form(rest, change)
        elif instr == "ENV":
            env = list(config.get("Env") or [])
            for key, value in _pairs(rest, change, allow_space=True):
                env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
            config["Env"] = env
        elif instr == "LABEL":
            config["Labels"] = {**(config.get("Labels") or {}), **dict(_pairs(rest, change))}
        elif instr == "EXPOSE":
            ports = dict(config.get("ExposedPorts") or {})
            for port in rest.split():
                num, _, proto = port.partition("/")
                if not num.isdigit() or proto not in ("", "tcp", "udp", "sctp"):
                    raise ImageError(f"invalid change {change!r}: bad port {port!r}")
                ports[f"{num}/{proto or 'tcp'}"] = {}
            config["ExposedPorts"] = ports
        elif instr == "VOLUME":
            paths = _json_list(rest, change) if rest.startswith("[") else rest.split()
            config["Volumes"] = {**(config.get("Volumes") or {}), **{p: {} for p in paths}}
        elif instr == "WORKDIR":
            base = config.get("WorkingDir") or "/"
            config["WorkingDir"] = os.path.normpath(os.path.join(base, rest))
        elif instr == "USER":
            config["User"] = rest
        elif instr == "STOPSIGNAL":
            config["StopSignal"] = rest
    return config


def _exec_form(rest: str, change: str) -> list[str]:
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    if not rest:
        raise ImageError(f"invalid change {change!r}: no command")
    return ["/bin/sh", "-c", rest]  # shell form, as Docker does (also for bad JSON)


def _pairs(rest: str, change: str, allow_space: bool = False) -> list[tuple[str, str]]:
    try:
        words = shlex.split(rest)
    except ValueError as e:
        raise ImageError(f"invalid change {change!r}: {e}") from None
    if not words:
        raise ImageError(f"invalid change {change!r}: nothing to set")
    if "=" not in words[0]:
        if not allow_space or len(words) < 2:
            raise ImageError(f"invalid change {change!r}: expected KEY=VALUE")
        key, _, value = rest.strip().partition(" ")
        return [(key, value.strip())]  # ENV KEY VALUE: the rest of the line, as Docker does
    pairs = []
    for w in words:
        key, eq, value = w.partition("=")
        if not eq or not key:
            raise ImageError(f"invalid change {change!r}: {w!r} is not KEY=VALUE")
        pairs.append((key, value))
    return pairs


def _json_list(rest: str, change: str) -> list:
    try:
        return json.loads(rest)
    except ValueError as e:
        raise ImageError(f"change {change!r} is not valid JSON: {e}") from None
