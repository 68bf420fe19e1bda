"""Lab 08: a user network with names, and a networked container with limits (the series' end).

The exercise (docs/labs/08-user-networks.md):

  1. a user network `lab08-net`;
  2. `lab08-api` on it: a busybox httpd whose page says "hello from lab08-api", published on
     host port 8088, limited to 32 MiB of memory, half a CPU and 20 processes;
  3. `lab08-client` on it, running `sleep 3600`, that reaches the api by its name.

check() asks the kernel and the containers: the cgroup files of lab08-api, lab08-client's
/etc/resolv.conf (127.0.0.11), a `wget http://lab08-api/` run inside lab08-client (the
embedded DNS server answers the name), and a GET on 127.0.0.1:8088 from the host.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import labs as L  # noqa: E402  (the shared helpers: scripts/labs/__init__.py)
from labs import lab05, lab07  # noqa: E402  (cgroup files, HTTP GET)

TITLE = "user networks: names via 127.0.0.11, and limits"
VERIFIED = ("lab08-client reaches http://lab08-api/ by name on lab08-net; lab08-api is "
            "published on 8088 and capped at 32 MiB, 0.5 CPU, 20 pids")

NET = "lab08-net"
API = "lab08-api"
CLIENT = "lab08-client"
PORT = 8088
MEMORY = 32 * 1024 * 1024
QUOTA, PERIOD = 50000, 100000
PIDS = 20
CREATE_NET = f"minirun network create {NET}"
RUN_API = (f"minirun run -d --name {API} --network {NET} -m 32m --cpus 0.5 --pids-limit 20 "
           f"-p {PORT}:80 busybox sh -c 'mkdir -p /www && echo \"hello from {API}\" > "
           "/www/index.html && exec httpd -f -p 80 -h /www'")
RUN_CLIENT = f"minirun run -d --name {CLIENT} --network {NET} busybox sleep 3600"

SOLUTION = f"""
{CREATE_NET}
{RUN_API}
{RUN_CLIENT}
"""


def network(name: str) -> dict | None:
    return L.inspected("network", "inspect", name)


def on_net(c: dict) -> bool:
    return NET in ((c.get("NetworkSettings") or {}).get("Networks") or {})


def check_limits(pid: int) -> list[str]:
    got = lab05.limits(pid)
    want = {"memory": str(MEMORY), "quota": str(QUOTA), "period": str(PERIOD), "pids": str(PIDS)}
    flags = {"memory": "-m 32m", "quota": "--cpus 0.5", "period": "--cpus 0.5",
             "pids": "--pids-limit 20"}
    problems = []
    for key, value in want.items():
        f, v = got[key]
        if v != value:
            problems.append(f"{f} holds {v}, the exercise wants {value}: change it live with "
                            f"`minirun update {flags[key]} {API}`")
    return problems


def check_api() -> list[str]:
    pid, problems = L.running_pid(API, RUN_API)
    if pid is None:
        return problems
    c = L.container(API) or {}
    if not on_net(c):
        return [f"{API} is not on {NET}: connect it (`minirun network connect {NET} {API}`) or "
                f"recreate it with `--network {NET}`"]
    problems += check_limits(pid)
    ports = ((c.get("NetworkSettings") or {}).get("Ports") or {}).get("80/tcp") or []
    if not any(str(b.get("HostPort")) == str(PORT) for b in ports):
        problems.append(f"{API}'s port 80 is not published on host port {PORT} (`minirun port "
                        f"{API}` shows {ports or 'nothing'}): recreate it with `-p {PORT}:80`: "
                        f"`minirun rm -f {API}; {RUN_API}`")
        return problems
    status, body = lab07.http_get(f"http://127.0.0.1:{PORT}/", want=API)
    if status is None or API not in body:
        problems.append(f"GET http://127.0.0.1:{PORT}/ from the host gives "
                        f"{(body.strip() or 'an empty page')[:80]!r}, want a page saying "
                        f"'hello from {API}': serve it with httpd in {API} (`{RUN_API}`)")
    return problems


def check_client() -> list[str]:
    pid, problems = L.running_pid(CLIENT, RUN_CLIENT)
    if pid is None:
        return problems
    c = L.container(CLIENT) or {}
    if not on_net(c):
        return [f"{CLIENT} is not on {NET}, so no name of {NET} resolves in it: "
                f"`minirun network connect {NET} {CLIENT}`, or recreate it with `--network {NET}`"]
    r = L.minirun("exec", CLIENT, "cat", "/etc/resolv.conf")
    if "nameserver 127.0.0.11" not in r.stdout:
        problems.append(f"{CLIENT}'s /etc/resolv.conf does not say `nameserver 127.0.0.11` "
                        "(the embedded DNS server of a user network): recreate it with "
                        f"`--network {NET}`")
    for _ in range(10):  # a container that started a moment ago may not be serving yet
        # (busybox's `wget -T` segfaults in this busybox build: timeout(1) bounds it instead)
        r = L.minirun("exec", CLIENT, "timeout", "5", "wget", "-qO-", f"http://{API}/",
                      timeout=20)
        if r.returncode == 0 and API in r.stdout:
            break
        time.sleep(0.3)
    if r.returncode != 0 or API not in r.stdout:
        err = (r.stderr.strip() or r.stdout.strip())[:100]
        problems.append(f"`minirun exec {CLIENT} wget -qO- http://{API}/` fails ({err!r}): "
                        f"both containers must be on {NET} and running, and {API} must serve "
                        f"a page on port 80; `minirun exec {CLIENT} nslookup {API}` shows "
                        "what 127.0.0.11 answers")
    return problems


def check() -> list[str]:
    n = network(NET)
    if n is None:
        return [f"there is no network {NET}: `{CREATE_NET}` (a user network: its containers "
                "find each other by name)"]
    if n.get("Driver") != "bridge":
        return [f"{NET} has driver {n.get('Driver')}, the exercise wants a bridge: "
                f"`minirun network rm {NET}; {CREATE_NET}`"]
    return check_api() + check_client()


def cleanup() -> None:
    L.remove_containers("lab08-")
    r = L.minirun("network", "ls", "--format", "{{.Name}}")
    nets = [n for n in r.stdout.split() if n.startswith("lab08-")]
    if nets:
        L.minirun("network", "rm", *nets, timeout=60)
    L.remove_paths("/tmp/lab08")
