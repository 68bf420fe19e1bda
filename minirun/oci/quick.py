"""The quick path: the plain case of `state`, `start`, `kill` and `delete`, on the bare interpreter.

Each minirun-oci call is a new interpreter, and issue 18 allows these four verbs 2 ms above the
bare one (`python -IS -c pass`). The full path (cli.py, container.py, state.py) loads 17
modules, and `os` among them costs 0.9 ms on its own (the bare interpreter never loads it).
This module does the same verbs with the interpreter's built-in modules (posix, fcntl, select,
_signal, time) and fastjson: the launcher (scripts/setup) calls `main` first, and cli.main only
when it returns None.

The rule that keeps the two paths one behaviour: when a call is not the plain case (any flag
but --root, --log, --log-format, kill's --signal and delete's --force; MINIRUN_TRACE; a missing,
invalid or unreadable container; a status the verb refuses; hooks; a live container or
leftover processes to kill at delete; no mount namespace), `main` returns None *before it has
changed anything*, and cli.main does the verb from the start, with its own checks and messages.
Once a side effect has happened (start has released the init, delete has begun removing
cgroups), failures are reported here the way cli.main reports them. Every step mirrors the
full path's (named in each docstring); tests/unit/test_oci_quick.py runs both paths on the same
state directories and compares what they do.

No `from __future__ import annotations` here or in fastjson: that statement is also an import
of the standard library's __future__.py (~0.1 ms, the first search of the stdlib directory).
"""

import fcntl
import posix
import sys

from .. import fastjson

FIFO = "exec.fifo"  # state.FIFO
_RO = posix.O_RDONLY | posix.O_CLOEXEC
# cli.GLOBAL and cli.COMMANDS, only the flags handled here: name -> (key, takes a value)
_GLOBAL = {"root": ("root", True), "log": ("log", True), "log-format": ("log_format", True)}
_VERBS = {
    "state": {}, "start": {},
    "kill": {"signal": ("signal", True), "s": ("signal", True)},
    "delete": {"force": ("force", False), "f": ("force", False)},
}
_REQUIRED = {"id": str, "pid": int, "pid_start": int, "bundle": str, "rootfs": str,
             "created": str}  # state.State's fields without a default


class _Defer(Exception):
    """Not the plain case, and nothing changed yet: cli.main does the verb."""


def main(argv: list) -> "int | None":
    """The verb's exit status, or None: not done here (and nothing done), run cli.main."""
    try:
        g, rest = _flags(argv, _GLOBAL)
        if not rest or rest[0] not in _VERBS or \
                posix.environ.get(b"MINIRUN_TRACE", b"") not in (b"", b"0"):
            raise _Defer
        cmd = rest[0]
        o, pos = _flags(rest[1:], _VERBS[cmd])
        root = g.get("root") or ("/run/minirun" if posix.geteuid() == 0 else "")
        # cli.main takes os.path.abspath(root): here only a root that is already normal.
        if not root.startswith("/") or any(p in ("", ".", "..") for p in root[1:].split("/")):
            raise _Defer
        if not pos or not _valid_id(pos[0]):
            raise _Defer
        cid = pos[0]
        if cmd == "state":
            return _state(root, cid)
        if cmd == "start":
            return _start(g, root, cid)
        if cmd == "kill":
            sig = signal_number(o.get("signal") or (pos[1] if len(pos) > 1 else "TERM"))
            if sig is None:
                raise _Defer
            return _kill(root, cid, sig)
        return _delete(g, root, cid)
    except _Defer:
        return None
    except KeyboardInterrupt:
        return 130  # cli.main's


def _flags(argv: list, table: dict) -> tuple:
    """cli.parse_flags for the flags in `table`; _Defer at any other (or `--`)."""
    opts = {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("-") or a == "-":
            return opts, argv[i:]
        name, eq, value = a.lstrip("-").partition("=")
        if a == "--" or name not in table:
            raise _Defer
        key, takes_value = table[name]
        if takes_value:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise _Defer
                value = argv[i]
            opts[key] = value
        else:
            opts[key] = value.lower() not in ("false", "0") if eq else True
        i += 1
    return opts, []


def _valid_id(cid: str) -> bool:
    """base/names.py valid_runtime_id."""
    return bool(cid) and cid not in (".", "..") and cid.isascii() and \
        all(c.isalnum() or c in "_+-." for c in cid)


def signal_number(text: str) -> "int | None":
    """A signal by number or name (TERM, SIGTERM, term), or None; cli.parse_signal adds
    RTMIN+N and RTMAX-N, and says what is wrong."""
    import _signal  # built in, and loaded by the interpreter's start already

    t = text.upper()
    if t.isdigit():
        return int(t)
    if not t.startswith("SIG"):
        t = "SIG" + t
    value = getattr(_signal, t, None)
    if not isinstance(value, int) or t.startswith("SIG_"):
        return None
    return value


# -- state on disk: state.py ---------------------------------------------------------------------

def _read(path: str) -> bytes:
    """The whole file (OSError if it cannot be read)."""
    fd = posix.open(path, _RO)
    try:
        chunks = []
        while True:
            b = posix.read(fd, 65536)
            if not b:
                return b"".join(chunks)
            chunks.append(b)
    finally:
        posix.close(fd)


def _load(root: str, cid: str) -> dict:
    """state.load: state.json as a dict with State's required fields, or _Defer (missing,
    still being created, unreadable, incomplete: the full path's errors)."""
    try:
        data = fastjson.loads(_read(f"{root}/{cid}/state.json"))
    except (OSError, ValueError):
        raise _Defer from None
    if not isinstance(data, dict) or data.get("id") != cid or "root_dir" in data:
        raise _Defer
    for key, kind in _REQUIRED.items():
        if type(data.get(key)) is not kind:
            raise _Defer
    for key, kind in (("annotations", dict), ("cgroup_paths", dict), ("cgroup_made", list),
                      ("hooks", dict), ("cgroup_version", int), ("host_root_mount", int)):
        if not isinstance(data.get(key, kind()), kind):
            raise _Defer
    return data


def start_time(pid: int) -> "int | None":
    """kernel/process.py start_time, copied (only built-in modules here, see the module's
    docstring): field 22 of /proc/PID/stat, None if gone or a zombie."""
    try:
        data = _read(f"/proc/{pid}/stat")
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def _status(s: dict, sdir: str) -> str:
    """State.status."""
    if start_time(s["pid"]) != s["pid_start"]:
        return "stopped"
    try:
        posix.stat(f"{sdir}/{FIFO}")
        return "created"
    except (OSError, ValueError):
        pass
    for path in (s.get("cgroup_paths") or {}).values():
        for name, frozen in (("cgroup.freeze", b"1"), ("freezer.state", b"FROZEN")):
            try:
                if _read(f"{path}/{name}").strip() == frozen:
                    return "paused"
            except OSError:
                pass
    return "running"


def _lock(sdir: str) -> int:
    """container._locked (base/filelock.py, directory=True): the fd holding the flock; _Defer
    if the directory is gone (deleted meanwhile: the full path says so)."""
    while True:
        try:
            fd = posix.open(sdir, posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC)
        except OSError:
            raise _Defer from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            posix.close(fd)
            raise
        try:
            a, b = posix.fstat(fd), posix.lstat(sdir)
            if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino):
                return fd
        except FileNotFoundError:
            pass
        posix.close(fd)


def _error(g: dict, msg: str) -> int:
    """cli.main's report of a MinirunError (exit status 1), for errors past a side effect."""
    from . import log  # lazy: errors only

    log.configure(False, g.get("log"), g.get("log_format"))
    log.error(msg)
    return 1


def _os_error(g: dict, cmd: str, e: OSError) -> int:
    """cli.main's report of an OSError."""
    return _error(g, f"{cmd}: {e.filename + ': ' if e.filename else ''}{e.strerror or e}")


# -- the verbs: container.py -----------------------------------------------------------------------

def _state(root: str, cid: str) -> int:
    """container.state_json (State.oci), printed."""
    s = _load(root, cid)
    status = _status(s, f"{root}/{cid}")
    out = {
        "ociVersion": "1.2.0",  # state.OCI_VERSION
        "id": s["id"],
        "pid": s["pid"] if status != "stopped" else 0,
        "status": status,
        "bundle": s["bundle"],
        "rootfs": s["rootfs"],
        "created": s["created"],
        "owner": s.get("owner", ""),
    }
    if s.get("annotations"):
        out["annotations"] = s["annotations"]
    sys.stdout.write(fastjson.dumps(out, indent=2) + "\n")
    return 0


def _start(g: dict, root: str, cid: str) -> int:
    """container.start, for a container without poststart hooks."""
    s = _load(root, cid)
    if s.get("hooks", {}).get("poststart"):
        raise _Defer
    sdir = f"{root}/{cid}"
    lock = _lock(sdir)
    try:
        if _status(s, sdir) != "created":
            raise _Defer
        fifo = f"{sdir}/{FIFO}"
        try:
            fd = posix.open(fifo, posix.O_RDONLY | posix.O_NONBLOCK | posix.O_CLOEXEC)
        except OSError:
            raise _Defer from None
        # The init is released now: from here on, failures are reported, not deferred.
        try:
            try:
                if not _wait_exec(fd, s):
                    return _error(g, f"cannot start container {cid}: its init exited")
            finally:
                posix.close(fd)
            posix.unlink(fifo)
        except OSError as e:
            return _os_error(g, "start", e)
    finally:
        posix.close(lock)
    return 0


def _wait_exec(fd: int, s: dict) -> bool:
    """container.start's wait: True once the init has exec'd the program (EOF on the fifo
    after its byte: the write end is close-on-exec), False if it died before it was released.
    Why start waits for the exec: container.start."""
    import select  # built in

    p = select.poll()
    p.register(fd, select.POLLIN)
    released = False
    while True:
        if p.poll(100):
            if posix.read(fd, 1):
                released = True
                continue
            return released
        if start_time(s["pid"]) != s["pid_start"]:
            return released


def _kill(root: str, cid: str, sig: int) -> int:
    """container.kill without --all: the init's PID, under the lock."""
    s = _load(root, cid)
    if start_time(s["pid"]) != s["pid_start"]:
        raise _Defer  # stopped: the full path's error
    lock = _lock(f"{root}/{cid}")
    try:
        posix.kill(s["pid"], sig)
    except ProcessLookupError:
        pass
    except OSError:
        raise _Defer from None  # not delivered: the full path fails the same way, and says so
    finally:
        posix.close(lock)
    return 0


def _delete(g: dict, root: str, cid: str) -> int:
    """container.delete of a stopped container whose cgroup is empty, with no poststop hooks
    and a mount namespace of its own (with or without --force: the same for such a one)."""
    s = _load(root, cid)
    if s.get("hooks", {}).get("poststop") or s.get("host_root_mount"):
        raise _Defer
    sdir = f"{root}/{cid}"
    lock = _lock(sdir)
    try:
        if _status(s, sdir) != "stopped":
            raise _Defer  # refused, or --force: kill first
        paths = s.get("cgroup_paths") or {}
        if paths and _populated(s.get("cgroup_version", 0), paths):
            raise _Defer  # leftovers to kill first
        made = s.get("cgroup_made")
        if made:
            try:
                _remove_cgroups(made)
            except OSError as e:
                return _error(g, f"delete {cid}: cannot remove cgroup {e.filename}: "
                                 f"{e.strerror}")
    finally:
        posix.close(lock)
    try:
        _discard(sdir)
    except OSError as e:
        return _os_error(g, "delete", e)
    return 0


# -- cgroups: kernel/cgroups/ (Cgroup.populated, V2.populated, Cgroup.remove) ----------------------

def _populated(version: int, dirs: dict) -> bool:
    """V2.populated (v2) and Cgroup.populated (v1) of kernel/cgroups/, copied: this module may
    use only the interpreter's built-in modules (see its docstring), not kernel/cgroups."""
    if version == 2:
        try:
            return b"populated 1" in _read(f"{next(iter(dirs.values()))}/cgroup.events")
        except OSError:
            return False
    for d in dirs.values():
        try:
            fd = posix.open(f"{d}/cgroup.procs", _RO)
        except OSError:
            continue
        try:
            if posix.read(fd, 1):
                return True
        except OSError:
            pass
        finally:
            posix.close(fd)
    return False


def _dirname(p: str) -> str:
    """posixpath.dirname."""
    head = p[:p.rfind("/") + 1]
    if head and head != "/" * len(head):
        head = head.rstrip("/")
    return head


def _remove_cgroups(dirs: list) -> None:
    """rmdir the cgroups create made, deepest first (the leaf retried while it empties), then
    the parents some create made and marked, once no container is left in them."""
    import time  # built in, and loaded by the interpreter's start already

    for d in sorted(dirs, key=len, reverse=True):
        leaf = not any(o.startswith(d + "/") for o in dirs)
        for attempt in range(200 if leaf else 1):
            try:
                posix.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                if not leaf:
                    break
                if attempt == 199:
                    raise
                time.sleep(0.01)
    gone = set(dirs)
    for d in dirs:
        p = _dirname(d)
        while p not in gone and p != "/" and (p in dirs or _marked(p)):
            gone.add(p)
            try:
                posix.rmdir(p)
            except FileNotFoundError:
                pass
            except OSError:
                break
            p = _dirname(p)


def _marked(path: str) -> bool:
    try:
        posix.getxattr(path, "trusted.minirun")  # cgroups.MARK
        return True
    except OSError:
        return False


# -- the state directory: container._discard, container._rmtree -----------------------------------

def _discard(sdir: str) -> None:
    gone = f"{sdir}~deleted.{posix.getpid()}"
    try:
        posix.rename(sdir, gone)
    except FileNotFoundError:
        return
    _rmtree(gone)


def _rmtree(path: str) -> None:
    try:
        names = posix.listdir(path)
    except FileNotFoundError:
        return
    for name in names:
        try:
            posix.unlink(f"{path}/{name}")
        except IsADirectoryError:
            _rmtree(f"{path}/{name}")
        except FileNotFoundError:
            pass
    try:
        posix.rmdir(path)
    except FileNotFoundError:
        pass
