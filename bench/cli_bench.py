#!/usr/bin/env python3
"""Everyday commands, this checkout against another minirun install, podman and Docker.

    sudo .venv/bin/python bench/cli_bench.py [--baseline /var/tmp/old/.venv/bin/minirun]
                                             [--podman] [--docker] [--runs 30]

Did a change slow the front end down, and how far is it from the issue's 35 ms and from
podman and Docker? Each peer gets private state with the same busybox image (`minirun save`
from the default root, or scripts/build-image, then `load`) and one exited container with a
line in its log (`run --name bench1 --network none busybox echo hello`):

  this       this checkout's minirun, --root/--runroot in the temp dir
  baseline   another install's minirun launcher (--baseline), the same way
  podman     podman 4.3 with private storage, runc, cgroupfs (benchlib.podman_env, as
             run_bench sets it up); the image by `podman load`
  docker     the docker CLI 28 against a private dockerd 20.10 (benchlib.Dockerd, --bridge=none:
             nothing outside the temp dir); the image by `docker load`

Then, round by round with the peers in rotating order, each times `ps -a`, `images`, `inspect
bench1`, `logs bench1`, `network ls`, `volume ls`, `version` and `--help` (a blocking wait, exit codes
checked: benchlib.Caller). Prints medians, p10/p90 for this checkout, whether it is within
35 ms (issue 18), and each peer's median with the ratio this / peer. Everything is removed at
the end, Ctrl-C and SIGTERM included (minirun's default network bridge never exists: nothing
runs; dockerd, its containerd and all they made are stopped and removed).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import (DOCKER, STOPS, Caller, Dockerd, on_sigterm, podman_env, stats, stopped,
                      unmount_under)

REPO = Path(__file__).resolve().parents[1]
COMMANDS = [["ps", "-a"], ["images"], ["inspect", "bench1"], ["logs", "bench1"],
            ["network", "ls"], ["volume", "ls"], ["version"], ["--help"]]
TARGET_MS = 35  # issue 18: every everyday command


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
    ap.add_argument("--baseline", help="another install's minirun launcher")
    ap.add_argument("--podman", action="store_true", help="podman with private storage")
    ap.add_argument("--docker", action="store_true",
                    help="the docker CLI against a private dockerd (apt-get install docker.io)")
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    if args.runs < 1:
        print("cli_bench: --runs must be >= 1", file=sys.stderr)
        return 1
    for flag, tool in (("--podman", "podman"), ("--docker", "dockerd"), ("--docker", DOCKER)):
        if getattr(args, flag[2:]) and not shutil.which(tool):
            hint = {"podman": "apt-get install podman",
                    "dockerd": "apt-get install docker.io"}.get(tool, "the docker CLI")
            print(f"cli_bench: {flag}: {tool} not found ({hint})", file=sys.stderr)
            return 1
    signal.signal(signal.SIGTERM, on_sigterm)
    scratch = Path(tempfile.mkdtemp(prefix="cli-bench-", dir="/tmp"))  # short: socket paths
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MINIRUN_", "CONTAINERS_", "DOCKER_"))}
    # name: (argv prefix, env)
    peers: dict[str, tuple[list[str], dict]] = {}
    for name, exe in (("this", str(REPO / ".venv" / "bin" / "minirun")),
                      ("baseline", args.baseline)):
        if exe:
            peers[name] = ([exe, "--root", str(scratch / name), "--runroot",
                            str(scratch / f"{name}-run")], env)
    pm_env: dict | None = None
    dockerd: Dockerd | None = None
    call = Caller(scratch)
    try:
        tar = image_tar(scratch)
        if args.podman:
            pm_env = podman_env(scratch / "pm", env)
            peers["podman"] = (["podman"], pm_env)
        if args.docker:
            dockerd = Dockerd(scratch / "dk", secrets.token_hex(4), env)
            dockerd.start()
            peers["docker"] = ([DOCKER], dockerd.client_env(scratch / "dk-cfg"))
        for name, (pre, penv) in peers.items():
            call.run([*pre, "load", "-i", str(tar)], penv)
            call.run([*pre, "run", "--name", "bench1", "--network", "none", "busybox",
                      "echo", "hello"], penv)
        for cmd in COMMANDS:  # warm-up, untimed, checked
            for name, (pre, penv) in peers.items():
                call.run([*pre, *cmd], penv)
        names = list(peers)
        times: dict[tuple[str, str], list[float]] = {}
        for i in range(args.runs):
            order = names[i % len(names):] + names[:i % len(names)]
            for cmd in COMMANDS:
                for name in order:
                    pre, penv = peers[name]
                    _, ms, _, _ = call.run([*pre, *cmd], penv)
                    times.setdefault((" ".join(cmd), name), []).append(ms)
        others = names[1:]
        print(f"{args.runs} rounds, rotating order; kernel {os.uname().release}, "
              f"{os.cpu_count()} CPUs"
              + (f"; dockerd's containerd: {dockerd.containerd_note}" if dockerd else "") + "\n")
        print(f"{'command':14} {'this ms':>8} {'p10':>6} {'p90':>6} {'<=35':>5}"
              + "".join(f" {n:>9} {'ratio':>6}" for n in others))
        for cmd in COMMANDS:
            key = " ".join(cmd)
            a = stats(times[(key, "this")])
            row = (f"{key:14} {a['median']:8.1f} {a['p10']:6.1f} {a['p90']:6.1f} "
                   f"{'yes' if a['median'] <= TARGET_MS else 'NO':>5}")
            for n in others:
                b = stats(times[(key, n)])
                row += f" {b['median']:9.1f} {a['median'] / b['median']:5.2f}x"
            print(row)
        return 0
    except STOPS as e:
        return stopped("cli_bench", e)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if dockerd:
            dockerd.cleanup()
        for name, (pre, penv) in peers.items():
            if name in ("this", "baseline"):
                subprocess.run([*pre, "rm", "-f", "bench1"], env=penv, capture_output=True)
        if pm_env:
            for argv in (["podman", "rm", "-af"], ["podman", "system", "reset", "-f"]):
                subprocess.run(argv, env=pm_env, capture_output=True)
        unmount_under(scratch)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
