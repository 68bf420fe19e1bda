"""OCI hooks: when each phase runs, in which namespaces, what it reads on stdin, and what its
failure does.

Hooks are host programs at absolute host paths, except startContainer, which runs inside the
container after pivot_root: /bin/sh exists on both sides. Every hook writes its stdin (the state
JSON) to <name>.json in a host directory that the container also sees at /tmp (a bind mount),
and appends its name to `order` there.
"""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

import pytest

import helpers
from helpers import poll, processes_mentioning

PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOST_PHASES = ("prestart", "createRuntime", "createContainer", "poststart", "poststop")

# A verb with its stdio on files (helpers.launch), given the 60 s this file has always allowed a
# verb that runs hooks (helpers.launch's default is 30 s).
launch = functools.partial(helpers.launch, timeout=60)


def sh_hook(script: str, **extra) -> dict:
    return {"path": "/bin/sh", "args": ["sh", "-c", script], "env": [PATH], **extra}


def recorder(name: str, d: str) -> dict:
    """A hook that saves its stdin, its namespaces and its hostname, and notes that it ran."""
    return sh_hook(f"cat > {d}/{name}.json; readlink /proc/self/ns/mnt > {d}/{name}.mnt; "
                   f"readlink /proc/self/ns/pid > {d}/{name}.pidns; hostname > {d}/{name}.host; "
                   f"echo {name} >> {d}/order")


def shared_dir(tmp_path: Path) -> Path:
    d = tmp_path / "shared"
    d.mkdir(exist_ok=True)
    return d


def setup(bundle, tmp_path: Path, hooks: dict, args: list[str] | None = None,
          **kw) -> tuple[str, Path]:
    """A bundle whose container sees the shared dir at /tmp; hooks maps phase -> list of hooks."""
    d = shared_dir(tmp_path)

    def edit(cfg: dict) -> None:
        cfg["mounts"].append({"destination": "/tmp", "type": "bind", "source": str(d),
                              "options": ["rbind", "rw"]})
        cfg["hooks"] = hooks
        cfg.setdefault("annotations", {}).update(kw.pop("annotations", {}))

    # The process notes that it ran, then waits for TERM (trapped: it is its PID namespace's init).
    args = args or ["sh", "-c", "echo process >> /tmp/order; trap 'exit 0' TERM; sleep 1000 & wait"]
    return bundle(args=args, edit=edit, **kw), d


def order(d: Path) -> list[str]:
    try:
        return (d / "order").read_text().split()
    except FileNotFoundError:
        return []


def state_of(d: Path, name: str) -> dict:
    return json.loads((d / f"{name}.json").read_text())


def assert_nothing_left(rt, cid: str) -> None:
    assert not (rt.root / cid).exists()
    assert rt("state", cid).returncode == 1
    assert processes_mentioning(cid) == []


# --- every phase, in order, with its state ------------------------------------------------------


def test_every_hook_runs_in_order_with_its_state(oci, bundle, cid, tmp_path):
    d = shared_dir(tmp_path)
    hooks = {name: [recorder(name, str(d))] for name in HOST_PHASES}
    hooks["startContainer"] = [recorder("startContainer", "/tmp")]  # a path in the container
    b, d = setup(bundle, tmp_path, hooks, annotations={"org.test": "yes"})

    r = launch(oci, tmp_path, "create", "--bundle", b, cid)
    assert r.returncode == 0, r.stderr
    assert order(d) == ["prestart", "createRuntime", "createContainer"]
    pid = oci.state(cid)["pid"]

    oci("start", cid, check=True)
    # poststart has finished when start returns; the process runs alongside it.
    assert order(d)[:4] == ["prestart", "createRuntime", "createContainer", "startContainer"]
    assert "poststart" in order(d)
    assert poll(lambda: "process" in order(d))

    oci("delete", "--force", cid, check=True)
    assert order(d)[-1] == "poststop"
    assert sorted(order(d)) == sorted([*HOST_PHASES, "startContainer", "process"])

    # runtime-spec (runtime.md): `creating` is lifecycle step 2 only; the create-time hooks
    # are steps 3-5, after it, with the program not yet run: `created` (as crun passes).
    expected = {  # phase: (status, pid)
        "prestart": ("created", pid), "createRuntime": ("created", pid),
        "createContainer": ("created", 1),  # run by the init: its PID in its own namespace
        "startContainer": ("created", 1),
        "poststart": ("running", pid), "poststop": ("stopped", 0),
    }
    for name, (status, hook_pid) in expected.items():
        s = state_of(d, name)
        assert s["id"] == cid, name
        assert s["bundle"] == b, name
        assert s["status"] == status, name
        assert s.get("pid", 0) == hook_pid, name
        assert s["ociVersion"].startswith("1."), name
        assert s.get("annotations", {}).get("org.test") == "yes", name

    host_mnt, host_pidns = os.readlink("/proc/self/ns/mnt"), os.readlink("/proc/self/ns/pid")
    for name in ("prestart", "createRuntime", "poststart", "poststop"):  # the runtime's namespaces
        assert (d / f"{name}.mnt").read_text().strip() == host_mnt, name
        assert (d / f"{name}.pidns").read_text().strip() == host_pidns, name
    # createContainer: the container's namespaces (before pivot_root); startContainer: inside.
    for name in ("createContainer", "startContainer"):
        assert (d / f"{name}.mnt").read_text().strip() != host_mnt, name
        assert (d / f"{name}.pidns").read_text().strip() != host_pidns, name
    assert (d / "createContainer.mnt").read_text() == (d / "startContainer.mnt").read_text()
    assert (d / "startContainer.host").read_text() == "minirun\n"  # the container's hostname


def test_poststart_runs_after_the_program_is_executing(oci, bundle, cid, tmp_path):
    # runtime-spec: startContainer runs "before executing the user-specified program", poststart
    # "after the user-specified process is executed but before the start operation returns". A
    # slow startContainer hook makes the gap wide: start must wait for the execve itself.
    d = shared_dir(tmp_path)
    slow = sh_hook("sleep 0.5; echo startContainer >> /tmp/order")
    exe = sh_hook(f"pid=$(sed 's/.*\"pid\": *\\([0-9]*\\).*/\\1/'); "
                  f"readlink /proc/$pid/exe > {d}/exe; echo poststart >> {d}/order")
    b, d = setup(bundle, tmp_path, {"startContainer": [slow], "poststart": [exe]})
    assert launch(oci, tmp_path, "create", "--bundle", b, cid).returncode == 0

    oci("start", cid, check=True)
    assert order(d)[0] == "startContainer" and "poststart" in order(d)  # the process races it
    assert "python" not in (d / "exe").read_text()  # the init is the program now, not minirun
    assert oci.state(cid)["status"] == "running"


def test_hook_args_env_and_stdin(oci, bundle, cid, tmp_path):
    d = shared_dir(tmp_path)
    hook = {"path": "/bin/sh", "env": ["FOO=bar", PATH],
            "args": ["custom-argv0", "-c",
                     f"tr '\\0' ' ' < /proc/$$/cmdline > {d}/cmdline; env > {d}/env; "
                     f"cat > {d}/stdin", "name-for-$0"]}
    b, d = setup(bundle, tmp_path, {"createRuntime": [hook]})
    env = dict(os.environ, MINIRUN_TEST_LEAK="leaked")
    r = launch(oci, tmp_path, "create", "--bundle", b, cid, env=env)
    assert r.returncode == 0, r.stderr
    assert (d / "cmdline").read_text().startswith("custom-argv0 -c ")
    envs = (d / "env").read_text().splitlines()
    assert "FOO=bar" in envs and PATH in envs
    assert not any("MINIRUN_TEST_LEAK" in e for e in envs), "the runtime's env leaked into a hook"
    assert json.loads((d / "stdin").read_text())["id"] == cid


def test_hooks_that_do_not_read_stdin(oci, bundle, cid, tmp_path):
    """A hook may exit without reading its stdin, even when the state does not fit a pipe."""
    big = "x" * 200_000
    hooks = {p: [{"path": "/bin/true"}] for p in ("prestart", "createRuntime", "poststart",
                                                   "poststop")}
    b, d = setup(bundle, tmp_path, hooks, annotations={"big": big})
    r = launch(oci, tmp_path, "create", "--bundle", b, cid)
    assert r.returncode == 0, r.stderr
    oci("start", cid, check=True)
    r = oci("delete", "--force", cid)
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr


def test_hook_reads_a_large_state(oci, bundle, cid, tmp_path):
    d = shared_dir(tmp_path)
    big = "y" * 200_000
    b, d = setup(bundle, tmp_path, {"createRuntime": [sh_hook(f"cat > {d}/cr.json")]},
                 annotations={"big": big})
    r = launch(oci, tmp_path, "create", "--bundle", b, cid)
    assert r.returncode == 0, r.stderr
    assert json.loads((d / "cr.json").read_text())["annotations"]["big"] == big


# --- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_fails_create_and_leaves_nothing(oci, bundle, cid, tmp_path, phase):
    d = shared_dir(tmp_path)
    hooks = {p: [recorder(p, str(d))] for p in HOST_PHASES}
    hooks[phase] = [recorder(phase, str(d)), sh_hook("cat >/dev/null; exit 3"),
                    sh_hook(f"echo after-failure >> {d}/order")]
    b, d = setup(bundle, tmp_path, hooks)
    r = launch(oci, tmp_path, "create", "--bundle", b, cid)
    assert r.returncode != 0
    msg = r.stderr.strip()
    assert "\n" not in msg and "Traceback" not in msg, msg
    assert phase in msg and "3" in msg, msg
    # The failing hook stopped the rest of its phase and all later ones; the process never ran;
    # the lifecycle went on to destroy and poststop (runtime-spec; runc does the same).
    phases = ["prestart", "createRuntime", "createContainer"]
    assert order(d) == phases[:phases.index(phase) + 1] + ["poststop"]
    s = state_of(d, "poststop")
    assert s["status"] == "stopped" and s["id"] == cid and s["bundle"] == b
    assert_nothing_left(oci, cid)


def _bad_mount(cfg: dict) -> None:
    cfg["mounts"].append({"destination": "/opt", "type": "bind", "source": "/nonexistent/src",
                          "options": ["rbind"]})


def _big_nofile(cfg: dict) -> None:
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1 << 30, "hard": 1 << 30}]


@pytest.mark.parametrize("how", ["bad-mount", "missing-program", "rlimit"])
def test_poststop_runs_after_any_failed_create(oci, bundle, cid, tmp_path, how):
    """runc runs poststop once the container exists, whatever made create fail."""
    d = shared_dir(tmp_path)
    hooks = {p: [recorder(p, str(d))] for p in HOST_PHASES}
    b, d = setup(bundle, tmp_path, hooks, own_rootfs=how == "bad-mount",
                 args=["/no/such/program"] if how == "missing-program" else None)
    if how != "missing-program":
        cfg = json.loads((Path(b) / "config.json").read_text())
        (_bad_mount if how == "bad-mount" else _big_nofile)(cfg)
        (Path(b) / "config.json").write_text(json.dumps(cfg))
    r = launch(oci, tmp_path, "create", "--bundle", b, cid)
    assert r.returncode != 0
    assert order(d)[-1] == "poststop" and "poststart" not in order(d)
    assert_nothing_left(oci, cid)


def test_failing_poststart_hook_only_warns(oci, bundle, cid, tmp_path):
    d = shared_dir(tmp_path)
    hooks = {"poststart": [sh_hook("exit 4"), sh_hook(f"echo second-poststart >> {d}/order")]}
    b, d = setup(bundle, tmp_path, hooks)
    r = launch(oci, tmp_path, "create", "--bundle", b, cid)
    assert r.returncode == 0, r.stderr
    r = oci("start", cid)
    assert r.returncode == 0, r.stderr
    assert "warning" in r.stderr and "poststart" in r.stderr
    assert "second-poststart" in order(d)  # the remaining hooks still run
    assert oci.state(cid)["status"] == "running"
    assert poll(lambda: "process" in order(d))


def test_failing_poststop_hook_only_warns(oci, bundle, cid, tmp_path):
    d = shared_dir(tmp_path)
    hooks = {"poststop": [sh_hook("exit 5"), sh_hook(f"echo second-poststop >> {d}/order")]}
    b, d = setup(bundle, tmp_path, hooks, args=["true"])
    r = launch(oci, tmp_path, "create", "--bundle", b, cid)
    assert r.returncode == 0, r.stderr
    oci("start", cid, check=True)
    assert poll(lambda: oci.state(cid)["status"] == "stopped")
    r = oci("delete", cid)
    assert r.returncode == 0, r.stderr
    assert "warning" in r.stderr and "poststop" in r.stderr
    assert order(d) == ["second-poststop"]
    assert not (oci.root / cid).exists()


def test_failing_start_container_hook_stops_the_process(oci, bundle, cid, tmp_path):
    b, d = setup(bundle, tmp_path, {"startContainer": [sh_hook("exit 6")]})
    r = launch(oci, tmp_path, "create", "--bundle", b, cid)
    assert r.returncode == 0, r.stderr
    oci("start", cid)
    assert poll(lambda: oci.state(cid)["status"] == "stopped")
    assert "process" not in order(d)


def test_missing_hook_program(oci, bundle, cid, tmp_path):
    b, d = setup(bundle, tmp_path, {"createRuntime": [{"path": "/no/such/hook"}]})
    r = launch(oci, tmp_path, "create", "--bundle", b, cid)
    assert r.returncode != 0
    assert "/no/such/hook" in r.stderr and "Traceback" not in r.stderr
    assert_nothing_left(oci, cid)


def test_relative_hook_path_is_refused(oci, bundle, cid, tmp_path):
    b, d = setup(bundle, tmp_path, {"createRuntime": [{"path": "bin/true"}]})
    r = launch(oci, tmp_path, "create", "--bundle", b, cid)
    assert r.returncode != 0
    assert "hooks.createRuntime[0].path" in r.stderr
    assert_nothing_left(oci, cid)


@pytest.mark.parametrize("big_state", [False, True], ids=["small-state", "state-fills-the-pipe"])
def test_hook_timeout(oci, bundle, cid, tmp_path, big_state):
    # A unique argument names the hook's process, to prove it was killed. It would sleep an
    # hour: had create waited for it rather than killing it at 1 s, launch's own time-out
    # would fail the test.
    secs = f"{3600 + int(time.time() * 1000) % 1000 / 1000:.3f}"
    hook = {"path": "/bin/sleep", "args": ["sleep", secs], "timeout": 1}
    b, d = setup(bundle, tmp_path, {"createRuntime": [hook]},
                 annotations={"big": "z" * 200_000} if big_state else {})
    r = launch(oci, tmp_path, "create", "--bundle", b, cid)
    assert r.returncode != 0
    assert "timed out" in r.stderr and "createRuntime" in r.stderr, r.stderr
    assert processes_mentioning(f"sleep {secs}") == []
    assert_nothing_left(oci, cid)


def test_poststart_timeout_only_warns(oci, bundle, cid, tmp_path):
    hook = {"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}
    b, d = setup(bundle, tmp_path, {"poststart": [hook]})
    assert launch(oci, tmp_path, "create", "--bundle", b, cid).returncode == 0
    r = oci("start", cid)
    assert r.returncode == 0 and "timed out" in r.stderr, r.stderr
    assert oci.state(cid)["status"] == "running"


def test_poststart_state_is_running_even_after_a_quick_exit(oci, bundle, cid, tmp_path):
    """Poststart is lifecycle step 9, after the program was executed: its state says `running`
    with the container's PID, even when the program (`true`) is gone by then and `state`
    already says `stopped` (runtime-tools' hooks_stdin checks this with `true`)."""
    d = shared_dir(tmp_path)
    b, d = setup(bundle, tmp_path, {"poststart": [recorder("poststart", str(d))]}, args=["true"])
    assert launch(oci, tmp_path, "create", "--bundle", b, cid).returncode == 0
    pid = oci.state(cid)["pid"]
    oci("start", cid, check=True)
    assert poll(lambda: oci.state(cid)["status"] == "stopped")
    s = state_of(d, "poststart")
    assert s["status"] == "running" and s["pid"] == pid


# --- poststop ----------------------------------------------------------------------------------


def test_poststop_runs_on_forced_delete_of_a_created_container(oci, bundle, cid, tmp_path):
    d = shared_dir(tmp_path)
    b, d = setup(bundle, tmp_path, {"poststop": [recorder("poststop", str(d))]})
    assert launch(oci, tmp_path, "create", "--bundle", b, cid).returncode == 0
    assert order(d) == []
    assert oci("delete", cid).returncode == 1  # not stopped: refused, and no hook ran
    assert order(d) == []
    oci("delete", "--force", cid, check=True)
    assert order(d) == ["poststop"]
    assert state_of(d, "poststop")["status"] == "stopped"


def test_poststop_runs_after_run(oci, bundle, cid, tmp_path):
    d = shared_dir(tmp_path)
    b, d = setup(bundle, tmp_path, {"poststop": [recorder("poststop", str(d))]},
                 args=["sh", "-c", "echo process >> /tmp/order; exit 7"])
    r = oci("run", "--bundle", b, cid)
    assert r.returncode == 7, r.stderr
    assert order(d) == ["process", "poststop"]
    assert not (oci.root / cid).exists()
