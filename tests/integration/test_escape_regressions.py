"""Regression tests for container escapes found in minirun itself (runc's CVE lessons).

CVE-2024-21626 pattern: the init held an O_PATH fd on a host directory (the state dir) while it
chdir'ed to process.cwd, so "cwd": "/proc/self/fd/N" started the container inside the host's
/run/minirun/<id>. Now the fd is on the fifo itself, getcwd() is checked, and process.cwd may
not resolve through /proc or /sys.
"""

from __future__ import annotations

import os

import pytest


@pytest.mark.parametrize("fd", [3, 4, 5, 6, 7])
def test_cwd_through_a_leaked_fd_is_refused(oci, bundle, cid, tmp_path, fd):
    b = bundle(args=["sh", "-c", "pwd; ls ..; touch escaped"], cwd=f"/proc/self/fd/{fd}")
    r = oci("run", "--bundle", b, cid)
    assert r.returncode != 0
    assert "process.cwd" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not list((tmp_path / "oci-state").rglob("escaped"))


def test_cwd_symlink_into_proc_is_refused(oci, bundle, cid, tmp_path):
    b = bundle(args=["pwd"], own_rootfs=True, cwd="/work")
    os.symlink("/proc/self/fd/3", os.path.join(b, "rootfs", "work"))
    r = oci("run", "--bundle", b, cid)
    assert r.returncode != 0 and "resolves through /proc" in r.stderr
    # nothing was created in the image by following the host path the link points at
    assert sorted(os.listdir(os.path.join(b, "rootfs", "tmp"))) == []


def test_only_stdio_is_open_in_the_container(oci, bundle, cid):
    r = oci("run", "--bundle", bundle(args=["sh", "-c", "ls /proc/self/fd"]), cid)
    # 0 1 2, plus the directory fd `ls` itself opens
    assert r.returncode == 0
    assert [int(x) for x in r.stdout.split()][:3] == [0, 1, 2] and len(r.stdout.split()) <= 4
