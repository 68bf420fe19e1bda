"""Real servers under minirun: Debian's nginx-light, postgresql and redis-server, each run
detached on a user network and used from a second container by its name, as a compose file's
services would be.

The image comes from tests/debian_images.py (built once per machine from the Debian package
registry by scripts/build-debian-image, imported once per session); without mmdebstrap or the
mirror these tests skip and say which. The `mr` fixture (conftest) removes every container,
volume and network a test made after it, also when it fails. Readiness is polled from inside
the server's container, with a deadline, never slept for.
"""

from __future__ import annotations

import ipaddress
import json

import pytest

import debian_images
from debian_images import IMAGE
from helpers import poll

debian_mr_home = debian_images.debian_mr_home  # the session's fixture, made visible here


@pytest.fixture(scope="module")
def mr_home(debian_mr_home):
    """conftest's `mr` on the session's root that has IMAGE (instead of busybox's)."""
    return debian_mr_home


def wait_ready(mr, name: str, *probe: str, timeout: float = 60.0) -> None:
    """Poll `exec name probe...` until it succeeds; fail at once, with the server's logs, if
    the container stops, or at the deadline."""
    def state() -> str | None:
        if mr("exec", name, *probe).returncode == 0:
            return "ready"
        if not mr.record(name)["State"]["Running"]:
            return "exited"
        return None

    got = poll(state, timeout=timeout, every=0.1)
    if got != "ready":
        logs = mr("logs", name)
        raise AssertionError(f"{name}: {got or f'not ready after {timeout:.0f} s'}; "
                             f"its logs:\n{logs.stdout}{logs.stderr}")


def user_network(mr, name: str) -> str:
    """`network create name`; returns its subnet."""
    mr.ok("network", "create", name)
    return json.loads(mr.ok("network", "inspect", name))[0]["IPAM"]["Config"][0]["Subnet"]


def client(mr, net: str, *argv: str) -> str:
    """Run argv in a throw-away container of IMAGE on network net; its stdout."""
    return mr.ok("run", "--rm", "--network", net, IMAGE, *argv)


def test_nginx_serves_a_page_by_container_name(mr):
    body = "served by nginx-light under minirun"
    user_network(mr, "web-net")
    # The foreground is the command's business (no hook in the image): daemon off.
    mr.ok("run", "-d", "--name", "web", "--network", "web-net", IMAGE, "sh", "-c",
          f"echo '{body}' > /var/www/html/index.html && exec nginx -g 'daemon off;'")
    wait_ready(mr, "web", "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1/")
    head, _, got = client(mr, "web-net", "curl", "-fsS", "-i", "http://web/").partition("\n\n")
    assert got == body + "\n"
    assert "server: nginx" in head.lower(), head


# The server's command, run as root: the volume's mount point is a fresh root-owned directory,
# so PGDATA is a subdirectory made for postgres (as the official image does), initialised on
# first start only; then postgres itself is PID 1 (setpriv execs, su would stay as parent), so
# `stop`'s SIGTERM reaches it and it shuts down cleanly. postgres refuses to run as root.
# listen_addresses='*': Debian's default is localhost. pg_hba.conf: initdb's trust lines cover
# 127.0.0.1 only; the network's subnet is added (trust: a test, not a deployment).
PG_SERVER = r"""
set -e
bin=$(echo /usr/lib/postgresql/*/bin)
data=/var/lib/postgresql/data/pgdata
as_postgres="setpriv --reuid=postgres --regid=postgres --init-groups"
install -d -o postgres -g postgres -m 700 "$data"
if [ ! -s "$data/PG_VERSION" ]; then
  $as_postgres "$bin/initdb" -D "$data" --auth=trust >/dev/null
  echo "listen_addresses = '*'" >> "$data/postgresql.conf"
  echo "host all all $SUBNET trust" >> "$data/pg_hba.conf"
fi
exec $as_postgres "$bin/postgres" -D "$data"
"""


def start_postgres(mr, name: str, net: str, subnet: str) -> None:
    mr.ok("run", "-d", "--name", name, "--network", net, "-e", f"SUBNET={subnet}",
          "-v", "pgdata:/var/lib/postgresql/data", IMAGE, "sh", "-c", PG_SERVER)
    wait_ready(mr, name, "pg_isready", "-q", "-h", "127.0.0.1", "-U", "postgres")


def psql(mr, net: str, host: str, sql: str) -> str:
    return client(mr, net, "psql", "-h", host, "-U", "postgres", "-v", "ON_ERROR_STOP=1",
                  "-tA", "-c", sql)


def test_postgres_over_the_network_and_its_data_outlives_the_container(mr):
    subnet = user_network(mr, "db-net")
    start_postgres(mr, "db1", "db-net", subnet)
    psql(mr, "db-net", "db1", "CREATE TABLE greetings (id int PRIMARY KEY, msg text); "
         "INSERT INTO greetings VALUES (1, 'kept in a volume')")
    # The client really came over the user network, from another container's address.
    peer = psql(mr, "db-net", "db1", "SELECT inet_client_addr()").strip()
    assert ipaddress.ip_address(peer) in ipaddress.ip_network(subnet), (peer, subnet)

    mr.ok("stop", "db1")
    assert mr.record("db1")["State"]["ExitCode"] == 0  # SIGTERM: a clean (smart) shutdown
    mr.ok("rm", "db1")
    assert "pgdata" in mr.ok("volume", "ls", "-q").split()

    start_postgres(mr, "db2", "db-net", subnet)  # PG_VERSION is there: no initdb this time
    assert psql(mr, "db-net", "db2", "SELECT msg FROM greetings WHERE id = 1").strip() \
        == "kept in a volume"


def test_redis_set_and_get_from_other_containers(mr):
    user_network(mr, "cache-net")
    # --protected-mode no: without a config file redis listens on every address but, with no
    # password set, answers only loopback clients; the clients here come from other containers.
    mr.ok("run", "-d", "--name", "cache", "--network", "cache-net", "-u", "redis",
          "-w", "/var/lib/redis", IMAGE, "redis-server", "--protected-mode", "no")
    wait_ready(mr, "cache", "redis-cli", "ping")
    assert client(mr, "cache-net", "redis-cli", "-h", "cache", "set", "greeting", "hi").strip() \
        == "OK"
    # Another container, the same server: the value is the server's, not the client's.
    assert client(mr, "cache-net", "redis-cli", "-h", "cache", "get", "greeting").strip() == "hi"
