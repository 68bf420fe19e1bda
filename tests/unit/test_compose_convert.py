"""compose.convert: a service of the canonical model -> the RunOptions `minirun run` would get."""

from __future__ import annotations

import textwrap

import pytest

from minirun.compose import convert, loader, naming
from minirun.errors import InvalidArgument, Unsupported


def project(tmp_path, text: str) -> loader.Project:
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(text))
    return loader.load(cwd=str(tmp_path), environ={})


def plan(tmp_path, text: str, service: str = "web", number: int = 1, **kw) -> convert.Plan:
    p = project(tmp_path, text)
    return convert.plan(p.name, p.model, service, number, "busybox", **kw)


def test_names_labels_command_and_environment(tmp_path):
    p = plan(tmp_path, """
        name: shop
        services:
          web:
            image: busybox
            command: httpd -f -p 80
            entrypoint: ["/bin/sh", "-c"]
            environment: {A: "1", UNSET: null}
            labels: {team: blue}
        """, number=2, config_hash="abc", image_id="sha256:1")
    o = p.options
    assert o.name == "shop-web-2"
    assert o.command == ["httpd", "-f", "-p", "80"] and o.entrypoint == ["/bin/sh", "-c"]
    assert o.env == ["A=1"]  # an unresolved variable stays unset
    assert o.labels[naming.PROJECT] == "shop" and o.labels[naming.SERVICE] == "web"
    assert o.labels[naming.NUMBER] == "2" and o.labels[naming.ONEOFF] == "False"
    assert o.labels[naming.CONFIG_HASH] == "abc" and o.labels[naming.IMAGE] == "sha256:1"
    assert o.labels["team"] == "blue"


def test_ports_volumes_secrets_and_bind_dirs_to_make(tmp_path):
    (tmp_path / "s1.txt").write_text("x")
    p = plan(tmp_path, """
        services:
          web:
            image: busybox
            ports: ["8080:80", "127.0.0.1::81/udp", "9000"]
            volumes:
              - ./html:/www:ro
              - data:/data
              - /anon
              - {type: tmpfs, target: /t, tmpfs: {size: 1048576}}
            secrets: [s1]
        volumes: {data: {}}
        secrets: {s1: {file: ./s1.txt}}
        """)
    o = p.options
    assert o.publish == ["8080:80/tcp", "127.0.0.1::81/udp", "9000/tcp"]
    name = tmp_path.name
    assert o.mounts == [f"type=bind,source={tmp_path}/html,target=/www,readonly",
                        f"type=volume,target=/data,source={name}_data",
                        "type=volume,target=/anon",
                        "type=tmpfs,target=/t,tmpfs-size=1048576",
                        f"type=bind,source={tmp_path}/s1.txt,target=/run/secrets/s1,readonly"]
    assert p.bind_dirs == [f"{tmp_path}/html"]  # create_host_path: compose makes it


def test_networks_first_at_create_the_rest_joined_with_aliases(tmp_path):
    p = plan(tmp_path, """
        name: p
        services:
          web:
            image: busybox
            networks:
              front: {priority: 10}
              back: {aliases: [www], ipv4_address: 10.1.2.3}
        networks: {front: {}, back: {name: shared-back}}
        """)
    assert (p.options.network, p.options.aliases, p.options.ip) == ("p_front", ["web"], None)
    assert p.networks == [("shared-back", ["web", "www"], "10.1.2.3", None)]
    default = plan(tmp_path, "name: p\nservices: {web: {image: busybox}}\n")
    assert default.options.network == "p_default" and default.options.aliases == ["web"]


def test_network_mode(tmp_path):
    text = "services:\n  web: {image: busybox, network_mode: MODE}\n  db: {image: busybox}\n"
    assert plan(tmp_path, text.replace("MODE", "host")).options.network == "host"
    shared = plan(tmp_path, text.replace("MODE", '"service:db"'),
                  network_mode_container="p-db-1")
    assert shared.options.network == "container:p-db-1"
    with pytest.raises(InvalidArgument, match="network_mode"):
        plan(tmp_path, text.replace("MODE", '"service:db"'))


def test_resources_limits_and_kernel_settings(tmp_path):
    o = plan(tmp_path, """
        services:
          web:
            image: busybox
            deploy: {resources: {limits: {cpus: "0.5", memory: 64m, pids: 50}}}
            cpu_shares: 512
            ulimits: {nofile: {soft: 100, hard: 200}, nproc: 30}
            sysctls: {net.core.somaxconn: 1024}
            shm_size: 2m
            stop_grace_period: 1m30s
            stop_signal: SIGINT
            extra_hosts: ["h1=1.2.3.4", "h2:5.6.7.8"]
            restart: on-failure:3
            init: true
            read_only: true
            cap_add: [NET_ADMIN]
        """).options
    assert (o.nano_cpus, o.memory, o.pids_limit, o.cpu_shares) == (500_000_000, 64 << 20, 50, 512)
    assert o.ulimits == [{"Name": "nofile", "Soft": 100, "Hard": 200},
                         {"Name": "nproc", "Soft": 30, "Hard": 30}]
    assert o.sysctls == {"net.core.somaxconn": "1024"} and o.shm_size == 2 << 20
    assert (o.stop_timeout, o.stop_signal) == (90, "SIGINT")
    assert o.add_hosts == ["h1:1.2.3.4", "h2:5.6.7.8"]
    assert (o.restart, o.init, o.read_only, o.cap_add) == ("on-failure:3", True, True, ["NET_ADMIN"])


def test_healthcheck_in_nanoseconds_and_disable(tmp_path):
    hc = plan(tmp_path, """
        services:
          web:
            image: busybox
            healthcheck: {test: "wget -q localhost", interval: 5s, timeout: 2s, retries: 3,
                          start_period: 1s, start_interval: 500ms}
        """).options.healthcheck
    assert hc == {"Test": ["CMD-SHELL", "wget -q localhost"], "Interval": 5 * 10**9,
                  "Timeout": 2 * 10**9, "StartPeriod": 10**9, "StartInterval": 5 * 10**8,
                  "Retries": 3}
    off = plan(tmp_path, "services:\n  web: {image: busybox, healthcheck: {disable: true}}\n")
    assert off.options.healthcheck == {"Test": ["NONE"]}


def test_replicas_scale_and_container_name(tmp_path):
    p = project(tmp_path, "services:\n  web: {image: busybox, deploy: {replicas: 3}}\n")
    assert convert.replicas("web", p.model["services"]["web"]) == 3
    p = project(tmp_path, "services:\n  web: {image: busybox, scale: 2, container_name: w}\n")
    with pytest.raises(InvalidArgument, match="container_name 'w' can name one container"):
        convert.replicas("web", p.model["services"]["web"])


def test_unsupported_keys_are_refused_by_path_and_swarm_keys_warned(tmp_path):
    with pytest.raises(Unsupported, match=r"services\.web\.devices: not supported"):
        plan(tmp_path, "services:\n  web: {image: busybox, devices: ['/dev/fuse']}\n")
    with pytest.raises(Unsupported, match="logging.driver: syslog"):
        plan(tmp_path, "services:\n  web: {image: busybox, logging: {driver: syslog}}\n")
    p = plan(tmp_path, "services:\n  web: {image: busybox, deploy: {placement: {constraints: "
                       "[node.role==manager]}}}\n")
    assert p.warnings == ["services.web.deploy.placement: ignored (Swarm only)"]


def test_oneoff_run_publishes_nothing_and_never_restarts(tmp_path):
    o = plan(tmp_path, "services:\n  web: {image: busybox, ports: ['80:80'], restart: always}\n",
             oneoff=True, container_name="p-web-run-1").options
    assert (o.publish, o.restart, o.name) == ([], "no", "p-web-run-1")
    assert o.labels[naming.ONEOFF] == "True"


def test_volumes_from_names_the_first_container_of_a_service(tmp_path):
    p = plan(tmp_path, "name: app\nservices:\n  data: {image: busybox, volumes: [/d]}\n"
             "  app: {image: busybox, volumes_from: ['data:ro', 'container:other']}\n", "app")
    assert p.options.volumes_from == ["app-data-1:ro", "other"]
    with pytest.raises(InvalidArgument, match="service 'nope' is not defined"):  # the loader's
        plan(tmp_path, "services:\n  app: {image: busybox, volumes_from: [nope]}\n", "app")
