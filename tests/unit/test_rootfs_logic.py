"""Rootfs logic against the Recorder: the mounts, nodes and pivot it would ask the kernel for.

Paths are real (tmp_path stands in for the rootfs); every kernel call is only recorded.
"""

from __future__ import annotations

import errno
import os
import stat

import pytest

from minirun import trace
from minirun.errors import KernelError, MinirunError
from minirun.kernel import libc, resolve, rootfs
from minirun.kernel.libc import (MNT_DETACH, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE,
                                 MS_RDONLY, MS_REC, MS_REMOUNT, MS_SHARED, MS_SLAVE)
from minirun.kernel.devices import Device
from minirun.oci.spec import Mount


@pytest.fixture(autouse=True)
def _no_kept_roots():
    """mount_one keeps one fd per rootfs until pivot_root (kernel/rootfs.py:_open_root): each
    test starts and ends without any."""
    rootfs.forget_roots()
    yield
    rootfs.forget_roots()


# --- parse_options ------------------------------------------------------------------------

def test_parse_options_flags_and_data():
    flags, prop, data = rootfs.parse_options(["nosuid", "noexec", "mode=755", "size=65536k", "nodev"])
    assert flags == MS_NOSUID | MS_NOEXEC | MS_NODEV and prop == 0 and data == "mode=755,size=65536k"


def test_parse_options_later_option_clears_earlier():
    assert rootfs.parse_options(["ro", "rw"])[0] == 0
    assert rootfs.parse_options(["rw", "ro"])[0] == MS_RDONLY
    assert rootfs.parse_options(["nosuid", "suid", "exec", "noexec"])[0] == MS_NOEXEC


def test_parse_options_bind_and_propagation():
    assert rootfs.parse_options(["rbind", "rprivate"]) == (MS_BIND | MS_REC, MS_PRIVATE | MS_REC, "")
    assert rootfs.parse_options(["bind", "shared"]) == (MS_BIND, MS_SHARED, "")


def test_parse_options_empty():
    assert rootfs.parse_options([]) == (0, 0, "")


@pytest.mark.parametrize("opt", ["tmpcopyup"])
def test_parse_options_unsupported_is_refused(opt):
    with pytest.raises(rootfs.MountError, match=repr(opt)):
        rootfs.parse_options(["nosuid", opt])


def test_recursive_options_become_mount_setattr_attributes():
    from minirun.kernel import libc

    assert rootfs.parse_options(["rbind", "rro", "rnosuid"]) == (rootfs.MS_BIND | rootfs.MS_REC,
                                                                 0, "")
    assert rootfs.recursive_attrs(["rro", "rnosuid"]) == (
        libc.MOUNT_ATTR_RDONLY | libc.MOUNT_ATTR_NOSUID, 0)
    assert rootfs.recursive_attrs(["rro", "rrw"]) == (0, libc.MOUNT_ATTR_RDONLY)
    # an atime mode is one value of a field: setting one clears the whole field
    assert rootfs.recursive_attrs(["rnoatime", "rstrictatime"]) == (
        libc.MOUNT_ATTR_STRICTATIME, libc.MOUNT_ATTR__ATIME)
    assert rootfs.recursive_attrs(["ro", "nosuid"]) == (0, 0)


# --- prepare_root / mount_one -------------------------------------------------------------

def test_prepare_root_makes_slash_slave_then_binds_rootfs(recorder, tmp_path):
    rootfs.prepare_root(str(tmp_path), "")
    assert recorder.calls == [("mount", None, "/", None, MS_SLAVE | MS_REC, None),
                              ("mount", str(tmp_path), str(tmp_path), None, MS_BIND | MS_REC, None)]


@pytest.mark.parametrize("prop, flag", [("rprivate", MS_PRIVATE | MS_REC), ("slave", MS_SLAVE),
                                        ("shared", MS_SLAVE | MS_REC), ("rshared", MS_SLAVE | MS_REC)])
def test_prepare_root_propagation(recorder, tmp_path, prop, flag):
    rootfs.prepare_root(str(tmp_path), prop)
    assert recorder.calls[0] == ("mount", None, "/", None, flag, None)


def test_mount_tmpfs(recorder, tmp_path):
    m = Mount("/dev/shm", "tmpfs", "shm", ["nosuid", "nodev", "mode=1777", "size=64k"])
    rootfs.mount_one(str(tmp_path), "/bundle", m, in_userns=False)
    target = str(tmp_path / "dev" / "shm")
    assert recorder.calls == [("mount", "shm", target, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64k")]
    assert os.path.isdir(target)


def test_mount_without_source_uses_type_and_no_data_is_none(recorder, tmp_path):
    rootfs.mount_one(str(tmp_path), "/bundle", Mount("/proc", "proc"), in_userns=False)
    assert recorder.calls == [("mount", "proc", str(tmp_path / "proc"), "proc", 0, None)]


def test_mount_destination_through_symlink_stays_in_rootfs(recorder, tmp_path):
    os.symlink("/etc", tmp_path / "evil")
    rootfs.mount_one(str(tmp_path), "/b", Mount("/evil/x", "tmpfs", "tmpfs"), in_userns=False)
    assert recorder.calls[0][2] == str(tmp_path / "etc" / "x")


def test_bind_mount_of_a_file_creates_a_file_and_remounts_ro(recorder, tmp_path):
    bundle, rfs = tmp_path / "bundle", tmp_path / "rootfs"
    bundle.mkdir(), rfs.mkdir()
    (bundle / "hosts").write_text("127.0.0.1 localhost\n")
    m = Mount("/etc/hosts", "bind", "hosts", ["rbind", "ro", "nosuid"])  # relative: from the bundle
    rootfs.mount_one(str(rfs), str(bundle), m, in_userns=False)
    target = str(rfs / "etc" / "hosts")
    assert os.path.isfile(target)
    assert recorder.calls == [
        ("mount", str(bundle / "hosts"), target, None, MS_BIND | MS_REC, None),
        ("mount", None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID, None),
        # ro on an rbind: read-only below it too (CVE-2023-25809)
        ("mount_setattr", target, libc.AT_RECURSIVE, libc.MOUNT_ATTR_RDONLY, 0, target, 0)]


def test_bind_mount_of_a_dir_creates_a_dir_and_no_remount_without_flags(recorder, tmp_path):
    src = tmp_path / "data"
    src.mkdir()
    rfs = tmp_path / "rootfs"
    rfs.mkdir()
    rootfs.mount_one(str(rfs), "/b", Mount("/data", "none", str(src), ["bind"]), in_userns=False)
    assert os.path.isdir(rfs / "data")
    assert recorder.calls == [("mount", str(src), str(rfs / "data"), None, MS_BIND, None)]


def test_bind_mount_with_propagation_adds_a_propagation_call(recorder, tmp_path):
    (tmp_path / "r").mkdir()
    rootfs.mount_one(str(tmp_path / "r"), "/b", Mount("/x", "bind", str(tmp_path), ["rbind", "rslave"]),
                     in_userns=False)
    assert recorder.calls[-1] == ("mount", None, str(tmp_path / "r" / "x"), None, MS_SLAVE | MS_REC, None)


def test_bind_mount_missing_source_is_a_mount_error(recorder, tmp_path):
    with pytest.raises(rootfs.MountError, match="bind mount source /nope for /x"):
        rootfs.mount_one(str(tmp_path), "/b", Mount("/x", "bind", "/nope", ["bind"]), in_userns=False)
    assert recorder.calls == []


def test_cgroup_mount_needs_a_driver(recorder, tmp_path):
    m = Mount("/sys/fs/cgroup", "cgroup", "cgroup", ["ro"])
    with pytest.raises(rootfs.MountError, match="no cgroup support"):
        rootfs.mount_one(str(tmp_path), "/b", m, in_userns=False)
    seen = []
    rootfs.mount_one(str(tmp_path), "/b", m, in_userns=False,
                     cgroup_mount=lambda d, f, r: seen.append((resolve.where(d), f)))
    assert seen == [(str(tmp_path / "sys" / "fs" / "cgroup"), MS_RDONLY)]


def test_failing_mount_raises_kernel_error_naming_the_call(tmp_path):
    libc.install(libc.Recorder(fail={"mount": errno.EPERM}))
    with pytest.raises(KernelError, match="mount"):
        rootfs.mount_one(str(tmp_path), "/b", Mount("/t", "tmpfs", "tmpfs"), in_userns=False)


class SysfsRefused(libc.Recorder):
    """A user namespace without its own network namespace: sysfs mounts get EPERM."""

    def mount(self, source, target, fstype, flags, data):
        self.calls.append(("mount", source, target, fstype, flags, data))
        if fstype == "sysfs":
            raise KernelError("mount", target, errno.EPERM)


def test_sysfs_refused_in_userns_falls_back_to_binding_the_hosts(tmp_path):
    rec = SysfsRefused()
    libc.install(rec)
    rootfs.mount_one(str(tmp_path), "/b", Mount("/sys", "sysfs", "sysfs", ["ro"]), in_userns=True)
    target = str(tmp_path / "sys")
    assert [c[1:3] for c in rec.calls] == [("sysfs", target), ("/sys", target), (None, target),
                                           (target, libc.AT_RECURSIVE)]
    assert rec.calls[1][4] == MS_BIND | MS_REC
    assert rec.calls[2][4] & (MS_BIND | MS_REMOUNT | MS_RDONLY) == MS_BIND | MS_REMOUNT | MS_RDONLY
    # the host's mounts below /sys (cgroup, bpf, debugfs) read-only too: CVE-2023-25809
    assert rec.calls[3][:4] == ("mount_setattr", target, libc.AT_RECURSIVE,
                                libc.MOUNT_ATTR_RDONLY)


def test_sysfs_refused_outside_userns_is_an_error(tmp_path):
    libc.install(SysfsRefused())
    with pytest.raises(KernelError):
        rootfs.mount_one(str(tmp_path), "/b", Mount("/sys", "sysfs", "sysfs"), in_userns=False)


# --- /dev ---------------------------------------------------------------------------------

def _symlinks(recorder, rfs):
    return {c[2][len(str(rfs)):]: c[1] for c in recorder.calls if c[0] == "symlink"}


def test_setup_dev_mknods_default_devices_and_symlinks(recorder, tmp_path):
    rootfs.setup_dev(str(tmp_path), [], in_userns=False)
    mknods = [c for c in recorder.calls if c[0] == "mknod"]
    assert [(c[1], c[2], c[3]) for c in mknods] == [
        (str(tmp_path) + p, stat.S_IFCHR | 0o666, os.makedev(ma, mi)) for p, ma, mi in rootfs.DEFAULT_DEVICES]
    assert [c for c in recorder.calls if c[0] == "chmod"] == [("chmod", c[1], 0o666) for c in mknods]
    links = _symlinks(recorder, tmp_path)
    assert {k: links[k] for k in ("/dev/fd", "/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/ptmx")} == {
        "/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0", "/dev/stdout": "/proc/self/fd/1",
        "/dev/stderr": "/proc/self/fd/2", "/dev/ptmx": "pts/ptmx"}
    assert "mount" not in recorder.names()


def test_setup_dev_config_devices_override_defaults_and_get_owners(recorder, tmp_path):
    devs = [Device("c", "/dev/null", 1, 3, 0o600, 0, 0), Device("b", "/dev/loop0", 7, 0, None, 5, 6)]
    rootfs.setup_dev(str(tmp_path), devs, in_userns=False)
    mknods = {c[1][len(str(tmp_path)):]: c[2:] for c in recorder.calls if c[0] == "mknod"}
    assert len(mknods) == 7
    assert mknods["/dev/null"] == (stat.S_IFCHR | 0o600, os.makedev(1, 3))
    assert mknods["/dev/loop0"] == (stat.S_IFBLK | 0o666, os.makedev(7, 0))
    assert [c for c in recorder.calls if c[0] == "chown"] == [("chown", str(tmp_path / "dev/loop0"), 5, 6)]


def test_setup_dev_replaces_existing_nodes_and_ptmx_but_keeps_other_links(recorder, tmp_path):
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "null").write_text("not a device")
    os.symlink("/elsewhere", tmp_path / "dev" / "stdin")
    os.symlink("/elsewhere", tmp_path / "dev" / "ptmx")
    rootfs.setup_dev(str(tmp_path), [], in_userns=False)
    assert not os.path.lexists(tmp_path / "dev" / "null")  # unlinked; the (fake) mknod replaces it
    links = _symlinks(recorder, tmp_path)
    assert "/dev/stdin" not in links and links["/dev/ptmx"] == "pts/ptmx"


def test_setup_dev_in_userns_binds_host_nodes_instead_of_mknod(recorder, tmp_path):
    rootfs.setup_dev(str(tmp_path), [], in_userns=True)
    assert "mknod" not in recorder.names()
    binds = [c for c in recorder.calls if c[0] == "mount"]
    assert binds == [("mount", p, str(tmp_path) + p, None, MS_BIND, None) for p, _, _ in rootfs.DEFAULT_DEVICES]
    assert all(os.path.isfile(str(tmp_path) + p) for p, _, _ in rootfs.DEFAULT_DEVICES)
    assert "/dev/ptmx" in _symlinks(recorder, tmp_path)


# --- pivot and after ----------------------------------------------------------------------

def test_pivot_sequence(recorder, tmp_path):
    fds_before = set(os.listdir("/proc/self/fd"))
    rootfs.pivot(str(tmp_path))
    calls = recorder.calls
    assert [c[0] for c in calls] == ["chdir", "pivot_root", "chdir", "mount", "umount2", "chdir"]
    assert isinstance(calls[0][1], int) and isinstance(calls[2][1], int) and calls[0][1] != calls[2][1]
    assert calls[1] == ("pivot_root", ".", ".")
    assert calls[3] == ("mount", None, ".", None, MS_SLAVE | MS_REC, None)
    assert calls[4] == ("umount2", ".", MNT_DETACH)
    assert calls[5] == ("chdir", "/")
    assert set(os.listdir("/proc/self/fd")) == fds_before  # both directory fds closed


def test_pivot_closes_fds_when_a_call_fails(tmp_path):
    libc.install(libc.Recorder(fail={"pivot_root": errno.EINVAL}))
    fds_before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(KernelError, match="pivot_root"):
        rootfs.pivot(str(tmp_path))
    assert set(os.listdir("/proc/self/fd")) == fds_before


def test_move_root_sequence(recorder, tmp_path):
    rootfs.move_root(str(tmp_path))
    assert recorder.names() == ["chdir", "mount", "chroot", "chdir"]
    assert recorder.calls[1] == ("mount", str(tmp_path), "/", None, libc.MS_MOVE, None)


def test_mask_paths_tmpfs_over_dirs_dev_null_over_files_skips_missing(recorder, tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("secret")
    rootfs.mask_paths([str(tmp_path / "dir"), str(tmp_path / "file"), str(tmp_path / "missing")])
    assert recorder.calls == [("mount", "tmpfs", str(tmp_path / "dir"), "tmpfs", MS_RDONLY, None),
                              ("mount", "/dev/null", str(tmp_path / "file"), None, MS_BIND, None)]


def test_readonly_paths_bind_then_remount_ro(recorder, tmp_path):
    rootfs.readonly_paths([str(tmp_path), str(tmp_path / "missing")])
    assert [c[1:3] for c in recorder.calls] == [(str(tmp_path), str(tmp_path)), (None, str(tmp_path))]
    assert recorder.calls[1][4] & (MS_BIND | MS_REMOUNT | MS_RDONLY) == MS_BIND | MS_REMOUNT | MS_RDONLY


def test_finish_root(recorder):
    rootfs.finish_root(False, "")
    assert recorder.calls == []
    rootfs.finish_root(True, "rshared")
    assert recorder.calls[0][2] == "/" and recorder.calls[0][4] & MS_RDONLY
    assert recorder.calls[1] == ("mount", None, "/", None, MS_SHARED | MS_REC, None)


def test_setup_dev_replaces_an_image_symlink_instead_of_following_it(recorder, tmp_path):
    (tmp_path / "dev").mkdir()
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "shadow").write_text("keep me")
    os.symlink("/etc/shadow", tmp_path / "dev" / "null")
    for in_userns in (False, True):
        rootfs.setup_dev(str(tmp_path), [], in_userns=in_userns)
        assert (tmp_path / "etc" / "shadow").read_text() == "keep me"
        assert not os.path.islink(tmp_path / "dev" / "null")
    targets = {c[1] for c in recorder.calls if c[0] in ("mknod", "chmod")} | \
        {c[2] for c in recorder.calls if c[0] == "mount"}
    assert str(tmp_path / "dev" / "null") in targets
    assert not any("etc" in t for t in targets)


def test_setup_dev_parent_symlink_is_resolved_inside_rootfs(recorder, tmp_path):
    os.symlink("/realdev", tmp_path / "dev")  # the image's /dev is a link: follow it, in the rootfs
    rootfs.setup_dev(str(tmp_path), [], in_userns=False)
    assert ("mknod", str(tmp_path / "realdev" / "null"), stat.S_IFCHR | 0o666, os.makedev(1, 3)) \
        in recorder.calls


# --- lookups and creation by fds (kernel/resolve.py) --------------------------------------


def test_mount_destination_through_a_dangling_symlink_is_made_inside(recorder, tmp_path):
    rfs = tmp_path / "rootfs"
    rfs.mkdir()
    os.symlink("/made/here", rfs / "lnk")  # dangling: its target is created, in the rootfs
    rootfs.mount_one(str(rfs), "/b", Mount("/lnk/sub", "tmpfs", "tmpfs"), in_userns=False)
    assert recorder.calls == [("mount", "tmpfs", str(rfs / "made/here/sub"), "tmpfs", 0, None)]
    assert (rfs / "made" / "here" / "sub").is_dir()


def test_file_bind_target_is_a_file_never_a_symlink_followed(recorder, tmp_path):
    rfs, src = tmp_path / "rootfs", tmp_path / "hosts"
    (rfs / "etc").mkdir(parents=True)
    src.write_text("")
    (tmp_path / "secret").write_text("keep")
    os.symlink(str(tmp_path / "secret"), rfs / "etc" / "hosts")
    with pytest.raises(rootfs.MountError, match="mount destination /etc/hosts: .*symlink"):
        rootfs.mount_one(str(rfs), "/b", Mount("/etc/hosts", "bind", str(src), ["bind"]),
                         in_userns=False)
    assert recorder.calls == [] and (tmp_path / "secret").read_text() == "keep"


def test_a_destination_under_a_file_is_a_mount_error_naming_it(recorder, tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(rootfs.MountError, match="mount destination /f/x: "):
        rootfs.mount_one(str(tmp_path), "/b", Mount("/f/x", "tmpfs", "tmpfs"), in_userns=False)
    assert recorder.calls == []


def test_mount_goes_through_the_fd_and_the_trace_names_the_destination(capfd, recorder,
                                                                        tmp_path):
    class Seen(libc.Recorder):
        def mount(self, source, target, fstype, flags, data):
            self.calls.append(("mount", source, target, fstype, flags, data))

    seen = Seen()
    libc.install(seen)
    trace.enable("init")
    rootfs.mount_one(str(tmp_path), "/b", Mount("/data", "tmpfs", "tmpfs"), in_userns=False)
    err = capfd.readouterr().err
    assert f'mount("tmpfs", "{tmp_path}/data", "tmpfs", 0) [target /proc/self/fd/' in err
    assert "mkdirat(" in err and "RESOLVE_IN_ROOT" in err


def test_a_remount_looks_the_new_mount_up_again(recorder, tmp_path, monkeypatch):
    # the fd made before the bind names the directory under it: the remount needs a new one
    opened = []
    real_open_in = resolve.open_in

    def spy(root, path, *a, **kw):
        opened.append(path)
        return real_open_in(root, path, *a, **kw)

    monkeypatch.setattr(resolve, "open_in", spy)
    rootfs.mount_one(str(tmp_path), "/b", Mount("/x", "bind", str(tmp_path), ["bind", "ro"]),
                     in_userns=False)
    assert opened[-1] == "/x"  # looked up again, by its real path inside the root
    assert [c[4] for c in recorder.calls] == [MS_BIND, MS_BIND | MS_REMOUNT | MS_RDONLY]


def test_a_symlink_swapped_in_while_mounting_never_creates_outside(recorder, tmp_path):
    """CVE-2024-45310 at the unit level: vol/d flips between a directory and a symlink to a
    host directory while mount_one creates /vol/d/x/y and /vol/d/f; nothing appears outside."""
    import threading

    rfs, outside, src = tmp_path / "rootfs", tmp_path / "outside", tmp_path / "src"
    (rfs / "vol").mkdir(parents=True)
    outside.mkdir()
    src.write_text("")
    d, other = rfs / "vol" / "d", rfs / "vol" / "d.swap"
    stop = threading.Event()

    def swap():
        while not stop.is_set():
            try:
                os.mkdir(d)
                os.rmdir(d)
                os.symlink(str(outside), other)
                os.rename(other, d)
                os.unlink(d)
            except OSError:
                pass
    t = threading.Thread(target=swap, daemon=True)
    t.start()
    try:
        for _ in range(200):
            for m in (Mount("/vol/d/x/y", "tmpfs", "tmpfs"),
                      Mount("/vol/d/f", "bind", str(src), ["bind"])):
                try:
                    rootfs.mount_one(str(rfs), "/b", m, in_userns=False)
                except rootfs.MountError as e:
                    assert "mount destination /vol/d/" in str(e)
            assert os.listdir(outside) == []
    finally:
        stop.set()
        t.join()
    assert all(c[2].startswith(str(rfs) + "/") for c in recorder.calls)


def test_setup_dev_makes_nodes_relative_to_the_directory_fd(tmp_path):
    class AtKernel(libc.Recorder):
        def mknod(self, *args):
            self.calls.append(("mknod", *args))

    rec = AtKernel()
    libc.install(rec)
    rootfs.setup_dev(str(tmp_path), [], in_userns=False)
    # a Recorder is handed the object's real path, never an fd number
    assert ("mknod", str(tmp_path / "dev/null"), stat.S_IFCHR | 0o666, os.makedev(1, 3)) \
        in rec.calls
    assert all(len(c) == 4 for c in rec.calls if c[0] == "mknod")


def test_libc_at_calls_reach_the_kernel_with_the_dir_fd(tmp_path):
    libc.install(libc.Kernel())
    try:
        dfd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
        try:
            libc.mknod("fifo", stat.S_IFIFO | 0o600, 0, 0, "t", dir_fd=dfd)
            libc.chmod("fifo", 0o640, "t", dir_fd=dfd)
            libc.chown("fifo", os.getuid(), os.getgid(), "t", dir_fd=dfd)
            libc.symlink("fifo", "lnk", "t", dir_fd=dfd)
            with pytest.raises(OSError):
                libc.chmod("lnk", 0o600, "t", dir_fd=dfd)  # a symlink: refused, not followed
        finally:
            os.close(dfd)
    finally:
        libc.install(None)
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode)
    assert stat.S_IMODE(os.lstat(tmp_path / "fifo").st_mode) == 0o640
    assert os.readlink(tmp_path / "lnk") == "fifo"


def test_mask_and_readonly_skip_symlinks(recorder, tmp_path):
    (tmp_path / "dir").mkdir()
    os.symlink(str(tmp_path / "dir"), tmp_path / "link")
    rootfs.mask_paths([str(tmp_path / "link")])
    rootfs.readonly_paths([str(tmp_path / "link")])
    assert recorder.calls == []


def test_sysctl_is_written_relative_to_its_directory_on_procfs(recorder):
    from minirun.kernel import sysctl

    class Writes(libc.Recorder):
        def write_file(self, path, data, dir_fd=None):
            self.calls.append(("write_file", path, data, os.readlink(f"/proc/self/fd/{dir_fd}")))

    rec = Writes()
    libc.install(rec)
    sysctl.write("net.ipv4.ip_forward", "0")
    assert rec.calls == [("write_file", "ip_forward", "0", "/proc/sys/net/ipv4")]
    with pytest.raises(MinirunError, match="linux.sysctl net.nope.x"):
        sysctl.write("net.nope.x", "1")
