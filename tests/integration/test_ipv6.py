"""IPv6 on minirun's networks (`network create --ipv6`), on this machine only: dual-stack
addresses and default routes seen inside the containers and in inspect, two containers over
IPv6, published ports reached over IPv6 from the host ([::1] through the userland proxy, the
host's own address through the ip6 table's DNAT), outbound IPv6 masquerade to an "upstream"
network namespace the test makes (2001:db8:6::/64, a documentation prefix on a veth of its
own: nothing leaves the machine), --internal, isolation, one-line errors, compose and
docker-py, and nothing left behind."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import textwrap
import uuid

import pytest

from helpers import ApiService, poll

HTTPD = "mkdir -p /www && echo hello-$(hostname) > /www/index.html && exec httpd -f -p 80 -h /www"


def _host_has_ipv6() -> str:
    """"" if this host can carry IPv6, else why not."""
    if not os.path.exists("/proc/net/if_inet6"):
        return "this kernel has no IPv6 (/proc/net/if_inet6 is missing: ipv6.disable=1?)"
    try:
        with open("/proc/sys/net/ipv6/conf/all/disable_ipv6") as f:
            if f.read().strip() != "0":
                return "IPv6 is disabled on this host (net.ipv6.conf.all.disable_ipv6=1)"
    except OSError:
        return "no /proc/sys/net/ipv6/conf/all/disable_ipv6"
    return ""


pytestmark = pytest.mark.skipif(bool(_host_has_ipv6()), reason=_host_has_ipv6() or "-")


def sysctl6_forwarding() -> str:
    with open("/proc/sys/net/ipv6/conf/all/forwarding") as f:
        return f.read().strip()


def net_of(mr, name: str) -> dict:
    return json.loads(mr.ok("network", "inspect", name))[0]


def endpoint(mr, ctr: str, net: str) -> dict:
    return mr.record(ctr)["NetworkSettings"]["Networks"][net]


def http_get(host: str, port: int, timeout: float = 5) -> str:
    """GET / over TCP (IPv6 if host has a colon); curl -6 -g if it is there, as a user would."""
    if shutil.which("curl"):
        url = f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
        r = subprocess.run(["curl", "-sS", "-g", "--max-time", str(timeout), url,
                            *(["-6"] if ":" in host else [])], capture_output=True, text=True)
        if r.returncode != 0:
            raise OSError(r.stderr.strip())
        return r.stdout.strip()
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return data.decode().split("\r\n\r\n", 1)[1].strip()


def answers(host: str, port: int) -> bool:
    try:
        return bool(http_get(host, port, timeout=2))
    except OSError:
        return False


def root_table(mr) -> str:
    """The nftables table name of the test's private --root (network/networks.py root_tag)."""
    import hashlib

    return "minirun-" + hashlib.sha256(os.path.abspath(mr.root).encode()).hexdigest()[:10]


class Upstream6:
    """A network namespace acting as the outside world over IPv6: a veth to the host with
    2001:db8:6::/64 (RFC 3849, documentation), the host at ::1 of it, the namespace at ::2 with
    a TCP server that answers each connection with the peer's address."""

    host, address, port = "2001:db8:6::1", "2001:db8:6::2", 9096

    def __init__(self) -> None:
        self.ns = f"mr6up{os.getpid() % 10000}"
        self.link = f"mr6u{os.getpid() % 10000}"
        sh = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
        sh("ip", "netns", "add", self.ns)
        try:
            sh("ip", "link", "add", self.link, "type", "veth", "peer", "name", "up6",
               "netns", self.ns)
            sh("ip", "addr", "add", f"{self.host}/64", "dev", self.link, "nodad")
            sh("ip", "link", "set", self.link, "up")
            for cmd in (["ip", "addr", "add", f"{self.address}/64", "dev", "up6", "nodad"],
                        ["ip", "link", "set", "up6", "up"], ["ip", "link", "set", "lo", "up"]):
                sh("ip", "netns", "exec", self.ns, *cmd)
            self.log = f"/tmp/{self.ns}.log"
            if os.path.exists(self.log):
                os.unlink(self.log)
            server = ("import socket\ns=socket.socket(socket.AF_INET6)\n"
                      "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                      f"s.bind(('{self.address}', {self.port})); s.listen(8)\n"
                      f"open('{self.log}', 'a').close()\n"
                      "while True:\n    c, a = s.accept()\n"
                      f"    open('{self.log}', 'a').write(a[0] + '\\n')\n"
                      "    c.sendall(a[0].encode() + b'\\n'); c.close()\n")
            self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, "python3", "-c",
                                          server])
            assert poll(lambda: os.path.exists(self.log) or self.proc.poll() is not None)
            assert self.proc.poll() is None, "the upstream server did not start"
        except BaseException:
            self.close()
            raise

    def seen(self) -> list[str]:
        try:
            return open(self.log).read().split()
        except (FileNotFoundError, AttributeError):
            return []

    def close(self) -> None:
        if getattr(self, "proc", None) is not None:
            self.proc.kill()
            self.proc.wait()
        subprocess.run(["ip", "link", "del", self.link], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
        if os.path.exists(getattr(self, "log", "")):
            os.unlink(self.log)


@pytest.fixture
def upstream6():
    u = Upstream6()
    yield u
    u.close()


@pytest.fixture
def v6(mr):
    """Networks the test makes; removed after it (with the fixture's own prune), and then the
    IPv6 side of the host must be as it was: no ip6 table of this root, no bridge, and IPv6
    forwarding back if no other dual-stack minirun bridge is left on the host."""
    before = sysctl6_forwarding()
    made: list[str] = []
    yield made
    for c in mr("ps", "-aq", "--no-trunc").stdout.split():
        mr("rm", "-f", c)
    for n in made:
        mr("network", "rm", n)
    mr("network", "prune", "-f")
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert f"table ip6 {root_table(mr)}\n" not in tables + "\n"
    from minirun.network import bridge

    if not bridge.any_dual_stack_bridge():  # (others' dual-stack bridges keep it on)
        assert sysctl6_forwarding() == before


def test_dual_stack_addresses_routes_and_inspect(mr, v6):
    v6 += ["dual", "fixed"]
    mr.ok("network", "create", "--ipv6", "dual")
    n = net_of(mr, "dual")
    assert n["EnableIPv6"] is True and len(n["IPAM"]["Config"]) == 2
    sub6, gw6 = n["IPAM"]["Config"][1]["Subnet"], n["IPAM"]["Config"][1]["Gateway"]
    assert sub6.startswith("fd") and sub6.endswith("::/64") and gw6 == sub6[:-3] + "1"
    assert "dual" in mr.ok("network", "ls", "--format", "{{.Name}}").split()
    mr.ok("run", "-d", "--name", "ds1", "--network", "dual", "busybox", "sleep", "100")
    ep = endpoint(mr, "ds1", "dual")
    assert ep["GlobalIPv6Address"] == sub6[:-3] + "2" and ep["GlobalIPv6PrefixLen"] == 64
    assert ep["IPv6Gateway"] == gw6 and ep["IPAddress"]
    assert mr.record("ds1")["NetworkSettings"]["Networks"]["dual"]["IPv6Gateway"] == gw6
    addrs, routes = mr.ok("exec", "ds1", "ip", "-6", "addr"), mr.ok("exec", "ds1", "ip", "-6", "route")
    assert f"{ep['GlobalIPv6Address']}/64" in addrs
    assert f"default via {gw6} dev eth0" in routes
    assert "default via" in mr.ok("exec", "ds1", "ip", "-4", "route")
    cont = net_of(mr, "dual")["Containers"]
    assert [c["IPv6Address"] for c in cont.values()] == [f"{ep['GlobalIPv6Address']}/64"]
    # The bridge has the gateway; IPv6 is on on it and it takes no router advertisements.
    br = n["Options"]["com.docker.network.bridge.name"]
    assert gw6 in subprocess.run(["ip", "-6", "addr", "show", "dev", br], capture_output=True,
                                 text=True).stdout
    for key, want in (("disable_ipv6", "0"), ("accept_ra", "0")):
        assert open(f"/proc/sys/net/ipv6/conf/{br}/{key}").read().strip() == want
    assert sysctl6_forwarding() == "1"
    # Given subnet and gateway (one --subnet and --gateway per family), and --ip6.
    mr.ok("network", "create", "--ipv6", "--subnet", "10.236.6.0/24", "--subnet",
          "fd00:6:6::/64", "--gateway", "fd00:6:6::fe", "fixed")
    cfg = net_of(mr, "fixed")["IPAM"]["Config"]
    assert cfg == [{"Subnet": "10.236.6.0/24", "Gateway": "10.236.6.1"},
                   {"Subnet": "fd00:6:6::/64", "Gateway": "fd00:6:6::fe"}]
    out = mr.ok("run", "--rm", "--network", "fixed", "--ip6", "fd00:6:6::0:42", "busybox", "sh",
                "-c", "ip -6 addr show eth0; ip -6 route")
    assert "fd00:6:6::42/64" in out and "default via fd00:6:6::fe" in out
    # The default bridge stays IPv4-only, as Docker's.
    assert net_of(mr, "bridge")["EnableIPv6"] is False
    out = mr.ok("run", "--rm", "busybox", "ip", "-6", "addr", "show", "scope", "global")
    assert "inet6" not in out


def test_two_containers_reach_each_other_over_ipv6(mr, v6):
    v6.append("pair")
    mr.ok("network", "create", "--ipv6", "pair")
    mr.ok("run", "-d", "--name", "p1", "--network", "pair", "busybox", "sleep", "100")
    target = endpoint(mr, "p1", "pair")["GlobalIPv6Address"]
    out = mr.ok("run", "--rm", "--network", "pair", "busybox", "ping", "-6", "-c1", "-W3", target)
    assert "0% packet loss" in out
    # Isolation: another dual-stack network cannot reach it over IPv6 either.
    v6.append("other")
    mr.ok("network", "create", "--ipv6", "other")
    r = mr("run", "--rm", "--network", "other", "busybox", "ping", "-6", "-c1", "-W1", target)
    assert r.returncode != 0 and "100% packet loss" in r.stdout


def test_published_ports_over_ipv6_loopback_and_the_hosts_address(mr, v6, upstream6):
    v6.append("pub")
    mr.ok("network", "create", "--ipv6", "pub")
    mr.ok("run", "-d", "--name", "web6", "--hostname", "web6", "--network", "pub",
          "-p", "18660:80", "-p", "[::1]:18661:80", "-p", "[::]:18662:80", "busybox", "sh", "-c",
          HTTPD)
    assert poll(lambda: answers("::1", 18660))
    for host, port in (("::1", 18660), ("::1", 18661), ("::1", 18662), ("127.0.0.1", 18660),
                       (upstream6.host, 18660), (upstream6.host, 18662)):
        assert http_get(host, port) == "hello-web6", (host, port)
    for host, port in (("127.0.0.1", 18661), ("127.0.0.1", 18662), (upstream6.host, 18661)):
        assert not answers(host, port), (host, port)  # [::1] and [::] only: not 0.0.0.0
    assert mr.ok("port", "web6").splitlines() == [
        "80/tcp -> 0.0.0.0:18660", "80/tcp -> [::]:18660", "80/tcp -> [::1]:18661",
        "80/tcp -> [::]:18662"]
    # From "outside": the upstream namespace reaches the host's address (prerouting DNAT).
    out = subprocess.run(["ip", "netns", "exec", upstream6.ns, "python3", "-c",
                          "import socket; s=socket.create_connection(('%s', 18660), timeout=5);"
                          "s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n'); print(s.makefile().read())"
                          % upstream6.host], capture_output=True, text=True, timeout=30)
    assert "hello-web6" in out.stdout, out.stderr
    # Another container, through the host's IPv6 address (hairpin through the bridge).
    req = f"wget -qO- http://[{upstream6.host}]:18660/"
    assert mr.ok("run", "--rm", "--network", "pub", "busybox", "sh", "-c", req).strip() == \
        "hello-web6"
    r = mr("run", "--rm", "--network", "pub", "-p", "[::1]:18661:80", "busybox", "true")
    assert r.returncode == 125 and "port is already allocated" in r.stderr
    # The ::1 side is the userland proxy: it goes with the container's init.
    mr.ok("stop", "-t", "1", "web6")
    assert poll(lambda: not answers("::1", 18661))
    proxies = subprocess.run(["pgrep", "-f", "minirun.network.proxy .*18661"],
                             capture_output=True, text=True).stdout
    assert proxies == ""


def test_ipv6_host_address_to_an_ipv4_only_container_goes_through_the_proxy(mr):
    mr.ok("run", "-d", "--name", "web4", "--hostname", "web4", "-p", "[::1]:18663:80",
          "busybox", "sh", "-c", HTTPD)
    assert poll(lambda: answers("::1", 18663))
    assert http_get("::1", 18663) == "hello-web4"
    assert mr.ok("port", "web4").splitlines() == ["80/tcp -> [::1]:18663"]


def test_outbound_ipv6_is_masqueraded_and_internal_has_no_way_out(mr, v6, upstream6):
    v6 += ["out6", "sealed6"]
    mr.ok("network", "create", "--ipv6", "out6")
    out = mr.ok("run", "--rm", "--network", "out6", "busybox", "sh", "-c",
                f"echo hi | nc -w 3 {upstream6.address} {upstream6.port}")
    # The upstream saw the host's address on its link, not the container's: masquerade.
    assert out.strip() == upstream6.host
    assert upstream6.seen() == [upstream6.host]
    mr.ok("network", "create", "--ipv6", "--internal", "sealed6")
    routes = mr.ok("run", "--rm", "--network", "sealed6", "busybox", "ip", "-6", "route")
    assert "default" not in routes and "/64" in routes
    r = mr("run", "--rm", "--network", "sealed6", "busybox", "sh", "-c",
           f"echo hi | nc -w 2 {upstream6.address} {upstream6.port}")
    assert r.returncode != 0 or r.stdout == ""
    assert upstream6.seen() == [upstream6.host]


def test_errors_are_one_line_and_nothing_is_made(mr, v6):
    v6 += ["base6"]
    mr.ok("network", "create", "--ipv6", "--subnet", "fd00:7:7::/64", "base6")
    before = mr.ok("network", "ls", "-q")
    for args, words in (
            (["--subnet", "fd00:7:8::/64", "nov6"], "IPv6 has not been enabled for this network"),
            (["--ipv6", "--subnet", "fd00:7::/32", "ovl"], "overlaps"),
            (["--ipv6", "--subnet", "fd00:7:9::/64", "--gateway", "fd00:7:a::1", "badgw"],
             "fd00:7:a::1"),
            (["--ipv6", "--subnet", "fd00:7:9::/64", "--gateway", "nonsense", "badgw2"],
             "nonsense"),
            (["--ipv6", "--subnet", "fd00:7:9::/64", "--subnet", "fd00:7:b::/64", "two"],
             "one --subnet per address family")):
        r = mr("network", "create", *args)
        assert r.returncode == 125, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and words in r.stderr, r.stderr
        assert args[-1] in r.stderr and "Traceback" not in r.stderr
    assert mr.ok("network", "ls", "-q") == before
    r = mr("run", "--rm", "--ip6", "fd00::9", "busybox", "true")
    assert r.returncode == 125 and "has no IPv6" in r.stderr
    r = mr("run", "--rm", "-p", "[fe80::1%eth0]:8080:80", "busybox", "true")
    assert r.returncode == 125 and "scoped" in r.stderr
    r = mr("run", "--rm", "--network", "base6", "--ip6", "fd00:7:7::1", "busybox", "true")
    assert r.returncode == 125 and "fd00:7:7::1" in r.stderr  # the gateway's


def test_compose_enable_ipv6_and_ipv6_address(mr, v6, tmp_path):
    name = "t" + uuid.uuid4().hex[:8]
    (tmp_path / "compose.yaml").write_text(textwrap.dedent("""
        services:
          a:
            image: busybox
            init: true
            command: ["sleep", "100"]
            networks:
              net6: {ipv6_address: "fd00:5:5::50"}
        networks:
          net6:
            enable_ipv6: true
            ipam:
              config:
                - subnet: 10.235.5.0/24
                - subnet: fd00:5:5::/64
        """))
    argv = ["compose", "--project-directory", str(tmp_path), "-p", name]
    try:
        mr.ok(*argv, "up", "-d")
        n = net_of(mr, f"{name}_net6")
        assert n["EnableIPv6"] is True
        assert [c["Subnet"] for c in n["IPAM"]["Config"]] == ["10.235.5.0/24", "fd00:5:5::/64"]
        out = mr.ok(*argv, "exec", "-T", "a", "ip", "-6", "addr", "show", "eth0")
        assert "fd00:5:5::50/64" in out
    finally:
        mr(*argv, "down", "-t", "0", timeout=120)


def test_docker_py_creates_a_dual_stack_network(mr, v6, tmp_path):
    docker = pytest.importorskip("docker", reason="docker-py is not installed "
                                 "(pip install '.[test]')")
    with ApiService(mr.root, mr.runroot, tmp_path / "api.sock") as svc:
        client = docker.DockerClient(base_url=f"unix://{svc.path}", version="auto", timeout=60)
        try:
            ipam = docker.types.IPAMConfig(pool_configs=[
                docker.types.IPAMPool(subnet="10.235.6.0/24"),
                docker.types.IPAMPool(subnet="fd00:6:7::/64", gateway="fd00:6:7::1")])
            net = client.networks.create("py6", driver="bridge", enable_ipv6=True, ipam=ipam)
            try:
                attrs = client.networks.get("py6").attrs
                assert attrs["EnableIPv6"] is True
                assert attrs["IPAM"]["Config"][1] == {"Subnet": "fd00:6:7::/64",
                                                      "Gateway": "fd00:6:7::1"}
                out = client.containers.run("busybox", ["ip", "-6", "route"], network="py6",
                                            remove=True)
                assert b"default via fd00:6:7::1" in out
            finally:
                net.remove()
        finally:
            client.close()
