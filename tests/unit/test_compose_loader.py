"""Loading Compose projects: discovery, environment, names, canonical form, profiles, errors."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from minirun.compose import loader
from minirun.errors import InvalidArgument, Unsupported


@pytest.fixture
def app(tmp_path):
    """The project directory: its name, "app", is the default project name."""
    directory = tmp_path / "app"
    directory.mkdir()
    return directory


def write(directory, text, name="compose.yaml"):
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def load(directory, text=None, **kwargs):
    if text is not None:
        write(directory, text)
    kwargs.setdefault("environ", {"HOME": "/home/user"})
    return loader.load(cwd=str(directory), **kwargs)


def service(directory, body, **kwargs):
    """The canonical dict of service `web`, from the lines of its body (volumes data and named
    declared)."""
    text = "services:\n  web:\n" + textwrap.indent(textwrap.dedent(body), "    ")
    text += "volumes: {data: {}, named: {}}\n"
    return load(directory, text, **kwargs).model["services"]["web"]


def error(directory, text, kind=InvalidArgument, **kwargs) -> str:
    with pytest.raises(kind) as err:
        load(directory, text, **kwargs)
    return str(err.value)


# --- finding the files ------------------------------------------------------------------------

def test_the_file_is_found_in_a_parent_directory(app):
    write(app, "services: {web: {image: nginx}}")
    (app / "sub" / "deeper").mkdir(parents=True)
    project = loader.load(cwd=str(app / "sub" / "deeper"), environ={})
    assert project.working_dir == str(app)
    assert project.config_files == [str(app / "compose.yaml")]
    assert project.name == "app"


def test_compose_yaml_is_preferred_with_a_warning(app):
    write(app, "services: {web: {image: a}}")
    write(app, "services: {web: {image: b}}", "docker-compose.yml")
    project = load(app)
    assert project.model["services"]["web"]["image"] == "a"
    assert project.warnings == [f"Found multiple config files with supported names: "
                                f"{app}/compose.yaml, {app}/docker-compose.yml; using {app}/compose.yaml"]


@pytest.mark.parametrize("base, override", [("compose.yaml", "compose.override.yaml"),
                                            ("compose.yml", "compose.override.yml"),
                                            ("docker-compose.yml", "docker-compose.override.yml")])
def test_the_override_file_is_merged(app, base, override):
    write(app, "services: {web: {image: a, user: root}}", base)
    write(app, "services: {web: {image: b}}", override)
    project = load(app)
    assert project.config_files == [str(app / base), str(app / override)]
    assert project.model["services"]["web"]["image"] == "b"
    assert project.model["services"]["web"]["user"] == "root"


def test_no_file_is_an_error(app):
    with pytest.raises(InvalidArgument, match="no configuration file provided: no compose.yaml"):
        loader.load(cwd=str(app), environ={})


def test_files_given_are_merged_in_order(app):
    write(app, "services: {web: {image: a, ports: ['80:80']}}", "one.yaml")
    write(app, "services: {web: {image: b, ports: ['81:81']}}", "two.yaml")
    project = load(app, files=["one.yaml", "two.yaml"])
    assert project.config_files == [str(app / "one.yaml"), str(app / "two.yaml")]
    web = project.model["services"]["web"]
    assert web["image"] == "b" and [p["target"] for p in web["ports"]] == [80, 81]


def test_compose_file_variable_from_the_environment_or_dotenv(app):
    write(app, "services: {web: {image: a}}", "one.yaml")
    write(app, "services: {web: {image: b}}", "two.yaml")
    assert load(app, environ={"COMPOSE_FILE": "one.yaml:two.yaml"}).config_files == \
        [str(app / "one.yaml"), str(app / "two.yaml")]
    write(app, "COMPOSE_FILE=two.yaml\n", ".env")
    assert load(app).config_files == [str(app / "two.yaml")]


def test_a_missing_file_is_an_error(app):
    assert error(app, None, files=["nope.yaml"]) == \
        "nope.yaml: No such file or directory (check the -f path)"


# --- environment and project name -------------------------------------------------------------

def test_dotenv_is_read_and_the_process_environment_wins(app):
    write(app, "TAG=1.0\nIMAGE=from-dotenv\n", ".env")
    project = load(app, "services: {web: {image: '${IMAGE}:${TAG}'}}", environ={"IMAGE": "env"})
    assert project.model["services"]["web"]["image"] == "env:1.0"
    assert project.environment == {"TAG": "1.0", "IMAGE": "env", "COMPOSE_PROJECT_NAME": "app"}


def test_env_files_replace_dotenv(app):
    write(app, "TAG=dotenv\n", ".env")
    write(app, "TAG=one\nX=1\n", "one.env")
    write(app, "TAG=two\n", "two.env")
    project = load(app, "services: {web: {image: 'i:${TAG}${X}'}}", env_files=["one.env", "two.env"])
    assert project.model["services"]["web"]["image"] == "i:two1"


def test_dotenv_comes_from_the_project_directory_found(app):
    write(app, "services: {web: {image: 'i:${TAG}'}}")
    write(app, "TAG=parent\n", ".env")
    (app / "sub").mkdir()
    project = loader.load(cwd=str(app / "sub"), environ={})
    assert project.model["services"]["web"]["image"] == "i:parent"


def test_project_directory_holds_dotenv_and_anchors_relative_paths(app, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    write(other, "SRC=./src\nCOMPOSE_PROJECT_NAME=fromdotenv\n", ".env")
    write(app, "services: {web: {image: a, volumes: ['${SRC}:/src']}}")
    project = load(app, files=["compose.yaml"], project_directory=str(other))
    assert project.working_dir == str(other) and project.name == "fromdotenv"
    assert project.model["services"]["web"]["volumes"][0]["source"] == str(other / "src")


@pytest.mark.parametrize("kwargs, environ, text, name", [
    ({"project_name": "given"}, {"COMPOSE_PROJECT_NAME": "env"}, "name: file\n", "given"),
    ({}, {"COMPOSE_PROJECT_NAME": "env"}, "name: file\n", "env"),
    ({}, {"N": "From_File"}, "name: ${N}\n", "from_file"),
    ({}, {}, "", "app"),
])
def test_project_name_precedence(app, kwargs, environ, text, name):
    project = load(app, text + "services: {web: {image: a}}", environ=environ, **kwargs)
    assert project.name == name and project.model["name"] == name


def test_the_directory_name_is_normalised(tmp_path):
    directory = tmp_path / "My.App 2"
    directory.mkdir()
    assert load(directory, "services: {web: {image: a}}").name == "myapp2"


def test_an_explicit_invalid_name_is_an_error(app):
    assert error(app, "services: {web: {image: a}}", project_name="My App") == \
        f"invalid project name 'My App': {loader.PROJECT_NAME_RULE}"
    with pytest.raises(InvalidArgument, match="invalid project name '_x'"):
        load(app, environ={"COMPOSE_PROJECT_NAME": "_x"})


def test_the_project_name_can_be_interpolated_in_the_file(app):
    project = load(app, "services: {web: {image: a, container_name: '${COMPOSE_PROJECT_NAME}-web'}}")
    assert project.model["services"]["web"]["container_name"] == "app-web"


# --- the top level ------------------------------------------------------------------------------

def test_version_and_extensions_are_dropped(app):
    project = load(app, """\
        version: "3.9"
        x-base: &base {image: nginx}
        services:
          web:
            <<: *base
            x-note: ignored
        networks:
          n: {x-meta: 1}
        """)
    assert project.model == {"name": "app",
                             "services": {"web": {"image": "nginx", "networks": {"default": None}}},
                             "networks": {"n": {"name": "app_n"}, "default": {"name": "app_default"}}}
    assert project.warnings == ["compose.yaml:1: the attribute `version` is obsolete, it will be "
                                "ignored, please remove it"]


@pytest.mark.parametrize("text, message", [
    ("services: {web: {image: a}}\nservice: {}\n",
     "compose.yaml:2: service: service is not a Compose top-level key (did you mean services?)"),
    ("- a\n- b\n", "compose.yaml: the top level must be a mapping (services:, networks:, ...), not a list"),
    ("name: x\n", "compose.yaml: services: no service is defined (a Compose file needs at least one, "
     "under services:)"),
    ("services:\n", "compose.yaml:1: services: no service is defined (a Compose file needs at least "
     "one, under services:)"),
    ("services:\n  web: {image: a\n", "compose.yaml:3: invalid YAML: expected ',' or '}', but got "
     "'<stream end>'"),
    ("services:\n  web:\n    image: a\n    image: b\n",
     "compose.yaml:4: mapping key 'image' already defined at line 3 (remove one of them)"),
    ("services: []\n", "compose.yaml:1: services: must be a mapping of names, not a list"),
])
def test_top_level_errors(app, text, message):
    assert error(app, text) == message


def test_several_documents_in_one_file_merge_in_order(app):
    project = load(app, "services: {web: {image: a, user: root}}\n---\nservices: {web: {image: b}}\n")
    assert project.model["services"]["web"]["image"] == "b"
    assert project.model["services"]["web"]["user"] == "root"


def test_lines_follow_anchors_and_merge_keys(app):
    assert error(app, "x-p: &p\n  ports: [bad]\nservices:\n  web:\n    image: a\n    <<: *p\n") \
        .startswith('compose.yaml:2: services.web.ports[0]: "bad" is not a valid port mapping')


def test_include_is_not_supported(app):
    assert "include is not supported" in error(app, "include: [a.yaml]\n", Unsupported)


def test_yaml_is_read_as_yaml_1_2(app):
    web = service(app, """\
        image: a
        environment: {ON: on, YES: yes, DATE: 2024-01-01, OCT: 0o17}
        ports: [22:22]
        """)
    assert web["environment"] == {"DATE": "2024-01-01", "OCT": "15", "ON": "on", "YES": "yes"}
    assert web["ports"][0]["target"] == 22 and web["ports"][0]["published"] == "22"


# --- services -----------------------------------------------------------------------------------

def test_build_short_and_long_forms(app):
    assert service(app, "build: ./src\n")["build"] == \
        {"context": str(app / "src"), "dockerfile": "Dockerfile"}
    web = service(app, """\
        build:
          dockerfile: other.Dockerfile
          target: prod
          args: [A=1, FROM_ENV, NOT_SET]
          labels: [l=v]
        """, environ={"FROM_ENV": "e"})
    assert web["build"] == {"context": str(app), "dockerfile": "other.Dockerfile", "target": "prod",
                            "args": {"A": "1", "FROM_ENV": "e"}, "labels": {"l": "v"}}
    assert service(app, "build: https://github.com/x/y.git\n")["build"]["context"] == \
        "https://github.com/x/y.git"


def test_command_and_entrypoint_become_lists(app):
    web = service(app, """\
        image: a
        command: sh -c 'echo "hi there"'
        entrypoint: [/bin/tini, --]
        """)
    assert web["command"] == ["sh", "-c", 'echo "hi there"']
    assert web["entrypoint"] == ["/bin/tini", "--"]


def test_environment_list_and_mapping_forms(app):
    web = service(app, """\
        image: a
        environment: [A=1, B=x=y, FROM_ENV, UNSET, EMPTY=]
        """, environ={"FROM_ENV": "e"})
    assert web["environment"] == {"A": "1", "B": "x=y", "EMPTY": "", "FROM_ENV": "e", "UNSET": None}
    web = service(app, "image: a\nenvironment: {N: 1, T: true, NULL: null, S: s, 1: one}\n")
    assert web["environment"] == {"1": "one", "N": "1", "NULL": None, "S": "s", "T": "true"}


def test_env_file_is_read_into_environment_which_wins(app):
    # In the file, ${B} is the service's B: Compose looks up the project environment, then the
    # service's environment, then the file's earlier lines.
    write(app, "A=from-file\nB=from-file\nC=${B}-${PROJECT_VAR}\n", "web.env")
    web = service(app, """\
        image: a
        env_file: [web.env, {path: missing.env, required: false}]
        environment: {B: from-environment, UNSET: null}
        """, environ={"PROJECT_VAR": "p"})
    assert "env_file" not in web
    assert web["environment"] == {"A": "from-file", "B": "from-environment", "C": "from-environment-p",
                                  "UNSET": None}


def test_a_missing_env_file_is_an_error(app):
    assert error(app, "services:\n  web:\n    image: a\n    env_file: nope.env\n") == \
        f"compose.yaml:4: services.web.env_file[0]: env file {app}/nope.env not found " \
        "(create it, or set required: false)"


@pytest.mark.parametrize("spec, expected", [
    ("80", [{"mode": "ingress", "target": 80, "published": "", "protocol": "tcp"}]),
    (80, [{"mode": "ingress", "target": 80, "published": "", "protocol": "tcp"}]),
    ("8080:80", [{"mode": "ingress", "target": 80, "published": "8080", "protocol": "tcp"}]),
    ("127.0.0.1:8080:80/UDP", [{"mode": "ingress", "host_ip": "127.0.0.1", "target": 80,
                                "published": "8080", "protocol": "udp"}]),
    ("127.0.0.1::80", [{"mode": "ingress", "host_ip": "127.0.0.1", "target": 80,
                        "published": "", "protocol": "tcp"}]),
    ("[::1]:8080:80", [{"mode": "ingress", "host_ip": "::1", "target": 80, "published": "8080",
                        "protocol": "tcp"}]),
    ("8000-8001:80-81", [{"mode": "ingress", "target": 80, "published": "8000", "protocol": "tcp"},
                         {"mode": "ingress", "target": 81, "published": "8001", "protocol": "tcp"}]),
    ("90-91", [{"mode": "ingress", "target": 90, "published": "", "protocol": "tcp"},
               {"mode": "ingress", "target": 91, "published": "", "protocol": "tcp"}]),
    ("9000-9010:80", [{"mode": "ingress", "target": 80, "published": "9000-9010", "protocol": "tcp"}]),
    ({"target": "80", "published": 8080, "host_ip": "0.0.0.0", "x-note": 1},
     [{"mode": "ingress", "host_ip": "0.0.0.0", "target": 80, "published": "8080", "protocol": "tcp"}]),
    ({"target": 53, "protocol": "udp", "mode": "host", "name": "dns"},
     [{"name": "dns", "mode": "host", "target": 53, "published": "", "protocol": "udp"}]),
])
def test_ports(app, spec, expected):
    assert service(app, f"image: a\nports: [{json.dumps(spec)}]\n")["ports"] == expected


@pytest.mark.parametrize("spec, reason", [
    ("80:80:80", ": '80' is not an IP address"),
    ("web:80", ""),
    ("80/icmp", ": protocol 'icmp' is not tcp, udp or sctp"),
    ("8000-8002:80-81", ": the host and container ranges differ in length"),
    ("8080:80-81", ": the host and container ranges differ in length"),
    ("70000", ": 70000 is out of range"),
])
def test_bad_ports_name_the_file_line_and_key(app, spec, reason):
    text = f"services:\n  web:\n    image: a\n    ports:\n      - ok\n      - \"{spec}\"\n"
    text = text.replace("ok", "80")
    assert error(app, text) == (f'compose.yaml:6: services.web.ports[1]: "{spec}" is not a valid '
                                f"port mapping{reason} (use [HOST_IP:][HOST:]CONTAINER[/PROTOCOL])")


def test_long_port_syntax_is_checked(app):
    assert error(app, "services:\n  web:\n    image: a\n    ports:\n      - {published: 80}\n") == \
        "compose.yaml:5: services.web.ports[0]: has no target (add target: CONTAINER_PORT)"
    assert error(app, "services:\n  web:\n    image: a\n    ports:\n      - {target: 1, bad: 2}\n") == \
        "compose.yaml:5: services.web.ports[0].bad: bad is not a Compose port key (additional " \
        "property bad is not allowed)"


def test_expose_becomes_strings(app):
    assert service(app, "image: a\nexpose: [80, '90/udp']\n")["expose"] == ["80", "90/udp"]


def test_volumes_short_syntax(app):
    web = service(app, """\
        image: a
        volumes:
          - ./data:/data:ro
          - ~/cache:/cache:z
          - /abs/path:/abs/
          - named:/named:nocopy
          - /anonymous
        """)
    assert web["volumes"] == [
        {"type": "bind", "source": str(app / "data"), "target": "/data", "read_only": True,
         "bind": {"create_host_path": True}},
        {"type": "bind", "source": "/home/user/cache", "target": "/cache",
         "bind": {"create_host_path": True, "selinux": "z"}},
        {"type": "bind", "source": "/abs/path", "target": "/abs", "bind": {"create_host_path": True}},
        {"type": "volume", "source": "named", "target": "/named", "volume": {"nocopy": True}},
        {"type": "volume", "target": "/anonymous", "volume": {}},
    ]


def test_volumes_long_syntax(app):
    web = service(app, """\
        image: a
        volumes:
          - {type: tmpfs, target: /tmp, tmpfs: {size: 1m}}
          - {type: bind, source: ./src, target: /src, read_only: "true", bind: {propagation: rshared}}
          - {type: volume, source: data, target: /data}
        """)
    assert web["volumes"] == [
        {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": 1048576}},
        {"type": "bind", "source": str(app / "src"), "target": "/src", "read_only": True,
         "bind": {"propagation": "rshared", "create_host_path": True}},
        {"type": "volume", "source": "data", "target": "/data", "volume": {}},
    ]


@pytest.mark.parametrize("spec, problem", [
    ('"a:/b:ro:x"', '"a:/b:ro:x" is not a valid volume spec: too many colons'),
    ('"data:relative"', "\"data:relative\" is not a valid volume spec: the container path 'relative' "
     "is not absolute"),
    ('"./x:/y:rx"', "\"./x:/y:rx\" is not a valid volume spec: unknown mode 'rx'"),
    ('"::/y"', '"::/y" is not a valid volume spec: empty section between colons'),
])
def test_bad_volumes(app, spec, problem):
    assert error(app, f"services:\n  web:\n    image: a\n    volumes:\n      - {spec}\n") == \
        f"compose.yaml:5: services.web.volumes[0]: {problem} (use [SOURCE:]TARGET[:ro|rw])"


def test_long_volume_needs_a_known_type(app):
    assert error(app, "services:\n  web:\n    image: a\n    volumes:\n      - {type: nfs, target: /x}\n") \
        == 'compose.yaml:5: services.web.volumes[0].type: "nfs" is not a mount type (use bind, volume or tmpfs)'


def test_string_or_list_keys(app):
    web = service(app, "image: a\ntmpfs: /run\ndns: 1.1.1.1\ndns_search: [a.example]\n")
    assert (web["tmpfs"], web["dns"], web["dns_search"]) == (["/run"], ["1.1.1.1"], ["a.example"])


def test_networks(app):
    project = load(app, """\
        services:
          list: {image: a, networks: [front]}
          map: {image: a, networks: {front: {aliases: [m], ipv4_address: 10.0.0.5}, back: null}}
          none: {image: a}
          host: {image: a, network_mode: host}
        networks:
          front:
          back: {external: true}
        """)
    services = project.model["services"]
    assert services["list"]["networks"] == {"front": None}
    assert services["map"]["networks"] == {"front": {"aliases": ["m"], "ipv4_address": "10.0.0.5"},
                                           "back": None}
    assert services["none"]["networks"] == {"default": None}
    assert "networks" not in services["host"]
    assert project.model["networks"] == {"front": {"name": "app_front"},
                                         "back": {"name": "back", "external": True},
                                         "default": {"name": "app_default"}}


def test_the_default_network_may_be_declared(app):
    project = load(app, "services: {web: {image: a}}\nnetworks: {default: {name: shared, external: true}}\n")
    assert project.model["networks"] == {"default": {"name": "shared", "external": True}}


def test_no_default_network_when_no_service_uses_it(app):
    assert "networks" not in load(app, "services: {web: {image: a, network_mode: none}}").model


def test_depends_on_forms(app):
    project = load(app, """\
        services:
          web: {image: a, depends_on: [db]}
          api: {image: a, depends_on: {db: {condition: service_healthy, restart: true}}}
          db: {image: a}
          side: {image: a, network_mode: "service:db"}
        """)
    services = project.model["services"]
    assert services["web"]["depends_on"] == \
        {"db": {"condition": "service_started", "required": True, "restart": False}}
    assert services["api"]["depends_on"] == \
        {"db": {"condition": "service_healthy", "required": True, "restart": True}}
    assert services["side"]["depends_on"] == \
        {"db": {"condition": "service_started", "required": True, "restart": True}}


@pytest.mark.parametrize("text, message", [
    ("services:\n  web:\n    image: a\n    depends_on: [db]\n",
     "compose.yaml:4: services.web.depends_on.db: service 'db' is not defined (define it under "
     "services:, or remove it)"),
    ("services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [c]}\n"
     "  c: {image: x, depends_on: [a]}\n",
     "compose.yaml:2: services.a.depends_on: dependency cycle a -> b -> c -> a (remove one of these "
     "depends_on)"),
    ("services:\n  a: {image: x, depends_on: [a]}\n",
     "compose.yaml:2: services.a.depends_on: dependency cycle a -> a (remove one of these depends_on)"),
    ("services:\n  web:\n    image: a\n    depends_on: {db: {condition: done}}\n  db: {image: a}\n",
     'compose.yaml:4: services.web.depends_on.db.condition: "done" is not a condition (use '
     "service_started, service_healthy, service_completed_successfully)"),
])
def test_depends_on_errors(app, text, message):
    assert error(app, text) == message


def test_healthcheck(app):
    web = service(app, "image: a\nhealthcheck: {test: curl -f localhost, interval: 10s, "
                       "retries: '3', disable: false}\n")
    assert web["healthcheck"] == {"test": ["CMD-SHELL", "curl -f localhost"], "interval": "10s",
                                  "retries": 3, "disable": False}
    web = service(app, "image: a\nhealthcheck: {test: [CMD, 'true'], start_period: 1m30s}\n")
    assert web["healthcheck"] == {"test": ["CMD", "true"], "start_period": "1m30s"}
    assert service(app, "image: a\nhealthcheck: {disable: true}\n")["healthcheck"] == {"disable": True}


def test_bad_duration(app):
    assert error(app, "services:\n  web:\n    image: a\n    healthcheck:\n      interval: 10x\n") == \
        'compose.yaml:5: services.web.healthcheck.interval: "10x" is not a duration (use e.g. 10s, 1m30s)'


def test_labels_sysctls_ulimits_extra_hosts(app):
    web = service(app, """\
        image: a
        labels: [a=1, flag]
        sysctls: {net.core.somaxconn: 1024}
        ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: "65535"}
        extra_hosts: ["db:10.0.0.2", "cache=10.0.0.3"]
        """)
    assert web["labels"] == {"a": "1", "flag": ""}
    assert web["sysctls"] == {"net.core.somaxconn": "1024"}
    assert web["ulimits"] == {"nofile": {"soft": 1024, "hard": 2048},
                              "nproc": {"soft": 65535, "hard": 65535}}
    assert web["extra_hosts"] == ["db:10.0.0.2", "cache=10.0.0.3"]
    assert service(app, "image: a\nextra_hosts: {db: 10.0.0.2, multi: ['::1', 10.0.0.4]}\n")[
        "extra_hosts"] == ["db=10.0.0.2", "multi=::1", "multi=10.0.0.4"]


def test_scalars_are_kept_and_typed(app):
    web = service(app, """\
        image: a
        privileged: "true"
        read_only: ${RO:-false}
        init: true
        cpus: ${CPUS:-0.5}
        mem_limit: 512m
        pids_limit: "100"
        shm_size: 67108864
        restart: unless-stopped
        stop_grace_period: 30s
        user: "1000:1000"
        pull_policy: if_not_present
        scale: 2
        """)
    assert web == {"image": "a", "privileged": True, "read_only": False, "init": True, "cpus": 0.5,
                   "mem_limit": "512m", "pids_limit": 100, "shm_size": 67108864,
                   "restart": "unless-stopped", "stop_grace_period": "30s", "user": "1000:1000",
                   "pull_policy": "missing", "scale": 2, "networks": {"default": None}}


@pytest.mark.parametrize("line, message", [
    ("user: 1000", 'services.web.user: 1000 must be a string (quote it: "1000")'),
    ("ports: 80", "services.web.ports: must be a list, not a int"),
    ("privileged: maybe", 'services.web.privileged: "maybe" must be true or false'),
    ("mem_limit: lots", 'services.web.mem_limit: "lots" is not a size (use bytes or a unit: 512m, 1g)'),
    ("port: [80]", "services.web.port: port is not a Compose service key (additional property port "
     "is not allowed) (did you mean ports?)"),
    ("build: {context: ., dockerfil: x}", "services.web.build.dockerfil: dockerfil is not a Compose "
     "build key (additional property dockerfil is not allowed) (did you mean dockerfile?)"),
])
def test_wrong_keys_and_types(app, line, message):
    assert error(app, f"services:\n  web:\n    image: a\n    {line}\n") == f"compose.yaml:4: {message}"


def test_a_service_needs_an_image_or_a_build(app):
    assert error(app, "services:\n  web:\n    user: root\n") == \
        "compose.yaml:2: services.web: has neither an image nor a build context (add image: NAME " \
        "or build: DIR)"


def test_extends_is_not_supported(app):
    assert "extends is not supported" in \
        error(app, "services:\n  web: {image: a, extends: base}\n", Unsupported)


def test_network_mode_and_networks_exclude_each_other(app):
    assert "network_mode and networks are mutually exclusive" in \
        error(app, "services:\n  web: {image: a, network_mode: host, networks: [n]}\nnetworks: {n: {}}\n")


# --- top-level volumes, secrets, configs ----------------------------------------------------------

def test_top_level_resources(app):
    project = load(app, """\
        services:
          web:
            image: a
            volumes: [data:/data, old:/old]
            secrets: [pw, {source: token, target: /t, mode: 0440}]
            configs: [{source: conf, mode: "0444"}]
        volumes:
          data: {driver: local, labels: [a=b], driver_opts: {o: bind}}
          old: {external: true}
        secrets:
          pw: {file: ./pw.txt}
          token: {environment: TOKEN}
        configs:
          conf: {content: "hello", name: fixed}
        """)
    model = project.model
    assert model["volumes"] == {"data": {"name": "app_data", "driver": "local", "labels": {"a": "b"},
                                         "driver_opts": {"o": "bind"}},
                                "old": {"name": "old", "external": True}}
    assert model["secrets"] == {"pw": {"name": "app_pw", "file": str(app / "pw.txt")},
                                "token": {"name": "app_token", "environment": "TOKEN"}}
    assert model["configs"] == {"conf": {"name": "fixed", "content": "hello"}}
    assert model["services"]["web"]["secrets"] == [{"source": "pw"},
                                                   {"source": "token", "target": "/t", "mode": 0o440}]
    assert model["services"]["web"]["configs"] == [{"source": "conf", "mode": 0o444}]


def test_network_ipam_and_flags(app):
    project = load(app, """\
        services: {web: {image: a, networks: [n]}}
        networks:
          n: {driver: bridge, internal: "true", labels: {a: 1},
              ipam: {config: [{subnet: 10.5.0.0/16, gateway: 10.5.0.1}]}}
        """)
    assert project.model["networks"]["n"] == {
        "name": "app_n", "driver": "bridge", "internal": True, "labels": {"a": "1"},
        "ipam": {"config": [{"subnet": "10.5.0.0/16", "gateway": "10.5.0.1"}]}}


@pytest.mark.parametrize("text, message", [
    ("services:\n  web:\n    image: a\n    networks: [nope]\n",
     "compose.yaml:4: services.web.networks.nope: network 'nope' is not declared under the "
     "top-level networks: key (declare it)"),
    ("services:\n  web:\n    image: a\n    volumes: [nope:/x]\n",
     "compose.yaml:4: services.web.volumes: volume 'nope' is not declared under the top-level "
     "volumes: key (declare it)"),
    ("services:\n  web:\n    image: a\n    secrets: [nope]\n",
     "compose.yaml:4: services.web.secrets: secret 'nope' is not declared under the top-level "
     "secrets: key (declare it)"),
    ("services:\n  web:\n    image: a\n    configs: [nope]\n",
     "compose.yaml:4: services.web.configs: config 'nope' is not declared under the top-level "
     "configs: key (declare it)"),
    ("services: {web: {image: a}}\nsecrets:\n  s: {labels: [a=b]}\n",
     "compose.yaml:3: secrets.s: has no source (add file:, environment:)"),
])
def test_undeclared_references(app, text, message):
    assert error(app, text) == message


def test_external_secrets_are_not_supported(app):
    assert error(app, "services: {web: {image: a}}\nsecrets:\n  s: {external: true}\n", Unsupported) \
        == "compose.yaml:3: secrets.s.external: external secrets are not supported (minirun has no " \
           "swarm: use file, environment or content)"


# --- profiles -----------------------------------------------------------------------------------

PROFILED = """\
    services:
      web: {image: a, depends_on: [debug]}
      debug: {image: a, profiles: [dev]}
      tools: {image: a, profiles: [ops, dev]}
    """


def test_services_with_inactive_profiles_are_disabled(app):
    project = load(app, PROFILED)
    assert list(project.model["services"]) == ["web"]
    assert sorted(project.disabled) == ["debug", "tools"]
    assert project.disabled["debug"] == {"image": "a", "profiles": ["dev"],
                                         "networks": {"default": None}}


@pytest.mark.parametrize("kwargs, enabled", [
    ({"profiles": ["ops"]}, ["tools", "web"]),
    ({"profiles": ["*"]}, ["debug", "tools", "web"]),
    ({"environ": {"COMPOSE_PROFILES": "dev, other"}}, ["debug", "tools", "web"]),
    ({"profiles": [], "environ": {"COMPOSE_PROFILES": "dev"}}, ["web"]),
])
def test_active_profiles(app, kwargs, enabled):
    assert sorted(load(app, PROFILED, **kwargs).model["services"]) == enabled


def test_a_disabled_service_is_not_checked(app):
    project = load(app, "services:\n  web: {image: a}\n  off: {profiles: [x], networks: [nope]}\n")
    assert list(project.disabled) == ["off"]


def test_a_disabled_services_missing_env_file_is_a_warning(app):
    project = load(app, "services:\n  web: {image: a}\n  off: {image: a, profiles: [x], env_file: o.env}\n")
    assert project.warnings == [f"service off (disabled): env file {app}/o.env not found"]
    assert "env_file" not in project.disabled["off"]


# --- interpolation in files -------------------------------------------------------------------------

def test_required_variable_error_names_file_line_and_key(app):
    assert error(app, "services:\n  web:\n    image: a\n    ports:\n      - ${PORT:?set PORT}:80\n") == \
        "compose.yaml:5: services.web.ports[0]: required variable PORT is missing a value: set PORT"


def test_invalid_interpolation_names_the_key(app):
    assert error(app, "services:\n  web:\n    image: ${TAG\n") == \
        "compose.yaml:3: services.web.image: invalid interpolation format in '${TAG': a ${ is not " \
        "closed (write $$ for a literal $)"


def test_unset_variables_warn_and_dollar_dollar_is_literal(app):
    project = load(app, "services:\n  web: {image: 'a${TAG}', command: echo $$HOME}\n")
    assert project.model["services"]["web"]["image"] == "a"
    assert project.model["services"]["web"]["command"] == ["echo", "$HOME"]
    assert project.warnings == ['The "TAG" variable is not set. Defaulting to a blank string.']


def test_errors_after_merging_name_the_file_that_set_the_key(app):
    write(app, "services:\n  web: {image: a}\n", "one.yaml")
    write(app, "services:\n  web:\n    depends_on: [nope]\n", "two.yaml")
    assert error(app, None, files=["one.yaml", "two.yaml"]).startswith(
        "two.yaml:3: services.web.depends_on.nope: service 'nope' is not defined")


def test_paths_in_every_file_are_relative_to_the_project_directory(app):
    (app / "overrides").mkdir()
    write(app, "services: {web: {image: a}}")
    write(app / "overrides", "services: {web: {volumes: ['./data:/data']}}", "dev.yaml")
    project = load(app, files=["compose.yaml", "overrides/dev.yaml"])
    assert project.model["services"]["web"]["volumes"][0]["source"] == str(app / "data")


# --- config_hash, dump, service_order -------------------------------------------------------------

def test_config_hash_ignores_scale_and_replicas_only():
    base = {"image": "a", "scale": 1, "deploy": {"replicas": 1, "labels": {"a": "b"}}}
    same = {"deploy": {"labels": {"a": "b"}, "replicas": 5}, "image": "a", "scale": 3}
    assert loader.config_hash(base) == loader.config_hash(same)
    assert len(loader.config_hash(base)) == 64
    assert loader.config_hash(base) != loader.config_hash({**base, "image": "b"})
    assert loader.config_hash(base) != loader.config_hash({**base, "depends_on": {}})


def test_dump_orders_top_level_keys_and_services(app):
    project = load(app, """\
        volumes: {v: {}}
        networks: {n: {}}
        services:
          zeta: {image: z, volumes: ['v:/v'], networks: [n]}
          alpha: {image: a, networks: [n]}
        """)
    as_json = json.loads(loader.dump(project, "json"))
    assert list(as_json) == ["name", "services", "networks", "volumes"]
    assert list(as_json["services"]) == ["alpha", "zeta"]
    text = loader.dump(project)
    assert text.startswith("name: app\nservices:\n  alpha:\n    image: a\n")
    assert text.index("networks:\n  n:") < text.index("volumes:\n  v:")
    with pytest.raises(InvalidArgument, match="unknown format 'xml'"):
        loader.dump(project, "xml")


def test_service_order_puts_dependencies_first_and_ties_by_name():
    model = {"services": {"web": {"depends_on": {"db": {}, "cache": {}}}, "db": {},
                          "cache": {"depends_on": {"db": {}}}, "admin": {},
                          "worker": {"depends_on": {"off": {}}}}}
    assert loader.service_order(model) == ["admin", "db", "cache", "web", "worker"]


def test_the_model_is_plain_json_data(app):
    project = load(app, "services: {web: {image: a, ports: ['80'], environment: [A]}}")
    assert json.loads(json.dumps(project.model)) == project.model
    assert os.path.isabs(project.working_dir)
