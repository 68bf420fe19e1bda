"""Device access rules (linux.resources.devices): who may open or mknod which device nodes.

cgroup v1 has a `devices` controller: rules are lines written to devices.deny/devices.allow
("c 1:3 rwm"). cgroup v2 has no such files: the kernel instead runs an eBPF program of type
BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup, once per access, and allows it if the program
returns 1. runc and crun generate that program from the rules; so does `program()` below, and
`load_and_attach()` loads it with bpf(2).

Rules apply in order, the last matching rule wins (as when they are written one by one to v1's
files); a request no rule matches is denied on v2. The default OCI list denies all, then allows
the standard nodes (null, zero, full, tty, random, urandom, ptmx, pts).
"""

from __future__ import annotations

import os
import struct

from ...errors import MinirunError
from .. import libc

# The rules every container gets after the caller's (runc's AllowedDevices), so /dev/null & co.
# keep working even under a "deny all" list; one the caller names itself is left out
# (with_defaults).
DEFAULT_ALLOW = [
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},   # /dev/null
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},   # /dev/zero
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},   # /dev/full
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},   # /dev/tty
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},   # /dev/random
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},   # /dev/urandom
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},   # /dev/ptmx
    {"allow": True, "type": "c", "major": 136, "minor": -1, "access": "rwm"},  # /dev/pts/*
]


class DeviceRuleError(MinirunError):
    pass


def normalise(rules: list[dict]) -> list[dict]:
    """Validate OCI device rules; fill in defaults (type a, any major/minor, access rwm)."""
    out = []
    for i, r in enumerate(rules):
        where = f"config.json: linux.resources.devices[{i}]"
        if not isinstance(r, dict) or not isinstance(r.get("allow"), bool):
            raise DeviceRuleError(f"{where}.allow: must be true or false")
        t = r.get("type") or "a"
        if t not in ("a", "b", "c"):
            raise DeviceRuleError(f"{where}.type: {t!r} is not a, b or c")
        access = r.get("access") or "rwm"
        if not access or set(access) - set("rwm"):
            raise DeviceRuleError(f"{where}.access: {access!r} is not made of r, w, m")
        major = -1 if r.get("major") is None else r["major"]
        minor = -1 if r.get("minor") is None else r["minor"]
        out.append({"allow": r["allow"], "type": t, "major": major, "minor": minor,
                    "access": access})
    return out


def with_defaults(rules: list[dict]) -> list[dict]:
    """The caller's (normalised) rules, then DEFAULT_ALLOW for the devices those rules do not
    name exactly (same type, major and minor). runc appends every default, so a "deny c 1:5" or
    an "allow c 1:5 r" in config.json is silently undone by its "c 1:5 rwm"; the runtime-spec
    says the rules apply in the listed order, so an explicit rule for a device wins here."""
    named = {(r["type"], r["major"], r["minor"]) for r in rules}
    return rules + [d for d in normalise(DEFAULT_ALLOW)
                    if (d["type"], d["major"], d["minor"]) not in named]


def v1_lines(rules: list[dict]) -> list[tuple[str, str]]:
    """(file, line) writes for v1: devices.allow or devices.deny, "type major:minor access"."""
    lines = []
    for r in rules:
        maj = "*" if r["major"] == -1 else str(r["major"])
        mnr = "*" if r["minor"] == -1 else str(r["minor"])
        if r["type"] == "a":
            line = "a"  # the kernel only accepts a bare "a" for all devices
        else:
            line = f"{r['type']} {maj}:{mnr} {r['access']}"
        lines.append(("devices.allow" if r["allow"] else "devices.deny", line))
    return lines


# --- the eBPF program (v2) --------------------------------------------------------------------
# struct bpf_cgroup_dev_ctx { u32 access_type /* (access << 16) | type */; u32 major; u32 minor; }
_TYPE = {"b": 1, "c": 2}          # BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
_ACC = {"m": 1, "r": 2, "w": 4}   # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


_LDXW, _AND_K, _RSH_K, _MOV32_X, _MOV64_K = 0x61, 0x54, 0x74, 0xBC, 0xB7
_JNE_K, _EXIT = 0x55, 0x95


def program(rules: list[dict]) -> bytes:
    """Compile rules into BPF instructions: check them last to first, first match decides."""
    code = [
        _insn(_LDXW, dst=2, src=1, off=0),     # r2 = ctx->access_type
        _insn(_AND_K, dst=2, imm=0xFFFF),      # r2 = device type
        _insn(_LDXW, dst=3, src=1, off=0),
        _insn(_RSH_K, dst=3, imm=16),          # r3 = requested access bits
        _insn(_LDXW, dst=4, src=1, off=4),     # r4 = major
        _insn(_LDXW, dst=5, src=1, off=8),     # r5 = minor
    ]
    for r in reversed(rules):
        block: list[tuple] = []  # (code, dst, imm) jumps to the end of the block on mismatch
        if r["type"] != "a":
            block.append((_JNE_K, 2, _TYPE[r["type"]]))
        mask = sum(_ACC[a] for a in set(r["access"]))
        if mask != 7:
            block.append(("access", mask))
        if r["major"] != -1:
            block.append((_JNE_K, 4, r["major"]))
        if r["minor"] != -1:
            block.append((_JNE_K, 5, r["minor"]))
        size = sum(3 if b[0] == "access" else 1 for b in block) + 2
        pos = 0
        for b in block:
            if b[0] == "access":
                # any requested bit outside the rule's access -> this rule does not match
                code.append(_insn(_MOV32_X, dst=1, src=3)); pos += 1
                code.append(_insn(_AND_K, dst=1, imm=~b[1] & 7)); pos += 1
                code.append(_insn(_JNE_K, dst=1, imm=0, off=size - pos - 1)); pos += 1
            else:
                code.append(_insn(b[0], dst=b[1], imm=b[2], off=size - pos - 1)); pos += 1
        code.append(_insn(_MOV64_K, dst=0, imm=1 if r["allow"] else 0))
        code.append(_insn(_EXIT))
        if not block:
            # A rule matching every access decides all that is left; the verifier rejects
            # unreachable instructions, so nothing may follow it.
            return b"".join(code)
    code.append(_insn(_MOV64_K, dst=0, imm=0))  # nothing matched: deny
    code.append(_insn(_EXIT))
    return b"".join(code)


BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_PROG_DETACH, BPF_PROG_QUERY = 5, 8, 9, 16
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_TYPE_CGROUP_DEVICE, BPF_CGROUP_DEVICE = 15, 6
BPF_F_ALLOW_MULTI = 2


def load_and_attach(cgroup_dir: str, rules: list[dict]) -> None:
    """Load the program and attach it to the cgroup, replacing minirun's previous one."""
    insns = program(rules)
    prog_fd = libc.bpf_prog_load(BPF_PROG_TYPE_CGROUP_DEVICE, insns, "Apache-2.0",
                                 "compile linux.resources.devices into a cgroup v2 device "
                                 f"filter ({len(insns) // 8} instructions)")
    dfd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        old = libc.bpf_prog_query(dfd, BPF_CGROUP_DEVICE)
        libc.bpf_prog_attach(dfd, prog_fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI,
                             f"attach it to {cgroup_dir}: every device access is checked")
        for prog_id in old:
            libc.bpf_prog_detach_id(dfd, prog_id, BPF_CGROUP_DEVICE,
                                    "detach the filter it replaces")
    finally:
        os.close(dfd)
        os.close(prog_fd)
