"""Exec: a new process in a running container, every namespace and the cgroup joined.

    create(eng, ref, config)          -> {"Id"}        POST /containers/{id}/exec
    start(eng, exec_id, detach)       -> exit code     POST /exec/{id}/start
    inspect(exec_id)                  -> ExecInspect   GET /exec/{id}/json
    join(eng, exec_id, client)        -> exit code     the API service's start: the process's
                                                       stdio joined to a hijacked socket
    start_background(eng, exec_id)    -> None          the API service's start with Detach
    resize(exec_id, height, width)    -> None          POST /exec/{id}/resize

`config` is Docker's ExecConfig: Cmd, Env, WorkingDir, User, Privileged, Tty, AttachStdin and
ConsoleSize ([height, width]). As in Docker's daemon, exec instances live in memory, in the
process that created them (the CLI's, or the API service's). `start` runs the process on the
caller's own stdin, stdout and stderr (a terminal, or whatever they are); join and
start_background run it through a runner process (the comment above _RUNNER says why).

Errors: NotFound (no such container or exec), Conflict (the container is not running, or
paused), CommandError (the command cannot be run: 127 not found, 126 not executable).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from typing import TYPE_CHECKING

from ...errors import CommandError, Conflict, MinirunError, NotFound
from ...oci import execute, spec
from .. import bundle, users
from ..lifecycle import Engine

if TYPE_CHECKING:
    import socket  # (the API service's paths import it, and select and tempfile, lazily:
    #               `minirun exec` loads this module and needs none of them, ~3 ms)

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
        "_spec": p,  # the OCI process as JSON: what join/start_background hand their runner
        "_attach": (bool(config.get("AttachStdout", True)),
                    bool(config.get("AttachStderr", True))),
        "ID": exec_id, "ContainerID": c.id, "Running": False, "ExitCode": None, "Pid": 0,
        "OpenStdin": bool(config.get("AttachStdin")), "OpenStdout": True, "OpenStderr": True,
        "CanRemove": False, "DetachKeys": "",
        "ProcessConfig": {"tty": tty, "entrypoint": cmd[0] if cmd else "",
                          "arguments": cmd[1:], "privileged": bool(config.get("Privileged")),
                          "user": user or ""},
        "_process": spec.parse_process(p),
    }
    return {"Id": exec_id}


def start(eng: Engine, exec_id: str, detach: bool = False, detach_keys: bytes = b"") -> int:
    """Run the exec's process on the caller's stdio; its exit code (0 at once with `detach`,
    which also gives up the terminal: a detached process has nobody to type into it).
    `detach_keys` typed at our terminal (-it) leave it running: 0 (--detach-keys)."""
    rec = _record(exec_id)
    if rec["Running"] or rec["ExitCode"] is not None:
        raise Conflict(f"exec {exec_id[:12]} has already been started")
    proc = rec["_process"]
    if detach and proc.terminal:
        proc.terminal = False
        rec["ProcessConfig"]["tty"] = False
    rec["Running"] = True
    try:
        code = execute.exec_process(eng.runroot, rec["ContainerID"], proc, detach=detach,
                                    detach_keys=detach_keys)
    except CommandError:
        raise
    except MinirunError as e:
        raise _as_command_error(e) from None
    finally:
        rec["Running"] = False
    rec["ExitCode"] = code
    return code


def _as_command_error(e: MinirunError) -> MinirunError:
    """The runtime reports a process that could not start as CommandError; a failure in its
    set-up (a working directory that is not there) comes as text: Docker's 127 and 126."""
    text = str(e)
    if "executable file not found" in text or "no such file or directory" in text:
        return CommandError(text, 127)
    if "permission denied" in text:
        return CommandError(text, 126)
    return e


def inspect(exec_id: str) -> dict:
    """Docker's ExecInspect: ID, ContainerID, Running, ExitCode (None until it ends),
    ProcessConfig, OpenStdin ..."""
    rec = _record(exec_id)
    if not rec["Pid"] and rec.get("_pid_file"):
        rec["Pid"] = _read_pid(rec["_pid_file"])  # a runner's process: known once it runs
    return {k: v for k, v in rec.items() if not k.startswith("_")}


def _record(exec_id: str) -> dict:
    try:
        return _EXECS[exec_id]
    except KeyError:
        raise NotFound(f"No such exec instance: {exec_id}") from None


# -- the API service's exec: the process's stdio joined to a client's socket ------------------
#
# join() and start_background() do not call execute.exec_process here: the API service has
# many threads, and exec_process forks and runs Python in the child (a lock another thread
# holds stays held there), installs signal handlers (the main thread's only), makes its caller
# a child subreaper (process-wide: the service would adopt, and never reap, every orphan, the
# monitors too) and runs the process on the caller's fds 0/1/2. So each exec gets a runner: a
# fresh interpreter started by subprocess (fork+exec in C, safe with threads), whose stdio is
# our pipes, and which calls exec_process as the CLI does, single-threaded. With a TTY it
# hands us the pty's master on a console socket, as runc hands it to containerd.

_RUNNER = """\
import json, sys
sys.path[:0] = sys.argv[1].split(":")
from minirun.errors import CommandError, MinirunError
from minirun.oci import execute, spec
tmp, runroot, cid = sys.argv[2:5]
proc = spec.parse_process(json.loads(sys.argv[5]))
try:
    code = execute.exec_process(runroot, cid, proc, pid_file=tmp + "/pid",
                                console_socket=tmp + "/console" if proc.terminal else None)
except (MinirunError, OSError) as e:
    code = e.command_code if isinstance(e, CommandError) else 126
    with open(tmp + "/error", "w") as f:
        json.dump({"message": str(e), "code": code, "command": isinstance(e, CommandError)}, f)
sys.exit(code)
"""
# Held to claim an exec (two starts of one exec: one wins) and around the pty master (a
# resize and the end of its session both touch it).
_LOCK = threading.Lock()


def _runner_argv(tmp: str, runroot: str, cid: str, process: dict) -> list[str]:
    """Isolated and without site, like the monitor (monitorhandle.monitor_argv)."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    paths = [here] + [p for p in sys.path if p.endswith("-packages")]
    return [sys.executable, "-IS", "-c", _RUNNER, ":".join(paths), tmp, runroot, cid,
            json.dumps(process)]


def _claim(exec_id: str) -> dict:
    """The record of an exec about to start; Conflict if it started already."""
    with _LOCK:
        rec = _record(exec_id)
        if rec["Running"] or rec["ExitCode"] is not None:
            raise Conflict(f"exec {exec_id[:12]} has already been started")
        rec["Running"] = True
        return rec


def _spawn(eng: Engine, rec: dict, stdio: tuple, detach: bool = False,
           console_size: list | None = None
           ) -> tuple[subprocess.Popen, str, socket.socket | None]:
    """Start the runner of `rec`'s process on `stdio` (three fds, or subprocess.DEVNULL):
    (its Popen, its private directory: pid file, console socket and error report, the console
    socket listening, with a TTY)."""
    p = dict(rec["_spec"])
    if detach:
        p["terminal"] = False  # nobody to type into it (as start() does)
        rec["ProcessConfig"]["tty"] = False
    size = rec.pop("_size", None) or console_size  # a resize before the start wins
    if p["terminal"] and size:
        p["consoleSize"] = {"height": int(size[0]), "width": int(size[1])}
    import socket  # lazy: the API service's path only (see TYPE_CHECKING above)
    import tempfile

    tmp = tempfile.mkdtemp(prefix="minirun-exec-")  # 0700, and short: a socket path
    rec["_pid_file"] = os.path.join(tmp, "pid")
    listener = None
    try:
        if p["terminal"]:  # listening before the runner starts: it connects at once
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            listener.bind(os.path.join(tmp, "console"))
            listener.listen(1)
        runner = subprocess.Popen(_runner_argv(tmp, eng.runroot, rec["ContainerID"], p),
                                  stdin=stdio[0], stdout=stdio[1], stderr=stdio[2],
                                  close_fds=True, start_new_session=True)
    except BaseException:
        if listener is not None:
            listener.close()
        shutil.rmtree(tmp, ignore_errors=True)
        rec["Running"] = False
        raise
    return runner, tmp, listener


def _finish(rec: dict, runner: subprocess.Popen, tmp: str) -> tuple[int, str]:
    """Wait for the runner; record the exit code. (exit code, the runtime's error or "")."""
    code = runner.wait()
    if code < 0:
        code = 128 - code  # the runner itself was killed: as a shell reports it
    message = ""
    try:
        with open(os.path.join(tmp, "error")) as f:
            err = json.load(f)
        e: MinirunError = CommandError(err["message"], err["code"]) if err["command"] else \
            _as_command_error(MinirunError(err["message"]))
        code = e.command_code if isinstance(e, CommandError) else 126
        message = str(e)
    except (OSError, ValueError, KeyError):
        pass
    rec["Pid"] = rec["Pid"] or _read_pid(rec["_pid_file"])
    rec.pop("_pid_file", None)
    shutil.rmtree(tmp, ignore_errors=True)
    rec["ExitCode"], rec["Running"] = code, False
    return code, message


def _read_pid(path: str) -> int:
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def start_background(eng: Engine, exec_id: str) -> None:
    """POST /exec/{id}/start with Detach: the process runs on, its output discarded; a thread
    waits for it to record its exit code (ExecInspect's ExitCode)."""
    rec = _claim(exec_id)
    dev = subprocess.DEVNULL
    runner, tmp, _ = _spawn(eng, rec, (dev, dev, dev), detach=True)
    threading.Thread(target=_finish, args=(rec, runner, tmp), daemon=True,
                     name=f"exec {exec_id[:12]}").start()


def resize(exec_id: str, height: int, width: int) -> None:
    """The window size of an exec's pty (before its start: the size it starts with)."""
    rec = _record(exec_id)
    if not rec["ProcessConfig"]["tty"]:
        return  # Docker accepts it and does nothing
    with _LOCK:
        if rec["ExitCode"] is not None:
            raise Conflict(f"exec {exec_id[:12]} is not running")
        master = rec.get("_console")
        if master is None:
            rec["_size"] = (height, width)  # its pty is not there yet: join applies it
            return
        from ...kernel import terminal  # lazy: only a TTY exec (start-up budget)

        terminal.set_size(master, height, width)


def join(eng: Engine, exec_id: str, client: socket.socket,
         console_size: list | None = None) -> int:
    """Run exec `exec_id` with its stdio joined to `client` (a hijacked HTTP connection): its
    output to the client (raw with a TTY, else in Docker's 8-byte frames), the client's bytes
    to its stdin if it was created with AttachStdin (the client's half-close ends it). A client
    that goes away takes our ends of the process's stdio with it; the process may run on, and
    this waits for it to record its exit code. Returns the exit code. (Errors before the
    process starts: NotFound, Conflict; once it is hijacked, the runtime's error goes to the
    client as text, as Docker's does, and the code is 126 or 127.)"""
    rec = _claim(exec_id)
    tty = bool(rec["_spec"]["terminal"])
    want_stdin = rec["OpenStdin"]
    dev = subprocess.DEVNULL
    ours: list[int] = []  # our ends: closed before we wait for the process, whatever happens
    theirs: list[int] = []  # the runner's ends: closed once it has them
    try:
        if tty:
            stdio: tuple = (dev, dev, dev)
        else:
            in_r, in_w = os.pipe2(os.O_CLOEXEC) if want_stdin else (dev, -1)
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            ours += [fd for fd in (in_w, out_r, err_r) if fd >= 0]
            theirs += [fd for fd in (in_r, out_w, err_w) if fd >= 0]
            stdio = (in_r, out_w if rec["_attach"][0] else dev,
                     err_w if rec["_attach"][1] else dev)
        runner, tmp, listener = _spawn(eng, rec, stdio, console_size=console_size)
    except BaseException:
        for fd in ours + theirs:
            os.close(fd)
        rec["Running"] = False
        raise
    for fd in theirs:
        os.close(fd)

    def close_ours() -> None:
        with _LOCK:
            rec.pop("_console", None)
            while ours:
                os.close(ours.pop())

    try:
        pidfd = os.pidfd_open(runner.pid)
        ours.append(pidfd)
        master = _console(listener, pidfd) if listener is not None else None
        if master is not None:
            with _LOCK:
                ours.append(master)
                rec["_console"] = master
                if rec.get("_size"):  # a resize came while the pty was being made
                    from ...kernel import terminal  # lazy: only an exec -t resized early

                    terminal.set_size(master, *rec.pop("_size"))
            _pump(client, {master: "stdout"}, master if want_stdin else -1, pidfd, tty, ours)
        elif not tty:
            _pump(client, {out_r: "stdout", err_r: "stderr"}, in_w if want_stdin else -1,
                  pidfd, tty, ours)
        # (a TTY exec whose runner ended before it made a pty: its error tells the client why)
        close_ours()  # before the wait: a client gone, the process reads EOF or gets EPIPE
        return _report(rec, runner, tmp, client, tty)
    finally:
        close_ours()
        if listener is not None:
            listener.close()  # (closed already, unless a fault came first)
        if runner.returncode is None:
            _finish(rec, runner, tmp)  # a fault above: still record how the process ended


def _console(listener: socket.socket, pidfd: int) -> int | None:
    """The pty master the runtime sends on the runner's console socket, or None if the runner
    ends first."""
    import select

    from ...kernel import terminal  # lazy: only a TTY exec (start-up budget)

    try:
        ready, _, _ = select.select([listener, pidfd], [], [])
        if listener not in ready:
            return None
        conn, _ = listener.accept()
        with conn:
            master = terminal.recv_fd(conn)
        os.set_inheritable(master, False)  # SCM_RIGHTS gives it without O_CLOEXEC
        return master
    finally:
        listener.close()


def _pump(client: socket.socket, outputs: dict[int, str], stdin_fd: int, pidfd: int,
          tty: bool, ours: list[int]) -> None:
    """Copy until the runner ends (then what is left in the pipes) or the client goes.
    `ours`: the caller's fds to close; a stdin pipe closed here leaves it."""
    import select

    from .. import attach as frames  # Docker's stream ids and 8-byte frame header

    ids = {"stdout": frames.STDOUT, "stderr": frames.STDERR}
    read_client = stdin_fd >= 0
    ended = False
    while outputs:
        watch = list(outputs) + ([client] if read_client else []) + ([] if ended else [pidfd])
        ready, _, _ = select.select(watch, [], [], 0 if ended else None)
        if ended and not ready:
            return  # the process is gone and the pipes are drained (a child may hold them)
        for fd in [f for f in ready if f in outputs]:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: a pty whose every slave fd is closed
                data = b""
            if not data:
                del outputs[fd]
                continue
            if not tty:
                data = frames.frame(ids[outputs[fd]], data)
            try:
                client.sendall(data)
            except OSError:
                return  # the client went away: the process runs on without us
        if client in ready and read_client:
            try:
                data = client.recv(65536)
            except OSError:
                return
            if not data:
                read_client = False
                if not tty:  # the client's half-close: the process reads EOF
                    ours.remove(stdin_fd)
                    os.close(stdin_fd)
            else:
                try:
                    os.write(stdin_fd, data)
                except OSError:
                    read_client = False  # nobody reads stdin any more
        if pidfd in ready:
            ended = True


def _report(rec: dict, runner: subprocess.Popen, tmp: str, client: socket.socket,
            tty: bool) -> int:
    """Wait for the runner; a runtime error goes to the client as text (on stdout, as Docker
    writes it). The exit code is recorded before the client reads EOF: it asks for it then."""
    code, message = _finish(rec, runner, tmp)
    if message:
        from .. import attach as frames  # lazy: the API service only (not `minirun exec`)

        text = f"OCI runtime exec failed: {message}\r\n".encode()
        try:
            client.sendall(text if tty else frames.frame(frames.STDOUT, text))
        except OSError:
            pass
    return code
