"""`minirun compose` on busybox services: what Docker Compose v2 does, seen from outside (ps,
inspect, networks, volumes, exit codes) and inside (name resolution, files, environment).

Every test writes its compose file into tmp_path, runs with a project name of its own, and
takes everything down at the end, failed or not (the `project` fixture). Services run under
`init: true` (or exit on their own) so that a stop takes no 10-second timeout. The tests with
real servers (nginx, postgresql, redis) are in test_compose_servers.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import uuid

import pytest

from polling import poll


class Project:
    """One compose project in tmp_path: `p("up", "-d")` runs `minirun compose -f F -p NAME up -d`."""

    def __init__(self, mr, directory) -> None:
        self.mr, self.dir = mr, directory
        self.name = "t" + uuid.uuid4().hex[:8]

    def write(self, text: str, name: str = "compose.yaml") -> None:
        (self.dir / name).write_text(textwrap.dedent(text))

    def argv(self, *args: str) -> list[str]:
        return ["compose", "--project-directory", str(self.dir), "-p", self.name, *args]

    def __call__(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.mr(*self.argv(*args), **kw)

    def ok(self, *args: str, **kw) -> str:
        r = self(*args, **kw)
        assert r.returncode == 0, f"compose {' '.join(args)} -> {r.returncode}: {r.stderr}"
        return r.stdout

    def ps(self, *args: str) -> list[dict]:
        return [json.loads(line) for line in self.ok("ps", "--format", "json", *args).splitlines()]


@pytest.fixture
def project(mr, tmp_path):
    p = Project(mr, tmp_path)
    yield p
    p("down", "-v", "--remove-orphans", "-t", "0", timeout=120)


WEB_AND_CLIENT = """
    services:
      web:
        image: busybox
        init: true
        command: ["httpd", "-f", "-p", "80", "-h", "/www"]
        volumes: ["./html:/www:ro", "data:/data"]
      client:
        image: busybox
        init: true
        command: ["sleep", "1000"]
        depends_on: [web]
        environment: {GREETING: "${GREETING:-hi}"}
    volumes: {data: {}}
    """


def test_up_makes_named_labelled_objects_that_reach_each_other_and_down_removes_them(project, mr):
    (project.dir / "html").mkdir()
    (project.dir / "html" / "index.html").write_text("hello from web\n")
    project.write(WEB_AND_CLIENT)
    (project.dir / ".env").write_text("GREETING=from-dotenv\n")
    r = project("up", "-d")
    assert r.returncode == 0, r.stderr
    n = project.name
    assert f" Network {n}_default  Created" in r.stderr.splitlines()
    assert r.stderr.index(f"Container {n}-web-1  Started") < \
        r.stderr.index(f"Container {n}-client-1  Started")  # depends_on: web first
    rows = {e["Service"]: e for e in project.ps()}
    assert {e["Name"] for e in rows.values()} == {f"{n}-web-1", f"{n}-client-1"}
    assert all(e["State"] == "running" and e["Project"] == n for e in rows.values())
    labels = mr.record(f"{n}-web-1")["Config"]["Labels"]
    assert labels["com.docker.compose.project"] == n and labels["com.docker.compose.service"] == "web"
    assert labels["com.docker.compose.container-number"] == "1"
    assert labels["com.docker.compose.project.working_dir"] == str(project.dir)
    # Inside: the web server by its service name, the variable from .env.
    assert project.ok("exec", "-T", "client", "wget", "-q", "-O-", "http://web/") == "hello from web\n"
    assert project.ok("exec", "-T", "client", "sh", "-c", "echo $GREETING") == "from-dotenv\n"
    assert f"{n}_data" in mr.ok("volume", "ls", "-q").split()
    r = project("down", "-t", "0")
    assert r.returncode == 0, r.stderr
    assert mr.ok("ps", "-aq") == ""
    assert f"{n}_default" not in mr.ok("network", "ls")
    assert f"{n}_data" in mr.ok("volume", "ls", "-q").split()  # only -v removes volumes
    project.ok("down", "-v")
    assert f"{n}_data" not in mr.ok("volume", "ls", "-q").split()


def test_second_up_recreates_only_what_changed_and_scale_adds_and_removes(project, mr):
    (project.dir / "html").mkdir()
    project.write(WEB_AND_CLIENT)
    project.ok("up", "-d")
    ids = {e["Service"]: e["ID"] for e in project.ps()}
    r = project("up", "-d")
    assert f"Container {project.name}-web-1  Running" in r.stderr
    assert {e["Service"]: e["ID"] for e in project.ps()} == ids
    project.write(WEB_AND_CLIENT.replace('"sleep", "1000"', '"sleep", "999"'))
    r = project("up", "-d", "-t", "0")
    assert f"Container {project.name}-client-1  Recreate" in r.stderr
    now = {e["Service"]: e["ID"] for e in project.ps()}
    assert now["web"] == ids["web"] and now["client"] != ids["client"]
    project.ok("up", "-d", "--scale", "web=3", "-t", "0")
    webs = sorted(e["Name"] for e in project.ps() if e["Service"] == "web")
    assert webs == [f"{project.name}-web-{i}" for i in (1, 2, 3)]
    # Every replica answers to the service's name, from the embedded DNS server (127.0.0.11).
    found = project.ok("exec", "-T", "client", "nslookup", "web")
    assert len({ln.split()[-1] for ln in found.splitlines()
                if ln.startswith("Address:") and ":53" not in ln}) == 3
    project.ok("up", "-d", "--scale", "web=1", "-t", "0")
    assert [e["Name"] for e in project.ps() if e["Service"] == "web"] == [f"{project.name}-web-1"]
    r = project("up", "-d", "--force-recreate", "-t", "0")
    assert f"Container {project.name}-web-1  Recreate" in r.stderr


def test_attached_up_prefixes_output_and_returns_the_chosen_exit_code(project):
    project.write("""
        services:
          a: {image: busybox, command: ["sh", "-c", "echo from a; sleep 0.2; exit 3"]}
          b: {image: busybox, command: ["sh", "-c", "echo from b"]}
        """)
    r = project("up", timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    a, b = "a-1", "b-1"  # Compose v2 leaves the project out of log prefixes
    assert lines[0] == f"Attaching to {a}, {b}"
    assert f"{a}  | from a" in lines and f"{b}  | from b" in lines
    assert f"{a} exited with code 3" in lines and f"{b} exited with code 0" in lines
    r = project("up", "--exit-code-from", "a", timeout=60)
    assert r.returncode == 3
    assert r.stdout.count("from a") == 1  # this run's output only, not the first run's too


def test_depends_on_waits_for_healthy_and_completed_and_names_a_failure(project):
    project.write("""
        services:
          db:
            image: busybox
            init: true
            command: ["sh", "-c", "sleep 0.5; touch /tmp/ready; exec sleep 1000"]
            healthcheck: {test: ["CMD", "test", "-f", "/tmp/ready"], interval: 1s,
                          start_interval: 100ms, start_period: 10s}
          migrate: {image: busybox, command: ["true"]}
          app:
            image: busybox
            init: true
            command: ["sleep", "1000"]
            depends_on:
              db: {condition: service_healthy}
              migrate: {condition: service_completed_successfully}
        """)
    r = project("up", "-d")
    assert r.returncode == 0, r.stderr
    err = r.stderr
    assert err.index(f"{project.name}-db-1  Healthy") < err.index(f"{project.name}-app-1  Started")
    assert err.index(f"{project.name}-migrate-1  Exited") < err.index(f"{project.name}-app-1  Started")
    project.ok("down", "-t", "0")
    project.write("""
        services:
          migrate: {image: busybox, command: ["false"]}
          app:
            image: busybox
            command: ["true"]
            depends_on: {migrate: {condition: service_completed_successfully}}
        """)
    r = project("up", "-d")
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1] == \
        f"minirun: service \"{project.name}-migrate-1\" didn't complete successfully: exit 1"
    project.write("""
        services:
          db:
            image: busybox
            init: true
            command: ["sleep", "1000"]
            healthcheck: {test: ["CMD", "false"], interval: 100ms, retries: 1}
          app: {image: busybox, command: ["true"], depends_on: {db: {condition: service_healthy}}}
        """)
    r = project("up", "-d")
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1] == (
        f"minirun: dependency failed to start: container {project.name}-db-1 is unhealthy "
        f"(running now: {project.name}-db-1; `minirun compose down` removes the project)")


def test_run_rm_exec_and_logs(project, mr):
    project.write("""
        services:
          svc:
            image: busybox
            init: true
            command: ["sh", "-c", "echo started; exec sleep 1000"]
        """)
    project.ok("up", "-d")
    assert project.ok("run", "--rm", "-T", "svc", "echo", "one-off") == "one-off\n"
    assert [e for e in project.ps("-a") if "run" in e["Name"]] == []
    assert mr("ps", "-aq").stdout.count("\n") == 1  # the one-off container went with --rm
    r = project("exec", "-T", "svc", "sh", "-c", "exit 7")
    assert r.returncode == 7
    assert poll(lambda: "started" in project.ok("logs"))
    assert project.ok("logs", "--no-log-prefix") == "started\n"
    assert project.ok("logs") == "svc-1  | started\n"


def test_config_interpolates_and_profiles_choose_services(project):
    (project.dir / ".env").write_text("TAG=1.2\n")
    project.write("""
        services:
          web: {image: "busybox:${TAG}", ports: ["8080:80"]}
          debug: {image: busybox, profiles: [dev]}
        """)
    model = json.loads(project.ok("config", "--format", "json"))
    assert model["name"] == project.name
    assert model["services"]["web"]["image"] == "busybox:1.2"
    assert model["services"]["web"]["ports"][0]["published"] == "8080"
    assert "debug" not in model["services"]
    assert project.ok("config", "--services") == "web\n"
    assert project.ok("--profile", "dev", "config", "--services") == "debug\nweb\n"


def test_errors_name_the_file_line_and_key_and_exit_1(project):
    project.write("""
        services:
          web:
            image: busybox
            ports: ["80:80:80"]
        """)
    r = project("up", "-d")
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1
    assert "compose.yaml:5: services.web.ports[0]" in r.stderr
    project.write("""
        services:
          a: {image: busybox, depends_on: [b]}
          b: {image: busybox, depends_on: [a]}
        """)
    r = project("up", "-d")
    assert r.returncode == 1 and "a -> b -> a" in r.stderr or "b -> a -> b" in r.stderr
    project.write("services:\n  web: {image: busybox}\n")
    r = project("up", "-d", "nosuch")
    assert (r.returncode, r.stderr) == (1, "minirun: no such service: nosuch\n")
    r = project("up", "-d", "--bogus")
    assert r.returncode == 125 and len(r.stderr.splitlines()) == 1 and "--bogus" in r.stderr


def test_a_taken_host_port_names_the_service_and_the_port(project, mr):
    project.write("""
        services:
          web: {image: busybox, init: true, command: ["sleep", "100"], ports: ["127.0.0.1:18091:80"]}
        """)
    project.ok("up", "-d")
    r = project("up", "-d", "--scale", "web=2")
    assert r.returncode == 1
    assert f"service web: container {project.name}-web-2" in r.stderr
    assert "127.0.0.1:18091" in r.stderr and "already allocated" in r.stderr


def test_networks_keep_services_apart(project):
    serve = '["sh", "-c", "mkdir /www && echo ok > /www/index.html && exec httpd -f -h /www"]'
    project.write(f"""
        services:
          front: {{image: busybox, init: true, command: ["sleep", "1000"], networks: [front]}}
          api: {{image: busybox, init: true, command: {serve}, networks: [front, back]}}
          db: {{image: busybox, init: true, command: {serve}, networks: [back]}}
        networks: {{front: {{}}, back: {{}}}}
        """)
    project.ok("up", "-d")

    def get(frm: str, host: str) -> subprocess.CompletedProcess:
        return project("exec", "-T", frm, "timeout", "3", "wget", "-q", "-O-", f"http://{host}/")

    assert poll(lambda: get("front", "api").stdout == "ok\n")
    assert get("api", "db").stdout == "ok\n"
    db_ip = json.loads(project.mr.ok("inspect", f"{project.name}-db-1"))[0][
        "NetworkSettings"]["Networks"][f"{project.name}_back"]["IPAddress"]
    assert "bad address 'db'" in get("front", "db").stderr  # no name for it on front
    assert get("front", db_ip).returncode != 0  # nor a route


def test_orphans_are_reported_then_removed_on_request(project, mr):
    project.write("""
        services:
          a: {image: busybox, init: true, command: ["sleep", "1000"]}
          b: {image: busybox, init: true, command: ["sleep", "1000"]}
        """)
    project.ok("up", "-d")
    project.write("services:\n  a: {image: busybox, init: true, command: [sleep, '1000']}\n")
    r = project("up", "-d")
    assert "Found orphan containers" in r.stderr and f"{project.name}-b-1" in r.stderr
    project.ok("up", "-d", "--remove-orphans", "-t", "0")
    assert [e["Service"] for e in project.ps("-a")] == ["a"]
    assert project.name in project.ok("ls")


def test_ctrl_c_stops_an_attached_up(project):
    project.write("""
        services:
          a: {image: busybox, init: true, command: ["sh", "-c", "echo up; exec sleep 1000"]}
        """)
    p = subprocess.Popen(project.mr.argv(*project.argv("up")), env=project.mr.env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == "Attaching to a-1\n"
        assert p.stdout.readline() == "a-1  | up\n"
        p.send_signal(2)  # SIGINT, as Ctrl-C sends it
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
        p.wait()
    assert p.returncode == 130
    assert "Gracefully stopping... (press Ctrl+C again to force)" in err
    assert [e["State"] for e in project.ps("-a")] == ["exited"]


def test_lifecycle_verbs(project, mr):
    project.write("""
        services:
          a: {image: busybox, init: true, command: ["sleep", "1000"]}
          b: {image: busybox, init: true, command: ["sleep", "1000"], depends_on: [a]}
        """)
    project.ok("up", "-d")

    def states() -> dict:
        return {e["Service"]: e["State"] for e in project.ps("-a")}

    project.ok("stop", "-t", "0")
    assert states() == {"a": "exited", "b": "exited"}
    project.ok("start")
    assert states() == {"a": "running", "b": "running"}
    project.ok("pause", "b")
    assert states()["b"] == "paused"
    project.ok("unpause", "b")
    project.ok("kill", "-s", "KILL", "b")
    assert states() == {"a": "running", "b": "exited"}
    assert project.ok("rm", "-f") == ""
    assert states() == {"a": "running"}
    project.ok("restart", "-t", "0", "a")
    assert states() == {"a": "running"}
    top = project.ok("top")
    assert top.startswith(f"{project.name}-a-1\nUID") and "sleep 1000" in top
    images = project.ok("images").splitlines()
    assert images[0].split()[:3] == ["CONTAINER", "REPOSITORY", "TAG"]
    assert images[1].split()[:3] == [f"{project.name}-a-1", "busybox", "latest"]
    assert project.ok("ps", "--services") == "a\n"
    assert project.ok("ps", "--format", "{{.Service}} {{.State}}") == "a running\n"
    assert project.ok("ps", "--format", "table {{.Name}}\t{{.Service}}").splitlines() == [
        "NAME".ljust(len(f"{project.name}-a-1   ")) + "SERVICE", f"{project.name}-a-1   a"]
    assert project.ok("ps", "-q") == mr.record(f"{project.name}-a-1")["Id"] + "\n"
    assert project.ok("version", "--short").strip().count(".") == 2


def test_files_users_and_namespaces_as_the_service_says(project, mr):
    (project.dir / "token.txt").write_text("s3cret\n")
    (project.dir / "app.conf").write_text("level=debug\n")
    project.write("""
        services:
          app:
            image: busybox
            init: true
            command: ["sleep", "1000"]
            user: "1000:1000"
            working_dir: /srv
            hostname: apphost
            secrets: [token]
            configs: [{source: conf, target: /etc/app.conf}]
            tmpfs: [/scratch]
            read_only: true
            deploy: {resources: {limits: {memory: 64m, pids: 40}}}
            ulimits: {nofile: 512}
            sysctls: {net.ipv4.ip_unprivileged_port_start: "0"}
          side:
            image: busybox
            init: true
            command: ["sleep", "1000"]
            network_mode: "service:app"
        secrets: {token: {file: ./token.txt}}
        configs: {conf: {file: ./app.conf}}
        """)
    project.ok("up", "-d")

    def sh(service: str, script: str) -> str:
        return project.ok("exec", "-T", service, "sh", "-c", script)

    assert sh("app", "id -u; id -g; pwd; hostname") == "1000\n1000\n/srv\napphost\n"
    assert sh("app", "cat /run/secrets/token /etc/app.conf") == "s3cret\nlevel=debug\n"
    assert sh("app", "touch /x 2>&1; touch /scratch/ok && echo tmpfs ok").endswith("tmpfs ok\n")
    assert sh("app", "ulimit -n; cat /proc/sys/net/ipv4/ip_unprivileged_port_start") == "512\n0\n"
    app, side = (mr.record(f"{project.name}-{s}-1")["State"]["Pid"] for s in ("app", "side"))
    assert os.readlink(f"/proc/{app}/ns/net") == os.readlink(f"/proc/{side}/ns/net")
    hc = mr.record(f"{project.name}-app-1")["HostConfig"]
    assert (hc["Memory"], hc["PidsLimit"]) == (64 << 20, 40)


def test_build_then_up_uses_the_projects_image(project, mr):
    ctx = project.dir / "app"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text('FROM busybox\nRUN echo built > /built\nCMD ["cat", "/built"]\n')
    project.write("services:\n  app: {build: ./app}\n")
    r = project("up")
    assert r.returncode == 0, r.stderr
    assert "app-1  | built" in r.stdout
    assert f"{project.name}-app" in mr.ok("images", "--format", "{{.Repository}}").split()
    (ctx / "Dockerfile").write_text('FROM busybox\nRUN echo rebuilt > /built\nCMD ["cat", "/built"]\n')
    project.ok("build")
    r = project("up")
    assert "app-1  | rebuilt" in r.stdout  # a new image: recreated
    project.ok("down", "--rmi", "local")
    assert f"{project.name}-app" not in mr.ok("images", "--format", "{{.Repository}}").split()


def test_a_recreated_container_keeps_its_anonymous_volumes(project, mr):
    svc = '{image: busybox, init: true, command: ["sleep", "%s"], volumes: ["/cache"]}'
    project.write("services:\n  app: " + svc % "1000" + "\n")
    project.ok("up", "-d")
    project.ok("exec", "-T", "app", "sh", "-c", "echo kept > /cache/f")
    project.write("services:\n  app: " + svc % "999" + "\n")
    r = project("up", "-d", "-t", "0")
    assert f"{project.name}-app-1  Recreate" in r.stderr
    assert project.ok("exec", "-T", "app", "cat", "/cache/f") == "kept\n"
    volume = [m["Name"] for m in mr.record(f"{project.name}-app-1")["Mounts"]]
    project.ok("down", "-t", "0")
    assert volume[0] in mr.ok("volume", "ls", "-q").split()  # down alone keeps it


def test_a_project_known_by_name_only_can_be_listed_and_taken_down(project, mr,
                                                                    tmp_path_factory):
    project.write("""
        services:
          a: {image: busybox, init: true, command: ["sleep", "1000"]}
        volumes: {data: {}}
        """)
    project.ok("up", "-d")
    elsewhere = tmp_path_factory.mktemp("elsewhere")  # no compose.yaml here, nor above
    by_name = ["compose", "--project-directory", str(elsewhere), "-p", project.name]
    assert mr(*by_name, "ps", "--services").stdout == "a\n"
    r = mr(*by_name, "up", "-d")  # up needs the file
    assert r.returncode == 1 and "no configuration file provided" in r.stderr
    r = mr(*by_name, "down", "-t", "0")
    assert r.returncode == 0, r.stderr
    assert mr.ok("ps", "-aq") == "" and f"{project.name}_default" not in mr.ok("network", "ls")


def test_network_ipam_and_driver_options_reach_the_network(project, mr):
    project.write("""
        services:
          a: {image: busybox, init: true, command: ["sleep", "100"]}
        networks:
          default:
            ipam: {config: [{subnet: 10.234.1.0/24, ip_range: 10.234.1.64/26}]}
            driver_opts: {com.docker.network.driver.mtu: "1300"}
        """)
    project.ok("up", "-d")
    out = project.ok("exec", "-T", "a", "sh", "-c", "ip -o -4 addr show eth0; cat /sys/class/net/eth0/mtu")
    assert out.split()[3] == "10.234.1.65/24" and out.split()[-1] == "1300"


def test_volumes_from_a_service_shares_its_volumes(project, mr):
    project.write("""
        services:
          data:
            image: busybox
            init: true
            volumes: [/shared]
            command: ["sh", "-c", "echo from-data > /shared/f; exec sleep 100"]
          app:
            image: busybox
            init: true
            volumes_from: ["data:ro"]
            depends_on: [data]
            command: ["sleep", "100"]
        """)
    project.ok("up", "-d")
    out = project.ok("exec", "-T", "app", "sh", "-c",
                     "for i in 1 2 3 4 5; do [ -s /shared/f ] && break; sleep 0.2; done; "
                     "cat /shared/f; touch /shared/g 2>&1 || true")
    assert out.splitlines()[0] == "from-data" and "Read-only file system" in out
