"""engine.records: container records under <root>/containers, names and ID lookup."""

from __future__ import annotations

import json
import os
import re

import pytest

from minirun.engine import records
from minirun.engine.records import (Conflict, Container, Containers, NoSuchContainer, State,
                                     valid_name)
from minirun.errors import ContainerError


def blank(name: str = "") -> Container:
    return Container(id="", name=name, image="alpine", image_id="sha256:" + "1" * 64,
                     created=records.now())


def put(store: Containers, cid: str, name: str) -> Container:
    """A record with a chosen ID (new() picks random ones)."""
    c = blank(name)
    c.id = cid
    os.mkdir(store.path(cid))
    store.save(c)
    return c


@pytest.fixture
def store(tmp_path):
    return Containers(str(tmp_path))


def test_new_assigns_a_64_hex_id_and_writes_the_record(store):
    c = store.new(blank("web"))
    assert re.fullmatch(r"[0-9a-f]{64}", c.id)
    assert not c.id[:12].isdigit()
    assert os.path.exists(store.path(c.id, "container.json"))
    assert store.load(c.id) == c
    assert store.ids() == [c.id]


def test_new_without_a_name_generates_adjective_underscore_surname(store):
    c = store.new(blank())
    adj, _, surname = c.name.partition("_")
    assert adj in records._ADJECTIVES and surname in records._NAMES


def test_generated_names_avoid_taken_ones():
    taken = {f"{a}_{n}" for a in records._ADJECTIVES for n in records._NAMES}
    name = records._free_name(taken.__contains__)
    assert name not in taken and records.valid_name(name)


def test_a_taken_name_is_a_conflict_with_dockers_message(store):
    first = store.new(blank("web"))
    with pytest.raises(Conflict) as e:
        store.new(blank("web"))
    assert str(e.value) == (f'Conflict. The container name "/web" is already in use by '
                            f'container "{first.id}". You have to remove (or rename) that '
                            "container to be able to reuse that name.")
    assert e.value.exit_code == 125


@pytest.mark.parametrize("name", ["a", "-web", "_web", "web/1", "wéb", "has space"])
def test_invalid_names_are_refused(store, name):
    with pytest.raises(records.InvalidName, match=r"Invalid container name"):
        store.new(blank(name))
    assert store.ids() == []


@pytest.mark.parametrize("name", ["ab", "web.1", "my_app-2", "9lives"])
def test_valid_names(name):
    assert records.valid_name(name)


def test_find_by_full_id_name_and_unique_prefix(store):
    c = put(store, "ab" + "0" * 62, "web")
    put(store, "cd" + "0" * 62, "db")
    assert store.find(c.id).name == "web"
    assert store.find("web").id == c.id
    assert store.find("/web").id == c.id
    assert store.find("ab").id == c.id


def test_find_prefers_a_name_over_an_id_prefix(store):
    put(store, "ab" + "0" * 62, "web")
    other = put(store, "cd" + "0" * 62, "ab")
    assert store.find("ab").id == other.id


def test_find_with_an_ambiguous_prefix_is_an_error(store):
    put(store, "ab" + "0" * 62, "one")
    put(store, "ab" + "1" * 62, "two")
    with pytest.raises(ContainerError, match="multiple containers match the ID prefix 'ab'"):
        store.find("ab")
    assert store.find("ab0").name == "one"


@pytest.mark.parametrize("ref", ["nope", "ff", "", "f" * 64])
def test_find_of_nothing_is_no_such_container(store, ref):
    put(store, "ab" + "0" * 62, "web")
    with pytest.raises(NoSuchContainer) as e:
        store.find(ref)
    assert str(e.value) == f"No such container: {ref}" and e.value.exit_code == 1


def test_rename_changes_the_name_and_refuses_taken_or_invalid_ones(store):
    c = store.new(blank("web"))
    store.new(blank("db"))
    store.rename(c.id, "front")
    assert store.find("front").id == c.id
    with pytest.raises(NoSuchContainer):
        store.find("web")
    with pytest.raises(Conflict, match='"/db" is already in use'):
        store.rename(c.id, "db")
    with pytest.raises(records.InvalidName, match="Invalid container name"):
        store.rename(c.id, "x")


def test_update_applies_the_change_and_saves_it(store):
    c = store.new(blank("web"))
    out = store.update(c.id, lambda x: setattr(x.state, "status", "running"))
    assert out.state.status == "running"
    assert store.load(c.id).state.status == "running"


def test_remove_dir_forgets_the_container(store):
    c = store.new(blank("web"))
    store.remove_dir(c.id)
    assert not os.path.exists(store.path(c.id))
    assert store.ids() == [] and sorted(os.listdir(store.dir)) == [".lock", ".names"]
    assert os.listdir(os.path.join(store.dir, ".names")) == [".count"]  # its name went too
    with pytest.raises(NoSuchContainer):
        store.find("web")
    store.remove_dir(c.id)  # a second time is a no-op


def test_a_removed_name_can_be_reused(store):
    store.remove_dir(store.new(blank("web")).id)
    assert store.new(blank("web")).name == "web"


def test_container_json_round_trip_keeps_state_fields():
    c = blank("web")
    c.id = "e" * 64
    c.config = {"Env": ["A=1"], "Tty": True}
    c.mounts = [{"Type": "bind", "Source": "/h", "Destination": "/c", "RW": False}]
    c.state = State(status="exited", pid=0, exit_code=137, oom_killed=True, error="boom",
                    started_at="2026-01-01T00:00:00Z", restart_count=3, monitor_pid=99,
                    monitor_start=12345, stop_requested=True)
    back = Container.from_dict(json.loads(c.to_json()))
    assert back == c
    assert back.state.exit_code == 137 and back.state.oom_killed is True
    assert back.short_id == "e" * 12


def test_from_dict_ignores_unknown_keys():
    d = json.loads(blank("web").to_json())
    d["future_field"] = 1
    d["state"]["future_state"] = 2
    assert Container.from_dict(d).name == "web"


def test_state_running_covers_paused_and_restarting():
    assert [State(status=s).running for s in ("running", "paused", "restarting", "exited",
                                              "created")] == [True, True, True, False, False]


def test_unreadable_record_is_a_minirun_error_not_a_traceback(store):
    c = store.new(blank("web"))
    with open(store.path(c.id, "container.json"), "w") as f:
        f.write("{not json")
    with pytest.raises(records.MinirunError, match="unreadable record"):
        store.load(c.id)
    assert store.all() == []


def test_the_names_index_follows_new_rename_and_remove(store):
    """containers/.names/<name> -> ID: what a name claim and a find by name read instead of
    every record."""
    a = store.new(blank("web"))
    b = store.new(blank(""))
    index = os.path.join(store.dir, ".names")
    assert os.readlink(os.path.join(index, "web")) == a.id
    assert os.readlink(os.path.join(index, b.name)) == b.id
    store.rename(a.id, "api")
    assert not os.path.lexists(os.path.join(index, "web"))
    assert store.find("api").id == a.id and os.readlink(os.path.join(index, "api")) == a.id
    store.new(blank("web"))  # the old name is free again
    store.remove_dir(a.id)
    assert not os.path.lexists(os.path.join(index, "api"))
    with pytest.raises(NoSuchContainer):
        store.find("api")


def test_the_names_index_is_made_again_from_the_records(store):
    """Records the index does not know (an older minirun's, or written by hand as put() does)
    and entries it should not have (a crash): the counts do not add up, and the index is made
    from the records before the next claim, so a taken name stays taken."""
    put(store, "a" * 64, "old")  # no index entry
    with pytest.raises(Conflict, match='"/old" is already in use by container "aaaa'):
        store.new(blank("old"))
    os.symlink("b" * 64, os.path.join(store.dir, ".names", "ghost"))  # a crash's leftover
    c = store.new(blank("ghost"))
    assert store.find("ghost").id == c.id
    # An entry pointing at another container's record is not believed by find.
    os.unlink(os.path.join(store.dir, ".names", "ghost"))
    os.symlink("a" * 64, os.path.join(store.dir, ".names", "ghost"))
    assert store.find("ghost").id == c.id


def test_a_directory_without_a_record_does_not_remake_the_index_each_time(store, monkeypatch):
    os.mkdir(store.path("e" * 64))  # mkdir done, first record never written (a crash)
    store.new(blank("one"))
    made = []
    real = records.Containers.raw
    monkeypatch.setattr(records.Containers, "raw", lambda self: made.append(1) or real(self))
    store.new(blank("two"))
    assert made == []


def test_raw_reads_what_all_reads_as_json_in_id_order(store):
    """raw() is all() without the Containers: the same records, the same order (the NAT's
    ruleset is built from it and must come out the same each time), the unreadable skipped."""
    put(store, "b" * 64, "second")
    put(store, "a" * 64, "first")
    bad = put(store, "c" * 64, "broken")
    with open(store.path(bad.id, "container.json"), "w") as f:
        f.write("{not json")
    os.mkdir(store.path("d" * 64))  # a directory being made: no record yet
    assert [(d["id"], d["name"]) for d in store.raw()] == [(c.id, c.name) for c in store.all()]
    assert [d["name"] for d in store.raw()] == ["first", "second"]
    assert store.raw()[0]["state"]["status"] == "created"
    assert records.RUNNING == ("running", "paused", "restarting")


def test_raw_leaves_out_the_records_marked_by_skip(store):
    """What refresh() asks: only records with a published port are parsed. A label whose value
    reads like the marker does not hide a record: its quotes are escaped in the JSON."""
    plain = put(store, "a" * 64, "plain")
    plain.host_config = {"PortBindings": {}}
    store.save(plain)
    ports = put(store, "b" * 64, "ports")
    ports.host_config = {"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}}
    ports.config = {"Labels": {"x": '"PortBindings": {}'}}
    store.save(ports)
    skip = (b'"PortBindings": {}', b'"PortBindings": null')
    assert [d["name"] for d in store.raw(skip=skip)] == ["ports"]
    assert [d["name"] for d in store.raw()] == ["plain", "ports"]


def test_records_ids_names_and_lookup(tmp_path):
    cs = Containers(str(tmp_path))
    a = cs.new(Container(id="", name="", image="i", image_id="x", created="t"))
    assert len(a.id) == 64 and "_" in a.name
    b = cs.new(Container(id="", name="web", image="i", image_id="x", created="t"))
    with pytest.raises(Conflict, match='The container name "/web" is already in use'):
        cs.new(Container(id="", name="web", image="i", image_id="x", created="t"))
    assert cs.find("web").id == b.id and cs.find(b.id).id == b.id
    assert cs.find(b.id[:5]).id == b.id or b.id[:5] == a.id[:5]
    with pytest.raises(NoSuchContainer, match="No such container: nope"):
        cs.find("nope")
    cs.rename(b.id, "web2")
    assert cs.find("web2").id == b.id
    cs.update(b.id, lambda c: setattr(c.state, "status", "running"))
    assert cs.load(b.id).state.status == "running"
    cs.remove_dir(b.id)
    assert [c.id for c in cs.all()] == [a.id]


def test_single_character_names_are_invalid_as_in_docker():
    assert not valid_name("p") and valid_name("p1") and not valid_name("-x") and not valid_name("a b")


def test_record_json_round_trip():
    c = Container(id="a" * 64, name="web", image="busybox", image_id="sha256:" + "b" * 64,
                  created="2026-01-01T00:00:00Z", path="sh", args=["-c", "true"])
    c.config = {"Hostname": "aaaaaaaaaaaa", "Env": ["PATH=/bin"], "Tty": False, "Labels": {"k": "v"}}
    c.state.status, c.state.exit_code, c.state.oom_killed = "exited", 137, True
    back = Container.from_dict(json.loads(c.to_json()))
    assert back == c


def test_refresh_on_a_stale_read_leaves_the_monitors_last_word(tmp_path):
    """A reader (`ps`, the API's list) loads a record while the container runs; its monitor
    then records the exit and its own end, and exits. The reader, finding that monitor gone,
    must not mark the container dead over the newer record (exit code -1 instead of 0 under 50
    concurrent API clients): the check is made again under the record's lock."""
    import subprocess

    from minirun.engine.lifecycle import Engine

    eng = Engine(str(tmp_path), str(tmp_path / "run"), None)
    c = eng.containers.new(blank("stale"))
    gone = subprocess.Popen(["true"])
    gone.wait()  # a PID whose process has ended: the monitor, just exited

    def running(x: Container) -> None:
        x.state.status, x.state.pid = "running", 1
        x.state.monitor_pid, x.state.monitor_start = gone.pid, 12345

    stale = eng.containers.update(c.id, running)  # what the reader loaded

    def monitor_ends(x: Container) -> None:
        x.state.status, x.state.exit_code, x.state.pid = "exited", 0, 0
        x.state.monitor_pid = x.state.monitor_start = 0

    eng.containers.update(c.id, monitor_ends)
    eng.refresh(stale)
    after = eng.containers.load(c.id).state
    assert (after.status, after.exit_code) == ("exited", 0)


def test_a_failed_first_save_claims_no_name_and_leaves_no_directory(store, monkeypatch):
    def fail(c):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "save", fail)
    with pytest.raises(OSError):
        store.new(blank("web"))
    monkeypatch.undo()
    assert store.ids() == [] and [n for n in os.listdir(store.dir) if len(n) == 64] == []
    assert store.new(blank("web")).name == "web"


def test_a_failed_rename_leaves_the_index_as_the_record(store, monkeypatch):
    c = store.new(blank("web"))

    def fail(x):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "save", fail)
    with pytest.raises(OSError):
        store.rename(c.id, "api")
    monkeypatch.undo()
    index = os.path.join(store.dir, ".names")
    assert sorted(os.listdir(index)) == [".count", "web"]
    assert store.find("web").id == c.id
