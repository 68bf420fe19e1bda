"""`minirun compose` running real servers (Debian's nginx-light, postgresql, redis-server and
python3's http.server), used the way a compose project's services use each other: by name,
over the project's networks.

- web + db: postgres with a named volume and a pg_isready healthcheck, nginx waiting for it
  (depends_on: service_healthy, `up --wait`); psql from web reaches `db` by service name; the
  rows outlive `down` and the next `up`; `down -v` removes the volume, and the next `up` starts
  from an empty database.
- front/back networks: a service on `front` reaches `api` (on both) but neither resolves `db`
  (on `back` only) nor reaches its address; `api` reaches `db`.
- build + scale: a `web` image built from a Dockerfile (named `<project>-web`, as Compose names
  an image for a service without `image:`), started three times after a healthy redis; `web`
  resolves to three addresses that answer with three different hostnames.
- `.env`: a port set there is substituted into the service's command (`compose config` shows
  it) and nginx answers on it.
- one-offs, exec, logs: `run --rm` talks to the running service and leaves no container;
  `exec -T` passes the command's exit code on; `logs -f` shows new prefixed lines and ends
  when the service is stopped by another `compose stop`.

Two tests pin down details this suite found minirun doing differently from Docker Compose,
fixed since: the log prefix leaves the project out (`ticker-1  | `), and a one-off container
does not answer to the service's name (only with `run --use-aliases`).

The image comes from tests/debian_images.py (built once per machine, imported once per
session); without mmdebstrap or the mirror these tests skip and say why. Each test's project
has a name of its own and is taken down (`down -v --rmi local`) by the `project` fixture, failed
or not; conftest's `mr` then checks that nothing is left. Servers declare healthchecks, so
`up --wait` returns once they answer; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
import threading
import uuid
from pathlib import Path

import pytest

import debian_images
from debian_images import IMAGE
from helpers import poll

debian_mr_home = debian_images.debian_mr_home  # the session's fixture, made visible here


@pytest.fixture(scope="module")
def mr_home(debian_mr_home):
    """conftest's `mr` on the session's root that has IMAGE (instead of busybox's)."""
    return debian_mr_home


class Project:
    """A compose project in a directory: `p.ok("up", "-d")` runs `minirun compose -f
    DIR/compose.yaml -p NAME up -d` (and fails the test unless it exits 0)."""

    def __init__(self, mr, directory: Path) -> None:
        self.mr, self.dir = mr, directory
        self.name = "s" + uuid.uuid4().hex[:8]

    def argv(self, *args: str) -> list[str]:
        return ["compose", "-f", str(self.dir / "compose.yaml"), "-p", self.name, *args]

    def __call__(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.mr(*self.argv(*args), **kw)

    def ok(self, *args: str, **kw) -> str:
        r = self(*args, **kw)
        assert r.returncode == 0, f"compose {' '.join(args)} -> {r.returncode}: {r.stderr}"
        return r.stdout

    def exec(self, service: str, *argv: str) -> str:
        return self.ok("exec", "-T", service, *argv)

    def ps(self, *args: str) -> list[dict]:
        return [json.loads(line) for line in self.ok("ps", "--format", "json", *args).splitlines()]


@pytest.fixture
def project(mr, tmp_path):
    """project(compose_yaml, files={relative path: text}) -> a Project in tmp_path. `{IMAGE}` in
    the text stands for the Debian image. Taken down, volumes and built images too, after."""
    made: list[Project] = []

    def make(compose_yaml: str, files: dict[str, str] | None = None) -> Project:
        for rel, text in {"compose.yaml": compose_yaml, **(files or {})}.items():
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_text(textwrap.dedent(text).replace("{IMAGE}", IMAGE))
        made.append(Project(mr, tmp_path))
        return made[-1]

    yield make
    for p in made:
        r = p("down", "-v", "--rmi", "local", "-t", "1", timeout=120)
        assert r.returncode == 0, f"down: {r.stderr}"


# Redis for other containers, as a Compose extension field the services merge (`<<: *redis`):
# without a config file redis answers only loopback clients unless protected mode is off (no
# password: a test, not a deployment). Put in front of a file's `services:`.
X_REDIS = """
    x-redis: &redis
      image: {IMAGE}
      command: ["redis-server", "--protected-mode", "no"]
      user: redis
      working_dir: /var/lib/redis
      healthcheck:
        test: ["CMD", "redis-cli", "ping"]
        interval: 1s
        retries: 30
"""


# --- 1. web + postgres, a named volume -------------------------------------------------------

# Postgres as test_debian_servers.py runs it: PGDATA a subdirectory made for postgres in the
# (root-owned) volume, initialised on first start only; postgres is PID 1 through setpriv (it
# refuses to run as root) and listens on the network, trusting it (a test, not a deployment).
PG_SERVER = r"""
set -e
bin=$(echo /usr/lib/postgresql/*/bin)
data=/var/lib/postgresql/data/pgdata
as_postgres="setpriv --reuid=postgres --regid=postgres --init-groups"
install -d -o postgres -g postgres -m 700 "$data"
if [ ! -s "$data/PG_VERSION" ]; then
  $as_postgres "$bin/initdb" -D "$data" --auth=trust >/dev/null
  echo "listen_addresses = '*'" >> "$data/postgresql.conf"
  echo "host all all all trust" >> "$data/pg_hba.conf"
fi
exec $as_postgres "$bin/postgres" -D "$data"
"""

WEB_AND_DB = """
    services:
      web:
        image: {IMAGE}
        command: ["nginx", "-g", "daemon off;"]
        networks: [backend]
        depends_on:
          db:
            condition: service_healthy
      db:
        image: {IMAGE}
        command: ["sh", "/pg-server.sh"]
        networks: [backend]
        volumes:
          - data:/var/lib/postgresql/data
          - ./pg-server.sh:/pg-server.sh:ro
        healthcheck:
          test: ["CMD", "pg_isready", "-q", "-h", "127.0.0.1", "-U", "postgres"]
          interval: 1s
          retries: 60
    networks:
      backend:
    volumes:
      data:
"""


def test_web_and_postgres_data_outlives_down_but_not_down_v(project, mr):
    p = project(WEB_AND_DB, files={"pg-server.sh": PG_SERVER})

    def psql(sql: str) -> str:
        return p.exec("web", "psql", "-h", "db", "-U", "postgres", "-v", "ON_ERROR_STOP=1",
                      "-tA", "-c", sql)

    p.ok("up", "-d", "--wait", "--wait-timeout", "120", timeout=180)
    assert f"{p.name}_backend" in mr.ok("network", "ls", "--format", "{{.Name}}").split()
    psql("CREATE TABLE notes (id int PRIMARY KEY, body text); "
         "INSERT INTO notes VALUES (1, 'kept in a named volume')")

    p.ok("down", "-t", "1")  # containers and network go, the volume stays
    assert f"{p.name}_data" in mr.ok("volume", "ls", "-q").split()
    assert f"{p.name}_backend" not in mr.ok("network", "ls", "--format", "{{.Name}}").split()
    p.ok("up", "-d", "--wait", "--wait-timeout", "120", timeout=180)
    assert psql("SELECT body FROM notes WHERE id = 1").strip() == "kept in a named volume"

    p.ok("down", "-v", "-t", "1")
    assert f"{p.name}_data" not in mr.ok("volume", "ls", "-q").split()
    p.ok("up", "-d", "--wait", "--wait-timeout", "120", timeout=180)  # initdb again
    assert psql("SELECT count(*) FROM pg_tables WHERE tablename = 'notes'").strip() == "0"


# --- 2. frontend and backend networks --------------------------------------------------------

FRONT_AND_BACK = X_REDIS + """
    services:
      front:
        image: {IMAGE}
        command: ["sleep", "infinity"]
        init: true
        networks: [front]
      api:
        image: {IMAGE}
        command: ["sh", "-c", "echo api here > /var/www/html/index.html && exec nginx -g 'daemon off;'"]
        networks: [front, back]
        healthcheck:
          test: ["CMD", "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1/"]
          interval: 1s
          retries: 30
      db:
        <<: *redis
        networks: [back]
    networks:
      front:
      back:
"""


def test_front_reaches_api_but_not_db_on_the_back_network(project, mr):
    p = project(FRONT_AND_BACK)
    p.ok("up", "-d", "--wait", "--wait-timeout", "60", timeout=120)
    assert p.exec("front", "curl", "-fsS", "--max-time", "5", "http://api/") == "api here\n"

    r = p("exec", "-T", "front", "getent", "hosts", "db")
    assert r.returncode == 2 and r.stdout == "", r  # 2: not found
    db_ip = mr.record(f"{p.name}-db-1")["NetworkSettings"]["Networks"][f"{p.name}_back"][
        "IPAddress"]
    r = p("exec", "-T", "front", "timeout", "3", "redis-cli", "-h", db_ip, "ping")
    assert r.returncode != 0 and "PONG" not in r.stdout, r

    assert p.exec("api", "redis-cli", "-h", "db", "ping") == "PONG\n"
    assert p.exec("api", "redis-cli", "-h", db_ip, "ping") == "PONG\n"  # the same address


# --- 3. build:, service_healthy, --scale ---------------------------------------------------

# The image's server: its own hostname (the container's short ID), over HTTP on port 8000.
SERVE_HOSTNAME = """
    mkdir -p /srv && hostname > /srv/index.html
    cd /srv && exec python3 -m http.server 8000
"""

BUILT_WEB = X_REDIS + """
    services:
      web:
        build: ./web
        init: true
        depends_on:
          cache:
            condition: service_healthy
        healthcheck:
          test: ["CMD", "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8000/"]
          interval: 1s
          retries: 30
      cache:
        <<: *redis
      client:
        image: {IMAGE}
        command: ["sleep", "infinity"]
        init: true
"""


def test_built_web_scaled_to_three_behind_a_healthy_cache(project, mr):
    p = project(BUILT_WEB, files={
        "web/Dockerfile": "FROM {IMAGE}\nCOPY serve.sh /serve.sh\nCMD [\"sh\", \"/serve.sh\"]\n",
        "web/serve.sh": SERVE_HOSTNAME})
    r = p("up", "-d", "--build", "--scale", "web=3", "--wait", "--wait-timeout", "60",
          timeout=180)
    assert r.returncode == 0, r.stderr
    # The cache was healthy before any web container was created.
    assert r.stderr.index(f"Container {p.name}-cache-1  Healthy") < \
        r.stderr.index(f"Container {p.name}-web-1  Created"), r.stderr
    assert f"{p.name}-web:latest" in mr.ok("images", "--format", "{{.Repository}}:{{.Tag}}")

    webs = [e for e in p.ps() if e["Service"] == "web"]
    assert sorted(e["Name"] for e in webs) == [f"{p.name}-web-{i}" for i in (1, 2, 3)]
    addresses = {line.split()[0] for line in p.exec("client", "getent", "ahosts", "web")
                 .splitlines()}
    assert len(addresses) == 3, addresses
    hostnames = {p.exec("client", "curl", "-fsS", "--max-time", "5", f"http://{a}:8000/").strip()
                 for a in addresses}
    assert hostnames == {e["ID"][:12] for e in webs}  # each its own container's


# --- 4. .env --------------------------------------------------------------------------------

# nginx's default site, moved to the port .env names: Compose substitutes ${NGINX_PORT}.
NGINX_ON_PORT = """
    services:
      web:
        image: {IMAGE}
        command:
          - sh
          - -c
          - >-
            sed -i 's/listen 80 /listen ${NGINX_PORT} /; s/listen \\[::\\]:80 /listen [::]:${NGINX_PORT} /'
            /etc/nginx/sites-enabled/default
            && echo "nginx on ${NGINX_PORT}" > /var/www/html/index.html
            && exec nginx -g 'daemon off;'
        healthcheck:
          test: ["CMD", "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:${NGINX_PORT}/"]
          interval: 1s
          retries: 30
      client:
        image: {IMAGE}
        command: ["sleep", "infinity"]
        init: true
"""


def test_dotenv_port_is_substituted_and_nginx_answers_on_it(project):
    p = project(NGINX_ON_PORT, files={".env": "NGINX_PORT=8081\n"})
    config = p.ok("config")
    assert "listen 8081 " in config and "http://127.0.0.1:8081/" in config, config
    assert "NGINX_PORT" not in config, config
    p.ok("up", "-d", "--wait", "--wait-timeout", "60", timeout=120)
    assert p.exec("client", "curl", "-fsS", "--max-time", "5", "http://web:8081/") == \
        "nginx on 8081\n"


# --- 5. run --rm, exec, logs -f --------------------------------------------------------------

# ticker: a line every half second; TERM ends it at once (a shell as PID 1 would ignore it
# otherwise).
CACHE_AND_TICKER = X_REDIS + """
    services:
      cache:
        <<: *redis
      ticker:
        image: {IMAGE}
        command: ["sh", "-c", "trap 'exit 0' TERM; i=0; while :; do i=$$((i+1)); echo tick $$i; sleep 0.5; done"]
"""


def test_run_rm_reaches_the_service_and_leaves_nothing_and_exec_passes_the_exit_code(project,
                                                                                     mr):
    p = project(CACHE_AND_TICKER)
    p.ok("up", "-d", "--wait", "--wait-timeout", "60", timeout=120)
    assert p.exec("cache", "redis-cli", "set", "greeting", "from the service") == "OK\n"

    out = p.ok("run", "--rm", "-T", "cache", "redis-cli", "-h", "cache", "get", "greeting")
    assert out == "from the service\n"
    assert not [e["Name"] for e in p.ps("-a") if "-run-" in e["Name"]]
    assert "-run-" not in mr.ok("ps", "-a", "--format", "{{.Names}}")

    assert p("exec", "-T", "ticker", "sh", "-c", "exit 7").returncode == 7
    assert p("run", "--rm", "-T", "ticker", "sh", "-c", "exit 5").returncode == 5


def follow_logs(p: Project, *services: str) -> tuple[subprocess.Popen, list[str]]:
    """`compose logs -f services` in the background; its stdout lines, as they come."""
    proc = subprocess.Popen(p.mr.argv(*p.argv("logs", "-f", *services)), env=p.mr.env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    return proc, lines


LOG_LINE = re.compile(r"^(\S+)  \| tick (\d+)$")  # `<prefix>  | tick N`


def ticks(lines: list[str]) -> list[tuple[str, int]]:
    """(prefix, N) of each `... | tick N` line."""
    return [(m[1], int(m[2])) for m in map(LOG_LINE.match, map(str.rstrip, list(lines))) if m]


def test_logs_follow_shows_new_prefixed_lines_until_the_service_is_stopped(project):
    p = project(CACHE_AND_TICKER)
    p.ok("up", "-d", "ticker")
    assert poll(lambda: len(ticks(p.ok("logs", "ticker").splitlines())) >= 2, timeout=30,
                every=0.1)
    before = ticks(p.ok("logs", "ticker").splitlines())[-1][1]

    proc, lines = follow_logs(p, "ticker")
    try:
        # From the start (--tail all), then lines written after `logs -f` began.
        assert poll(lambda: ticks(lines) and ticks(lines)[-1][1] >= before + 2, timeout=30,
                    every=0.1), lines
        got = ticks(lines)
        assert [n for _, n in got] == list(range(1, len(got) + 1)), lines
        prefixes = {prefix for prefix, _ in got}  # which name exactly: the test below
        assert len(prefixes) == 1 and prefixes.pop().endswith("ticker-1"), lines

        p.ok("stop", "-t", "5", "ticker")  # from another command: logs -f ends with it
        assert proc.wait(timeout=30) == 0, lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_logs_prefix_is_the_container_name_without_the_project(project):
    p = project(CACHE_AND_TICKER)
    p.ok("up", "-d", "ticker")
    assert poll(lambda: "tick 1" in p.ok("logs", "ticker"), timeout=30, every=0.1)
    assert p.ok("logs", "ticker").splitlines()[0] == "ticker-1  | tick 1"


def test_a_one_off_container_does_not_answer_to_the_service_name(project, mr):
    p = project(CACHE_AND_TICKER)
    p.ok("up", "-d", "--wait", "--wait-timeout", "60", timeout=120)
    one_off = p.ok("run", "-d", "cache", "sleep", "infinity").strip()
    server_ip = mr.record(f"{p.name}-cache-1")["NetworkSettings"]["Networks"][
        f"{p.name}_default"]["IPAddress"]
    assert one_off.startswith(f"{p.name}-cache-run-")
    resolved = {line.split()[0] for line in p.exec("ticker", "getent", "ahosts", "cache")
                .splitlines()}
    assert resolved == {server_ip}
