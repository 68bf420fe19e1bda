"""minirun-oci: the OCI runtime's command line, compatible with runc's.

Callers (podman's conmon, containerd's go-runc, runtime-tools) pass runc's flags, so this
parser accepts what urfave/cli does: `--flag value`, `--flag=value`, `-flag`, short aliases,
and global flags before the command. It is hand-written rather than argparse or click: each
call is a fresh process and their import cost (2-30 ms) would be most of our time budget.
"""

from __future__ import annotations

import _signal  # not `signal` (it imports enum): names and numbers for `kill`
import os
import sys

from .. import __version__, fastjson, trace
from ..errors import MinirunError
from . import container, log
from . import state as st

# A verb family's own module is imported by dispatch when that verb runs, so that each call
# loads only what it needs (start-up budget: tests/unit/test_startup_budget.py): spec.py,
# features.py, execute.py and hooks.py bring kernel/capabilities.py and prctl; run.py and
# control.py are small but belong to their verbs; ps runs ps(1) through subprocess.

USAGE = """usage: minirun-oci [global options] COMMAND [options] ARGS

An OCI runtime (runtime-spec 1.x) in readable Python, compatible with runc's command line.

commands:
  create   --bundle DIR [--pid-file F] [--console-socket S] [--no-pivot] [--no-new-keyring]
           [--preserve-fds N] ID        build the container; its process waits for `start`
  start    ID                            run the created container's process
  run      [--bundle DIR] [--detach] [--pid-file F] [--console-socket S] [--keep] ID
                                         create + start (+ wait and delete unless --detach)
  state    ID                            the container's state as JSON
  kill     [--all] ID [SIGNAL]           send a signal (default TERM; name or number)
  delete   [--force] ID                  remove a stopped container (--force: any)
  list     [--format table|json] [-q]    all containers
  ps       [--format table|json] ID      the container's processes
  exec     [--process F | CMD...] [--detach] [--tty] [--console-socket S] [--env K=V]
           [--cwd DIR] [--user UID[:GID]] [--additional-gids G] [--cap CAP] [--pid-file F]
           [--no-new-privs] [--preserve-fds N] ID   run a process in the container
  pause    ID / resume ID                freeze / thaw every process (the cgroup freezer)
  update   [--resources F|-] [--memory N --memory-swap N --cpu-shares N --cpu-quota N
           --cpu-period N --cpuset-cpus L --pids-limit N ...] ID   change live limits
  events   [--stats] [--interval 5s] ID  JSON lines: usage stats and OOM kills
  spec     [--bundle DIR] [--rootless]   write a default config.json
  features                               what this runtime supports, as JSON

global options:
  --root DIR          state directory (default /run/minirun; rootless:
                      $XDG_RUNTIME_DIR/minirun or /tmp/minirun-UID)
  --log FILE          also write errors (and --debug lines) to FILE
  --log-format text|json
  --debug             tracebacks and debug lines
  --systemd-cgroup    accepted for compatibility: there is no systemd driver; a
                      "slice:prefix:name" cgroupsPath is mapped onto cgroupfs
  --trace             narrate every kernel step on stderr (also MINIRUN_TRACE=1)
  --version, --help
"""

# command -> {flag: (canonical name, takes a value, repeatable)}
_F = tuple[str, bool, bool]
COMMON_CREATE: dict[str, _F] = {
    "bundle": ("bundle", True, False), "b": ("bundle", True, False),
    "pid-file": ("pid_file", True, False), "console-socket": ("console_socket", True, False),
    "no-pivot": ("no_pivot", False, False), "no-new-keyring": ("no_new_keyring", False, False),
    "preserve-fds": ("preserve_fds", True, False),
    "detach": ("detach", False, False), "d": ("detach", False, False),
    "keep": ("keep", False, False), "no-subreaper": ("no_subreaper", False, False),
}
COMMANDS: dict[str, dict[str, _F]] = {
    "create": COMMON_CREATE, "run": COMMON_CREATE,
    "start": {}, "state": {}, "pause": {}, "resume": {},
    "kill": {"all": ("all", False, False), "a": ("all", False, False),
             "signal": ("signal", True, False), "s": ("signal", True, False)},
    "delete": {"force": ("force", False, False), "f": ("force", False, False)},
    "list": {"format": ("format", True, False), "f": ("format", True, False),
             "quiet": ("quiet", False, False), "q": ("quiet", False, False)},
    "ps": {"format": ("format", True, False), "f": ("format", True, False)},
    "exec": {"process": ("process", True, False), "p": ("process", True, False),
             "detach": ("detach", False, False), "d": ("detach", False, False),
             "tty": ("tty", False, False), "t": ("tty", False, False),
             "console-socket": ("console_socket", True, False),
             "env": ("env", True, True), "e": ("env", True, True),
             "cwd": ("cwd", True, False), "user": ("user", True, False), "u": ("user", True, False),
             "additional-gids": ("gids", True, True), "g": ("gids", True, True),
             "cap": ("cap", True, True), "c": ("cap", True, True),
             "pid-file": ("pid_file", True, False), "no-new-privs": ("nnp", False, False),
             "preserve-fds": ("preserve_fds", True, False),
             "process-label": ("label", True, False), "apparmor": ("apparmor", True, False),
             "ignore-paused": ("ignore_paused", False, False)},
    "spec": {"bundle": ("bundle", True, False), "b": ("bundle", True, False),
             "rootless": ("rootless", False, False)},
    "features": {},
    "update": {"resources": ("resources", True, False), "r": ("resources", True, False),
               **{f: (f, True, False) for f in (
                   "memory", "memory-reservation", "memory-swap", "kernel-memory",
                   "kernel-memory-tcp", "cpu-shares", "cpu-quota", "cpu-period", "cpu-burst",
                   "cpu-rt-period", "cpu-rt-runtime", "cpuset-cpus", "cpuset-mems", "cpu-idle",
                   "pids-limit", "blkio-weight")}},
    "events": {"stats": ("stats", False, False), "interval": ("interval", True, False)},
}
GLOBAL: dict[str, _F] = {
    "root": ("root", True, False), "log": ("log", True, False),
    "log-format": ("log_format", True, False), "debug": ("debug", False, False),
    "systemd-cgroup": ("systemd_cgroup", False, False), "trace": ("trace", False, False),
    "rootless": ("rootless", True, False), "criu": ("criu", True, False),
    "version": ("version", False, False), "v": ("version", False, False),
    "help": ("help", False, False), "h": ("help", False, False),
}


class UsageError(MinirunError):
    pass


def parse_flags(argv: list[str], table: dict[str, _F], stop_at_positional: bool = True
                ) -> tuple[dict, list[str]]:
    """Parse leading flags; returns (options, the rest)."""
    opts: dict = {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return opts, argv[i + 1:]
        if not a.startswith("-") or a == "-":
            if stop_at_positional:
                return opts, argv[i:]
            i += 1
            continue
        name, eq, value = a.lstrip("-").partition("=")
        if name not in table:
            raise UsageError(f"unknown option {a.split('=')[0]} (see minirun-oci --help)")
        key, takes_value, multi = table[name]
        if takes_value:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise UsageError(f"option {a} needs a value")
                value = argv[i]
            if multi:
                opts.setdefault(key, []).append(value)
            else:
                opts[key] = value
        else:
            opts[key] = value.lower() not in ("false", "0") if eq else True
        i += 1
    return opts, []


def _count(o: dict, key: str) -> int:
    """A numeric option (--preserve-fds N): a bad value is a usage error, not a traceback."""
    v = o.get(key) or "0"
    if not v.isdigit():
        raise UsageError(f"--{key.replace('_', '-')} {v}: must be a non-negative number")
    return int(v)


def default_root() -> str:
    """Where state lives without --root: /run/minirun for root. A user without root cannot
    write there (rootless, `spec --rootless`): $XDG_RUNTIME_DIR/minirun then, as runc does,
    or /tmp/minirun-UID when no login session set XDG_RUNTIME_DIR."""
    if os.geteuid() == 0:
        return "/run/minirun"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    return os.path.join(xdg, "minirun") if xdg else f"/tmp/minirun-{os.geteuid()}"


def _one_id(cmd: str, rest: list[str]) -> str:
    if not rest:
        raise UsageError(f"{cmd}: missing the container ID (minirun-oci {cmd} ID)")
    return rest[0]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        g, rest = parse_flags(argv, GLOBAL)
    except UsageError as e:
        sys.stderr.write(f"minirun-oci: {e}\n")
        return 1
    if g.get("trace") or os.environ.get("MINIRUN_TRACE", "") not in ("", "0"):
        trace.enable("runtime")
    if g.get("version"):
        print(f"minirun-oci version {__version__}\nspec: {st.OCI_VERSION}\n"
              f"python: {sys.version.split()[0]}")
        return 0
    if g.get("help") or not rest or rest[0] in ("help", "--help", "-h"):
        sys.stdout.write(USAGE)
        return 0 if (g.get("help") or rest) else 1
    cmd, args = rest[0], rest[1:]
    root = os.path.abspath(g.get("root") or default_root())
    log.configure(bool(g.get("debug")), g.get("log"), g.get("log_format"))
    try:
        if cmd not in COMMANDS:
            raise UsageError(f"unknown command {cmd!r} (see minirun-oci --help)")
        opts, pos = parse_flags(args, COMMANDS[cmd])
        return dispatch(cmd, opts, pos, root, g)
    except MinirunError as e:
        log.error(f"{e}")
        if g.get("debug"):
            raise
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        log.error(f"{cmd}: {e.filename + ': ' if e.filename else ''}{e.strerror or e}")
        if g.get("debug"):
            raise
        return 1


def parse_signal(text: str) -> int:
    t = text.upper()
    if t.isdigit():
        return int(t)
    if not t.startswith("SIG"):
        t = "SIG" + t
    if t.startswith("SIGRTMIN+") or t.startswith("SIGRTMAX-"):
        base = _signal.SIGRTMIN if "MIN" in t else _signal.SIGRTMAX
        if not t[9:].isdigit():
            raise UsageError(f"unknown signal {text!r} (RTMIN+N and RTMAX-N take a number)")
        n = int(t[9:])
        return base + n if "MIN" in t else base - n
    value = getattr(_signal, t, None)
    if not isinstance(value, int) or t.startswith("SIG_"):
        raise UsageError(f"unknown signal {text!r} (use a name like TERM or KILL, or a number)")
    return value


def dispatch(cmd: str, o: dict, pos: list[str], root: str, g: dict) -> int:
    if cmd in ("create", "run"):
        cid = _one_id(cmd, pos)
        copts = container.CreateOptions(
            root_dir=root, cid=cid, bundle=o.get("bundle") or ".", pid_file=o.get("pid_file"),
            console_socket=o.get("console_socket"), no_pivot=bool(o.get("no_pivot")),
            no_new_keyring=bool(o.get("no_new_keyring")),
            preserve_fds=_count(o, "preserve_fds"),
            systemd_cgroup=bool(g.get("systemd_cgroup")))
        if cmd == "create":
            if "bundle" not in o:
                copts.bundle = "."
            container.create(copts)
            return 0
        from .run import run  # lazy: the verb's own module (start-up budget)

        return run(copts, detach=bool(o.get("detach")), keep=bool(o.get("keep")))
    if cmd == "start":
        container.start(root, _one_id(cmd, pos))
        return 0
    if cmd == "state":
        print(container.state_json(root, _one_id(cmd, pos)))
        return 0
    if cmd == "kill":
        cid = _one_id(cmd, pos)
        sig = parse_signal(o.get("signal") or (pos[1] if len(pos) > 1 else "TERM"))
        container.kill(root, cid, sig, bool(o.get("all")))
        return 0
    if cmd == "delete":
        container.delete(root, _one_id(cmd, pos), bool(o.get("force")))
        return 0
    if cmd == "list":
        return _list(root, o)
    if cmd == "ps":
        return _ps(root, _one_id(cmd, pos), o, pos[1:])
    if cmd == "exec":
        return _exec(root, o, pos)
    if cmd == "spec":
        return _spec(o)
    if cmd == "features":
        from .features import features  # lazy: the verb's own module (brings prctl)

        print(fastjson.dumps(features(), indent=4))
        return 0
    if cmd in ("pause", "resume", "update", "events"):
        from . import control  # lazy: the verbs' own module (start-up budget)

        cid = _one_id(cmd, pos)
        if cmd == "pause":
            control.pause(root, cid)
        elif cmd == "resume":
            control.resume(root, cid)
        elif cmd == "events":
            interval = control.parse_duration(o.get("interval") or "5s")
            return control.events(root, cid, bool(o.get("stats")), interval)
        else:
            res = control.read_resources(o["resources"]) if o.get("resources") else {}
            flags = {k: v for k, v in o.items() if k in control.UPDATE_FLAGS}
            for section, values in control.resources_from_flags(flags).items():
                res.setdefault(section, {}).update(values)
            if not res:
                raise UsageError("update: give --resources FILE or limits such as --memory 64m")
            control.update(root, cid, res)
        return 0
    raise UsageError(f"{cmd}: not implemented")


def _list(root: str, o: dict) -> int:
    states = container.list_states(root)
    if o.get("quiet"):
        for s in states:
            print(s.id)
        return 0
    if (o.get("format") or "table") == "json":
        print(fastjson.dumps([s.oci() for s in states]))
        return 0
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    for s in states:
        d = s.oci()
        rows.append((s.id, str(d["pid"]), d["status"], s.bundle, s.created, s.owner or "root"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        print("   ".join(c.ljust(w) for c, w in zip(r, widths)) + "   " + r[5])
    return 0


def _ps(root: str, cid: str, o: dict, ps_args: list[str]) -> int:
    state = st.load(root, cid)
    pids = container.container_pids(state)
    if (o.get("format") or "table") == "json":
        print(fastjson.dumps(pids))
        return 0
    import subprocess  # lazy: only ps runs a program (start-up budget: subprocess)

    out = subprocess.run(["ps"] + (ps_args or ["-ef"]), capture_output=True, text=True,
                         check=False).stdout.splitlines()
    if not out:
        return 1
    header = out[0].split()
    if "PID" not in header:
        raise UsageError("ps: the ps options must include a PID column")
    col = header.index("PID")
    print(out[0])
    for line in out[1:]:
        f = line.split()
        if len(f) > col and f[col].isdigit() and int(f[col]) in pids:
            print(line)
    return 0


def _exec(root: str, o: dict, pos: list[str]) -> int:
    # lazy: the verb's own modules (spec.py brings prctl: start-up budget)
    from . import spec as spec_mod
    from .execute import exec_process

    cid = _one_id("exec", pos)
    if o.get("process"):
        try:
            with open(o["process"], "rb") as f:
                raw = fastjson.loads(f.read())
        except (OSError, ValueError) as e:
            raise UsageError(f"exec --process {o['process']}: {e}") from None
        proc = spec_mod.parse_process(raw)
    else:
        if len(pos) < 2:
            raise UsageError("exec: give a command (minirun-oci exec ID CMD...) or --process FILE")
        base = dict(st.load(root, cid).config.get("process") or {})
        base["args"] = pos[1:]
        base["terminal"] = bool(o.get("tty"))
        base.pop("consoleSize", None)
        if o.get("env"):
            base["env"] = list(base.get("env") or []) + o["env"]
        if o.get("cwd"):
            base["cwd"] = o["cwd"]
        if o.get("user"):
            uid, _, gid = o["user"].partition(":")
            try:
                base["user"] = {"uid": int(uid), "gid": int(gid or 0)}
            except ValueError:
                raise UsageError(f"exec --user {o['user']}: use numeric UID[:GID]") from None
        if o.get("gids"):
            base.setdefault("user", {})["additionalGids"] = [int(x) for x in o["gids"]]
        if o.get("cap"):
            caps = base.get("capabilities") or {}
            for s in ("bounding", "effective", "permitted", "ambient"):
                caps[s] = list(caps.get(s) or []) + o["cap"]
            base["capabilities"] = caps
        if o.get("nnp"):
            base["noNewPrivileges"] = True
        proc = spec_mod.parse_process(base)
    if o.get("tty"):
        proc.terminal = True
    return exec_process(root, cid, proc, detach=bool(o.get("detach")),
                        pid_file=o.get("pid_file"), console_socket=o.get("console_socket"),
                        preserve_fds=_count(o, "preserve_fds"))


def _spec(o: dict) -> int:
    from .spec import default_config  # lazy: the verb's own module (brings prctl)

    bundle = o.get("bundle") or "."
    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise UsageError(f"{path} exists: remove it first")
    with open(path, "w") as f:
        f.write(fastjson.dumps(default_config(bool(o.get("rootless"))), indent=2) + "\n")
    return 0
