"""socketcall(2) and ipc(2) on the 32-bit x86 ABI: a rule on a socket or System V IPC call also
acts on its multiplexed form, as libseccomp does (issue 21)."""

from __future__ import annotations

import ctypes
import ctypes.util

import pytest

from bpfexport import export_bpf
from minirun.engine import seccomp_profile as sp
from minirun.kernel import seccomp as sc
from minirun.kernel.syscall_table import X32, X86, X86_64

ARCH3 = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
X64, I386 = sc.AUDIT_ARCH_X86_64, sc.AUDIT_ARCH_I386
SOCKETCALL, IPC = 102, 117
SYS_SOCKET, SYS_CONNECT, SYS_ACCEPT = 1, 3, 5
SEMOP, SHMGET = 1, 23
ALLOW, KILL = sc.RET_ALLOW, sc.RET_KILL_PROCESS
ERRNO = lambda e: sc.RET_ERRNO | e  # noqa: E731
DOCKER_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
               "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
               "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


def compiled(profile: dict) -> bytes:
    return sc.compile_filter(profile, "x86_64").program


def x86(prog: bytes, nr: int, *args: int) -> int:
    return sc.run(prog, nr, I386, args)


def rule(names, action="SCMP_ACT_ERRNO", errno=None, args=None) -> dict:
    r = {"names": list(names), "action": action}
    if errno is not None:
        r["errnoRet"] = errno
    if args:
        r["args"] = [{"index": i, "op": op, "value": v} for i, op, v in args]
    return r


def profile(default, *rules) -> dict:
    return {"defaultAction": default, "architectures": ARCH3, "syscalls": list(rules)}


def test_docker_default_allows_socketcall_socket_where_socket_is_allowed():
    prog = compiled(sp.default_profile(DOCKER_CAPS, "x86_64", (6, 1)))
    for family in (1, 2, 10, 16, 17, 39, 41):  # unix, inet, inet6, netlink, packet, ...
        assert x86(prog, X86["socket"], family) == ALLOW
        assert x86(prog, SOCKETCALL, SYS_SOCKET, 0xFFD0_0000) == ALLOW
    for sub in range(1, 21):  # every socket call: the profile allows socketcall by name
        assert x86(prog, SOCKETCALL, sub) == ALLOW
    for sub in (1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24):
        assert x86(prog, IPC, sub) == ALLOW
    # The direct calls keep their argument rules: AF_ALG and AF_VSOCK are refused there. Through
    # socketcall the family is in memory, out of the filter's reach (libseccomp: the same).
    assert x86(prog, X86["socket"], 40) == ERRNO(1)
    assert x86(prog, X86["socket"], 38) == ERRNO(1)


def test_denying_connect_denies_socketcall_connect_on_x86_only():
    prog = compiled(profile("SCMP_ACT_ALLOW", rule(["connect"], errno=111)))
    assert x86(prog, SOCKETCALL, SYS_CONNECT, 0x1000) == ERRNO(111)
    assert x86(prog, X86["connect"]) == ERRNO(111)
    assert x86(prog, SOCKETCALL, SYS_SOCKET) == ALLOW
    assert x86(prog, SOCKETCALL, SYS_CONNECT | 1 << 8) == ALLOW  # not a sub-call: EINVAL
    assert sc.run(prog, X86_64["connect"], X64) == ERRNO(111)
    assert sc.run(prog, X32["connect"] | sc.X32_SYSCALL_BIT, X64) == ERRNO(111)
    # 102 is getuid on x86_64 and x32 (which have no socketcall): untouched.
    assert sc.run(prog, SOCKETCALL, X64, (SYS_CONNECT,)) == ALLOW
    assert sc.run(prog, SOCKETCALL | sc.X32_SYSCALL_BIT, X64, (SYS_CONNECT,)) == ALLOW


def test_denying_shmget_denies_ipc_shmget_whatever_its_version_bits():
    prog = compiled(profile("SCMP_ACT_ALLOW", rule(["shmget"])))
    assert x86(prog, IPC, SHMGET) == ERRNO(1)
    assert x86(prog, IPC, SHMGET | 1 << 16) == ERRNO(1)  # the kernel reads call & 0xffff
    assert x86(prog, X86["shmget"]) == ERRNO(1)
    assert x86(prog, IPC, SEMOP) == ALLOW and x86(prog, IPC, 24) == ALLOW
    assert sc.run(prog, IPC, X64, (SHMGET,)) == ALLOW  # x86_64's 117: setresuid


def test_allow_lists_and_kill_reach_the_sub_calls_too():
    prog = compiled(profile("SCMP_ACT_ERRNO", rule(["socket", "accept", "semop"], "SCMP_ACT_ALLOW"),
                            rule(["bind"], "SCMP_ACT_KILL_PROCESS")))
    assert x86(prog, SOCKETCALL, SYS_SOCKET) == ALLOW
    assert x86(prog, SOCKETCALL, SYS_ACCEPT) == ALLOW  # accept: only socketcall on i386
    assert x86(prog, IPC, SEMOP) == ALLOW              # semop: only ipc on i386
    assert x86(prog, SOCKETCALL, 2) == KILL
    assert x86(prog, SOCKETCALL, SYS_CONNECT) == ERRNO(1)
    assert x86(prog, IPC, SHMGET) == ERRNO(1)


def test_argument_conditions_follow_libseccomp():
    # A condition on argument 0 gives way to the sub-call test (the family is in memory);
    # conditions on arguments 1-5 stay, compared with socketcall's own registers.
    prog = compiled(profile("SCMP_ACT_ERRNO",
                            rule(["socket"], "SCMP_ACT_ALLOW", args=[(0, "SCMP_CMP_LT", 38)]),
                            rule(["connect"], "SCMP_ACT_ALLOW", args=[(1, "SCMP_CMP_EQ", 5)])))
    assert x86(prog, SOCKETCALL, SYS_SOCKET, 0x1234) == ALLOW
    assert x86(prog, X86["socket"], 40) == ERRNO(1)
    assert x86(prog, SOCKETCALL, SYS_CONNECT, 5) == ALLOW
    assert x86(prog, SOCKETCALL, SYS_CONNECT, 6) == ERRNO(1)


def test_a_plain_rule_naming_the_multiplexer_decides_for_every_sub_call():
    deny = rule(["connect"], errno=111)
    for rules in ([rule(["socketcall"], "SCMP_ACT_ALLOW"), deny],
                  [deny, rule(["socketcall"], "SCMP_ACT_ALLOW")]):
        prog = compiled(profile("SCMP_ACT_ERRNO", *rules))
        assert x86(prog, SOCKETCALL, SYS_CONNECT) == ALLOW  # libseccomp: the same, both orders
        assert x86(prog, X86["connect"]) == ERRNO(111)
    prog = compiled(profile("SCMP_ACT_ALLOW", deny, rule(["socketcall"], "SCMP_ACT_KILL_PROCESS")))
    assert x86(prog, SOCKETCALL, SYS_CONNECT) == KILL
    # A conditional rule on socketcall is an exception like any other; the first one that
    # matches decides, in the profile's order.
    prog = compiled(profile("SCMP_ACT_ALLOW", rule(["connect"], errno=111),
                            rule(["socketcall"], errno=5, args=[(0, "SCMP_CMP_EQ", 3)]),
                            rule(["socketcall"], errno=6, args=[(0, "SCMP_CMP_EQ", 2)])))
    assert x86(prog, SOCKETCALL, SYS_CONNECT) == ERRNO(111)
    assert x86(prog, SOCKETCALL, 2) == ERRNO(6)
    # A rule with the default action is no rule (libseccomp refuses it, runc skips it).
    prog = compiled(profile("SCMP_ACT_ERRNO", rule(["connect"]),
                            rule(["socketcall"], "SCMP_ACT_ALLOW",
                                 args=[(1, "SCMP_CMP_NE", 0)])))
    assert x86(prog, SOCKETCALL, SYS_CONNECT, 8) == ALLOW


# --- libseccomp as the oracle ---------------------------------------------------------------


def libseccomp_program(prof: dict) -> bytes:
    """The same profile through libseccomp, as runc feeds it (names it cannot resolve and rules
    with the default action skipped), exported as BPF."""
    name = ctypes.util.find_library("seccomp")
    if not name:
        pytest.skip("libseccomp is not installed: no oracle to compare with")
    lib = ctypes.CDLL(name)
    lib.seccomp_init.restype = ctypes.c_void_p

    class ArgCmp(ctypes.Structure):
        _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                    ("datum_b", ctypes.c_uint64)]

    ops = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
           "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
    tokens = {"SCMP_ARCH_X86": 0x40000003, "SCMP_ARCH_X32": 0x4000003E}

    def action(name: str, errno: int | None) -> int:
        base = sc.ACTIONS[name]
        return base | (1 if errno is None else errno) if base == sc.RET_ERRNO else base

    default = action(prof["defaultAction"], prof.get("defaultErrnoRet"))
    ctx = ctypes.c_void_p(lib.seccomp_init(ctypes.c_uint32(default)))
    try:
        for a in prof.get("architectures", []):
            if a in tokens:
                assert lib.seccomp_arch_add(ctx, ctypes.c_uint32(tokens[a])) == 0
        for s in prof["syscalls"]:
            act = action(s["action"], s.get("errnoRet"))
            if act == default:
                continue
            conds = s.get("args") or []
            groups = [conds]
            if len({c["index"] for c in conds}) < len(conds):
                groups = [[c] for c in conds]  # runc: same-index conditions are alternatives
            for names in s["names"]:
                nr = lib.seccomp_syscall_resolve_name(names.encode())
                if nr == -1:
                    continue
                for g in groups:
                    arr = (ArgCmp * max(len(g), 1))(*[
                        ArgCmp(c["index"], ops[c["op"]], c.get("value", 0), c.get("valueTwo", 0))
                        for c in g])
                    rc = lib.seccomp_rule_add_array(ctx, ctypes.c_uint32(act), nr,
                                                    ctypes.c_uint(len(g)), arr)
                    assert rc in (0, -17), (names, rc)
        return export_bpf(lib, ctx)
    finally:
        lib.seccomp_release(ctx)


ORACLE_PROFILES = {
    "docker-default": sp.default_profile(DOCKER_CAPS, "x86_64", (6, 1)),
    "deny-connect-shmget": profile("SCMP_ACT_ALLOW", rule(["connect"], errno=111),
                                   rule(["shmget", "msgsnd"], "SCMP_ACT_KILL_PROCESS")),
    "allow-list": profile("SCMP_ACT_ERRNO",
                          rule(["read", "write", "socket", "accept", "sendto", "semop", "shmat"],
                               "SCMP_ACT_ALLOW"),
                          rule(["connect"], "SCMP_ACT_ALLOW", args=[(1, "SCMP_CMP_GT", 7)]),
                          rule(["bind"], "SCMP_ACT_ERRNO", errno=13)),
    "explicit-socketcall": profile("SCMP_ACT_ERRNO", rule(["connect"], errno=111),
                                   rule(["socketcall", "ipc"], "SCMP_ACT_ALLOW")),
}


@pytest.mark.parametrize("name", sorted(ORACLE_PROFILES))
def test_same_verdicts_as_libseccomp_on_the_multiplexers(name):
    prof = ORACLE_PROFILES[name]
    ours, theirs = compiled(prof), libseccomp_program(prof)
    for nr, subs in ((SOCKETCALL, range(0, 23)), (IPC, range(0, 26))):
        for sub in subs:
            for rest in ((), (0,), (5,), (8, 1), (0xFFFF_FFFF,)):
                args = (sub, *rest)
                assert x86(ours, nr, *args) == x86(theirs, nr, *args), (name, nr, args)
    for n in ("socket", "connect", "bind", "accept4", "shmget", "semget", "msgsnd", "getuid"):
        mine = x86(ours, X86[n], 2, 8)
        if mine != ERRNO(38):  # ENOSYS above the profile's highest call: runc's stub, ours too
            assert mine == x86(theirs, X86[n], 2, 8), (name, n)
