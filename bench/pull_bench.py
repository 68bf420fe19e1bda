#!/usr/bin/env python3
"""Pull + unpack of a large image from a local registry: minirun vs podman vs skopeo + umoci.

    sudo .venv/bin/python bench/pull_bench.py [--runs 3] [--layers 5] [--mb 120] [--files 5000]

The image is made here, deterministically (random.Random(seed)): `--layers` gzip layers holding
`--files` files in all (sizes log-uniform from 100 B to 256 KiB; half random bytes, half
compressible text) until about `--mb` MB of content, pushed by skopeo to Debian's
docker-registry on 127.0.0.1 (tests/registry/localregistry.py). Then, for each round (the order
of the tools rotating), one timed run of each:

  minirun         `minirun --root FRESH pull -q IMAGE` (store with fsync, as in production)
  podman          `podman pull -q --tls-verify=false IMAGE` into a fresh private storage
                  (CONTAINERS_STORAGE_CONF: overlay driver, graphroot in the temp dir), one
                  per run, each reset at the end
  skopeo+umoci    `skopeo copy docker://IMAGE oci:DIR:bench` then `umoci unpack`

Medians over the rounds and each tool's ratio to podman's median are printed (and --json FILE
writes them). Everything (registry process, temp dirs, podman storage and its mounts) is
removed on exit. Only 127.0.0.1 is contacted. Run as root (podman's overlay driver, umoci's
ownership).

What each run wrote (a minirun store, a podman storage, an umoci bundle: ~5000 files each) is
kept until the end, and each podman run gets a storage of its own. Removing it between runs
(--cleanup-each, what this bench did before) made every later run measure ext4 as much as the
tool: without a journal (this VM's root filesystem), ext4 will not reuse an inode freed in the
last 60 s (fs/ext4/ialloc.c, recently_deleted()), and every file creation scans past all of
them from the start of the block group. After one run's 5000 deletions, half of the next
run's CPU time was that scan (perf: ext4_create -> recently_deleted), whichever tool it was.
For the same reason the rounds start --settle seconds (60) after a sync: the previous bench's
cleanup, or any large deletion just before, would otherwise slow the first rounds.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "registry"))

import localregistry as lr  # noqa: E402

MINIRUN = REPO / ".venv" / "bin" / "minirun"
ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("MINIRUN_")}


def make_layers(n_layers: int, total_mb: int, n_files: int, seed: int = 42) -> list[bytes]:
    """Deterministic layer tars: ~total_mb MB of content in n_files files across n_layers."""
    rng = random.Random(seed)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
             for _ in range(2000)]
    budget = total_mb * 1_000_000
    per_layer_files = max(1, n_files // n_layers)
    # Log-uniform sizes, rescaled so the total comes out near the budget.
    sizes = [int(math.exp(rng.uniform(math.log(100), math.log(256 << 10)))) for _ in range(n_files)]
    scale = budget / sum(sizes)
    sizes = [max(1, int(s * scale)) for s in sizes]
    tars = []
    for layer in range(n_layers):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            dirs = set()
            for i in range(per_layer_files):
                k = layer * per_layer_files + i
                d = f"data/l{layer}/d{i % 50:02d}"
                for part in (d.split("/")[0], "/".join(d.split("/")[:2]), d):
                    if part not in dirs:
                        dirs.add(part)
                        info = tarfile.TarInfo(part)
                        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1700000000
                        tf.addfile(info)
                size = sizes[k] if k < len(sizes) else 100
                if i % 2:
                    data = rng.randbytes(size)
                else:
                    text = b" ".join(rng.choice(words) for _ in range(size // 5 + 1))
                    data = text[:size]
                info = tarfile.TarInfo(f"{d}/f{i:05d}.bin")
                info.size, info.mode, info.mtime = len(data), 0o644, 1700000000
                tf.addfile(info, io.BytesIO(data))
        tars.append(buf.getvalue())
    return tars


def timed(cmd: list[str], env: dict, **kw) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                       timeout=900, **kw)
    elapsed = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} -> {r.returncode}: {r.stderr.strip()[-500:]}")
    return elapsed


class Bench:
    def __init__(self, work: Path, image: str, cleanup_each: bool = False) -> None:
        self.work, self.image, self.cleanup_each = work, image, cleanup_each
        self.podman_dir = work / "podman"
        self.podman_dir.mkdir()
        (self.podman_dir / "containers.conf").write_text("""
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
""")
        (self.podman_dir / "auth.json").write_text('{"auths": {}}')
        self.podman_storages: list[Path] = []  # each podman run's, reset at the end
        self.n = 0

    def _fresh(self, name: str) -> Path:
        self.n += 1
        return self.work / f"{name}-{self.n}"

    def minirun(self) -> float:
        root = self._fresh("minirun")
        try:
            return timed([str(MINIRUN), "--root", str(root), "pull", "-q", self.image], ENV)
        finally:
            if self.cleanup_each:
                shutil.rmtree(root, ignore_errors=True)

    def podman_env(self, storage: Path) -> dict:
        return dict(ENV, CONTAINERS_STORAGE_CONF=str(storage / "storage.conf"),
                    CONTAINERS_CONF=str(self.podman_dir / "containers.conf"),
                    REGISTRY_AUTH_FILE=str(self.podman_dir / "auth.json"))

    def podman(self) -> float:
        storage = self._fresh("podman")
        storage.mkdir()
        (storage / "storage.conf").write_text(f"""
[storage]
driver = "overlay"
runroot = "{storage}/runroot"
graphroot = "{storage}/root"
""")
        self.podman_storages.append(storage)
        try:
            return timed(["podman", "pull", "-q", "--tls-verify=false", self.image],
                         self.podman_env(storage))
        finally:
            if self.cleanup_each:
                self.podman_storages.remove(storage)
                self.podman_reset(storage)

    def podman_reset(self, storage: Path) -> None:
        env = self.podman_env(storage)
        subprocess.run(["podman", "rmi", "-af"], capture_output=True, env=env,
                       stdin=subprocess.DEVNULL, timeout=300)
        subprocess.run(["podman", "system", "reset", "-f"], capture_output=True,
                       env=env, stdin=subprocess.DEVNULL, timeout=300)
        for d in ("root", "runroot"):
            path = storage / d
            subprocess.run(["umount", "-R", str(path)], capture_output=True)
            shutil.rmtree(path, ignore_errors=True)

    def cleanup(self) -> None:
        """Every podman storage reset (its mounts gone); the rest goes with the work dir."""
        while self.podman_storages:
            self.podman_reset(self.podman_storages.pop())

    def skopeo_umoci(self) -> float:
        d = self._fresh("umoci")
        d.mkdir()
        try:
            t = timed(["skopeo", "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false",
                       "--src-no-creds", f"docker://{self.image}", f"oci:{d}/layout:bench"],
                      dict(ENV, REGISTRY_AUTH_FILE=str(d / "auth.json")))
            t += timed(["umoci", "unpack", "--image", f"{d}/layout:bench", str(d / "bundle")], ENV)
            return t
        finally:
            if self.cleanup_each:
                shutil.rmtree(d, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--mb", type=int, default=120)
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--settle", type=float, default=60,
                    help="seconds to wait (after a sync) before the first round (default 60)")
    ap.add_argument("--cleanup-each", action="store_true",
                    help="remove each run's output right after it (the old behaviour: later runs "
                         "then also measure ext4's scan past recently deleted inodes)")
    args = ap.parse_args()
    for tool in ("docker-registry", "skopeo", "podman", "umoci"):
        if not shutil.which(tool):
            print(f"pull_bench: {tool} not installed", file=sys.stderr)
            return 2

    work = Path(tempfile.mkdtemp(prefix="minirun-pull-bench-"))
    reg = None
    bench = None
    try:
        t0 = time.perf_counter()
        tars = make_layers(args.layers, args.mb, args.files)
        layout = lr.Layout(work / "layout")
        desc = layout.image(tars, "amd64")
        layout.tag(desc, "big")
        compressed = sum(len(layout.blobs[d["digest"]]) for d in
                         json.loads(layout.blobs[desc["digest"]])["layers"])
        print(f"image: {args.layers} layers, {args.files} files, "
              f"{sum(len(t) for t in tars) / 1e6:.1f} MB of tar, {compressed / 1e6:.1f} MB gzip "
              f"(built in {time.perf_counter() - t0:.1f}s)", flush=True)
        del tars
        reg = lr.LocalRegistry(work / "registry").start()
        image = f"{reg.host}/bench/big:latest"
        lr.skopeo_copy(layout.path, "big", image)
        bench = Bench(work, image, args.cleanup_each)
        if args.settle > 0:
            subprocess.run(["sync"])
            print(f"settling {args.settle:.0f}s (ext4 without a journal avoids inodes freed in the "
                  "last 60 s: see the docstring)", flush=True)
            time.sleep(args.settle)
        tools = {"minirun": bench.minirun, "podman": bench.podman, "skopeo+umoci": bench.skopeo_umoci}
        times: dict[str, list[float]] = {t: [] for t in tools}
        names = list(tools)
        for rnd in range(args.runs):
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            for name in order:
                subprocess.run(["sync"])
                t = tools[name]()
                times[name].append(t)
                print(f"round {rnd + 1}: {name:<13} {t:7.2f}s", flush=True)
        medians = {t: statistics.median(v) for t, v in times.items()}
        print(f"\n{'tool':<14}{'median':>9}{'vs podman':>11}   runs")
        for t, m in medians.items():
            print(f"{t:<14}{m:8.2f}s{m / medians['podman']:10.2f}x   "
                  + " ".join(f"{x:.2f}" for x in times[t]))
        if args.json:
            Path(args.json).write_text(json.dumps({"times": times, "medians": medians}, indent=1))
        return 0
    finally:
        if bench is not None:
            bench.cleanup()
        if reg is not None:
            reg.stop()
        for d in work.glob("podman-*"):
            subprocess.run(["umount", "-R", str(d / "root")], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
