"""engine.seccomp_profile: Docker's default seccomp policy and user profiles, resolved to OCI."""

from __future__ import annotations

import json

import pytest

from minirun.engine import seccomp_profile as sp
from minirun.engine.seccomp_profile import (
    SeccompProfileError, default_profile, docker_format_default, load_profile)
from minirun.errors import MinirunError

# Docker's default capability set (moby oci/caps/defaults.go).
DOCKER_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
               "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
               "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
NEW_KERNEL = (6, 1)
OLD_KERNEL = (4, 4)

CLONE_NEWUSER = 0x10000000
SIGCHLD = 17
ADDR_NO_RANDOMIZE = 0x0040000
AF_UNIX, AF_INET, AF_NETLINK = 1, 2, 16


def resolve(caps=DOCKER_CAPS, arch="x86_64", kernel=NEW_KERNEL, extra=()):
    return default_profile(list(caps) + list(extra), arch, kernel)


def allowed(profile) -> set[str]:
    """Names some SCMP_ACT_ALLOW rule covers (with or without argument conditions)."""
    return {n for r in profile.get("syscalls", []) if r["action"] == sp.ALLOW for n in r["names"]}


def rules_for(profile, name):
    return [r for r in profile.get("syscalls", []) if name in r["names"]]


def verdict(profile, name, *args):
    """What the filter does with `name(args...)`: the action of a rule whose conditions all hold
    (libseccomp ORs the rules of one syscall, ANDs the conditions of one rule)."""
    ops = {"SCMP_CMP_NE": lambda a, v, _: a != v, "SCMP_CMP_LT": lambda a, v, _: a < v,
           "SCMP_CMP_LE": lambda a, v, _: a <= v, "SCMP_CMP_EQ": lambda a, v, _: a == v,
           "SCMP_CMP_GE": lambda a, v, _: a >= v, "SCMP_CMP_GT": lambda a, v, _: a > v,
           "SCMP_CMP_MASKED_EQ": lambda a, v, v2: a & v == v2}
    argv = list(args) + [0] * 6
    for rule in rules_for(profile, name):
        if all(ops[c["op"]](argv[c["index"]], c["value"], c["valueTwo"])
               for c in rule.get("args", [])):
            return (rule["action"], rule.get("errnoRet"))
    return (profile["defaultAction"], profile.get("defaultErrnoRet"))


ALLOWED = (sp.ALLOW, None)
EPERM = ("SCMP_ACT_ERRNO", 1)


# --- the default profile for Docker's default capabilities ---------------------------------------

def test_default_action_is_eperm_and_architectures_for_x86_64():
    p = resolve()
    assert p["defaultAction"] == "SCMP_ACT_ERRNO" and p["defaultErrnoRet"] == 1
    assert p["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]


@pytest.mark.parametrize("name", ["read", "write", "openat", "execve", "exit_group", "mmap",
                                  "futex", "epoll_wait", "rt_sigaction", "setuid", "kill",
                                  "clock_gettime", "connect", "arch_prctl", "modify_ldt",
                                  "chroot", "name_to_handle_at", "listmount", "socketcall"])
def test_everyday_calls_are_allowed(name):
    assert verdict(resolve(), name) == ALLOWED


@pytest.mark.parametrize("name", [
    "mount", "umount2", "unshare", "setns", "keyctl", "add_key", "request_key", "bpf",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
    "swapon", "swapoff", "pivot_root", "open_by_handle_at", "io_uring_setup", "userfaultfd",
    "perf_event_open", "settimeofday", "clock_settime", "acct", "iopl", "syslog",
    "fsopen", "move_mount", "kcmp", "pidfd_getfd", "lsm_set_self_attr", "vhangup", "mbind"])
def test_dangerous_calls_fall_to_eperm(name):
    p = resolve()
    assert name not in allowed(p)
    assert verdict(p, name) == EPERM


def test_clone_allowed_only_without_namespace_flags():
    p = resolve()
    [rule] = rules_for(p, "clone")
    assert rule["args"] == [{"index": 0, "value": 0x7E020000, "valueTwo": 0,
                             "op": "SCMP_CMP_MASKED_EQ"}]
    assert verdict(p, "clone", SIGCHLD) == ALLOWED  # fork()
    assert verdict(p, "clone", SIGCHLD | CLONE_NEWUSER) == EPERM


def test_clone3_gets_enosys_so_libc_falls_back_to_clone():
    p = resolve()
    assert rules_for(p, "clone3") == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO",
                                       "errnoRet": 38}]


def test_socket_blocks_af_alg_and_af_vsock_only():
    p = resolve()
    for family in (AF_UNIX, AF_INET, AF_NETLINK, 10, 17, 37, 39, 41, 44):
        assert verdict(p, "socket", family) == ALLOWED, family
    assert verdict(p, "socket", 38) == EPERM  # AF_ALG, CVE-2026-31431
    assert verdict(p, "socket", 40) == EPERM  # AF_VSOCK


def test_personality_only_safe_personas():
    p = resolve()
    for persona in (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF):
        assert verdict(p, "personality", persona) == ALLOWED
    assert verdict(p, "personality", ADDR_NO_RANDOMIZE) == EPERM


def test_ptrace_without_cap_needs_kernel_4_8():
    assert {"ptrace", "process_vm_readv", "process_vm_writev"} <= allowed(resolve())
    assert resolve(kernel=(4, 8))["syscalls"][1]["names"] == ["process_vm_readv",
                                                              "process_vm_writev", "ptrace"]
    old = resolve(kernel=OLD_KERNEL)
    assert not {"ptrace", "process_vm_readv", "process_vm_writev"} & allowed(old)
    assert "ptrace" in allowed(resolve(kernel=(5, 0)))
    assert "ptrace" not in allowed(resolve(kernel=(3, 19)))


def test_allowed_set_matches_mobys_profile():
    p = resolve()
    names = allowed(p)
    # 361 unconditional names + clone, socket, personality (argument rules), ptrace and
    # process_vm_readv/writev (kernel >= 4.8), arch_prctl and modify_ldt (x86), chroot
    # (CAP_SYS_CHROOT is a default cap).
    assert len(sp.ALWAYS_ALLOWED) == 361
    assert len(names) == 370
    assert names - set(sp.ALWAYS_ALLOWED) == {
        "clone", "socket", "personality", "ptrace", "process_vm_readv", "process_vm_writev",
        "arch_prctl", "modify_ldt", "chroot"}
    for name in ("cachestat", "fchmodat2", "futex_waitv", "getxattrat", "map_shadow_stack",
                 "mseal", "statmount", "uretprobe", "riscv_hwprobe", "pkey_mprotect",
                 "landlock_restrict_self", "memfd_secret", "process_mrelease", "_llseek",
                 "io_pgetevents_time64", "close_range"):
        assert name in names, name
    # Rules, in moby's order: the allow-list, ptrace (kernel), 3 x socket, 5 x personality,
    # arch_prctl, modify_ldt, clone (mask), clone3 (ENOSYS), chroot.
    assert [r["names"][0] for r in p["syscalls"]] == [
        "_llseek", "process_vm_readv", "socket", "socket", "socket", "personality",
        "personality", "personality", "personality", "personality", "arch_prctl",
        "modify_ldt", "clone", "clone3", "chroot"]


def test_the_always_groups_do_not_overlap_and_are_sorted_into_one_rule():
    total = sum(len(group) for group in sp._ALWAYS_GROUPS)
    assert total == len(set(sp.ALWAYS_ALLOWED)) == len(sp.ALWAYS_ALLOWED)
    first = docker_format_default()["syscalls"][0]
    assert first == {"names": sorted(sp.ALWAYS_ALLOWED), "action": sp.ALLOW}


def test_output_has_only_oci_fields():
    for caps in (DOCKER_CAPS, DOCKER_CAPS + ["CAP_SYS_ADMIN"]):
        for arch in ("x86_64", "aarch64", "s390x"):
            p = resolve(caps, arch)
            assert set(p) <= {"defaultAction", "defaultErrnoRet", "architectures", "syscalls"}
            for rule in p["syscalls"]:
                assert set(rule) <= {"names", "action", "errnoRet", "args"}
                for arg in rule.get("args", []):
                    assert set(arg) == {"index", "value", "valueTwo", "op"}
    json.dumps(resolve())  # plain JSON data, ready for config.json


# --- capabilities widen the filter -------------------------------------------------------------

def test_cap_sys_admin_allows_mount_namespaces_and_plain_clone():
    p = resolve(extra=["CAP_SYS_ADMIN"])
    names = allowed(p)
    assert {"mount", "umount2", "unshare", "setns", "clone", "clone3", "fsopen", "bpf",
            "perf_event_open", "sethostname", "syslog"} <= names
    assert verdict(p, "clone", SIGCHLD | CLONE_NEWUSER) == ALLOWED
    assert all("args" not in r for r in rules_for(p, "clone"))
    assert verdict(p, "clone3") == ALLOWED  # no ENOSYS rule with the capability
    assert all(r["action"] == sp.ALLOW for r in rules_for(p, "clone3"))


def test_cap_sys_ptrace_allows_tracing_on_any_kernel():
    p = resolve(kernel=OLD_KERNEL, extra=["CAP_SYS_PTRACE"])
    assert {"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
            "process_madvise"} <= allowed(p)


@pytest.mark.parametrize("cap,names", [
    ("CAP_DAC_READ_SEARCH", {"open_by_handle_at"}), ("CAP_SYS_BOOT", {"reboot"}),
    ("CAP_SYS_MODULE", {"init_module", "finit_module", "delete_module"}),
    ("CAP_SYS_PACCT", {"acct"}), ("CAP_SYS_RAWIO", {"iopl", "ioperm"}),
    ("CAP_SYS_TIME", {"settimeofday", "stime", "clock_settime", "clock_settime64"}),
    ("CAP_SYS_TTY_CONFIG", {"vhangup"}), ("CAP_SYSLOG", {"syslog"}), ("CAP_BPF", {"bpf"}),
    ("CAP_PERFMON", {"perf_event_open"}),
    ("CAP_SYS_NICE", {"mbind", "get_mempolicy", "set_mempolicy", "set_mempolicy_home_node"}),
])
def test_each_capability_opens_its_group(cap, names):
    assert not names & allowed(resolve())
    assert names <= allowed(resolve(extra=[cap]))


def test_chroot_follows_cap_sys_chroot_and_caps_may_omit_the_prefix():
    without = [c for c in DOCKER_CAPS if c != "CAP_SYS_CHROOT"]
    assert "chroot" not in allowed(resolve(without))
    assert "mount" in allowed(resolve(without, extra=["sys_admin"]))


def test_no_caps_at_all():
    p = resolve(caps=[])
    assert "chroot" not in allowed(p) and "read" in allowed(p)


# --- architectures ------------------------------------------------------------------------------

@pytest.mark.parametrize("machine,arches", [
    ("x86_64", ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
    ("amd64", ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
    ("aarch64", ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]),
    ("s390x", ["SCMP_ARCH_S390X", "SCMP_ARCH_S390"]),
    ("riscv64", ["SCMP_ARCH_RISCV64"]),
    ("loongarch64", ["SCMP_ARCH_LOONGARCH64"]),
])
def test_architectures_come_from_the_arch_map(machine, arches):
    assert resolve(arch=machine)["architectures"] == arches


@pytest.mark.parametrize("machine", ["ppc64le", "armv7l", "i686", "sparc64"])
def test_architecture_missing_from_the_map_gets_no_list(machine):
    assert "architectures" not in resolve(arch=machine)


def test_arch_specific_rules():
    arm = allowed(resolve(arch="aarch64"))
    assert {"set_tls", "cacheflush", "arm_fadvise64_64", "sync_file_range2"} <= arm
    assert not {"arch_prctl", "modify_ldt"} & arm
    assert "modify_ldt" in allowed(resolve(arch="i686"))
    assert "arch_prctl" not in allowed(resolve(arch="i686"))
    assert {"swapcontext", "sync_file_range2"} <= allowed(resolve(arch="ppc64le"))
    assert "riscv_flush_icache" in allowed(resolve(arch="riscv64"))


def test_s390_clone_flags_are_the_second_argument():
    p = resolve(arch="s390x")
    [rule] = rules_for(p, "clone")
    assert rule["args"][0]["index"] == 1
    assert "s390_runtime_instr" in allowed(p)
    assert all("args" not in r for r in rules_for(resolve(arch="s390x",
                                                          extra=["CAP_SYS_ADMIN"]), "clone"))


def test_defaults_to_this_machine():
    here = default_profile(DOCKER_CAPS)
    assert here["defaultAction"] == "SCMP_ACT_ERRNO" and "read" in allowed(here)


# --- the Docker-format dump ---------------------------------------------------------------------

def test_docker_format_default_round_trips_through_load_profile():
    dumped = json.dumps(docker_format_default())
    for arch in ("x86_64", "aarch64", "s390x"):
        for caps in (DOCKER_CAPS, DOCKER_CAPS + ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"]):
            assert load_profile(dumped, caps, arch, NEW_KERNEL) == resolve(caps, arch)


def test_docker_format_default_is_conditional_and_a_fresh_copy():
    d = docker_format_default()
    assert "architectures" not in d and len(d["archMap"]) == 9
    assert any("includes" in r for r in d["syscalls"])
    assert any("excludes" in r for r in d["syscalls"])
    d["syscalls"].clear()
    assert docker_format_default()["syscalls"]


# --- user profiles ------------------------------------------------------------------------------

def load(profile, caps=DOCKER_CAPS, arch="x86_64", kernel=NEW_KERNEL):
    text = profile if isinstance(profile, str) else json.dumps(profile)
    return load_profile(text, list(caps), arch, kernel, source="/x.json")


def test_minimal_profile():
    p = load({"defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [{"names": ["mount", "umount2"], "action": "SCMP_ACT_ERRNO",
                            "errnoRet": 13}]})
    assert p == {"defaultAction": "SCMP_ACT_ALLOW",
                 "syscalls": [{"names": ["mount", "umount2"], "action": "SCMP_ACT_ERRNO",
                               "errnoRet": 13}]}


def test_old_single_name_form():
    p = load({"defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [{"name": "getcwd", "action": "SCMP_ACT_ERRNO", "args": []},
                           {"name": "", "names": ["chmod"], "action": "SCMP_ACT_LOG"}]})
    assert p["syscalls"] == [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
                             {"names": ["chmod"], "action": "SCMP_ACT_LOG"}]


def test_empty_profile_means_no_seccomp():
    assert load({}) is None
    assert load({"defaultAction": "", "syscalls": []}) is None


def test_architectures_pass_through_and_arch_map_is_resolved():
    listed = load({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"]})
    assert listed == {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"]}
    mapped = {"defaultAction": "SCMP_ACT_ERRNO",
              "archMap": [{"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": None},
                          {"architecture": "SCMP_ARCH_X86_64",
                           "subArchitectures": ["SCMP_ARCH_X86"]}]}
    assert load(mapped)["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert load(mapped, arch="aarch64")["architectures"] == ["SCMP_ARCH_AARCH64"]
    assert "architectures" not in load(mapped, arch="riscv64")


def test_includes_and_excludes_by_caps_arches_and_kernel():
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["a"], "action": "SCMP_ACT_ALLOW",
         "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]}},
        {"names": ["b"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["c"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
        {"names": ["d"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
        {"names": ["e"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.10"}},
        {"names": ["f"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.10"}},
        {"names": ["g"], "action": "SCMP_ACT_ALLOW", "comment": "kept, comment dropped",
         "includes": {}, "excludes": None},
    ]}
    names = lambda p: [r["names"][0] for r in p["syscalls"]]  # noqa: E731
    assert names(load(profile, caps=[], kernel=(5, 9))) == ["b", "f", "g"]
    assert names(load(profile, caps=["CAP_SYS_ADMIN"], kernel=(5, 10))) == ["e", "g"]
    assert names(load(profile, caps=["CAP_SYS_ADMIN", "CAP_NET_ADMIN"], arch="aarch64",
                      kernel=(5, 9))) == ["a", "c", "d", "f", "g"]
    assert names(load(profile, caps=[], kernel=(6, 0))) == ["b", "e", "g"]


def test_pass_through_fields_and_go_style_key_matching():
    p = load({"DefaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
              "flags": ["SECCOMP_FILTER_FLAG_LOG"], "listenerPath": "/run/agent.sock",
              "listenerMetadata": "hello", "x-unknown": True,
              "syscalls": [{"Names": ["ioctl"], "action": "SCMP_ACT_NOTIFY"},
                           {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                            "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]})
    assert p == {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                 "flags": ["SECCOMP_FILTER_FLAG_LOG"], "listenerPath": "/run/agent.sock",
                 "listenerMetadata": "hello",
                 "syscalls": [{"names": ["ioctl"], "action": "SCMP_ACT_NOTIFY"},
                              {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                               "args": [{"index": 0, "value": 8, "valueTwo": 0,
                                         "op": "SCMP_CMP_EQ"}]}]}


def test_empty_min_kernel_reads_as_any_kernel_like_go():
    p = load({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["a"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": ""}},
        {"names": ["b"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": ""}}]})
    assert [r["names"] for r in p["syscalls"]] == [["a"]]


@pytest.mark.parametrize("release,kernel", [("6.1.0-13-amd64", (6, 1)), ("3.12-1-amd64", (3, 12)),
                                            ("4.8rc1", (4, 8)), ("5.15.0", (5, 15)),
                                            ("weird", None), ("6", None), ("6.x", None)])
def test_host_kernel_is_read_like_moby(monkeypatch, release, kernel):
    class Uname:
        machine = "x86_64"
    Uname.release = release
    monkeypatch.setattr(sp.os, "uname", lambda: Uname)
    assert sp._host_kernel() == kernel


def test_unreadable_kernel_release_is_an_error_only_when_asked(monkeypatch):
    class Uname:
        machine, release = "x86_64", "weird"
    monkeypatch.setattr(sp.os, "uname", lambda: Uname)
    ok = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["a"],
                                                           "action": "SCMP_ACT_ALLOW"}]}
    assert load_profile(json.dumps(ok), [])["syscalls"][0]["names"] == ["a"]
    with pytest.raises(SeccompProfileError, match=r"syscalls\[1\]\.includes\.minKernel: "
                       r"cannot read this kernel's version from 'weird'"):
        default_profile(DOCKER_CAPS)
    assert "ptrace" in allowed(default_profile(DOCKER_CAPS, kernel=(6, 1)))


GOOD_RULE = {"names": ["read"], "action": "SCMP_ACT_ALLOW"}


def with_rule(**fields):
    rule = dict(GOOD_RULE)
    rule.update(fields)
    return {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [GOOD_RULE, GOOD_RULE, GOOD_RULE,
                                                            rule]}


@pytest.mark.parametrize("profile,message", [
    ("{not json", "not valid JSON: Expecting property name enclosed in double quotes"),
    ("[1, 2]", "expected a JSON object, got [1, 2]"),
    (with_rule(action="SCMP_ACT_FOO"),
     'syscalls[3].action: "SCMP_ACT_FOO" is not a seccomp action'),
    (with_rule(action=None), "syscalls[3].action: missing: one of SCMP_ACT_ALLOW"),
    (with_rule(names=[]), "syscalls[3].names: no syscall names"),
    (with_rule(names="read"), 'syscalls[3].names: expected a list of strings, got "read"'),
    (with_rule(names=["read", ""]), "syscalls[3].names[1]: empty syscall name"),
    (with_rule(name="read"), 'syscalls[3]: both "name" and "names" are given'),
    (with_rule(errnoRet=-1), "syscalls[3].errnoRet: expected an integer from 0 to"),
    (with_rule(args=[{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]),
     'syscalls[3].args[0].op: "SCMP_CMP_LIKE" is not a comparison'),
    (with_rule(args=[{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]),
     "syscalls[3].args[0].index: expected an integer from 0 to 5, got 6"),
    (with_rule(args=[{"index": 0, "value": 1.5, "op": "SCMP_CMP_EQ"}]),
     "syscalls[3].args[0].value: expected an integer from 0 to 18446744073709551615, got 1.5"),
    (with_rule(args=[{"index": 0, "value": 2 ** 64, "op": "SCMP_CMP_EQ"}]),
     "syscalls[3].args[0].value: expected an integer"),
    (with_rule(args={"index": 0}), "syscalls[3].args: expected a list of argument conditions"),
    (with_rule(includes={"minKernel": "4"}),
     'syscalls[3].includes.minKernel: "4" is not a kernel version'),
    (with_rule(excludes={"minKernel": "0.0"}),
     "syscalls[3].excludes.minKernel: kernel version cannot be 0.0"),
    (with_rule(includes={"caps": "CAP_SYS_ADMIN"}),
     "syscalls[3].includes.caps: expected a list of strings"),
    (with_rule(excludes=["CAP_SYS_ADMIN"]), "syscalls[3].excludes: expected an object"),
    (with_rule(action="SCMP_ACT_NOTIFY"),
     'syscalls[3].action: SCMP_ACT_NOTIFY needs "listenerPath"'),
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/s", "syscalls": [
        {"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]},
     'syscalls[0].names: SCMP_ACT_NOTIFY cannot cover "write"'),
    ({"defaultAction": "SCMP_ACT_NOTIFY"}, "defaultAction: SCMP_ACT_NOTIFY cannot be the default"),
    ({"defaultAction": "ALLOW"}, 'defaultAction: "ALLOW" is not a seccomp action'),
    ({"syscalls": [GOOD_RULE]}, "defaultAction: missing"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": "1"},
     'defaultErrnoRet: expected an integer from 0 to 18446744073709551615, got "1"'),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": {"names": ["read"]}},
     "syscalls: expected a list of rules"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": ["read"]},
     'syscalls[0]: expected an object, got "read"'),
    ({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
      "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]},
     'archMap: both "architectures" and "archMap" are given'),
    ({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["x86_64"]},
     'architectures[0]: "x86_64" is not a seccomp architecture'),
    ({"defaultAction": "SCMP_ACT_ERRNO", "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                                                      "subArchitectures": ["i386"]}]},
     'archMap[0].subArchitectures[0]: "i386" is not a seccomp architecture'),
    ({"defaultAction": "SCMP_ACT_ERRNO", "archMap": {"architecture": "SCMP_ARCH_X86_64"}},
     "archMap: expected a list"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "flags": "SECCOMP_FILTER_FLAG_LOG"},
     "flags: expected a list of strings"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": 7},
     "listenerPath: expected a string, got 7"),
])
def test_every_error_is_one_line_naming_source_and_field(profile, message):
    with pytest.raises(MinirunError) as info:
        load(profile)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("seccomp profile /x.json: ")
    assert message in text, text
    assert info.value.exit_code == 125


def test_the_briefs_example_message_exactly():
    with pytest.raises(SeccompProfileError) as info:
        load(with_rule(action="SCMP_ACT_FOO"))
    assert str(info.value).startswith(
        'seccomp profile /x.json: syscalls[3].action: "SCMP_ACT_FOO" is not a seccomp action')


def test_bad_rules_are_reported_even_when_their_conditions_drop_them():
    bad = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["a"], "action": "SCMP_ACT_BAD", "includes": {"caps": ["CAP_SYS_ADMIN"]}}]}
    with pytest.raises(SeccompProfileError, match=r"syscalls\[0\]\.action"):
        load(bad, caps=[])
