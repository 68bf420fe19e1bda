"""linux.seccomp under minirun-oci: actions, errno values, argument rules, architectures, the
exec'd processes, both load points (with and without noNewPrivileges), SCMP_ACT_NOTIFY with a
supervisor on listenerPath, and runc giving the same answers for the same bundle.

What the container sees is what counts: the errno a blocked call returns, the signal that kills
a process, `Seccomp: 2` in /proc/self/status.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import threading

import pytest

from helpers import launch, one_line_error, pairs, poll, run

ALLOW = "SCMP_ACT_ALLOW"
ARCH3 = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]


def profile(*rules, default=ALLOW, **extra) -> dict:
    return {"defaultAction": default, "architectures": ARCH3, "syscalls": list(rules), **extra}


def with_seccomp(sc: dict, probe: str | None = None, nnp: bool = True):
    def edit(cfg):
        cfg["linux"]["seccomp"] = sc
        cfg["process"]["noNewPrivileges"] = nnp
        if probe:
            cfg["mounts"].append({"destination": "/probe", "type": "bind", "source": probe,
                                  "options": ["bind", "ro"]})
    return edit


def test_errno_actions_and_default_errno(oci, bundle, cid):
    sc = profile({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 122},
                 {"names": ["unshare"], "action": "SCMP_ACT_ERRNO"})
    b = bundle(args=["sh", "-c", "grep Seccomp: /proc/self/status; mkdir /tmp/x; "
                     "unshare -U true; echo done"], edit=with_seccomp(sc))
    r = run(oci, b, cid)
    assert "Seccomp:\t2" in r.stdout and "done" in r.stdout
    assert "Disk quota exceeded" in r.stderr  # errnoRet 122 = EDQUOT
    assert "Operation not permitted" in r.stderr  # no errnoRet: EPERM


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP"])
def test_kill_and_trap_end_the_process_with_sigsys(oci, bundle, cid, action):
    sc = profile({"names": ["getppid"], "action": action})
    b = bundle(args=["sh", "-c", "echo before; echo $PPID; echo after"], edit=with_seccomp(sc))
    # the shell calls getppid() at start-up: SIGSYS (31) before it prints anything
    r = run(oci, b, cid, ok=False)
    assert r.returncode == 128 + 31 and "after" not in r.stdout


def test_log_allows(oci, bundle, cid):
    sc = profile({"names": ["getppid"], "action": "SCMP_ACT_LOG"}, default="SCMP_ACT_ALLOW")
    assert run(oci, bundle(args=["sh", "-c", "echo $PPID"], edit=with_seccomp(sc)), cid).stdout == "0\n"


def test_argument_rules(oci, bundle, cid):
    # kill(pid, 0) refused with EACCES, other signals pass: the rule looks at args[1]
    sc = profile({"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                  "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]})
    b = bundle(args=["sh", "-c", "kill -0 $$ && echo zero-ok; kill -CONT $$ && echo cont-ok"],
               edit=with_seccomp(sc))
    r = run(oci, b, cid)
    assert r.stdout == "cont-ok\n" and "Permission denied" in r.stderr


def test_allow_list_with_enosys_for_newer_calls(oci, bundle, cid, probe):
    """Docker's allow-list (default ERRNO): what it names works, the rest gets EPERM, clone3
    ENOSYS (its own rule), and a call newer than anything it names ENOSYS ("not here, fall
    back") rather than EPERM."""
    from minirun.engine import bundle as fe
    from minirun.engine.seccomp_profile import default_profile

    sc = default_profile(fe.DEFAULT_CAPS)
    b = bundle(args=["/probe", "getpid", "keyctl", "bpf", "clone3", "unshare_user", "vsock",
                     "future"], edit=with_seccomp(sc, probe))
    got = pairs(run(oci, b, cid).stdout.replace("=", " "))
    assert got == {"getpid": "ok", "keyctl": "EPERM", "bpf": "EPERM", "clone3": "ENOSYS",
                   "unshare_user": "EPERM", "vsock": "EPERM", "future": "ENOSYS"}


def test_a_call_through_an_unlisted_abi_kills_the_process(oci, bundle, cid, probe):
    only64 = {"defaultAction": ALLOW, "architectures": ["SCMP_ARCH_X86_64"],
              "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO"}]}
    r = run(oci, bundle(args=["/probe", "int80", "getpid"], edit=with_seccomp(only64, probe)), cid)
    assert r.stdout == "int80=killed-by-signal-31\ngetpid=ok\n"
    r = run(oci, bundle(args=["/probe", "int80"], edit=with_seccomp(profile(), probe)), cid + "b")
    assert r.stdout == "int80=ok\n"


@pytest.mark.parametrize("nnp", [True, False])
def test_both_load_points_filter_the_program(oci, bundle, cid, nnp):
    """Without no_new_privs the filter is loaded before capabilities are dropped (it needs
    CAP_SYS_ADMIN); with it, just before execve. Either way the program is filtered."""
    sc = profile({"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 122})
    b = bundle(args=["sh", "-c", "grep -E 'Seccomp:|NoNewPrivs' /proc/self/status; unshare -U true"],
               edit=with_seccomp(sc, nnp=nnp))
    r = run(oci, b, cid, ok=False)
    assert f"NoNewPrivs:\t{int(nnp)}" in r.stdout and "Seccomp:\t2" in r.stdout
    assert "Disk quota exceeded" in r.stderr


@pytest.mark.parametrize("nnp", [True, False])
def test_a_profile_denying_getcwd_still_starts(oci, bundle, cid, tmp_path, nnp):
    """The runtime's own check of process.cwd (getcwd, CVE-2024-21626) is made before the
    filter is loaded at either point, so a profile that denies getcwd (runtime-tools'
    linux_seccomp) filters the program and exec'd processes, not the runtime."""
    sc = profile({"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"})
    b = bundle(args=["sh", "-c", "/bin/pwd; sleep 60"], edit=with_seccomp(sc, nnp=nnp))
    r = launch(oci, tmp_path, "run", "--detach", "--bundle", b, cid)
    assert r.returncode == 0, r.stderr
    assert poll(lambda: "Operation not permitted" in r.stderr), r.stderr  # the program's pwd
    r = oci("exec", cid, "/bin/pwd")
    assert r.returncode == 1 and "getcwd: Operation not permitted" in r.stderr


def test_exec_gets_the_containers_filter(oci, bundle, cid, tmp_path):
    sc = profile({"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 122})
    b = bundle(args=["sleep", "60"], edit=with_seccomp(sc))
    assert launch(oci, tmp_path, "run", "--detach", "--bundle", b, cid).returncode == 0
    r = oci("exec", cid, "sh", "-c", "grep Seccomp: /proc/self/status; unshare -U true")
    assert "Seccomp:\t2" in r.stdout and "Disk quota exceeded" in r.stderr


def test_bad_profile_fails_create_with_one_line_and_leaves_nothing(oci, bundle, cid, tmp_path):
    sc = profile({"names": ["read"], "action": "SCMP_ACT_MAYBE"})
    r = oci("create", "--bundle", bundle(edit=with_seccomp(sc)), cid)
    assert r.returncode != 0
    assert "linux.seccomp.syscalls[0].action" in one_line_error(r.stderr)
    assert not (tmp_path / "oci-state" / cid).exists()


def test_trace_narrates_the_filter(oci, bundle, cid):
    sc = profile({"names": ["unshare"], "action": "SCMP_ACT_ERRNO"})
    r = oci("--trace", "run", "--bundle", bundle(args=["true"], edit=with_seccomp(sc)), cid)
    assert r.returncode == 0
    line = next(ln for ln in r.stderr.splitlines() if "seccomp(SECCOMP_SET_MODE_FILTER" in ln)
    assert "default ALLOW" in line and "instructions" in line


def test_same_answers_as_runc(oci, runc, bundle, cid):
    sc = profile({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 122},
                 {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                  "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]},
                 {"names": ["unshare"], "action": "SCMP_ACT_ERRNO"})
    script = ("grep Seccomp: /proc/self/status; mkdir /tmp/x 2>&1; kill -0 $$ 2>&1; "
              "unshare -U true 2>&1; kill -CONT $$ && echo cont")
    b = bundle(args=["sh", "-c", script], edit=with_seccomp(sc))
    assert run(oci, b, cid).stdout == run(runc, b, cid + "-runc").stdout


# --- SCMP_ACT_NOTIFY: a supervisor on listenerPath answers the container's calls ---------------

NOTIF_RECV = 0xC0502100  # _IOWR('!', 0, struct seccomp_notif), 80 bytes
NOTIF_SEND = 0xC0182101  # _IOWR('!', 1, struct seccomp_notif_resp), 24 bytes


class Supervisor(threading.Thread):
    """Accepts the runtime's message (state JSON + the listener fd), then answers every
    notified call with errno ENOMEDIUM (123), recording the container process state."""

    def __init__(self, path: str) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.state: dict = {}
        self.answered = 0

    def run(self) -> None:
        import array
        import fcntl

        conn, _ = self.sock.accept()
        fds = array.array("i")
        msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_LEN(fds.itemsize))
        conn.close()
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:fds.itemsize])
        self.state = json.loads(msg)
        fd = fds[0]
        try:
            while True:
                buf = bytearray(80)
                try:
                    fcntl.ioctl(fd, NOTIF_RECV, buf)
                except OSError:
                    return  # the filter's last user is gone
                notif_id = struct.unpack_from("=Q", buf)[0]
                fcntl.ioctl(fd, NOTIF_SEND, bytearray(struct.pack("=QqiI", notif_id, 0, -123, 0)))
                self.answered += 1
        finally:
            os.close(fd)


def test_notify_sends_the_listener_to_the_supervisor(oci, bundle, cid, tmp_path):
    sup = Supervisor(str(tmp_path / "seccomp.sock"))
    sup.start()
    sc = profile({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"},
                 listenerPath=sup.path, listenerMetadata="from-the-test")
    b = bundle(args=["sh", "-c", "mkdir /tmp/x; echo rc=$?"], edit=with_seccomp(sc))
    r = run(oci, b, cid)
    assert r.stdout == "rc=1\n" and "No medium found" in r.stderr  # the supervisor's answer
    sup.join(timeout=10)
    assert sup.answered == 1
    st = sup.state
    assert st["fds"] == ["seccompFd"] and st["metadata"] == "from-the-test"
    assert st["state"]["id"] == cid and st["pid"] > 0


def test_notify_without_a_listening_supervisor_fails_create(oci, bundle, cid, tmp_path):
    sc = profile({"names": ["mkdirat"], "action": "SCMP_ACT_NOTIFY"},
                 listenerPath=str(tmp_path / "nobody.sock"))
    r = oci("create", "--bundle", bundle(edit=with_seccomp(sc)), cid)
    assert r.returncode != 0 and "listenerPath" in one_line_error(r.stderr)
    assert not (tmp_path / "oci-state" / cid).exists()
