"""oci/quick.py, the launcher's quick path for state, start, kill and delete, does what the full
path (oci/cli.py main) does, or nothing at all (None: cli.main then runs the verb).

Each case builds the same state directory twice (state.State.save, fake cgroup directories in
tmp_path, a child process as the container's init), runs the quick path on one and cli.main on
the other, and compares the exit status, the output and what is left on disk.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minirun.kernel import process
from minirun.oci import cli, quick
from minirun.oci import state as st

REPO = Path(__file__).resolve().parents[2]


def make_state(root: Path, cid: str = "c1", pid: int | None = None, fifo: bool = False,
               **kw) -> st.State:
    pid = os.getpid() if pid is None else pid
    s = st.State(id=cid, pid=pid, pid_start=process.start_time(pid) or 0, bundle="/b",
                 rootfs="/b/rootfs", created="2024-01-01T00:00:00.000000000Z",
                 root_dir=str(root), **kw)
    os.makedirs(s.dir)
    s.save()
    if fifo:
        os.mkfifo(os.path.join(s.dir, st.FIFO), 0o622)
    return s


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def both(tmp_path: Path, capsys, argv: list[str], setup) -> tuple[tuple, tuple]:
    """setup(root) in two roots; the quick path on one, cli.main on the other:
    ((status, stdout, stderr, tree), ...) for each. The quick one must not defer."""
    out = []
    for name, run in (("quick", quick.main), ("full", cli.main)):
        root = tmp_path / name
        root.mkdir()
        setup(root)
        code = run(["--root", str(root), *argv])
        assert code is not None, f"the quick path deferred {argv}"
        o, e = capsys.readouterr()
        out.append((code, o.replace(str(root), "ROOT"), e.replace(str(root), "ROOT"),
                    tree(tmp_path / name)))
    return out[0], out[1]


def defers(root: Path, argv: list[str]) -> None:
    """The quick path returns None and changes nothing."""
    before = tree(root)
    assert quick.main(["--root", str(root), *argv]) is None
    assert tree(root) == before


@pytest.fixture
def child():
    """A live process to stand for the container's init (killed at the end)."""
    procs = []

    def make() -> int:
        p = subprocess.Popen(["sleep", "60"])
        procs.append(p)
        return p.pid

    yield make
    for p in procs:
        p.kill()
        p.wait()


# -- what the quick path leaves to cli.main ---------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["--debug", "state", "c1"], ["--trace", "state", "c1"], ["--systemd-cgroup", "delete", "c1"],
    ["--version"], ["--help"], [], ["state"], ["list"], ["create", "c1"], ["pause", "c1"],
    ["state", "--", "c1"], ["state", "-x", "c1"], ["kill", "--all", "c1", "KILL"],
    ["kill", "-a", "c1"], ["kill", "c1", "RTMIN+1"], ["kill", "c1", "NOSUCH"], ["kill", "c1", "-9"],
    ["kill", "c1", "SIG_IGN"], ["kill", "--signal"], ["state", "bad/id"], ["state", ".."],
    ["state", "nosuch"], ["delete", "--force", "nosuch"], ["start", "nosuch"],
])
def test_defers_what_is_not_the_plain_case(tmp_path, argv):
    make_state(tmp_path)
    defers(tmp_path, argv)


@pytest.mark.parametrize("root", ["relative", "/tmp/", "/tmp/../tmp", "/tmp//x", "/tmp/./x", "/"])
def test_defers_a_root_that_is_not_normal(root):
    assert quick.main(["--root", root, "state", "c1"]) is None


def test_defers_under_minirun_trace(tmp_path, monkeypatch):
    make_state(tmp_path)
    monkeypatch.setitem(os.environ, "MINIRUN_TRACE", "1")
    monkeypatch.setattr(quick.posix, "environ", {b"MINIRUN_TRACE": b"1"})
    defers(tmp_path, ["state", "c1"])


@pytest.mark.parametrize("content", ["", "{", "[]", '{"id": "c1"}', '{"id": "c2", "pid": 1}'])
def test_defers_unreadable_or_incomplete_state(tmp_path, content):
    (tmp_path / "c1").mkdir()
    (tmp_path / "c1" / "state.json").write_text(content)
    for verb in ("state", "start", "kill", "delete"):
        defers(tmp_path, [verb, "c1"])


def test_defers_a_state_dir_without_state(tmp_path):
    (tmp_path / "c1").mkdir()
    defers(tmp_path, ["state", "c1"])
    defers(tmp_path, ["delete", "--force", "c1"])


# -- state ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["created", "running", "stopped", "paused-v1", "paused-v2",
                                  "annotations"])
def test_state_prints_what_the_full_path_prints(tmp_path, capsys, kind):
    def setup(root: Path) -> None:
        cg = root.parent / f"cg-{root.name}"
        cg.mkdir(exist_ok=True)
        if kind == "paused-v1":
            (cg / "freezer.state").write_text("FROZEN\n")
        if kind == "paused-v2":
            (cg / "cgroup.freeze").write_text("1\n")
        make_state(root, pid=99999999 if kind == "stopped" else None, fifo=kind == "created",
                   cgroup_paths={"freezer": str(cg)}, cgroup_version=1,
                   annotations={"a": "b", "é": "\u2603"} if kind == "annotations" else {})

    q, f = both(tmp_path, capsys, ["state", "c1"], setup)
    assert q == f
    assert q[0] == 0 and f'"status": "{kind.split("-")[0]}"' in q[1] or kind == "annotations"


# -- kill ----------------------------------------------------------------------------------

@pytest.mark.parametrize("argv,sig", [
    (["kill", "c1"], 15), (["kill", "c1", "KILL"], 9), (["kill", "c1", "9"], 9),
    (["kill", "c1", "sigint"], 2), (["kill", "--signal", "HUP", "c1"], 1),
    (["kill", "-s=usr1", "c1"], 10)])
def test_kill_signals_the_init(tmp_path, child, argv, sig):
    pid = child()
    make_state(tmp_path, pid=pid)
    assert quick.main(["--root", str(tmp_path), *argv]) == 0
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == sig


def test_kill_0_checks_and_leaves_it(tmp_path, child):
    pid = child()
    make_state(tmp_path, pid=pid)
    assert quick.main(["--root", str(tmp_path), "kill", "c1", "0"]) == 0
    assert process.start_time(pid) is not None


def test_kill_of_a_stopped_container_defers(tmp_path):
    make_state(tmp_path, pid=99999999)
    defers(tmp_path, ["kill", "c1", "KILL"])


def test_signal_numbers_agree_with_the_cli():
    for name in ("TERM", "SIGKILL", "int", "hup", "USR2", "RTMIN", "SIGRTMAX", "15", "0", "64"):
        assert quick.signal_number(name) == cli.parse_signal(name)
    for name in ("RTMIN+1", "NOSUCH", "-1", "SIG_DFL", "", "1.5"):
        assert quick.signal_number(name) is None


# -- delete --------------------------------------------------------------------------------

def cgroup_setup(root: Path, pid: int = 99999999, populated: bool = False, **kw) -> None:
    """A stopped container whose create made two cgroup levels in two hierarchies, one more
    container's leaf left in one of the shared parents."""
    base = root.parent / f"cg-{root.name}"
    made, paths = [], {}
    for h in ("cpu", "memory"):
        leaf = base / h / "minirun" / "c1"
        leaf.mkdir(parents=True)
        made += [str(base / h / "minirun"), str(leaf)]
        paths[h] = str(leaf)
    (base / "cpu" / "minirun" / "other").mkdir()
    if populated:
        (base / "memory" / "minirun" / "c1").rmdir()
        (base / "memory" / "minirun" / "c1").mkdir()
        (base / "memory" / "minirun" / "c1" / "cgroup.procs").write_text("123\n")
    make_state(root, pid=pid, cgroup_paths=paths, cgroup_made=made, cgroup_version=1, **kw)


@pytest.mark.parametrize("force", [False, True])
def test_delete_removes_what_the_full_path_removes(tmp_path, capsys, force):
    argv = ["delete", *(["--force"] if force else []), "c1"]
    q, f = both(tmp_path, capsys, argv, cgroup_setup)
    assert q[:3] == f[:3] == (0, "", "")
    strip = lambda t: [x.split("/", 1)[1] if "/" in x else "" for x in t]  # noqa: E731
    assert strip(q[3]) == strip(f[3])
    assert not (tmp_path / "quick" / "c1").exists()
    assert (tmp_path / "cg-quick" / "cpu" / "minirun" / "other").is_dir()
    assert not (tmp_path / "cg-quick" / "memory" / "minirun").exists()


def test_delete_reports_a_cgroup_it_cannot_remove(tmp_path, capsys):
    def setup(root: Path) -> None:
        cgroup_setup(root)
        (root.parent / f"cg-{root.name}" / "cpu" / "minirun" / "c1" / "busy").mkdir()

    sleeps = []
    real_sleep = time.sleep
    time.sleep = lambda s: sleeps.append(s)  # the leaf's retries, without waiting them out
    try:
        q, f = both(tmp_path, capsys, ["delete", "c1"], setup)
    finally:
        time.sleep = real_sleep
    assert q[0] == f[0] == 1
    assert q[2].replace("quick", "X") == f[2].replace("full", "X")
    assert "cannot remove cgroup" in q[2] and (tmp_path / "quick" / "c1").is_dir()


@pytest.mark.parametrize("case", ["running", "created", "populated", "poststop", "hostmount"])
def test_delete_defers_what_needs_more(tmp_path, child, case):
    kw: dict = {}
    if case in ("running", "created"):
        kw["pid"] = child()
    if case == "populated":
        kw["populated"] = True
    if case == "poststop":
        kw["hooks"] = {"poststop": [{"path": "/bin/true"}]}
    if case == "hostmount":
        kw["host_root_mount"] = 42
    cgroup_setup(tmp_path, **kw)
    if case == "created":
        os.mkfifo(tmp_path / "c1" / st.FIFO)
    defers(tmp_path, ["delete", "--force", "c1"])
    defers(tmp_path, ["delete", "c1"])


# -- start ---------------------------------------------------------------------------------

INIT = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CLOEXEC)  # waits for start, as init.wait_for_start
if sys.argv[2] == "exec":
    os.write(fd, b"0")
    os.execv("/bin/sleep", ["sleep", "60"])
os._exit(0)
"""


def start_setup(root: Path, behaviour: str, procs: list) -> None:
    sdir = root / "c1"
    sdir.mkdir()
    os.mkfifo(sdir / st.FIFO, 0o622)
    p = subprocess.Popen([sys.executable, "-c", INIT, str(sdir / st.FIFO), behaviour])
    procs.append(p)
    for _ in range(500):
        start = process.start_time(p.pid)
        if start is not None:
            break
        time.sleep(0.01)
    s = st.State(id="c1", pid=p.pid, pid_start=start, bundle="/b", rootfs="/b/rootfs",
                 created="2024-01-01T00:00:00.000000000Z", root_dir=str(root))
    s.save()


@pytest.mark.parametrize("behaviour", ["exec", "die"])
def test_start_waits_for_the_exec_as_the_full_path_does(tmp_path, capsys, behaviour):
    procs: list = []
    try:
        q, f = both(tmp_path, capsys, ["start", "c1"],
                    lambda root: start_setup(root, behaviour, procs))
        assert q == f
        if behaviour == "exec":
            assert q[0] == 0 and q[3] == ["c1", "c1/state.json"]
            # EOF came at the exec: the program runs (its command line is sleep's now)
            with open(f"/proc/{procs[0].pid}/cmdline", "rb") as c:
                assert c.read().startswith(b"sleep\0")
        else:
            assert q[0] == 1 and "its init exited" in q[2]
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_start_defers_poststart_hooks_and_a_started_container(tmp_path, child):
    make_state(tmp_path, pid=child(), fifo=True, hooks={"poststart": [{"path": "/bin/true"}]})
    defers(tmp_path, ["start", "c1"])
    make_state(tmp_path / "r2", pid=child())  # running: no fifo
    defers(tmp_path / "r2", ["start", "c1"])


# -- the budget ----------------------------------------------------------------------------

def test_quick_path_loads_no_os():
    """The point of the module: the bare interpreter's modules, fastjson and _json only."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "from minirun.oci.quick import main; "
            "main(['--root', '/nonexistent', 'state', 'c1']); "
            "print(' '.join(sorted(sys.modules)))")
    r = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(REPO)], capture_output=True,
                       text=True, check=True)
    loaded = set(r.stdout.split())
    ours = {m for m in loaded if m.startswith("minirun")}
    assert ours == {"minirun", "minirun.oci", "minirun.oci.quick", "minirun.fastjson"}
    for heavy in ("os", "posixpath", "stat", "_collections_abc", "__future__", "minirun.errors"):
        assert heavy not in loaded
