"""Bridge networking through the front end, on this machine only: the default bridge, user
networks with names, isolation, outbound NAT to an "upstream" network namespace, published TCP
and UDP ports from 127.0.0.1 and the host's own address, hairpin, and nothing left behind."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import alive, poll

HTTPD = "mkdir -p /www && echo hello-$(hostname) > /www/index.html && exec httpd -f -p 80 -h /www"


def http_get(host: str, port: int) -> str:
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return data.decode().split("\r\n\r\n", 1)[1].strip()


def host_address() -> str:
    """This host's own primary IPv4 address (the one its default route leaves from)."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True).stdout.split()
    return out[out.index("inet") + 1].split("/")[0]


def ip_of(mr, name: str, net: str | None = None) -> str:
    nets = mr.record(name)["NetworkSettings"]["Networks"]
    return nets[net or next(iter(nets))]["IPAddress"]


def links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def test_default_bridge_gives_an_address_a_route_and_no_names(mr):
    out = mr.ok("run", "--rm", "busybox", "sh", "-c", "ip -4 -o addr; ip route")
    assert "eth0" in out and "default via 10.222." in out
    mr.ok("run", "-d", "--name", "srv1", "busybox", "sleep", "100")
    r = mr("run", "--rm", "busybox", "ping", "-c1", "-W1", "srv1")
    assert r.returncode != 0  # the default bridge has no name resolution, as in Docker
    assert "0% packet loss" in mr.ok("run", "--rm", "busybox", "ping", "-c1", "-W2",
                                      ip_of(mr, "srv1"))
    n = json.loads(mr.ok("network", "inspect", "bridge"))[0]
    # minirun0 for the default --root; mrb-<hash> for another (each root has its own bridge).
    assert n["Options"]["com.docker.network.bridge.name"].startswith("mrb-")
    assert [c["Name"] for c in n["Containers"].values()] == ["srv1"]


def test_user_network_resolves_names_and_aliases(mr):
    mr.ok("network", "create", "app")
    # --dns 127.0.0.1: names not ours are asked in db's own namespace, where nobody answers
    # (SERVFAIL at once): nothing leaves this machine.
    mr.ok("run", "-d", "--name", "db", "--network", "app", "--network-alias", "database",
          "--dns", "127.0.0.1", "busybox", "sleep", "100")
    out = mr.ok("run", "--rm", "--network", "app", "busybox", "sh", "-c",
                "ping -c1 -W2 db >/dev/null && echo db-ok; ping -c1 -W2 database >/dev/null && "
                "echo alias-ok")
    assert out.split() == ["db-ok", "alias-ok"]
    # A container that comes later is seen by the earlier one at once (the embedded DNS server
    # reads the records at each question), and not once it is gone; hosts files list no peers.
    mr.ok("run", "-d", "--name", "late", "--network", "app", "busybox", "sleep", "100")
    late = json.loads(mr.ok("inspect", "late"))[0]["NetworkSettings"]["Networks"]["app"]
    assert late["IPAddress"] in mr.ok("exec", "db", "nslookup", "late")
    assert "0% packet loss" in mr.ok("exec", "db", "ping", "-c1", "-W2", "late")
    assert "late" not in mr.ok("exec", "db", "cat", "/etc/hosts")
    mr.ok("rm", "-f", "late")
    assert mr("exec", "db", "nslookup", "late").returncode != 0


def test_networks_are_isolated_from_each_other(mr):
    mr.ok("network", "create", "left")
    mr.ok("network", "create", "right")
    mr.ok("run", "-d", "--name", "lhs", "--network", "left", "busybox", "sleep", "100")
    target = ip_of(mr, "lhs")
    r = mr("run", "--rm", "--network", "right", "busybox", "ping", "-c1", "-W1", target)
    assert r.returncode != 0 and "100% packet loss" in r.stdout
    assert "0% packet loss" in mr.ok("run", "--rm", "--network", "left", "busybox", "ping",
                                     "-c1", "-W2", target)


def test_network_create_ls_inspect_rm_prune(mr):
    nid = mr.ok("network", "create", "--subnet", "10.231.7.0/24", "--gateway", "10.231.7.254",
                "-l", "team=a", "custom").strip()
    assert len(nid) == 64
    assert "custom" in mr.ok("network", "ls", "--format", "{{.Name}}").split()
    n = json.loads(mr.ok("network", "inspect", "custom"))[0]
    assert n["IPAM"]["Config"] == [{"Subnet": "10.231.7.0/24", "Gateway": "10.231.7.254"}]
    assert n["Labels"] == {"team": "a"}
    r = mr("network", "create", "--subnet", "10.231.7.128/25", "clash")
    assert r.returncode == 125 and "overlaps" in r.stderr
    mr.ok("run", "-d", "--name", "fixed", "--network", "custom", "--ip", "10.231.7.9", "busybox",
          "sleep", "100")
    assert ip_of(mr, "fixed") == "10.231.7.9"
    assert "default via 10.231.7.254" in mr.ok("exec", "fixed", "ip", "route")
    r = mr("network", "rm", "custom")
    assert r.returncode == 1 and "active endpoints" in r.stderr
    mr.ok("rm", "-f", "fixed")
    mr.ok("network", "rm", "custom")
    mr.ok("network", "create", "unused")
    assert "unused" in mr.ok("network", "prune", "-f")
    assert mr("network", "inspect", "unused").returncode == 1


def test_connect_and_disconnect_a_running_container(mr):
    mr.ok("network", "create", "extra")
    mr.ok("run", "-d", "--name", "multi", "busybox", "sleep", "100")
    mr.ok("run", "-d", "--name", "peer", "--network", "extra", "busybox", "sleep", "100")
    mr.ok("network", "connect", "extra", "multi")
    assert "eth1" in mr.ok("exec", "multi", "ip", "-o", "link")
    assert "0% packet loss" in mr.ok("exec", "multi", "ping", "-c1", "-W2", "peer")
    mr.ok("network", "disconnect", "extra", "multi")
    assert "eth1" not in mr.ok("exec", "multi", "ip", "-o", "link")
    assert "extra" not in mr.record("multi")["NetworkSettings"]["Networks"]


def test_internal_network_has_no_way_out(mr, upstream):
    mr.ok("network", "create", "--internal", "sealed")
    r = mr("run", "--rm", "--network", "sealed", "busybox", "sh", "-c",
           f"echo hi | nc -w 2 {upstream.address} {upstream.port}")
    assert upstream.seen() == []
    assert r.returncode != 0 or r.stdout == ""
    # No default route at all (Docker's): on an --internal network only its own subnet is
    # reachable; a container also on a routed network takes its default route from there.
    routes = mr.ok("run", "--rm", "--network", "sealed", "busybox", "ip", "route")
    assert "default" not in routes and routes.strip()
    mr.ok("network", "create", "open")
    cid = mr.ok("create", "--network", "sealed", "--init", "busybox", "sleep", "100").strip()
    try:
        mr.ok("network", "connect", "open", cid)
        mr.ok("start", cid)
        routes = mr.ok("exec", cid, "ip", "route")
        gw = json.loads(mr.ok("network", "inspect", "open"))[0]["IPAM"]["Config"][0]["Gateway"]
        assert f"default via {gw} dev eth1" in routes
    finally:
        mr.ok("rm", "-f", cid)
        mr.ok("network", "rm", "open", "sealed")


class Upstream:
    """A network namespace acting as the outside world: a veth to the host, 198.51.100.0/24
    (TEST-NET-2), and a TCP server that answers each connection with the peer's address."""

    address, port = "198.51.100.2", 9009

    def __init__(self) -> None:
        self.ns = f"mrup{os.getpid() % 10000}"
        sh = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
        sh("ip", "netns", "add", self.ns)
        sh("ip", "link", "add", "mrupH", "type", "veth", "peer", "name", "mrupN")
        sh("ip", "link", "set", "mrupN", "netns", self.ns)
        sh("ip", "addr", "add", "198.51.100.1/24", "dev", "mrupH")
        sh("ip", "link", "set", "mrupH", "up")
        for cmd in (["ip", "addr", "add", "198.51.100.2/24", "dev", "mrupN"],
                    ["ip", "link", "set", "mrupN", "up"], ["ip", "link", "set", "lo", "up"]):
            sh("ip", "netns", "exec", self.ns, *cmd)
        self.log = f"/tmp/{self.ns}.log"
        if os.path.exists(self.log):  # from a run that was killed
            os.unlink(self.log)
        server = ("import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                  f"s.bind(('198.51.100.2', {self.port})); s.listen(8)\n"
                  f"open('{self.log}', 'a').close()\n"  # listening: the log exists
                  "while True:\n    c, a = s.accept()\n"
                  f"    open('{self.log}', 'a').write(a[0] + '\\n'); c.sendall(a[0].encode() + b'\\n'); c.close()\n")
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, "python3", "-c", server])
        assert poll(lambda: os.path.exists(self.log) or self.proc.poll() is not None)
        assert self.proc.poll() is None, "the upstream server did not start"

    def seen(self) -> list[str]:
        try:
            return open(self.log).read().split()
        except FileNotFoundError:
            return []

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        subprocess.run(["ip", "link", "del", "mrupH"], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
        if os.path.exists(self.log):
            os.unlink(self.log)


@pytest.fixture
def upstream():
    u = Upstream()
    yield u
    u.close()


def test_outbound_nat_to_an_upstream_router(mr, upstream):
    out = mr.ok("run", "--rm", "busybox", "sh", "-c",
                f"echo hi | nc -w 3 {upstream.address} {upstream.port}")
    # The upstream saw the host's address on its link, not the container's: masquerade.
    assert out.strip() == "198.51.100.1"
    assert upstream.seen() == ["198.51.100.1"]


def test_published_ports_from_localhost_the_host_address_and_hairpin(mr):
    mr.ok("run", "-d", "--name", "web", "--hostname", "webhost", "-p", "18080:80",
          "-p", "127.0.0.1:18081:80", "busybox", "sh", "-c", HTTPD)
    assert poll(lambda: _answers("127.0.0.1", 18080))
    assert http_get("127.0.0.1", 18080) == "hello-webhost"
    assert http_get("127.0.0.1", 18081) == "hello-webhost"
    assert http_get(host_address(), 18080) == "hello-webhost"
    assert mr.ok("port", "web").splitlines() == ["80/tcp -> 0.0.0.0:18080",
                                                 "80/tcp -> 127.0.0.1:18081"]
    assert "0.0.0.0:18080->80/tcp" in mr.ok("ps", "--format", "{{.Ports}}")
    req = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {} 18080 | tail -1"
    # Another container, through the host's port; and the container itself (hairpin).
    assert mr.ok("run", "--rm", "busybox", "sh", "-c", req.format(host_address())).strip() == \
        "hello-webhost"
    assert mr.ok("exec", "web", "sh", "-c", req.format(host_address())).strip() == "hello-webhost"
    r = mr("run", "--rm", "-p", "18080:80", "busybox", "true")
    assert r.returncode == 125 and "port is already allocated" in r.stderr


def test_random_host_ports_and_publish_all(mr, tmp_path):
    mr.ok("run", "-d", "--name", "rnd", "-p", "80", "busybox", "sh", "-c", HTTPD)
    line = mr.ok("port", "rnd", "80").strip()
    host_port = int(line.rsplit(":", 1)[1])
    assert host_port > 1024
    assert poll(lambda: _answers("127.0.0.1", host_port))
    tar = tmp_path / "fs.tar"
    mr.ok("export", "-o", str(tar), "rnd")
    mr.ok("import", "-c", "EXPOSE 80", "-c", 'CMD ["sh", "-c", "' + HTTPD.replace('"', '\\"') + '"]',
          str(tar), "webimg")
    mr.ok("run", "-d", "--name", "pall", "-P", "webimg")
    port = int(mr.ok("port", "pall", "80").strip().rsplit(":", 1)[1])
    assert poll(lambda: _answers("127.0.0.1", port))
    mr.ok("rm", "-f", "pall")
    mr.ok("rmi", "webimg")


def _answers(host: str, port: int) -> bool:
    try:
        return bool(http_get(host, port))
    except OSError:
        return False


UDP_ECHO = r"""
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
int main(void) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {0}; a.sin_family = AF_INET; a.sin_port = htons(5353);
    bind(s, (struct sockaddr *)&a, sizeof a);
    char buf[512]; struct sockaddr_in from; socklen_t len = sizeof from;
    for (;;) {
        int n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
        if (n > 0) { memcpy(buf + n, "-echo", 5); sendto(s, buf, n + 5, 0, (struct sockaddr *)&from, len); }
    }
}
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed (scripts/setup "
                    "installs build-essential): the UDP server is a static C program")
def test_published_udp_port(mr, tmp_path):
    (tmp_path / "echo.c").write_text(UDP_ECHO)
    subprocess.run(["gcc", "-static", "-O2", "-o", str(tmp_path / "udpecho"),
                    str(tmp_path / "echo.c")], check=True, capture_output=True)
    mr.ok("run", "-d", "--name", "udp", "-p", "15353:5353/udp", "-v",
          f"{tmp_path}:/t:ro", "busybox", "/t/udpecho")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1)
        for _ in range(20):
            s.sendto(b"ping", ("127.0.0.1", 15353))
            try:
                assert s.recvfrom(64)[0] == b"ping-echo"
                break
            except socket.timeout:
                continue
        else:
            pytest.fail("no UDP answer through 127.0.0.1:15353")


def test_dns_add_host_and_sharing_another_containers_network(mr):
    out = mr.ok("run", "--rm", "--dns", "10.9.9.9", "--dns-search", "example.test",
                "--add-host", "db.local:10.1.2.3", "busybox", "sh", "-c",
                "cat /etc/resolv.conf; grep db.local /etc/hosts")
    assert "nameserver 10.9.9.9" in out and "search example.test" in out
    assert "10.1.2.3\tdb.local" in out
    mr.ok("run", "-d", "--name", "owner", "busybox", "sleep", "100")
    pid = mr.record("owner")["State"]["Pid"]
    inside = mr.ok("run", "--rm", "--network", "container:owner", "busybox", "readlink",
                   "/proc/self/ns/net").strip()
    assert inside == os.readlink(f"/proc/{pid}/ns/net")


def test_fifty_parallel_runs_get_unique_addresses(mr):
    def one(i: int) -> str:
        mr.ok("run", "-d", "--name", f"ip{i}", "busybox", "sleep", "100", timeout=120)
        return ip_of(mr, f"ip{i}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        ips = list(pool.map(one, range(50)))
    assert len(set(ips)) == 50
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: mr.ok("rm", "-f", f"ip{i}", timeout=120), range(50)))
    ipam = mr.root / "networks" / "bridge.ipam.json"
    assert json.loads(ipam.read_text()) == {}


def test_a_killed_monitor_and_rm_leave_no_link_rule_or_address(mr):
    import signal

    before = links()
    mr.ok("run", "-d", "--name", "crash", "-p", "18090:80", "busybox", "sh", "-c", HTTPD)
    pid = mr.record("crash")["State"]["Pid"]
    assert links() - before  # its veth
    os.kill(mr.monitor_pid("crash"), signal.SIGKILL)
    mr.ok("rm", "-f", "crash")
    assert poll(lambda: not alive(pid))
    bridge_dev = json.loads(mr.ok("network", "inspect", "bridge"))[0]["Options"][
        "com.docker.network.bridge.name"]
    assert poll(lambda: not (links() - before - {bridge_dev}))
    rules = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    assert "18090" not in rules
    assert json.loads((mr.root / "networks" / "bridge.ipam.json").read_text()) == {}


def test_network_create_options_ip_range_aux_bridge_name_and_mtu(mr):
    mr.ok("network", "create", "--subnet", "10.233.5.0/24", "--ip-range", "10.233.5.128/25",
          "--aux-address", "router=10.233.5.129", "-o", "com.docker.network.bridge.name=mrtestbr0",
          "-o", "com.docker.network.driver.mtu=1280", "tuned")
    try:
        out = mr.ok("run", "--rm", "--network", "tuned", "busybox", "sh", "-c",
                    "ip -o -4 addr show eth0; cat /sys/class/net/eth0/mtu")
        addr = out.split()[3].split("/")[0]
        assert addr == "10.233.5.130"  # from the range, past the aux address
        assert out.split()[-1] == "1280"
        net = json.loads(mr.ok("network", "inspect", "tuned"))[0]
        cfg = net["IPAM"]["Config"][0]
        assert cfg["IPRange"] == "10.233.5.128/25"
        assert cfg["AuxiliaryAddresses"] == {"router": "10.233.5.129"}
        assert net["Options"]["com.docker.network.bridge.name"] == "mrtestbr0"
        assert net["Options"]["com.docker.network.driver.mtu"] == "1280"
        assert os.path.isdir("/sys/class/net/mrtestbr0/bridge")
        # its alias marks it as minirun's whatever its name (ip_forward is put back only when
        # the last of them goes: network/bridge.py minirun_bridges)
        assert open("/sys/class/net/mrtestbr0/ifalias").read().strip() == "minirun network tuned"
        from minirun.network import bridge

        assert "mrtestbr0" in bridge.minirun_bridges()
        r = mr("run", "--rm", "--network", "tuned", "--ip", "10.233.5.129", "busybox", "true")
        assert r.returncode == 125 and "10.233.5.129" in r.stderr
    finally:
        mr.ok("network", "rm", "tuned")
    assert not os.path.exists("/sys/class/net/mrtestbr0")
    for bad, words in ((["--ip-range", "10.9.0.0/24"], "not inside subnet"),
                       (["--aux-address", "x=10.9.9.9"], "is not an address of subnet"),
                       (["-o", "com.docker.network.driver.mtu=9"], "invalid MTU"),
                       (["-o", "x=y"], "option x is not supported")):
        r = mr("network", "create", "--subnet", "10.233.6.0/24", *bad, "badnet")
        assert r.returncode == 125 and len(r.stderr.splitlines()) == 1 and words in r.stderr, r.stderr
    assert mr("network", "inspect", "badnet").returncode == 1  # nothing half-made
