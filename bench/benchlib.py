"""What the benchmarks share: a timed call with a blocking wait, the numbers, SIGTERM.

    Caller(scratch).run(argv, env)  -> (exit status, wall ms, stdout, stderr); a failure, or a
                                       call past CALL_TIMEOUT, is a BenchError (a peer's fast
                                       failure is not a time)
    stats(samples)                  -> median, p10, p90, n
    error_line(text)                -> the line of a tool's output that says why it failed
    Terminated / on_sigterm         -> SIGTERM raised like KeyboardInterrupt: cleanups run
    http(sock, method, path)        -> (status, body): one request on a unix socket
    Server(name, argv, sock, ...)   -> a daemon in a session of its own, started until its
                                       /_ping answers, stopped with SIGTERM then SIGKILL
    Dockerd(dir, tag, env, ...)     -> a private dockerd (Debian's docker.io): its own
                                       --data-root, --exec-root, socket, pidfile, cgroup
                                       parent, containerd if need be, and optionally a bridge
                                       of its own; .cleanup() undoes all of it, whatever happened
    podman_env(dir, env)            -> the environment of a podman with private storage and
                                       the ulimits this host can grant
    host_state() / host_diff()      -> links, nft, iptables, mounts, cgroups, sysctls and dirs
                                       outside the temp dir, before and after

The bench scripts import it as a sibling module (they run as `python bench/NAME.py`, so their
directory is on sys.path). Standard library only.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

CALL_TIMEOUT = 120  # seconds; a call that takes longer is killed and counts as a failure
START_TIMEOUT = 60  # s, a server's socket answering /_ping
STOP_TIMEOUT = 20  # s, a server's exit after SIGTERM
DOCKER = "/usr/local/bin/docker"
SYSTEM_CONTAINERD = "/run/containerd/containerd.sock"
# made by dockerd or containerd outside their --data-root/--exec-root (rmdir'd if new and empty)
OUTSIDE_DIRS = ["/run/docker/plugins", "/run/docker", "/run/containerd/s", "/run/containerd",
                "/opt/containerd/bin", "/opt/containerd/lib", "/opt/containerd"]
SYSCTLS = ["net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding",
           "net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables"]


class BenchError(Exception):
    pass


class Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so that the cleanup runs."""


def on_sigterm(*_) -> None:
    raise Terminated


def error_line(text: str) -> str:
    """The line that says why: `minirun: ...`, `docker: ...`, `Error: ...`, else the last one
    that mentions an error."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    said = [ln for ln in lines if re.match(r"(minirun:|docker:|Error|ERROR:|error)", ln)]
    errs = [ln for ln in lines if re.search(r"error|failed|fatal|cannot", ln, re.I)]
    return (said or errs or lines or [""])[-1][:300]


class Caller:
    """Runs commands with output to files (a detached container may inherit them: a pipe would
    not reach EOF), a blocking wait and a watchdog timer (Popen.wait(timeout) polls, which
    rounds every time up to its polling step)."""

    def __init__(self, scratch: Path, timeout: float = CALL_TIMEOUT) -> None:
        self.out_path, self.err_path = scratch / "call.out", scratch / "call.err"
        self.timeout = timeout

    def run(self, argv: list[str], env: dict, cwd: Path | None = None,
            check: bool = True) -> tuple[int, float, str, str]:
        """(exit status, wall time in ms, stdout, stderr)."""
        with open(self.out_path, "w+b") as out, open(self.err_path, "w+b") as err:
            t = time.perf_counter_ns()
            p = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=err)
            watchdog = threading.Timer(self.timeout, p.kill)
            watchdog.daemon = True
            watchdog.start()
            try:
                rc = p.wait()
                ms = (time.perf_counter_ns() - t) / 1e6
                timed_out = not watchdog.is_alive()
            finally:  # interrupted: stop the timer, and the call (SIGTERM reaches only us)
                watchdog.cancel()
                if p.poll() is None:
                    p.kill()
                    p.wait()
            out.seek(0)
            err.seek(0)
            so, se = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        cmd = " ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv[:6]))
        if timed_out:
            raise BenchError(f"{cmd}: timed out after {self.timeout:g} s")
        if check and rc != 0:
            raise BenchError(f"{cmd}: exit {rc}: {error_line(se) or error_line(so)}")
        return rc, ms, so, se


def stats(xs: list[float]) -> dict:
    xs = sorted(xs)
    q = statistics.quantiles(xs, n=10, method="inclusive") if len(xs) > 1 else [xs[0]] * 9
    return {"median": statistics.median(xs), "p10": q[0], "p90": q[-1], "n": len(xs)}


# -- daemons -----------------------------------------------------------------------------------
def http(sock: str, method: str, path: str, timeout: float = 10) -> tuple[int, bytes]:
    """One request on a fresh connection (Connection: close): (status, body)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock)
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: api\r\nUser-Agent: benchlib\r\n"
                  "Connection: close\r\n\r\n".encode())
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise BenchError(f"{method} {path}: no HTTP answer on {sock}") from None
    return status, body


def stop_process(p: subprocess.Popen, group: bool = False) -> None:
    """SIGTERM, a blocking wait, SIGKILL (to the whole session if group) after STOP_TIMEOUT."""
    if p.poll() is not None:
        return

    def kill() -> None:
        try:
            os.killpg(p.pid, signal.SIGKILL) if group else p.kill()
        except OSError:
            pass
    watchdog = threading.Timer(STOP_TIMEOUT, kill)
    watchdog.daemon = True
    watchdog.start()
    try:
        p.send_signal(signal.SIGTERM)
        p.wait()
    finally:
        watchdog.cancel()


class Server:
    """A server process in a session of its own (Ctrl-C reaches only us), its log in a file."""

    def __init__(self, name: str, argv: list[str], sock: Path, log: Path, env: dict) -> None:
        self.name, self.argv, self.sock, self.log = name, argv, sock, log
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited ({self.proc.returncode}) before answering: "
                                 f"{error_line(self.log.read_text(errors='replace'))}")
            try:
                if http(str(self.sock), "GET", "/_ping", timeout=2) == (200, b"OK"):
                    return
            except (OSError, BenchError):
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}: no answer on {self.sock}/_ping after "
                                 f"{START_TIMEOUT} s")
            time.sleep(0.05)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, group=True)


def kill_strays(path: Path) -> None:
    """Processes naming path in their command line (containerd and its shims, should they
    outlive dockerd), SIGKILL."""
    me = str(path).encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if me in f.read():
                    os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass


def unmount_under(path: Path) -> None:
    for m in reversed([m for m in mountpoints() if m.startswith(str(path) + "/")]):
        subprocess.run(["umount", "-l", m], capture_output=True)


def free_subnet(pool: str = "10.213.0.0/16") -> str:
    """A /24 of pool that no host route or address covers (never 192.0.2.0/24, Docker's
    172.17.0.0/16, podman's 10.88.0.0/16 or minirun's 10.222.0.0/16: outside this pool)."""
    used = []
    for argv in (["ip", "-4", "route", "show", "table", "all"], ["ip", "-4", "-o", "addr"]):
        for tok in subprocess.run(argv, capture_output=True, text=True).stdout.split():
            try:
                used.append(ipaddress.ip_network(tok, strict=False))
            except ValueError:
                pass
    start = int.from_bytes(os.urandom(1), "big")
    nets = list(ipaddress.ip_network(pool).subnets(new_prefix=24))
    for i in range(len(nets)):
        n = nets[(start + i) % len(nets)]
        if not any(n.overlaps(u) for u in used if u.prefixlen > 0):
            return str(n)
    raise BenchError(f"no free /24 in {pool}")


class Dockerd:
    """A private dockerd (Debian's docker.io, 20.10), started and undone by the bench.

    Everything under dir: daemon.json (so /etc/docker/daemon.json is not read, key.json kept
    here), --data-root, --exec-root, --pidfile, the socket; containers in a cgroup parent of
    their own (/<cgroup_name>); and, when a system containerd listens on
    /run/containerd/containerd.sock (dockerd would share it, mixing its state with the host's)
    or own_containerd, a containerd of our own with root, state, socket and opt dir here.

    bridge=False: `--bridge=none --iptables=false --ip-forward=false --ip-masq=false`, nothing
    outside dir. bridge=True: Docker's default bridge network, on a bridge the bench makes
    (`--bridge=bdk<tag>`, a free 10.213.X.1/24: dockerd takes a non-default bridge name only if
    it exists) with dockerd's own iptables rules (`--iptables=true`, masquerading and the
    DOCKER* chains); `--ip-forward=false` all the same: enabling forwarding would make dockerd
    set the FORWARD policy to DROP, cutting other users' bridged traffic on a shared machine
    (br_netfilter sends it through iptables), and it is a daemon start cost, not a per-run one.
    cleanup(), idempotent: containers, dockerd, its containerd and shims, their mounts, the
    cgroup parent, the bridge, every iptables rule and chain dockerd added (and the iptables-nft
    tables if it made them), ip_forward as it was, dirs it made outside dir.
    """

    def __init__(self, dir: Path, tag: str, env: dict, *, bridge: bool = False,
                 own_containerd: bool = False, cgroup_name: str | None = None) -> None:
        self.dir, self.tag, self.env = dir, tag, env
        self.bridge = f"bdk{tag}"[:15] if bridge else None
        self.subnet = free_subnet() if bridge else None
        self.own_containerd = own_containerd or os.path.exists(SYSTEM_CONTAINERD)
        self.cgroup_parent = "/" + (cgroup_name or f"bench-dockerd-{tag}")
        self.sock = dir / "docker.sock"
        self.dirs_before = {d: os.path.exists(d) for d in OUTSIDE_DIRS}
        self.forward_before = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
        self.firewall_before = firewall_snapshot()
        self.server: Server | None = None
        self.containerd: subprocess.Popen | None = None
        self.bridge_made = False
        self.firewall_left: list[str] = []  # rules cleanup() could not take out
        self.done = False
        self.containerd_note = ("started by dockerd (its own, state under --data-root/"
                                "--exec-root)")

    def client_env(self, config_dir: Path) -> dict:
        config_dir.mkdir(exist_ok=True)
        return dict(self.env, DOCKER_HOST=f"unix://{self.sock}", DOCKER_CONFIG=str(config_dir),
                    DOCKER_CLI_HINTS="false")

    def start(self) -> None:
        dk = self.dir
        dk.mkdir(exist_ok=True)
        (dk / "daemon.json").write_text(json.dumps({"deprecated-key-path": str(dk / "key.json")}))
        argv = ["dockerd", "--config-file", str(dk / "daemon.json"),
                "--data-root", str(dk / "data"), "--exec-root", str(dk / "exec"),
                "--pidfile", str(dk / "docker.pid"), "--host", f"unix://{self.sock}",
                "--ip6tables=false", "--ip-forward=false", "--cgroup-parent", self.cgroup_parent]
        if self.bridge:
            gw = ipaddress.ip_network(self.subnet)[1]
            for cmd in (["ip", "link", "add", self.bridge, "type", "bridge"],
                        ["ip", "addr", "add", f"{gw}/24", "dev", self.bridge],
                        ["ip", "link", "set", self.bridge, "up"]):
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode != 0:
                    raise BenchError(f"{' '.join(cmd)}: {r.stderr.strip()}")
                self.bridge_made = True
            argv += [f"--bridge={self.bridge}", "--iptables=true", "--ip-masq=true"]
        else:
            argv += ["--bridge=none", "--iptables=false", "--ip-masq=false"]
        if self.own_containerd:
            cd = dk / "containerd"
            cd.mkdir(exist_ok=True)
            (cd / "config.toml").write_text(
                f'version = 2\nroot = "{cd}/root"\nstate = "{cd}/state"\n'
                'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                f'[grpc]\n  address = "{cd}/containerd.sock"\n'
                f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{cd}/opt"\n')
            with open(cd / "log", "wb") as log:
                self.containerd = subprocess.Popen(
                    ["containerd", "--config", str(cd / "config.toml")],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True)
            deadline = time.monotonic() + START_TIMEOUT
            while not (cd / "containerd.sock").exists():
                if self.containerd.poll() is not None or time.monotonic() > deadline:
                    raise BenchError("containerd did not start: "
                                     + error_line((cd / "log").read_text(errors="replace")))
                time.sleep(0.05)
            argv += ["--containerd", str(cd / "containerd.sock")]
            self.containerd_note = ("a private one started by the bench ("
                                    + (f"{SYSTEM_CONTAINERD} exists"
                                       if os.path.exists(SYSTEM_CONTAINERD)
                                       else "asked for") + ")")
        self.server = Server("dockerd", argv, self.sock, dk / "dockerd.log", self.env)
        self.server.start()

    def remove_containers(self) -> None:
        if not self.server or not self.server.running():
            return
        env = self.client_env(self.dir / "cleanup-cfg")
        q = {"capture_output": True, "timeout": CALL_TIMEOUT, "env": env}
        try:
            ids = subprocess.run([DOCKER, "ps", "-aq"], text=True, **q).stdout.split()
            if ids:
                subprocess.run([DOCKER, "rm", "-f", *ids], **q)
        except (OSError, subprocess.TimeoutExpired):
            pass

    def cleanup(self) -> None:
        if self.done:
            return
        self.done = True
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut it
        old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            self.remove_containers()
            if self.server:
                self.server.stop()
            if self.containerd:
                stop_process(self.containerd, group=True)
            kill_strays(self.dir)
            unmount_under(self.dir)
            self.remove_cgroups()
            self.remove_stale_sockets()
            for d in OUTSIDE_DIRS:  # deepest first in the list
                if not self.dirs_before[d]:
                    try:
                        os.rmdir(d)
                    except OSError:
                        pass
            if self.bridge_made:
                subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
            if self.bridge:
                self.firewall_left = firewall_restore(
                    self.firewall_before,
                    re.compile(r"DOCKER|" + re.escape(self.bridge) + "|" + re.escape(self.subnet)))
                Path("/proc/sys/net/ipv4/ip_forward").write_text(self.forward_before + "\n")
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)

    def remove_cgroups(self) -> None:
        """The cgroup parent: the containers' processes in it are killed first, should dockerd
        have died without stopping them; then the directories, deepest first."""
        tops = [h / self.cgroup_parent.lstrip("/") for h in Path("/sys/fs/cgroup").iterdir()]
        tops = [t for t in tops if t.is_dir()]
        pids = set()
        for top in tops:
            for d, _, _ in os.walk(top):
                try:
                    pids.update(int(x) for x in Path(d, "cgroup.procs").read_text().split())
                except (OSError, ValueError):
                    pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        for top in tops:
            for d, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
                while True:  # a killed process leaves its cgroup a moment after SIGKILL
                    try:
                        os.rmdir(d)
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            break
                        time.sleep(0.02)

    def remove_stale_sockets(self) -> None:
        """Shim sockets in /run/containerd/s (containerd 1.6 puts them there whatever its
        state dir): only when we made that dir, only those nobody listens on."""
        s = Path("/run/containerd/s")
        if self.dirs_before["/run/containerd/s"] or not s.is_dir():
            return
        for f in s.iterdir():
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
                    c.connect(str(f))
            except ConnectionRefusedError:
                f.unlink(missing_ok=True)
            except OSError:
                pass


# -- iptables: what a daemon added, taken out again --------------------------------------------
def firewall_snapshot() -> dict:
    """{"tables": nft tables, "iptables": {table: iptables-save lines}}."""
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True,
                            text=True).stdout.split("\n") if shutil.which("nft") else []
    rules: dict[str, list[str]] = {}
    if shutil.which("iptables-save"):
        table = None
        for ln in subprocess.run(["iptables-save"], capture_output=True, text=True).stdout.splitlines():
            if ln.startswith("*"):
                table = ln[1:]
                rules[table] = []
            elif table and ln.startswith((":", "-A")):
                rules[table].append(re.sub(r" \[\d+:\d+\]$", "", ln))
    return {"tables": [t.strip() for t in tables if t.strip()], "iptables": rules}


def firewall_restore(before: dict, ours: re.Pattern) -> list[str]:
    """Take out the iptables rules added since `before` that match ours (by chain, target,
    interface or address), then the chains added since that match it, then the iptables-nft tables (ip filter, ip nat ...) that did not exist
    before and hold no rule now. Rules and chains of other users are left alone. Returns what
    could not be removed."""
    after = firewall_snapshot()
    left = []
    for table, lines in after["iptables"].items():
        old = set(before["iptables"].get(table, []))
        new = [ln for ln in lines if ln not in old and ours.search(ln)]
        for ln in reversed([ln for ln in new if ln.startswith("-A")]):
            r = subprocess.run(["iptables", "-t", table, "-D", *shlex.split(ln)[1:]],
                               capture_output=True, text=True)
            if r.returncode:
                left.append(f"{table}: {ln}")
        # never flushed: a chain still holding a rule (another user's) or still referenced
        # stays, and is reported
        for c in [ln.split()[0][1:] for ln in new if ln.startswith(":")]:
            if subprocess.run(["iptables", "-t", table, "-X", c], capture_output=True).returncode:
                left.append(f"{table}: chain {c}")
    now = firewall_snapshot()
    for table, lines in now["iptables"].items():
        name = f"table ip {table}"
        if name in before["tables"] or any(ln.startswith("-A") for ln in lines):
            continue
        if any(not ln.startswith(":") or ln.split()[1] != "ACCEPT" for ln in lines):
            continue  # a user chain or a DROP policy: not an empty table, someone else's
        subprocess.run(["nft", "delete", "table", "ip", table], capture_output=True)
    return left


def podman_env(dir: Path, env: dict, runtime: str = "runc") -> dict:
    """podman with private storage under dir (overlay), cgroupfs, file events, the given OCI
    runtime and the ulimits this host can grant (its defaults fail with EPERM here)."""
    dir.mkdir(parents=True, exist_ok=True)
    (dir / "containers.conf").write_text(
        '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n'
        '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
        f'runtime = "{runtime}"\n')
    (dir / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\nrunroot = "{dir}/run"\ngraphroot = "{dir}/root"\n')
    clean = {k: v for k, v in env.items() if not k.startswith("CONTAINERS_")}
    return dict(clean, CONTAINERS_CONF=str(dir / "containers.conf"),
                CONTAINERS_STORAGE_CONF=str(dir / "storage.conf"))


# -- the host, before and after ----------------------------------------------------------------
def mountpoints() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [ln.split()[4] for ln in f]


def host_state() -> dict:
    def out(argv: list[str]) -> list[str]:
        if not shutil.which(argv[0]):
            return []
        r = subprocess.run(argv, capture_output=True, text=True)
        lines = []
        for ln in r.stdout.splitlines():
            if ln.startswith("#") or not ln.strip():
                continue
            ln = re.sub(r"\[\d+:\d+\]", "[-]", ln)  # iptables-save counters
            lines.append(re.sub(r"counter packets \d+ bytes \d+", "counter", ln).strip())
        return lines

    sysctls = {}
    for k in SYSCTLS:
        try:
            sysctls[k] = Path("/proc/sys", k).read_text().strip()
        except OSError:
            sysctls[k] = None
    cgroups = []
    for h in Path("/sys/fs/cgroup").iterdir():
        if h.is_dir() and not h.is_symlink():
            for d in h.iterdir():
                if d.is_dir():
                    cgroups.append(str(d))
                    cgroups += [str(e) for e in d.iterdir() if e.is_dir()]
    return {"links": sorted(os.listdir("/sys/class/net")),
            "cgroups": cgroups,
            "nft": out(["nft", "list", "ruleset"]),
            "iptables": out(["iptables-save"]) + out(["ip6tables-save"]),
            "mounts": mountpoints(),
            "sysctls": sysctls,
            "dirs": {d: os.path.exists(d) for d in OUTSIDE_DIRS}}


def host_diff(before: dict, after: dict, ours: re.Pattern) -> tuple[list[str], list[str]]:
    """(changes that look like the bench's, other changes: another user of the machine)."""
    changes = []
    for key in ("links", "nft", "iptables", "mounts", "cgroups"):
        b, a = set(before[key]), set(after[key])
        changes += [f"{key}: + {x}" for x in sorted(a - b)]
        changes += [f"{key}: - {x}" for x in sorted(b - a)]
    for k, v in before["sysctls"].items():
        if after["sysctls"][k] != v:
            changes.append(f"sysctl {k}: {v} -> {after['sysctls'][k]}")
    for d, v in before["dirs"].items():
        if after["dirs"][d] != v:
            changes.append(f"{d}: {'removed' if v else 'left behind'}")
    mine = [c for c in changes if ours.search(c) or c.startswith(("sysctl", "/"))]
    return mine, [c for c in changes if c not in mine]


def host_report(before: dict, ours: list[str], results: dict, extra: list[str] = (),
                shared: tuple[str, ...] = ()) -> list[str]:
    """Compare the host with `before`, print the verdict and keep it in results["host_check"];
    `ours`: regexes that name what the bench made; `extra`: what its cleanup knows it left;
    `shared`: prefixes of what another program shares with the bench (counted as its changes,
    not the bench's). Returns what the bench left behind (empty: clean)."""
    mine, others = host_diff(before, host_state(), re.compile("|".join(ours)))
    if shared:
        others += [c for c in mine if c.startswith(shared)]
        mine = [c for c in mine if not c.startswith(shared)]
    mine += [x for x in extra if not any(x in m for m in mine)]
    results["host_check"] = {"left_by_bench": mine, "other_changes": others}
    print("\nhost after the bench: "
          + ("clean (links, nft, iptables, mounts, cgroups, sysctls, dirs)" if not mine
             else "LEFT BEHIND: " + "; ".join(mine)))
    if others:
        print(f"  (meanwhile changed by something else on the machine: {len(others)} items, "
              f"e.g. {others[0]})")
    return mine


def stopped(name: str, e: BaseException) -> int:
    """A bench's exit status when `e` (a BenchError, Ctrl-C or SIGTERM) ended it, said on one line:
    1, 130 or 143."""
    if isinstance(e, KeyboardInterrupt):
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    if isinstance(e, Terminated):
        print(f"{name}: terminated", file=sys.stderr)
        return 143
    print(f"{name}: {e}", file=sys.stderr)
    return 1


STOPS = (BenchError, KeyboardInterrupt, Terminated)  # `except STOPS as e: return stopped(...)`
