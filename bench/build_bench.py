#!/usr/bin/env python3
"""`build`: a cold build and a fully cached rebuild of one Dockerfile, minirun vs podman (buildah).

    sudo .venv/bin/python bench/build_bench.py [--cold 5] [--cached 10] [--json FILE]

The Dockerfile (below) starts FROM the offline busybox image (scripts/build-image, loaded into
minirun and pulled into a private podman storage), has two RUNs and two COPYs of a 200-file
context, and metadata steps. Both builders use RUN --network none, podman with the overlay
driver and runc, cgroupfs.

  cold     `build --no-cache -t bench:cold CONTEXT`: every step runs
  cached   `build -t bench:cached CONTEXT` after one untimed build: every step from the cache

Rounds alternate between the builders. Medians, p10/p90 and minirun/podman ratios. Everything
is made in a temp dir and removed; podman's storage is reset.
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
DOCKERFILE = """\
FROM {base}
ENV APP=/app LANG=C.UTF-8
WORKDIR /app
COPY src/ ./src/
RUN mkdir out && for f in src/*; do wc -c "$f" >> out/sizes; done
COPY config.txt .
RUN echo built > out/done && cat config.txt >> out/done
LABEL org.example.bench=yes
EXPOSE 8080
CMD ["cat", "out/sizes"]
"""


def timed(argv: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    dt = (time.perf_counter() - t0) * 1000
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])}: {(r.stderr or r.stdout).strip()[-500:]}")
    return dt


def stats(xs: list[float]) -> dict:
    q = statistics.quantiles(xs, n=10, method="inclusive") if len(xs) > 1 else [xs[0], xs[0]]
    return {"median": statistics.median(xs), "p10": q[0], "p90": q[-1], "n": len(xs)}


def make_context(d: Path, base: str) -> None:
    (d / "src").mkdir(parents=True)
    for i in range(200):
        (d / "src" / f"f{i:03}.txt").write_text(f"file {i}\n" * (i % 50 + 1))
    (d / "config.txt").write_text("key=value\n")
    (d / "Dockerfile").write_text(DOCKERFILE.format(base=base))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cold", type=int, default=5)
    ap.add_argument("--cached", type=int, default=10)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("build_bench: run as root", file=sys.stderr)
        return 1
    # podman names an `oci:DIR` image after DIR, which must then be a valid reference:
    # mkdtemp's random part can put "_" next to a "." or "-", which is not.
    tmp = Path(tempfile.gettempdir()) / f"build-bench-{secrets.token_hex(4)}"
    tmp.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MINIRUN_", "CONTAINERS_"))}
    mr = dict(env, MINIRUN_ROOT=str(tmp / "mr-root"), MINIRUN_RUNROOT=str(tmp / "mr-run"))
    pm = dict(env, CONTAINERS_CONF=str(tmp / "containers.conf"),
              CONTAINERS_STORAGE_CONF=str(tmp / "storage.conf"))
    results: dict = {"cold_rounds": args.cold, "cached_rounds": args.cached, "builders": {}}
    try:
        layout = tmp / "image"
        subprocess.run([str(REPO / "scripts" / "build-image"), str(layout)], check=True,
                       capture_output=True)
        subprocess.run([str(MINIRUN), "load", "-i", str(layout)], env=mr, check=True,
                       capture_output=True)
        builders = {"minirun": (str(MINIRUN), mr, "busybox")}
        if shutil.which("podman"):
            (tmp / "containers.conf").write_text(
                '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n'
                '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nruntime = "runc"\n')
            (tmp / "storage.conf").write_text(
                f'[storage]\ndriver = "overlay"\nrunroot = "{tmp}/pm-run"\ngraphroot = "{tmp}/pm-root"\n')
            r = subprocess.run(["podman", "pull", "-q", f"oci:{layout}:latest"], env=pm,
                               capture_output=True, text=True)
            if r.returncode == 0:
                builders["podman"] = ("podman", pm, r.stdout.strip().splitlines()[-1])
            else:
                print(f"podman skipped: {r.stderr.strip()[-200:]}", file=sys.stderr)
        contexts = {}
        for name, (_, _, base) in builders.items():
            contexts[name] = tmp / f"ctx-{name}"
            make_context(contexts[name], base)

        def argv(name: str, *flags: str) -> list[str]:
            exe = builders[name][0]
            return [exe, "build", "--network", "none", *flags, str(contexts[name])]

        cold = {n: [] for n in builders}
        cached = {n: [] for n in builders}
        names = list(builders)
        for i in range(args.cold):
            for n in names[i % len(names):] + names[:i % len(names)]:
                cold[n].append(timed(argv(n, "--no-cache", "-t", "bench:cold"), builders[n][1]))
        for n in names:  # fill the cache, untimed
            timed(argv(n, "-t", "bench:cached"), builders[n][1])
        for i in range(args.cached):
            for n in names[i % len(names):] + names[:i % len(names)]:
                cached[n].append(timed(argv(n, "-t", "bench:cached"), builders[n][1]))
        print(f"build of one Dockerfile (2 RUN, 2 COPY of 200 files, 5 metadata steps), kernel "
              f"{os.uname().release}, {os.cpu_count()} CPUs\n")
        print(f"{'builder':<9} {'cold median':>12} {'p10-p90':>16}   {'cached median':>14} "
              f"{'p10-p90':>14}")
        for n in names:
            c, h = stats(cold[n]), stats(cached[n])
            results["builders"][n] = {"cold": c, "cached": h}
            print(f"{n:<9} {c['median']:>9.0f} ms {c['p10']:>7.0f}-{c['p90']:<7.0f}   "
                  f"{h['median']:>11.0f} ms {h['p10']:>6.0f}-{h['p90']:<6.0f}")
        if "podman" in results["builders"]:
            m, p = results["builders"]["minirun"], results["builders"]["podman"]
            results["ratio_cold"] = m["cold"]["median"] / p["cold"]["median"]
            results["ratio_cached"] = m["cached"]["median"] / p["cached"]["median"]
            print(f"\nminirun/podman: cold {results['ratio_cold']:.2f}x, cached rebuild "
                  f"{results['ratio_cached']:.2f}x")
    finally:
        subprocess.run([str(MINIRUN), "system", "prune", "-a", "-f"], env=mr, capture_output=True)
        if shutil.which("podman"):
            subprocess.run(["podman", "system", "reset", "-f"], env=pm, capture_output=True)
        for m in reversed([ln.split()[4] for ln in open("/proc/self/mountinfo")
                           if ln.split()[4].startswith(str(tmp))]):
            subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
