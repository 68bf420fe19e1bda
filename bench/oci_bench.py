#!/usr/bin/env python3
"""Side-by-side benchmark of OCI runtimes (minirun-oci, runc, crun) on one bundle.

    sudo bench/oci_bench.py [--runs N] [--runtimes minirun-oci,runc,crun] [--json FILE]
    sudo bench/oci_bench.py --runtimes minirun-oci,runc,old=/var/tmp/old/.venv/bin/minirun-oci

A runtime given as LABEL=PATH is that binary under that label: another install of minirun-oci
(an older commit: `git worktree add /var/tmp/old REV && /var/tmp/old/scripts/setup`), to see
in one run whether a change made the runtime slower.

Every runtime runs the same bundle: a busybox rootfs from scripts/build-rootfs and runc's default
config.json with terminal false, args ["/bin/true"] and hostname "bench". Each gets its own
temporary state directory (`RT --root DIR ...`). Two scenarios, the order of the runtimes rotating
from round to round so none is always first:

  create+start+delete   `create --bundle B ID`, `start ID`, `delete --force ID`: the three calls
                        timed together and one by one
  run                   `run --bundle B ID` (foreground, stdin and stdout /dev/null); a container
                        the runtime left behind is removed with an untimed `delete --force`

  verbs                 on a created container: `state ID` and `kill ID 0` (a signal that
                        only checks the process exists) timed, then `start ID` and
                        `delete ID` untimed; each round also times `python -IS -c pass` of
                        minirun-oci's interpreter, the floor of any minirun-oci call, so the
                        floor and the verbs share the machine's load

Each runtime is probed once first (create, start, delete); one that fails is skipped, with the first
line of its error (crun 1.8.1 refuses every container on a hybrid cgroup v1+v2 host). Results: median,
p10 and p90 in ms and the ratio of the median to runc's. Python stdlib only; run as root.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MINIRUN_OCI = REPO / ".venv" / "bin" / "minirun-oci"
BUILD_ROOTFS = REPO / "scripts" / "build-rootfs"
DEFAULT_RUNTIMES = "minirun-oci,runc,crun"
BASELINE = "runc"
CALL_TIMEOUT = 60  # seconds; a call that takes longer counts as a failure
SCENARIOS = ("create+start+delete", "run")
VERBS = ("state", "kill 0")
FLOOR = "python -IS -c pass"
CALLS = ("create", "start", "delete")


class CallFailed(Exception):
    pass


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


class Runtime:
    """One runtime binary with a private --root; remembers containers that may still exist."""

    def __init__(self, name: str, binary: str, root: Path, scratch: Path) -> None:
        self.name = name
        self.binary = binary
        self.root = root
        self.live: set[str] = set()
        # Output goes to regular files, not pipes: the container's init inherits create's stdout
        # and stderr and keeps them open until it exits, so reading a pipe to EOF would hang.
        self.out = open(scratch / f"{name}.out", "w+b")
        self.err = open(scratch / f"{name}.err", "w+b")

    def call(self, *args: str, stdout_devnull: bool = False) -> tuple[int, int, str]:
        """Run `RT --root R args...`: (exit status, wall time in ns, output for error messages)."""
        for f in (self.out, self.err):
            f.seek(0)
            f.truncate()
        cmd = [self.binary, "--root", str(self.root), *args]
        # No `timeout=` on the wait: Popen.wait(timeout) polls with growing sleeps, which rounds
        # every measurement up to its polling step. A blocking waitpid plus a watchdog timer
        # measures the call itself.
        t0 = time.perf_counter_ns()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL if stdout_devnull else self.out,
                             stderr=self.err)
        watchdog = threading.Timer(CALL_TIMEOUT, p.kill)
        watchdog.start()
        rc = p.wait()
        ns = time.perf_counter_ns() - t0
        timed_out = not watchdog.is_alive()
        watchdog.cancel()
        if timed_out:
            return -1, ns, f"timed out after {CALL_TIMEOUT} s: {' '.join(args)}"
        if rc == 0:
            return rc, ns, ""
        msgs = []
        for f in (self.err, self.out):
            f.seek(0)
            msgs.append(f.read().decode(errors="replace"))
        return rc, ns, first_line(msgs[0]) or first_line(msgs[1]) or f"exit status {rc}"

    def must(self, *args: str, **kw) -> int:
        rc, ns, msg = self.call(*args, **kw)
        if rc != 0:
            raise CallFailed(f"{args[0]}: {msg}")
        return ns

    def create(self, bundle: Path, cid: str) -> int:
        self.live.add(cid)  # before the call: an interrupted create may leave something
        return self.must("create", "--bundle", str(bundle), cid)

    def delete(self, cid: str) -> int:
        ns = self.must("delete", "--force", cid)
        self.live.discard(cid)
        return ns

    def exists(self, cid: str) -> bool:
        return self.call("state", cid)[0] == 0

    def cleanup(self) -> None:
        for cid in sorted(self.live):
            self.call("delete", "--force", cid)
        self.live.clear()
        for f in (self.out, self.err):
            f.close()

    def version(self) -> str:
        try:
            r = subprocess.run([self.binary, "--version"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"? ({e})"
        line = first_line(r.stdout) or first_line(r.stderr) or "?"
        for prefix in (f"{self.name} version ", f"{Path(self.binary).name} version "):
            if line.startswith(prefix):
                return line[len(prefix):]
        return line


def resolve(name: str) -> tuple[str | None, str]:
    """(binary, why-not) for a runtime name: minirun-oci from the checkout's venv, LABEL=PATH
    that binary, others from PATH."""
    if "=" in name:
        path = name.split("=", 1)[1]
        return (path, "") if os.access(path, os.X_OK) else (None, f"{path} is not executable")
    if name == "minirun-oci":
        if os.access(MINIRUN_OCI, os.X_OK):
            return str(MINIRUN_OCI), ""
        return None, f"{MINIRUN_OCI} not found (run scripts/setup as root)"
    path = shutil.which(name)
    if path:
        return path, ""
    return None, f"`{name}` not found on PATH"


def host_facts(runtimes: list[Runtime]) -> dict:
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        cgroups = "v2"
    elif os.path.isdir("/sys/fs/cgroup/unified"):
        cgroups = "hybrid v1+v2"
    else:
        cgroups = "v1"
    return {
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "cpus": os.cpu_count(),
        "cgroups": cgroups,
        "runtimes": {rt.name: {"binary": rt.binary, "version": rt.version()} for rt in runtimes},
    }


def make_bundle(bundle: Path, spec_from: list[Runtime]) -> str:
    """Rootfs from scripts/build-rootfs; config.json from `runc spec` (or another runtime's), edited."""
    r = subprocess.run([str(BUILD_ROOTFS), str(bundle / "rootfs")], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"oci_bench: scripts/build-rootfs failed: {first_line(r.stderr) or r.returncode}")
    errors = []
    for rt in spec_from:
        r = subprocess.run([rt.binary, "spec"], cwd=bundle, capture_output=True, text=True)
        if r.returncode == 0 and (bundle / "config.json").exists():
            source = f"{rt.name} spec"
            break
        errors.append(f"{rt.name} spec: {first_line(r.stderr) or r.returncode}")
    else:
        sys.exit("oci_bench: no runtime could write a config.json: " + "; ".join(errors or ["none found"]))
    path = bundle / "config.json"
    cfg = json.loads(path.read_text())
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["/bin/true"]
    cfg["hostname"] = "bench"
    path.write_text(json.dumps(cfg, indent=2))
    return source


def probe(rt: Runtime, bundle: Path) -> str:
    """'' if create/start/delete works, else the first line of the error."""
    cid = f"bench-probe-{rt.name}"
    try:
        rt.create(bundle, cid)
        rt.must("start", cid)
        rt.delete(cid)
    except CallFailed as e:
        rt.call("delete", "--force", cid)
        if not rt.exists(cid):
            rt.live.discard(cid)
        return str(e)
    return ""


def stats(samples_ns: list[int]) -> dict:
    ms = sorted(x / 1e6 for x in samples_ns)
    if len(ms) >= 2:
        q = statistics.quantiles(ms, n=10, method="inclusive")
        p10, p90 = q[0], q[-1]
    else:
        p10 = p90 = ms[0]
    return {"median": statistics.median(ms), "p10": p10, "p90": p90, "n": len(ms),
            "samples_ms": [round(x, 3) for x in ms]}


def rounds(active: list[Runtime], runs: int):
    """(round, runtime) pairs; the order of the runtimes rotates by one each round."""
    for i in range(runs):
        k = i % len(active) if active else 0
        for rt in active[k:] + active[:k]:
            yield i, rt


def bench_create_start_delete(active: list[Runtime], bundle: Path, runs: int,
                              failed: dict[str, str]) -> dict[str, dict[str, list[int]]]:
    samples = {rt.name: {"total": [], **{c: [] for c in CALLS}} for rt in active}
    dead: set[str] = set()
    for i, rt in rounds(active, runs):
        if rt.name in dead:
            continue
        cid = f"bench-csd-{rt.name}-{i}"
        try:
            t0 = time.perf_counter_ns()
            c = rt.create(bundle, cid)
            s = rt.must("start", cid)
            d = rt.delete(cid)
            total = time.perf_counter_ns() - t0
        except CallFailed as e:
            failed[f"create+start+delete/{rt.name}"] = f"round {i + 1}: {e}"
            print(f"  {rt.name}: {e}; dropped from this scenario", file=sys.stderr)
            dead.add(rt.name)
            continue
        for key, ns in (("total", total), ("create", c), ("start", s), ("delete", d)):
            samples[rt.name][key].append(ns)
    return samples


def bench_run(active: list[Runtime], bundle: Path, runs: int,
              failed: dict[str, str]) -> tuple[dict[str, list[int]], dict[str, int]]:
    samples: dict[str, list[int]] = {rt.name: [] for rt in active}
    leftovers = {rt.name: 0 for rt in active}
    dead: set[str] = set()
    for i, rt in rounds(active, runs):
        if rt.name in dead:
            continue
        cid = f"bench-run-{rt.name}-{i}"
        rt.live.add(cid)
        rc, ns, msg = rt.call("run", "--bundle", str(bundle), cid, stdout_devnull=True)
        # Untimed: a runtime that does not remove the container itself gets a delete --force.
        if rt.exists(cid):
            leftovers[rt.name] += 1
            rt.call("delete", "--force", cid)
        if not rt.exists(cid):
            rt.live.discard(cid)
        if rc != 0:
            failed[f"run/{rt.name}"] = f"round {i + 1}: `{rt.name} run` failed: {msg}"
            print(f"  {rt.name}: run failed: {msg}; dropped from this scenario", file=sys.stderr)
            dead.add(rt.name)
            continue
        samples[rt.name].append(ns)
    return samples, leftovers


def bench_verbs(active: list[Runtime], bundle: Path, runs: int,
                failed: dict[str, str]) -> dict[str, dict[str, list[int]]]:
    """`state` and `kill ID 0` of a created container, and the interpreter floor, per round."""
    python = str(REPO / ".venv" / "bin" / "python3")
    samples: dict[str, dict[str, list[int]]] = {rt.name: {v: [] for v in VERBS} for rt in active}
    floor: list[int] = []
    dead: set[str] = set()
    for i, rt in rounds(active, runs):
        if rt.name in dead:
            continue
        cid = f"bench-verbs-{rt.name}-{i}"
        try:
            rt.create(bundle, cid)
            st = rt.must("state", cid)
            k = rt.must("kill", cid, "0")
            rt.must("start", cid)
            rt.delete(cid)
        except CallFailed as e:
            failed[f"verbs/{rt.name}"] = f"round {i + 1}: {e}"
            print(f"  {rt.name}: {e}; dropped from this scenario", file=sys.stderr)
            dead.add(rt.name)
            continue
        samples[rt.name]["state"].append(st)
        samples[rt.name]["kill 0"].append(k)
        if rt.name == "minirun-oci":
            t = time.perf_counter_ns()
            rc = subprocess.run([python, "-IS", "-c", "pass"], stdin=subprocess.DEVNULL).returncode
            if rc == 0:
                floor.append(time.perf_counter_ns() - t)
    if floor:
        samples[FLOOR] = {"floor": floor}
    return samples


def fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def bench_floor(active: list[Runtime], runs: int) -> dict:
    """The cheapest possible call of each runtime, alternating: `state` of a missing container
    (parse flags, look, fail) and, for minirun-oci, a bare `python -IS -c pass` of its
    interpreter. It shows how much of a short verb is interpreter start-up."""
    cmds: dict[str, list[str]] = {}
    for rt in active:
        cmds[f"{rt.name} state <none>"] = [str(rt.binary), "--root", str(rt.root), "state",
                                           "no-such-container"]
    if any(rt.name == "minirun-oci" for rt in active):
        cmds["python -IS -c pass"] = [str(REPO / ".venv" / "bin" / "python3"), "-IS", "-c", "pass"]
    samples: dict[str, list[float]] = {k: [] for k in cmds}
    for i in range(runs):
        order = list(cmds.items())
        for key, argv in order[i % len(order):] + order[:i % len(order)]:
            t = time.perf_counter_ns()
            subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            samples[key].append(time.perf_counter_ns() - t)
    return {k: stats(v) for k, v in samples.items()}


def report(results: dict, names: list[str]) -> None:
    print()
    print(f"{'scenario':<21} {'runtime':<12} {'median ms':>9} {'p10':>8} {'p90':>8} {'vs runc':>8} {'n':>4}")
    for scenario in SCENARIOS:
        for name in names:
            r = results["scenarios"][scenario].get(name)
            if not r or not r["total"]["n"]:
                continue
            t = r["total"]
            print(f"{scenario:<21} {name:<12} {t['median']:>9.1f} {t['p10']:>8.1f} {t['p90']:>8.1f} "
                  f"{fmt_ratio(t.get('ratio')):>8} {t['n']:>4}")
    csd = results["scenarios"]["create+start+delete"]
    verbs = results["scenarios"].get("verbs") or {}
    fl = (verbs.get(FLOOR) or {}).get("floor")
    rows = [n for n in names if n in verbs or (n in csd and csd[n]["total"]["n"])]
    if rows or fl:
        print()
        print("per call, median ms (p10-p90), ratio to runc, and above the floor"
              + (f" (`{FLOOR}` {fl['median']:.1f} ms, same rounds)" if fl else ""))
        print(f"{'runtime':<12}" + "".join(f" {c:>32}" for c in (*CALLS, *VERBS)))
        for name in rows:
            cells = []
            for c in (*CALLS, *VERBS):
                src = csd.get(name, {}) if c in CALLS else verbs.get(name, {})
                s = src.get(c)
                if not s or not s["n"]:
                    cells.append("-")
                    continue
                above = f" {s['median'] - fl['median']:+.1f}" if fl else ""
                cells.append(f"{s['median']:.1f} ({s['p10']:.1f}-{s['p90']:.1f}) "
                             f"{fmt_ratio(s.get('ratio'))}{above}")
            print(f"{name:<12}" + "".join(f" {x:>32}" for x in cells))
    floor = results.get("floor") or {}
    if floor:
        print()
        print("floor (the cheapest call): " + ", ".join(f"{k} {v['median']:.1f} ms"
                                                       for k, v in floor.items()))
    run = results["scenarios"]["run"]
    left = [f"{n} {run[n]['left_behind']}/{run[n]['total']['n']}" for n in names
            if n in run and run[n].get("left_behind")]
    if left:
        print(f"\nrun left the container behind (removed untimed): {', '.join(left)}")
    for name, why in results["skipped"].items():
        print(f"skipped {name}: {why}")
    for key, why in results["failed"].items():
        print(f"failed {key}: {why}")


def add_ratios(per_runtime: dict[str, dict], keys: tuple[str, ...]) -> None:
    base = per_runtime.get(BASELINE)
    for r in per_runtime.values():
        for k in keys:
            if base and base[k]["n"] and r[k]["n"] and base[k]["median"] > 0:
                r[k]["ratio"] = r[k]["median"] / base[k]["median"]
            else:
                r[k]["ratio"] = None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=30, help="rounds per scenario (default 30)")
    ap.add_argument("--runtimes", default=DEFAULT_RUNTIMES,
                    help=f"comma-separated runtimes to compare (default {DEFAULT_RUNTIMES})")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    if os.geteuid() != 0:
        print("oci_bench: run as root (the runtimes create namespaces, mounts and cgroups)",
              file=sys.stderr)
        return 1
    names = list(dict.fromkeys(n.strip() for n in args.runtimes.split(",") if n.strip()))
    if not names:
        ap.error("--runtimes is empty")

    tmp = Path(tempfile.mkdtemp(prefix="oci-bench."))
    all_rts: list[Runtime] = []
    results: dict = {"host": None, "config_from": None, "runs": args.runs, "skipped": {}, "failed": {},
                     "scenarios": {s: {} for s in SCENARIOS}}
    rc = 0
    try:
        (tmp / "scratch").mkdir()
        for name in names:
            binary, why = resolve(name)
            if binary is None:
                results["skipped"][name] = why
                print(f"skipping {name}: {why}", file=sys.stderr)
                continue
            name = name.split("=", 1)[0]
            all_rts.append(Runtime(name, binary, tmp / f"state-{name}", tmp / "scratch"))

        facts = host_facts(all_rts)
        results["host"] = facts
        vers = ", ".join(f"{n} {v['version']}" for n, v in facts["runtimes"].items()) or "none"
        print(f"host: kernel {facts['kernel']}, python {facts['python']}, {facts['cpus']} CPUs, "
              f"cgroups {facts['cgroups']}; {vers}")

        bundle = tmp / "bundle"
        bundle.mkdir()
        # runc's spec first (the reference), then whichever other runtime can write one.
        spec_from = sorted(all_rts, key=lambda rt: rt.name != BASELINE)
        if not spec_from:
            print("oci_bench: no runtime to benchmark", file=sys.stderr)
            report(results, [n.split("=", 1)[0] for n in names])
            return 1
        results["config_from"] = make_bundle(bundle, spec_from)
        print(f"bundle: {bundle} (config.json from `{results['config_from']}`, args /bin/true)")

        active: list[Runtime] = []
        for rt in all_rts:
            err = probe(rt, bundle)
            if err:
                results["skipped"][rt.name] = err
                print(f"skipping {rt.name}: probe failed: {err}", file=sys.stderr)
            else:
                active.append(rt)
        if not active:
            print("oci_bench: every runtime failed its probe", file=sys.stderr)
            report(results, [n.split("=", 1)[0] for n in names])
            return 1

        print(f"timing {', '.join(rt.name for rt in active)}: {args.runs} rounds per scenario",
              file=sys.stderr)
        csd = bench_create_start_delete(active, bundle, args.runs, results["failed"])
        keys = ("total",) + CALLS
        out = results["scenarios"]["create+start+delete"]
        for name, per in csd.items():
            if per["total"]:
                out[name] = {k: stats(per[k]) for k in keys}
        add_ratios(out, keys)

        run, leftovers = bench_run(active, bundle, args.runs, results["failed"])
        out = results["scenarios"]["run"]
        for name, samples in run.items():
            if samples:
                out[name] = {"total": stats(samples), "left_behind": leftovers[name]}
        add_ratios(out, ("total",))

        per = bench_verbs(active, bundle, args.runs, results["failed"])
        out = results["scenarios"]["verbs"] = {}
        for name, byverb in per.items():
            out[name] = {k: stats(v) for k, v in byverb.items() if v}
        add_ratios({n: r for n, r in out.items() if n != FLOOR and set(VERBS) <= set(r)}, VERBS)

        results["floor"] = bench_floor(active, args.runs)
        report(results, [n.split("=", 1)[0] for n in names])
        if results["failed"]:
            rc = 1
    except KeyboardInterrupt:
        print("\noci_bench: interrupted, cleaning up", file=sys.stderr)
        rc = 130
    finally:
        # A second Ctrl-C must not stop the clean-up half way.
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for rt in all_rts:
                rt.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, old)

    if args.json and rc != 130:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
