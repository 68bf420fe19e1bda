#!/usr/bin/env python3
"""`run --rm IMAGE true`, end to end: minirun vs podman vs runc, side by side.

    sudo .venv/bin/python bench/run_bench.py [--runs 30] [--json FILE]

The same image everywhere: scripts/build-image's busybox, loaded into minirun (`minirun load`)
and into podman's private storage (`podman pull oci:DIR:latest`, overlay driver, runc, cgroupfs,
--network none), and unpacked once as a plain OCI bundle for runc. Each round runs, in rotating
order:

  minirun          `minirun run --rm --network none busybox true`  (image lookup, overlay
                   rootfs, bundle, monitor, OCI create/start, wait, delete, unmount, remove)
  podman           `podman run --rm --network none busybox true`  (conmon + runc)
  minirun-bridge   `minirun run --rm busybox true` on the default bridge (+ veth, address,
                   route, NAT table)
  podman-bridge    `podman run --rm busybox true` on podman's default network (netavark)
  runc             `runc run --bundle B ID`  (the OCI runtime alone, no image: the floor)

Then the medians, p10/p90, each one's ratio to podman's median in the same network mode, the
median of minirun's network setup alone (veth + address + route + loopback + NAT table, timed
in-process on a throw-away namespace), and the RSS of a minirun monitor holding a `sleep`
(VmRSS; the target is <= 15 MB each). Everything is made in a temp dir and removed on exit,
podman's network rules and IPv4 forwarding put back as they were; nothing leaves this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MINIRUN = REPO / ".venv" / "bin" / "minirun"


def timed(argv: list[str], env: dict, timeout: float = 120) -> float:
    t = time.perf_counter_ns()
    r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=timeout)
    dt = (time.perf_counter_ns() - t) / 1e6
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}...: exit {r.returncode}: "
                           f"{r.stderr.decode(errors='replace').strip()[:300]}")
    return dt


def stats(xs: list[float]) -> dict:
    xs = sorted(xs)
    q = statistics.quantiles(xs, n=10, method="inclusive") if len(xs) > 1 else [xs[0]] * 9
    return {"median": statistics.median(xs), "p10": q[0], "p90": q[-1], "n": len(xs)}


def network_setup(tmp: Path, runs: int) -> dict:
    """Time minirun's per-container network setup on throw-away namespaces (in-process)."""
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
            bridge.loopback_up(holder.pid, f"c{i:011d}")
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
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("run_bench: run as root", file=sys.stderr)
        return 1
    # podman names an `oci:DIR` image after DIR, which must then be a valid reference:
    # mkdtemp's random part can put "_" next to a "." or "-", which is not.
    tmp = Path(tempfile.gettempdir()) / f"run-bench-{secrets.token_hex(4)}"
    tmp.mkdir(mode=0o700)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("MINIRUN_", "CONTAINERS_"))}
    mr_env = dict(base_env, MINIRUN_ROOT=str(tmp / "mr-root"), MINIRUN_RUNROOT=str(tmp / "mr-run"))
    pm_env = dict(base_env, CONTAINERS_CONF=str(tmp / "containers.conf"),
                  CONTAINERS_STORAGE_CONF=str(tmp / "storage.conf"))
    runtimes: dict[str, list[str]] = {}
    skipped: dict[str, str] = {}
    results: dict = {"runs": args.runs, "scenarios": {}, "skipped": skipped}
    nft_before = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    forward_before = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    try:
        layout = tmp / "image"
        subprocess.run([str(REPO / "scripts" / "build-image"), str(layout)], check=True,
                       capture_output=True)
        subprocess.run([str(MINIRUN), "load", "-i", str(layout)], env=mr_env, check=True,
                       capture_output=True)
        runtimes["minirun"] = [str(MINIRUN), "run", "--rm", "--network", "none", "busybox", "true"]
        runtimes["minirun-bridge"] = [str(MINIRUN), "run", "--rm", "busybox", "true"]

        if shutil.which("podman"):
            (tmp / "containers.conf").write_text(
                '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n'
                '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
                'runtime = "runc"\n')
            (tmp / "storage.conf").write_text(
                f'[storage]\ndriver = "overlay"\nrunroot = "{tmp}/pm-run"\n'
                f'graphroot = "{tmp}/pm-root"\n')
            r = subprocess.run(["podman", "pull", "-q", f"oci:{layout}:latest"], env=pm_env,
                               capture_output=True, text=True)
            if r.returncode == 0:
                image = r.stdout.strip().splitlines()[-1]
                runtimes["podman"] = ["podman", "run", "--rm", "--network", "none", image, "true"]
                runtimes["podman-bridge"] = ["podman", "run", "--rm", image, "true"]
            else:
                skipped["podman"] = r.stderr.strip().splitlines()[-1] if r.stderr else "pull failed"
        else:
            skipped["podman"] = "not installed"

        if shutil.which("runc"):
            bundle = tmp / "bundle"
            (bundle / "rootfs").mkdir(parents=True)
            subprocess.run([str(REPO / "scripts" / "build-rootfs"), str(bundle / "rootfs")],
                           check=True, capture_output=True)
            subprocess.run(["runc", "spec"], cwd=bundle, check=True)
            cfg = json.loads((bundle / "config.json").read_text())
            cfg["process"].update(terminal=False, args=["/bin/true"])
            (bundle / "config.json").write_text(json.dumps(cfg))
            runtimes["runc"] = ["runc", "--root", str(tmp / "runc-state"), "run", "--bundle",
                                str(bundle), "rb"]
        else:
            skipped["runc"] = "not installed"

        envs = {"minirun": mr_env, "minirun-bridge": mr_env, "podman": pm_env,
                "podman-bridge": pm_env, "runc": base_env}
        for name, argv in runtimes.items():  # warm caches once, untimed
            timed(argv, envs[name])
        samples: dict[str, list[float]] = {n: [] for n in runtimes}
        names = list(runtimes)
        for i in range(args.runs):
            order = names[i % len(names):] + names[:i % len(names)]
            for name in order:
                samples[name].append(timed(runtimes[name], envs[name]))

        print(f"`run --rm busybox true`, {args.runs} rounds (kernel {os.uname().release}, "
              f"{os.cpu_count()} CPUs)\n")
        print(f"{'runtime':<15} {'median ms':>10} {'p10':>8} {'p90':>8} {'vs podman':>10}")
        for name in names:
            s = stats(samples[name])
            ref = "podman-bridge" if name.endswith("bridge") else "podman"
            base = statistics.median(samples[ref]) if samples.get(ref) else None
            s["ratio_to_podman"] = s["median"] / base if base else None
            results["scenarios"][name] = s
            ratio = f"{s['ratio_to_podman']:.2f}x" if base else "-"
            print(f"{name:<15} {s['median']:>10.1f} {s['p10']:>8.1f} {s['p90']:>8.1f} {ratio:>10}")
        setup = network_setup(tmp, args.runs)
        results["network_setup_ms"] = setup
        print(f"\nminirun network setup alone (veth, address, route, lo, NAT table): "
              f"median {setup['median']:.1f} ms (p10 {setup['p10']:.1f}, p90 {setup['p90']:.1f})")

        cid = subprocess.run([str(MINIRUN), "run", "-d", "busybox", "sleep", "60"], env=mr_env,
                             check=True, capture_output=True, text=True).stdout.strip()
        rec = json.loads((tmp / "mr-root" / "containers" / cid / "container.json").read_text())
        with open(f"/proc/{rec['state']['monitor_pid']}/status") as f:
            rss = next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS"))
        results["monitor_rss_kb"] = rss
        print(f"\nminirun monitor RSS (holding a sleep): {rss / 1024:.1f} MB")
        subprocess.run([str(MINIRUN), "rm", "-f", cid], env=mr_env, capture_output=True)
        for name, why in skipped.items():
            print(f"skipped {name}: {why}")
    finally:
        subprocess.run([str(MINIRUN), "system", "prune", "-a", "-f"], env=mr_env,
                       capture_output=True)
        if "podman" in runtimes:
            subprocess.run(["podman", "rm", "-af"], env=pm_env, capture_output=True)
            subprocess.run(["podman", "system", "reset", "-f"], env=pm_env, capture_output=True)
        subprocess.run(["runc", "--root", str(tmp / "runc-state"), "delete", "-f", "rb"],
                       capture_output=True)
        subprocess.run([str(MINIRUN), "network", "prune", "-f"], env=mr_env, capture_output=True)
        restore_host(nft_before, forward_before)
        for m in reversed([ln.split()[4] for ln in open("/proc/self/mountinfo")
                           if ln.split()[4].startswith(str(tmp))]):
            subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def restore_host(nft_before: str, forward_before: str) -> None:
    """Podman's netavark leaves its chains (tables ip nat / ip filter) and IPv4 forwarding on:
    delete the tables that were not there before, and put ip_forward back."""
    for table in ("nat", "filter"):
        if f"table ip {table} " not in nft_before:
            subprocess.run(["nft", "delete", "table", "ip", table], capture_output=True)
    Path("/proc/sys/net/ipv4/ip_forward").write_text(forward_before + "\n")
    subprocess.run(["ip", "link", "del", "podman0"], capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
