"""engine/api: volumes, networks, changes, update, attach streams and events in plain data, with
the typed errors a front end maps (no root: records only, no kernel)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from minirun.engine import attach as frames
from minirun.engine.api import attach as attach_api
from minirun.engine.api import containers as containers_api
from minirun.engine.api import events as events_api
from minirun.engine.api import files as files_api
from minirun.engine.api import networks as networks_api
from minirun.engine.api import volumes as volumes_api
from minirun.engine.lifecycle import Engine
from minirun.engine.records import Container
from minirun.engine.volumes import VolumeError
from minirun.errors import Conflict, InvalidArgument, NotFound
from minirun.network.networks import NetworkError


@pytest.fixture
def eng(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIRUN_DEFAULT_SUBNET", "10.250.0.0/24")
    return Engine(str(tmp_path / "root"), str(tmp_path / "run"), lambda: None)


def _container(eng: Engine, name: str, **kw) -> Container:
    c = eng.containers.new(Container(id="", name=name, image="i", image_id="sha256:x",
                                     created="2024-01-01T00:00:00.000000000Z"))
    for k, v in kw.items():
        setattr(c, k, v)
    eng.containers.save(c)
    return c


# --- volumes ------------------------------------------------------------------------------------


def test_volume_create_list_inspect_remove(eng):
    v = volumes_api.create(eng, "data", labels={"app": "db"})
    assert set(v) == {"Name", "Driver", "Mountpoint", "CreatedAt", "Labels", "Scope", "Options"}
    assert v["Name"] == "data" and v["Labels"] == {"app": "db"} and v["Driver"] == "local"
    volumes_api.create(eng, "other")
    assert volumes_api.inspect(eng, "data") == v
    listed = volumes_api.list_(eng)
    assert [x["Name"] for x in listed["Volumes"]] == ["data", "other"]
    assert listed["Warnings"] == []
    assert [x["Name"] for x in volumes_api.list_(eng, {"label": ["app=db"]})["Volumes"]] == \
        ["data"]
    assert [x["Name"] for x in volumes_api.list_(eng, {"name": ["oth"]})["Volumes"]] == ["other"]
    volumes_api.remove(eng, "data")
    with pytest.raises(NotFound, match="get data: no such volume"):
        volumes_api.inspect(eng, "data")
    volumes_api.remove(eng, "data", force=True)  # force: a missing one is no error


def test_volume_errors_are_typed_and_still_volume_errors(eng):
    with pytest.raises(InvalidArgument, match="volume driver 'nfs': only local exists"):
        volumes_api.create(eng, "x", driver="nfs")
    with pytest.raises(VolumeError, match="includes invalid characters") as e:
        volumes_api.create(eng, "a b")
    assert isinstance(e.value, InvalidArgument)
    with pytest.raises(InvalidArgument, match="invalid filter 'size': dangling, name or label"):
        volumes_api.list_(eng, {"size": ["1"]})
    with pytest.raises(VolumeError) as e:
        volumes_api.remove(eng, "nope")
    assert isinstance(e.value, NotFound)


def test_volume_in_use_is_a_conflict_and_prune_keeps_it(eng):
    volumes_api.create(eng, "used")
    volumes_api.create(eng, "named")
    anon, _ = eng.volumes.create(None)
    c = _container(eng, "web", mounts=[{"Type": "volume", "Name": "used", "Destination": "/d"}])
    with pytest.raises(Conflict, match=rf"remove used: volume is in use - \[{c.id}\]"):
        volumes_api.remove(eng, "used")
    assert [v["Name"] for v in volumes_api.list_(eng, {"dangling": ["true"]})["Volumes"]] == \
        sorted([anon.Name, "named"])
    assert volumes_api.prune(eng) == {"VolumesDeleted": [anon.Name], "SpaceReclaimed": 0}
    assert volumes_api.prune(eng, all=True)["VolumesDeleted"] == ["named"]
    assert [v["Name"] for v in volumes_api.list_(eng)["Volumes"]] == ["used"]


# --- networks -----------------------------------------------------------------------------------


def test_network_create_list_inspect(eng):
    nid = networks_api.create(eng, "backend", subnet="10.251.0.0/24", labels={"t": "1"})["Id"]
    n = networks_api.inspect(eng, "backend")
    assert n["Id"] == nid and n["Driver"] == "bridge" and n["Labels"] == {"t": "1"}
    assert n["IPAM"]["Config"] == [{"Subnet": "10.251.0.0/24", "Gateway": "10.251.0.1"}]
    assert networks_api.inspect(eng, nid[:12])["Name"] == "backend"
    names = [x["Name"] for x in networks_api.list_(eng)]
    assert names == ["backend", "bridge", "host", "none"]
    assert [x["Name"] for x in networks_api.list_(eng, {"label": ["t"]})] == \
        ["backend", "host", "none"]
    assert [x["Driver"] for x in networks_api.list_(eng)][-2:] == ["host", "null"]


def test_network_errors_are_typed_and_still_network_errors(eng):
    with pytest.raises(InvalidArgument, match="driver 'overlay' is not supported"):
        networks_api.create(eng, "mv", driver="overlay")
    with pytest.raises(InvalidArgument, match="macvlan driver needs -o parent=IFACE"):
        networks_api.create(eng, "mv", driver="macvlan")
    with pytest.raises(InvalidArgument, match="parent interface 'no-such0' was not found"):
        networks_api.create(eng, "mv", driver="macvlan", options={"parent": "no-such0"})
    with pytest.raises(InvalidArgument, match="ipvlan_mode 'l9' is not one of l2, l3, l3s"):
        networks_api.create(eng, "mv", driver="ipvlan", options={"parent": "lo",
                                                                 "ipvlan_mode": "l9"})
    with pytest.raises(InvalidArgument, match="option macvlan_mode is not supported by the "
                       "ipvlan driver"):
        networks_api.create(eng, "mv", driver="ipvlan", options={"parent": "lo",
                                                                 "macvlan_mode": "bridge"})
    assert not [n for n in networks_api.list_(eng) if n["Name"] == "mv"]  # nothing half-made
    with pytest.raises(NetworkError, match="invalid subnet 'ten'") as e:
        networks_api.create(eng, "x1", subnet="ten")
    assert isinstance(e.value, InvalidArgument)
    with pytest.raises(Conflict, match="network with name host already exists"):
        networks_api.create(eng, "host")
    networks_api.create(eng, "na", subnet="10.252.0.0/24")
    with pytest.raises(Conflict, match="network with name na already exists"):
        networks_api.create(eng, "na")
    with pytest.raises(Conflict, match="Pool overlaps"):
        networks_api.create(eng, "nb", subnet="10.252.0.0/16")
    with pytest.raises(NotFound, match="network nope not found"):
        networks_api.inspect(eng, "nope")
    with pytest.raises(Conflict, match="bridge is a pre-defined network and cannot be removed"):
        networks_api.remove(eng, "bridge")
    with pytest.raises(InvalidArgument, match="invalid filter 'scope'"):
        networks_api.list_(eng, {"scope": ["local"]})


def test_network_in_use_cannot_be_removed(eng):
    networks_api.create(eng, "app", subnet="10.253.0.0/24")
    _container(eng, "web", networks={"app": {"IPAddress": "10.253.0.2", "IPPrefixLen": 24}})
    with pytest.raises(Conflict, match=r"network app id \w+ has active endpoints \(web\)"):
        networks_api.remove(eng, "app")


# --- containers: changes, update ----------------------------------------------------------------


def test_changes_are_dockers_kinds(eng):
    c = _container(eng, "web", layers=["l1"])
    lower = os.path.join(eng.root, "image", "layers", "l1")
    os.makedirs(os.path.join(lower, "etc"))
    open(os.path.join(lower, "etc", "old"), "w").close()
    upper = os.path.join(eng.cdir(c.id), "upper")
    os.makedirs(os.path.join(upper, "etc"))
    open(os.path.join(upper, "etc", "old"), "w").close()
    open(os.path.join(upper, "new"), "w").close()
    assert files_api.changes(eng, "web") == [
        {"Path": "/etc", "Kind": 0}, {"Path": "/etc/old", "Kind": 0}, {"Path": "/new", "Kind": 1}]


def test_update_keeps_resources_in_the_record(eng):
    _container(eng, "web", host_config={"Memory": 64 << 20, "RestartPolicy": {"Name": "no"}})
    assert containers_api.update(eng, "web", {"CpuShares": 512, "Memory": 0,
                                              "RestartPolicy": {"Name": "on-failure",
                                                                "MaximumRetryCount": 3}}) \
        == {"Warnings": []}
    hc = eng.containers.find("web").host_config
    assert hc["CpuShares"] == 512 and hc["Memory"] == 64 << 20
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    with pytest.raises(InvalidArgument, match="Minimum memory limit allowed is 6MB"):
        containers_api.update(eng, "web", {"Memory": 1024})
    with pytest.raises(InvalidArgument, match="Privileged cannot be updated"):
        containers_api.update(eng, "web", {"Privileged": True})
    with pytest.raises(NotFound, match="No such container: nope"):
        containers_api.update(eng, "nope", {})


# --- attach, events -----------------------------------------------------------------------------


def test_attach_stream_yields_output_frames_until_the_exit(eng):
    c = _container(eng, "web")
    eng.containers.update(c.id, lambda x: setattr(x.state, "status", "running"))
    server = frames.listen(eng.cdir(c.id))

    def monitor() -> None:
        conn, _ = server.accept()
        conn.sendall(frames.frame(frames.STDOUT, b"out") + frames.frame(frames.STDERR, b"e"))
        conn.sendall(frames.frame(frames.EXIT, b"3"))
        conn.close()

    t = threading.Thread(target=monitor)
    t.start()
    try:
        assert list(attach_api.stream(eng, "web")) == [("stdout", b"out"), ("stderr", b"e"),
                                                        ("exit", b"3")]
    finally:
        t.join()
        server.close()


def test_attach_to_a_stopped_container_is_a_conflict(eng):
    _container(eng, "web")
    with pytest.raises(Conflict, match="You cannot attach to a stopped container"):
        attach_api.attach(eng, "web")
    with pytest.raises(Conflict):
        attach_api.stream(eng, "web")


def test_events_come_from_the_journal_with_since_until_and_filters(eng):
    from minirun.engine import events as journal

    journal.record(eng.root, "container", "create", "c1" * 32, {"name": "web", "image": "busybox"})
    journal.record(eng.root, "network", "create", "n1", {"name": "front"})
    journal.record(eng.root, "container", "die", "c1" * 32,
                   {"name": "web", "image": "busybox", "exitCode": 3, "app": "x"})
    now = str(time.time() + 1)
    got = list(events_api.events(eng, since="0", until=now))
    assert [(e["Type"], e["Action"]) for e in got] == [
        ("container", "create"), ("network", "create"), ("container", "die")]
    assert got[2]["Actor"]["Attributes"]["exitCode"] == "3" and got[2]["scope"] == "local"
    assert got[0]["time"] == got[0]["timeNano"] // 10**9
    only = list(events_api.events(eng, since="0", until=now,
                                  filters={"type": ["container"], "event": ["die"]}))
    assert [e["Action"] for e in only] == ["die"]
    assert [e["Action"] for e in events_api.events(
        eng, since="0", until=now, filters={"container": ["web"], "label": ["app=x"]})] == ["die"]
    assert list(events_api.events(eng, since="0", until=now, filters={"network": ["front"]}))
    with pytest.raises(InvalidArgument):
        events_api.events(eng, filters={"colour": ["red"]})


def test_the_journal_is_cut_back_to_its_newest_half(eng, monkeypatch):
    from minirun.engine import events as journal

    monkeypatch.setattr(journal, "MAX_BYTES", 2000)
    for i in range(100):
        journal.record(eng.root, "volume", "create", f"v{i}", {"name": f"v{i}"})
    size = os.path.getsize(journal.path(eng.root))
    assert 800 < size <= 2000
    events, _ = journal.read(eng.root)
    assert events[-1]["Actor"]["ID"] == "v99" and events[0]["Actor"]["ID"] != "v0"

