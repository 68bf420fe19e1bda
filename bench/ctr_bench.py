#!/usr/bin/env python3
"""`ctr run --rm IMAGE ID true` through containerd: minirun-oci against runc, side by side.

    sudo .venv/bin/python bench/ctr_bench.py [--runs 15] [--json FILE]

The bench starts a containerd of its own (Debian's containerd 1.6): root, state, sockets,
opt dir and config file in a temp dir, the CRI plugin disabled (ctr does not use it), so the
host's containerd (if any) is not touched. busybox is taken from minirun's default root
(`minirun save busybox`, a docker-archive) and imported once. Each round runs

    ctr --address SOCK run --rm --runc-binary BIN --runc-root TMP/runc --fifo-dir TMP/fifo \
        --cgroup /PARENT/ID docker.io/library/busybox:latest ID true

for both runtimes, their order rotating each round; runc is the shim's default binary,
named explicitly all the same so both calls are alike. The time is the whole `ctr run`:
the snapshot, the shim's start, the runtime's create/start, the wait, delete, the shim's
exit (the bench is the shims' subreaper and reaps them, untimed). A call that fails (exit
status != 0) stops the bench. Figures: median, p10, p90 in ms and minirun-oci's ratio to runc
(target <= 1.2x).

At the end (and on Ctrl-C or SIGTERM) containerd is stopped, its shims and mounts are gone,
the temp dir is removed, the cgroup parent and the /run/containerd dirs that containerd 1.6
makes outside its state dir (fifo, runc, s) are rmdir'd if they were new; the host is then
compared with before.

Exit status: 0 measured (whatever the ratio), 1 a call failed or the host was left unclean,
2 cannot run here (not root, containerd/ctr/runc/minirun-oci missing).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchlib
from benchlib import BenchError, Caller, Terminated

REPO = Path(__file__).resolve().parents[1]
MINIRUN_OCI = REPO / ".venv" / "bin" / "minirun-oci"
MINIRUN = REPO / ".venv" / "bin" / "minirun"
IMAGE = "docker.io/library/busybox:latest"
TARGET = 1.2
# made by containerd 1.6 (its shims, the runc shim's default root, ctr's fifos) whatever its
# root/state say; rmdir'd at the end when they were not there before and are empty
RUN_DIRS = ["/run/containerd/fifo", "/run/containerd/runc/k8s.io", "/run/containerd/runc/default",
            "/run/containerd/runc", "/run/containerd/s", "/run/containerd"]


class PrivateContainerd:
    """A containerd with everything under `dir`: config.toml, root, state, the grpc and ttrpc
    sockets, the opt dir, its log. `extra_toml` is appended to the config (tables only:
    top-level keys are ours). cri=False disables the CRI plugin; with cri=True it gets a CNI
    config/bin dir and a sandbox image name in `dir` (nothing is pulled or networked: no pod
    is started). Used by bench/ctr_bench.py and tests/integration/test_kubernetes_cri.py.

    stop(), idempotent: SIGTERM (SIGKILL after 20 s), any process still naming `dir` on its
    command line (shims) SIGKILLed, mounts under `dir` unmounted, `dir` removed, the
    /run/containerd dirs that were new rmdir'd."""

    def __init__(self, dir: Path, *, cri: bool, extra_toml: str = "") -> None:
        self.dir = dir
        self.sock = dir / "containerd.sock"
        self.config = dir / "config.toml"
        self.log = dir / "containerd.log"
        self.proc: subprocess.Popen | None = None
        self.run_dirs_before = {d: os.path.exists(d) for d in RUN_DIRS}
        head = [
            "version = 2",
            f'root = "{dir}/root"',
            f'state = "{dir}/state"',
            f'[grpc]\n  address = "{self.sock}"',
            f'[ttrpc]\n  address = "{self.sock}.ttrpc"',
            '[debug]\n  address = ""',
            '[metrics]\n  address = ""',
            f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{dir}/opt"',
        ]
        if cri:
            for d in ("cni/net.d", "cni/bin"):
                (dir / d).mkdir(parents=True, exist_ok=True)
            head += [
                '[plugins."io.containerd.grpc.v1.cri"]\n'
                '  sandbox_image = "localhost/minirun-test/pause:none"\n'
                '  stream_server_address = "127.0.0.1"\n  stream_server_port = "0"',
                f'[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = "{dir}/cni/bin"\n'
                f'  conf_dir = "{dir}/cni/net.d"',
            ]
        else:
            head.insert(1, 'disabled_plugins = ["io.containerd.grpc.v1.cri"]')
        self.config.write_text("\n".join(head) + "\n\n" + extra_toml)

    def ctr(self, *args: str, check: bool = True, timeout: float = 60
            ) -> subprocess.CompletedProcess:
        r = subprocess.run(["ctr", "--address", str(self.sock), *args], capture_output=True,
                           text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise BenchError(f"ctr {' '.join(args[:3])}: exit {r.returncode}: "
                             f"{benchlib.error_line(r.stderr) or r.stdout.strip()[:200]}")
        return r

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(["containerd", "--config", str(self.config)],
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + benchlib.START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"containerd exited ({self.proc.returncode}): "
                                 f"{benchlib.error_line(self.log.read_text(errors='replace'))}")
            if self.sock.exists() and self.ctr("version", check=False,
                                               timeout=10).returncode == 0:
                return
            if time.monotonic() > deadline:
                raise BenchError(f"containerd: no answer on {self.sock} after "
                                 f"{benchlib.START_TIMEOUT} s")
            time.sleep(0.05)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            benchlib.stop_process(self.proc, group=True)
        benchlib.kill_strays(self.dir)
        time.sleep(0.1)
        benchlib.unmount_under(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)
        for d, was in self.run_dirs_before.items():  # deepest first (RUN_DIRS' order)
            if not was:
                try:
                    os.rmdir(d)
                except OSError:
                    pass  # not empty: someone else's (another containerd) now


def subreaper(on: bool) -> None:
    """PR_SET_CHILD_SUBREAPER: a shim's `start` forks the shim daemon and exits, so the daemon
    is re-parented to the nearest subreaper; without one it is PID 1, which reaps late on this
    host (zombie shims for a while). The bench adopts them and reaps them (reap_adopted)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(36, int(on), 0, 0, 0)


def reap_adopted(keep: int | None) -> None:
    """waitpid() every exited child but `keep` (containerd, a Popen's own) without blocking."""
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None or info.si_pid == keep:
            return
        os.waitpid(info.si_pid, 0)


def rmdir_cgroups(parent: str) -> list[str]:
    """rmdir /sys/fs/cgroup/*/PARENT (and its empty children); what could not go."""
    left = []
    for h in Path("/sys/fs/cgroup").iterdir():
        d = h / parent.strip("/")
        if not d.is_dir() or h.is_symlink():
            continue
        for child in sorted((c for c in d.iterdir() if c.is_dir()), reverse=True):
            try:
                child.rmdir()
            except OSError:
                left.append(str(child))
        try:
            d.rmdir()
        except OSError:
            left.append(str(d))
    return left


def others_containerd(mine: int | None = None) -> bool:
    """Is another containerd than ours (pid `mine`) running: the host's, or another test's?
    The /run/containerd dirs are shared with it."""
    r = subprocess.run(["pgrep", "-x", "containerd"], capture_output=True, text=True)
    return any(int(p) != mine for p in r.stdout.split())


def host_check(before: dict, ours: list[str], results: dict, extra: list[str]) -> list[str]:
    """benchlib.host_report's verdict, except that a /run/containerd dir left while another
    containerd runs is that one's (shared dirs; ours are rmdir'd when empty)."""
    return benchlib.host_report(before, ours, results, extra,
                                shared=("/run/containerd",) if others_containerd() else ())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15, help="rounds (each runs both runtimes)")
    ap.add_argument("--json", type=Path, help="write the results here too")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("ctr_bench: needs root (containerd)", file=sys.stderr)
        return 2
    bins = {"minirun-oci": str(MINIRUN_OCI) if os.access(MINIRUN_OCI, os.X_OK) else None,
            "runc": shutil.which("runc")}
    missing = [n for n in ("containerd", "ctr", "containerd-shim-runc-v2") if not shutil.which(n)]
    missing += [n for n, b in bins.items() if not b]
    if not os.access(MINIRUN, os.X_OK):
        missing.append(str(MINIRUN))
    if missing:
        print(f"ctr_bench: not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, benchlib.on_sigterm)
    subreaper(True)
    tag = f"{os.getpid()}"
    parent = f"/ctr-bench-{tag}"
    before = benchlib.host_state()
    busy = others_containerd()
    tmp = Path(tempfile.mkdtemp(prefix="ctr-bench-"))
    (tmp / "containerd").mkdir()
    cd = PrivateContainerd(tmp / "containerd", cri=False)
    results: dict = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"), "host": {}, "runs": args.runs, "runtimes": {}}
    rc = 0
    left: list[str] = []
    try:
        cd.start()
        caller = Caller(tmp)
        env = dict(os.environ)
        # the image, once: minirun's busybox as a docker-archive, imported
        archive = tmp / "busybox.tar"
        with open(archive, "wb") as f:
            r = subprocess.run([str(MINIRUN), "save", "busybox"], stdout=f,
                               stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise BenchError(f"minirun save busybox: {benchlib.error_line(r.stderr)}")
        cd.ctr("images", "import", str(archive))
        ver = {n: subprocess.run([b, "--version"], capture_output=True, text=True
                                 ).stdout.splitlines()[0] for n, b in bins.items()}
        ver["containerd"] = subprocess.run(["containerd", "--version"], capture_output=True,
                                           text=True).stdout.strip()
        results["host"] = {"hostname": platform.node(), "kernel": platform.release(),
                           "cpus": os.cpu_count(), "versions": ver}
        names = list(bins)
        samples: dict[str, list[float]] = {n: [] for n in names}

        def one(name: str, cid: str) -> float:
            _, ms, _, _ = caller.run(
                ["ctr", "--address", str(cd.sock), "run", "--rm", "--runc-binary", bins[name],
                 "--runc-root", str(tmp / "runc"), "--fifo-dir", str(tmp / "fifo"),
                 "--cgroup", f"{parent}/{cid}", IMAGE, cid, "true"], env)
            reap_adopted(cd.proc.pid)  # untimed: the shim daemon that just exited
            return ms

        for n in names:  # warm-up, untimed: page cache, the shim binary, the venv's imports
            one(n, f"warm-{n}")
        for i in range(args.runs):
            k = i % len(names)
            for n in names[k:] + names[:k]:
                samples[n].append(one(n, f"r{i}-{n}"))
        left_c = cd.ctr("containers", "ls", "-q").stdout.split()
        if left_c:
            raise BenchError(f"ctr run --rm left containers: {' '.join(left_c)}")
        for n in names:
            results["runtimes"][n] = dict(benchlib.stats(samples[n]),
                                          samples_ms=[round(x, 1) for x in samples[n]])
        base = results["runtimes"]["runc"]["median"]
        ratio = results["runtimes"]["minirun-oci"]["median"] / base
        results["ratio"] = ratio
        print(f"\nctr run --rm busybox true, {args.runs} rounds, order rotating, "
              f"{results['host']['hostname']} ({os.cpu_count()} cpus, {platform.release()})")
        print(f"{'runtime':<12} {'median ms':>9} {'p10':>8} {'p90':>8} {'vs runc':>8} {'n':>4}")
        for n in names:
            s = results["runtimes"][n]
            print(f"{n:<12} {s['median']:>9.1f} {s['p10']:>8.1f} {s['p90']:>8.1f} "
                  f"{s['median'] / base:>7.2f}x {s['n']:>4}")
        print(f"minirun-oci/runc = {ratio:.2f}x (target <= {TARGET}x: "
              f"{'met' if ratio <= TARGET else 'NOT met'})")
        print("  " + "; ".join(ver.values()))
        results["other_containerd"] = busy or others_containerd(cd.proc.pid)
        if results["other_containerd"]:
            print("  note: another containerd was running meanwhile (the figures may be noisier)")
    except (BenchError, KeyboardInterrupt, Terminated) as e:
        rc = benchlib.stopped("ctr_bench", e)
        if isinstance(e, BenchError) and "containerd" in str(e):
            print(benchlib.error_line(cd.log_text()), file=sys.stderr)
    finally:
        cd.stop()
        reap_adopted(None)
        left = rmdir_cgroups(parent)
        shutil.rmtree(tmp, ignore_errors=True)
    if host_check(before, [re.escape(parent), re.escape(str(tmp))], results, left):
        rc = rc or 1
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return rc


if __name__ == "__main__":
    sys.exit(main())
