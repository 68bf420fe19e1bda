"""--trace / MINIRUN_TRACE=1: every kernel step of building a container is narrated on stderr,
with its arguments and a '#' why-comment, by the process that makes it (runtime, child, init,
exec-child, exec). Off by default; never mixed into the container's own output.
"""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from helpers import poll

LINE = re.compile(r"^\[(runtime|child|init|exec-child|exec) \d+ \+\d+\.\dms\] (.*)$")
HELLO = ["sh", "-c", "echo hello; echo oops >&2"]


def traced(stderr: str) -> list[str]:
    """The narrated lines (every stderr line must be one, apart from the container's own)."""
    return [ln for ln in stderr.splitlines() if LINE.match(ln)]


def calls(lines: list[str]) -> list[str]:
    """The calls narrated, without their why-comments."""
    return [LINE.match(ln).group(2).split("  # ", 1)[0].rstrip() for ln in lines]


def first(lines: list[str], text: str) -> int:
    for i, ln in enumerate(lines):
        if text in ln:
            return i
    raise AssertionError(f"{text!r} is not narrated:\n" + "\n".join(lines))


def check_narration(stderr: str) -> list[str]:
    lines = traced(stderr)
    others = [ln for ln in stderr.splitlines() if not LINE.match(ln)]
    assert others == ["oops"], others  # only the container's own stderr line is not a trace line
    for ln in lines:
        body = LINE.match(ln).group(2)
        assert "  # " in body or body.startswith("-- "), f"no why-comment: {ln}"
        if "  # " in body:
            assert body.split("  # ", 1)[1].strip(), f"empty why-comment: {ln}"
    c = calls(lines)
    order = [first(c, "unshare(CLONE_NEW"), first(c, 'mount("proc"'),
             first(c, 'pivot_root(".", ".")'), first(c, 'sethostname("minirun")'),
             first(c, "capset("), first(c, "execve(")]
    assert order == sorted(order), order
    assert "CLONE_NEWPID" in c[order[0]] and "CLONE_NEWNS" in c[order[0]]
    # The init's last step is the program itself (after it, only the runtime's cleanup of the
    # cgroup at the end of `run` is narrated).
    init_calls = [calls([ln])[0] for ln in lines if ln.startswith("[init ")]
    assert init_calls[-1].startswith('execve("/bin/sh", '), init_calls[-1]
    # Who says what: namespaces are made by the child, the rootfs by the container's PID 1.
    assert lines[order[0]].startswith("[child ")
    assert lines[order[2]].startswith("[init 1 ")
    return c


def test_trace_flag(oci, bundle, cid):
    r = oci("run", "--bundle", bundle(args=HELLO), cid, global_args=("--trace",))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello\n"  # no narration in the container's stdout
    check_narration(r.stderr)


def test_trace_env(oci, bundle, cid):
    r = oci("run", "--bundle", bundle(args=HELLO), cid, env={**os.environ, "MINIRUN_TRACE": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello\n"
    check_narration(r.stderr)


@pytest.mark.parametrize("value", [None, "", "0"])
def test_silent_without_the_flag(oci, bundle, cid, value):
    env = {k: v for k, v in os.environ.items() if k != "MINIRUN_TRACE"}
    if value is not None:
        env["MINIRUN_TRACE"] = value
    r = oci("run", "--bundle", bundle(args=HELLO), cid, env=env)
    assert (r.returncode, r.stdout, r.stderr) == (0, "hello\n", "oops\n")


def test_trace_no_pivot_narrates_chroot(oci, bundle, cid):
    r = oci("run", "--no-pivot", "--bundle", bundle(args=["true"], own_rootfs=True), cid,
            global_args=("--trace",))
    assert r.returncode == 0, r.stderr
    c = calls(traced(r.stderr))
    assert any("MS_MOVE" in x for x in c) and any(x.startswith('chroot(".")') for x in c)
    assert not any(x.startswith("pivot_root(") for x in c)


def test_trace_names_the_mounts_and_masks(oci, bundle, cid):
    r = oci("run", "--bundle", bundle(args=["true"]), cid, global_args=("--trace",))
    c = calls(traced(r.stderr))
    for text in ('/dev/pts", "devpts"', '/sys", "sysfs"', "mknod(", 'symlink("/proc/self/fd"',
                 'umount2(".", MNT_DETACH)', '"/proc/keys"', '"/proc/sys"', "MS_RDONLY",
                 "fork()"):
        assert any(text in x for x in c), text


def test_trace_of_create_then_start(oci, bundle, cid, tmp_path):
    """create narrates the build; the init's execve is narrated (on create's stderr, which
    it inherited) only once `start` lets it go; start narrates opening the fifo."""
    err = tmp_path / "create.err"
    oci.ids.add(cid)
    with open(err, "w") as e, open(tmp_path / "create.out", "w") as o:
        r = subprocess.run([oci.binary, "--root", str(oci.root), "--trace", "create", "--bundle",
                            bundle(args=["true"]), cid], stdin=subprocess.DEVNULL, stdout=o,
                           stderr=e, timeout=30)
    assert r.returncode == 0, err.read_text()
    before = calls(traced(err.read_text()))
    assert any(x.startswith('pivot_root(') for x in before)
    assert not any(x.startswith("execve(") for x in before)
    assert any(x.startswith('open("exec.fifo", O_WRONLY)') for x in before)

    s = oci("start", cid, global_args=("--trace",))
    assert s.returncode == 0, s.stderr
    assert any('exec.fifo", O_RDONLY)' in x for x in calls(traced(s.stderr)))
    deadline = time.monotonic() + 5
    while "execve(" not in err.read_text() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls(traced(err.read_text()))[-1].startswith('execve("/bin/true"')


def test_trace_exec(oci, bundle, cid, tmp_path):
    oci.ids.add(cid)
    with open(tmp_path / "run.out", "w") as o:
        r = subprocess.run([oci.binary, "--root", str(oci.root), "run", "--detach", "--bundle",
                            bundle(args=["sleep", "60"]), cid], stdin=subprocess.DEVNULL,
                           stdout=o, stderr=subprocess.STDOUT, timeout=30)
    assert r.returncode == 0
    r = oci("exec", cid, "echo", "from-exec", global_args=("--trace",))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "from-exec\n"
    lines = traced(r.stderr)
    assert len(lines) == len(r.stderr.splitlines())
    c = calls(lines)
    for ns in ("CLONE_NEWNS", "CLONE_NEWPID", "CLONE_NEWNET", "CLONE_NEWIPC", "CLONE_NEWUTS"):
        assert any(x.startswith("setns(") and ns in x for x in c), ns
    assert any("PR_SET_DUMPABLE, 0" in x for x in c)
    assert c[-1].startswith('execve("/bin/echo"')
    assert lines[-1].startswith("[exec ")


def test_trace_stays_out_of_the_terminal(oci, bundle, cid, tmp_path, console_server):
    srv = console_server()
    err = tmp_path / "create.err"
    oci.ids.add(cid)
    b = bundle(args=["sh", "-c", "echo on-the-pty"], terminal=True)
    with open(err, "w") as e:
        r = subprocess.run([oci.binary, "--root", str(oci.root), "--trace", "create",
                            "--console-socket", srv.path, "--bundle", b, cid],
                           stdin=subprocess.DEVNULL, stdout=e, stderr=e, timeout=30)
    assert r.returncode == 0, err.read_text()
    master = srv.master()
    oci("start", cid, check=True)
    out = srv.read_until(master)
    assert out.strip() == "on-the-pty", out
    deadline = time.monotonic() + 5
    while "execve(" not in err.read_text() and time.monotonic() < deadline:
        time.sleep(0.01)
    c = calls(traced(err.read_text()))
    assert any("TIOCSCTTY" in x for x in c) and any("SCM_RIGHTS" in x for x in c)
    assert c[-1].startswith("execve(")


# --- `minirun --trace run`: the whole path, from the CLI to the cleanup -------------------------

WHO = re.compile(r"^\[(cli|monitor|runtime|child|init|network|exec-child|exec) \d+ "
                 r"\+\d+\.\dms\] (.*)$")


def path_lines(stderr: str) -> list[tuple[str, str]]:
    """(who, what) of each narrated line; every stderr line must be one."""
    out = []
    for ln in stderr.splitlines():
        m = WHO.match(ln)
        assert m, f"not a trace line: {ln!r}"
        body = m.group(2)
        assert "  # " in body or body.startswith("-- ") or body.startswith("(no nft"), ln
        out.append((m.group(1), body))
    return out


def index(lines: list[tuple[str, str]], who: str, text: str) -> int:
    for i, (w, body) in enumerate(lines):
        if w == who and text in body.split("  # ", 1)[0]:  # in the call, not its why
            return i
    raise AssertionError(f"[{who}] {text!r} is not narrated:\n" +
                         "\n".join(f"[{w}] {b[:110]}" for w, b in lines))


def check_whole_path(lines: list[tuple[str, str]], bridge: bool) -> None:
    order = [index(lines, "cli", "posix_spawn(monitor)"),
             index(lines, "cli", "-- image busybox:"),
             index(lines, "cli", 'mount("overlay", '),
             index(lines, "cli", "config.json"),
             index(lines, "monitor", "create"),
             index(lines, "child", "unshare(CLONE_NEW"),
             index(lines, "init", 'mount("proc"'),
             index(lines, "init", 'pivot_root(".", ".")')]
    # (the init's last line, its wait on exec.fifo, may come after the monitor's next: the
    # runtime's create returns once the init is set up, a moment before the init says so)
    assert order[-1] < index(lines, "init", 'open("exec.fifo", O_WRONLY)') < \
        index(lines, "runtime", 'exec.fifo", O_RDONLY)')
    if bridge:
        order += [index(lines, "network", 'kind="veth"'),
                  max(i for i, (w, b) in enumerate(lines)
                      if w == "network" and ("nft -f" in b or "NFT_MSG_GETGEN" in b))]
    else:
        order.append(index(lines, "monitor", "-- network none: no veth"))
    order += [index(lines, "runtime", 'exec.fifo", O_RDONLY)'),
              index(lines, "init", "execve("),
              index(lines, "monitor", "exited: code 0"),
              index(lines, "monitor", "delete "),
              index(lines, "monitor", "remove "),
              index(lines, "monitor", 'umount2("'),
              index(lines, "monitor", "rm -rf"),
              index(lines, "monitor", "the CLI returns")]
    assert order == sorted(order), "\n".join(f"{i}: [{lines[i][0]}] {lines[i][1][:100]}"
                                             for i in order)
    assert "lowerdir=" in lines[order[2]][1] and "upperdir=" in lines[order[2]][1] \
        and "workdir=" in lines[order[2]][1]
    assert lines[-1][1].startswith("-- the CLI returns")  # nothing after: the CLI has gone


@pytest.mark.parametrize("network", ["bridge", "none"])
def test_minirun_trace_run_narrates_the_whole_path(mr, network):
    r = mr("--trace", "run", "--rm", "--network", network, "busybox", "true")
    assert (r.returncode, r.stdout) == (0, ""), r.stderr
    check_whole_path(path_lines(r.stderr), bridge=network == "bridge")
    assert mr.ok("ps", "-aq") == ""


def test_minirun_trace_env_is_the_flag(mr):
    env = dict(mr.env, MINIRUN_TRACE="1")
    r = subprocess.run(mr.argv("run", "--rm", "--network", "none", "busybox", "sh", "-c",
                               "echo hello; echo oops >&2"), env=env, capture_output=True,
                       text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert (r.returncode, r.stdout) == (0, "hello\n"), r.stderr
    lines = r.stderr.splitlines()
    assert "oops" in lines  # the container's own stderr, among the narration
    check_whole_path(path_lines("\n".join(ln for ln in lines if ln != "oops")), bridge=False)


def test_minirun_run_says_nothing_more_without_it(mr):
    env = {k: v for k, v in mr.env.items() if k != "MINIRUN_TRACE"}
    for args in (("--network", "none"), ()):
        r = subprocess.run(mr.argv("run", "--rm", *args, "busybox", "sh", "-c", "echo err >&2"),
                           env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           timeout=60)
        assert (r.returncode, r.stdout, r.stderr) == (0, "", "err\n")


def test_minirun_trace_detached_run_returns_then_narrates_in_monitor_log(mr):
    t = time.monotonic()
    r = mr("--trace", "run", "-d", "--network", "none", "busybox", "sleep", "1")
    took = time.monotonic() - t
    assert r.returncode == 0, r.stderr
    assert took < 5  # the monitor let go of our stderr (else capture_output waits for its exit)
    cid = r.stdout.strip()
    lines = path_lines(r.stderr)
    index(lines, "init", "execve(")  # (maybe just after the next line: it races with "ok")
    gone = index(lines, "monitor", "-- the CLI returns: the rest of this trace goes to monitor.log")
    assert [w for w, _ in lines[gone + 1:]] in ([], ["init"])
    assert not any("exited: code" in b for _, b in lines)
    log = mr.root / "containers" / cid / "monitor.log"
    assert poll(lambda: "exited: code 0" in log.read_text() and "umount2(" in log.read_text(),
                timeout=15), log.read_text()
    after = path_lines(log.read_text())
    assert after[0] == ("monitor", after[0][1]) and "exited: code 0" in after[0][1]
    index(after, "monitor", "delete ")
