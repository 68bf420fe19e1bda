"""The embedded DNS server (network/resolver.py, in each container's monitor) end to end: names,
aliases and replicas over UDP (busybox nslookup in a container) and TCP (a raw query sent from
the host into the container's network namespace with nsenter), rotation, churn, reverse names,
forwarding to an upstream resolver the test runs in a network namespace of its own (a veth pair
in 10.254.53.0/30), NXDOMAIN from there, `network connect`, the default bridge unchanged, and the
monitor's memory. Every container is started with --dns <that upstream>: nothing is asked of a
resolver outside this machine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from helpers import REPO, poll

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")
for _tool, _pkg in (("ip", "iproute2"), ("unshare", "util-linux"), ("nsenter", "util-linux")):
    if not shutil.which(_tool):
        pytestmark = pytest.mark.skip(reason=f"{_tool} is not installed (scripts/setup installs "
                                      f"{_pkg})")

UPSTREAM_SERVER = textwrap.dedent("""
    import socket, sys
    sys.path.insert(0, sys.argv[1])
    from minirun.network import dnsserver as dns
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[2], 53))
    open(sys.argv[3], "a").close()  # listening: the log exists
    while True:
        data, peer = s.recvfrom(4096)
        q = dns.parse(data)
        if q is None:
            continue
        with open(sys.argv[3], "a") as log:
            log.write(f"{q.name} {q.qtype}\\n")
        if q.name == "outside.test":
            s.sendto(dns.answer(data, ["192.0.2.7"]), peer)
        else:
            s.sendto(dns.refuse(data, dns.NXDOMAIN), peer)  # AA set: authoritative
""")

# Run inside a container's network namespace (nsenter --net): asks 127.0.0.11 and prints JSON.
ASK = textwrap.dedent("""
    import json, os, socket, struct, sys
    sys.path.insert(0, sys.argv[1])
    from minirun.network import dnsserver as dns
    proto, name, qtype, times = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])

    def query(qid):
        labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\\0"
        return struct.pack(">HHHHHH", qid, 0x100, 1, 0, 0, 0) + labels + struct.pack(">HH", qtype, 1)

    def parse(msg):
        an = struct.unpack_from(">H", msg, 6)[0]
        at = 12
        while msg[at]:
            at += 1 + msg[at]
        at += 5
        out = []
        for _ in range(an):
            rtype, _c, _t, n = struct.unpack_from(">HHIH", msg, at + 2)
            data = msg[at + 12:at + 12 + n]
            out.append(socket.inet_ntoa(data) if rtype == 1 else data.hex())
            at += 12 + n
        return {"rcode": struct.unpack_from(">H", msg, 2)[0] & 15, "answers": out}

    results = []
    for i in range(times):
        if proto == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(5)
            s.sendto(query(i + 1), ("127.0.0.11", 53))
            msg = s.recv(65535)
        else:
            s = socket.create_connection(("127.0.0.11", 53), timeout=5)
            s.sendall(dns.tcp_frame(query(i + 1)))
            buf = b""
            while True:
                msgs, _ = dns.tcp_unframe(buf)
                if msgs:
                    msg = msgs[0]
                    break
                chunk = s.recv(65535)
                if not chunk:
                    raise SystemExit("the server closed the connection")
                buf += chunk
        s.close()
        results.append(parse(msg))
    print(json.dumps(results))
""")


class UpstreamDNS:
    """A resolver "outside": a network namespace with a veth to the host (10.254.53.1 here,
    10.254.53.2 there) and a DNS server that knows outside.test only."""

    host_end, address = "10.254.53.1", "10.254.53.2"

    def __init__(self, tmp_path) -> None:
        self.ns = f"mrdns{os.getpid() % 10000}"
        self.link = f"mrdnsH{os.getpid() % 1000}"
        self.log = tmp_path / "upstream.log"
        self.proc = None
        sh = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
        try:
            sh("ip", "netns", "add", self.ns)
            sh("ip", "link", "add", self.link, "type", "veth", "peer", "name", "mrdnsN")
            sh("ip", "link", "set", "mrdnsN", "netns", self.ns)
            sh("ip", "addr", "add", f"{self.host_end}/30", "dev", self.link)
            sh("ip", "link", "set", self.link, "up")
            for cmd in (["ip", "addr", "add", f"{self.address}/30", "dev", "mrdnsN"],
                        ["ip", "link", "set", "mrdnsN", "up"], ["ip", "link", "set", "lo", "up"]):
                sh("ip", "netns", "exec", self.ns, *cmd)
            script = tmp_path / "upstream.py"
            script.write_text(UPSTREAM_SERVER)
            self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, sys.executable,
                                          str(script), str(REPO), self.address, str(self.log)])
            assert poll(lambda: self.log.exists() or self.proc.poll() is not None)
            assert self.proc.poll() is None, "the upstream DNS server did not start"
        except BaseException:
            self.close()
            raise

    def asked(self) -> list[str]:
        return self.log.read_text().split("\n") if self.log.exists() else []

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        subprocess.run(["ip", "link", "del", self.link], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)


@pytest.fixture
def upstream(tmp_path):
    u = UpstreamDNS(tmp_path)
    yield u
    u.close()


@pytest.fixture
def net(mr):
    """A user network of the test's own, removed after (with every container on it)."""
    name = f"dns{os.getpid() % 10000}"
    mr.ok("network", "create", name)
    yield name
    for cid in mr("ps", "-aq", "--no-trunc").stdout.split():
        mr("rm", "-f", cid)
    mr("network", "rm", name)


def ask(mr, container: str, name: str, proto: str = "udp", qtype: int = 1, times: int = 1):
    pid = mr.record(container)["State"]["Pid"]
    r = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-c", ASK,
                        str(REPO), proto, name, str(qtype), str(times)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def ip_on(mr, container: str, net: str) -> str:
    return mr.record(container)["NetworkSettings"]["Networks"][net]["IPAddress"]


def test_names_aliases_replicas_over_udp_and_tcp_with_rotation(mr, net, upstream):
    dns = ("--dns", upstream.address)
    for name in ("w1", "w2"):
        mr.ok("run", "-d", "--name", name, "--network", net, "--network-alias", "web", *dns,
              "busybox", "sleep", "300")
    mr.ok("run", "-d", "--name", "client", "--network", net, *dns, "busybox", "sleep", "300")
    webs = {ip_on(mr, "w1", net), ip_on(mr, "w2", net)}
    conf = mr.ok("exec", "client", "cat", "/etc/resolv.conf")
    assert "nameserver 127.0.0.11" in conf and "options ndots:0" in conf
    assert f"# ExtServers: [{upstream.address}]" in conf
    hosts = mr.ok("exec", "client", "cat", "/etc/hosts")
    assert "w1" not in hosts and "web" not in hosts  # peers come from DNS, not hosts files
    out = mr.ok("exec", "client", "nslookup", "web")
    assert {ln.split()[-1] for ln in out.splitlines() if ln.startswith("Address:")
            and "#" not in ln and ":53" not in ln} == webs
    short = mr.record("w1")["Id"][:12]
    assert ip_on(mr, "w1", net) in mr.ok("exec", "client", "nslookup", short)
    assert ip_on(mr, "w2", net) in mr.ok("exec", "client", "nslookup", "W2.")
    # UDP and TCP from the host into the client's namespace: every replica, in rotated order.
    udp = ask(mr, "client", "web", times=20)
    assert all(sorted(a["answers"]) == sorted(webs) for a in udp)
    assert {a["answers"][0] for a in udp} == webs
    tcp = ask(mr, "client", "web", proto="tcp", times=3)
    assert all(sorted(a["answers"]) == sorted(webs) and a["rcode"] == 0 for a in tcp)
    assert ask(mr, "client", f"w1.{net}", proto="tcp")[0]["answers"] == [ip_on(mr, "w1", net)]
    aaaa = ask(mr, "client", "web", qtype=28)[0]
    assert aaaa == {"rcode": 0, "answers": []}  # a name we have, with no IPv6 address
    assert not any("web" in line or "w1" in line for line in upstream.asked())


def test_a_stopped_container_stops_resolving_at_once_and_reverse_names(mr, net, upstream):
    dns = ("--dns", upstream.address)
    for name in ("r1", "r2"):
        mr.ok("run", "-d", "--name", name, "--network", net, "--network-alias", "svc", *dns,
              "busybox", "sleep", "300")
    mr.ok("run", "-d", "--name", "asker", "--network", net, *dns, "busybox", "sleep", "300")
    r1, r2 = ip_on(mr, "r1", net), ip_on(mr, "r2", net)
    out = mr.ok("exec", "asker", "nslookup", r1)
    assert f"name = r1.{net}" in out
    mr.ok("kill", "r2")
    assert poll(lambda: mr.record("r2")["State"]["Status"] == "exited")
    assert ask(mr, "asker", "svc", times=5) == [{"rcode": 0, "answers": [r1]}] * 5
    gone = ask(mr, "asker", "r2")[0]
    assert gone["rcode"] == 3 and "r2 1" in upstream.asked()  # not ours now: asked upstream
    assert r2 not in mr.ok("exec", "asker", "cat", "/etc/hosts")
    mr.ok("start", "r2")
    assert poll(lambda: sorted(ask(mr, "asker", "svc")[0]["answers"]) == sorted([r1, r2]))


def test_other_names_are_forwarded_to_the_upstream_resolver(mr, net, upstream):
    mr.ok("run", "-d", "--name", "fwd", "--network", net, "--dns", upstream.address,
          "busybox", "sleep", "300")
    out = mr.ok("exec", "fwd", "nslookup", "outside.test")
    assert "192.0.2.7" in out
    r = mr("exec", "fwd", "nslookup", "nosuch.test")
    assert "NXDOMAIN" in r.stdout + r.stderr or "can't find" in r.stdout + r.stderr
    assert ask(mr, "fwd", "outside.test", proto="tcp")[0]["answers"] == ["192.0.2.7"]
    assert ask(mr, "fwd", "nosuch.test")[0]["rcode"] == 3
    assert "outside.test 1" in upstream.asked() and "nosuch.test 1" in upstream.asked()


def test_default_bridge_keeps_its_files_and_connect_brings_the_resolver(mr, net, upstream):
    mr.ok("run", "-d", "--name", "plain", "--dns", upstream.address, "busybox", "sleep", "300")
    conf = mr.ok("exec", "plain", "cat", "/etc/resolv.conf")
    assert "127.0.0.11" not in conf and f"nameserver {upstream.address}" in conf
    mr.ok("run", "-d", "--name", "peer", "--network", net, "--dns", upstream.address,
          "busybox", "sleep", "300")
    mr.ok("network", "connect", net, "plain")
    assert "nameserver 127.0.0.11" in mr.ok("exec", "plain", "cat", "/etc/resolv.conf")
    assert poll(lambda: ask(mr, "plain", "peer")[0]["answers"] == [ip_on(mr, "peer", net)])
    assert ask(mr, "peer", "plain")[0]["answers"] == [ip_on(mr, "plain", net)]


def test_the_monitor_stays_small_with_the_resolver(mr, net, upstream):
    mr.ok("run", "-d", "--name", "small", "--network", net, "--dns", upstream.address,
          "busybox", "sleep", "300")
    ask(mr, "small", "small", times=10)
    ask(mr, "small", "outside.test", proto="tcp")
    pid = mr.monitor_pid("small")
    rss = next(int(line.split()[1]) for line in open(f"/proc/{pid}/status")
               if line.startswith("VmRSS:"))
    assert rss <= 15 * 1024, f"monitor VmRSS {rss} kB > 15 MB"
    sockets = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    assert sum("socket:" in s for s in sockets) >= 2  # its UDP and TCP listeners, at least
    mr.ok("rm", "-f", "small")
    assert poll(lambda: not os.path.exists(f"/proc/{pid}"))  # and they went with it
