"""network.dns: the hostname, hosts and resolv.conf files every container gets."""

from __future__ import annotations

import os

from minirun.network import dns


def test_resolv_conf_drops_loopback_nameservers_and_keeps_the_rest():
    host = "search example.org\nnameserver 127.0.0.53\nnameserver 10.0.0.2\n" \
           "nameserver ::1\noptions edns0\n"
    assert dns.resolv_conf(host) == ("search example.org\nnameserver 10.0.0.2\n"
                                     "options edns0\n")


def test_resolv_conf_falls_back_to_googles_resolvers_when_none_is_left():
    out = dns.resolv_conf("nameserver 127.0.0.1\nnameserver 127.1.2.3\nsearch lan\n")
    assert out == "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
    assert dns.resolv_conf("") == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"


def test_resolv_conf_keeps_ipv6_servers_that_are_not_loopback():
    assert "nameserver 2001:4860:4860::8888" in dns.resolv_conf(
        "nameserver 2001:4860:4860::8888\n")


def test_hosts_maps_localhost_and_the_hostname():
    text = dns.hosts("web")
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert "::1\tlocalhost ip6-localhost ip6-loopback" in lines
    assert lines[-1] == "127.0.1.1\tweb"
    assert text.endswith("\n")


def test_hosts_with_a_domain_and_an_address_lists_the_fqdn_first():
    assert dns.hosts("web", "example.org", "172.17.0.2").splitlines()[-1] == \
        "172.17.0.2\tweb.example.org web"


def test_write_writes_the_three_files(tmp_path):
    dns.write(str(tmp_path), "web", "example.org")
    assert (tmp_path / "hostname").read_text() == "web\n"
    assert (tmp_path / "hosts").read_text() == dns.hosts("web", "example.org")
    resolv = (tmp_path / "resolv.conf").read_text()
    servers = [line.split()[1] for line in resolv.splitlines() if line.startswith("nameserver")]
    assert servers and not any(s.startswith("127.") or s == "::1" for s in servers)
    assert sorted(os.listdir(tmp_path)) == ["hostname", "hosts", "resolv.conf"]  # no temp files


def test_write_in_host_mode_copies_the_hosts_own_files(tmp_path):
    dns.write(str(tmp_path), "web", host_mode=True)
    assert (tmp_path / "hostname").read_text() == "web\n"
    if os.path.exists("/etc/hosts"):
        assert (tmp_path / "hosts").read_text() == open("/etc/hosts").read()
    if os.path.exists("/etc/resolv.conf") and open("/etc/resolv.conf").read():
        assert (tmp_path / "resolv.conf").read_text() == open("/etc/resolv.conf").read()


def test_resolv_conf_drops_loopback_resolvers():
    assert dns.resolv_conf("nameserver 127.0.0.53\nsearch x\n") == \
        "search x\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
    assert dns.resolv_conf("nameserver 10.0.0.1\nnameserver ::1\n") == "nameserver 10.0.0.1\n"


def test_etc_files(tmp_path):
    dns.write(str(tmp_path), "box", "example.org")
    assert (tmp_path / "hostname").read_text() == "box\n"
    hosts = (tmp_path / "hosts").read_text()
    assert "127.0.0.1\tlocalhost" in hosts and "box.example.org box" in hosts
    assert (tmp_path / "resolv.conf").exists()
