"""A real containerd drives minirun-oci as its runc (issue 20): `ctr --runc-binary minirun-oci`.

The module starts a private containerd (its own root, state, grpc/ttrpc sockets and config in a
temp dir; CRI and the snapshotters we do not use disabled) and a namespace of its own, imports
the busybox image from minirun's default store (`minirun save busybox`), and drives
containerd-shim-runc-v2 -> minirun-oci through `ctr`: run, exec (with and without a pty),
pause/resume, metrics (the shim reads the container's cgroup), kill, delete, a memory limit and
its OOM event, 20 runs in parallel -- then checks that nothing is left behind. The runtime's
--root (`ctr --runc-root`) is in the temp dir too. The fixture stops containerd, kills any shim
of ours and the processes in our namespace's cgroups, unmounts and removes everything, pass or
fail.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from helpers import alive, drive_pty, mounts, poll

REPO = Path(__file__).resolve().parents[2]
OCI = str(REPO / ".venv" / "bin" / "minirun-oci")
MINIRUN = str(REPO / ".venv" / "bin" / "minirun")
IMAGE = "docker.io/library/busybox:latest"
SHIM = "containerd-shim-runc-v2"

pytestmark = [
    pytest.mark.skipif(shutil.which("containerd") is None or shutil.which("ctr") is None,
                       reason="containerd/ctr are not installed "
                              "(scripts/setup installs containerd)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="a private containerd needs root"),
]

CONFIG = """version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{d}/containerd.sock"

[ttrpc]
  address = "{d}/containerd.sock.ttrpc"

[debug]
  address = "{d}/debug.sock"
"""


def _cmdline(pid: str) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _stat(pid: int | str) -> list[str]:
    """/proc/PID/stat's fields after the command name: [state, ppid, ...] ([] if gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _comm(pid: int | str) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _subreaper(on: bool) -> bool:
    """PR_SET_CHILD_SUBREAPER on this process; returns the previous setting. A shim's `start`
    forks the shim daemon and exits: the daemon is re-parented to the nearest subreaper above
    containerd -- us while the module runs, so its zombie is ours to reap (PID 1 here is a VM
    agent that reaps late, and the zombies showed up as <defunct> after the run)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    prev = ctypes.c_int(0)
    libc.prctl(37, ctypes.byref(prev), 0, 0, 0)   # PR_GET_CHILD_SUBREAPER
    libc.prctl(36, int(on), 0, 0, 0)              # PR_SET_CHILD_SUBREAPER
    return bool(prev.value)


class Ctrd:
    """The private containerd: `ctrd(*args)` runs `ctr --address SOCK -n NS *args`."""

    def __init__(self, d: Path) -> None:
        self.dir = d
        self.sock = str(d / "containerd.sock")
        self.ns = "minirun-" + uuid.uuid4().hex[:8]
        self.runc_root = d / "runc"   # --runc-root: the shim hands <it>/<ns> to minirun-oci
        self.fifo = d / "fifo"        # ctr's --fifo-dir (default /run/containerd/fifo)
        self.proc: subprocess.Popen | None = None
        self.used: set[str] = set()   # every container name the tests made

    def argv(self, *args: str) -> list[str]:
        """`ctr` argv; `tasks exec` gets our --fifo-dir (`run` gets it in runtime_flags())."""
        if args[:2] == ("tasks", "exec"):
            args = (*args[:2], "--fifo-dir", str(self.fifo), *args[2:])
        return ["ctr", "--address", self.sock, "-n", self.ns, *args]

    def shim_socket(self, cid: str) -> Path:
        """containerd 1.6's socket of the shim of container `cid`: it is not under our state dir
        but /run/containerd/s/<sha256 of ADDRESS/NS/ID> (shim.SocketAddress)."""
        import hashlib

        key = os.path.join(self.sock, self.ns, cid).encode()
        return Path("/run/containerd/s") / hashlib.sha256(key).hexdigest()

    def __call__(self, *args: str, check: bool = True, timeout: float = 60,
                 **kw) -> subprocess.CompletedProcess:
        r = subprocess.run(self.argv(*args),
                           capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, **kw)
        if check and r.returncode != 0:
            raise AssertionError(f"ctr {' '.join(args)} -> {r.returncode}:\n{r.stdout}{r.stderr}")
        return r

    def runtime_flags(self) -> list[str]:
        return ["--runc-binary", OCI, "--runc-root", str(self.runc_root),
                "--fifo-dir", str(self.fifo)]

    def run_argv(self, name: str, *cmd: str, flags: tuple = (), rm: bool = True) -> list[str]:
        return self.argv("run", *(["--rm"] if rm else []), *self.runtime_flags(), *flags,
                         IMAGE, name, *cmd)

    def run(self, name: str, *cmd: str, flags: tuple = (), timeout: float = 60):
        return subprocess.run(self.run_argv(name, *cmd, flags=flags), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def tasks(self) -> dict[str, str]:
        """{task: STATUS} from `ctr tasks ls`."""
        lines = self("tasks", "ls").stdout.splitlines()[1:]
        return {ln.split()[0]: ln.split()[2] for ln in lines if ln.strip()}

    def remove(self, name: str) -> None:
        """The container and its task gone, whatever state they are in."""
        self("tasks", "kill", "-s", "SIGKILL", name, check=False)
        for _ in range(50):
            if self.tasks().get(name) in (None, "STOPPED"):
                break
            time.sleep(0.1)
        self("tasks", "delete", "-f", name, check=False)
        self("containers", "rm", name, check=False)

    # --- what a namespace of ours may leave on the host ---

    def shims(self) -> list[str]:
        """containerd-shim-runc-v2 processes serving our containerd, as "pid: cmdline"."""
        out = []
        for p in Path("/proc").iterdir():
            if p.name.isdigit():
                argv = _cmdline(p.name)
                if argv and argv[0].endswith(SHIM) and self.sock in argv and alive(int(p.name)):
                    out.append(f"{p.name}: {' '.join(argv)}")
        return out

    def reap(self, also: set[int] = frozenset()) -> list[int]:
        """waitpid() our exited shim children (adopted: we are a subreaper) and the pids in
        `also`; returns the shim children still alive."""
        left = []
        for p in Path("/proc").iterdir():
            if not p.name.isdigit():
                continue
            st = _stat(p.name)
            if not st or int(st[1]) != os.getpid():
                continue
            pid = int(p.name)
            if not (_comm(pid).startswith("containerd-shim") or pid in also):
                continue
            if st[0] in ("Z", "X"):
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
            else:
                left.append(pid)
        return left

    def cgroup_dirs(self) -> list[Path]:
        """Container cgroups under /<ns> (ctr's default cgroupsPath is /<ns>/<id>)."""
        out = []
        for mnt in set(mounts().values()):
            base = Path(mnt) / self.ns
            if base.is_dir():
                out += sorted((p for p in base.rglob("*") if p.is_dir()), reverse=True)
        return out

    def mount_points(self) -> list[str]:
        with open("/proc/self/mountinfo") as f:
            return [ln.split()[4] for ln in f if ln.split()[4].startswith(str(self.dir))]


def _stop(ctrd: Ctrd, run_containerd_existed: bool) -> None:
    """Everything our containerd made, gone: best effort at each step, in order."""
    if ctrd.proc is not None and ctrd.proc.poll() is None:
        try:
            for line in ctrd("containers", "ls", "-q", check=False, timeout=20).stdout.split():
                ctrd.used.add(line)
                ctrd.remove(line)
        except Exception:
            pass
        ctrd.proc.send_signal(signal.SIGTERM)
        try:
            ctrd.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            ctrd.proc.kill()
            ctrd.proc.wait()
    # shims of ours outlive containerd by design: kill them, then their containers' processes
    for line in ctrd.shims():
        argv = line.split()
        if "-id" in argv:
            ctrd.used.add(argv[argv.index("-id") + 1])
        try:
            os.kill(int(line.split(":")[0]), signal.SIGKILL)
        except ProcessLookupError:
            pass
    poll(lambda: not ctrd.shims(), timeout=10)
    killed: set[int] = set()
    for d in ctrd.cgroup_dirs():
        if (d / "freezer.state").exists():
            try:
                (d / "freezer.state").write_text("THAWED")
            except OSError:
                pass
        try:
            for pid in (d / "cgroup.procs").read_text().split():
                os.kill(int(pid), signal.SIGKILL)
                killed.add(int(pid))
        except OSError:
            pass
    for p in Path("/proc").iterdir():   # a minirun-oci of ours still running (its --root)
        if p.name.isdigit() and str(ctrd.runc_root) in " ".join(_cmdline(p.name)):
            try:
                os.kill(int(p.name), signal.SIGKILL)
                killed.add(int(p.name))
            except ProcessLookupError:
                pass
    poll(lambda: not ctrd.reap(killed), timeout=10)
    for d in ctrd.cgroup_dirs():
        poll(lambda: _rmdir(d), timeout=5)
    for mnt in set(mounts().values()):
        _rmdir(Path(mnt) / ctrd.ns)
    for m in sorted(ctrd.mount_points(), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)
    shutil.rmtree(ctrd.dir, ignore_errors=True)
    for cid in ctrd.used:   # a killed shim leaves its socket
        try:
            ctrd.shim_socket(cid).unlink()
        except FileNotFoundError:
            pass
    if not run_containerd_existed:   # ctr's fifo dir and the shims' socket dir, if empty
        for sub in ("fifo", "runc", "s", ""):
            _rmdir(Path("/run/containerd") / sub)


def _rmdir(d: Path) -> bool:
    try:
        d.rmdir()
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def ctrd():
    if not os.access(OCI, os.X_OK):
        pytest.skip(f"{OCI} is missing (scripts/setup makes the venv)")
    run_containerd_existed = os.path.exists("/run/containerd")
    was_subreaper = _subreaper(True)
    d = Path(tempfile.mkdtemp(prefix="minirun-ctrd-"))
    c = Ctrd(d)
    try:
        (d / "config.toml").write_text(CONFIG.format(d=d))
        log = open(d / "containerd.log", "wb")
        c.proc = subprocess.Popen(["containerd", "--config", str(d / "config.toml")],
                                  stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        up = poll(lambda: c.proc.poll() is None
                  and c("version", check=False, timeout=10).returncode == 0, timeout=30, every=0.2)
        if not up:
            raise AssertionError("containerd did not answer `ctr version`:\n"
                                 + (d / "containerd.log").read_text()[-3000:])
        yield c
    finally:
        try:
            _stop(c, run_containerd_existed)
        finally:
            _subreaper(was_subreaper)


@pytest.fixture(scope="module")
def image(ctrd):
    """busybox from minirun's default store, imported into our namespace."""
    tar = ctrd.dir / "busybox.tar"
    with open(tar, "wb") as f:
        r = subprocess.run([MINIRUN, "save", "busybox"], stdout=f, stderr=subprocess.PIPE,
                           timeout=120)
    if r.returncode != 0:
        pytest.skip("no busybox image in minirun's default store /var/lib/minirun "
                    f"(`minirun save busybox`: {r.stderr.decode(errors='replace').strip()})")
    out = ctrd("images", "import", str(tar), timeout=120).stdout
    tar.unlink()
    return out


@pytest.fixture
def names(ctrd):
    """names(prefix) -> a fresh container name; every such container is removed after the test."""
    made: list[str] = []

    def make(prefix: str = "c") -> str:
        made.append(f"{prefix}-{uuid.uuid4().hex[:6]}")
        ctrd.used.add(made[-1])
        return made[-1]

    yield make
    for n in made:
        ctrd.remove(n)


def _cgroup(ctrd: Ctrd, name: str, ctrl: str) -> Path:
    """The container's cgroup directory for `ctrl`: /<ns>/<name> in that v1 hierarchy, else in
    the cgroup2 one (pure v2)."""
    ms = mounts()
    for key, mnt in ms.items():
        if ctrl in key.split(","):
            return Path(mnt) / ctrd.ns / name
    return Path(ms[""]) / ctrd.ns / name


def _start(ctrd: Ctrd, name: str, *cmd: str, flags: tuple = ()) -> None:
    ctrd("run", "-d", *ctrd.runtime_flags(), *flags, IMAGE, name, *cmd)
    assert poll(lambda: ctrd.tasks().get(name) == "RUNNING"), ctrd.tasks()


# --- the tests -------------------------------------------------------------------------------


def test_image_import(ctrd, image):
    assert "unpacking docker.io/library/busybox:latest" in image
    assert IMAGE in ctrd("images", "ls", "-q").stdout.split()
    assert ctrd("snapshots", "ls").stdout.count("Committed") >= 1


def test_run_rm_output_and_exit_codes(ctrd, image, names):
    r = ctrd.run(names("echo"), "echo", "hello from minirun-oci")
    assert (r.returncode, r.stdout) == (0, "hello from minirun-oci\n"), r.stderr
    r = ctrd.run(names("exit"), "sh", "-c", "echo out; echo err >&2; exit 3")
    assert r.returncode == 3, r.stderr
    assert r.stdout == "out\n" and "err\n" in r.stderr
    assert not ctrd("containers", "ls", "-q").stdout.strip()   # --rm removed both


def test_detached_exec_plain_and_tty(ctrd, image, names):
    n = names("exec")
    _start(ctrd, n, "sleep", "1000")
    r = ctrd("tasks", "exec", "--exec-id", "plain", n,
             "sh", "-c", "echo pid1=$(cat /proc/1/comm); exit 5",
             check=False)
    assert (r.returncode, r.stdout) == (5, "pid1=sleep\n"), r.stderr
    # -t: ctr wants a console of its own on stdin (it panics "provided file is not a console"
    # otherwise), so it runs on a pty as a terminal user would
    rc, out = drive_pty([*ctrd.argv("tasks", "exec", "-t", "--exec-id", "tty", n),
                         "sh", "-c", "tty; [ -t 0 ] && echo stdin-is-tty; exit 4"],
                        timeout=30)
    assert rc == 4, out
    assert "/dev/pts/" in out and "stdin-is-tty" in out, out
    assert ctrd.tasks()[n] == "RUNNING"


def test_pause_resume(ctrd, image, names):
    n = names("pause")
    _start(ctrd, n, "sleep", "1000")
    assert (ctrd.runc_root / ctrd.ns / n).is_dir()   # the shim's --root for minirun-oci
    freezer = _cgroup(ctrd, n, "freezer")
    v1 = (freezer / "freezer.state").exists()
    ctrd("tasks", "pause", n)
    assert ctrd.tasks()[n] == "PAUSED"
    if v1:
        assert (freezer / "freezer.state").read_text().strip() == "FROZEN"
    else:
        assert "frozen 1" in (freezer / "cgroup.events").read_text()
    ctrd("tasks", "resume", n)
    assert ctrd.tasks()[n] == "RUNNING"
    if v1:
        assert (freezer / "freezer.state").read_text().strip() == "THAWED"
    r = ctrd("tasks", "exec", "--exec-id", "after", n, "echo", "alive")
    assert r.stdout == "alive\n"


def test_metrics_and_memory_limit(ctrd, image, names):
    n = names("metrics")
    _start(ctrd, n, "sleep", "1000", flags=("--memory-limit", str(64 << 20)))
    table = ctrd("tasks", "metrics", n).stdout
    rows = dict(ln.split(None, 1) for ln in table.splitlines()
                if ln.startswith(("memory.", "pids.")))
    rows = {k: v.strip() for k, v in rows.items()}
    usage = rows.get("memory.usage_in_bytes", rows.get("memory.usage"))
    assert usage is not None and int(usage) > 0, table
    limit = rows.get("memory.limit_in_bytes", rows.get("memory.usage_limit"))   # v1, v2
    assert limit == str(64 << 20), table
    mem = _cgroup(ctrd, n, "memory")   # what the shim read: the cgroup minirun-oci made
    on_disk = mem / "memory.limit_in_bytes"
    on_disk = on_disk if on_disk.exists() else mem / "memory.max"
    assert on_disk.read_text().strip() == str(64 << 20)
    assert int(rows["pids.current"]) >= 1, table
    data = json.loads(ctrd("tasks", "metrics", "--format", "json", n).stdout)
    assert data["memory"], data


def test_kill_sigterm_trap_exit_7(ctrd, image, names):
    n = names("kill")
    _start(ctrd, n, "sh", "-c", 'trap "exit 7" TERM; while true; do sleep 0.1; done')

    def trapped():   # the shell has its TERM handler (SigCgt bit 15) before we send it
        r = ctrd("tasks", "exec", "--exec-id", f"chk{uuid.uuid4().hex[:4]}", n,
                 "grep", "SigCgt", "/proc/1/status", check=False)
        return r.returncode == 0 and int(r.stdout.split()[1], 16) & (1 << (signal.SIGTERM - 1))

    assert poll(trapped)
    ctrd("tasks", "kill", "-s", "SIGTERM", n)
    assert poll(lambda: ctrd.tasks().get(n) == "STOPPED"), ctrd.tasks()
    r = ctrd("tasks", "delete", n, check=False)
    assert "exit code 7" in r.stdout + r.stderr, r
    assert n not in ctrd.tasks()
    ctrd("containers", "rm", n)

    # the same through a foreground `ctr run`: its exit code is the task's
    n2 = names("killfg")
    script = 'trap "exit 7" TERM; echo ready; while true; do sleep 0.1; done'
    p = subprocess.Popen(ctrd.run_argv(n2, "sh", "-c", script),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                         text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        ctrd("tasks", "kill", "-s", "SIGTERM", n2)
        assert p.wait(timeout=30) == 7
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()


def test_delete_stopped_task_then_container(ctrd, image, names):
    n = names("del")
    ctrd("run", "-d", *ctrd.runtime_flags(), IMAGE, n, "true")
    assert poll(lambda: ctrd.tasks().get(n) == "STOPPED"), ctrd.tasks()
    ctrd("tasks", "delete", n)
    assert n not in ctrd.tasks()
    assert not list((ctrd.runc_root / ctrd.ns).iterdir())   # minirun-oci's state dir gone
    ctrd("containers", "rm", n)
    assert n not in ctrd("containers", "ls", "-q").stdout.split()


def test_oom_kill_event(ctrd, image, names):
    ev = subprocess.Popen(ctrd.argv("events"),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          stdin=subprocess.DEVNULL)
    lines: list[str] = []
    try:
        t = threading.Thread(target=lambda: lines.extend(iter(ev.stdout.readline, "")), daemon=True)
        t.start()
        time.sleep(1)   # subscribed
        n = names("oom")
        r = ctrd.run(n, "sh", "-c", 'x=$(head -c 64m /dev/zero | tr "\\0" a); echo survived',
                     flags=("--memory-limit", str(16 << 20)))
        assert r.returncode == 137 and "survived" not in r.stdout, r
        assert poll(lambda: any("/tasks/oom" in ln and f'"container_id":"{n}"' in ln
                                 for ln in list(lines))), "".join(lines)
    finally:
        ev.terminate()
        ev.wait(timeout=10)
        ev.stdout.close()


def test_twenty_parallel_runs(ctrd, image, names):
    ns = [names(f"par{i}") for i in range(20)]
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda n: ctrd.run(n, "sh", "-c", f"echo {n}", timeout=180), ns))
    bad = [(n, r.returncode, r.stdout, r.stderr) for n, r in zip(ns, results)
           if r.returncode != 0 or r.stdout != f"{n}\n"]
    assert not bad, bad


def test_nothing_left_behind(ctrd, image):
    """Last: every test removed its containers (the `names` fixture) -- nothing of them stays."""
    assert not ctrd("containers", "ls", "-q").stdout.strip()
    assert not ctrd.tasks()
    assert poll(lambda: not ctrd.shims(), timeout=10), ctrd.shims()
    assert not ctrd.reap()   # each exited shim was ours to reap, and none is running
    assert not [m for m in ctrd.mount_points() if "/rootfs" in m or "/snapshots/" in m], \
        ctrd.mount_points()
    assert not ctrd.cgroup_dirs()
    root = ctrd.runc_root / ctrd.ns
    assert not root.exists() or not list(root.iterdir()), list(root.iterdir())
    assert not [c for c in ctrd.used if ctrd.shim_socket(c).exists()]
    assert not ctrd.fifo.exists() or not list(ctrd.fifo.iterdir()), list(ctrd.fifo.iterdir())
    assert not [p.name for p in Path("/proc").iterdir()
                if p.name.isdigit() and OCI in " ".join(_cmdline(p.name))]
