"""network/dnsserver.py against an independent client: busybox's nslookup asks a server built
on it, in a network namespace of the test's own (unshare -n), on 127.0.0.1:53. Nothing leaves
that namespace."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

SERVER = textwrap.dedent("""
    import socket, subprocess, sys, threading
    sys.path.insert(0, sys.argv[1])
    from minirun.network import dnsserver as dns

    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    names = {"web": ["10.9.0.2", "10.9.0.3", "10.9.0.4"], "db": ["10.9.0.9"]}
    ptrs = {"10.9.0.9": "shop-db-1.shop_default"}
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 53))

    def serve():
        while True:
            data, peer = udp.recvfrom(4096)
            q = dns.parse(data)
            if q is None:
                continue
            ip = dns.reverse_name(q.name)
            if ip is not None:
                out = dns.answer(data, ptr=ptrs[ip]) if ip in ptrs else dns.refuse(data, dns.NXDOMAIN)
            elif q.name in names:
                out = dns.answer(data, names[q.name])
            else:
                out = dns.refuse(data, dns.NXDOMAIN)
            udp.sendto(out, peer)

    threading.Thread(target=serve, daemon=True).start()
    for args in (["web"], ["db"], ["-type=ptr", "9.0.9.10.in-addr.arpa"], ["nosuch"]):
        r = subprocess.run(["busybox", "nslookup", *args, "127.0.0.1"], capture_output=True,
                           text=True, timeout=10)
        print("===", " ".join(args), r.returncode)
        print(r.stdout + r.stderr)
""")


def test_busybox_nslookup_reads_our_answers(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root (a network namespace of its own)")
    for tool, package in (("busybox", "busybox-static"), ("unshare", "util-linux"),
                          ("ip", "iproute2")):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (scripts/setup installs {package})")
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run(["unshare", "-n", sys.executable, str(script), repo], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    parts = {chunk.split("\n", 1)[0]: chunk for chunk in r.stdout.split("=== ")[1:]}
    web = parts["web 0"]
    assert all(f"Address: {ip}" in web for ip in ("10.9.0.2", "10.9.0.3", "10.9.0.4"))
    assert "Address: 10.9.0.9" in parts["db 0"]
    assert "shop-db-1.shop_default" in parts["-type=ptr 9.0.9.10.in-addr.arpa 0"]
    nosuch = next(v for k, v in parts.items() if k.startswith("nosuch"))
    assert "NXDOMAIN" in nosuch or "can't find" in nosuch
