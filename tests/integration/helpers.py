"""Plain helper functions shared by the integration tests (fixtures live in conftest.py).

The test modules import them by name: pytest puts this directory on sys.path when it imports
conftest.py and the test modules here (no __init__.py: the default "prepend" import mode).

    from helpers import create, launch, poll, status

`rt` is a Runtime (the `oci` and `runc` fixtures): its binary, its private --root, and the
container IDs it deletes at teardown. tests/cgroup_v2/conftest.py imports Runtime and
write_bundle from here too (by path: its directory is not this one).
"""

from __future__ import annotations

import copy
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The entry points of the venv that runs the tests: the checkout's .venv (scripts/test), or the
# throw-away one of scripts/test-lower-bounds, so the runtime runs on the packages under test.
_HERE = Path(sys.executable).parent
BIN = _HERE if (_HERE / "minirun-oci").exists() else REPO / ".venv" / "bin"
OCI = str(BIN / "minirun-oci")
sys.path.insert(0, str(REPO))

from minirun.oci.spec import default_config  # noqa: E402
from oneline import one_line_error  # noqa: E402,F401  (re-exported, as poll)
from polling import poll  # noqa: E402,F401  (re-exported: the tests import it from here)

# --- rootfs, runtimes, bundles (the conftest fixtures' building blocks) ---------------------------


def build_rootfs(d: Path) -> Path:
    """A busybox rootfs made at d (which must not exist yet) by scripts/build-rootfs."""
    subprocess.run([str(REPO / "scripts" / "build-rootfs"), str(d)], check=True)
    return d


class Runtime:
    """Runs an OCI runtime binary with a private state directory; remembers container IDs.

        rt = Runtime(OCI, tmp_path / "state")
        r = rt("run", "--bundle", b, cid)          # a CompletedProcess, output captured
        rt.cleanup()                               # delete --force every container it made

    `timeout` is the default for each call and for the cleanup's deletes.
    """

    def __init__(self, binary: str, root: Path, timeout: float = 30) -> None:
        self.binary = binary
        self.root = root
        self.timeout = timeout
        self.ids: set[str] = set()

    def argv(self, *args: str) -> list[str]:
        """The command line for `binary --root ROOT args...`."""
        return [self.binary, "--root", str(self.root), *map(str, args)]

    def __call__(self, *args: str, check: bool = False, timeout: float | None = None,
                 input: str | None = None, env: dict | None = None,
                 global_args: tuple = ()) -> subprocess.CompletedProcess:
        cmd = self.argv(*global_args, *args)
        if args and args[0] in ("create", "run") and args[-1] and not str(args[-1]).startswith("-"):
            self.ids.add(str(args[-1]))
        if timeout is None:
            timeout = self.timeout
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL, env=env)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} -> {r.returncode}\nstdout: {r.stdout}\n"
                                 f"stderr: {r.stderr}")
        return r

    def state(self, cid: str) -> dict:
        """`state cid`, parsed (it must succeed)."""
        return json.loads(self("state", cid, check=True).stdout)

    def cleanup(self) -> None:
        """delete --force every container created or run through this object; remove the root."""
        for cid in list(self.ids):
            subprocess.run(self.argv("delete", "--force", cid), capture_output=True,
                           timeout=self.timeout)
        shutil.rmtree(self.root, ignore_errors=True)


def write_bundle(b: Path, rootfs_dir: Path, args=None, edit=None, own_rootfs: bool = False,
                 **changes) -> str:
    """Make bundle directory b (it must not exist) and return its path.

    The config is `minirun-oci spec`'s default with terminal off and the shared rootfs_dir as
    root.path (own_rootfs=True: a private copy in b/rootfs instead), then args, then the keyword
    changes applied to process (args, env, cwd, user ...) or the top level, then `edit(cfg)`.
    """
    b.mkdir()
    cfg = copy.deepcopy(default_config())
    cfg["process"]["terminal"] = False
    if own_rootfs:
        shutil.copytree(rootfs_dir, b / "rootfs", symlinks=True)
    else:
        cfg["root"]["path"] = str(rootfs_dir)
    if args is not None:
        cfg["process"]["args"] = list(args)
    for k, v in changes.items():
        if k in cfg["process"] or k in ("user", "env", "cwd", "rlimits", "capabilities",
                                        "noNewPrivileges", "oomScoreAdj", "terminal"):
            cfg["process"][k] = v
        else:
            cfg[k] = v
    if edit:
        edit(cfg)
    (b / "config.json").write_text(json.dumps(cfg, indent=2))
    return str(b)


# --- running the runtime -----------------------------------------------------------------------


def run(rt, b: str, cid: str, *flags: str, ok: bool = True) -> subprocess.CompletedProcess:
    """`run --bundle b [flags] cid` in the foreground, output captured; with ok, it must exit 0."""
    r = rt("run", "--bundle", b, *flags, cid)
    if ok:
        assert r.returncode == 0, f"{rt.binary}: rc {r.returncode}\n{r.stderr}"
    return r


class Launched:
    """What launch() ran: its exit status, and its stdout/stderr files, read when asked (a
    created container keeps writing to them)."""

    def __init__(self, returncode: int, out: Path, err: Path) -> None:
        self.returncode, self.out, self.err = returncode, out, err

    @property
    def stdout(self) -> str:
        return self.out.read_text()

    @property
    def stderr(self) -> str:
        return self.err.read_text()


def launch(rt, tmp_path: Path, *args: str, env: dict | None = None,
           timeout: float = 30) -> Launched:
    """Run a verb whose container inherits its stdio (create, run --detach, exec --detach).

    Files, not pipes: with pipes, waiting for EOF would wait for the container too. The files
    are tmp_path/launchN.out and launchN.err; a created or run container's ID is remembered
    for cleanup.
    """
    if args and args[0] in ("create", "run"):
        rt.ids.add(args[-1])
    n = len(list(tmp_path.glob("launch*.out")))
    out, err = tmp_path / f"launch{n}.out", tmp_path / f"launch{n}.err"
    with open(out, "w") as o, open(err, "w") as e:
        r = subprocess.run([rt.binary, "--root", str(rt.root), *args], stdin=subprocess.DEVNULL,
                           stdout=o, stderr=e, timeout=timeout, env=env)
    return Launched(r.returncode, out, err)


def create(rt, tmp_path: Path, b: str, cid: str, *flags: str) -> Launched:
    """`create --bundle b [flags] cid` through launch(); it must succeed."""
    r = launch(rt, tmp_path, "create", "--bundle", b, *flags, cid)
    assert r.returncode == 0, r.stderr
    return r


def run_detached(rt, tmp_path: Path, b: str, cid: str) -> int:
    """`run --detach` through launch() (the container keeps its stdio); it must succeed.
    Returns the init's host PID."""
    r = launch(rt, tmp_path, "run", "--detach", "--bundle", b, cid)
    assert r.returncode == 0, r.stderr
    return rt.state(cid)["pid"]


def status(rt, cid: str) -> str:
    """The container's status as `state` reports it (created, running, paused, stopped)."""
    return rt.state(cid)["status"]


# --- bundles -------------------------------------------------------------------------------------


def with_shared(d: Path, **res):
    """edit= for bundle(): bind-mount host dir d read-write at /tmp in the container, and set
    the given linux.resources sections (memory=..., pids=...), if any."""
    d.mkdir(exist_ok=True)

    def edit(cfg: dict) -> None:
        cfg["mounts"].append({"destination": "/tmp", "type": "bind", "source": str(d),
                              "options": ["rbind", "rw"]})
        if res:
            cfg["linux"].setdefault("resources", {}).update(res)
    return edit


# --- terminals -----------------------------------------------------------------------------------


def drive_pty(argv: list[str], typed: bytes = b"", until: bytes | None = None,
              timeout: float = 10, size: tuple[int, int] | None = None,
              env: dict | None = None) -> tuple[int, str]:
    """Run argv with a pty as its stdin/stdout/stderr (as a terminal user would), type `typed`
    once `until` shows up, and return (exit status, everything it wrote, CRLF as LF).
    `size`: the terminal's (rows, columns), as a window of that size would set them."""
    master, slave = os.openpty()
    if size is not None:
        import fcntl
        import struct
        import termios

        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                         env=env)
    os.close(slave)
    out = b""
    sent = not typed
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sent and (until is None or until in out):
                os.write(master, typed)
                sent = True
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break  # EIO: the last slave fd is closed
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        return p.wait(timeout=10), out.decode(errors="replace").replace("\r\n", "\n")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)


def console_run(argv: list[str], srv, timeout: float = 10) -> tuple[int, str, str]:
    """Run argv, a foreground `run` or `exec` given `--console-socket srv.path` (srv: the
    console_server fixture's ConsoleServer), to its end.

    Returns (exit status, what the pty showed until its slave side closed, the runtime's own
    stderr as far as it wrote any).
    """
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        out = srv.read_until(srv.master())
        rc = p.wait(timeout=timeout)
        os.set_blocking(p.stderr.fileno(), False)  # nothing may wait on a process it forked
        err = (p.stderr.read() or b"").decode(errors="replace")
        return rc, out, err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()


# --- namespaces ----------------------------------------------------------------------------------


NS = ("pid", "net", "ipc", "uts", "mnt", "cgroup", "user")
# A shell line printing "<ns> <readlink of /proc/self/ns/<ns>>" for each of NS.
READ_NS = "for n in " + " ".join(NS) + "; do echo $n $(readlink /proc/self/ns/$n); done"


def pairs(out: str) -> dict[str, str]:
    """Lines "key value..." (READ_NS's output) as a dict; lines without a space are skipped."""
    return dict(ln.split(" ", 1) for ln in out.splitlines() if " " in ln)


# --- host processes ------------------------------------------------------------------------------


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def processes_mentioning(text: str) -> list[str]:
    """Processes (not this one) whose command line contains text, as "pid: cmdline": a
    container's init before exec is a fork of minirun-oci, whose argv ends with the container
    ID."""
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            out.append(f"{p.name}: {cmd}")
    return out


def foreign_pidns_processes() -> set[int]:
    """PIDs of the processes that live in another PID namespace than this one."""
    me = os.readlink("/proc/self/ns/pid")
    out = set()
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if os.readlink(p / "ns" / "pid") != me:
                    out.add(int(p.name))
            except OSError:
                pass
    return out


def own_cgroups(pid: int | str = "self") -> dict[str, str]:
    """/proc/PID/cgroup as {hierarchy key ('memory', 'name=systemd', '' for cgroup2): path}."""
    with open(f"/proc/{pid}/cgroup") as f:
        return dict(ln.rstrip("\n").split(":", 2)[1:] for ln in f)


# --- cgroup v1 / hybrid: the container's default cgroup /minirun/<id> ----------------------------


def v1_hybrid_only(controller: str, files: str):
    """pytestmark for a module that reads cgroup v1 files (`files`, for the reason): it skips on
    a pure cgroup v2 host and where /sys/fs/cgroup/<controller> is not a v1 hierarchy."""
    return pytest.mark.skipif(
        os.path.exists("/sys/fs/cgroup/cgroup.controllers")
        or not os.path.isdir(f"/sys/fs/cgroup/{controller}"),
        reason=f"not a cgroup v1/hybrid host: these tests read v1 files ({files} ...); "
               "tests/cgroup_v2 covers pure v2 in a VM")


V1_CONTROLLERS = {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
                  "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc"}


def mounts() -> dict[str, str]:
    """Hierarchy key as /proc/self/cgroup spells it ('memory', 'name=systemd', '' for cgroup2)
    -> mount point (the first mount of each)."""
    out: dict[str, str] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fstype, _, sopts = post.split()[:3]
            if fstype == "cgroup2":
                out.setdefault("", pre.split()[4])
            elif fstype == "cgroup":
                key = ",".join(o for o in sopts.split(",")
                               if o in V1_CONTROLLERS or o.startswith("name="))
                out.setdefault(key, pre.split()[4])
    return out


def cg(cid: str, ctrl: str) -> Path:
    """The container's directory (default path /minirun/<id>) in the hierarchy of `ctrl`."""
    for key, mnt in mounts().items():
        if ctrl in key.split(","):
            return Path(mnt) / "minirun" / cid
    raise AssertionError(f"no {ctrl} hierarchy mounted")


def all_dirs(cid: str) -> list[Path]:
    """Every hierarchy's directory of the container, unified included."""
    return [Path(mnt) / "minirun" / cid for mnt in mounts().values()]


def parents() -> list[Path]:
    """The default parent /minirun in every hierarchy, unified included."""
    return [Path(mnt) / "minirun" for mnt in mounts().values()]


def read(cid: str, ctrl: str, name: str) -> str:
    """The stripped content of file `name` in the container's `ctrl` cgroup directory."""
    return (cg(cid, ctrl) / name).read_text().strip()


# --- the front end (minirun) ---------------------------------------------------------------------

MINIRUN = str(BIN / "minirun")


class Minirun:
    """`minirun` with a private --root and --runroot; removes every container it left.

        r = mr("run", "--rm", "busybox", "echo", "hi")   # CompletedProcess, text
        assert r.stdout == "hi\\n"
    """

    def __init__(self, root: Path, runroot: Path) -> None:
        self.root, self.runroot = root, runroot
        self.env = dict(os.environ, MINIRUN_ROOT=str(root), MINIRUN_RUNROOT=str(runroot))

    def argv(self, *args: str) -> list[str]:
        return [MINIRUN, *args]

    def __call__(self, *args: str, check: bool = False, input: str | None = None,
                 timeout: float = 60, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
        r = subprocess.run(self.argv(*args), env=self.env, capture_output=True, text=True,
                           input=input, stdin=None if input is not None else stdin,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"minirun {' '.join(args)} -> {r.returncode}: {r.stderr}")
        return r

    def ok(self, *args: str, **kw) -> str:
        return self(*args, check=True, **kw).stdout

    def record(self, ref: str) -> dict:
        return json.loads(self.ok("inspect", "--type", "container", ref))[0]

    def monitor_pid(self, ref: str) -> int:
        cid = self.record(ref)["Id"]
        rec = json.loads((self.root / "containers" / cid / "container.json").read_text())
        return rec["state"]["monitor_pid"]

    def cleanup(self) -> None:
        ids = self("ps", "-aq", "--no-trunc").stdout.split()
        for cid in ids:
            self("rm", "-f", "-v", cid, timeout=60)
        self("volume", "prune", "-a", "-f")
        self("network", "prune", "-f")  # user networks, and the default bridge's device
        leftovers = mount_points_under(self.root)
        for m in leftovers:
            subprocess.run(["umount", "-l", m], capture_output=True)
        assert not leftovers, f"mounts left behind: {leftovers}"


def mount_points_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(str(path))]


class UnixHTTP:
    """http.client over a unix socket: the API service's, for requests a client would not
    send (or whose raw answer a test reads)."""

    def __new__(cls, path: str, timeout: float = 60):
        import http.client
        import socket

        class Conn(http.client.HTTPConnection):
            def connect(self) -> None:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)

        return Conn("localhost", timeout=timeout)


class ApiService:
    """`minirun system service` on a --root and a socket of a test's own.

        with ApiService(root, runroot, sock) as svc:   # up: the socket answers
            ...svc.path, svc.proc...
        # stopped with SIGTERM: it must exit 0 and take its socket with it
    """

    def __init__(self, root, runroot, path, extra: tuple[str, ...] = ()) -> None:
        self.root, self.runroot, self.path = str(root), str(runroot), str(path)
        self.extra = extra
        self.log = None
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "ApiService":
        import socket

        self.log = open(self.path + ".log", "w+")
        self.proc = subprocess.Popen(
            [MINIRUN, "--root", self.root, "--runroot", self.runroot, "system", "service",
             "--time", "0", *self.extra, "--host", f"unix://{self.path}"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)

        def up() -> bool:
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(self.path)
                return True
            except OSError:
                return self.proc.poll() is not None  # it died: say so below, at once
            finally:
                s.close()

        try:
            assert poll(up, timeout=20) and self.proc.poll() is None, self.output()
        except BaseException:
            self.__exit__()
            raise
        return self

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()[-3000:]

    def __exit__(self, *exc) -> None:
        import signal

        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        out = self.output()
        self.log.close()
        os.unlink(self.log.name)
        if exc and exc[0] is not None:
            return  # the test's own failure says more
        assert rc == 0, f"the service ended with {rc}: {out}"
        assert not os.path.exists(self.path), "the service left its socket behind"


def write_files(d: Path, files: dict[str, str]) -> Path:
    """A build context (or any tree): each name's text, dedented, under d."""
    import textwrap

    for name, text in files.items():
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"))
    return d
