#!/usr/bin/env python3
"""The docker CLI against `minirun system service` and against Docker's own dockerd, side by side.

    sudo .venv/bin/python bench/api_bench.py [--runs 15] [--json FILE] [--containers 3]

One client, two servers. The client is the docker CLI (/usr/local/bin/docker), the same binary
for both, with DOCKER_HOST set to each server's socket and a private DOCKER_CONFIG. The servers
are started by the bench, each with private state in its temp dir:

  minirun   `minirun --root R --runroot RR system service --time 0 --host unix://SOCK`
  dockerd   Debian's docker.io (20.10): `dockerd --config-file C --data-root D --exec-root E
            --pidfile P --host unix://SOCK --bridge=none --iptables=false --ip6tables=false
            --ip-forward=false --ip-masq=false --cgroup-parent /api-bench-XXXX`, with the
            containerd it starts itself (its state under D and E). C is an almost empty
            daemon.json: no /etc/docker/daemon.json is read, and the daemon's key.json goes to
            the temp dir ("deprecated-key-path") instead of /etc/docker. When a system
            containerd is listening on /run/containerd/containerd.sock, dockerd would use it
            and mix its state with the host's: the bench then starts a containerd of its own
            (root, state, socket and opt dir in the temp dir) and passes --containerd.

The same image in both: scripts/build-image's busybox OCI layout, loaded with `minirun load -i
DIR` and, for dockerd, converted offline with `skopeo copy oci:DIR docker-archive:bb.tar:
busybox:latest` and loaded with `docker load -i`. Scenarios (each round runs every scenario on
both servers; the order of the servers alternates from round to round):

  run       `docker run --rm --network none busybox true`      target: minirun <= 1.0x dockerd
  ps        `docker ps` with --containers (3) `sleep` containers running        target <= 1.5x
  inspect   `docker inspect <id>` of one of them                                target <= 1.5x

Both servers run their default security settings (seccomp profile, capabilities, masked
paths) and no network (`--network none`). One untimed warm-up call of each scenario on each
server comes first, with checks (ps lists the containers, inspect names the container). Every
call's exit code is checked: a failure is an error, not a time. Waits are blocking, with a
watchdog timer. Then, to tell the server's time from the client's, the median of the HTTP
requests those commands send, timed directly on each socket from Python (a fresh connection
each, as the CLI makes), and the CLI's own floor (`docker --version`, no request at all).

Results: median, p10 and p90 in ms per scenario and server, the ratio minirun / dockerd, and
whether each target is met. Everything is made in a temp dir and removed on exit (Ctrl-C,
SIGTERM and errors included): the containers (through each server, then minirun's CLI), both
servers (SIGTERM, then SIGKILL after 20 s), dockerd's containerd and shims should they outlive
it, the processes left in dockerd's cgroup parent should it have died, that cgroup parent, the
mounts under the temp dir, and what dockerd and containerd make outside their dirs when it was
not there before (/run/docker, /run/containerd/s and its stale shim sockets, /opt/containerd).
The host's links, nft ruleset, iptables-save output, mounts, cgroups (two levels) and
forwarding sysctls are compared before and after; a change that is the bench's is an error.
Nothing is sent off this machine. Python stdlib only; run as root. Debian's docker.io enables
docker.service and containerd.service when installed: nothing here needs them (disable them
if there is a systemd to start them).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import (CALL_TIMEOUT, DOCKER, STOPS, BenchError, Caller, Dockerd, Server,
                      host_report, host_state, http, kill_strays, on_sigterm, stats, stopped,
                      unmount_under)

REPO = Path(__file__).resolve().parents[1]
MINIRUN = REPO / ".venv" / "bin" / "minirun"
API = "/v1.41"  # dockerd 20.10's version, within minirun's 1.24-1.43
SCENARIOS = {  # name: (target ratio, what it times)
    "run": (1.0, "docker run --rm --network none busybox true"),
    "ps": (1.5, "docker ps ({n} containers running)"),
    "inspect": (1.5, "docker inspect <container>"),
}
PEERS = ("minirun", "dockerd")


# -- cleanup -----------------------------------------------------------------------------------
class Cleanup:
    """Idempotent: minirun's containers and service, the private dockerd and all it made
    (benchlib.Dockerd.cleanup), processes and mounts left under the temp dir, the temp dir."""

    def __init__(self, tmp: Path, tag: str) -> None:
        self.tmp, self.tag = tmp, tag
        self.dockerd: Dockerd | None = None
        self.minirun: Server | None = None
        self.minirun_client: dict = {}
        self.mr_global: list[str] = []
        self.container_ids: list[str] = []  # to tell our leftovers from other users' changes
        self.done = False

    def __call__(self) -> None:
        if self.done:
            return
        self.done = True
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut it
        old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        q = {"capture_output": True, "timeout": CALL_TIMEOUT}
        try:
            if self.minirun and self.minirun.running():  # containers, through the service
                try:
                    ids = subprocess.run([DOCKER, "ps", "-aq"], env=self.minirun_client,
                                         text=True, **q).stdout
                    if ids.split():
                        subprocess.run([DOCKER, "rm", "-f", *ids.split()],
                                       env=self.minirun_client, **q)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            if self.dockerd:
                self.dockerd.cleanup()
            if self.minirun:
                self.minirun.stop()
            if self.mr_global:  # minirun's own view: monitors outlive the service
                for argv in (["ps", "-aq"], ["system", "prune", "-a", "-f"],
                             ["network", "prune", "-f"]):
                    try:
                        r = subprocess.run([str(MINIRUN), *self.mr_global, *argv], text=True, **q)
                        if argv == ["ps", "-aq"] and r.stdout.split():
                            subprocess.run([str(MINIRUN), *self.mr_global, "rm", "-f",
                                            *r.stdout.split()], **q)
                    except (OSError, subprocess.TimeoutExpired):
                        pass
            kill_strays(self.tmp)
            unmount_under(self.tmp)
            shutil.rmtree(self.tmp, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)


# -- the bench ---------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--containers", type=int, default=3, help="containers running for ps")
    ap.add_argument("--own-containerd", action="store_true",
                    help="start a private containerd for dockerd even without a system one")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("api_bench: run as root", file=sys.stderr)
        return 1
    if args.runs < 1 or args.containers < 1:
        print("api_bench: --runs and --containers must be >= 1", file=sys.stderr)
        return 1
    for tool in (DOCKER, "dockerd", "skopeo", str(MINIRUN)):
        if not shutil.which(tool):
            hint = " (apt-get install docker.io)" if tool == "dockerd" else ""
            print(f"api_bench: {tool} not found{hint}", file=sys.stderr)
            return 1
    before = host_state()
    tmp = Path(tempfile.mkdtemp(prefix="api-bench-", dir="/tmp"))  # short: socket paths
    tag = secrets.token_hex(4)
    cleanup = Cleanup(tmp, tag)
    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        results = bench(tmp, args, cleanup)
    except STOPS as e:
        return stopped("api_bench", e)
    finally:
        cleanup()
    ours = "|".join(["docker", "containerd", "DOCKER", re.escape(str(tmp)), tag,
                     *(i[:12] for i in cleanup.container_ids)])
    mine = host_report(before, [ours], results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 1 if mine else 0


def bench(tmp: Path, args, cleanup: Cleanup) -> dict:
    caller = Caller(tmp)
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("MINIRUN_", "DOCKER_", "CONTAINERS_"))}

    # minirun: private root and runroot, the image loaded by its CLI
    layout = tmp / "image"
    caller.run([str(REPO / "scripts" / "build-image"), str(layout)], base_env)
    mr_global = ["--root", str(tmp / "mr-root"), "--runroot", str(tmp / "mr-run")]
    cleanup.mr_global = mr_global
    caller.run([str(MINIRUN), *mr_global, "load", "-i", str(layout)], base_env)

    # dockerd: private everything; a containerd of our own only if a system one would be used
    dockerd = Dockerd(tmp / "dk", cleanup.tag, base_env, own_containerd=args.own_containerd,
                      cgroup_name=f"api-bench-{cleanup.tag}")
    cleanup.dockerd = dockerd
    minirun = Server("minirun", [str(MINIRUN), *mr_global, "system", "service", "--time", "0",
                                 "--host", f"unix://{tmp}/minirun.sock"],
                     tmp / "minirun.sock", tmp / "minirun.log", base_env)
    cleanup.minirun = minirun
    (tmp / "cfg-minirun").mkdir()
    clients = {"minirun": dict(base_env, DOCKER_HOST=f"unix://{minirun.sock}",
                               DOCKER_CONFIG=str(tmp / "cfg-minirun"), DOCKER_CLI_HINTS="false"),
               "dockerd": dockerd.client_env(tmp / "cfg-dockerd")}
    cleanup.minirun_client = clients["minirun"]
    minirun.start()
    dockerd.start()
    servers = {"minirun": minirun, "dockerd": dockerd}
    containerd_note = dockerd.containerd_note

    caller.run(["skopeo", "copy", "--quiet", f"oci:{layout}",
                f"docker-archive:{tmp}/bb.tar:busybox:latest"], base_env)
    caller.run([DOCKER, "load", "-q", "-i", str(tmp / "bb.tar")], clients["dockerd"])
    (tmp / "bb.tar").unlink()

    def version(name: str) -> dict:
        out = caller.run([DOCKER, "version", "--format", "{{json .Server}}"], clients[name])[2]
        v = json.loads(out)
        comps = {c["Name"]: c["Version"] for c in v.get("Components") or []}
        return {"version": v.get("Version"), "api": v.get("ApiVersion"), "components": comps}

    versions = {n: version(n) for n in PEERS}
    client_version = caller.run([DOCKER, "version", "--format", "{{.Client.Version}}"],
                                clients["minirun"])[2].strip()

    # the containers `ps` lists and `inspect` looks at, the same in both
    ids: dict[str, list[str]] = {}
    for name in PEERS:
        ids[name] = []
        for i in range(args.containers):
            out = caller.run([DOCKER, "run", "-d", "--network", "none", "--name",
                              f"api-bench-{i}", "busybox", "sleep", "86400"], clients[name])[2]
            ids[name].append(out.strip())
            cleanup.container_ids.append(out.strip())
        img = caller.run([DOCKER, "image", "inspect", "--format", "{{.Id}}", "busybox"],
                         clients[name])[2].strip()
        if not img:
            raise BenchError(f"{name}: no busybox image")

    def argv(scenario: str, name: str) -> list[str]:
        if scenario == "run":
            return [DOCKER, "run", "--rm", "--network", "none", "busybox", "true"]
        if scenario == "ps":
            return [DOCKER, "ps"]
        return [DOCKER, "inspect", ids[name][0]]

    def check(scenario: str, name: str, out: str) -> None:
        if scenario == "ps":
            rows = out.strip().splitlines()[1:]
            if len(rows) != args.containers or not all("api-bench-" in r for r in rows):
                raise BenchError(f"{name}: docker ps shows {len(rows)} containers, "
                                 f"not the {args.containers} running")
        elif scenario == "inspect":
            doc = json.loads(out)
            if doc[0]["Id"] != ids[name][0] or not doc[0]["State"]["Running"]:
                raise BenchError(f"{name}: docker inspect: not the running container")
        elif out.strip():
            raise BenchError(f"{name}: docker run ... true printed {out.strip()[:80]!r}")

    for scenario in SCENARIOS:  # warm-up, untimed, checked
        for name in PEERS:
            check(scenario, name, caller.run(argv(scenario, name), clients[name])[2])
    samples = {s: {n: [] for n in PEERS} for s in SCENARIOS}
    for i in range(args.runs):
        order = PEERS if i % 2 == 0 else PEERS[::-1]
        for scenario in SCENARIOS:
            for name in order:
                samples[scenario][name].append(caller.run(argv(scenario, name), clients[name])[1])
    for name in PEERS:
        left = caller.run([DOCKER, "ps", "-aq"], clients[name])[2].split()
        if len(left) != args.containers:
            raise BenchError(f"{name}: {len(left)} containers after the rounds, "
                             f"not {args.containers}: `run --rm` left some")

    # the server alone: the requests those commands send, each on a fresh connection
    requests = {"HEAD /_ping": ("HEAD", "/_ping"),
                "GET /containers/json": ("GET", "/containers/json"),
                "GET /containers/{id}/json": ("GET", "/containers/{id}/json")}
    server_ms: dict[str, dict[str, list[float]]] = {r: {n: [] for n in PEERS} for r in requests}
    for i in range(max(args.runs, 15) * 2 + 1):
        order = PEERS if i % 2 == 0 else PEERS[::-1]
        for label, (method, path) in requests.items():
            for name in order:
                t = time.perf_counter_ns()
                status, _ = http(str(servers[name].sock), method,
                                 (API if path != "/_ping" else "") +
                                 path.replace("{id}", ids[name][0]))
                ms = (time.perf_counter_ns() - t) / 1e6
                if status != 200:
                    raise BenchError(f"{name}: {method} {path}: {status}")
                if i:  # the first is a warm-up
                    server_ms[label][name].append(ms)
    floor = [caller.run([DOCKER, "--version"], base_env)[1] for _ in range(max(args.runs, 15))]

    # report
    host = (f"kernel {os.uname().release}, {os.cpu_count()} CPUs; docker CLI {client_version}; "
            f"dockerd {versions['dockerd']['version']} (API {versions['dockerd']['api']}, "
            f"containerd {versions['dockerd']['components'].get('containerd', '?')}, "
            f"runc {versions['dockerd']['components'].get('runc', '?')}); "
            f"minirun {versions['minirun']['version']} (API {versions['minirun']['api']})")
    print(f"docker CLI against minirun's service and dockerd, {args.runs} rounds\n{host}\n"
          f"dockerd's containerd: {containerd_note}\n")
    print(f"{'scenario':<46} {'peer':<8} {'median ms':>9} {'p10':>7} {'p90':>7} "
          f"{'ratio':>6} {'target':>7}  met")
    results: dict = {"runs": args.runs, "containers": args.containers, "host": host,
                     "versions": versions, "docker_cli": client_version,
                     "dockerd_containerd": containerd_note, "scenarios": {}}
    for scenario, (target, what) in SCENARIOS.items():
        st = {n: stats(samples[scenario][n]) for n in PEERS}
        ratio = st["minirun"]["median"] / st["dockerd"]["median"]
        met = ratio <= target
        results["scenarios"][scenario] = {"command": what.format(n=args.containers), **st,
                                          "ratio": ratio, "target": target, "met": met}
        for name in PEERS:
            s = st[name]
            tail = (f"{ratio:>5.2f}x {target:>6.1f}x  {'yes' if met else 'NO'}"
                    if name == "minirun" else "")
            label = what.format(n=args.containers) if name == "minirun" else ""
            print(f"{label:<46} {name:<8} {s['median']:>9.1f} {s['p10']:>7.1f} "
                  f"{s['p90']:>7.1f} {tail}")
    print("\nthe server alone (Python client, fresh connection each), median ms:")
    results["server_requests"] = {}
    for label in requests:
        st = {n: stats(server_ms[label][n]) for n in PEERS}
        results["server_requests"][label] = st
        print(f"  {label:<28} minirun {st['minirun']['median']:6.2f}   "
              f"dockerd {st['dockerd']['median']:6.2f}")
    fs = stats(floor)
    results["cli_floor"] = fs
    print(f"the client alone: `docker --version` (no request) median {fs['median']:.1f} ms")
    return results


if __name__ == "__main__":
    sys.exit(main())
