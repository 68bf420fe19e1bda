"""Container state on disk: IDs, save/load, and status derived from /proc (the atomic write and
the lock under it: test_base.py)."""

from __future__ import annotations

import json
import os

import pytest

from minirun.base.names import valid_runtime_id
from minirun.errors import ContainerError
from minirun.kernel import process
from minirun.oci import state as st


@pytest.mark.parametrize("cid", ["a", "abc123", "my_ctr", "a+b", "web-1", "v1.2", "A.B-C_D+E",
                                 "x" * 200, "..."])
def test_valid_ids(cid):
    assert valid_runtime_id(cid)
    st.check_id(cid)


@pytest.mark.parametrize("cid", ["", ".", "..", "/", "a/b", "../x", "a b", " a", "tab\t", "café",
                                 "日本", "a:b", "a@b", "a*", "new\nline", "a,b"])
def test_invalid_ids(cid):
    assert not valid_runtime_id(cid)
    with pytest.raises(ContainerError, match="invalid container ID"):
        st.check_id(cid)


def make_state(root, cid="c1", pid=None, pid_start=None, **kw) -> st.State:
    pid = os.getpid() if pid is None else pid
    if pid_start is None:
        pid_start = process.start_time(pid) or 0
    s = st.State(id=cid, pid=pid, pid_start=pid_start, bundle="/b", rootfs="/b/rootfs",
                 created="2024-01-01T00:00:00.000000000Z", root_dir=str(root), **kw)
    os.makedirs(s.dir, exist_ok=True)
    return s


def test_save_and_load_round_trip(tmp_path):
    s = make_state(tmp_path, annotations={"a": "b"}, owner="root",
                   cgroup_paths={"/sys/fs/cgroup": "/sys/fs/cgroup/minirun/c1"},
                   hooks={"poststop": [{"path": "/bin/true"}]}, config={"ociVersion": "1.2.0"})
    s.save()
    loaded = st.load(str(tmp_path), "c1")
    assert loaded == s
    assert loaded.dir == str(tmp_path / "c1")
    on_disk = json.loads((tmp_path / "c1" / "state.json").read_text())
    assert "root_dir" not in on_disk and on_disk["pid"] == os.getpid()
    assert os.listdir(tmp_path / "c1") == ["state.json"]


def test_load_missing_container_does_not_exist(tmp_path):
    with pytest.raises(ContainerError, match="does not exist"):
        st.load(str(tmp_path), "nosuch")


def test_load_dir_without_state_is_still_being_created(tmp_path):
    (tmp_path / "half").mkdir()
    with pytest.raises(ContainerError, match="still being created"):
        st.load(str(tmp_path), "half")


def test_load_corrupt_state_is_a_container_error(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "state.json").write_text("{not json")
    with pytest.raises(ContainerError, match="unreadable state"):
        st.load(str(tmp_path), "bad")


def test_load_checks_the_id_first(tmp_path):
    with pytest.raises(ContainerError, match="invalid container ID"):
        st.load(str(tmp_path), "../etc")


def test_status_running_for_a_live_pid_with_its_start_time(tmp_path):
    assert make_state(tmp_path).status() == "running"


def test_status_created_while_exec_fifo_exists(tmp_path):
    s = make_state(tmp_path)
    open(os.path.join(s.dir, st.FIFO), "w").close()
    assert s.status() == "created"


def test_status_stopped_when_start_time_differs(tmp_path):
    # Same PID, different start time: the PID was reused by another process.
    s = make_state(tmp_path, pid_start=process.start_time(os.getpid()) + 1)
    open(os.path.join(s.dir, st.FIFO), "w").close()
    assert s.status() == "stopped"


def test_status_stopped_when_pid_is_gone(tmp_path):
    assert make_state(tmp_path, pid=2**31 - 1, pid_start=12345).status() == "stopped"


def test_status_paused_when_cgroup_is_frozen(tmp_path):
    cg = tmp_path / "cg"
    cg.mkdir()
    (cg / "cgroup.freeze").write_text("1\n")
    assert make_state(tmp_path, cgroup_paths={"/sys/fs/cgroup": str(cg)}).status() == "paused"
    (cg / "cgroup.freeze").write_text("0\n")
    (cg / "freezer.state").write_text("FROZEN\n")
    assert make_state(tmp_path, cgroup_paths={"/sys/fs/cgroup": str(cg)}).status() == "paused"


def test_oci_state_of_a_running_container(tmp_path):
    d = make_state(tmp_path).oci()
    assert d == {"ociVersion": st.OCI_VERSION, "id": "c1", "pid": os.getpid(), "status": "running",
                 "bundle": "/b", "rootfs": "/b/rootfs", "created": "2024-01-01T00:00:00.000000000Z",
                 "owner": ""}


def test_oci_state_pid_is_zero_when_stopped(tmp_path):
    d = make_state(tmp_path, pid=2**31 - 1, pid_start=1).oci()
    assert d["status"] == "stopped" and d["pid"] == 0


def test_oci_state_annotations_only_when_present(tmp_path):
    assert "annotations" in make_state(tmp_path, annotations={"k": "v"}).oci()
    assert make_state(tmp_path, annotations={"k": "v"}).oci()["annotations"] == {"k": "v"}
    assert "annotations" not in make_state(tmp_path).oci()


def test_list_ids_sorted_dirs_with_valid_names_only(tmp_path):
    for name in ("b", "a", "c.d"):
        (tmp_path / name).mkdir()
    (tmp_path / "file").write_text("")
    (tmp_path / "bad name").mkdir()
    assert st.list_ids(str(tmp_path)) == ["a", "b", "c.d"]


def test_list_ids_of_missing_root_is_empty(tmp_path):
    assert st.list_ids(str(tmp_path / "nope")) == []
