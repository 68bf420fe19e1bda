"""The lifecycle verbs of minirun-oci: create, start, state, kill, delete, run, list, ps.

What runtime-tools and the runtime-spec expect (FACTS.md sections 6 and 7): `create` builds the
container but does not run its process; the container outlives `create` and inherits its
stdout/stderr; `state` is right with no parent waiting; a failed create leaves nothing behind.
The container's process proves what happened by writing into a host directory bind-mounted at
/tmp, or to the stdout it inherited from `create`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from helpers import (alive, create, foreign_pidns_processes, launch, one_line_error, poll,
                     processes_mentioning, status, with_shared)

# Runs until killed; TERM is trapped because the kernel drops signals without a handler that
# are sent to a PID namespace's init (TERM to a plain `sleep` as PID 1 would do nothing).
LONG = ["sh", "-c", "trap 'exit 0' TERM; echo started > /tmp/marker; sleep 1000 & wait"]


# --- create / start / state / kill / delete ------------------------------------------------------


def test_create_does_not_run_the_process_until_start(oci, bundle, cid, tmp_path):
    shared = tmp_path / "shared"
    b = bundle(args=LONG, edit=with_shared(shared))
    pid_file = tmp_path / "pid"
    create(oci, tmp_path, b, cid, "--pid-file", str(pid_file))

    s = oci.state(cid)
    assert s["status"] == "created"
    assert s["id"] == cid
    assert s["bundle"] == b
    assert s["pid"] > 0 and alive(s["pid"])
    # runtime-tools reads the bare PID: no newline.
    assert pid_file.read_text() == str(s["pid"])
    # Not run yet, by the kernel's word rather than a wait: the init is still the runtime's
    # own program (no execve yet), blocked opening exec.fifo until `start`.
    assert "python" in os.readlink(f"/proc/{s['pid']}/exe")
    assert not (shared / "marker").exists(), "process.args ran before start"

    oci("start", cid, check=True)
    assert poll(lambda: (shared / "marker").exists()), "process did not run after start"
    assert (shared / "marker").read_text() == "started\n"
    s2 = oci.state(cid)
    assert s2["status"] == "running"
    assert s2["pid"] == s["pid"]  # the init became the program: same PID


def test_start_twice_fails(oci, bundle, cid, tmp_path):
    create(oci, tmp_path, bundle(args=LONG), cid)
    oci("start", cid, check=True)
    r = oci("start", cid)
    assert r.returncode != 0
    assert "running" in one_line_error(r.stderr)
    assert status(oci, cid) == "running"


@pytest.mark.parametrize("sig", [["KILL"], ["TERM"], ["9"], ["15"], ["SIGTERM"], ["SIGKILL"],
                                 ["--signal", "KILL"], ["-s", "TERM"], []],
                         ids=lambda s: " ".join(s) or "default")
def test_kill_forms_stop_the_container(oci, bundle, cid, tmp_path, sig):
    shared = tmp_path / "shared"
    create(oci, tmp_path, bundle(args=LONG, edit=with_shared(shared)), cid)
    pid = oci.state(cid)["pid"]
    oci("start", cid, check=True)
    # Signal only once the trap is set (the marker is written after `trap`).
    assert poll(lambda: (shared / "marker").exists())
    if sig[:1] in (["--signal"], ["-s"]):
        oci("kill", *sig, cid, check=True)
    else:
        oci("kill", cid, *sig, check=True)
    assert poll(lambda: status(oci, cid) == "stopped"), oci.state(cid)
    assert oci.state(cid)["pid"] == 0
    assert poll(lambda: not alive(pid))


def test_kill_unknown_signal_fails(oci, bundle, cid, tmp_path):
    create(oci, tmp_path, bundle(args=LONG), cid)
    r = oci("kill", cid, "NOSUCHSIG")
    assert r.returncode != 0
    assert "NOSUCHSIG" in one_line_error(r.stderr)
    assert status(oci, cid) == "created"


def test_delete_running_needs_force(oci, bundle, cid, tmp_path):
    create(oci, tmp_path, bundle(args=LONG), cid)
    oci("start", cid, check=True)
    pid = oci.state(cid)["pid"]

    r = oci("delete", cid)
    assert r.returncode == 1
    assert "running" in one_line_error(r.stderr)
    assert status(oci, cid) == "running" and alive(pid)

    oci("delete", "--force", cid, check=True)
    assert not alive(pid)
    assert not (oci.root / cid).exists()
    r = oci("state", cid)
    assert r.returncode == 1
    assert "does not exist" in one_line_error(r.stderr)


def test_delete_of_a_created_container_needs_force(oci, bundle, cid, tmp_path):
    """runtime-spec (runtime.md, Delete): deleting a container that is not stopped MUST fail and
    have no effect; `created` is not stopped (runc deletes it anyway; runtime-tools' `delete`
    test checks this)."""
    shared = tmp_path / "shared"
    create(oci, tmp_path, bundle(args=LONG, edit=with_shared(shared)), cid)
    pid = oci.state(cid)["pid"]

    r = oci("delete", cid)
    assert r.returncode == 1
    err = one_line_error(r.stderr)
    assert cid in err and "created" in err and "--force" in err
    assert status(oci, cid) == "created" and alive(pid)
    assert (oci.root / cid).exists()

    oci("delete", "--force", cid, check=True)
    assert poll(lambda: not alive(pid))
    assert not (oci.root / cid).exists()
    assert not (shared / "marker").exists(), "delete ran the process"
    r = oci("state", cid)
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_start_returns_once_the_program_runs(oci, bundle, cid, tmp_path):
    """`running` means the container "has executed the user-specified program" (runtime.md,
    State): when `start` returns, the init is no longer the runtime's interpreter. A caller
    that signals the container as soon as `state` says running (runtime-tools' killsig) must
    not reach our init instead, which as PID 1 of its namespace drops signals it has no
    handler for."""
    create(oci, tmp_path, bundle(args=LONG), cid)
    pid = oci.state(cid)["pid"]
    interpreter = os.path.realpath(f"/proc/{pid}/exe")
    oci("start", cid, check=True)
    assert os.path.realpath(f"/proc/{pid}/exe") != interpreter
    assert status(oci, cid) == "running"


def test_stopped_container_reports_pid_0_and_cannot_be_killed(oci, bundle, cid, tmp_path):
    """The container outlives `create` (nobody waits for it) and `state` still sees it exit."""
    create(oci, tmp_path, bundle(args=["sh", "-c", "exit 0"]), cid)
    pid = oci.state(cid)["pid"]
    assert alive(pid), "the container died with create"
    oci("start", cid, check=True)
    assert poll(lambda: status(oci, cid) == "stopped")
    s = oci.state(cid)
    assert s["pid"] == 0 and s["id"] == cid and s["bundle"]

    r = oci("kill", cid, "KILL")
    assert r.returncode != 0
    assert cid in one_line_error(r.stderr)
    r = oci("start", cid)
    assert r.returncode != 0 and "stopped" in one_line_error(r.stderr)
    oci("delete", cid, check=True)  # a stopped container needs no --force
    assert not (oci.root / cid).exists()


def test_unknown_or_missing_id(oci):
    for verb in ("state", "start", "kill", "delete", "ps"):
        r = oci(verb, "t-no-such-container")
        assert r.returncode == 1, verb
        assert "does not exist" in one_line_error(r.stderr), verb
        r = oci(verb)
        assert r.returncode != 0, f"{verb} without an ID"
        one_line_error(r.stderr)
    # runc: delete --force of a missing container succeeds.
    assert oci("delete", "--force", "t-no-such-container").returncode == 0


def test_create_with_a_used_id_fails_and_keeps_the_first(oci, bundle, cid, tmp_path):
    shared = tmp_path / "shared"
    b1 = bundle(args=LONG, edit=with_shared(shared))
    create(oci, tmp_path, b1, cid)
    first = oci.state(cid)

    r = launch(oci, tmp_path, "create", "--bundle", bundle(args=["true"]), cid)
    assert r.returncode != 0
    assert "already exists" in one_line_error(r.stderr)
    assert oci.state(cid) == first
    assert alive(first["pid"])
    oci("start", cid, check=True)
    assert poll(lambda: (shared / "marker").exists())


@pytest.mark.parametrize("bad", ["a/b", "..", ".", "has space", "a:b", "é", "../up"])
def test_invalid_ids_are_refused(oci, bundle, tmp_path, bad):
    b = bundle(args=["true"])
    r = launch(oci, tmp_path, "create", "--bundle", b, bad)
    assert r.returncode != 0
    assert "invalid container ID" in one_line_error(r.stderr)
    assert not oci.root.exists() or list(oci.root.iterdir()) == []
    assert not (tmp_path / "up").exists()


def test_config_changes_after_create_do_not_matter(oci, bundle, cid, tmp_path):
    """runtime-spec: later edits of config.json MUST NOT affect the created container."""
    shared = tmp_path / "shared"
    b = bundle(args=["sh", "-c", "echo original > /tmp/marker"], edit=with_shared(shared))
    create(oci, tmp_path, b, cid)
    cfg = json.loads((Path(b) / "config.json").read_text())
    cfg["process"]["args"] = ["sh", "-c", "echo edited > /tmp/marker"]
    (Path(b) / "config.json").write_text(json.dumps(cfg))
    oci("start", cid, check=True)
    assert poll(lambda: (shared / "marker").exists() and (shared / "marker").read_text())
    assert (shared / "marker").read_text() == "original\n"


def test_state_is_stable(oci, bundle, cid, tmp_path):
    create(oci, tmp_path, bundle(args=LONG), cid)
    a, b = oci("state", cid, check=True).stdout, oci("state", cid, check=True).stdout
    assert a == b
    oci("start", cid, check=True)
    a, b = oci("state", cid, check=True).stdout, oci("state", cid, check=True).stdout
    assert a == b
    d = json.loads(a)
    for key in ("ociVersion", "id", "status", "pid", "bundle"):
        assert key in d


# --- stdio -----------------------------------------------------------------------------------


def test_container_inherits_creates_stdout_and_stderr(oci, bundle, cid, tmp_path):
    b = bundle(args=["sh", "-c", "echo to-stdout; echo to-stderr >&2; read x; echo stdin=[$x]"])
    r = create(oci, tmp_path, b, cid)
    assert r.stdout == ""  # create itself prints nothing; the process has not run
    oci("start", cid, check=True)
    # stdin is create's (/dev/null here): `read` gets EOF at once.
    assert poll(lambda: "stdin=[]" in r.stdout), r.stdout
    assert r.stdout == "to-stdout\nstdin=[]\n"
    assert "to-stderr\n" in r.stderr
    assert poll(lambda: status(oci, cid) == "stopped")


# --- list and ps -------------------------------------------------------------------------------


def test_list_shows_the_container(oci, bundle, cid, tmp_path):
    b = bundle(args=LONG)
    create(oci, tmp_path, b, cid)
    pid = oci.state(cid)["pid"]

    r = oci("list", check=True)
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "PID", "STATUS"]
    row = [ln.split() for ln in lines[1:] if ln.split()[0] == cid]
    assert row and row[0][1] == str(pid) and row[0][2] == "created" and b in row[0]

    items = json.loads(oci("list", "--format", "json", check=True).stdout)
    mine = [d for d in items if d["id"] == cid]
    assert len(mine) == 1
    assert mine[0]["pid"] == pid and mine[0]["status"] == "created"
    assert mine[0]["bundle"] == b

    assert oci("list", "-q", check=True).stdout == f"{cid}\n"
    oci("delete", "--force", cid, check=True)
    assert oci("list", "-q", check=True).stdout == ""
    assert json.loads(oci("list", "--format", "json", check=True).stdout or "[]") in ([], None)


def test_ps_lists_the_processes(oci, bundle, cid, tmp_path):
    shared = tmp_path / "shared"
    b = bundle(args=["sh", "-c", "sleep 1000 & sleep 1000 & echo ok > /tmp/marker; wait"],
               edit=with_shared(shared))
    create(oci, tmp_path, b, cid)
    pid = oci.state(cid)["pid"]
    assert json.loads(oci("ps", "--format", "json", cid, check=True).stdout) == [pid]
    oci("start", cid, check=True)
    assert poll(lambda: (shared / "marker").exists())
    pids = json.loads(oci("ps", "--format", "json", cid, check=True).stdout)
    assert pid in pids and len(pids) == 3, pids
    for p in pids:
        assert os.readlink(f"/proc/{p}/ns/pid") == os.readlink(f"/proc/{pid}/ns/pid")
    table = oci("ps", cid, check=True).stdout.splitlines()
    assert "PID" in table[0].split()
    assert len(table) == 4
    oci("delete", "--force", cid, check=True)
    assert poll(lambda: not any(alive(p) for p in pids))


# --- run ---------------------------------------------------------------------------------------


def test_run_returns_the_exit_code_and_removes_the_container(oci, bundle, cid):
    r = oci("run", "--bundle", bundle(args=["sh", "-c", "echo out; exit 3"]), cid)
    assert r.returncode == 3, r.stderr
    assert r.stdout == "out\n"
    assert not (oci.root / cid).exists()
    assert oci("state", cid).returncode == 1


def test_run_killed_by_a_signal_returns_128_plus_n(oci, bundle, cid, tmp_path):
    shared = tmp_path / "shared"
    b = bundle(args=LONG, edit=with_shared(shared))
    oci.ids.add(cid)
    p = subprocess.Popen([oci.binary, "--root", str(oci.root), "run", "--bundle", b, cid],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert poll(lambda: (shared / "marker").exists())
        oci("kill", cid, "KILL", check=True)
        assert p.wait(timeout=10) == 128 + 9
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stderr.close()
    assert not (oci.root / cid).exists()


def test_run_detach_leaves_it_running(oci, bundle, cid, tmp_path):
    shared = tmp_path / "shared"
    r = launch(oci, tmp_path, "run", "--detach", "--bundle",
               bundle(args=LONG, edit=with_shared(shared)), cid)
    assert r.returncode == 0, r.stderr
    s = oci.state(cid)
    assert s["status"] == "running" and alive(s["pid"])
    assert poll(lambda: (shared / "marker").exists())
    oci("delete", "--force", cid, check=True)
    assert not alive(s["pid"])


# --- a failed create leaves nothing ----------------------------------------------------------


def _bad_mount(cfg: dict) -> None:
    cfg["mounts"].append({"destination": "/data", "type": "bind",
                          "source": "/nonexistent/minirun-test-src", "options": ["rbind"]})


def _unknown_cap(cfg: dict) -> None:
    cfg["process"]["capabilities"]["bounding"].append("CAP_NO_SUCH_THING")


def _bad_version(cfg: dict) -> None:
    cfg["ociVersion"] = "7.0.0"


def _empty_args(cfg: dict) -> None:
    cfg["process"]["args"] = []


FAILING = {
    # name: (bundle() keywords, a word the one-line error must contain)
    "missing-program-path": (dict(args=["/bin/no-such-program"]), "no-such-program"),
    "missing-program-PATH": (dict(args=["no-such-program"]), "no-such-program"),
    "bad-mount-source": (dict(args=["true"], edit=_bad_mount, own_rootfs=True),
                         "minirun-test-src"),
    "unknown-capability": (dict(args=["true"], edit=_unknown_cap), "CAP_NO_SUCH_THING"),
    "bad-oci-version": (dict(args=["true"], edit=_bad_version), "ociVersion"),
    "empty-args": (dict(args=["true"], edit=_empty_args), "process.args"),
    "missing-cwd-parent-is-file": (dict(args=["true"], cwd="/etc/passwd/sub"), "cwd"),
}


@pytest.mark.parametrize("case", FAILING, ids=list(FAILING))
def test_failed_create_leaves_nothing(oci, bundle, cid, tmp_path, case):
    kwargs, word = FAILING[case]
    b = bundle(**kwargs)
    pid_file = tmp_path / "pid"
    r = launch(oci, tmp_path, "create", "--bundle", b, "--pid-file", str(pid_file), cid)
    assert r.returncode != 0
    msg = one_line_error(r.stderr)
    assert word in msg, msg
    assert r.stdout == ""
    # No state, no pid file, no process, no mount.
    assert not (oci.root / cid).exists()
    assert oci("state", cid).returncode == 1
    assert not pid_file.exists()
    assert processes_mentioning(cid) == []
    with open("/proc/self/mountinfo") as f:
        mounts = f.read()
    assert str(tmp_path) not in mounts
    assert b not in mounts


def test_invalid_json_config(oci, bundle, cid, tmp_path):
    b = bundle(args=["true"])
    (Path(b) / "config.json").write_text('{"ociVersion": "1.2.0", "process": ')
    r = launch(oci, tmp_path, "create", "--bundle", b, cid)
    assert r.returncode != 0
    assert "config.json" in one_line_error(r.stderr)
    assert not (oci.root / cid).exists()


def test_failed_create_leaves_no_process_in_a_new_pid_namespace(oci, bundle, cid, tmp_path):
    """Compare processes in other PID namespaces before and after (other tests may run
    containers at the same time, so only new ones that outlive the failure count)."""
    before = foreign_pidns_processes()
    r = launch(oci, tmp_path, "create", "--bundle", bundle(args=["/no/such/program"]), cid)
    assert r.returncode != 0
    new = foreign_pidns_processes() - before
    leftovers = []
    for p in new:
        try:
            if alive(p) and cid in Path(f"/proc/{p}/cmdline").read_text():
                leftovers.append(p)
        except OSError:
            pass  # gone meanwhile
    assert leftovers == []


def test_many_parallel_runs_all_succeed(oci, bundle, tmp_path):
    """Regressions: under load the init's "ready" can overtake the child's "pid N" on the
    shared channel, and a cgroup parent another create just made can still have an empty
    cpuset (a task cannot join it: ENOSPC)."""
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    b = bundle(args=["true"])

    def one(i: int) -> tuple[int, str]:
        r = subprocess.run([oci.binary, "--root", str(oci.root), "run", "--bundle", b, f"par-{i}"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        return r.returncode, r.stderr

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(48)))
    assert [r for r in results if r[0] != 0] == []
