"""--trace: each kernel step is narrated on stderr with its reason; silence when off."""

from __future__ import annotations

import os

from minirun import trace
from minirun.kernel import capabilities, libc, namespaces, rootfs


def test_mount_is_narrated_with_arguments_and_why(capfd, recorder):
    trace.enable("test")
    libc.mount("tmpfs", "/dev/shm", "tmpfs", libc.MS_NOSUID | libc.MS_NODEV, "size=64k",
               "because the test says so")
    err = capfd.readouterr().err
    (line,) = err.splitlines()
    assert line.startswith(f"[test {os.getpid()} +")
    assert 'mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID|MS_NODEV, \'size=64k\')' in line
    assert line.endswith("# because the test says so")
    assert recorder.calls == [("mount", "tmpfs", "/dev/shm", "tmpfs", 6, "size=64k")]


def test_nothing_is_written_when_tracing_is_off(capfd, recorder):
    assert not trace.enabled
    libc.mount("tmpfs", "/x", "tmpfs", 0, None, "silent")
    namespaces.unshare_many(["pid"])
    assert capfd.readouterr().err == ""
    assert recorder.names() == ["mount", "unshare"]


def test_each_seam_call_narrates_once(capfd):
    trace.enable()
    namespaces.unshare_many(["pid", "mount"])
    libc.pivot_root(".", ".", "swap roots")
    libc.umount2(".", libc.MNT_DETACH, "detach")
    libc.sethostname("box", "hostname")
    libc.write_file("/proc/1/uid_map", "0 1000 1\n", "map ids")
    lines = capfd.readouterr().err.splitlines()
    assert len(lines) == 5
    assert "unshare(CLONE_NEWNS|CLONE_NEWPID)" in lines[0] and "new pid, mount namespaces" in lines[0]
    assert 'pivot_root(".", ".")' in lines[1] and 'umount2(".", MNT_DETACH)' in lines[2]
    assert 'sethostname("box")' in lines[3]
    assert 'write("/proc/1/uid_map", "0 1000 1")' in lines[4]


def test_stage_renames_the_narrator_and_note_has_no_call(capfd):
    trace.enable("runtime")
    trace.stage("init")
    trace.note("phase two")
    line = capfd.readouterr().err
    assert line.startswith(f"[init {os.getpid()} +") and line.endswith("] -- phase two\n")


def test_skipped_ambient_cap_is_noted_only_when_tracing(capfd):
    capabilities.apply({"ambient": ["CAP_KILL"]}, 40)
    assert capfd.readouterr().err == ""
    trace.enable()
    capabilities.apply({"ambient": ["CAP_KILL"]}, 40)
    assert "ambient CAP_KILL skipped" in capfd.readouterr().err


def test_rootfs_steps_are_narrated(capfd, tmp_path):
    trace.enable()
    rootfs.pivot(str(tmp_path))
    err = capfd.readouterr().err
    assert "fchdir(" in err and 'pivot_root(".", ".")' in err and 'chdir("/")' in err


def test_trace_writes_to_a_private_copy_of_stderr(capfd):
    trace.enable()
    assert trace._fd != 2 and not os.get_inheritable(trace._fd)
