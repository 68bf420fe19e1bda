"""IPv6 without root: the dual-stack network records and their IPAM (pool choice, overlaps,
gateways, --ip6), -p with IPv6 host addresses, the ip6 side of the NAT table, which published
ports the userland proxy takes, and the CLI's --subnet/--gateway per family."""

from __future__ import annotations

import ipaddress
import os

import pytest

from minirun.cli.network import by_family
from minirun.engine.networking import InvalidPort, parse_publish, same_host_ip
from minirun.errors import MinirunError
from minirun.network import ipv6, nat, proxy
from minirun.network.networks import InvalidNetwork, NetworkConflict, Networks


@pytest.fixture
def nets(tmp_path, monkeypatch):
    monkeypatch.setattr(ipv6, "host_routes", lambda: [])
    monkeypatch.setattr("minirun.network.networks.host_routes", lambda: [])
    return Networks(str(tmp_path))


def records(nets) -> list[str]:
    return sorted(n for n in os.listdir(nets.dir) if n.endswith(".json"))


def test_the_pool_is_a_ula_48_and_networks_take_its_lowest_free_64(nets, monkeypatch):
    pool = ipv6.pool()
    assert pool.prefixlen == 48 and pool.subnet_of(ipaddress.ip_network("fd00::/8"))
    assert ipv6.pool() == pool  # the same on every call (from the machine-id)
    a = nets.create("net-a", ipv6=True)
    b = nets.create("net-b", ipv6=True)
    first, second = list(pool.subnets(new_prefix=64))[:2]
    assert (a.EnableIPv6, a.Subnet6, a.Gateway6) == (True, str(first), str(first[1]))
    assert b.Subnet6 == str(second) and a.prefixlen6 == 64
    # A host route on the next one (a LAN of the host's, say) is stepped over.
    third, fourth = list(pool.subnets(new_prefix=64))[2:4]
    monkeypatch.setattr(ipv6, "host_routes", lambda: [third])
    assert nets.create("net-c", ipv6=True).Subnet6 == str(fourth)
    # IPv4-only networks have no IPv6 side; the default one neither.
    assert nets.create("net-d").EnableIPv6 is False and nets.get("bridge").Subnet6 == ""


def test_given_subnet_and_gateway_and_their_errors_make_nothing(nets):
    n = nets.create("fixed", ipv6=True, subnet6="fd00:1:2::/64", gateway6="fd00:1:2::fe")
    assert (n.Subnet6, n.Gateway6) == ("fd00:1:2::/64", "fd00:1:2::fe")
    before = records(nets)
    cases = [
        (dict(subnet6="fd00:9::/64"), InvalidNetwork,
         "IPv6 has not been enabled for this network, but an IPv6 subnet has been provided"),
        (dict(ipv6=True, subnet6="fd00:1::/32"), NetworkConflict,
         "Pool overlaps with other one on this address space: fd00:1::/32 and network fixed"),
        (dict(ipv6=True, subnet6="fd00:9::/64", gateway6="fd00:8::1"), InvalidNetwork,
         "gateway fd00:8::1 is not a host address of subnet fd00:9::/64"),
        (dict(ipv6=True, subnet6="fd00:9::/64", gateway6="fd00:9::"), InvalidNetwork,
         "gateway fd00:9:: is not a host address"),  # the Subnet-Router anycast address
        (dict(ipv6=True, subnet6="fd00:9::/64", gateway6="10.0.0.1"), InvalidNetwork,
         "invalid IPv6 gateway '10.0.0.1'"),
        (dict(ipv6=True, subnet6="10.9.0.0/24"), InvalidNetwork, "an IPv6 network"),
        (dict(ipv6=True, subnet6="fd00:9::/127"), InvalidNetwork, "/126 or larger"),
        (dict(ipv6=True, subnet6="nonsense"), InvalidNetwork, "invalid IPv6 subnet 'nonsense'"),
        (dict(ipv6=True, driver="macvlan"), InvalidNetwork, "bridge networks"),
    ]
    for kw, cls, words in cases:
        with pytest.raises(cls) as e:
            nets.create("bad", **kw)
        assert words in str(e.value) and "network bad" in str(e.value), str(e.value)
        assert "\n" not in str(e.value)
    assert records(nets) == before


def test_ipam_per_family(nets):
    n = nets.create("dual", subnet="10.9.0.0/24", ipv6=True, subnet6="fd00:9::/64",
                    aux_addresses={"r": "fd00:9::2"})
    assert nets.allocate(n, "c1") == "10.9.0.2"
    assert nets.allocate(n, "c1", v6=True) == "fd00:9::3"  # ::1 the gateway, ::2 an aux
    assert nets.allocate(n, "c1") == "10.9.0.2"  # the same again, each family its own
    assert nets.allocate(n, "c1", v6=True) == "fd00:9::3"
    assert nets.allocate(n, "c2", "fd00:9:0::00ab", v6=True) == "fd00:9::ab"  # RFC 5952
    with pytest.raises(NetworkConflict, match="Address already in use: fd00:9::ab"):
        nets.allocate(n, "c3", "fd00:9::ab", v6=True)
    for bad in ("fd00:9::1", "fd00:8::5", "10.9.0.9", "nonsense"):
        with pytest.raises(InvalidNetwork, match="--ip6"):
            nets.allocate(n, "c3", bad, v6=True)
    nets.release("dual", "c1")
    assert nets.allocate(n, "c4", v6=True) == "fd00:9::3"
    assert nets.allocate(n, "c4") == "10.9.0.2"
    v4 = nets.create("v4only")
    with pytest.raises(InvalidNetwork, match="network v4only has no IPv6"):
        nets.allocate(v4, "c1", "fd00::5", v6=True)


def test_parse_publish_takes_ipv6_host_addresses_in_brackets():
    assert parse_publish("[::]:8080:80") == ("::", 8080, 80, "tcp")
    assert parse_publish("[::1]:8080:80") == ("::1", 8080, 80, "tcp")
    assert parse_publish("[0:0::1]:53:53/udp") == ("::1", 53, 53, "udp")
    assert parse_publish("[fd00::2]::80") == ("fd00::2", None, 80, "tcp")
    assert parse_publish("127.0.0.1:8080:80") == ("127.0.0.1", 8080, 80, "tcp")
    for spec, words in (("[fe80::1%eth0]:8080:80", "scoped"), ("[fe80::1]:8080:80", "link-local"),
                        ("[ff02::1]:8080:80", "multicast"), ("[nonsense]:8080:80", "host IP")):
        with pytest.raises(InvalidPort, match=words):
            parse_publish(spec)


def test_which_host_ips_share_a_socket_address():
    assert same_host_ip("", "::") and same_host_ip("", "0.0.0.0") and same_host_ip("::", "::1")
    assert same_host_ip("::1", "::1") and same_host_ip("0.0.0.0", "127.0.0.1")
    assert not same_host_ip("0.0.0.0", "::") and not same_host_ip("::1", "127.0.0.1")
    assert not same_host_ip("::1", "fd00::2") and not same_host_ip("0.0.0.0", "::1")


def _net(name: str, v6: bool, internal: bool = False):
    from minirun.network.networks import Network

    i = {"a": 1, "b": 2}[name]
    return Network(Name=name, Id=name, Subnet=f"10.{i}.0.0/24", Gateway=f"10.{i}.0.1",
                   Bridge=f"mr-{name}", Internal=internal, EnableIPv6=v6,
                   Subnet6=f"fd0{i}::/64" if v6 else "", Gateway6=f"fd0{i}::1" if v6 else "")


def test_the_ip6_table_is_there_only_with_a_dual_stack_network():
    a, b = _net("a", True), _net("b", False, internal=True)
    ps = [nat.Published("tcp", "", 8080, "10.1.0.2", 80, "fd01::2"),
          nat.Published("tcp", "::1", 8081, "10.1.0.2", 80, "fd01::2"),
          nat.Published("tcp", "fd00::2", 8082, "10.1.0.2", 80, "fd01::2"),
          nat.Published("udp", "127.0.0.1", 53, "10.1.0.2", 53, "fd01::2")]
    script = nat.ruleset([a, b], ps, "t")
    v4, _, v6 = script.partition("table ip6 t {}\ndelete table ip6 t\n")
    assert "tcp dport 8080 dnat to 10.1.0.2:80" in v4 and "8082" not in v4  # IPv6 ones: not here
    assert "ip6 daddr != ::1 fib daddr type local jump published" in v6
    assert "    tcp dport 8080 dnat to [fd01::2]:80" in v6
    assert "ip6 daddr fd00::2 tcp dport 8082 dnat to [fd01::2]:80" in v6
    assert "8081" not in script  # [::1]: the proxy's
    assert "dport 53" not in v6  # an IPv4 binding
    assert 'ip6 saddr fd01::/64 oifname != "mr-a" masquerade' in v6
    assert 'iifname "mr-b" oifname != "mr-b" drop' in v6  # --internal, for IPv6 too
    # No dual-stack network: the ip6 table is deleted (and made empty first, so the delete
    # cannot fail); no network at all: both are.
    assert nat.ruleset([b], [], "t").endswith("table ip6 t {}\ndelete table ip6 t\n")
    assert nat.ruleset([], [], "t") == ("table ip t {}\ndelete table ip t\n"
                                        "table ip6 t {}\ndelete table ip6 t\n")
    internal6 = nat.ruleset([_net("a", True, internal=True)], [], "t")
    assert "masquerade" not in internal6.split("table ip6 t {\n")[1].replace(
        "ct status dnat masquerade", "")


def test_the_proxy_takes_what_the_kernel_cannot_nat():
    binds = {"80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "::1", "HostPort": "8081"},
                        {"HostIp": "::", "HostPort": "8082"},
                        {"HostIp": "fd00::2", "HostPort": "8083"},
                        {"HostIp": "127.0.0.1", "HostPort": "8084"}],
             "53/udp": [{"HostIp": "::1", "HostPort": "5353"}]}
    dual = proxy.plan(binds, "10.1.0.2", "fd01::2")
    assert [(r.host_ip, r.host_port, r.ip, r.port, r.proto) for r in dual] == [
        ("::1", 8080, "fd01::2", 80, "tcp"), ("::1", 8081, "fd01::2", 80, "tcp"),
        ("::1", 8082, "fd01::2", 80, "tcp"), ("::1", 5353, "fd01::2", 53, "udp")]
    v4only = proxy.plan(binds, "10.1.0.2", "")
    assert [(r.host_ip, r.host_port, r.ip) for r in v4only] == [
        ("::1", 8081, "10.1.0.2"), ("::", 8082, "10.1.0.2"), ("fd00::2", 8083, "10.1.0.2"),
        ("::1", 5353, "10.1.0.2")]
    assert proxy.plan({"80/tcp": [{"HostIp": "", "HostPort": "1"}]}, "10.1.0.2", "") == []


def test_subnets_and_gateways_go_by_family():
    assert by_family("n", ("10.1.0.0/24", "fd00::/64"), ("fd00::fe",)) == (
        ("10.1.0.0/24", None), ("fd00::/64", "fd00::fe"))
    assert by_family("n", (), ()) == ((None, None), (None, None))
    with pytest.raises(MinirunError, match="network n: --subnet fd00::/64 and fd01::/64"):
        by_family("n", ("fd00::/64", "fd01::/64"), ())
    with pytest.raises(MinirunError, match="no matching subnet for gateway fd00::1"):
        by_family("n", ("10.1.0.0/24",), ("fd00::1",))
