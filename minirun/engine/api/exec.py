"""Exec: a new process in a running container, every namespace and the cgroup joined.

    create(eng, ref, config)          -> {"Id"}        POST /containers/{id}/exec
    start(eng, exec_id, detach)       -> exit code     POST /exec/{id}/start
    inspect(exec_id)                  -> ExecInspect   GET /exec/{id}/json

`config` is Docker's ExecConfig: Cmd, Env, WorkingDir, User, Privileged, Tty, AttachStdin and
ConsoleSize ([height, width]). As in Docker's daemon, exec instances live in memory, in the
process that created them (the CLI's, or the API service's). `start` runs the process on the
caller's own stdin, stdout and stderr (a terminal, or whatever they are).

Errors: NotFound (no such container or exec), Conflict (the container is not running, or
paused), CommandError (the command cannot be run: 127 not found, 126 not executable).
"""

from __future__ import annotations

import json
import os

from ...errors import CommandError, Conflict, MinirunError, NotFound
from ...oci import execute, spec
from .. import bundle, users
from ..lifecycle import Engine

_EXECS: dict[str, dict] = {}  # exec ID -> its record (ExecInspect, and the OCI process)


def create(eng: Engine, ref: str, config: dict) -> dict:
    """Prepare a process in running container `ref`: its user resolved in the container's
    /etc/passwd, its environment on top of the container's, the container's capabilities (all
    of them with Privileged). Returns {"Id": the exec's ID}."""
    c = eng.get(ref)
    if c.state.status != "running":
        if c.state.status == "paused":
            raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
        raise Conflict(f"Container {c.id} is not running")
    cdir = eng.cdir(c.id)
    with open(os.path.join(cdir, "config.json")) as f:
        cfg = json.load(f)
    process = cfg["process"]
    cmd = list(config.get("Cmd") or [])
    tty = bool(config.get("Tty"))
    user = config.get("User")
    u = users.resolve(os.path.join(cdir, "rootfs"),
                      user if user is not None else (c.config.get("User") or ""))
    env = bundle.environment(list(process["env"]), list(config.get("Env") or []),
                             c.config.get("Hostname", ""), tty)
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={u.home}")
    caps = process.get("capabilities")
    if config.get("Privileged"):
        every = bundle.capabilities([], [], True)
        caps = {k: every for k in ("bounding", "effective", "permitted")}
    p = {"args": cmd, "env": env, "cwd": config.get("WorkingDir") or process.get("cwd", "/"),
         "terminal": tty, "user": {"uid": u.uid, "gid": u.gid,
                                   "additionalGids": u.additional_gids},
         "capabilities": caps, "noNewPrivileges": process.get("noNewPrivileges", False)}
    if process.get("rlimits"):
        p["rlimits"] = process["rlimits"]  # --ulimit holds for exec'd processes too (Docker's)
    if tty and config.get("ConsoleSize"):
        rows, cols = config["ConsoleSize"]
        p["consoleSize"] = {"height": rows, "width": cols}
    exec_id = os.urandom(32).hex()
    _EXECS[exec_id] = {
        "ID": exec_id, "ContainerID": c.id, "Running": False, "ExitCode": None, "Pid": 0,
        "OpenStdin": bool(config.get("AttachStdin")), "OpenStdout": True, "OpenStderr": True,
        "CanRemove": False, "DetachKeys": "",
        "ProcessConfig": {"tty": tty, "entrypoint": cmd[0] if cmd else "",
                          "arguments": cmd[1:], "privileged": bool(config.get("Privileged")),
                          "user": user or ""},
        "_process": spec.parse_process(p),
    }
    return {"Id": exec_id}


def start(eng: Engine, exec_id: str, detach: bool = False) -> int:
    """Run the exec's process on the caller's stdio; its exit code (0 at once with `detach`,
    which also gives up the terminal: a detached process has nobody to type into it)."""
    rec = _record(exec_id)
    if rec["Running"] or rec["ExitCode"] is not None:
        raise Conflict(f"exec {exec_id[:12]} has already been started")
    proc = rec["_process"]
    if detach and proc.terminal:
        proc.terminal = False
        rec["ProcessConfig"]["tty"] = False
    rec["Running"] = True
    try:
        code = execute.exec_process(eng.runroot, rec["ContainerID"], proc, detach=detach)
    except CommandError:
        raise
    except MinirunError as e:
        # The runtime reports a process that could not start as CommandError; a failure in its
        # set-up (a working directory that is not there) comes as text: Docker's 127 and 126.
        text = str(e)
        if "executable file not found" in text or "no such file or directory" in text:
            raise CommandError(text, 127) from None
        if "permission denied" in text:
            raise CommandError(text, 126) from None
        raise
    finally:
        rec["Running"] = False
    rec["ExitCode"] = code
    return code


def inspect(exec_id: str) -> dict:
    """Docker's ExecInspect: ID, ContainerID, Running, ExitCode (None until it ends),
    ProcessConfig, OpenStdin ..."""
    return {k: v for k, v in _record(exec_id).items() if not k.startswith("_")}


def _record(exec_id: str) -> dict:
    try:
        return _EXECS[exec_id]
    except KeyError:
        raise NotFound(f"No such exec instance: {exec_id}") from None
