#!/usr/bin/env python3
"""`compose up -d` / `ps` / `down` of a three-service project: minirun vs podman-compose.

    sudo .venv/bin/python bench/compose_bench.py [--runs 5] [--json FILE] [--podman-compose PATH]

One compose file, the same for both tools, on the same image (scripts/build-image's busybox,
loaded into minirun with `minirun load` and into podman's private storage with `podman pull
oci:DIR:latest`, tagged busybox):

  web    `httpd -f -p 80` published on 127.0.0.1:18090, depends_on db and cache
  db     a sleep loop, healthcheck `test -f /tmp/ready` every 1 s
  cache  a sleep loop

Every service runs under `sh -c 'trap "exit 0" TERM; ...'`: a PID-1 httpd or sleep ignores
SIGTERM, and `down` would then time the 10 s stop timeout. No `init: true` (it would add a
different init to each tool: catatonit for podman, minirun's own) and no `-t 1` (a service that
ignored SIGTERM would then hide as a 1 s stop; here it makes `down` last >= 10 s, which the bench
reports as an error). Each round runs, in rotating order, each of:

  minirun          `minirun compose up -d`, `ps`, `down`
  minirun-wait     `minirun compose up -d --wait` (until db is healthy), `ps`, `down`
  podman-compose   `podman-compose up -d`, `ps`, `down` (podman + runc + conmon + netavark;
                   podman-compose also makes and removes a pod for the project)

Like for like is `up -d`: podman-compose (1.6) ignores `--wait` under podman < 4.6 (it says so),
and podman's healthchecks need systemd timers, which this host lacks, so its db never turns
healthy; the bench probes `podman-compose up -d --wait` once and adds a podman-compose-wait
scenario only if it really waits. Between the timed steps, untimed checks: all three
containers running (`minirun compose ps --format json` / `podman ps --format json`, db healthy
after --wait), an HTTP answer on 127.0.0.1:18090; after `down`, no container left and the
project network gone. Every call's exit code is checked: a failure is an error, not a time.

podman gets a private containers.conf (CONTAINERS_CONF: the ulimits this host can grant, runc,
cgroupfs, file events, tmp_dir and network_config_dir in the temp dir) and private storage
(CONTAINERS_STORAGE_CONF); minirun a private --root/--runroot (MINIRUN_ROOT/MINIRUN_RUNROOT).
podman 4.3 keeps netavark's run state (IPAM database, aardvark-dns) in a fixed /run/containers/
networks and its network namespaces in /run/netns: the bench runs in a mount namespace of its
own (both tools alike) with temp dirs bound over those two, so the user's are not touched.
podman-compose is pip-installed into a throw-away venv in the temp dir on the same Python as
minirun's venv (the only traffic: pip to its package index), unless --podman-compose names one.
Results: medians, p10/p90 in ms and the ratios minirun / podman-compose; targets: up and down
<= 0.5x podman-compose, ps <= 1x. Everything is made in a temp dir and removed on exit (Ctrl-C
and errors included), podman's network rules and IPv4 forwarding put back as they were.
Python stdlib only; run as root.
"""

from __future__ import annotations

import argparse
import atexit
import ctypes
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from benchlib import (CALL_TIMEOUT, STOPS, BenchError, Caller, error_line, on_sigterm, stats,
                      stopped)

REPO = Path(__file__).resolve().parents[1]
MINIRUN = REPO / ".venv" / "bin" / "minirun"
PROJECT = "cbench"
PORT = 18090
SERVICES = ("web", "db", "cache")
STOP_TIMEOUT_MS = 10_000  # Compose's default stop timeout: a `down` this long hit it
TARGETS = {"up": 0.5, "down": 0.5, "ps": 1.0}  # minirun's median / podman-compose's

COMPOSE_YAML = f"""\
name: {PROJECT}
services:
  web:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 80 -h /etc & wait"]
    ports: ["127.0.0.1:{PORT}:80"]
    depends_on: [db, cache]
  db:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; touch /tmp/ready; while :; do sleep 1 & wait; done"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
      timeout: 1s
      retries: 3
  cache:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait; done"]
"""


class Tool:
    """One compose implementation: how to call it and how to check what it made."""

    def __init__(self, name: str, compose: list[str], env: dict, project_dir: Path,
                 caller: Caller, up_flags: list[str]) -> None:
        self.name, self.compose, self.env = name, compose, env
        self.dir, self.caller, self.up_flags = project_dir, caller, up_flags
        self.waits = "--wait" in up_flags

    def call(self, *args: str, check: bool = True) -> tuple[int, float, str, str]:
        return self.caller.run([*self.compose, *args], self.env, cwd=self.dir, check=check)

    def up(self) -> float:
        return self.call("up", *self.up_flags)[1]

    def ps(self) -> float:
        return self.call("ps")[1]

    def down(self) -> float:
        ms = self.call("down")[1]
        if ms >= STOP_TIMEOUT_MS:
            raise BenchError(f"{self.name}: down took {ms / 1000:.1f} s: a service ignored "
                             "SIGTERM and waited out the stop timeout")
        return ms

    def states(self) -> dict[str, tuple[str, str]]:
        """service -> (state, health) of the project's containers."""
        raise NotImplementedError

    def leftovers(self) -> list[str]:
        raise NotImplementedError

    def check_up(self) -> None:
        states = self.states()
        for svc in SERVICES:
            state, health = states.get(svc, ("missing", ""))
            if state != "running":
                raise BenchError(f"{self.name}: service {svc} is {state} after up")
        if self.waits and states["db"][1] != "healthy":
            raise BenchError(f"{self.name}: db is {states['db'][1] or 'not healthy'} after "
                             "up --wait")
        http_check(self.name)

    def check_down(self) -> None:
        left = self.leftovers()
        if left:
            raise BenchError(f"{self.name}: left after down: {', '.join(left)}")


class MinirunTool(Tool):
    def states(self) -> dict[str, tuple[str, str]]:
        out = self.call("ps", "-a", "--format", "json")[2]
        rows = [json.loads(ln) for ln in out.splitlines() if ln.strip()]
        return {r["Service"]: (r["State"], r.get("Health") or "") for r in rows}

    def leftovers(self) -> list[str]:
        env = self.env
        out = self.caller.run([str(MINIRUN), "ps", "-aq"], env)[2].split()
        rc = self.caller.run([str(MINIRUN), "network", "inspect", f"{PROJECT}_default"], env,
                             check=False)[0]
        return [f"container {c[:12]}" for c in out] + ([f"network {PROJECT}_default"]
                                                       if rc == 0 else [])


class PodmanComposeTool(Tool):
    def states(self) -> dict[str, tuple[str, str]]:
        out = self.caller.run(["podman", "ps", "-a", "--filter",
                               f"label=com.docker.compose.project={PROJECT}", "--format", "json"],
                              self.env)[2]
        rows = json.loads(out or "[]")
        res = {}
        for r in rows:
            status = r.get("Status") or ""
            health = next((h for h in ("healthy", "unhealthy", "starting") if f"({h})" in status),
                          "")
            res[(r.get("Labels") or {}).get("com.docker.compose.service", "?")] = (r["State"],
                                                                                   health)
        return res

    def leftovers(self) -> list[str]:
        env, run = self.env, self.caller.run
        left = [f"container {c}" for c in run(["podman", "ps", "-aq"], env)[2].split()]
        left += [f"pod {p}" for p in run(["podman", "pod", "ps", "-q"], env)[2].split()]
        if run(["podman", "network", "exists", f"{PROJECT}_default"], env, check=False)[0] == 0:
            left.append(f"network {PROJECT}_default")
        return left


def http_check(who: str, deadline_s: float = 10) -> None:
    """Something answers HTTP on the published port (any status: busybox httpd has no index)."""
    end = time.monotonic() + deadline_s
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/", timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError as e:
            if time.monotonic() > end:
                raise BenchError(f"{who}: nothing answers on 127.0.0.1:{PORT}: {e}") from None
            time.sleep(0.05)


def version_of(argv: list[str], env: dict) -> str:
    try:
        r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"? ({e})"
    return (r.stdout.strip().splitlines() or ["?"])[0]


CLONE_NEWNS, MS_REC, MS_PRIVATE, MS_BIND = 0x00020000, 0x4000, 1 << 18, 0x1000
PRIVATE_DIRS = ("/run/containers", "/run/netns")  # podman's fixed paths, private to the bench


def private_mounts(tmp: Path) -> list[str]:
    """Unshare the mount namespace (single-threaded here: CLONE_NEWNS needs it) and bind a temp
    dir over each of PRIVATE_DIRS; return those this created on the host (to rmdir at the end).
    Children inherit the namespace; it goes when the last of them exits."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                           ctypes.c_void_p]
    if libc.unshare(CLONE_NEWNS) != 0:
        raise BenchError(f"unshare(CLONE_NEWNS): {os.strerror(ctypes.get_errno())}")
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise BenchError(f"making / private: {os.strerror(ctypes.get_errno())}")
    created = []
    for target in PRIVATE_DIRS:
        src = tmp / ("private" + target.replace("/", "-"))
        src.mkdir()
        if not os.path.isdir(target):
            os.mkdir(target, 0o755)
            created.append(target)
        if libc.mount(str(src).encode(), target.encode(), None, MS_BIND, None) != 0:
            raise BenchError(f"bind {src} over {target}: {os.strerror(ctypes.get_errno())}")
    return created


def links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def restore_host(nft_before: str, forward_before: str) -> None:
    """netavark leaves its tables (ip nat / ip filter, via iptables-nft) and IPv4 forwarding on:
    delete the tables that were not there before, and put ip_forward back."""
    for table in ("nat", "filter"):
        if f"table ip {table} " not in nft_before:
            subprocess.run(["nft", "delete", "table", "ip", table], capture_output=True)
    Path("/proc/sys/net/ipv4/ip_forward").write_text(forward_before + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--podman-compose", metavar="PATH",
                    help="use this podman-compose instead of pip-installing one into the temp dir")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("compose_bench: run as root", file=sys.stderr)
        return 1
    if args.runs < 1:
        print("compose_bench: --runs must be >= 1", file=sys.stderr)
        return 1
    for tool in ("podman", "nft"):
        if not shutil.which(tool):
            print(f"compose_bench: {tool} not found", file=sys.stderr)
            return 1
    # podman names an `oci:DIR` image after DIR, which must be a valid reference: no mkdtemp.
    tmp = Path(tempfile.gettempdir()) / f"compose-bench-{secrets.token_hex(4)}"
    tmp.mkdir(mode=0o700)
    nft_before = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    forward_before = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    cleanup = Cleanup(tmp, nft_before, forward_before)
    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        cleanup.created_dirs = private_mounts(tmp)
        results = bench(tmp, args, cleanup)
    except STOPS as e:
        return stopped("compose_bench", e)
    finally:
        cleanup()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


class Cleanup:
    """Idempotent: tear down both projects, both engines' state, the host changes, the temp dir."""

    def __init__(self, tmp: Path, nft_before: str, forward_before: str) -> None:
        self.tmp, self.nft_before, self.forward_before = tmp, nft_before, forward_before
        self.links_before = links()
        self.created_dirs: list[str] = []
        self.tools: list[Tool] = []
        self.mr_env: dict | None = None
        self.pm_env: dict | None = None
        self.done = False

    def __call__(self) -> None:
        if self.done:
            return
        self.done = True
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut it
        q = {"capture_output": True, "timeout": CALL_TIMEOUT}
        try:
            for t in self.tools:
                try:
                    subprocess.run([*t.compose, "down", "-t", "0"], cwd=t.dir, env=t.env, **q)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            if self.mr_env:
                try:
                    ids = subprocess.run([str(MINIRUN), "ps", "-aq"], env=self.mr_env, text=True,
                                         **q).stdout.split()
                except (OSError, subprocess.TimeoutExpired):
                    ids = []
                for argv in (["rm", "-f", *ids] if ids else ["ps", "-q"],
                             ["system", "prune", "-a", "-f"], ["network", "prune", "-f"]):
                    try:
                        subprocess.run([str(MINIRUN), *argv], env=self.mr_env, **q)
                    except (OSError, subprocess.TimeoutExpired):
                        pass
            if self.pm_env:
                for argv in (["rm", "-af", "-t", "0"], ["pod", "rm", "-af"],
                             ["network", "rm", "-f", f"{PROJECT}_default"],
                             ["system", "reset", "-f"]):
                    try:
                        subprocess.run(["podman", *argv], env=self.pm_env, **q)
                    except (OSError, subprocess.TimeoutExpired):
                        pass
            restore_host(self.nft_before, self.forward_before)
            for link in links() - self.links_before:  # a project bridge podman left (podmanN)
                if link.startswith("podman"):
                    subprocess.run(["ip", "link", "del", link], capture_output=True)
            for m in reversed([ln.split()[4] for ln in open("/proc/self/mountinfo")
                               if ln.split()[4].startswith((str(self.tmp), *PRIVATE_DIRS))]):
                subprocess.run(["umount", "-l", m], capture_output=True)
            for d in self.created_dirs:
                try:
                    os.rmdir(d)
                except OSError:
                    pass
            shutil.rmtree(self.tmp, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, old)


def bench(tmp: Path, args, cleanup: Cleanup) -> dict:
    caller = Caller(tmp)
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("MINIRUN_", "CONTAINERS_"))}
    mr_env = dict(base_env, MINIRUN_ROOT=str(tmp / "mr-root"), MINIRUN_RUNROOT=str(tmp / "mr-run"))
    pm_env = dict(base_env, CONTAINERS_CONF=str(tmp / "containers.conf"),
                  CONTAINERS_STORAGE_CONF=str(tmp / "storage.conf"))
    cleanup.mr_env, cleanup.pm_env = mr_env, pm_env
    (tmp / "containers.conf").write_text(
        '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n'
        '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nruntime = "runc"\n'
        f'tmp_dir = "{tmp}/pm-tmp"\n'
        f'[network]\nnetwork_config_dir = "{tmp}/pm-networks"\n')
    (tmp / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\nrunroot = "{tmp}/pm-run"\ngraphroot = "{tmp}/pm-root"\n')

    layout = tmp / "image"
    caller.run([str(REPO / "scripts" / "build-image"), str(layout)], base_env)
    caller.run([str(MINIRUN), "load", "-i", str(layout)], mr_env)
    image_id = caller.run(["podman", "pull", "-q", f"oci:{layout}:latest"], pm_env)[2] \
        .strip().splitlines()[-1]
    caller.run(["podman", "tag", image_id, "busybox:latest"], pm_env)

    if args.podman_compose:
        pc = str(Path(args.podman_compose).resolve())
    else:
        venv = tmp / "pc-venv"
        # the Python minirun's venv is made from, so that both front ends start alike
        home = next((ln.split("=", 1)[1].strip() for ln in
                     (REPO / ".venv" / "pyvenv.cfg").read_text().splitlines()
                     if ln.startswith("executable")), sys.executable)
        caller.run([home, "-m", "venv", str(venv)], base_env)
        caller.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                    "podman-compose"], base_env)
        pc = str(venv / "bin" / "podman-compose")

    project = tmp / PROJECT
    project.mkdir()
    compose_file = project / "compose.yaml"
    compose_file.write_text(COMPOSE_YAML)
    mr = [str(MINIRUN), "compose", "-f", str(compose_file)]
    tools = [MinirunTool("minirun", mr, mr_env, project, caller, ["-d"]),
             MinirunTool("minirun-wait", mr, mr_env, project, caller, ["-d", "--wait"]),
             PodmanComposeTool("podman-compose", [pc, "-f", str(compose_file)], pm_env, project,
                               caller, ["-d"])]
    cleanup.tools = tools

    versions = {"minirun": version_of([str(MINIRUN), "--version"], mr_env),
                "podman-compose": version_of([pc, "--version"], pm_env),
                "podman": version_of(["podman", "--version"], pm_env),
                "runc": version_of(["runc", "--version"], pm_env),
                "python": version_of([str(REPO / ".venv" / "bin" / "python"), "--version"],
                                     base_env)}
    quirks: list[str] = []

    # Does podman-compose really wait here? One untimed probe, bounded by --wait-timeout.
    pcw = PodmanComposeTool("podman-compose-wait", tools[2].compose, pm_env, project, caller,
                            ["-d", "--wait", "--wait-timeout", "15"])
    rc, _, _, se = pcw.call("up", *pcw.up_flags, check=False)
    ignored = next((ln.strip() for ln in se.splitlines() if "Ignore --wait" in ln), "")
    if ignored:
        quirks.append(f"podman-compose: {ignored.split(':', 2)[-1]} (timed as up -d)")
    elif rc != 0:
        quirks.append(f"podman-compose up -d --wait fails here: {error_line(se)}")
    else:
        try:
            pcw.check_up()
            tools.append(pcw)
        except BenchError as e:
            quirks.append(f"podman-compose up -d --wait returned but: {e}")
    if "unable to get systemd connection" in se:
        quirks.append("podman: healthchecks need systemd timers, absent here: db stays "
                      "'starting' (podman logs an error, exit 0)")
    pcw.down()
    pcw.check_down()

    def cycle(t: Tool) -> tuple[float, float, float]:
        up = t.up()
        t.check_up()
        ps = t.ps()
        down = t.down()
        t.check_down()
        return up, ps, down

    for t in tools:  # warm caches once, untimed
        cycle(t)
    load_before = loadavg()
    samples = {t.name: {"up": [], "ps": [], "down": []} for t in tools}
    for i in range(args.runs):
        order = tools[i % len(tools):] + tools[:i % len(tools)]
        for t in order:
            for op, ms in zip(("up", "ps", "down"), cycle(t)):
                samples[t.name][op].append(ms)

    load = (load_before, loadavg())
    if max(load) > 1 + 0.5 * (os.cpu_count() or 1):  # the bench itself keeps ~1-1.5 busy
        quirks.append(f"load average {load[0]:.2f} before, {load[1]:.2f} after the rounds: "
                      "something else was running, the figures may be noisy")
    results: dict = {"runs": args.runs, "versions": versions, "quirks": quirks,
                     "host": {"kernel": os.uname().release, "cpus": os.cpu_count(),
                              "loadavg_1min": load},
                     "compose_file": COMPOSE_YAML, "scenarios": {}, "targets": {}}
    print(f"compose up -d / ps / down, services {', '.join(SERVICES)} on busybox, {args.runs} "
          f"rounds (kernel {os.uname().release}, {os.cpu_count()} CPUs)")
    print(f"{versions['minirun']}; {versions['podman-compose']} with {versions['podman']}, "
          f"runc {versions['runc'].split()[-1]}\n")
    ref = samples["podman-compose"]
    print(f"{'scenario':<20} {'step':<5} {'median ms':>10} {'p10':>8} {'p90':>8} "
          f"{'vs podman-compose':>18}")
    for t in tools:
        res = results["scenarios"][t.name] = {}
        for op in ("up", "ps", "down"):
            s = stats(samples[t.name][op])
            s["ratio"] = s["median"] / statistics.median(ref[op])
            res[op] = s
            note = "  (up --wait: not like for like)" if t.waits and op == "up" else ""
            print(f"{t.name:<20} {op:<5} {s['median']:>10.1f} {s['p10']:>8.1f} {s['p90']:>8.1f} "
                  f"{s['ratio']:>17.2f}x{note}")
    print()
    for op, goal in TARGETS.items():
        r = results["scenarios"]["minirun"][op]["ratio"]
        met = r <= goal
        results["targets"][op] = {"goal": goal, "ratio": r, "met": met}
        print(f"target {op:<4} <= {goal:.1f}x podman-compose: {r:.2f}x, "
              f"{'met' if met else 'MISSED'}")
    for q in quirks:
        print(f"note: {q}")
    return results


if __name__ == "__main__":
    sys.exit(main())
