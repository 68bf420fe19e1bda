#!/usr/bin/env python3
"""100 containers on two cores: issue 18's "Scale" targets, on a private root.

    sudo .venv/bin/python bench/scale_bench.py [--count 100] [--parallel 50] [--no-bridge]
                                               [--cycles 3] [--json FILE]

Everything on a private --root/--runroot in a temp dir (MINIRUN_ROOT, MINIRUN_RUNROOT), busybox
loaded from a `minirun save busybox` of the default root (or scripts/build-image if the default
root lacks it). In order:

  1. `run -d --network none busybox sleep 3600` --count times in sequence, --cycles times
     (all but the last sequence removed again): each call's time; the median of every
     sequence's first 10 against that of every sequence's last 10 (target: the last no slower
     than the first, 10%). One sequence alone measures this VM's drift as much as the 100th
     container: its speed moves by 10-15% over the 7-12 s one takes.
  2. with --count running: `ps` and `ps -a`, 20 calls each after one untimed (target <= 40 ms)
  3. memory per running container: every process that appeared with the containers and is
     not in a container's own PID namespace (the monitor, and anything else a container
     leaves on the host), grouped by name; RSS and PSS from /proc/PID/smaps_rollup, per
     container median and total (targets <= 5 MB PSS, <= 10 MB RSS)
  4. --parallel `run -d` at once (a thread pool of subprocesses): failures (all must
     succeed; the first error line), wall time
  5. `rm -f` of the --count in one call (as `docker rm -f $(docker ps -aq)`), wall time
     (target <= 2 s); then `rm -f` of the --parallel ones
  6. (unless --no-bridge) steps 1 and 5 again on the default bridge network

Every call's exit code is checked (benchlib.Caller, or the pool's own checks). Everything is
removed at the end whatever happens (errors, Ctrl-C, SIGTERM): containers (`rm -f` of `ps -aq`),
images, `network prune`, mounts under the temp dir, the temp dir; then the host (links, nft,
iptables, mounts, cgroups, sysctls) is compared with before.
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
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchlib import (STOPS, Caller, error_line, host_report, host_state, on_sigterm, stats,
                      stopped, unmount_under)

REPO = Path(__file__).resolve().parents[1]
MINIRUN = REPO / ".venv" / "bin" / "minirun"
TARGETS = {"ps_ms": 40, "pss_mb": 5, "rss_mb": 10, "rm_s": 2, "run_ratio": 1.10}


def ok(good: bool) -> str:
    return "ok  " if good else "MISS"


class State:
    """What the bench made, and its idempotent undoing (signals held off meanwhile)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.base_env = {k: v for k, v in os.environ.items() if not k.startswith("MINIRUN_")}
        self.env = dict(self.base_env, MINIRUN_ROOT=str(tmp / "root"),
                        MINIRUN_RUNROOT=str(tmp / "run"))
        self.done = False

    def mr(self, *args: str) -> list[str]:
        return [str(MINIRUN), *args]

    def cleanup(self) -> None:
        if self.done:
            return
        self.done = True
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        q = {"capture_output": True, "timeout": 300, "env": self.env, "text": True}
        try:
            try:
                ids = subprocess.run(self.mr("ps", "-aq"), **q).stdout.split()
                if ids:
                    subprocess.run(self.mr("rm", "-f", *ids), **q)
                for argv in (self.mr("system", "prune", "-a", "-f"),
                             self.mr("network", "prune", "-f")):
                    subprocess.run(argv, **q)
            except (OSError, subprocess.TimeoutExpired):
                pass
            unmount_under(self.tmp)
            shutil.rmtree(self.tmp, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)


def load_busybox(st: State, call: Caller) -> str:
    tar = st.tmp / "bb.tar"
    rc, _, _, _ = call.run(st.mr("save", "busybox", "-o", str(tar)), st.base_env, check=False)
    if rc == 0:
        call.run(st.mr("load", "-i", str(tar)), st.env)
        return "`minirun save busybox` of the default root"
    layout = st.tmp / "image"
    call.run([str(REPO / "scripts" / "build-image"), str(layout)], st.base_env)
    call.run(st.mr("load", "-i", str(layout)), st.env)
    return "scripts/build-image (the default root has no busybox)"


def run_sequence(st: State, call: Caller, n: int, net: list[str]) -> tuple[list[str], list[float]]:
    ids, ms = [], []
    for _ in range(n):
        _, t, out, _ = call.run(st.mr("run", "-d", *net, "busybox", "sleep", "3600"), st.env)
        ids.append(out.strip().splitlines()[-1])
        ms.append(t)
    return ids, ms


def run_cycles(st: State, call: Caller, n: int, net: list[str], cycles: int
               ) -> tuple[list[str], list[list[float]]]:
    """`cycles` sequences of n `run -d`, each but the last removed again (untimed): the IDs
    of the last, and every sequence's times."""
    seqs = []
    for k in range(cycles):
        ids, ms = run_sequence(st, call, n, net)
        seqs.append(ms)
        if k < cycles - 1:
            call.run(st.mr("rm", "-f", *ids), st.env)
    return ids, seqs


def report_sequence(label: str, seqs: list[list[float]], res: dict) -> None:
    """The last sequence's times, each cycle's first-10 and last-10 medians, and the verdict on
    all cycles' firsts and lasts pooled: one sequence of 100 takes 7-12 s, and this VM's speed
    drifts by 10-15% over such spans, so one sequence's ratio says as much about the drift as
    about the 100th container (one evening's single runs: 1.01x to 1.19x)."""
    ms = seqs[-1]
    firsts = [x for s in seqs for x in s[:10]]
    lasts = [x for s in seqs for x in s[-10:]]
    first, last = statistics.median(firsts), statistics.median(lasts)
    ratio = last / first
    res.update(run_ms=seqs, first10_median=first, last10_median=last, ratio=ratio,
               cycle_ratios=[statistics.median(s[-10:]) / statistics.median(s[:10])
                             for s in seqs], all=stats(ms))
    print(f"{label}: {len(ms)} x `run -d ... sleep 3600` in sequence, {len(seqs)} time(s); "
          f"the last took {sum(ms) / 1000:.1f} s")
    for i in range(0, len(ms), 10):
        print(f"  #{i + 1:>3}-{min(i + 10, len(ms)):>3}: "
              + " ".join(f"{x:6.0f}" for x in ms[i:i + 10]) + " ms")
    print("  each sequence, last 10 / first 10: "
          + ", ".join(f"{r:.2f}x" for r in res["cycle_ratios"]))
    print(f"  median of the {len(firsts)} first, {first:.1f} ms; of the {len(lasts)} last, "
          f"{last:.1f} ms: {ratio:.2f}x   "
          f"[{ok(ratio <= TARGETS['run_ratio'])}] target <= {TARGETS['run_ratio']:.2f}x")


def timed_calls(st: State, call: Caller, argv: list[str], n: int) -> dict:
    call.run(argv, st.env)  # untimed, warms the page cache
    return stats([call.run(argv, st.env)[1] for _ in range(n)])


def procs() -> dict[int, str]:
    out = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/comm") as f:
                    out[int(p)] = f.read().strip()
            except OSError:
                pass
    return out


def smaps_rollup(pid: int) -> tuple[int, int]:
    """(RSS kB, PSS kB)."""
    rss = pss = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for ln in f:
            if ln.startswith("Rss:"):
                rss = int(ln.split()[1])
            elif ln.startswith("Pss:"):
                pss = int(ln.split()[1])
    return rss, pss


def memory(st: State, ids: list[str], before: dict[int, str], res: dict) -> None:
    host_pidns = os.readlink("/proc/self/ns/pid")
    recs = {}
    for cid in ids:
        rec = json.loads((st.tmp / "root" / "containers" / cid / "container.json").read_text())
        recs[cid] = rec["state"]
    monitors = {s["monitor_pid"]: cid for cid, s in recs.items()}
    own, extra = {}, {}  # pid -> comm
    for pid, comm in procs().items():
        if pid in before:
            continue
        try:
            ns = os.readlink(f"/proc/{pid}/ns/pid")
        except OSError:
            continue
        (own if ns != host_pidns else extra)[pid] = comm
    # each extra process is charged to the container whose monitor it descends from
    parent = {}
    for pid in extra:
        try:
            with open(f"/proc/{pid}/stat") as f:
                parent[pid] = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            parent[pid] = 0

    def owner(pid: int) -> str | None:
        seen = 0
        while pid and seen < 64:
            if pid in monitors:
                return monitors[pid]
            pid = parent.get(pid, 0)
            seen += 1
        return None

    per: dict[str, list[int]] = {cid: [0, 0] for cid in ids}
    kinds: dict[str, list] = {}
    unowned = []
    for pid, comm in extra.items():
        try:
            rss, pss = smaps_rollup(pid)
        except OSError:
            continue
        cid = owner(pid)
        k = kinds.setdefault(comm, [0, 0, 0])
        k[0] += 1
        k[1] += rss
        k[2] += pss
        if cid:
            per[cid][0] += rss
            per[cid][1] += pss
        else:
            unowned.append(f"{pid} {comm}")
    rss_med = statistics.median(v[0] for v in per.values()) / 1024
    pss_med = statistics.median(v[1] for v in per.values()) / 1024
    rss_tot = sum(v[0] for v in per.values()) / 1024
    pss_tot = sum(v[1] for v in per.values()) / 1024
    res.update(own_processes=len(own), host_processes={k: v for k, v in kinds.items()},
               rss_median_mb=rss_med, pss_median_mb=pss_med, rss_total_mb=rss_tot,
               pss_total_mb=pss_tot, unowned=unowned)
    print(f"memory with {len(ids)} running: {len(own)} processes in the containers' own PID "
          f"namespaces; on the host, per name (count, RSS total, PSS total):")
    for comm, (n, rss, pss) in sorted(kinds.items()):
        print(f"  {comm:<16} {n:>4}  RSS {rss / 1024:7.1f} MB  PSS {pss / 1024:7.1f} MB  "
              f"({rss / n / 1024:.1f} / {pss / n / 1024:.1f} MB each)")
    if unowned:
        print(f"  not under a monitor: {', '.join(unowned[:5])}")
    print(f"  per container, median: RSS {rss_med:.1f} MB "
          f"[{ok(rss_med <= TARGETS['rss_mb'])}] target <= {TARGETS['rss_mb']} MB; "
          f"PSS {pss_med:.1f} MB [{ok(pss_med <= TARGETS['pss_mb'])}] target <= "
          f"{TARGETS['pss_mb']} MB")
    print(f"  total for {len(ids)}: RSS {rss_tot:.0f} MB, PSS {pss_tot:.0f} MB")


def parallel_runs(st: State, n: int, res: dict) -> list[str]:
    argv = st.mr("run", "-d", "--network", "none", "busybox", "sleep", "3600")
    pdir = st.tmp / "par"
    pdir.mkdir()

    def one(i: int) -> tuple[int, str, str]:
        # output to files: a detached container may inherit them (a pipe would not reach EOF)
        with open(pdir / f"{i}.out", "w+b") as out, open(pdir / f"{i}.err", "w+b") as err:
            try:
                rc = subprocess.run(argv, env=st.env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=err, timeout=300).returncode
            except subprocess.TimeoutExpired:
                rc = -1
            out.seek(0)
            err.seek(0)
            return rc, out.read().decode(errors="replace"), err.read().decode(errors="replace")

    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(one, range(n)))
    wall = time.perf_counter() - t
    ids = [o.strip().splitlines()[-1] for rc, o, _ in results if rc == 0 and o.strip()]
    fails = [(rc, error_line(e) or error_line(o)) for rc, o, e in results if rc != 0]
    res.update(wall_s=wall, failures=len(fails), first_error=fails[0] if fails else None)
    print(f"{n} parallel `run -d --network none` (a pool of {n} subprocesses): wall "
          f"{wall:.2f} s, {len(ids)} ok, {len(fails)} failed "
          f"[{ok(not fails)}] target: all succeed")
    if fails:
        print(f"  first error (exit {fails[0][0]}): {fails[0][1]}")
    return ids


def rm_all(st: State, call: Caller, ids: list[str], label: str, res: dict,
           target: float | None) -> None:
    _, ms, _, _ = call.run(st.mr("rm", "-f", *ids), st.env)
    res[f"rm_{label}_s"] = ms / 1000
    print(f"`rm -f` of {len(ids)} ({label}) in one call: {ms / 1000:.2f} s"
          + (f"   [{ok(ms / 1000 <= target)}] target <= {target:g} s" if target else ""))


def bench(args, st: State, res: dict) -> None:
    call = Caller(st.tmp, timeout=600)
    print(f"busybox from {load_busybox(st, call)}; kernel {os.uname().release}, "
          f"{os.cpu_count()} CPUs\n")
    n = args.count
    before = procs()

    ids, seqs = run_cycles(st, call, n, ["--network", "none"], args.cycles)
    report_sequence("1. --network none", seqs, res.setdefault("seq_none", {}))
    print()
    for argv, key in ((["ps"], "ps"), (["ps", "-a"], "ps_a")):
        s = timed_calls(st, call, st.mr(*argv), 20)
        res[key] = s
        print(f"2. `{' '.join(argv)}` with {n} running, 20 calls: median {s['median']:.1f} ms "
              f"(p10 {s['p10']:.1f}, p90 {s['p90']:.1f})   "
              f"[{ok(s['median'] <= TARGETS['ps_ms'])}] target <= {TARGETS['ps_ms']} ms")
    print()
    print("3. ", end="")
    memory(st, ids, before, res.setdefault("memory", {}))
    print()
    print("4. ", end="")
    par = parallel_runs(st, args.parallel, res.setdefault("parallel", {}))
    print()
    print("5. ", end="")
    rm_all(st, call, ids, f"{n} sequential", res, TARGETS["rm_s"])
    if par:
        print("   ", end="")
        rm_all(st, call, par, f"{len(par)} parallel", res, None)
    if args.no_bridge:
        print("\n6. bridge batch skipped (--no-bridge)")
        return
    print()
    ids, seqs = run_cycles(st, call, n, [], args.cycles)
    report_sequence("6. default bridge", seqs, res.setdefault("seq_bridge", {}))
    s = timed_calls(st, call, st.mr("ps"), 20)
    res["ps_bridge"] = s
    print(f"   `ps` with {n} running (bridge), 20 calls: median {s['median']:.1f} ms   "
          f"[{ok(s['median'] <= TARGETS['ps_ms'])}]")
    print("   ", end="")
    rm_all(st, call, ids, f"{n} bridge", res, TARGETS["rm_s"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--parallel", type=int, default=50)
    ap.add_argument("--no-bridge", action="store_true", help="skip the bridge batch")
    ap.add_argument("--cycles", type=int, default=3,
                    help="sequences of --count for steps 1 and 6, pooled (default 3)")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("scale_bench: run as root", file=sys.stderr)
        return 1
    if args.count < 20 or args.parallel < 1 or args.cycles < 1:
        print("scale_bench: --count must be >= 20, --parallel and --cycles >= 1",
              file=sys.stderr)
        return 1
    host_before = host_state()
    tmp = Path(tempfile.gettempdir()) / f"scale-bench-{secrets.token_hex(4)}"
    tmp.mkdir(mode=0o700)
    signal.signal(signal.SIGTERM, on_sigterm)
    st = State(tmp)
    res: dict = {"count": args.count, "parallel_n": args.parallel, "targets": TARGETS}
    rc = 0
    try:
        bench(args, st, res)
    except STOPS as e:
        rc = stopped("\nscale_bench", e)
    finally:
        t = time.perf_counter()
        st.cleanup()
        print(f"\ncleanup: {time.perf_counter() - t:.1f} s")
    tag = hashlib.sha256(str(tmp / "root").encode()).hexdigest()[:10]  # minirun's root_tag
    mine = host_report(host_before, [re.escape(str(tmp)), tag], res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return rc or (1 if mine else 0)


if __name__ == "__main__":
    sys.exit(main())
