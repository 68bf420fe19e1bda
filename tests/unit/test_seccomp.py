"""The seccomp compiler (minirun/kernel/seccomp.py), without root: every program is run by the
module's own BPF interpreter, checked against a direct reading of the rules, and, where
libseccomp is installed, against the program libseccomp builds from the same rules."""

from __future__ import annotations

import ctypes
import ctypes.util
import random

import pytest

from bpfexport import export_bpf
from minirun.errors import ConfigError
from minirun.kernel import seccomp as sc
from minirun.kernel.syscall_table import X32, X86, X86_64

ARCH3 = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
X64 = sc.AUDIT_ARCH_X86_64
I386 = sc.AUDIT_ARCH_I386


def compiled(profile: dict):
    return sc.compile_filter(profile, "x86_64")


def verdict(flt, name_or_nr, args=(), arch=X64, table=X86_64, x32=False) -> int:
    nr = table[name_or_nr] if isinstance(name_or_nr, str) else name_or_nr
    return sc.run(flt.program, nr | (sc.X32_SYSCALL_BIT if x32 else 0), arch, args)


ERRNO = lambda e: sc.RET_ERRNO | e  # noqa: E731


# --- validation: one line naming the field -----------------------------------------------------------


@pytest.mark.parametrize("profile,field", [
    ({}, "linux.seccomp.defaultAction: is required"),
    ({"defaultAction": "SCMP_ACT_NOPE"}, "linux.seccomp.defaultAction"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": -1}, "defaultErrnoRet"),
    ({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}, "cannot be the default"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]},
     "linux.seccomp.architectures[0]"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FAST"]},
     "linux.seccomp.flags[0]"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]},
     "linux.seccomp.syscalls[0].names"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "X"}]},
     "linux.seccomp.syscalls[0].action"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "op": "SCMP_CMP_EQ"}]}]},
     "linux.seccomp.syscalls[0].args[0].index"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "op": "SCMP_CMP_ABOUT"}]}]},
     "linux.seccomp.syscalls[0].args[0].op"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "op": "SCMP_CMP_EQ", "value": -5}]}]},
     "linux.seccomp.syscalls[0].args[0].value"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]},
     "linux.seccomp.listenerPath"),
])
def test_bad_profiles_name_the_field(profile, field):
    with pytest.raises(ConfigError) as e:
        compiled(profile)
    assert field in str(e.value) and "\n" not in str(e.value)


def test_unknown_syscall_names_are_skipped_like_runc():
    flt = compiled({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["no_such_call", "getpid"], "action": "SCMP_ACT_ERRNO"}]})
    assert verdict(flt, "getpid") == ERRNO(1)
    assert verdict(flt, "getppid") == sc.RET_ALLOW


# --- actions, architectures and the ENOSYS rule ------------------------------------------------------


def test_actions_and_errno_values():
    flt = compiled({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["write"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["close"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"names": ["kill"], "action": "SCMP_ACT_KILL"},
        {"names": ["tkill"], "action": "SCMP_ACT_KILL_PROCESS"},
        {"names": ["tgkill"], "action": "SCMP_ACT_KILL_THREAD"},
        {"names": ["getpid"], "action": "SCMP_ACT_TRAP"},
        {"names": ["getppid"], "action": "SCMP_ACT_LOG"},
        {"names": ["getuid"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
    ]})
    assert verdict(flt, "read") == sc.RET_ALLOW
    assert verdict(flt, "write") == ERRNO(1)  # errnoRet defaults to EPERM
    assert verdict(flt, "close") == ERRNO(13)
    assert verdict(flt, "kill") == sc.RET_KILL_THREAD
    assert verdict(flt, "tkill") == sc.RET_KILL_PROCESS
    assert verdict(flt, "tgkill") == sc.RET_KILL_THREAD
    assert verdict(flt, "getpid") == sc.RET_TRAP
    assert verdict(flt, "getppid") == sc.RET_LOG
    assert verdict(flt, "getuid") == sc.RET_TRACE | 7
    assert verdict(flt, "openat") == ERRNO(38)  # defaultErrnoRet


def test_calls_through_another_abi_are_killed_unless_listed():
    rules = [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]
    native_only = compiled({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules})
    assert verdict(native_only, "getpid") == sc.RET_ALLOW
    # i386's getpid is 20 (x86_64's 20 is writev): the arch test stops the confusion
    assert verdict(native_only, "getpid", arch=I386, table=X86) == sc.RET_KILL_THREAD
    assert verdict(native_only, "getpid", table=X32, x32=True) == sc.RET_KILL_THREAD
    assert verdict(native_only, 0, arch=sc.AUDIT_ARCH_AARCH64) == sc.RET_KILL_THREAD
    three = compiled({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ARCH3, "syscalls": rules})
    assert verdict(three, "getpid", arch=I386, table=X86) == sc.RET_ALLOW
    assert verdict(three, "write", arch=I386, table=X86) == ERRNO(1)
    assert verdict(three, "getpid", table=X32, x32=True) == sc.RET_ALLOW
    assert verdict(three, "read", table=X32, x32=True) == ERRNO(1)


def test_syscalls_newer_than_the_profile_get_enosys_unless_the_default_allows():
    deny = compiled({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read", "openat"], "action": "SCMP_ACT_ALLOW"}]})
    assert verdict(deny, 400) == ERRNO(38)  # above openat (257): "no such call", try another
    assert verdict(deny, 200) == ERRNO(1)  # below it: refused
    allow = compiled({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO"}]})
    assert verdict(allow, 400) == sc.RET_ALLOW


def test_native_architecture_is_always_filtered_and_unknown_machines_refused():
    flt = sc.compile_filter({"defaultAction": "SCMP_ACT_ERRNO",
                             "architectures": ["SCMP_ARCH_AARCH64"]}, "aarch64")
    assert sc.run(flt.program, 63, sc.AUDIT_ARCH_AARCH64) == ERRNO(1)
    with pytest.raises(ConfigError, match="no syscall table for riscv64"):
        sc.compile_filter({"defaultAction": "SCMP_ACT_ALLOW"}, "riscv64")


def test_flags_and_notify():
    flt = compiled({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG",
                                                                  "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]})
    assert flt.flags == 2 | 4 and not flt.notify
    flt = compiled({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/l.sock",
                    "listenerMetadata": "m", "syscalls": [
                        {"names": ["mkdirat"], "action": "SCMP_ACT_NOTIFY"}]})
    assert flt.notify and flt.flags & sc.FLAG_NEW_LISTENER
    assert (flt.listener_path, flt.listener_metadata) == ("/run/l.sock", "m")
    assert verdict(flt, "mkdirat") == sc.RET_USER_NOTIF


# --- argument conditions: every operator, 64-bit values, against a direct reading ---------------------


def reference(profile: dict, nr_name: str, args: tuple) -> int:
    """What the rules say, read directly: conditional rules first, in order, then a plain one."""
    rules = [s for s in profile["syscalls"] if nr_name in s["names"]]
    ordered = [r for r in rules if r.get("args")] + [r for r in rules if not r.get("args")][:1]
    for r in ordered:
        conds = r.get("args") or []
        indexes = [c["index"] for c in conds]
        groups = [[c] for c in conds] if len(set(indexes)) < len(indexes) else [conds]
        for g in groups:
            if all(holds(c, args) for c in g):
                return sc.ACTIONS[r["action"]] | (r.get("errnoRet", 1)
                                                   if r["action"] == "SCMP_ACT_ERRNO" else 0)
    return sc.RET_ALLOW


def holds(c: dict, args: tuple) -> bool:
    a, v, two = args[c["index"]], c.get("value", 0), c.get("valueTwo", 0)
    return {"SCMP_CMP_NE": a != v, "SCMP_CMP_LT": a < v, "SCMP_CMP_LE": a <= v,
            "SCMP_CMP_EQ": a == v, "SCMP_CMP_GE": a >= v, "SCMP_CMP_GT": a > v,
            "SCMP_CMP_MASKED_EQ": a & v == two}[c["op"]]


INTERESTING = [0, 1, 2, 7, 0xFFFFFFFF, 1 << 32, (1 << 32) + 7, (1 << 63), (1 << 64) - 1,
               0x7E020000, 0x10000000, 0x20011, 5 << 32]


def test_every_operator_on_64_bit_values_matches_the_rules():
    rng = random.Random(7)
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}
    names = ["read", "write", "close", "fstat", "lseek", "mmap", "mprotect"]
    for name, op in zip(names, sc.OPS):
        for _ in range(3):
            conds = [{"index": rng.randrange(3), "op": op, "value": rng.choice(INTERESTING),
                      "valueTwo": rng.choice(INTERESTING)}]
            if rng.random() < 0.5:
                conds.append({"index": 3 + rng.randrange(3), "op": rng.choice(sc.OPS),
                              "value": rng.choice(INTERESTING), "valueTwo": rng.choice(INTERESTING)})
            profile["syscalls"].append({"names": [name], "action": "SCMP_ACT_ERRNO",
                                        "errnoRet": rng.randrange(1, 100), "args": conds})
    # two conditions on one argument in one entry: alternatives (runc's reading)
    profile["syscalls"].append({"names": ["brk"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5, "args": [
        {"index": 0, "op": "SCMP_CMP_EQ", "value": 1}, {"index": 0, "op": "SCMP_CMP_EQ", "value": 2}]})
    flt = compiled(profile)
    for name in names + ["brk"]:
        for _ in range(400):
            args = tuple(rng.choice(INTERESTING + [rng.randrange(1 << 64)]) for _ in range(6))
            assert verdict(flt, name, args) == reference(profile, name, args), (name, args)


def test_32_bit_abi_compares_the_low_word_only():
    flt = compiled({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ARCH3, "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "op": "SCMP_CMP_EQ", "value": 8}]}]})
    assert verdict(flt, "personality", (8,), arch=I386, table=X86) == ERRNO(1)
    assert verdict(flt, "personality", (9,), arch=I386, table=X86) == sc.RET_ALLOW
    assert verdict(flt, "personality", ((1 << 32) | 8,)) == sc.RET_ALLOW  # 64-bit: all of it


def test_a_plain_rule_after_conditional_ones_is_their_fallback():
    flt = compiled({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97,
         "args": [{"index": 0, "op": "SCMP_CMP_EQ", "value": 40}]}]})  # AF_VSOCK
    assert verdict(flt, "socket", (40,)) == ERRNO(97)
    assert verdict(flt, "socket", (2,)) == sc.RET_ALLOW


def test_disassembly_reads_like_the_kernel_docs():
    flt = compiled({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]})
    text = "\n".join(sc.disassemble(flt.program))
    assert "ld   [arch]" in text and "ld   [nr]" in text and "ret  ALLOW" in text
    assert "ERRNO(Function not implemented)" in text  # the ENOSYS rule
    assert flt.length == len(flt.program) // 8 < 40


def test_too_long_programs_are_refused():
    many = [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "op": "SCMP_CMP_EQ", "value": i}]} for i in range(80)]
    with pytest.raises(ConfigError, match="too many rules"):
        compiled({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": many})


# --- libseccomp as an oracle ---------------------------------------------------------------------------


def _libseccomp():
    name = ctypes.util.find_library("seccomp")
    if not name:
        pytest.skip("libseccomp is not installed: no oracle to compare with")
    return ctypes.CDLL(name)


def libseccomp_program(profile: dict) -> bytes:
    """Build the same rules with libseccomp (as runc does) and export its BPF."""
    lib = _libseccomp()
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]

    class ArgCmp(ctypes.Structure):
        _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                    ("datum_b", ctypes.c_uint64)]

    ops = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
           "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
    arch_tokens = {"SCMP_ARCH_X86_64": 0xC000003E, "SCMP_ARCH_X86": 0x40000003,
                   "SCMP_ARCH_X32": 0x4000003E}

    def action(name: str, errno: int | None) -> int:
        base = sc.ACTIONS[name]
        return base | (errno if errno is not None else 1) if base in (sc.RET_ERRNO,) else base

    ctx = ctypes.c_void_p(lib.seccomp_init(ctypes.c_uint32(action(
        profile["defaultAction"], profile.get("defaultErrnoRet")))))
    try:
        for a in profile.get("architectures", []):
            if a != "SCMP_ARCH_X86_64":
                assert lib.seccomp_arch_add(ctx, ctypes.c_uint32(arch_tokens[a])) == 0
        for s in profile["syscalls"]:
            act = action(s["action"], s.get("errnoRet"))
            for name in s["names"]:
                nr = lib.seccomp_syscall_resolve_name(name.encode())
                conds = s.get("args") or []
                arr = (ArgCmp * max(len(conds), 1))(*[
                    ArgCmp(c["index"], ops[c["op"]], c.get("value", 0), c.get("valueTwo", 0))
                    for c in conds])
                rc = lib.seccomp_rule_add_array(ctx, ctypes.c_uint32(act), nr,
                                                ctypes.c_uint(len(conds)), arr)
                assert rc in (0, -17), (name, rc)  # -EEXIST: the same rule again
        return export_bpf(lib, ctx)
    finally:
        lib.seccomp_release(ctx)


def test_same_verdicts_as_libseccomp_for_an_allow_list_with_argument_rules():
    allow = ["read", "write", "openat", "close", "fstat", "mmap", "mprotect", "munmap", "brk",
             "rt_sigaction", "rt_sigprocmask", "ioctl", "pread64", "getpid", "execve", "exit",
             "exit_group", "wait4", "kill", "uname", "fcntl", "getcwd", "chdir", "getuid",
             "getgid", "setuid", "setgid", "prctl", "arch_prctl", "futex", "set_tid_address",
             "clock_gettime", "epoll_wait", "tgkill", "pipe2", "dup3", "prlimit64", "getrandom"]
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ARCH3, "syscalls": [
        {"names": allow, "action": "SCMP_ACT_ALLOW"}] + [
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "op": "SCMP_CMP_EQ", "value": v}]} for v in (0, 8, 0x20000)
    ] + [
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "op": "SCMP_CMP_MASKED_EQ", "value": 0x7E020000, "valueTwo": 0}]},
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97,
         "args": [{"index": 0, "op": "SCMP_CMP_EQ", "value": 40}]},
        {"names": ["mount", "unshare"], "action": "SCMP_ACT_KILL_PROCESS"},
        {"names": ["lseek"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 2, "op": "SCMP_CMP_LE", "value": 2}]},
        {"names": ["madvise"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 1, "op": "SCMP_CMP_GT", "value": (1 << 32) + 5}]},
    ]}
    ours = compiled(profile)
    theirs = libseccomp_program(profile)
    rng = random.Random(1)
    vectors = [()] + [tuple(rng.choice(INTERESTING) for _ in range(6)) for _ in range(12)]
    for arch, table, x32 in ((X64, X86_64, False), (I386, X86, False), (X64, X32, True)):
        highest = max(table[n] for n in allow + ["personality", "clone", "socket", "mount",
                                                  "unshare", "lseek", "madvise"] if n in table)
        for nr in range(0, highest + 1):
            if arch == I386 and nr in (102, 117):
                continue  # socketcall/ipc: libseccomp also filters their multiplexed forms
            full = nr | (sc.X32_SYSCALL_BIT if x32 else 0)
            for args in vectors:
                assert sc.run(ours.program, full, arch, args) == \
                    sc.run(theirs, full, arch, args), (hex(arch), nr, args)
