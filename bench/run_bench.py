#!/usr/bin/env python3
"""`run --rm IMAGE true`, end to end: minirun vs podman vs Docker vs runc, side by side.

    sudo .venv/bin/python bench/run_bench.py [--runs 30] [--json FILE] [--no-docker]
                                             [--baseline /var/tmp/old/.venv/bin/minirun]

The same image everywhere: scripts/build-image's busybox, loaded into minirun (`minirun load`),
into podman's private storage (`podman pull oci:DIR:latest`, overlay driver, runc, cgroupfs:
benchlib.podman_env), into a private dockerd (`docker load` of the docker-archive `minirun save`
writes), and unpacked once as a plain OCI bundle for runc. Each round runs, in rotating order:

  minirun          `minirun run --rm --network none busybox true`  (image lookup, overlay
                   rootfs, bundle, monitor, OCI create/start, wait, delete, unmount, remove)
  podman           `podman run --rm --network none busybox true`  (conmon + runc)
  minirun-bridge   `minirun run --rm busybox true` on the default bridge (+ veth, address,
                   route, NAT table)
  podman-bridge    `podman run --rm busybox true` on podman's default network (netavark)
  docker           `docker run --rm --network none busybox true` (docker CLI 28 -> dockerd
                   20.10 -> containerd -> shim -> runc)
  docker-bridge    `docker run --rm busybox true` on Docker's default bridge network
  runc             `runc run --bundle B ID`  (the OCI runtime alone, no image: the floor)
  baseline         with --baseline, another install's minirun launcher (an older commit:
                   `git worktree add /var/tmp/old REV && /var/tmp/old/scripts/setup`), the
                   minirun scenario with its own root: did a change make `run` slower?

Docker is Debian's docker.io (`apt-get install docker.io`; the bench installs nothing and says
so when dockerd is missing). The bench starts its own dockerd (benchlib.Dockerd): --data-root,
--exec-root, --pidfile and socket in the temp dir, a cgroup parent of its own, and a bridge the
bench makes (bdk<tag>, a free 10.213.X.0/24) with dockerd's own iptables rules, but
--ip-forward=false (dockerd would otherwise set the FORWARD policy to DROP for every bridge on
this shared machine; forwarding is a daemon start cost, not a per-run one). All of it, the
bridge, the rules and chains dockerd added and the iptables-nft tables if it made them, is
removed at the end whatever happens (errors, Ctrl-C, SIGTERM).

Every call's exit code is checked (benchlib.Caller: a blocking wait, a watchdog; a peer's fast
failure is an error, not a time). Then the medians, p10/p90, each one's ratio to podman's and
to Docker's median in the same network mode, the median of minirun's network setup alone
(veth + address + route + NAT table, timed in-process on a throw-away namespace),
and the RSS of a minirun monitor holding a `sleep` (VmRSS; the target is <= 15 MB each).
Everything is made in a temp dir and removed on exit, podman's network rules and IPv4
forwarding put back as they were, and the host (links, nft, iptables, mounts, cgroups,
sysctls) compared before and after; nothing leaves this machine.
"""

from __future__ import annotations

import argparse
import hashlib
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

from benchlib import (DOCKER, STOPS, BenchError, Caller, Dockerd, firewall_restore,
                      firewall_snapshot, host_report, host_state, on_sigterm, podman_env, stats,
                      stopped, unmount_under)

REPO = Path(__file__).resolve().parents[1]
MINIRUN = REPO / ".venv" / "bin" / "minirun"
NAMES = ["minirun", "baseline", "podman", "docker", "runc", "minirun-bridge", "podman-bridge",
         "docker-bridge"]


def network_setup(tmp: Path, runs: int) -> dict:
    """Time minirun's per-container network setup on throw-away namespaces (in-process): the
    veth, address, route and NAT table (`lo` is the runtime's init's, not timed here)."""
    sys.path.insert(0, str(REPO))
    from minirun.network import bridge, nat
    from minirun.network.networks import Networks

    nets = Networks(str(tmp / "net-root"))
    net = nets.create("benchnet")
    runroot = str(tmp / "net-run")
    os.makedirs(runroot, exist_ok=True)
    bridge.ensure(net, runroot)
    xs = []
    try:
        for i in range(runs):
            holder = subprocess.Popen(["unshare", "--net", "sleep", "30"])
            while os.readlink(f"/proc/{holder.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
                time.sleep(0.001)
            t = time.perf_counter_ns()
            ip = nets.allocate(net, f"c{i}")
            bridge.attach(holder.pid, f"c{i:063d}", net, ip, "eth0", bridge.host_mtu())
            nat.apply([net], [nat.Published("tcp", "", 20000 + i, ip, 80)], nets.nat_table)
            xs.append((time.perf_counter_ns() - t) / 1e6)
            holder.kill()
            holder.wait()
            nets.release(net.Name, f"c{i}")
    finally:
        nat.apply([], [], nets.nat_table)
        bridge.remove(net, runroot, [net.Bridge])
    return stats(xs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--no-docker", action="store_true", help="leave Docker out")
    ap.add_argument("--baseline", help="another install's minirun launcher, run side by side")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("run_bench: run as root", file=sys.stderr)
        return 1
    if args.runs < 1:
        print("run_bench: --runs must be >= 1", file=sys.stderr)
        return 1
    before = host_state()
    # podman names an `oci:DIR` image after DIR, which must then be a valid reference:
    # mkdtemp's random part can put "_" next to a "." or "-", which is not. Short: socket paths.
    tag = secrets.token_hex(4)
    tmp = Path(tempfile.gettempdir()) / f"run-bench-{tag}"
    tmp.mkdir(mode=0o700)
    signal.signal(signal.SIGTERM, on_sigterm)
    state = State(tmp, tag, args.baseline)
    results: dict = {"runs": args.runs, "scenarios": {}, "skipped": {}}
    rc = 0
    try:
        bench(args, state, results)
    except STOPS as e:
        rc = stopped("run_bench", e)
    finally:
        state.cleanup()
    mr_tags = [hashlib.sha256(str(tmp / r).encode()).hexdigest()[:10]  # minirun's root_tag
               for r in ("mr-root", "net-root", "base-root")]
    ours = "|".join(["docker", "containerd", "DOCKER", "NETAVARK", "podman0", r"10\.88\.",
                     r"10\.213\.", re.escape(str(tmp)), tag, *mr_tags])
    left = (state.dockerd.firewall_left if state.dockerd else []) + state.podman_left
    mine = host_report(before, [ours], results,
                       [f"iptables rule not removed: {x}" for x in left])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return rc or (1 if mine else 0)


class State:
    """What the bench made, and its idempotent undoing (signals held off meanwhile)."""

    def __init__(self, tmp: Path, tag: str, baseline: str | None = None) -> None:
        self.tmp, self.tag, self.baseline = tmp, tag, baseline
        self.base_env = {k: v for k, v in os.environ.items()
                         if not k.startswith(("MINIRUN_", "CONTAINERS_", "DOCKER_"))}
        self.mr_env = dict(self.base_env, MINIRUN_ROOT=str(tmp / "mr-root"),
                           MINIRUN_RUNROOT=str(tmp / "mr-run"))
        self.bl_env = dict(self.base_env, MINIRUN_ROOT=str(tmp / "base-root"),
                           MINIRUN_RUNROOT=str(tmp / "base-run")) if baseline else None
        self.pm_env: dict | None = None
        self.dockerd: Dockerd | None = None
        self.firewall_before = firewall_snapshot()
        self.forward_before = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
        self.podman0_before = os.path.exists("/sys/class/net/podman0")
        self.podman_left: list[str] = []
        self.done = False

    def cleanup(self) -> None:
        if self.done:
            return
        self.done = True
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        q = {"capture_output": True, "timeout": 120}
        try:
            if self.dockerd:
                self.dockerd.cleanup()
            for argv, env in (([str(MINIRUN), "system", "prune", "-a", "-f"], self.mr_env),
                              ([str(MINIRUN), "network", "prune", "-f"], self.mr_env),
                              ([str(self.baseline), "system", "prune", "-a", "-f"], self.bl_env),
                              (["podman", "rm", "-af"], self.pm_env),
                              (["podman", "system", "reset", "-f"], self.pm_env),
                              (["runc", "--root", str(self.tmp / "runc-state"), "delete", "-f",
                                "rb"], self.base_env)):
                if env is not None:
                    try:
                        subprocess.run(argv, env=env, **q)
                    except (OSError, subprocess.TimeoutExpired):
                        pass
            if self.pm_env is not None:
                # netavark leaves its chains and rules (iptables-nft) and podman0 behind
                self.podman_left = firewall_restore(
                    self.firewall_before, re.compile(r"NETAVARK|podman0|10\.88\."))
                if not self.podman0_before:
                    subprocess.run(["ip", "link", "del", "podman0"], capture_output=True)
            Path("/proc/sys/net/ipv4/ip_forward").write_text(self.forward_before + "\n")
            unmount_under(self.tmp)
            shutil.rmtree(self.tmp, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)


def bench(args, st: State, results: dict) -> None:
    tmp, skipped = st.tmp, results["skipped"]
    call = Caller(tmp)
    runtimes: dict[str, list[str]] = {}
    envs: dict[str, dict] = {}
    layout = tmp / "image"
    call.run([str(REPO / "scripts" / "build-image"), str(layout)], st.base_env)
    call.run([str(MINIRUN), "load", "-i", str(layout)], st.mr_env)
    runtimes["minirun"] = [str(MINIRUN), "run", "--rm", "--network", "none", "busybox", "true"]
    runtimes["minirun-bridge"] = [str(MINIRUN), "run", "--rm", "busybox", "true"]
    envs["minirun"] = envs["minirun-bridge"] = st.mr_env
    if st.baseline:
        call.run([st.baseline, "load", "-i", str(layout)], st.bl_env)
        runtimes["baseline"] = [st.baseline, "run", "--rm", "--network", "none", "busybox", "true"]
        envs["baseline"] = st.bl_env

    if shutil.which("podman"):
        st.pm_env = podman_env(tmp / "pm", st.base_env)
        rc, _, out, err = call.run(["podman", "pull", "-q", f"oci:{layout}:latest"], st.pm_env,
                                   check=False)
        if rc == 0:
            image = out.strip().splitlines()[-1]
            runtimes["podman"] = ["podman", "run", "--rm", "--network", "none", image, "true"]
            runtimes["podman-bridge"] = ["podman", "run", "--rm", image, "true"]
            envs["podman"] = envs["podman-bridge"] = st.pm_env
        else:
            skipped["podman"] = err.strip().splitlines()[-1] if err.strip() else "pull failed"
    else:
        skipped["podman"] = "not installed (apt-get install podman)"

    if args.no_docker:
        skipped["docker"] = "--no-docker"
    elif not shutil.which("dockerd"):
        skipped["docker"] = "dockerd not installed (apt-get install docker.io)"
    elif not os.access(DOCKER, os.X_OK):
        skipped["docker"] = f"no docker CLI at {DOCKER}"
    else:
        st.dockerd = Dockerd(tmp / "dk", st.tag, st.base_env, bridge=True,
                             cgroup_name=f"run-bench-{st.tag}")
        try:
            st.dockerd.start()
            dk_env = st.dockerd.client_env(tmp / "dk-cfg")
            call.run([str(MINIRUN), "save", "busybox", "-o", str(tmp / "bb.tar")], st.mr_env)
            call.run([DOCKER, "load", "-q", "-i", str(tmp / "bb.tar")], dk_env)
            runtimes["docker"] = [DOCKER, "run", "--rm", "--network", "none", "busybox", "true"]
            runtimes["docker-bridge"] = [DOCKER, "run", "--rm", "busybox", "true"]
            envs["docker"] = envs["docker-bridge"] = dk_env
            v = call.run([DOCKER, "version", "--format", "{{.Server.Version}}"], dk_env)[2]
            results["dockerd_version"] = v.strip()
            results["dockerd_bridge"] = f"{st.dockerd.bridge} {st.dockerd.subnet}"
        except BenchError as e:
            skipped["docker"] = f"dockerd: {e}"

    if shutil.which("runc"):
        bundle = tmp / "bundle"
        (bundle / "rootfs").mkdir(parents=True)
        call.run([str(REPO / "scripts" / "build-rootfs"), str(bundle / "rootfs")], st.base_env)
        call.run(["runc", "spec"], st.base_env, cwd=bundle)
        cfg = json.loads((bundle / "config.json").read_text())
        cfg["process"].update(terminal=False, args=["/bin/true"])
        (bundle / "config.json").write_text(json.dumps(cfg))
        runtimes["runc"] = ["runc", "--root", str(tmp / "runc-state"), "run", "--bundle",
                            str(bundle), "rb"]
        envs["runc"] = st.base_env
    else:
        skipped["runc"] = "not installed"

    names = [n for n in NAMES if n in runtimes]
    for name in names:  # warm caches once, untimed; checked like every call
        call.run(runtimes[name], envs[name])
    samples: dict[str, list[float]] = {n: [] for n in names}
    for i in range(args.runs):
        order = names[i % len(names):] + names[:i % len(names)]
        for name in order:
            samples[name].append(call.run(runtimes[name], envs[name])[1])

    print(f"`run --rm busybox true`, {args.runs} rounds, rotating order (kernel "
          f"{os.uname().release}, {os.cpu_count()} CPUs"
          + (f"; dockerd {results['dockerd_version']}, bridge {results['dockerd_bridge']}"
             if "dockerd_version" in results else "") + ")\n")
    print(f"{'runtime':<15} {'median ms':>10} {'p10':>8} {'p90':>8} {'vs podman':>10} "
          f"{'vs Docker':>10}")
    for name in names:
        s = stats(samples[name])
        bridge = name.endswith("bridge")
        for peer in ("podman", "docker"):
            ref = f"{peer}-bridge" if bridge else peer
            s[f"ratio_to_{peer}"] = (s["median"] / stats(samples[ref])["median"]
                                     if samples.get(ref) else None)
        results["scenarios"][name] = s
        cols = [f"{s[k]:.2f}x" if s[k] else "-" for k in ("ratio_to_podman", "ratio_to_docker")]
        print(f"{name:<15} {s['median']:>10.1f} {s['p10']:>8.1f} {s['p90']:>8.1f} "
              f"{cols[0]:>10} {cols[1]:>10}")
    if samples.get("baseline"):
        r = stats(samples["minirun"])["median"] / stats(samples["baseline"])["median"]
        results["ratio_to_baseline"] = r
        print(f"\nminirun vs baseline ({args.baseline}): {r:.3f}x")
    setup = network_setup(tmp, args.runs)
    results["network_setup_ms"] = setup
    print(f"\nminirun network setup alone (veth, address, route, NAT table): "
          f"median {setup['median']:.1f} ms (p10 {setup['p10']:.1f}, p90 {setup['p90']:.1f})")

    cid = call.run([str(MINIRUN), "run", "-d", "busybox", "sleep", "60"], st.mr_env)[2].strip()
    rec = json.loads((tmp / "mr-root" / "containers" / cid / "container.json").read_text())
    with open(f"/proc/{rec['state']['monitor_pid']}/status") as f:
        rss = next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS"))
    results["monitor_rss_kb"] = rss
    print(f"\nminirun monitor RSS (holding a sleep): {rss / 1024:.1f} MB")
    call.run([str(MINIRUN), "rm", "-f", cid], st.mr_env)
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")


if __name__ == "__main__":
    sys.exit(main())
