"""Merging canonical models with Compose's override rules (the loader's per-file output)."""

from __future__ import annotations

from minirun.compose.merge import merge_all


def port(target, published="", host_ip=None, protocol="tcp"):
    entry = {"mode": "ingress", "target": target, "published": published, "protocol": protocol}
    if host_ip:
        entry["host_ip"] = host_ip
    return entry


def web(**keys):
    return {"services": {"web": keys}}


def merged_web(*files):
    return merge_all([web(**f) for f in files])["services"]["web"]


def test_mappings_merge_and_scalars_are_replaced():
    assert merged_web({"image": "a", "user": "1"}, {"image": "b", "init": True}) == \
        {"image": "b", "user": "1", "init": True}


def test_a_service_only_in_a_later_file_is_added():
    assert merge_all([web(image="a"), {"services": {"db": {"image": "pg"}}}])["services"] == \
        {"web": {"image": "a"}, "db": {"image": "pg"}}


def test_command_entrypoint_and_healthcheck_test_are_replaced_not_appended():
    got = merged_web({"command": ["a", "b"], "entrypoint": ["sh"],
                      "healthcheck": {"test": ["CMD", "x"], "interval": "5s"}},
                     {"command": ["c"], "entrypoint": ["bash"], "healthcheck": {"test": ["NONE"]}})
    assert got == {"command": ["c"], "entrypoint": ["bash"],
                   "healthcheck": {"test": ["NONE"], "interval": "5s"}}


def test_environment_labels_and_build_args_merge_by_key():
    got = merged_web({"environment": {"A": "1", "B": "2"}, "labels": {"l": "1"},
                      "build": {"context": "/c", "args": {"X": "1"}}},
                     {"environment": {"B": "3", "C": None}, "labels": {"m": "2"},
                      "build": {"args": {"Y": "2"}}})
    assert got == {"environment": {"A": "1", "B": "3", "C": None}, "labels": {"l": "1", "m": "2"},
                   "build": {"context": "/c", "args": {"X": "1", "Y": "2"}}}


def test_ports_are_unique_by_ip_published_target_and_protocol():
    got = merged_web({"ports": [port(80, "8080"), port(53, "53", protocol="udp")]},
                     {"ports": [port(80, "8080"), port(80, "8081"), port(53, "53")]})
    assert got["ports"] == [port(80, "8080"), port(53, "53", protocol="udp"), port(80, "8081"),
                            port(53, "53")]


def test_volumes_are_unique_by_target_and_replaced_in_place():
    first = [{"type": "volume", "source": "a", "target": "/data"},
             {"type": "bind", "source": "/x", "target": "/x"}]
    later = [{"type": "volume", "source": "b", "target": "/data"},
             {"type": "tmpfs", "target": "/tmp"}]
    assert merged_web({"volumes": first}, {"volumes": later})["volumes"] == \
        [later[0], first[1], later[1]]


def test_secrets_and_configs_are_unique_by_target_or_default_target():
    got = merged_web({"secrets": [{"source": "pw"}], "configs": [{"source": "c"}]},
                     {"secrets": [{"source": "pw", "target": "/run/secrets/pw", "mode": 0o400},
                                  {"source": "pw", "target": "/other"}],
                      "configs": [{"source": "c", "target": "/c", "uid": "1"}]})
    assert got == {"secrets": [{"source": "pw", "target": "/run/secrets/pw", "mode": 0o400},
                               {"source": "pw", "target": "/other"}],
                   "configs": [{"source": "c", "target": "/c", "uid": "1"}]}


def test_plain_sequences_append_unique_values():
    got = merged_web({"dns": ["1.1.1.1"], "cap_add": ["NET_ADMIN"], "expose": ["80"],
                      "security_opt": ["a"]},
                     {"dns": ["8.8.8.8", "1.1.1.1"], "cap_add": ["NET_ADMIN"], "expose": ["81"],
                      "security_opt": ["a"]})
    assert got == {"dns": ["1.1.1.1", "8.8.8.8"], "cap_add": ["NET_ADMIN"], "expose": ["80", "81"],
                   "security_opt": ["a", "a"]}     # no identity: appended, as in Compose


def test_extra_hosts_and_env_files_are_unique():
    got = merged_web({"extra_hosts": ["a=1.1.1.1"], "env_file": [{"path": "/e", "required": True}]},
                     {"extra_hosts": ["a=1.1.1.1", "b=2.2.2.2"],
                      "env_file": [{"path": "/e", "required": False}]})
    assert got == {"extra_hosts": ["a=1.1.1.1", "b=2.2.2.2"],
                   "env_file": [{"path": "/e", "required": False}]}


def test_duplicates_within_one_file_are_removed_too():
    assert merged_web({"dns": ["1.1.1.1", "1.1.1.1"]}) == {"dns": ["1.1.1.1"]}


def test_networks_and_depends_on_merge_per_name():
    got = merged_web({"networks": {"front": {"aliases": ["a"]}, "back": None},
                      "depends_on": {"db": {"condition": "service_started", "required": True,
                                            "restart": False}}},
                     {"networks": {"front": {"aliases": ["b", "a"]}, "back": {"priority": 1}},
                      "depends_on": {"db": {"condition": "service_healthy"}}})
    assert got == {"networks": {"front": {"aliases": ["a", "b"]}, "back": {"priority": 1}},
                   "depends_on": {"db": {"condition": "service_healthy", "required": True,
                                         "restart": False}}}


def test_null_in_a_later_file_keeps_the_earlier_value():
    assert merged_web({"networks": {"front": {"aliases": ["a"]}}},
                      {"networks": {"front": None}}) == {"networks": {"front": {"aliases": ["a"]}}}


def test_ulimits_entries_are_replaced_whole():
    got = merged_web({"ulimits": {"nofile": {"soft": 1, "hard": 2}, "nproc": {"soft": 3, "hard": 3}}},
                     {"ulimits": {"nofile": {"soft": 5, "hard": 5}}})
    assert got["ulimits"] == {"nofile": {"soft": 5, "hard": 5}, "nproc": {"soft": 3, "hard": 3}}


def test_logging_merges_only_for_the_same_driver():
    base = {"logging": {"driver": "json-file", "options": {"max-size": "1m"}}}
    assert merged_web(base, {"logging": {"options": {"max-file": "3"}}})["logging"] == \
        {"driver": "json-file", "options": {"max-size": "1m", "max-file": "3"}}
    assert merged_web(base, {"logging": {"driver": "syslog"}})["logging"] == {"driver": "syslog"}


def test_top_level_resources_merge_and_ipam_pools_by_subnet():
    first = {"networks": {"n": {"driver": "bridge", "labels": {"a": "1"}, "ipam": {"config": [
        {"subnet": "10.0.0.0/24"}, {"subnet": "10.1.0.0/24"}]}}}, "volumes": {"v": {}}}
    later = {"networks": {"n": {"labels": {"b": "2"}, "ipam": {"config": [
        {"subnet": "10.0.0.0/24", "gateway": "10.0.0.1"}, {"subnet": "10.2.0.0/24"}]}}},
        "volumes": {"v": {"driver": "local"}}, "name": "later"}
    assert merge_all([first, later]) == {
        "networks": {"n": {"driver": "bridge", "labels": {"a": "1", "b": "2"}, "ipam": {"config": [
            {"subnet": "10.0.0.0/24", "gateway": "10.0.0.1"}, {"subnet": "10.1.0.0/24"},
            {"subnet": "10.2.0.0/24"}]}}},
        "volumes": {"v": {"driver": "local"}}, "name": "later"}


def test_inputs_are_not_modified():
    first, later = web(environment={"A": "1"}), web(environment={"B": "2"})
    merge_all([first, later])
    assert first == web(environment={"A": "1"}) and later == web(environment={"B": "2"})
