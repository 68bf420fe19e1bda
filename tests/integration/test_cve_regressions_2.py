"""More of runc's CVEs, each attack tried against minirun and shown to fail (issue 21).

Every test says, in its docstring, how a naive runtime fails it. The containers are real: the
tests need root, and skip with the reason otherwise.

CVE-2023-28642: the image's /proc is a symlink. CVE-2023-27561 / CVE-2019-16884: a mount
destination resolves through a symlink onto /proc (over /proc/self/attr in runc's case).
CVE-2022-29162: non-empty inheritable capabilities for non-root processes. CVE-2021-43784: the
runtime's own channel trusted what the other end said about a message's size. CVE-2016-9962:
the init leaked host fds into processes `exec`'d into the container. The others have files of
their own (test_cve_*.py); docs/security.md has the whole table.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from helpers import launch, run

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="real containers need root")


def host_mountinfo() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [ln.split()[4] for ln in f]


# --- CVE-2023-28642: the image's /proc is a symlink -------------------------------------------


@pytest.mark.parametrize("target", ["host-dir", "../../../../proc", "/proc"])
def test_an_image_proc_symlink_never_mounts_outside(oci, bundle, cid, tmp_path, target):
    """rootfs/proc is a symlink (to a host directory, or climbing out with ../, or to /proc).
    A naive runtime mounts procfs on `rootfs + "/proc"` with mount(2), which follows the link
    on the host: procfs lands on the host directory (or on the host's own /proc), outside the
    container, and the container gets no /proc of its own. minirun must either refuse, or
    mount inside the rootfs -- never on a host path."""
    outside = tmp_path / "host-dir"
    outside.mkdir()
    link = str(outside) if target == "host-dir" else target
    b = bundle(args=["sh", "-c", "readlink /proc/self/ns/pid; cat /proc/1/cmdline | tr '\\0' ' '"],
               own_rootfs=True)
    rootfs = Path(b) / "rootfs"
    shutil.rmtree(rootfs / "proc")
    os.symlink(link, rootfs / "proc")
    before = host_mountinfo()
    try:
        r = oci("run", "--bundle", b, cid)
        if r.returncode == 0:
            # a procfs of its own: its PID namespace, with its program as PID 1
            assert r.stdout.split()[0] != os.readlink("/proc/self/ns/pid"), r.stdout
            assert "readlink" in r.stdout.split("\n", 1)[1] or "sh" in r.stdout, r.stdout
        else:
            assert "/proc" in r.stderr, r.stderr
    finally:
        after = host_mountinfo()
        for m in set(after) - set(before):  # undo what an escape left, whatever happens
            if m.startswith(str(outside)) or m == "/proc":
                subprocess.run(["umount", "-l", m], capture_output=True)
    assert after == before  # nothing mounted on the host, /proc included
    assert os.listdir(outside) == []


# --- CVE-2023-27561 / CVE-2019-16884: a mount onto /proc through a symlink -------------------


@pytest.mark.parametrize("dest", ["/lnk/self/attr", "/lnk/self", "/attr/current"])
def test_a_mount_through_a_symlink_does_not_cover_proc(oci, bundle, cid, tmp_path, dest):
    """The image has /lnk -> /proc and /attr -> /proc/self/attr; config.json mounts a tmpfs at a
    destination that resolves through them. In runc a bind or tmpfs over /proc/self/attr (or
    over all of /proc) made the LSM label write land in a file the image controls: the
    container ran unconfined (CVE-2019-16884, again with another symlink in CVE-2023-27561).
    A naive runtime checks the destination *string* for "/proc" and then mounts through the
    symlinks. minirun must refuse a destination that resolves into /proc (or keep it off the
    procfs), and the container's /proc/self/attr must stay procfs's."""
    def edit(cfg):
        cfg["mounts"].append({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                              "options": ["nosuid", "nodev", "mode=755"]})
    b = bundle(args=["sh", "-c", "grep -E ' /proc(/|$| )' /proc/self/mountinfo | "
                                 "awk '{print $5, $9}'"], own_rootfs=True, edit=edit)
    rootfs = Path(b) / "rootfs"
    os.symlink("/proc", rootfs / "lnk")
    os.symlink("/proc/self/attr", rootfs / "attr")
    before = host_mountinfo()
    r = oci("run", "--bundle", b, cid)
    assert host_mountinfo() == before
    if r.returncode == 0:
        # every mount at or under /proc is procfs or one of the runtime's own masks (tmpfs on
        # masked directories, read-only binds of /proc/sys ...) -- none is ours at /proc/*/attr
        for line in r.stdout.splitlines():
            point, fstype = line.split()
            assert "attr" not in point and point != "/proc/self", r.stdout
    else:
        assert "/proc" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


# --- CVE-2022-29162: inheritable capabilities ------------------------------------------------


def test_frontend_non_root_has_no_inheritable_caps(mr):
    """runc gave processes an inheritable set equal to their bounding set, so a non-root
    process exec'ing a program with file capabilities (fI) gained them: a naive runtime that
    copies the bounding (or Docker's default) set into inheritable shows a non-zero CapInh."""
    out = mr.ok("run", "--rm", "--network", "none", "-u", "1000", "busybox", "grep", "-E",
                "^Cap(Inh|Amb)", "/proc/self/status")
    assert out.split() == ["CapInh:", "0" * 16, "CapAmb:", "0" * 16]
    out = mr.ok("run", "--rm", "--network", "none", "busybox", "grep", "^CapInh",
                "/proc/self/status")
    assert out.split() == ["CapInh:", "0" * 16]


def test_oci_spec_without_inheritable_gives_none(oci, bundle, cid):
    """A spec that names bounding/effective/permitted but no inheritable set must give an empty
    inheritable set, for uid 1000 and for root: a naive runtime keeps the inheritable set of
    the process that ran it (or fills it from bounding), and CapInh is non-zero."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETFCAP"]

    def edit(cfg):
        cfg["process"]["capabilities"] = {s: caps for s in ("bounding", "effective", "permitted")}
    for uid, suffix in ((1000, "a"), (0, "b")):
        b = bundle(args=["grep", "-E", "^Cap(Inh|Amb)", "/proc/self/status"], edit=edit,
                   user={"uid": uid, "gid": uid})
        r = run(oci, b, cid + suffix)
        assert r.stdout.split() == ["CapInh:", "0" * 16, "CapAmb:", "0" * 16], (uid, r.stdout)


# --- CVE-2021-43784: the runtime's own channel -----------------------------------------------


def test_the_channel_refuses_an_oversized_message_without_buffering_it():
    """runc's netlink config message carried 16-bit lengths that wrapped around, so a crafted
    length made the parser read attacker bytes as another field. minirun's channel has no
    length field to wrap (one text line per message), but the same lesson applies to its
    framing: a naive line reader keeps reading until a newline, so a peer that writes without
    one makes the runtime buffer it all (unbounded memory). The channel must give up after a
    bounded line (MAX_LINE) and answer None, the channel's only "no"."""
    import tracemalloc

    from minirun.oci.channel import MAX_LINE, PID

    assert MAX_LINE <= 1 << 20
    ch, w = peer_pipe()
    total = 64 * MAX_LINE  # far past the bound, and no newline anywhere

    def flood():
        chunk = b"9" * 65536
        sent = 0
        try:
            while sent < total:
                sent += os.write(w, chunk)
        except OSError:
            pass  # the reader gave up and closed its end: EPIPE
        finally:
            os.close(w)

    t = threading.Thread(target=flood, daemon=True)
    tracemalloc.start()
    try:
        t.start()
        started = time.monotonic()
        assert ch.recv() is None
        peak = tracemalloc.get_traced_memory()[1]
        assert time.monotonic() - started < 10
        assert len(ch._buf) <= MAX_LINE
        assert ch.recv() is None  # and it stays refused
    finally:
        tracemalloc.stop()
        ch.close()
        t.join(timeout=10)
    assert peak < 8 * MAX_LINE, peak

    # a forged PID line is refused too: only a positive decimal PID is one
    for forged in (b"pid -1\n", b"pid 0\n", b"pid 1e9\n", b"pid +5\n",
                   b"pid " + b"9" * 5000 + b"\n"):
        ch, w = peer_pipe()
        os.write(w, forged)
        os.close(w)
        assert ch.recv_pid()[0] == 0, forged[:20]
        ch.close()
    ch, w = peer_pipe()
    os.write(w, f"{PID} 4242\n".encode())
    os.close(w)
    assert ch.recv_pid() == (4242, None)
    ch.close()


def peer_pipe():
    """A parent-side Channel reading from a pipe whose write end (returned) plays the peer."""
    from minirun.oci.channel import Channel

    ch = Channel().as_parent()
    os.close(ch.rfd)
    ch.rfd, w = os.pipe()
    return ch, w


# --- CVE-2016-9962: host fds in processes exec'd into the container --------------------------

LIST_FDS = "for f in /proc/self/fd/*; do echo \"${f##*/} $(readlink $f)\"; done"


def check_fds(out: str, host_paths: list[str]) -> None:
    fds = dict(line.partition(" ")[::2] for line in out.strip("\n").splitlines())
    assert {"0", "1", "2"} <= set(fds), out
    for fd, target in fds.items():
        # the one extra is the listing's own: the glob's directory fd, closed (so no target)
        # by the time readlink looks, or still open on /proc
        assert fd in ("0", "1", "2") or target == "" or target.startswith("/proc/"), out
        if fd in ("0", "1", "2"):
            continue  # the caller's own stdio, whatever it is (a launch file is on the host)
        for p in host_paths:
            assert not target.startswith(p), (fd, target)


def test_oci_exec_gets_no_host_fds(oci, bundle, cid, tmp_path):
    """runc's init kept an fd on the host's state directory open while it waited, and `runc
    exec` processes joined it (ptrace, /proc/PID/fd of the init): a naive runtime that leaves
    its state dir, bundle, log or pipe fds inheritable hands the exec'd process a way out. The
    exec'd process (and the container's PID 1) must hold only stdio."""
    b = bundle(args=["sleep", "60"])
    assert launch(oci, tmp_path, "run", "--detach", "--bundle", b, cid).returncode == 0
    host = [str(tmp_path), b, "/var/lib/minirun", "/run/minirun"]
    r = oci("exec", cid, "sh", "-c", LIST_FDS)
    assert r.returncode == 0, r.stderr
    check_fds(r.stdout, host)
    r = oci("exec", cid, "sh", "-c", "ls /proc/1/fd")
    assert sorted(r.stdout.split()) == ["0", "1", "2"], r.stdout
    # a detached exec too: nothing of the runtime's is left to it once the runtime is gone
    r = launch(oci, tmp_path, "exec", "--detach", cid, "sh", "-c", LIST_FDS + "; echo end")
    assert r.returncode == 0, r.stderr
    for _ in range(100):
        if r.stdout.endswith("end\n"):
            break
        time.sleep(0.05)
    check_fds(r.stdout.removesuffix("end\n"), host)


def test_frontend_exec_gets_no_host_fds(mr):
    """The same through `minirun exec` (the monitor and the engine are between): a naive front
    end lets its own sockets, lock files or the container's log file reach the exec'd process."""
    mr.ok("run", "-d", "--name", "fdx", "--network", "none", "busybox", "sleep", "60")
    out = mr.ok("exec", "fdx", "sh", "-c", LIST_FDS)
    check_fds(out, [str(mr.root), str(mr.runroot), "/var/lib/minirun"])
    out = mr.ok("exec", "fdx", "ls", "/proc/1/fd")
    assert sorted(out.split()) == ["0", "1", "2"], out
