#!/usr/bin/env python3
"""Everyday commands, this checkout against another minirun install, side by side in one run.

    sudo .venv/bin/python bench/cli_bench.py --baseline /var/tmp/old/.venv/bin/minirun [--runs 30]

Did a change slow the front end down? Each install gets a private --root with the same busybox
image (`minirun save` from the default root, or scripts/build-image, then `load`) and one
stopped container; then, round by round in alternating order, each times `ps -a`, `images`,
`inspect` of the container, `network ls`, `volume ls`, `version` and `--help` (a blocking wait,
exit codes checked: lib Caller). Prints medians, p10/p90 and the ratio to the baseline. The
roots are removed at the end (their default network's bridge never exists: nothing runs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import BenchError, Caller, on_sigterm, stats

REPO = Path(__file__).resolve().parents[1]
COMMANDS = [["ps", "-a"], ["images"], ["inspect", "bench1"], ["network", "ls"],
            ["volume", "ls"], ["version"], ["--help"]]


def image_tar(scratch: Path) -> Path:
    """busybox as a docker-archive, from the default root or built by scripts/build-image."""
    tar = scratch / "busybox.tar"
    mine = str(REPO / ".venv" / "bin" / "minirun")
    r = subprocess.run([mine, "save", "busybox", "-o", str(tar)], capture_output=True)
    if r.returncode != 0:
        subprocess.run([str(REPO / "scripts" / "build-image"), str(scratch / "img")], check=True,
                       capture_output=True)
        subprocess.run([mine, "--root", str(scratch / "seed"), "load", "-i",
                        str(scratch / "img")], check=True, capture_output=True)
        subprocess.run([mine, "--root", str(scratch / "seed"), "save", "busybox", "-o",
                        str(tar)], check=True, capture_output=True)
    return tar


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, help="another install's minirun launcher")
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)
    scratch = Path(tempfile.mkdtemp(prefix="minirun-cli-bench-", dir="/var/tmp"))
    installs = {"this": str(REPO / ".venv" / "bin" / "minirun"), "baseline": args.baseline}
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINIRUN_")}
    call = Caller(scratch)
    try:
        tar = image_tar(scratch)
        for name, exe in installs.items():
            root = ["--root", str(scratch / name), "--runroot", str(scratch / f"{name}-run")]
            call.run([exe, *root, "load", "-i", str(tar)], env)
            call.run([exe, *root, "create", "--name", "bench1", "--network", "none", "busybox",
                      "true"], env)
        times: dict[tuple[str, str], list[float]] = {}
        for i in range(args.runs):
            order = list(installs.items()) if i % 2 == 0 else list(installs.items())[::-1]
            for cmd in COMMANDS:
                for name, exe in order:
                    root = ["--root", str(scratch / name), "--runroot",
                            str(scratch / f"{name}-run")]
                    _, ms, _, _ = call.run([exe, *root, *cmd], env)
                    times.setdefault((" ".join(cmd), name), []).append(ms)
        print(f"{args.runs} rounds, alternating; kernel {os.uname().release}, "
              f"{os.cpu_count()} CPUs\n")
        print(f"{'command':14} {'this ms':>9} {'p10':>7} {'p90':>7} {'baseline':>9} {'ratio':>7}")
        for cmd in COMMANDS:
            key = " ".join(cmd)
            a, b = stats(times[(key, "this")]), stats(times[(key, "baseline")])
            print(f"{key:14} {a['median']:9.1f} {a['p10']:7.1f} {a['p90']:7.1f} "
                  f"{b['median']:9.1f} {a['median'] / b['median']:6.2f}x")
        return 0
    except BenchError as e:
        print(f"cli_bench: {e}", file=sys.stderr)
        return 1
    finally:
        for name, exe in installs.items():
            subprocess.run([exe, "--root", str(scratch / name), "--runroot",
                            str(scratch / f"{name}-run"), "rm", "-f", "bench1"],
                           capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
