"""Seccomp: a small program the kernel runs on every system call the container makes.

After seccomp(SECCOMP_SET_MODE_FILTER, ...) the kernel hands each system call of this process
(and of every child, through fork and execve, for good: a filter can never be removed) to a
classic-BPF program. The program sees only `struct seccomp_data`:

    offset 0   int   nr                   the syscall number (per architecture!)
    offset 4   u32   arch                 AUDIT_ARCH_*: which ABI the call came through
    offset 8   u64   instruction_pointer
    offset 16  u64   args[6]              raw register values, 8 bytes each (little endian:
                                          the low 32 bits first)

and returns an action: ALLOW, ERRNO(n) (the call fails with errno n, never reaching the kernel
proper), KILL the thread or the process, TRAP (SIGSYS), TRACE (ask a ptracer), LOG, or
USER_NOTIF (ask a supervisor process listening on a file descriptor).

This module compiles runtime-spec's `linux.seccomp` (names, actions, argument conditions) into
that program -- no libseccomp: the whole compiler is here to be read. The program's shape:

    ld arch ─┬─ x86_64 ──▶ ld nr; x32 bit set? ─▶ the x32 section (or the bad-arch action)
             ├─ i386   ──▶ ld nr; ...
             └─ other  ──▶ ret KILL               (an ABI the profile does not cover)
    per section:  nr > the highest syscall the profile names?  ret ERRNO(ENOSYS)
                  then the syscalls in ascending order: runs of consecutive numbers with the
                  same action are one range test; a syscall with argument conditions gets a
                  block of rules, each a chain of 32-bit compares (BPF has no 64-bit ones)
                  ret defaultAction

Why ENOSYS for unknown, newer syscalls (runc does the same): a program built for a newer kernel
probes a new call and falls back when it gets ENOSYS; EPERM would make it give up.
Why the architecture test (CVE-2016-2383 class): the same number means another call on another
ABI (x86_64's 59 is execve, i386's 59 is oldolduname), so a filter that skips the arch check can
be bypassed by switching to the 32-bit ABI (int 0x80).
"""

from __future__ import annotations

import os
import struct

from ..errors import ConfigError
from . import syscall_table

# Return values (linux/seccomp.h): the high 16 bits are the action, the low 16 its data.
RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_USER_NOTIF = 0x7FC00000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000

ACTIONS: dict[str, int] = {
    "SCMP_ACT_KILL": RET_KILL_THREAD, "SCMP_ACT_KILL_THREAD": RET_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": RET_KILL_PROCESS, "SCMP_ACT_TRAP": RET_TRAP,
    "SCMP_ACT_ERRNO": RET_ERRNO, "SCMP_ACT_TRACE": RET_TRACE, "SCMP_ACT_LOG": RET_LOG,
    "SCMP_ACT_ALLOW": RET_ALLOW, "SCMP_ACT_NOTIFY": RET_USER_NOTIF,
}
# Actions under which an unknown syscall should still run (runc: a tracer or a log-only
# profile handles newer calls itself): no ENOSYS stub for those defaults.
_ALLOW_LIKE = ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE")

OPS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
       "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ")

FLAGS: dict[str, int] = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}
FLAG_NEW_LISTENER = 8

# AUDIT_ARCH_* values (linux/audit.h): EM_* machine | 64-bit | little-endian bits.
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
AUDIT_ARCH_AARCH64 = 0xC00000B7
X32_SYSCALL_BIT = 0x40000000

# runtime-spec architecture name -> (AUDIT_ARCH value, syscall table name in syscall_table.py,
# 64-bit arguments?). Names we have no table for are valid but cannot be filtered (skipped, said in
# --trace); the native one must be among those we have.
ARCHES: dict[str, tuple[int, str, bool] | None] = {
    "SCMP_ARCH_X86_64": (AUDIT_ARCH_X86_64, "X86_64", True),
    "SCMP_ARCH_X86": (AUDIT_ARCH_I386, "X86", False),
    "SCMP_ARCH_X32": (AUDIT_ARCH_X86_64, "X32", False),  # 32-bit longs: low words only
    "SCMP_ARCH_AARCH64": (AUDIT_ARCH_AARCH64, "AARCH64", True),
    **{n: None for n in (
        "SCMP_ARCH_ARM", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32",
        "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
        "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X",
        "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64",
        "SCMP_ARCH_M68K", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB")},
}
NATIVE = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}

EPERM, ENOSYS = 1, 38
MAX_INSNS = 4096  # BPF_MAXINSNS: the kernel refuses longer programs

# Classic BPF opcodes (linux/filter.h): class | size | mode, or class | op | source.
LD_W_ABS = 0x20   # A = *(u32 *)(seccomp_data + k)
ALU_AND_K = 0x54  # A &= k
JMP_JA = 0x05     # pc += k
JMP_JEQ = 0x15    # pc += (A == k) ? jt : jf
JMP_JGT = 0x25    # pc += (A > k) ? jt : jf     (unsigned)
JMP_JGE = 0x35    # pc += (A >= k) ? jt : jf
JMP_JSET = 0x45   # pc += (A & k) ? jt : jf
RET_K = 0x06      # return k

OFF_NR, OFF_ARCH, OFF_ARGS = 0, 4, 16


# The multiplexers of the 32-bit x86 ABI (AUDIT_ARCH_I386): before Linux 4.3 every socket call
# went through socketcall(2) (102) and every System V IPC call still may go through ipc(2) (117),
# the sub-call in the first argument (linux/net.h SYS_*, linux/ipc.h). A rule on `connect` that
# ignored them would be bypassed by socketcall(SYS_CONNECT, args) with int 0x80. accept, send,
# recv, semop and semtimedop exist on i386 only in this form. x86_64 and x32 have neither
# multiplexer: x32 uses x86_64's direct numbers (| the x32 bit), so this table is i386's only.
SOCKETCALL_NR, IPC_NR = 102, 117
SOCKETCALL_SUBCALLS = {
    "socket": 1, "bind": 2, "connect": 3, "listen": 4, "accept": 5, "getsockname": 6,
    "getpeername": 7, "socketpair": 8, "send": 9, "recv": 10, "sendto": 11, "recvfrom": 12,
    "shutdown": 13, "setsockopt": 14, "getsockopt": 15, "sendmsg": 16, "recvmsg": 17,
    "accept4": 18, "recvmmsg": 19, "sendmmsg": 20}
IPC_SUBCALLS = {
    "semop": 1, "semget": 2, "semctl": 3, "semtimedop": 4, "msgsnd": 11, "msgrcv": 12,
    "msgget": 13, "msgctl": 14, "shmat": 21, "shmdt": 22, "shmget": 23, "shmctl": 24}


class Rule:
    """One syscall rule after validation: its action (a RET_* value with data) and its
    argument conditions [(index, op, value, value_two)], all of which must hold."""

    __slots__ = ("action", "conds")

    def __init__(self, action: int, conds: list[tuple[int, str, int, int]]) -> None:
        self.action = action
        self.conds = conds



class _SubcallRule(Rule):
    """A rule on socketcall/ipc made from a rule on one of their sub-calls (x86 only)."""

    __slots__ = ()


def _subcall_rule(name: str, rule: Rule) -> tuple[int, Rule] | None:
    """libseccomp's translation (abi_rule_add in its arch code), for the x86 ABI: a rule on a
    socket or IPC call also becomes a rule on its multiplexer whose first condition is the
    sub-call number. The call's own arguments are in user memory there, out of BPF's reach:
    libseccomp replaces a condition on argument 0 with the sub-call test and keeps those on
    arguments 1-5 as they are (compared with the multiplexer's registers) -- and so do we, so
    that both give the same verdicts. One difference, on purpose: the kernel reads only the low
    16 bits of ipc's first argument (the high ones are a version, `call >> 16`), so we compare
    `A0 & 0xffff` where libseccomp compares all of A0 -- ipc(SHMGET | 1 << 16) is shmget too."""
    sub = SOCKETCALL_SUBCALLS.get(name)
    if sub is not None:
        test = (0, "SCMP_CMP_EQ", sub, 0)
        nr = SOCKETCALL_NR
    else:
        sub = IPC_SUBCALLS.get(name)
        if sub is None:
            return None
        test = (0, "SCMP_CMP_MASKED_EQ", 0xFFFF, sub)
        nr = IPC_NR
    return nr, _SubcallRule(rule.action, [test] + [c for c in rule.conds if c[0] != 0])


class Filter:
    """A compiled filter: the BPF program and how to load it."""

    def __init__(self, program: bytes, flags: int, notify: bool, listener_path: str,
                 listener_metadata: str, summary: str) -> None:
        self.program = program  # struct sock_filter[] in native byte order
        self.flags = flags
        self.notify = notify  # some rule says SCMP_ACT_NOTIFY: load with a listener
        self.listener_path = listener_path
        self.listener_metadata = listener_metadata
        self.summary = summary  # for --trace: what the filter does, in a line

    @property
    def length(self) -> int:
        return len(self.program) // 8


# --- validation: runtime-spec's linux.seccomp -> rules per syscall name -----------------------


def _action(name: object, errno_ret: object, where: str, default_errno: int) -> int:
    if not isinstance(name, str) or name not in ACTIONS:
        raise ConfigError(f"{where}.action" if not where.endswith("defaultAction") else where,
                          f"{name!r} is not a seccomp action ({', '.join(sorted(ACTIONS))})")
    base = ACTIONS[name]
    if errno_ret is not None and (isinstance(errno_ret, bool) or not isinstance(errno_ret, int)
                                  or not 0 <= errno_ret <= 0xFFFF):
        raise ConfigError(f"{where}.errnoRet" if "defaultAction" not in where
                          else "linux.seccomp.defaultErrnoRet", f"{errno_ret!r} is not an errno")
    if base in (RET_ERRNO, RET_TRACE):
        return base | (errno_ret if errno_ret is not None else default_errno)
    return base


def _u64(v: object, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 1 << 64:
        raise ConfigError(where, f"{v!r} is not an unsigned 64-bit integer")
    return v


def parse(sc: dict) -> tuple[int, str, list[str], list[tuple[list[str], Rule, int]], int, dict]:
    """Validate linux.seccomp. Returns (default action, its name, architectures,
    [(names, rule, index)], flags, listener {path, metadata})."""
    if not isinstance(sc, dict):
        raise ConfigError("linux.seccomp", "must be an object")
    default_errno = sc.get("defaultErrnoRet")
    default_name = sc.get("defaultAction")
    if default_name is None:
        raise ConfigError("linux.seccomp.defaultAction", "is required")
    default = _action(default_name, default_errno, "linux.seccomp.defaultAction", EPERM)
    if default_name == "SCMP_ACT_NOTIFY":
        raise ConfigError("linux.seccomp.defaultAction", "SCMP_ACT_NOTIFY cannot be the default "
                          "action: the supervisor would have to answer every call, its own "
                          "setup included")
    arches = sc.get("architectures") or []
    if not isinstance(arches, list):
        raise ConfigError("linux.seccomp.architectures", "must be an array")
    for i, a in enumerate(arches):
        if a not in ARCHES:
            raise ConfigError(f"linux.seccomp.architectures[{i}]", f"{a!r} is not a seccomp "
                              "architecture (SCMP_ARCH_X86_64, SCMP_ARCH_AARCH64, ...)")
    flags = 0
    for i, f in enumerate(sc.get("flags") or []):
        if f not in FLAGS:
            raise ConfigError(f"linux.seccomp.flags[{i}]", f"{f!r} is not a seccomp filter flag "
                              f"({', '.join(FLAGS)})")
        flags |= FLAGS[f]
    rules: list[tuple[list[str], Rule, int]] = []
    syscalls = sc.get("syscalls") or []
    if not isinstance(syscalls, list):
        raise ConfigError("linux.seccomp.syscalls", "must be an array")
    notify = False
    for i, s in enumerate(syscalls):
        where = f"linux.seccomp.syscalls[{i}]"
        if not isinstance(s, dict):
            raise ConfigError(where, "must be an object")
        names = s.get("names")
        if not isinstance(names, list) or not names or \
                not all(isinstance(n, str) and n for n in names):
            raise ConfigError(f"{where}.names", "must list at least one syscall name")
        action = _action(s.get("action"), s.get("errnoRet"), where, EPERM)
        notify = notify or action == RET_USER_NOTIF
        conds = []
        args = s.get("args") or []
        if not isinstance(args, list):
            raise ConfigError(f"{where}.args", "must be an array")
        for j, a in enumerate(args):
            aw = f"{where}.args[{j}]"
            if not isinstance(a, dict):
                raise ConfigError(aw, "must be an object")
            index = a.get("index")
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= 5:
                raise ConfigError(f"{aw}.index", f"{index!r} is not an argument index (0-5)")
            op = a.get("op")
            if op not in OPS:
                raise ConfigError(f"{aw}.op", f"{op!r} is not a comparison ({', '.join(OPS)})")
            conds.append((index, op, _u64(a.get("value", 0), f"{aw}.value"),
                          _u64(a.get("valueTwo", 0), f"{aw}.valueTwo")))
        indexes = [c[0] for c in conds]
        if len(set(indexes)) < len(indexes):
            # runc's (and libseccomp's) rule: two conditions on the same argument in one entry
            # are alternatives, not a conjunction -- each becomes a rule of its own.
            for c in conds:
                rules.append((names, Rule(action, [c]), i))
        else:
            rules.append((names, Rule(action, conds), i))
    listener = {"path": sc.get("listenerPath") or "", "metadata": sc.get("listenerMetadata") or ""}
    if notify and not listener["path"]:
        raise ConfigError("linux.seccomp.listenerPath", "is required when a rule uses "
                          "SCMP_ACT_NOTIFY (the supervisor's unix socket)")
    if notify:
        flags |= FLAG_NEW_LISTENER
    elif flags & FLAGS["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]:
        raise ConfigError("linux.seccomp.flags", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs "
                          "a SCMP_ACT_NOTIFY rule")
    return default, default_name, list(arches), rules, flags, listener


# --- code generation ------------------------------------------------------------------------


class _Asm:
    """A tiny assembler: instructions with symbolic forward jump targets, resolved at the end.

    Conditional jumps hold 8-bit offsets (at most 255 instructions ahead); the generator keeps
    them local, and uses JA (32-bit offset) for the long jumps of the architecture dispatch.
    """

    def __init__(self) -> None:
        self.insns: list[list] = []  # [code, jt, jf, k]; jt/jf/k may be label names
        self.labels: dict[str, int] = {}
        self._n = 0

    def label(self) -> str:
        self._n += 1
        return f"L{self._n}"

    def here(self, name: str) -> None:
        self.labels[name] = len(self.insns)

    def emit(self, code: int, k: int | str = 0, jt: int | str = 0, jf: int | str = 0) -> None:
        self.insns.append([code, jt, jf, k])

    def assemble(self) -> bytes:
        out = bytearray()
        for pc, (code, jt, jf, k) in enumerate(self.insns):
            if code == JMP_JA and isinstance(k, str):
                k = self.labels[k] - pc - 1
            jt = self._offset(pc, jt)
            jf = self._offset(pc, jf)
            out += struct.pack("=HBBI", code, jt, jf, k & 0xFFFFFFFF)
        return bytes(out)

    def _offset(self, pc: int, target: int | str) -> int:
        if isinstance(target, int):
            return target
        off = self.labels[target] - pc - 1
        if not 0 <= off <= 255:
            raise ConfigError("linux.seccomp", f"one syscall has too many rules for a BPF jump "
                              f"({off} instructions to skip; at most 255)")
        return off


def _cond(asm: _Asm, index: int, op: str, value: int, two: int, wide: bool, fail: str) -> None:
    """Code that falls through when `args[index] op value` holds and jumps to `fail` otherwise.

    BPF compares 32-bit words, so a 64-bit argument is compared high word first, then the low
    word when the high words are equal. 32-bit ABIs pass 32-bit arguments: low word only.
    """
    lo_off = OFF_ARGS + 8 * index
    hi_off = lo_off + 4
    if op == "SCMP_CMP_MASKED_EQ":  # (arg & value) == valueTwo
        mask, want = value, two
        if wide:
            asm.emit(LD_W_ABS, hi_off)
            asm.emit(ALU_AND_K, mask >> 32)
            asm.emit(JMP_JEQ, want >> 32, 0, fail)
        asm.emit(LD_W_ABS, lo_off)
        asm.emit(ALU_AND_K, mask & 0xFFFFFFFF)
        asm.emit(JMP_JEQ, want & 0xFFFFFFFF, 0, fail)
        return
    hi, lo = value >> 32, value & 0xFFFFFFFF
    ok = asm.label()
    if op == "SCMP_CMP_EQ":
        if wide:
            asm.emit(LD_W_ABS, hi_off)
            asm.emit(JMP_JEQ, hi, 0, fail)
        asm.emit(LD_W_ABS, lo_off)
        asm.emit(JMP_JEQ, lo, 0, fail)
    elif op == "SCMP_CMP_NE":
        if wide:
            asm.emit(LD_W_ABS, hi_off)
            asm.emit(JMP_JEQ, hi, 0, ok)  # high words differ: not equal, done
        asm.emit(LD_W_ABS, lo_off)
        asm.emit(JMP_JEQ, lo, fail, 0)
    elif op in ("SCMP_CMP_GT", "SCMP_CMP_GE"):
        if wide:
            asm.emit(LD_W_ABS, hi_off)
            asm.emit(JMP_JGT, hi, ok, 0)
            asm.emit(JMP_JEQ, hi, 0, fail)
        asm.emit(LD_W_ABS, lo_off)
        asm.emit(JMP_JGT if op == "SCMP_CMP_GT" else JMP_JGE, lo, 0, fail)
    else:  # SCMP_CMP_LT, SCMP_CMP_LE: the negation of GE, GT
        if wide:
            asm.emit(LD_W_ABS, hi_off)
            asm.emit(JMP_JGT, hi, fail, 0)
            asm.emit(JMP_JEQ, hi, 0, ok)  # high word below: less, done
        asm.emit(LD_W_ABS, lo_off)
        asm.emit(JMP_JGE if op == "SCMP_CMP_LT" else JMP_JGT, lo, fail, 0)
    asm.here(ok)


def _section(asm: _Asm, numbers: dict[int, list[Rule]], default: int, wide: bool,
             enosys_above: int | None, nr_bit: int) -> None:
    """The syscall tests of one ABI, with the syscall number already in A."""
    if enosys_above is not None:
        asm.emit(JMP_JGT, enosys_above | nr_bit, 0, 1)
        asm.emit(RET_K, RET_ERRNO | ENOSYS)
    # Merge consecutive unconditional numbers with one action into ranges [lo, hi].
    items: list[tuple[int, int, int | None, list[Rule]]] = []  # (lo, hi, action, rules)
    for nr in sorted(numbers):
        rules = numbers[nr]
        plain = rules[0].action if len(rules) == 1 and not rules[0].conds else None
        if plain is not None and items and items[-1][2] == plain and items[-1][1] == nr - 1:
            items[-1] = (items[-1][0], nr, plain, [])
        else:
            items.append((nr, nr, plain, rules))
    for lo, hi, action, rules in items:
        lo, hi = lo | nr_bit, hi | nr_bit
        if action is not None and lo == hi:
            asm.emit(JMP_JEQ, lo, 0, 1)
            asm.emit(RET_K, action)
        elif action is not None:
            # Numbers are tested in ascending order, so below `lo` nothing later can match.
            asm.emit(JMP_JGT, hi, 3, 0)
            asm.emit(JMP_JGE, lo, 0, 1)
            asm.emit(RET_K, action)
            asm.emit(RET_K, default)
        else:
            # A block of rules for this one syscall: each rule's conditions, then its action;
            # a failed condition goes on to the next rule, and past the last to the default.
            skip = asm.label()
            asm.emit(JMP_JEQ, lo, 0, skip)
            for rule in rules:
                nxt = asm.label()
                for cond in rule.conds:
                    _cond(asm, *cond, wide, nxt)
                asm.emit(RET_K, rule.action)
                asm.here(nxt)
            asm.emit(RET_K, default)
            asm.here(skip)
    asm.emit(RET_K, default)


def compile_filter(sc: dict, machine: str | None = None) -> Filter:
    """Compile linux.seccomp for this machine's architecture (os.uname().machine)."""
    default, default_name, arches, rules, flags, listener = parse(sc)
    machine = machine or os.uname().machine
    native = NATIVE.get(machine)
    if native is None:
        raise ConfigError("linux.seccomp", f"minirun has no syscall table for {machine}: "
                          "seccomp filters are supported on x86_64 and aarch64")
    wanted = [native] + [a for a in arches if a != native and ARCHES.get(a) is not None]
    if machine == "x86_64":
        wanted = [a for a in wanted if a in ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")]
    else:
        wanted = [native]  # an aarch64 kernel without compat: only its own ABI reaches us

    # syscall numbers -> rules, per ABI; the highest number the profile names, per ABI.
    per_abi: dict[str, dict[int, list[Rule]]] = {}
    highest: dict[str, int] = {}
    allow_like = default_name in _ALLOW_LIKE
    for arch in wanted:
        table = getattr(syscall_table, ARCHES[arch][1])
        numbers: dict[int, list[Rule]] = {}
        muxed = arch == "SCMP_ARCH_X86"  # the only ABI with socketcall/ipc (see above)
        for names, rule, _i in rules:
            for name in names:
                sub = _subcall_rule(name, rule) if muxed and rule.action != default else None
                if sub is not None:
                    # (a rule with the default action is refused by libseccomp, runc skips
                    # it: nothing to translate)
                    highest[arch] = max(highest.get(arch, 0), sub[0])
                    same = numbers.setdefault(sub[0], [])
                    if not any(r.action == sub[1].action and r.conds == sub[1].conds
                               for r in same):  # socket's 3 rules in Docker's profile: 1 here
                        same.append(sub[1])
                nr = table.get(name)
                if nr is None:
                    continue  # not a syscall of this ABI (runc ignores these too)
                highest[arch] = max(highest.get(arch, 0), nr)
                if rule.action == default and not rule.conds:
                    continue  # same as the default: no code needed...
                numbers.setdefault(nr, []).append(rule)
        for nr, rs in numbers.items():
            # ...and once a rule without conditions is reached, later ones never are. Rules
            # with conditions go first: they are the exceptions to a plain rule on the call.
            cond = [r for r in rs if r.conds]
            plain = [r for r in rs if not r.conds][:1]
            if plain:
                # A rule naming socketcall/ipc itself without conditions decides for every
                # sub-call, as in libseccomp (whose plain rule on a syscall drops all the
                # conditional ones): the sub-call rules go, explicit conditional rules on the
                # multiplexer stay the exceptions they are for any other call.
                cond = [r for r in cond if not isinstance(r, _SubcallRule)]
            numbers[nr] = cond + plain
        per_abi[arch] = numbers

    asm = _Asm()
    bad_arch = RET_KILL_THREAD  # libseccomp's default: a call through an ABI we do not filter
    asm.emit(LD_W_ABS, OFF_ARCH)
    sections: list[tuple[int, str]] = []
    for audit in dict.fromkeys(ARCHES[a][0] for a in wanted):
        lbl = asm.label()
        sections.append((audit, lbl))
        asm.emit(JMP_JEQ, audit, 0, 1)
        asm.emit(JMP_JA, lbl)
    asm.emit(RET_K, bad_arch)
    for audit, lbl in sections:
        asm.here(lbl)
        asm.emit(LD_W_ABS, OFF_NR)
        if audit == AUDIT_ARCH_X86_64:
            # x86_64 and x32 share AUDIT_ARCH_X86_64: x32 calls have bit 30 set in nr.
            x32 = asm.label()
            asm.emit(JMP_JSET, X32_SYSCALL_BIT, 0, 1)
            if "SCMP_ARCH_X32" in per_abi:
                asm.emit(JMP_JA, x32)
            else:
                asm.emit(RET_K, bad_arch)
            if "SCMP_ARCH_X86_64" in per_abi:
                _section(asm, per_abi["SCMP_ARCH_X86_64"], default, True,
                         None if allow_like else highest.get("SCMP_ARCH_X86_64"), 0)
            else:
                asm.emit(RET_K, bad_arch)
            if "SCMP_ARCH_X32" in per_abi:
                asm.here(x32)
                _section(asm, per_abi["SCMP_ARCH_X32"], default, False,
                         None if allow_like else highest.get("SCMP_ARCH_X32"), X32_SYSCALL_BIT)
        else:
            arch = next(a for a in wanted if ARCHES[a][0] == audit)
            _section(asm, per_abi[arch], default, ARCHES[arch][2],
                     None if allow_like else highest.get(arch), 0)
    program = asm.assemble()
    n = len(program) // 8
    if n > MAX_INSNS:
        raise ConfigError("linux.seccomp", f"the filter compiles to {n} BPF instructions; the "
                          f"kernel takes at most {MAX_INSNS}")
    native_rules = per_abi.get(native, {})
    allowed = sum(1 for rs in native_rules.values() if any(r.action == RET_ALLOW for r in rs))
    summary = (f"default {_describe(default)}, {len(native_rules)} syscalls with their own "
               f"rule ({allowed} allowed), ABIs {', '.join(a[10:].lower() for a in wanted)}, "
               f"{n} instructions")
    return Filter(program, flags, bool(flags & FLAG_NEW_LISTENER), listener["path"],
                  listener["metadata"], summary)


def _describe(ret: int) -> str:
    action, data = ret & 0xFFFF0000, ret & 0xFFFF
    name = {RET_KILL_PROCESS: "KILL_PROCESS", RET_KILL_THREAD: "KILL_THREAD", RET_TRAP: "TRAP",
            RET_ERRNO: "ERRNO", RET_USER_NOTIF: "NOTIFY", RET_TRACE: "TRACE", RET_LOG: "LOG",
            RET_ALLOW: "ALLOW"}.get(action, hex(action))
    if action == RET_ERRNO:
        return f"ERRNO({os.strerror(data).split(' (')[0] if data else 0})"
    return f"{name}({data})" if action == RET_TRACE else name


# --- reading a program back: for docs, tests and `python -m minirun.kernel.seccomp` ----------


def disassemble(program: bytes) -> list[str]:
    """One line per instruction, in the notation of the kernel's bpf_dbg/libseccomp's PFC."""
    names = {LD_W_ABS: "ld", ALU_AND_K: "and", JMP_JA: "ja", JMP_JEQ: "jeq", JMP_JGT: "jgt",
             JMP_JGE: "jge", JMP_JSET: "jset", RET_K: "ret"}
    where = {OFF_NR: "[nr]", OFF_ARCH: "[arch]"}
    out = []
    for pc in range(len(program) // 8):
        code, jt, jf, k = struct.unpack_from("=HBBI", program, 8 * pc)
        op = names.get(code, hex(code))
        if code == LD_W_ABS:
            arg = where.get(k) or f"[args[{(k - OFF_ARGS) // 8}] {'hi' if k % 8 else 'lo'}]"
            out.append(f"{pc:4}: ld   {arg}")
        elif code == RET_K:
            out.append(f"{pc:4}: ret  {_describe(k)}")
        elif code == JMP_JA:
            out.append(f"{pc:4}: ja   {pc + 1 + k}")
        elif code == ALU_AND_K:
            out.append(f"{pc:4}: and  {k:#x}")
        else:
            out.append(f"{pc:4}: {op:<4} {k:#x}, {pc + 1 + jt}, {pc + 1 + jf}")
    return out


def run(program: bytes, nr: int, arch: int = AUDIT_ARCH_X86_64, args: tuple = ()) -> int:
    """Interpret the program for one call, as the kernel would: the tests' oracle."""
    data = struct.pack("=iIQ6Q", nr, arch, 0, *(list(args) + [0] * (6 - len(args))))
    a, pc = 0, 0
    while True:
        code, jt, jf, k = struct.unpack_from("=HBBI", program, 8 * pc)
        pc += 1
        if code == LD_W_ABS:
            a = struct.unpack_from("=I", data, k)[0]
        elif code == ALU_AND_K:
            a &= k
        elif code == RET_K:
            return k
        elif code == JMP_JA:
            pc += k
        else:
            cond = {JMP_JEQ: a == k, JMP_JGT: a > k, JMP_JGE: a >= k, JMP_JSET: bool(a & k)}[code]
            pc += jt if cond else jf


if __name__ == "__main__":  # python -m minirun.kernel.seccomp BUNDLE/config.json
    import sys

    from .. import fastjson

    with open(sys.argv[1] if len(sys.argv) > 1 else "config.json") as fh:
        cfg = fastjson.loads(fh.read())
    flt = compile_filter((cfg.get("linux") or {}).get("seccomp") or {"defaultAction": "SCMP_ACT_ALLOW"})
    print(f"# {flt.summary}")
    print("\n".join(disassemble(flt.program)))
