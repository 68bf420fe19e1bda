"""A container without a mount namespace (kernel/host_mountns.py), against the Recorder: the
calls that put its rootfs tree into the host's mount table, take it out again, and enter it.

Paths are real (tmp_path stands in for the rootfs); every kernel call is only recorded.
"""

from __future__ import annotations

import errno

import pytest

from minirun.errors import KernelError
from minirun.kernel import host_mountns, libc
from minirun.kernel.libc import MNT_DETACH, MS_BIND, MS_PRIVATE, MS_REC


def test_bind_root_makes_a_private_tree_and_returns_its_mount_id(recorder, tmp_path):
    made = host_mountns.bind_root(str(tmp_path))
    assert recorder.calls == [("mount", str(tmp_path), str(tmp_path), None, MS_BIND | MS_REC, None),
                              ("mount", None, str(tmp_path), None, MS_PRIVATE | MS_REC, None)]
    assert made == host_mountns.mount_id(str(tmp_path)) > 0  # (the Recorder mounted nothing)


def test_bind_root_undoes_the_bind_when_making_it_private_fails(tmp_path):
    rec = libc.Recorder(fail={"mount": errno.EINVAL})
    libc.install(rec)
    with pytest.raises(KernelError):
        host_mountns.bind_root(str(tmp_path))
    # The Recorder fails every mount, the first included: nothing may be left either way.
    assert rec.names() == ["mount"]


def test_bind_root_second_call_failing_detaches_the_first(monkeypatch, recorder, tmp_path):
    calls = []

    def mount(source, target, fstype, flags, data, why, shown=None):
        calls.append(("mount", flags))
        if flags & MS_PRIVATE:
            raise KernelError("mount", target, errno.EPERM)

    monkeypatch.setattr(libc, "mount", mount)
    with pytest.raises(KernelError):
        host_mountns.bind_root(str(tmp_path))
    assert recorder.calls == [("umount2", str(tmp_path), MNT_DETACH)]


def test_detach_root_only_detaches_the_mount_it_made(recorder, tmp_path):
    here = host_mountns.mount_id(str(tmp_path))
    host_mountns.detach_root(str(tmp_path), here + 1)  # someone else's mount is there now
    host_mountns.detach_root(str(tmp_path), 0)  # create made none
    assert recorder.calls == []
    host_mountns.detach_root(str(tmp_path), here)
    assert recorder.calls == [("umount2", str(tmp_path), MNT_DETACH)]


def test_detach_root_of_a_vanished_rootfs_does_nothing(recorder, tmp_path):
    host_mountns.detach_root(str(tmp_path / "gone"), 42)
    assert recorder.calls == []


def test_mount_id_of_a_missing_path_is_0(tmp_path):
    assert host_mountns.mount_id(str(tmp_path / "missing")) == 0


def test_enter_root_chroots_never_pivots(recorder, tmp_path):
    host_mountns.enter_root(str(tmp_path))
    assert recorder.calls == [("chdir", str(tmp_path)), ("chroot", "."), ("chdir", "/")]


def test_exec_enters_the_inits_root(recorder):
    host_mountns.enter_root_of(4242)
    assert recorder.calls == [("chroot", "/proc/4242/root"), ("chdir", "/")]
