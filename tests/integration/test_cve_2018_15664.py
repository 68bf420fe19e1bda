"""CVE-2018-15664 regression tests: `cp` and the archive API against a container that swaps a
directory for a symlink to the host while the copy runs.

A path inside a container checked first and opened afterwards by name is walked twice by the
kernel; the container wins the race now and then, and the second walk follows its fresh
absolute symlink against the host's root. minirun resolves every path inside the container's
root by fd (kernel/resolve.py), so these must never see the host. The races are won by
chance, so a naive copy fails them often, not every run; tests/unit/test_files_by_fd.py makes
the same swap at the worst moment every time. The last test checks that cp, done by fds,
still does what cp does.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import time

import pytest
from helpers import poll

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="real containers need root")


# --- CVE-2018-15664: `cp` against a container swapping a directory for a symlink ------------


def test_cp_racing_a_symlink_swap_never_reads_the_host(mr, tmp_path):
    """In the container /dir flips between a real directory (holding `file`, "inside") and a
    symlink to a host directory whose `file` says "HOST-SECRET". A naive `cp` resolves the path
    (or checks it) on the host and then opens it by path: between the two the link appears,
    and the host's file is copied out (runc/Docker's CVE-2018-15664, fixed there by pausing the
    container; minirun resolves every component inside the container's root, by fd). Every copy
    must give "inside" or fail -- never the host's bytes."""
    secret = tmp_path / "host-secret"
    secret.mkdir()
    (secret / "file").write_text("HOST-SECRET\n")
    swap = (f"mkdir /d.real && echo inside > /d.real/file && ln -s {secret} /d.link && "
            "while :; do mv /d.real /dir; mv /dir /d.real; mv /d.link /dir; mv /dir /d.link; "
            "done")
    mr.ok("run", "-d", "--name", "cprace", "--network", "none", "busybox", "sh", "-c", swap)
    seen = {"inside": 0, "failed": 0}
    deadline = time.monotonic() + 20
    n = 0
    while time.monotonic() < deadline and n < 400:
        dest = tmp_path / f"out{n}"
        r = mr("cp", "cprace:/dir/file", str(dest))
        n += 1
        if r.returncode != 0:
            seen["failed"] += 1
            continue
        got = dest.read_text() if dest.is_file() else "".join(
            p.read_text() for p in dest.rglob("*") if p.is_file())
        assert "HOST-SECRET" not in got, f"copy {n} read the host's file"
        seen["inside"] += got == "inside\n"
    # the race was run: some copies found the directory, some the link
    assert seen["inside"] > 0 and n > 10, seen
    assert (secret / "file").read_text() == "HOST-SECRET\n"


def test_cp_into_a_container_racing_a_symlink_swap_never_writes_the_host(mr, tmp_path):
    """The write side of CVE-2018-15664: `cp FILE CTR:/dir/pwned` while /dir flips between a
    real directory and a symlink to a host directory. A naive `cp` resolves /dir inside the
    container, then writes by path: the kernel follows the fresh absolute symlink against the
    host's root, and the file lands on the host. The host directory must stay empty."""
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    payload = tmp_path / "pwned"
    payload.write_text("from cp\n")
    swap = (f"mkdir /d.real && ln -s {host_dir} /d.link && "
            "while :; do mv /d.real /dir; mv /dir /d.real; mv /d.link /dir; mv /dir /d.link; "
            "done")
    mr.ok("run", "-d", "--name", "cpin", "--network", "none", "busybox", "sh", "-c", swap)
    deadline = time.monotonic() + 20
    n = 0
    while time.monotonic() < deadline and n < 400 and not os.listdir(host_dir):
        mr("cp", str(payload), "cpin:/dir/pwned")
        n += 1
    assert os.listdir(host_dir) == [], f"copy {n} wrote onto the host"


def test_cp_a_tree_out_racing_a_symlink_swap_never_reads_the_host(mr, tmp_path):
    """The tree side (`cp CTR:/dir/sub DEST`, and as a tar: `cp CTR:/dir/sub -`, the API's GET
    /archive): /dir flips between a real directory and a symlink to a host directory, each
    holding `sub` with files f1..f200 of the same names. A naive copy looks /dir/sub up inside
    the container, then hands the host path /proc/PID/root/dir/sub to copytree or tarfile.add,
    which walk /proc/PID/root/dir/sub/fN again for every file: once the link is there, the
    kernel follows it against the host's root and the host's files are copied out (copytree
    goes on past the files it cannot find). No copy, whole or partial, may hold the host's
    bytes."""
    secret = tmp_path / "host-secret"
    (secret / "sub").mkdir(parents=True)
    for i in range(1, 201):
        (secret / "sub" / f"f{i}").write_text("HOST-SECRET\n")
    swap = ("mkdir -p /d.real/sub && for i in $(seq 200); do echo inside > /d.real/sub/f$i; "
            f"done && ln -s {secret} /d.link && "
            "while :; do mv /d.real /dir; mv /dir /d.real; mv /d.link /dir; mv /dir /d.link; "
            "done")
    mr.ok("run", "-d", "--name", "treerace", "--network", "none", "busybox", "sh", "-c", swap)
    deadline = time.monotonic() + 15
    n = ok = 0
    while time.monotonic() < deadline and n < 300:
        dest = tmp_path / f"out{n}"
        r = mr("cp", "treerace:/dir/sub", str(dest))
        got = "".join(p.read_text() for p in dest.rglob("*") if p.is_file()) \
            if dest.exists() else ""
        assert "HOST-SECRET" not in got, f"copy {n} read the host's files"
        ok += r.returncode == 0 and "inside" in got
        r = subprocess.run(mr.argv("cp", "treerace:/dir/sub/.", "-"), env=mr.env,
                           capture_output=True, timeout=30)
        assert b"HOST-SECRET" not in r.stdout, f"tar {n} holds the host's files"
        n += 1
    assert ok > 0 and n > 5, (ok, n)


# --- the same copies, by fds, still do what cp does ---------------------------------------------


def test_cp_by_fds_keeps_cp_semantics(mr, tmp_path):
    """Trees both ways (SRC/. copies the content, subdirectories too), -a keeps owners, a tar
    whose symlink points at / unpacks under the container's /, never the host's, and a
    destination that is a symlink inside the container is followed inside it."""
    mr.ok("run", "-d", "--name", "cpsem", "--network", "none", "busybox", "sh", "-c",
          "mkdir -p /src/sub && echo a > /src/a && echo b > /src/sub/b && "
          "ln -s nowhere /src/dangling && ln -s /etc/made-by-cp /tmp/to-etc && sleep 100")
    assert poll(lambda: mr("exec", "cpsem", "test", "-L", "/tmp/to-etc").returncode == 0)
    out = tmp_path / "out"
    out.mkdir()
    mr.ok("cp", "cpsem:/src/.", str(out))
    assert (out / "a").read_text() == "a\n" and (out / "sub" / "b").read_text() == "b\n"
    assert os.readlink(out / "dangling") == "nowhere"
    mr.ok("cp", "cpsem:/src", str(out))
    assert (out / "src" / "sub" / "b").read_text() == "b\n"

    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "f").write_text("f\n")
    os.chown(tree / "d" / "f", 1234, 4321)
    mr.ok("cp", "-a", str(tree), "cpsem:/tmp/")
    assert mr.ok("exec", "cpsem", "stat", "-c", "%u:%g", "/tmp/tree/d/f").strip() == "1234:4321"
    mr.ok("cp", str(tree), "cpsem:/tmp/plain")
    assert mr.ok("exec", "cpsem", "stat", "-c", "%u:%g", "/tmp/plain/d/f").strip() == "0:0"
    mr.ok("cp", str(tree / "d" / "f"), "cpsem:/tmp/to-etc")  # dangling: its target is made
    assert mr.ok("exec", "cpsem", "cat", "/etc/made-by-cp") == "f\n"
    assert not os.path.exists("/etc/made-by-cp")

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("up")
        link.type, link.linkname = tarfile.SYMTYPE, "/"
        tar.addfile(link)
        data = b"via link\n"
        f = tarfile.TarInfo("up/etc/cp-tar-planted")
        f.size = len(data)
        tar.addfile(f, io.BytesIO(data))
    r = subprocess.run(mr.argv("cp", "-", "cpsem:/tmp"), env=mr.env, input=buf.getvalue(),
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists("/etc/cp-tar-planted")
    assert mr.ok("exec", "cpsem", "cat", "/etc/cp-tar-planted") == "via link\n"
    bad = io.BytesIO()
    with tarfile.open(fileobj=bad, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("../escape"), io.BytesIO(b""))
    r = subprocess.run(mr.argv("cp", "-", "cpsem:/tmp"), env=mr.env, input=bad.getvalue(),
                       capture_output=True, timeout=30)
    assert r.returncode != 0 and b"refusing tar entry" in r.stderr
