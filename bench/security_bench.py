#!/usr/bin/env python3
"""What the hardening costs: minirun-oci vs runc on one bundle, with and without Docker's
seccomp profile and a user namespace, and the price of the filter per system call.

    sudo .venv/bin/python bench/security_bench.py [--runs 30] [--json FILE]

  start     `run --bundle B ID` of /bin/true, three bundles that differ only in linux:
              plain      runc's default config.json
              seccomp    + linux.seccomp: Docker's default profile for Docker's 14 capabilities
                         (minirun compiles it to BPF itself; runc through libseccomp)
              userns     + a user namespace mapping 0-65535 onto 300000-365535
            runtimes alternate round by round; medians, p10/p90, minirun/runc ratios
  syscall   bench/syscall_loop.c (built static) inside each runtime's seccomp container: ns per
            getppid (the kernel's action cache answers it) and per personality(0xffffffff)
            (an argument rule: the whole filter runs), against the same loop without a filter
  front end `minirun run --rm --network none busybox true` as Docker sets it up (seccomp and
            the rest), with --security-opt seccomp=unconfined, and with --userns=auto
            (idmapped layers); podman (runc) with its default profile and unconfined
Python stdlib plus minirun's own profile module; run as root; everything is made in a temp
directory and removed.
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
sys.path.insert(0, str(REPO))
MINIRUN_OCI = str(REPO / ".venv" / "bin" / "minirun-oci")
VARIANTS = ("plain", "seccomp", "userns")


def timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=60)
    dt = (time.perf_counter() - t0) * 1000
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:1] + argv[3:5])}: {r.stderr.decode().strip()[-300:]}")
    return dt


def stats(xs: list[float]) -> dict:
    q = statistics.quantiles(xs, n=10, method="inclusive") if len(xs) > 1 else [xs[0], xs[0]]
    return {"median": statistics.median(xs), "p10": q[0], "p90": q[-1], "n": len(xs)}


def make_bundles(tmp: Path) -> dict[str, Path]:
    from minirun.engine.bundle import DEFAULT_CAPS
    from minirun.engine.seccomp_profile import default_profile

    base = tmp / "plain"
    (base / "rootfs").mkdir(parents=True)
    subprocess.run([str(REPO / "scripts" / "build-rootfs"), str(base / "rootfs")], check=True,
                   capture_output=True)
    shutil.copy(tmp / "syscall_loop", base / "rootfs" / "bin" / "syscall_loop")
    subprocess.run(["runc", "spec"], cwd=base, check=True)
    cfg = json.loads((base / "config.json").read_text())
    cfg["process"].update(terminal=False, args=["/bin/true"])
    cfg["root"]["path"] = str(base / "rootfs")  # one rootfs for every bundle (absolute path)
    out = {}
    for v in VARIANTS:
        b = tmp / v
        b.mkdir(exist_ok=True)
        c = json.loads(json.dumps(cfg))
        if v == "seccomp":
            c["linux"]["seccomp"] = default_profile(DEFAULT_CAPS)
        if v == "userns":
            c["linux"]["namespaces"].append({"type": "user"})
            m = [{"containerID": 0, "hostID": 300000, "size": 65536}]
            c["linux"]["uidMappings"], c["linux"]["gidMappings"] = m, m
        (b / "config.json").write_text(json.dumps(c))
        out[v] = b
    return out


def syscall_costs(rt: dict[str, list[str]], bundles: dict[str, Path], tmp: Path) -> dict:
    """ns per call of the loop, median of 5 runs of 300k calls, in each runtime's containers."""
    res: dict = {}
    for name, argv0 in rt.items():
        for v in ("plain", "seccomp"):
            cfg = json.loads((bundles[v] / "config.json").read_text())
            for call in ("getppid", "personality"):
                cfg["process"]["args"] = ["/bin/syscall_loop", "300000", call]
                b = tmp / f"loop-{name}-{v}-{call}"
                b.mkdir()
                (b / "config.json").write_text(json.dumps(cfg))
                xs = []
                for i in range(5):
                    r = subprocess.run(argv0 + ["run", "--bundle", str(b), f"loop{i}"],
                                       capture_output=True, text=True, timeout=120)
                    xs.append(float(r.stdout.strip()))
                res[f"{name}/{v}/{call}"] = statistics.median(xs)
    return res


def front_end(tmp: Path, runs: int) -> dict:
    """`run --rm --network none busybox true`: minirun's variants against podman's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MINIRUN_", "CONTAINERS_"))}
    mr = dict(env, MINIRUN_ROOT=str(tmp / "mr-root"), MINIRUN_RUNROOT=str(tmp / "mr-run"))
    pm = dict(env, CONTAINERS_CONF=str(tmp / "containers.conf"),
              CONTAINERS_STORAGE_CONF=str(tmp / "storage.conf"))
    minirun = str(REPO / ".venv" / "bin" / "minirun")
    layout = tmp / "image"
    subprocess.run([str(REPO / "scripts" / "build-image"), str(layout)], check=True,
                   capture_output=True)
    subprocess.run([minirun, "load", "-i", str(layout)], env=mr, check=True, capture_output=True)
    base = ["run", "--rm", "--network", "none"]
    cases = {"minirun": ([minirun, *base, "busybox", "true"], mr),
             "minirun unconfined": ([minirun, *base, "--security-opt", "seccomp=unconfined",
                                     "busybox", "true"], mr),
             "minirun userns=auto": ([minirun, *base, "--userns=auto", "busybox", "true"], mr)}
    if shutil.which("podman"):
        (tmp / "containers.conf").write_text(
            '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n'
            '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nruntime = "runc"\n')
        (tmp / "storage.conf").write_text(f'[storage]\ndriver = "overlay"\nrunroot = '
                                          f'"{tmp}/pm-run"\ngraphroot = "{tmp}/pm-root"\n')
        r = subprocess.run(["podman", "pull", "-q", f"oci:{layout}:latest"], env=pm,
                           capture_output=True, text=True)
        if r.returncode == 0:
            image = r.stdout.strip().splitlines()[-1]
            cases["podman"] = (["podman", *base, image, "true"], pm)
            cases["podman unconfined"] = (["podman", *base, "--security-opt",
                                           "seccomp=unconfined", image, "true"], pm)
    try:
        for argv, e in cases.values():  # warm up, untimed (and the auto range is made)
            subprocess.run(argv, env=e, check=True, capture_output=True)
        samples: dict[str, list[float]] = {n: [] for n in cases}
        names = list(cases)
        for i in range(runs):
            for n in names[i % len(names):] + names[:i % len(names)]:
                argv, e = cases[n]
                t0 = time.perf_counter()
                subprocess.run(argv, env=e, check=True, capture_output=True)
                samples[n].append((time.perf_counter() - t0) * 1000)
        return {n: stats(xs) for n, xs in samples.items()}
    finally:
        subprocess.run([minirun, "system", "prune", "-a", "-f"], env=mr, capture_output=True)
        if "podman" in cases:
            subprocess.run(["podman", "system", "reset", "-f"], env=pm, capture_output=True)
        for m in reversed([ln.split()[4] for ln in open("/proc/self/mountinfo")
                           if ln.split()[4].startswith(str(tmp))]):
            subprocess.run(["umount", "-l", m], capture_output=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("runc") or not shutil.which("gcc"):
        print("security_bench: needs root, runc and gcc (scripts/setup installs them)",
              file=sys.stderr)
        return 1
    # podman names an `oci:DIR` image after DIR, which must then be a valid reference:
    # mkdtemp's random part can put "_" next to a "." or "-", which is not.
    tmp = Path(tempfile.gettempdir()) / f"security-bench-{secrets.token_hex(4)}"
    tmp.mkdir(mode=0o700)
    os.chmod(tmp, 0o755)  # the user-namespaced container's root must reach its rootfs
    results: dict = {"runs": args.runs, "start": {}, "syscall_ns": {}}
    rt = {"minirun-oci": [MINIRUN_OCI, "--root", str(tmp / "mr-state")],
          "runc": ["runc", "--root", str(tmp / "runc-state")]}
    try:
        subprocess.run(["gcc", "-static", "-O2", "-o", str(tmp / "syscall_loop"),
                        str(REPO / "bench" / "syscall_loop.c")], check=True)
        bundles = make_bundles(tmp)
        cases = [(n, v) for v in VARIANTS for n in rt]
        for n, v in cases:  # warm caches, untimed
            timed(rt[n] + ["run", "--bundle", str(bundles[v]), "warm"])
        samples: dict = {c: [] for c in cases}
        for i in range(args.runs):
            order = cases[i % len(cases):] + cases[:i % len(cases)]
            for n, v in order:
                samples[(n, v)].append(timed(rt[n] + ["run", "--bundle", str(bundles[v]), f"b{i}"]))
        print(f"`run` of /bin/true, {args.runs} rounds (kernel {os.uname().release}, "
              f"{os.cpu_count()} CPUs)\n")
        print(f"{'bundle':<9} {'minirun-oci ms':>15} {'runc ms':>9} {'ratio':>7}   "
              f"{'minirun p10-p90':>16} {'runc p10-p90':>14}")
        for v in VARIANTS:
            m, r = stats(samples[("minirun-oci", v)]), stats(samples[("runc", v)])
            results["start"][v] = {"minirun-oci": m, "runc": r, "ratio": m["median"] / r["median"]}
            print(f"{v:<9} {m['median']:>15.1f} {r['median']:>9.1f} "
                  f"{m['median'] / r['median']:>6.2f}x   {m['p10']:>7.1f}-{m['p90']:<8.1f} "
                  f"{r['p10']:>6.1f}-{r['p90']:<7.1f}")
        costs = syscall_costs(rt, bundles, tmp)
        results["syscall_ns"] = costs
        print("\nns per system call inside the container (median of 5 x 300k calls)")
        print(f"{'':<13} {'no filter':>10} {'minirun BPF':>12} {'runc (libseccomp)':>18}")
        for call in ("getppid", "personality"):
            print(f"{call:<13} {costs[f'minirun-oci/plain/{call}']:>10.1f} "
                  f"{costs[f'minirun-oci/seccomp/{call}']:>12.1f} "
                  f"{costs[f'runc/seccomp/{call}']:>18.1f}")
        saved = {p: Path(p).read_text() if os.path.exists(p) else None
                 for p in ("/etc/subuid", "/etc/subgid")}
        try:
            fe = front_end(tmp, args.runs)
        finally:
            for p, text in saved.items():  # --userns=auto may have added minirun's ranges
                if text is None:
                    Path(p).unlink(missing_ok=True)
                else:
                    Path(p).write_text(text)
        results["front_end"] = fe
        print(f"\n`run --rm --network none busybox true`, {args.runs} rounds")
        ref = fe.get("podman", {}).get("median")
        for n, st in fe.items():
            ratio = f"{st['median'] / ref:.2f}x" if ref else "-"
            print(f"{n:<21} {st['median']:>7.1f} ms  (p10 {st['p10']:.1f}, p90 {st['p90']:.1f})  "
                  f"vs podman {ratio}")
    finally:
        for argv0 in rt.values():
            r = subprocess.run(argv0 + ["list", "-q"], capture_output=True, text=True)
            for cid in r.stdout.split():
                subprocess.run(argv0 + ["delete", "-f", cid], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
