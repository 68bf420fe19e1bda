"""Lab 07: networking on the default bridge: the veth pair, the container's address, -p.

The exercise (docs/labs/07-networking.md):

  1. a running container `lab07-web` on the default bridge, a busybox httpd published on
     host port 8087 (`-p 8087:80` or `-p 127.0.0.1:8087:80`), whose page `/` answers with the
     container's own IP address;
  2. the file /tmp/lab07/veth holding the name of the host's end of lab07-web's veth pair
     (the host link whose ifindex is the iflink of the container's eth0).

check() asks the kernel: the DNAT rule in `nft list table ip minirun`, an HTTP GET on
127.0.0.1:8087, the container's /sys/class/net/eth0/iflink and the host's links.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import labs as L  # noqa: E402  (the shared helpers: scripts/labs/__init__.py)

TITLE = "networking: the bridge, a veth pair, NAT and -p"
VERIFIED = ("lab07-web answers its own IP on 127.0.0.1:8087 through minirun's DNAT rule, and "
            "/tmp/lab07/veth names its veth's host end")

NAME = "lab07-web"
PORT = 8087
DIR = "/tmp/lab07"
VETH_FILE = f"{DIR}/veth"
RUN = (f"minirun run -d --name {NAME} -p {PORT}:80 busybox sh -c "
       "'mkdir -p /www && hostname -i > /www/index.html && exec httpd -f -p 80 -h /www'")

SOLUTION = f"""
{RUN}
mkdir -p {DIR}
i=$(minirun exec {NAME} cat /sys/class/net/eth0/iflink)
ip -o link | awk -F': ' -v i="$i" '$1 == i {{ split($2, a, "@"); print a[1] }}' > {VETH_FILE}
"""


def http_get(url: str, want: str = "", timeout: float = 3) -> tuple[int | None, str]:
    """(status, body) of a GET with no proxy; (None, the error) when it fails.

    Tried for up to ~3 s until the body contains `want`: a server started a moment ago
    may not be listening yet."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for _ in range(10):
        try:
            with opener.open(url, timeout=timeout) as r:
                status, body = r.status, r.read(4096).decode(errors="replace")
        except OSError as e:
            status, body = None, str(e)
        if status is not None and want in body:
            break
        time.sleep(0.3)
    return status, body


def host_link_name(ifindex: int) -> str | None:
    """The host's link (this namespace) whose ifindex is `ifindex`."""
    for name in os.listdir("/sys/class/net"):
        try:
            with open(f"/sys/class/net/{name}/ifindex") as f:
                if int(f.read()) == ifindex:
                    return name
        except (OSError, ValueError):
            continue
    return None


def check_web(c: dict) -> list[str]:
    problems = []
    nets = (c.get("NetworkSettings") or {}).get("Networks") or {}
    if "bridge" not in nets:
        return [f"{NAME} is not on the default network `bridge` (it is on {sorted(nets)}): "
                f"recreate it without --network: `minirun rm -f {NAME}; {RUN}`"]
    ip = nets["bridge"].get("IPAddress", "")
    ports = ((c.get("NetworkSettings") or {}).get("Ports") or {}).get("80/tcp") or []
    if not any(str(b.get("HostPort")) == str(PORT) and b.get("HostIp") in ("", "0.0.0.0", "127.0.0.1")
               for b in ports):
        problems.append(f"{NAME}'s port 80 is not published on host port {PORT} "
                        f"(`minirun port {NAME}` shows {ports or 'nothing'}): ports are chosen "
                        f"when the container is made, so recreate it with `-p {PORT}:80`: "
                        f"`minirun rm -f {NAME}; {RUN}`")
        return problems
    r = L.run(["nft", "list", "table", "ip", "minirun"])
    rule = f"tcp dport {PORT} dnat to {ip}:80"
    if rule not in r.stdout:
        problems.append(f"`nft list table ip minirun` has no rule `{rule}` (exit {r.returncode}): "
                        "minirun rewrites the table at every network change; recreate the "
                        f"container (`minirun rm -f {NAME}; {RUN}`) and look again")
    status, body = http_get(f"http://127.0.0.1:{PORT}/", want=ip)
    if status is None:
        problems.append(f"GET http://127.0.0.1:{PORT}/ failed ({body}): is httpd running in "
                        f"{NAME} on port 80 (`minirun logs {NAME}`, `minirun top {NAME}`)?")
    elif ip not in body:
        problems.append(f"http://127.0.0.1:{PORT}/ answers {body.strip()[:60]!r}, not the "
                        f"container's address {ip}: write it to the page that httpd serves "
                        "(in the container, `hostname -i` prints it) and serve that directory, "
                        f"e.g. `minirun rm -f {NAME}; {RUN}`")
    return problems


def check_veth(pid: int) -> list[str]:
    try:
        with open(VETH_FILE) as f:
            given = f.read().strip()
    except OSError:
        given = None
    r = L.minirun("exec", NAME, "cat", "/sys/class/net/eth0/iflink")
    try:
        peer = host_link_name(int(r.stdout.strip()))
    except ValueError:
        return [f"cannot read eth0's iflink in {NAME} ({r.stderr.strip()})"]
    how = (f"in the container `cat /sys/class/net/eth0/iflink` gives the ifindex of the other "
           f"end; on the host, `ip -o link` lists links by ifindex: write that link's name "
           f"(without @ifN) to {VETH_FILE}")
    if given is None:
        return [f"there is no {VETH_FILE}: {how}"]
    if given != peer:
        return [f"{VETH_FILE} says {given!r}, but the host end of {NAME}'s veth pair is another "
                f"link: {how}"]
    return []


def check() -> list[str]:
    pid, problems = L.running_pid(NAME, RUN)
    if pid is None:
        return problems
    c = L.container(NAME) or {}
    return check_web(c) + check_veth(pid)


def cleanup() -> None:
    L.remove_containers("lab07-")
    L.remove_paths(DIR)
