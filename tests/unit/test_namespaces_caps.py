"""Namespaces, capabilities and process setup, as calls recorded by the fake kernel."""

from __future__ import annotations

import errno
import os

import pytest

from minirun.errors import KernelError
from minirun.kernel import capabilities, libc, namespaces, process


# --- namespaces ---------------------------------------------------------------------------

def test_unshare_many_is_one_call_with_all_flags(recorder):
    namespaces.unshare_many(["pid", "mount", "uts"])
    assert recorder.calls == [("unshare", libc.CLONE_NEWPID | libc.CLONE_NEWNS | libc.CLONE_NEWUTS)]


def test_unshare_many_of_nothing_makes_no_call(recorder):
    namespaces.unshare_many([])
    assert recorder.calls == []


def test_every_oci_namespace_type_has_a_distinct_flag():
    flags = [t[0] for t in namespaces.TYPES.values()]
    assert len(set(flags)) == len(flags) == 8
    assert sorted(namespaces.JOIN_ORDER) == sorted(namespaces.TYPES)
    assert namespaces.JOIN_ORDER[0] == "user" and namespaces.JOIN_ORDER[-1] == "mount"


def test_join_records_setns_with_the_path(recorder):
    namespaces.join("network", "/proc/1/ns/net")
    assert recorder.calls == [("setns", "/proc/1/ns/net", libc.CLONE_NEWNET)]


def test_write_id_maps(recorder):
    namespaces.write_id_maps(42, [(0, 1000, 1), (1, 100000, 65536)], [(0, 1000, 1)])
    assert recorder.calls == [("write_file", "/proc/42/uid_map", "0 1000 1\n1 100000 65536\n", None),
                              ("write_file", "/proc/42/gid_map", "0 1000 1\n", None)]


def test_same_as_self():
    assert namespaces.same_as_self("mount", os.getpid())


def test_recorder_failure_raises_kernel_error_with_errno():
    libc.install(libc.Recorder(fail={"unshare": errno.EPERM}))
    with pytest.raises(KernelError) as e:
        namespaces.unshare_many(["user"])
    assert e.value.errno == errno.EPERM and "unshare" in str(e.value)


def test_flag_names_renders_masks():
    assert libc.flag_names(libc.MS_BIND | libc.MS_REC, libc.MS_NAMES) == "MS_BIND|MS_REC"
    assert libc.flag_names(0, libc.MS_NAMES) == "0"
    assert libc.flag_names(libc.CLONE_NEWNS | 1, libc.CLONE_NAMES) == "CLONE_NEWNS|0x1"


def test_recorder_fork_gives_distinct_fake_pids(recorder):
    assert libc.fork("test") != libc.fork("test")
    assert recorder.names() == ["fork", "fork"]


# --- capabilities -------------------------------------------------------------------------

def test_to_numbers_sorted_unique_and_capped_at_last_cap():
    assert capabilities.to_numbers(["CAP_KILL", "CAP_CHOWN", "CAP_KILL"], 40) == [0, 5]
    assert capabilities.to_numbers(["CAP_BPF", "CAP_SYS_ADMIN"], 38) == [21]
    assert capabilities.to_numbers([], 40) == []


def test_last_cap_matches_the_kernel():
    top = capabilities.last_cap()
    with open("/proc/sys/kernel/cap_last_cap") as f:
        assert top == int(f.read())
    assert top >= capabilities.NAMES["CAP_AUDIT_READ"]


def test_names_are_unique_numbers():
    assert sorted(capabilities.NAMES.values()) == list(range(len(capabilities.NAMES)))


def test_apply_sets_exactly_the_given_sets(recorder):
    capabilities.apply({"effective": ["CAP_KILL"], "permitted": ["CAP_KILL", "CAP_CHOWN"],
                        "inheritable": ["CAP_CHOWN"], "bounding": ["CAP_SYS_ADMIN"]}, 40)
    assert recorder.calls == [("capset", [5], [0, 5], [0], 40)]


def test_apply_raises_ambient_only_for_caps_permitted_and_inheritable(recorder):
    capabilities.apply({"permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
                        "inheritable": ["CAP_CHOWN", "CAP_NET_RAW", "CAP_SETUID"],
                        "ambient": ["CAP_NET_RAW", "CAP_KILL", "CAP_SETUID", "CAP_CHOWN"]}, 40)
    assert recorder.calls[0] == ("capset", [], [0, 5, 13], [0, 7, 13], 40)
    assert recorder.calls[1:] == [("prctl", libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_RAISE, 0),
                                  ("prctl", libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_RAISE, 13)]


def test_apply_with_no_caps_clears_everything(recorder):
    capabilities.apply({}, 40)
    assert recorder.calls == [("capset", [], [], [], 40)]


def test_drop_bounding_drops_only_held_caps_not_kept(recorder):
    top = capabilities.last_cap()
    have = capabilities.current_bounding()
    capabilities.drop_bounding(["CAP_KILL", "CAP_CHOWN"], top)
    dropped = {c[2] for c in recorder.calls}
    assert all(c[:2] == ("prctl", libc.PR_CAPBSET_DROP) for c in recorder.calls)
    assert dropped == {n for n in range(top + 1) if have & (1 << n)} - {0, 5}


# --- process ------------------------------------------------------------------------------

def test_set_rlimits(recorder):
    process.set_rlimits([("RLIMIT_NOFILE", 1024, 2048), ("RLIMIT_CORE", 0, 0)])
    assert recorder.calls == [("prlimit", 7, 1024, 2048, "RLIMIT_NOFILE"), ("prlimit", 4, 0, 0, "RLIMIT_CORE")]


def test_switch_user_order_groups_gid_uid_with_keepcaps(recorder):
    process.switch_user(1000, 100, [10, 20])
    assert recorder.calls == [("prctl", libc.PR_SET_KEEPCAPS, 1, 0), ("setgroups", [10, 20]),
                              ("setresgid", 100), ("setresuid", 1000),
                              ("prctl", libc.PR_SET_KEEPCAPS, 0, 0)]


def test_switch_user_without_setgroups(recorder):
    process.switch_user(0, 0, [5], setgroups_allowed=False)
    assert "setgroups" not in recorder.names()


@pytest.fixture
def bindir(tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    (d / "tool").write_text("#!/bin/sh\n")
    (d / "tool").chmod(0o755)
    (d / "data").write_text("")
    (d / "data").chmod(0o644)
    (d / "subdir").mkdir()
    return d


def test_find_executable_on_path(bindir, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    assert process.find_executable("tool", f"{other}:{bindir}") == str(bindir / "tool")


def test_find_executable_with_slash_is_used_as_is(bindir):
    assert process.find_executable(str(bindir / "tool"), "/nonexistent") == str(bindir / "tool")


@pytest.mark.parametrize("name", ["data", "subdir"])
def test_find_executable_not_executable_is_permission_error(bindir, name):
    with pytest.raises(PermissionError, match=name):
        process.find_executable(name, str(bindir))


def test_find_executable_later_match_wins_over_non_executable(bindir, tmp_path):
    d2 = tmp_path / "bin2"
    d2.mkdir()
    (d2 / "data").write_text("")
    (d2 / "data").chmod(0o755)
    assert process.find_executable("data", f"{bindir}:{d2}") == str(d2 / "data")


def test_find_executable_missing_mentions_path(bindir):
    with pytest.raises(FileNotFoundError, match=r"\$PATH"):
        process.find_executable("nosuchtool", str(bindir))
    with pytest.raises(FileNotFoundError, match="no such file"):
        process.find_executable(str(bindir / "nosuchtool"), str(bindir))


def test_find_executable_default_path_when_unset():
    assert process.find_executable("sh", None) in ("/usr/bin/sh", "/bin/sh", "/usr/local/bin/sh",
                                                   "/usr/sbin/sh", "/sbin/sh", "/usr/local/sbin/sh")


def test_start_time_of_self_and_of_a_missing_pid():
    t = process.start_time(os.getpid())
    assert isinstance(t, int) and t > 0
    assert process.start_time(os.getpid()) == t
    assert process.start_time(2**31 - 1) is None


def test_start_time_of_a_zombie_is_none():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        # Block until it has exited, without reaping it (WNOWAIT): a zombie, whatever the load.
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        assert process.start_time(pid) is None
    finally:
        os.waitpid(pid, 0)


# --- the real seam's use of python-prctl (a fake module stands in for it) -----------------

class _FakePrctl:
    """Stands in for python-prctl's public module: records each call, makes none."""
    CAP_EFFECTIVE, CAP_PERMITTED, CAP_INHERITABLE = 0, 1, 2

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple] = []
        self.error = error

    def __getattr__(self, name: str):
        def call(*args):
            self.calls.append((name, *args))
            if self.error:
                raise self.error
        return call


@pytest.fixture
def fake_prctl(monkeypatch):
    fake = _FakePrctl()
    monkeypatch.setattr(libc.Kernel, "_prctl_mod", fake)
    return fake


@pytest.mark.parametrize("option,function", [
    (libc.PR_SET_DUMPABLE, "set_dumpable"), (libc.PR_SET_KEEPCAPS, "set_keepcaps"),
    (libc.PR_CAPBSET_DROP, "capbset_drop"), (libc.PR_SET_NO_NEW_PRIVS, "set_no_new_privs"),
    (libc.PR_SET_CHILD_SUBREAPER, "set_child_subreaper"), (libc.PR_SET_PDEATHSIG, "set_pdeathsig"),
])
def test_kernel_prctl_uses_python_prctl_public_functions(fake_prctl, option, function):
    assert libc.Kernel().prctl(option, 1) == 0
    assert fake_prctl.calls == [(function, 1)]


def test_kernel_capset_is_one_set_caps_raising_the_listed_and_clearing_the_rest(fake_prctl):
    libc.Kernel().capset([5], [0, 5], [0], 5)
    (name, *triples), = fake_prctl.calls
    assert name == "set_caps"
    assert triples == [([5], 0, True), ([0, 5], 1, True), ([0], 2, True),
                       ([0, 1, 2, 3, 4], 0, False), ([1, 2, 3, 4], 1, False),
                       ([1, 2, 3, 4, 5], 2, False)]


def test_kernel_prctl_errors_name_the_option(monkeypatch):
    monkeypatch.setattr(libc.Kernel, "_prctl_mod", _FakePrctl(OSError(errno.EPERM, "no")))
    with pytest.raises(KernelError, match="prctl PR_CAPBSET_DROP") as e:
        libc.Kernel().prctl(libc.PR_CAPBSET_DROP, 21)
    assert e.value.errno == errno.EPERM
    monkeypatch.setattr(libc.Kernel, "_prctl_mod", _FakePrctl(ValueError("Unknown capability")))
    with pytest.raises(KernelError, match="PR_CAPBSET_DROP 99.*Unknown capability"):
        libc.Kernel().prctl(libc.PR_CAPBSET_DROP, 99)
