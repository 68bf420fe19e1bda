"""The last execve() goes through a sealed in-memory stub (CVE-2019-5736).

The attack, against runc in 2019: a container replaces one of its binaries with a script whose
first line is `#!/proc/self/exe`. When the runtime later execs that binary (`docker exec`), the
kernel resolves the interpreter in the *runtime's* process, and /proc/self/exe there is the
runtime's own binary on the host. The host binary now runs as a container process; the
container opens /proc/PID/exe of it and, once it exits, writes through that handle: the host's
runtime binary is overwritten with the attacker's program, and root on the host runs it next.

For minirun the host binary would be the Python interpreter. So the process that enters the
container never execs the container's program itself: it execs a 100-byte static stub kept in
a sealed memfd, and the stub execs the program. Whatever the program's first line says,
/proc/self/exe at that moment is the memfd: an anonymous in-memory file, sealed against writes,
that vanishes with the process. runc's fix is the same idea (a sealed memfd copy of runc
itself); we copy 100 bytes instead of a 10 MB binary.

The stub's contract: argv = ["\t", PATH, ARGV0, ARGV1, ...]. A lone tab as argv[0] is the sign
that minirun started it: a `#!/proc/self/exe` script starts it with "/proc/self/exe" there (the
kernel ends an interpreter's name at the first tab or space), and it then says so and exits 126
instead of looping. It execs PATH with ARGV and the environment,
and exits 127 (not found) or 126 (any other failure) if that fails.
"""

from __future__ import annotations

import os
import struct

from . import libc

# Machine code of the stub (assembled from the listing beside each; no C, no libc).
_MSG = b"minirun: /proc/self/exe is not a program here (CVE-2019-5736)\n"  # right after the code
_CODE = {
    # x86_64:  mov rax,[rsp+8]; cmp word[rax],9; jne refuse      argv[0] must be "\t"
    #          mov rdi,[rsp+16]; lea rsi,[rsp+24]                 path, &argv[2]
    #          mov rcx,[rsp]; lea rdx,[rsp+rcx*8+16]              envp = &argv[argc+1]
    #          mov eax,59; syscall                                execve
    #          mov edi,126; cmp eax,-2; jne 1f; mov edi,127       ENOENT -> 127, else 126
    #       1: mov eax,231; syscall                               exit_group
    #  refuse: mov edi,2; lea rsi,[rip+msg]; mov edx,62           write(2, msg, 62)
    #          mov eax,1; syscall; mov edi,126; mov eax,231; syscall
    "x86_64": (62, bytes.fromhex(
        "488b442408668338097530488b7c2410488d742418488b0c24488d54cc10"
        "b83b0000000f05bf7e00000083f8fe7505bf7f000000b8e70000000f05bf"
        "02000000488d3518000000ba3e000000b8010000000f05bf7e000000b8e7"
        "0000000f05") + _MSG),
    # aarch64: the same steps (ldrh/cmp #9 for the marker; adr for the message); execve is
    # 221, write 64, exit_group 94.
    "aarch64": (183, bytes.fromhex(
        "e00740f9010040793f240071e1010054e00b40f9e1630091e20340f9e26f"
        "228b42400091a81b80d2010000d4c10f80d21f0800b141000054e10f80d2"
        "e00301aac80b80d2010000d4400080d2e1000010c20780d2080880d20100"
        "00d4c00f80d2c80b80d2010000d4") + _MSG),
}
MARKER = "\t"  # argv[0] of the stub: no #! line can produce it (interpreters end at a tab)
_BASE = 0x400000


def stub_elf(machine: str) -> bytes | None:
    """A minimal static ELF64 executable: one header, one loadable segment, the code."""
    entry = _CODE.get(machine)
    if entry is None:
        return None
    e_machine, code = entry
    size = 64 + 56 + len(code)
    header = struct.pack(
        "<4sBBBB8xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0,  # 64-bit, little endian, SysV
        2, e_machine, 1, _BASE + 120, 64, 0,  # ET_EXEC, machine, version, entry, phoff, shoff
        0, 64, 56, 1, 0, 0, 0)  # flags, ehsize, phentsize, phnum, shentsize, shnum, shstrndx
    segment = struct.pack("<IIQQQQQQ", 1, 5, 0, _BASE, _BASE, size, size, 0x1000)  # PT_LOAD, R+X
    return header + segment + code


def prepare() -> int | None:
    """Make the sealed stub now (before seccomp is loaded): its fd, or None if this machine
    cannot (no stub for the architecture, or memfds are not executable here)."""
    elf = stub_elf(os.uname().machine)
    if elf is None:
        return None
    try:
        return libc.sealed_memfd("minirun-exec", elf, "CVE-2019-5736: the program is exec'd "
                                 "through this sealed in-memory stub, so /proc/self/exe never "
                                 "names the host's interpreter")
    except OSError:
        return None


def execve(stub_fd: int | None, path: str, args: list[str], env: dict[str, str], why: str) -> None:
    """execve() the program, through the stub when there is one."""
    if stub_fd is None:
        libc.execve(path, args, env, why)
    else:
        libc.execve(f"/proc/self/fd/{stub_fd}", [MARKER, path, *args], env,
                    why + f" (through the sealed stub, /proc/self/fd/{stub_fd})",
                    shown=(path, args))
