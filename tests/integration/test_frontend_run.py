"""`minirun run` and `create`: what the container sees, and the exit codes Docker gives.

Every test runs the offline busybox image (scripts/build-image) on its own --root (the `mr`
fixture), and the fixture removes whatever a test left.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from helpers import drive_pty, mount_points_under, poll
from hostfeatures import cgroup_layout
from minirun.kernel.cgroups.resources import shares_to_weight


def test_run_prints_the_output_and_returns_the_exit_code(mr):
    r = mr("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")


def test_rm_leaves_nothing_behind(mr):
    assert mr.ok("run", "--rm", "busybox", "true") == ""
    assert mr.ok("ps", "-aq") == ""
    assert sorted(os.listdir(mr.root / "containers")) == [".lock", ".names"]
    assert os.listdir(mr.root / "containers" / ".names") == [".count"]  # no name left
    assert mount_points_under(mr.root) == []
    assert not [d for d in os.listdir(mr.runroot) if len(d) == 64]  # no runtime state


def test_command_not_found_is_127_and_not_executable_is_126(mr):
    r = mr("run", "--rm", "busybox", "no-such-program")
    assert r.returncode == 127
    assert r.stderr.strip().splitlines() == [
        "minirun: exec 'no-such-program': executable file not found in $PATH"]
    assert mr("run", "--rm", "busybox", "/etc/passwd").returncode == 126
    assert mr.ok("ps", "-aq") == ""  # --rm: a container that could not start goes too


def test_own_errors_are_125_in_one_line(mr):
    r = mr("run", "--rm", "--pull", "never", "no-such-image")
    assert r.returncode == 125
    assert len(r.stderr.strip().splitlines()) == 1 and "no-such-image" in r.stderr
    r = mr("run", "--rm", "--restart", "sometimes", "busybox", "true")
    assert r.returncode == 125 and "restart policy" in r.stderr
    r = mr("run", "--rm", "--bogus-flag", "busybox")  # a usage error: one line, where to look
    assert r.returncode == 125 and r.stderr.splitlines() == [
        "minirun: unknown flag: --bogus-flag (see 'minirun run --help')"]


def test_detached_run_prints_the_id_and_ps_shows_it(mr):
    cid = mr.ok("run", "-d", "--name", "sleeper", "busybox", "sleep", "100").strip()
    assert len(cid) == 64
    lines = mr.ok("ps").splitlines()
    assert lines[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS",
                                "PORTS", "NAMES"]
    assert lines[1].startswith(cid[:12]) and lines[1].endswith("sleeper") and "Up " in lines[1]
    assert mr.ok("ps", "-q") == cid[:12] + "\n"


def test_the_process_sees_its_namespaces_hostname_env_and_user(mr):
    out = mr.ok("run", "--rm", "-e", "FOO=bar", "--hostname", "box", "-w", "/tmp",
                "-u", "nobody", "busybox", "sh", "-c",
                "echo $FOO $HOSTNAME $HOME; hostname; pwd; id -u; id -g; ps | wc -l; "
                "cat /proc/1/cmdline | tr '\\0' ' '")
    lines = out.splitlines()
    assert lines[0] == "bar box /nonexistent" or lines[0].startswith("bar box ")
    assert lines[1:5] == ["box", "/tmp", "65534", "65534"]
    assert int(lines[5]) <= 4  # its own PID namespace: sh, ps, wc and the header
    for ns in ("net", "pid", "mnt", "uts", "ipc"):
        host = os.readlink(f"/proc/self/ns/{ns}")
        inside = mr.ok("run", "--rm", "busybox", "readlink", f"/proc/self/ns/{ns}").strip()
        assert inside != host, ns


def test_network_none_has_loopback_up_and_host_shares_the_hosts(mr):
    out = mr.ok("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link")
    assert [ln.split(":")[1].strip() for ln in out.splitlines()] == ["lo"]
    assert "UP" in out.split("<")[1].split(">")[0]
    host = os.readlink("/proc/self/ns/net")
    assert mr.ok("run", "--rm", "--network", "host", "busybox", "readlink",
                 "/proc/self/ns/net").strip() == host
    r = mr("run", "--rm", "--network", "no-such-net", "busybox", "true")
    assert r.returncode == 125 and "network no-such-net not found" in r.stderr


def test_entrypoint_and_cmd_are_joined_as_docker_does(mr, tmp_path):
    tar = tmp_path / "rootfs.tar"
    cid = mr.ok("create", "busybox", "true").strip()
    mr.ok("export", "-o", str(tar), cid)
    mr.ok("import", "-c", 'ENTRYPOINT ["echo", "ep"]', "-c", 'CMD ["default"]', str(tar), "epimg")
    assert mr.ok("run", "--rm", "epimg") == "ep default\n"
    assert mr.ok("run", "--rm", "epimg", "given", "args") == "ep given args\n"  # CMD replaced
    # --entrypoint replaces ENTRYPOINT and drops the image's CMD.
    assert mr.ok("run", "--rm", "--entrypoint", "echo", "epimg") == "\n"
    assert mr.ok("run", "--rm", "--entrypoint", "echo", "epimg", "x") == "x\n"
    mr.ok("rm", cid)
    mr.ok("rmi", "epimg")


def test_user_and_group_come_from_the_image(mr):
    assert mr.ok("run", "--rm", "-u", "mini", "busybox", "id").startswith("uid=1000(mini)")
    assert mr.ok("run", "--rm", "-u", "1234:5678", "busybox", "sh", "-c",
                 "id -u; id -g").split() == ["1234", "5678"]
    r = mr("run", "--rm", "-u", "nosuchuser", "busybox", "true")
    assert r.returncode == 125
    assert "unable to find user nosuchuser: no matching entries in passwd file" in r.stderr


def test_read_only_root_with_a_tmpfs(mr):
    r = mr("run", "--rm", "--read-only", "--tmpfs", "/scratch", "busybox", "sh", "-c",
           "touch /scratch/ok && echo tmpfs-ok; touch /nope")
    assert "tmpfs-ok" in r.stdout and "Read-only file system" in r.stderr


def test_limits_reach_the_cgroup_files(mr):
    if cgroup_layout() == "v2":  # one hierarchy: the container's own cgroup at /sys/fs/cgroup
        files, want = "memory.max cpu.max pids.max", [str(64 << 20), "50000", "100000", "50"]
    else:
        files = "memory/memory.limit_in_bytes cpu/cpu.cfs_quota_us pids/pids.max"
        want = [str(64 << 20), "50000", "50"]
    out = mr.ok("run", "--rm", "-m", "64m", "--cpus", "0.5", "--pids-limit", "50", "busybox",
                "sh", "-c", "cd /sys/fs/cgroup && cat " + files)
    assert out.split() == want


def test_a_memory_hog_is_oom_killed_and_inspect_says_so(mr):
    r = mr("run", "--name", "hog", "-m", "32m", "busybox", "sh", "-c",
           "x=aaaaaaaa; while true; do x=$x$x; done")
    assert r.returncode == 137
    assert mr.ok("inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}} {{.State.Status}}",
                 "hog").split() == ["true", "137", "exited"]


def test_capabilities_default_drop_and_privileged(mr):
    def eff(*flags):
        out = mr.ok("run", "--rm", *flags, "busybox", "grep", "CapEff", "/proc/self/status")
        return int(out.split()[1], 16)

    default = eff()
    assert default == 0xa80425fb  # Docker's 14 default capabilities
    assert eff("--cap-drop", "ALL") == 0
    assert eff("--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE") == 1 << 10
    with open("/proc/self/status") as f:
        bnd = next(int(ln.split()[1], 16) for ln in f if ln.startswith("CapBnd"))
    assert eff("--privileged") == bnd  # every capability we hold ourselves


def test_pid_host_sees_the_host_processes(mr):
    out = mr.ok("run", "--rm", "--pid", "host", "busybox", "sh", "-c", "ls /proc | grep -c '^[0-9]'")
    assert int(out) > 10


@pytest.fixture
def typed_run(mr):
    def go(*args, typed=b"", until=None):
        return drive_pty(["env", f"MINIRUN_ROOT={mr.root}", f"MINIRUN_RUNROOT={mr.runroot}",
                          *mr.argv(*args)], typed=typed, until=until, timeout=20)
    return go


def test_it_gives_a_real_terminal(typed_run):
    code, out = typed_run("run", "--rm", "-it", "busybox", "sh", typed=b"tty; echo $TERM; exit 7\r",
                          until=b"# ")
    assert code == 7
    assert "/dev/pts/0" in out and "xterm" in out


def test_a_shell_at_a_terminal_without_it_still_talks(typed_run):
    code, out = typed_run("run", "--rm", "busybox", "sh", typed=b"echo hi-$((6*7)); exit 2\r",
                          until=b"# ")
    assert code == 2 and "hi-42" in out


def test_detach_with_ctrl_p_ctrl_q_and_attach_again(mr, typed_run):
    code, out = typed_run("run", "-it", "--name", "det", "busybox", "sh",
                          typed=b"echo before\r\x10\x11", until=b"# ")
    assert code == 0
    assert mr.record("det")["State"]["Running"]
    code, out = typed_run("attach", "det", typed=b"echo again-$((1+1)); exit 4\r", until=b"")
    assert code == 4 and "again-2" in out
    assert poll(lambda: mr.record("det")["State"]["Status"] == "exited")


def test_stdin_is_piped_with_i(mr):
    assert mr.ok("run", "--rm", "-i", "busybox", "sh", "-c", "tr a-z A-Z",
                 input="hello\n") == "HELLO\n"
    # Without -i the container's stdin is closed (/dev/null), as with docker.
    assert mr.ok("run", "--rm", "busybox", "cat", input="ignored\n") == ""


def test_signals_to_a_foreground_run_reach_the_container(mr):
    p = subprocess.Popen(mr.argv("run", "--rm", "--init", "busybox", "sleep", "100"),
                         env=mr.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert poll(lambda: mr.ok("ps", "-q") != "", timeout=10)
    p.send_signal(15)
    assert p.wait(timeout=10) == 143  # SIGTERM forwarded; --init passed it on to sleep


def test_env_file_and_host_uts_and_ipc(mr, tmp_path):
    (tmp_path / "env").write_text("# a comment\nA=1\nB=two words\n")
    out = mr.ok("run", "--rm", "--env-file", str(tmp_path / "env"), "-e", "A=override",
                "busybox", "sh", "-c", "echo $A; echo $B")
    assert out.splitlines() == ["override", "two words"]
    assert mr.ok("run", "--rm", "--uts", "host", "busybox", "hostname").strip() == os.uname().nodename
    host_ipc = os.readlink("/proc/self/ns/ipc")
    assert mr.ok("run", "--rm", "--ipc", "host", "busybox", "readlink",
                 "/proc/self/ns/ipc").strip() == host_ipc


def test_cpu_and_swap_flags_reach_the_cgroup(mr):
    if cgroup_layout() == "v2":  # shares as cpu.weight; swap alone in memory.swap.max
        files = "cpu.weight cpuset.cpus; cat memory.swap.max"
        want = [str(shares_to_weight(512)), "0"], str(32 << 20)
    else:
        files = "cpu/cpu.shares cpuset/cpuset.cpus; cat memory/memory.memsw.limit_in_bytes"
        want = ["512", "0"], str(64 << 20)
    out = mr.ok("run", "--rm", "--cpu-shares", "512", "--cpuset-cpus", "0", "-m", "32m",
                "--memory-swap", "64m", "busybox", "sh", "-c",
                f"cd /sys/fs/cgroup && cat {files} 2>/dev/null || echo no-swap-accounting")
    lines = out.split()
    assert lines[:2] == want[0]
    assert lines[2] in (want[1], "no-swap-accounting")


def test_stop_signal_and_kill_with_a_signal(mr):
    mr.ok("run", "-d", "--name", "sig", "--stop-signal", "USR1", "busybox", "sh", "-c",
          "trap 'echo got-usr2' USR2; trap 'echo got-usr1; exit 0' USR1; "
          "echo trapping; while true; do sleep 0.1; done")
    assert poll(lambda: "trapping" in mr.ok("logs", "sig"))  # the traps are set
    mr.ok("kill", "-s", "USR2", "sig")
    assert poll(lambda: "got-usr2" in mr.ok("logs", "sig"))
    mr.ok("start", "sig")  # already running: nothing to do
    mr.ok("stop", "sig")
    assert "got-usr1" in mr.ok("logs", "sig")
    assert mr.record("sig")["State"]["ExitCode"] == 0


def test_restart_and_start_attached(mr):
    mr.ok("create", "--name", "rs", "busybox", "sh", "-c", "echo run-$$")
    assert mr.ok("start", "-a", "rs") == "run-1\n"
    mr.ok("restart", "rs")
    assert poll(lambda: mr.ok("logs", "rs").count("run-1") == 2)


def test_ulimit_sets_the_containers_rlimits(mr):
    out = mr.ok("run", "--rm", "--ulimit", "nofile=512:2048", "--ulimit", "core=-1", "busybox",
                "sh", "-c", "ulimit -Sn; ulimit -Hn; ulimit -Hc")
    assert out.split() == ["512", "2048", "unlimited"]
    cid = mr.ok("run", "-d", "--init", "--ulimit", "nofile=300:400", "busybox", "sleep", "100").strip()
    try:  # an exec'd process is held to the container's limits too, as in Docker
        assert mr.ok("exec", cid, "sh", "-c", "ulimit -Sn; ulimit -Hn").split() == ["300", "400"]
    finally:
        mr.ok("rm", "-f", cid)
    r = mr("run", "--rm", "--ulimit", "nofile=4096:1024", "busybox", "true")
    assert r.returncode == 125 and r.stderr.splitlines() == [
        "minirun: invalid ulimit nofile: soft limit 4096 is above the hard limit 1024"]
    r = mr("run", "--rm", "--ulimit", "files=1", "busybox", "true")
    assert r.returncode == 125 and "invalid ulimit 'files'" in r.stderr
    assert mr.ok("ps", "-aq") == ""


def test_sysctl_sets_namespaced_settings_and_refuses_host_ones(mr):
    host = open("/proc/sys/net/ipv4/ip_unprivileged_port_start").read()
    out = mr.ok("run", "--rm", "--sysctl", "net.ipv4.ip_unprivileged_port_start=80",
                "--sysctl", "kernel.shmmni=1000", "busybox", "sh", "-c",
                "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmni")
    assert out.split() == ["80", "1000"]
    assert open("/proc/sys/net/ipv4/ip_unprivileged_port_start").read() == host
    r = mr("run", "--rm", "--sysctl", "vm.swappiness=1", "busybox", "true")
    assert r.returncode == 125 and len(r.stderr.splitlines()) == 1
    assert "vm.swappiness is not namespaced" in r.stderr
    r = mr("run", "--rm", "--network", "host", "--sysctl", "net.ipv4.ip_forward=1", "busybox",
           "true")
    assert r.returncode == 125 and "--network host" in r.stderr
    assert mr.ok("ps", "-aq") == ""


def test_shm_size_sizes_dev_shm(mr):
    out = mr.ok("run", "--rm", "--shm-size", "2m", "busybox", "df", "-k", "/dev/shm")
    assert out.splitlines()[1].split()[1] == "2048"
    out = mr.ok("run", "--rm", "busybox", "df", "-k", "/dev/shm")
    assert out.splitlines()[1].split()[1] == "65536"  # Docker's default, 64 MiB


def test_expose_adds_exposed_ports_that_publish_all_publishes(mr):
    cid = mr.ok("create", "--expose", "80", "--expose", "7000-7001/udp", "-P", "busybox",
                "true").strip()
    try:
        ports = mr.ok("inspect", "--format", "{{json .Config.ExposedPorts}}", cid)
        assert set(json.loads(ports)) == {"80/tcp", "7000/udp", "7001/udp"}
    finally:
        mr.ok("rm", "-f", cid)
    r = mr("create", "--expose", "http", "busybox", "true")
    assert r.returncode == 125 and "invalid --expose 'http'" in r.stderr
