"""Docker's HEALTHCHECK: the config, its flags, the schedule, the state machine and the probe.

A container's Config.Healthcheck has Docker's shape (nanoseconds, fields left out when zero):

    {"Test": ["CMD-SHELL", "curl -f http://localhost/"], "Interval": 30000000000,
     "Timeout": 30000000000, "StartPeriod": 0, "StartInterval": 0, "Retries": 3}

It comes from the image (a Dockerfile HEALTHCHECK) merged with the `--health-*` flags, field by
field, as dockerd merges them. While the container runs, its monitor (monitor.py) owns a
`Probe`: the first check runs one interval after the start (the start interval while the
container is still `starting` inside its start period), the next one an interval after the
previous one ended. Each check is a forked child of the monitor that runs the command in the
container as `minirun exec` does (oci/execute.py: its namespaces, cgroup and seccomp filter),
kills it past the timeout and sends back a result; the monitor records it in State.Health:

    {"Status": "starting" | "healthy" | "unhealthy", "FailingStreak": n,
     "Log": [{"Start", "End", "ExitCode", "Output"}, ... the last 5]}

Like plain Docker, nothing acts on "unhealthy": it is only reported (ps, inspect).

The monitor imports this module only for a container with a healthcheck; what running a
check needs (the runtime, the image's users, the seccomp compiler) is imported in the child.
"""

from __future__ import annotations

import os
import select
import signal
import time

from ..base.durations import SECOND, format_duration, parse_duration
from ..base.times import now as stamp  # `now` is the loop's clock in this module
from ..errors import CommandError, MinirunError
from ..kernel import libc

DEFAULT_INTERVAL = 30 * SECOND
DEFAULT_TIMEOUT = 30 * SECOND
DEFAULT_START_PERIOD = 0
DEFAULT_START_INTERVAL = 5 * SECOND
DEFAULT_RETRIES = 3
MINIMUM = 10**6  # 1ms: dockerd refuses shorter (non-zero) durations
LOG_ENTRIES = 5
MAX_OUTPUT = 4096  # bytes of a check's output kept, as dockerd does ("..." marks the cut)
START_GRACE = 30.0  # s for the runtime to start a check before the monitor gives up on it
FIELDS = ("Test", "Interval", "Timeout", "StartPeriod", "StartInterval", "Retries")


# -- the config: flags, image, merge ---------------------------------------------------------------


def from_flags(cmd: str = "", interval: str = "", timeout: str = "", start_period: str = "",
               start_interval: str = "", retries: int = 0, none: bool = False) -> dict | None:
    """The Healthcheck the `--health-*` flags ask for, as the docker CLI builds it: only the
    fields given (the image fills in the rest), {"Test": ["NONE"]} for --no-healthcheck, None
    when no flag was given."""
    durations = {}
    for flag, key, text in (("--health-interval", "Interval", interval),
                            ("--health-timeout", "Timeout", timeout),
                            ("--health-start-period", "StartPeriod", start_period),
                            ("--health-start-interval", "StartInterval", start_interval)):
        try:
            durations[key] = parse_duration(text) if text else 0
        except ValueError as e:
            raise MinirunError(f'invalid argument "{text}" for "{flag}" flag: {e}') from None
    if none:
        if cmd or retries or any(durations.values()):
            raise MinirunError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not cmd and not retries and not any(durations.values()):
        return None
    for flag, key in (("--health-interval", "Interval"), ("--health-timeout", "Timeout")):
        if durations[key] < 0:
            raise MinirunError(f"{flag} cannot be negative")
    if retries < 0:
        raise MinirunError("--health-retries cannot be negative")
    for flag, key in (("--health-start-period", "StartPeriod"),
                      ("--health-start-interval", "StartInterval")):
        if durations[key] < 0:
            raise MinirunError(f"{flag} cannot be negative")
    hc: dict = {"Test": ["CMD-SHELL", cmd] if cmd else []}
    hc.update(durations)
    hc["Retries"] = retries
    return _compact(hc)


def merge(user: dict | None, image: dict | None) -> dict | None:
    """The container's Healthcheck: the image's, with each field the flags set taken from them
    (dockerd's merge; --no-healthcheck's NONE keeps the image's timings, as there). Checked as
    dockerd checks it."""
    if not image:
        out = dict(user) if user else None
    elif not user:
        out = dict(image)
    else:
        out = {k: (user.get(k) or image.get(k)) for k in FIELDS}
    if out is None:
        return None
    out = _compact(out)
    validate(out)
    return out or None


def validate(hc: dict) -> None:
    """dockerd's checks: durations of at least 1ms (or 0: the default), retries not negative."""
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        v = hc.get(key) or 0
        if not isinstance(v, int) or (v and v < MINIMUM):
            raise MinirunError(f"{key} in Healthcheck cannot be less than 1ms")
    r = hc.get("Retries") or 0
    if not isinstance(r, int) or r < 0:
        raise MinirunError("Retries in Healthcheck cannot be negative")
    test = hc.get("Test") or []
    if not isinstance(test, list) or not all(isinstance(t, str) for t in test):
        raise MinirunError(f"Healthcheck Test must be a list of strings, not {test!r}")


def _compact(hc: dict) -> dict:
    """Docker's JSON leaves zero fields out (omitempty)."""
    return {k: hc[k] for k in FIELDS if hc.get(k)}


def probe_argv(hc: dict | None, shell: list | None = None) -> list[str] | None:
    """The command a check runs, or None when there is no check (no Test, NONE, or a type
    dockerd does not know, which it ignores too)."""
    test = list((hc or {}).get("Test") or [])
    if not test:
        return None
    if test[0] == "CMD":
        argv = test[1:]
    elif test[0] == "CMD-SHELL":
        argv = list(shell or ["/bin/sh", "-c"]) + test[1:]
    else:
        return None
    return argv or None


class Settings:
    """A Healthcheck's numbers, in seconds, with Docker's defaults for the zero ones."""

    def __init__(self, hc: dict) -> None:
        self.interval = (hc.get("Interval") or DEFAULT_INTERVAL) / SECOND
        self.timeout = (hc.get("Timeout") or DEFAULT_TIMEOUT) / SECOND
        self.start_period = (hc.get("StartPeriod") or DEFAULT_START_PERIOD) / SECOND
        self.start_interval = (hc.get("StartInterval") or DEFAULT_START_INTERVAL) / SECOND
        self.retries = hc.get("Retries") or DEFAULT_RETRIES
        self.timeout_text = format_duration(hc.get("Timeout") or DEFAULT_TIMEOUT)


# -- the state machine -----------------------------------------------------------------------------


def fresh(old: dict | None) -> dict:
    """The Health of a container that (re)starts: "starting", no failing streak. Docker keeps
    the log of the earlier runs."""
    return {"Status": "starting", "FailingStreak": 0, "Log": list((old or {}).get("Log") or [])}


def record(health: dict, result: dict, retries: int, in_start_period: bool) -> dict:
    """Docker's handleProbeResult: log the result (the last 5 kept); a success makes the
    container healthy and ends the streak; a failure adds to the streak, unless the container
    is still starting inside its start period; `retries` failures in a row make it unhealthy."""
    log = list(health.get("Log") or []) + [result]
    health["Log"] = log[-LOG_ENTRIES:]
    if result.get("ExitCode") == 0:
        health["FailingStreak"] = 0
        health["Status"] = "healthy"
    elif not (health.get("Status") == "starting" and in_start_period):
        health["FailingStreak"] = health.get("FailingStreak", 0) + 1
        if health["FailingStreak"] >= retries:
            health["Status"] = "unhealthy"
    return health


def next_delay(s: Settings, since_start: float, status: str) -> float:
    """Seconds from the end of a check (or the start) to the next check: the start interval
    while the container is starting inside its start period, the interval otherwise."""
    if since_start < s.start_period and status == "starting":
        return s.start_interval
    return s.interval


def describe(health: dict | None) -> str:
    """What `ps` adds after "Up 5 seconds": "healthy", "unhealthy", "health: starting"."""
    status = (health or {}).get("Status") or "unhealthy"
    return "health: starting" if status == "starting" else status


# -- the probe: the monitor's side -----------------------------------------------------------------


class Probe:
    """The checks of one run of a container, driven by the monitor's event loop: it asks
    `wait()` how long it may sleep, calls `launch()` when `due` has come, selects on `fd`
    while a check runs and calls `read()` when it is readable, and `overdue()`/`abandon()`
    for a check whose runner itself hangs. Each result goes through `record()`; `health` is
    the state the monitor publishes in the container's record."""

    def __init__(self, hc: dict, argv: list[str], health: dict, runroot: str, cid: str,
                 cdir: str, config: dict, started: float) -> None:
        self.s = Settings(hc)
        self.argv = argv
        self.health = health
        self.runroot, self.cid, self.cdir, self.config = runroot, cid, cdir, config
        self.started = started  # time.monotonic() at the container's start
        self.due = started + next_delay(self.s, 0.0, "starting")
        self.pid = 0  # the check's runner (a child of the monitor), while one runs
        self.fd = -1  # its result pipe
        self.buf = b""
        self.begun = 0.0
        self.start_text = ""

    @property
    def busy(self) -> bool:
        return self.fd >= 0

    def wait(self, now: float) -> float:
        """Seconds until the probe needs the loop again."""
        end = self.begun + self.s.timeout + START_GRACE if self.busy else self.due
        return max(0.0, end - now)

    def overdue(self, now: float) -> bool:
        return self.busy and now >= self.begun + self.s.timeout + START_GRACE

    def launch(self, now: float) -> None:
        """Fork the runner of one check; its result comes on self.fd."""
        r, w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; its result is all it leaves
            os.close(r)
            _child(w, self)
        os.close(w)
        self.pid, self.fd, self.buf = pid, r, b""
        self.begun, self.start_text = now, stamp()

    def read(self, now: float) -> dict | None:
        """Take what the runner wrote; at its end, the check's result (else None)."""
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            data = b""
        if data:
            self.buf += data
            return None
        import json  # (the monitor's start-up budget)

        try:
            res = json.loads(self.buf)
        except ValueError:
            res = {"ExitCode": -1, "Output": "the health check's runner died"}
        return self._done(now, res)

    def abandon(self, now: float) -> dict:
        """The runner itself hangs (the runtime never started the check): kill it, fail."""
        self._kill()
        return self._done(now, {"ExitCode": -1, "Output": f"timed out starting health check "
                                f"for container {self.cid}"})

    def _done(self, now: float, res: dict) -> dict:
        os.close(self.fd)
        self.fd = -1
        self._kill()
        entry = {"Start": self.start_text, "End": res.get("End") or stamp(),
                 "ExitCode": int(res.get("ExitCode", -1)), "Output": str(res.get("Output", ""))}
        early = self.begun - self.started < self.s.start_period
        record(self.health, entry, self.s.retries, early)
        self.postpone(now)
        return entry

    def postpone(self, now: float) -> None:
        """The next check: a (start) interval from now."""
        self.due = now + next_delay(self.s, now - self.started, self.health["Status"])

    def reaped(self, pid: int) -> None:
        """The monitor's waitpid(-1) took this child: it must not be signalled any more."""
        if pid == self.pid:
            self.pid = 0

    def cancel(self) -> None:
        """The container stopped: a check still running is killed and forgotten."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self._kill()

    def _kill(self) -> None:
        # The runner is our child until we reap it: its PID cannot have been reused.
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.pid = 0


# -- the probe: the child's side -------------------------------------------------------------------


def _child(w: int, probe: Probe) -> None:  # pragma: no cover - runs in a forked monitor
    """The runner: run the check, write its result as JSON on w, exit."""
    import json  # (the runner's: in the child)

    signal.set_wakeup_fd(-1)  # the monitor's wake-up pipe is not ours to write
    for s in (signal.SIGCHLD, signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_DFL)
    _close_fds_but(w)
    try:
        res = run_check(probe.runroot, probe.cid, probe.cdir, probe.config, probe.argv,
                        probe.s.timeout, probe.s.timeout_text)
    except MinirunError as e:
        res = {"ExitCode": -1, "Output": str(e)}
    except BaseException as e:  # noqa: BLE001 - a failed check, never a traceback
        res = {"ExitCode": -1, "Output": f"{type(e).__name__}: {e}"}
    data = json.dumps(res).encode()
    try:
        while data:
            data = data[os.write(w, data):]
    except OSError:
        pass
    os._exit(0)


def _close_fds_but(keep: int) -> None:
    """The monitor's sockets, pipes and the container's stdin stay the monitor's alone: a
    runner holding a copy would, e.g., keep the container's stdin from ever seeing EOF."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd != keep:
            try:
                os.close(fd)
            except OSError:
                pass


def check_process(cdir: str, config: dict, argv: list[str]):
    """The check's process, as `minirun exec` makes one: the container's user, environment,
    working directory, capabilities and no-new-privileges; no terminal, no stdin."""
    import json  # (the runner's: in the child)

    from ..oci import spec  # (the runner's: in the child)
    from . import bundle, users  # (the runner's: in the child)

    with open(os.path.join(cdir, "config.json")) as f:
        cfg = json.load(f)["process"]
    u = users.resolve(os.path.join(cdir, "rootfs"), config.get("User") or "")
    env = bundle.environment(list(cfg.get("env") or []), [], config.get("Hostname", ""), False)
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={u.home}")
    return spec.parse_process({
        "args": list(argv), "env": env, "cwd": config.get("WorkingDir") or cfg.get("cwd", "/"),
        "terminal": False, "capabilities": cfg.get("capabilities"),
        "user": {"uid": u.uid, "gid": u.gid, "additionalGids": u.additional_gids},
        "noNewPrivileges": cfg.get("noNewPrivileges", False)})


def run_check(runroot: str, cid: str, cdir: str, config: dict, argv: list[str],
              timeout: float, timeout_text: str) -> dict:  # pragma: no cover - needs root
    """Run one check in the container; its exit code and first 4096 bytes of output (stdout
    and stderr together). Past the timeout its process group is killed: ExitCode -1."""
    from ..oci import execute  # (the runner's: in the child)
    from ..oci.run import exit_code  # (the runner's: in the child)

    proc = check_process(cdir, config, argv)
    # The runtime's intermediate child exits once the check runs: as a subreaper we adopt
    # the check and can wait for it (and kill it) ourselves.
    libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1, "adopt the health check to wait for it")
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    saved = [os.dup(fd) for fd in (0, 1, 2)]
    pid_file = os.path.join(cdir, "health.pid")
    try:
        for target, fd in zip((0, 1, 2), (null, out_w, out_w)):
            os.dup2(fd, target)  # the check inherits these as its stdio
        try:
            execute.exec_process(runroot, cid, proc, detach=True, pid_file=pid_file)
        finally:
            for target, fd in zip((0, 1, 2), saved):
                os.dup2(fd, target)
    except CommandError as e:
        return {"ExitCode": -1, "Output": str(e), "End": stamp()}
    finally:
        for fd in saved + [null, out_w]:
            os.close(fd)
    with open(pid_file) as f:
        pid = int(f.read().strip())
    os.unlink(pid_file)
    pidfd = os.pidfd_open(pid)
    out, cut = bytearray(), False

    def take(data: bytes) -> None:
        nonlocal cut
        room = MAX_OUTPUT - len(out)
        out.extend(data[:max(room, 0)])
        cut = cut or len(data) > room

    code = None
    deadline = time.monotonic() + timeout
    watch = [out_r, pidfd]
    while code is None and (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select(watch, [], [], left)
        if out_r in ready:
            data = os.read(out_r, 65536)
            if data:
                take(data)
            else:
                watch.remove(out_r)
        if pidfd in ready:
            code = exit_code(os.waitpid(pid, 0)[1])
    if code is None:
        for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            try:
                kill()  # the check runs in a session (and group) of its own: all of it goes
            except ProcessLookupError:
                pass
        os.waitpid(pid, 0)
    end = stamp()
    # What is still in the pipe; a child the check left behind may hold it open: no waiting.
    os.set_blocking(out_r, False)
    try:
        while data := os.read(out_r, 65536):
            take(data)
    except BlockingIOError:
        pass
    os.close(out_r)
    text = out.decode(errors="replace") + ("..." if cut else "")
    if code is None:
        msg = f"Health check exceeded timeout ({timeout_text})"
        return {"ExitCode": -1, "Output": f"{msg}: {text}" if text else msg, "End": end}
    return {"ExitCode": code, "Output": text, "End": end}
