"""Seccomp policy: which system calls a container may make, as the OCI `linux.seccomp` object.

Why: namespaces and capabilities decide what a process may *see* and *do*, but every container
still talks to the one shared host kernel. Each syscall is kernel attack surface, and several
(keyrings, kernel modules, kexec, raw BPF, new namespaces) either reach host-global state or
have been the door for privilege escalations. A seccomp filter lets the kernel refuse a call
before any of its code runs.

How Docker builds its default policy, and so how we build ours:
- It is an allow-list. The default action is SCMP_ACT_ERRNO with errno 1 (EPERM): anything not
  named fails as "Operation not permitted", the answer a program already handles for a missing
  privilege, instead of killing it.
- About 360 syscalls that every program needs are allowed outright (the groups below).
- Some calls are allowed only for certain arguments: `clone` without namespace flags,
  `personality` only for the safe personas, `socket` for every address family but a few.
- Some are allowed only when the container holds the capability that the kernel would check
  anyway (mount with CAP_SYS_ADMIN, reboot with CAP_SYS_BOOT, ...). With the capability dropped
  the call would fail with EPERM regardless; refusing it in the filter means the kernel code
  behind it is never reached at all. `--cap-add` therefore widens the filter too.
- Some depend on the host: the CPU architecture (arch_prctl only on x86) and the kernel version
  (ptrace is safe without CAP_SYS_PTRACE only from 4.8, which closed a seccomp bypass).

Docker writes this policy as JSON with conditions (`includes`/`excludes` on caps, arches and
minKernel, and an `archMap`) and resolves it per container into plain OCI (moby's
`setupSeccomp`). `docker_format_default()` is that conditional form, built from our data;
`load_profile()` resolves any profile in that format (`--security-opt seccomp=file.json`);
`default_profile()` is the two together. Compiling the result to BPF is kernel/seccomp.py's job.

The policy follows moby's profile (github.com/moby/profiles/seccomp, as vendored by moby/moby),
with the May 2026 change for CVE-2026-31431 ("Copy Fail"): AF_ALG sockets are refused as well
as AF_VSOCK (Docker 29.4.2 and later).
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..errors import MinirunError


class SeccompProfileError(MinirunError):
    """A seccomp profile is not valid JSON or not a valid profile; names the file and field."""

    exit_code = 125  # the front end's own error, as Docker's CLI reports a bad --security-opt


# --- vocabulary (runtime-spec config-linux.md#seccomp) -----------------------------------------

ALLOW = "SCMP_ACT_ALLOW"
ERRNO = "SCMP_ACT_ERRNO"

ACTIONS = frozenset({
    "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
})
OPS = frozenset({
    "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
})
ARCHES = frozenset({
    "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K",
    "SCMP_ARCH_SH", "SCMP_ARCH_SHEB",
})
_MAX_ARGS = 6  # a syscall has six argument registers, 0..5
_U64 = (1 << 64) - 1

# Rule conditions name architectures the way libseccomp and Go do ("amd64", "arm64", ...);
# os.uname().machine says "x86_64", "aarch64". Go's GOARCH spellings are accepted as well.
_NATIVE = {
    "x86_64": "amd64", "amd64": "amd64",
    "i386": "x86", "i486": "x86", "i586": "x86", "i686": "x86", "386": "x86", "x86": "x86",
    "aarch64": "arm64", "arm64": "arm64",
    "armv6l": "arm", "armv7l": "arm", "armv8l": "arm", "arm": "arm",
    "ppc64le": "ppc64le", "ppc64": "ppc64", "ppc": "ppc",
    "s390x": "s390x", "s390": "s390",
    "riscv64": "riscv64",
    "loongarch64": "loong64", "loong64": "loong64",
    "mips64": "mips64", "mips64le": "mipsel64", "mips64el": "mipsel64",
}
_NATIVE_TO_SCMP = {
    "x86": "SCMP_ARCH_X86", "amd64": "SCMP_ARCH_X86_64", "arm": "SCMP_ARCH_ARM",
    "arm64": "SCMP_ARCH_AARCH64", "mips64": "SCMP_ARCH_MIPS64", "mipsel64": "SCMP_ARCH_MIPSEL64",
    "ppc": "SCMP_ARCH_PPC", "ppc64": "SCMP_ARCH_PPC64", "ppc64le": "SCMP_ARCH_PPC64LE",
    "riscv64": "SCMP_ARCH_RISCV64", "s390": "SCMP_ARCH_S390", "s390x": "SCMP_ARCH_S390X",
    "loong64": "SCMP_ARCH_LOONGARCH64",
}

# A 64-bit kernel also runs the 32-bit (and x32, n32) ABIs of its family; a filter that named
# only the native ABI would let a process dodge it by switching to another one, so each native
# architecture brings its companions; a call made through an ABI left off the list is refused.
_ARCH_FAMILIES: list[tuple[str, list[str]]] = [
    ("SCMP_ARCH_X86_64", ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
    ("SCMP_ARCH_AARCH64", ["SCMP_ARCH_ARM"]),
    ("SCMP_ARCH_MIPS64", ["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"]),
    ("SCMP_ARCH_MIPS64N32", ["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"]),
    ("SCMP_ARCH_MIPSEL64", ["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"]),
    ("SCMP_ARCH_MIPSEL64N32", ["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"]),
    ("SCMP_ARCH_S390X", ["SCMP_ARCH_S390"]),
    ("SCMP_ARCH_RISCV64", []),
    ("SCMP_ARCH_LOONGARCH64", []),
]

# --- allowed for everyone ------------------------------------------------------------------------
# Names of every ABI the family filter covers (chown32, fcntl64, *_time64, ...); a name the
# running architecture lacks is skipped when the filter is compiled.

# Files and directories: paths, descriptors and metadata. The kernel's permission checks
# (modes, and CAP_CHOWN/CAP_FOWNER/CAP_MKNOD...) still apply to every one of them.
_FILES = (
    "access", "chdir", "chmod", "chown", "chown32", "close", "close_range", "creat",
    "faccessat", "faccessat2", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown",
    "fchown32", "fchownat", "fcntl", "fcntl64", "flock", "fstat", "fstat64", "fstatat64",
    "fstatfs", "fstatfs64", "ftruncate", "ftruncate64", "futimesat", "getcwd", "getdents",
    "getdents64", "lchown", "lchown32", "link", "linkat", "lstat", "lstat64", "mkdir",
    "mkdirat", "mknod", "mknodat", "name_to_handle_at", "newfstatat", "open", "openat",
    "openat2", "readlink", "readlinkat", "rename", "renameat", "renameat2", "rmdir", "stat",
    "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "truncate", "truncate64",
    "umask", "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes",
)
# Extended attributes: security.* and trusted.* names are guarded by the kernel (capabilities).
_XATTRS = (
    "fgetxattr", "flistxattr", "fremovexattr", "fsetxattr", "getxattr", "getxattrat",
    "lgetxattr", "listxattr", "listxattrat", "llistxattr", "lremovexattr", "lsetxattr",
    "removexattr", "removexattrat", "setxattr", "setxattrat",
)
# Moving data through descriptors: reads, writes, pipes, zero-copy, flushing to disk.
_DATA = (
    "_llseek", "copy_file_range", "dup", "dup2", "dup3", "fadvise64", "fadvise64_64",
    "fallocate", "fdatasync", "fsync", "ioctl", "lseek", "pipe", "pipe2", "pread64", "preadv",
    "preadv2", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readv", "sendfile",
    "sendfile64", "splice", "sync", "sync_file_range", "syncfs", "tee", "vmsplice", "write",
    "writev",
)
# Read-only views of the mount table (kernel 6.8): they show only this mount namespace.
_MOUNT_INFO = ("listmount", "statmount")
# Waiting for events: poll/select/epoll, eventfd, inotify and fanotify marks (fanotify_init,
# which creates the listener, needs CAP_SYS_ADMIN and is in that group below).
_EVENTS = (
    "_newselect", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "fanotify_mark",
    "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "poll", "ppoll",
    "ppoll_time64", "pselect6", "pselect6_time64", "select",
)
# Classic asynchronous I/O and I/O priority. io_uring is *not* here: it has been a steady
# source of kernel exploits, and its ring also bypasses the filter (operations are not syscalls).
_AIO = (
    "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64",
    "io_setup", "io_submit", "ioprio_get", "ioprio_set",
)
# Memory of the calling process: mapping, protection keys, locking (RLIMIT_MEMLOCK applies),
# memfd, sealing, page-cache statistics.
_MEMORY = (
    "brk", "cachestat", "madvise", "map_shadow_stack", "membarrier", "memfd_create",
    "memfd_secret", "mincore", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect",
    "mremap", "mseal", "msync", "munlock", "munlockall", "munmap", "pkey_alloc", "pkey_free",
    "pkey_mprotect", "process_mrelease", "remap_file_pages",
)
# Processes and threads: create (clone has its own rule below), exec, wait, exit, futexes,
# thread-local storage, restartable sequences, pidfds, prctl.
_PROCESSES = (
    "execve", "execveat", "exit", "exit_group", "fork", "futex", "futex_requeue",
    "futex_time64", "futex_wait", "futex_waitv", "futex_wake", "get_robust_list",
    "get_thread_area", "getpgid", "getpgrp", "getpid", "getppid", "getsid", "gettid",
    "pidfd_open", "prctl", "restart_syscall", "rseq", "set_robust_list", "set_thread_area",
    "set_tid_address", "setpgid", "setsid", "uretprobe", "vfork", "wait4", "waitid", "waitpid",
)
# Scheduling, priorities and resource limits: raising any of them needs CAP_SYS_NICE or
# CAP_SYS_RESOURCE, which the kernel checks itself.
_SCHEDULING = (
    "getcpu", "getpriority", "getrlimit", "getrusage", "prlimit64", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
    "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler",
    "sched_yield", "setpriority", "setrlimit", "ugetrlimit",
)
# Credentials: user and group IDs and capability sets. Changing them needs CAP_SETUID,
# CAP_SETGID or CAP_SETPCAP, checked by the kernel against the container's capabilities.
_CREDENTIALS = (
    "capget", "capset", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32",
    "getgroups", "getgroups32", "getresgid", "getresgid32", "getresuid", "getresuid32",
    "getuid", "getuid32", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid",
    "setgid32", "setgroups", "setgroups32", "setregid", "setregid32", "setresgid",
    "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setuid", "setuid32",
)
# Sandboxing oneself further: a stacked seccomp filter or a Landlock ruleset can only take
# rights away, never give them back.
_SELF_SANDBOX = (
    "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "seccomp",
)
# Signals: sending (the kernel checks the target's owner, and CAP_KILL), handling, waiting.
_SIGNALS = (
    "kill", "pause", "pidfd_send_signal", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
    "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sigaltstack", "signalfd", "signalfd4",
    "sigprocmask", "sigreturn", "tgkill", "tkill",
)
# Time: reading clocks, sleeping, timers. adjtimex and clock_adjtime are here because in read
# mode they only query; *setting* the clock needs CAP_SYS_TIME (its own group below).
_TIME = (
    "adjtimex", "alarm", "clock_adjtime", "clock_adjtime64", "clock_getres",
    "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "getitimer", "gettimeofday", "nanosleep", "setitimer", "time",
    "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64",
    "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime",
    "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times",
)
# Networking on sockets already made (`socket` itself has a rule below). socketcall is the
# 32-bit multiplexer for all of these; its arguments sit behind a pointer seccomp cannot read.
_NETWORK = (
    "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt",
    "listen", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send",
    "sendmmsg", "sendmsg", "sendto", "setsockopt", "shutdown", "socketcall", "socketpair",
)
# System V and POSIX IPC: message queues, semaphores, shared memory; the IPC namespace
# scopes them to the container.
_IPC = (
    "ipc", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
    "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl",
    "msgget", "msgrcv", "msgsnd", "semctl", "semget", "semop", "semtimedop",
    "semtimedop_time64", "shmat", "shmctl", "shmdt", "shmget",
)
# Facts about the system: kernel name (the UTS namespace's), memory totals, randomness,
# and RISC-V's CPU-feature query.
_SYSTEM_INFO = ("getrandom", "riscv_hwprobe", "sysinfo", "uname")

_ALWAYS_GROUPS = (_FILES, _XATTRS, _DATA, _MOUNT_INFO, _EVENTS, _AIO, _MEMORY, _PROCESSES,
                  _SCHEDULING, _CREDENTIALS, _SELF_SANDBOX, _SIGNALS, _TIME, _NETWORK, _IPC,
                  _SYSTEM_INFO)
ALWAYS_ALLOWED: tuple[str, ...] = tuple(sorted(n for group in _ALWAYS_GROUPS for n in group))

# --- argument values -----------------------------------------------------------------------------

# clone(2) flags that create namespaces: NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID
# | NEWNET. A MASKED_EQ with value=mask, valueTwo=0 allows clone only when none is set.
CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 \
    | 0x20000000 | 0x40000000
AF_ALG = 38    # kernel crypto API sockets: CVE-2026-31431 writes into the shared page cache
AF_VSOCK = 40  # host<->guest sockets, not namespaced: a container could reach the host's agents
ENOSYS = 38
PER_LINUX, PER_LINUX32, UNAME26, PER_QUERY = 0x0, 0x0008, 0x0020000, 0xFFFFFFFF


def _arg(index: int, op: str, value: int, value_two: int = 0) -> dict[str, Any]:
    return {"index": index, "value": value, "valueTwo": value_two, "op": op}


def _rule(names: tuple[str, ...] | list[str], why: str = "", *, action: str = ALLOW,
          errno: int | None = None, args: list[dict[str, Any]] | None = None,
          includes: dict[str, Any] | None = None,
          excludes: dict[str, Any] | None = None) -> dict[str, Any]:
    """One rule in Docker's format; `why` becomes its `comment`, so a dump explains itself."""
    rule: dict[str, Any] = {"names": list(names), "action": action}
    if errno is not None:
        rule["errnoRet"] = errno
    if args:
        rule["args"] = args
    if why:
        rule["comment"] = why
    if includes:
        rule["includes"] = includes
    if excludes:
        rule["excludes"] = excludes
    return rule


def _conditional_rules() -> list[dict[str, Any]]:
    """Every rule after the always-allowed one, in moby's order (order is kept in the output)."""
    sys_admin = {"caps": ["CAP_SYS_ADMIN"]}
    return [
        _rule(("process_vm_readv", "process_vm_writev", "ptrace"),
              "ptrace without CAP_SYS_PTRACE only from kernel 4.8: before it, seccomp ran "
              "before the tracer, which could then rewrite an approved call into any other",
              includes={"minKernel": "4.8"}),
        # Three range rules because seccomp ANDs the conditions of one rule: "!= 38 and != 40"
        # on the same argument cannot be written as a single rule that allows everything else.
        _rule(("socket",), "socket: every address family below AF_ALG (38)",
              args=[_arg(0, "SCMP_CMP_LT", AF_ALG)]),
        _rule(("socket",), "socket: family 39, between AF_ALG (38) and AF_VSOCK (40)",
              args=[_arg(0, "SCMP_CMP_EQ", AF_ALG + 1)]),
        _rule(("socket",), "socket: every family above AF_VSOCK (40); AF_ALG and AF_VSOCK stay "
              "blocked", args=[_arg(0, "SCMP_CMP_GT", AF_VSOCK)]),
        *(_rule(("personality",), "personality: only the safe personas; others can disable "
                "ASLR (ADDR_NO_RANDOMIZE) or change memory layout",
                args=[_arg(0, "SCMP_CMP_EQ", persona)])
          for persona in (PER_LINUX, PER_LINUX32, UNAME26, PER_LINUX32 | UNAME26, PER_QUERY)),
        _rule(("sync_file_range2", "swapcontext"), "ppc64le's own spellings of common calls",
              includes={"arches": ["ppc64le"]}),
        _rule(("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
               "cacheflush", "set_tls"), "ARM's own calls: argument-order variants, cache "
              "flushing for JITs, thread-local storage", includes={"arches": ["arm", "arm64"]}),
        _rule(("arch_prctl",), "x86-64 thread-local storage (FS/GS base)",
              includes={"arches": ["amd64", "x32"]}),
        _rule(("modify_ldt",), "x86 local descriptor table (16-bit code, Wine)",
              includes={"arches": ["amd64", "x32", "x86"]}),
        _rule(("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"),
              "s390's own calls", includes={"arches": ["s390", "s390x"]}),
        _rule(("riscv_flush_icache",), "RISC-V instruction-cache flush for JITs",
              includes={"arches": ["riscv64"]}),
        _rule(("open_by_handle_at",), "CAP_DAC_READ_SEARCH: opening by file handle skips path "
              "checks and can reach host files (the 2014 'shocker' escape)",
              includes={"caps": ["CAP_DAC_READ_SEARCH"]}),
        _rule(("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen",
               "fspick", "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules",
               "lsm_set_self_attr", "mount", "mount_setattr", "move_mount", "open_tree",
               "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname",
               "setns", "syslog", "umount", "umount2", "unshare"),
              "CAP_SYS_ADMIN: mount, unshare, setns, namespaced clone and the rest rewrite the "
              "container's view of the system or reach host-wide kernel state",
              includes=sys_admin),
        _rule(("clone",), "clone: no new namespaces without CAP_SYS_ADMIN (flags mask "
              "0x7E020000)", args=[_arg(0, "SCMP_CMP_MASKED_EQ", CLONE_NAMESPACE_FLAGS)],
              excludes={"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}),
        _rule(("clone",), "s390 parameter ordering for clone is different: flags are the "
              "second argument", args=[_arg(1, "SCMP_CMP_MASKED_EQ", CLONE_NAMESPACE_FLAGS)],
              includes={"arches": ["s390", "s390x"]}, excludes=sys_admin),
        _rule(("clone3",), "clone3: ENOSYS so glibc falls back to clone, whose flags we can "
              "inspect (clone3 passes them in memory, out of seccomp's reach)",
              action=ERRNO, errno=ENOSYS, excludes=sys_admin),
        _rule(("reboot",), "CAP_SYS_BOOT: reboot (in a PID namespace it only signals init)",
              includes={"caps": ["CAP_SYS_BOOT"]}),
        _rule(("chroot",), "CAP_SYS_CHROOT: chroot", includes={"caps": ["CAP_SYS_CHROOT"]}),
        _rule(("delete_module", "init_module", "finit_module"), "CAP_SYS_MODULE: loading a "
              "kernel module is running code in the host kernel",
              includes={"caps": ["CAP_SYS_MODULE"]}),
        _rule(("acct",), "CAP_SYS_PACCT: process accounting is host-wide",
              includes={"caps": ["CAP_SYS_PACCT"]}),
        _rule(("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
               "process_vm_writev", "ptrace"), "CAP_SYS_PTRACE: reading and steering other "
              "processes", includes={"caps": ["CAP_SYS_PTRACE"]}),
        _rule(("iopl", "ioperm"), "CAP_SYS_RAWIO: raw I/O ports reach the hardware",
              includes={"caps": ["CAP_SYS_RAWIO"]}),
        _rule(("settimeofday", "stime", "clock_settime", "clock_settime64"), "CAP_SYS_TIME: "
              "the clock is not namespaced; setting it sets the host's",
              includes={"caps": ["CAP_SYS_TIME"]}),
        _rule(("vhangup",), "CAP_SYS_TTY_CONFIG: hang up the terminal",
              includes={"caps": ["CAP_SYS_TTY_CONFIG"]}),
        _rule(("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
              "CAP_SYS_NICE: NUMA memory placement affects the whole host",
              includes={"caps": ["CAP_SYS_NICE"]}),
        _rule(("syslog",), "CAP_SYSLOG: the kernel log can leak host addresses",
              includes={"caps": ["CAP_SYSLOG"]}),
        _rule(("bpf",), "CAP_BPF: BPF programs run in the kernel", includes={"caps": ["CAP_BPF"]}),
        _rule(("perf_event_open",), "CAP_PERFMON: performance counters observe the host",
              includes={"caps": ["CAP_PERFMON"]}),
    ]

# Blocked for everyone, because no capability in a container makes them safe (they are simply
# absent above): kexec_load and kexec_file_load (replace the host kernel), swapon/swapoff,
# pivot_root (the runtime does it before the filter), add_key/keyctl/request_key (the keyring
# was not namespaced), io_uring_*, userfaultfd, create_module and the other obsolete calls,
# nfsservctl, _sysctl, uselib, ustat, sysfs, vm86, ...


def docker_format_default() -> dict[str, Any]:
    """Docker's default profile in its own JSON format (archMap, includes/excludes), unresolved.

    What `docker`'s default.json is, built from the tables above; a fresh copy on every call.
    """
    return {
        "defaultAction": ERRNO,
        "defaultErrnoRet": 1,  # EPERM: the answer a program already expects from a missing right
        "archMap": [{"architecture": arch, "subArchitectures": list(subs)}
                    for arch, subs in _ARCH_FAMILIES],
        "syscalls": [_rule(ALWAYS_ALLOWED)] + _conditional_rules(),
    }


def default_profile(caps: list[str], arch: str | None = None,
                    kernel: tuple[int, int] | None = None) -> dict[str, Any]:
    """The default policy resolved for one container: the OCI `linux.seccomp` object.

    `caps` is the container's final capability list; `arch` is an os.uname().machine name and
    `kernel` a (major, minor) pair, both defaulting to this machine.
    """
    resolved = _resolve(docker_format_default(), caps, arch, kernel, "default")
    assert resolved is not None  # it has a defaultAction
    return resolved


def load_profile(text: str, caps: list[str], arch: str | None = None,
                 kernel: tuple[int, int] | None = None,
                 source: str = "PROFILE") -> dict[str, Any] | None:
    """A profile in Docker's JSON format (`--security-opt seccomp=FILE`), resolved like the default.

    Returns None for a profile with neither defaultAction nor syscalls, which Docker reads as
    "no seccomp". Raises SeccompProfileError naming `source` and the field.
    """
    try:
        profile = json.loads(text)
    except ValueError as err:  # JSONDecodeError, and UnicodeDecodeError for bytes
        raise SeccompProfileError(f"seccomp profile {source}: not valid JSON: {err}") from None
    return _resolve(profile, caps, arch, kernel, source)


# --- the resolver (moby's setupSeccomp) ----------------------------------------------------------

_TOP_FIELDS = ("defaultAction", "defaultErrnoRet", "architectures", "archMap", "syscalls",
               "flags", "listenerPath", "listenerMetadata")
_RULE_FIELDS = ("names", "name", "action", "errnoRet", "args", "comment", "includes", "excludes")
_ARG_FIELDS = ("index", "value", "valueTwo", "op")
_FILTER_FIELDS = ("caps", "arches", "minKernel")
_ARCHMAP_FIELDS = ("architecture", "subArchitectures")


class _Checker:
    """Typed reads from the decoded JSON; every failure is one line naming source and field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field: str, problem: str) -> SeccompProfileError:
        return SeccompProfileError(f"seccomp profile {self.source}: {field}: {problem}")

    def obj(self, value: Any, field: str, known: tuple[str, ...]) -> dict[str, Any]:
        """A JSON object, keys matched to `known` as Go's encoding/json does: case-insensitively,
        the last spelling winning; unknown keys ignored, as Docker ignores them."""
        if not isinstance(value, dict):
            raise self.fail(field, f"expected an object, got {_show(value)}")
        lower = {k.lower(): k for k in known}
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = key if key in known else lower.get(key.lower())
            if name is not None:
                out[name] = item
        return out

    def string(self, value: Any, field: str) -> str:
        if not isinstance(value, str):
            raise self.fail(field, f"expected a string, got {_show(value)}")
        return value

    def strings(self, value: Any, field: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(field, f"expected a list of strings, got {_show(value)}")
        return [self.string(v, f"{field}[{i}]") for i, v in enumerate(value)]

    def uint(self, value: Any, field: str, top: int = _U64) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
            raise self.fail(field, f"expected an integer from 0 to {top}, got {_show(value)}")
        return value

    def action(self, value: Any, field: str) -> str:
        if value in (None, ""):
            raise self.fail(field, "missing: one of " + ", ".join(sorted(ACTIONS)))
        act = self.string(value, field)
        if act not in ACTIONS:
            raise self.fail(field, f"{_show(act)} is not a seccomp action (one of "
                            f"{', '.join(sorted(ACTIONS))})")
        return act

    def arch(self, value: Any, field: str) -> str:
        name = self.string(value, field)
        if name not in ARCHES:
            raise self.fail(field, f"{_show(name)} is not a seccomp architecture "
                            "(SCMP_ARCH_X86_64, SCMP_ARCH_AARCH64, ...)")
        return name


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _min_kernel(c: _Checker, value: Any, field: str) -> tuple[int, int] | None:
    """moby's KernelVersion: "<kernel>.<major>", each 0-255, not "0.0"; "" reads as 0.0."""
    if value is None:
        return None
    text = c.string(value, field)
    if text == "":
        return (0, 0)  # Go leaves a zero version behind: matches every kernel
    parts = text.split(".")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() and int(p) <= 255 for p in parts):
        raise c.fail(field, f"{_show(text)} is not a kernel version: write \"<kernel>.<major>\", "
                     "e.g. \"4.8\"")
    version = (int(parts[0]), int(parts[1]))
    if version == (0, 0):
        raise c.fail(field, "kernel version cannot be 0.0")
    return version


_Filter = tuple[list[str], list[str], "tuple[int, int] | None"]


def _filter(c: _Checker, value: Any, field: str) -> _Filter:
    """includes/excludes: (caps, arches, minKernel); absent reads as no condition."""
    if value is None:
        return [], [], None
    f = c.obj(value, field, _FILTER_FIELDS)
    return (c.strings(f.get("caps"), f"{field}.caps"),
            c.strings(f.get("arches"), f"{field}.arches"),
            _min_kernel(c, f.get("minKernel"), f"{field}.minKernel"))


def _host_kernel() -> tuple[int, int] | None:
    """(major, minor) from uname's release as moby reads it ("%d.%d"): "6.1.0-13-amd64",
    "3.12-1-amd64" and "4.8rc1" all work; the rest of the string is ignored."""
    major, _, rest = os.uname().release.partition(".")
    minor = rest[:len(rest) - len(rest.lstrip("0123456789"))]
    if not (major.isascii() and major.isdigit() and minor):
        return None
    return int(major), int(minor)


def _resolve(profile: Any, caps: list[str], arch: str | None,
             kernel: tuple[int, int] | None, source: str) -> dict[str, Any] | None:
    """Validate a Docker-format profile and keep the rules whose conditions hold (setupSeccomp)."""
    c = _Checker(source)
    if not isinstance(profile, dict):
        raise SeccompProfileError(f"seccomp profile {source}: expected a JSON object, got "
                                  f"{_show(profile)}")
    top = c.obj(profile, "profile", _TOP_FIELDS)
    rules_in = top.get("syscalls")
    if rules_in is None:
        rules_in = []
    if not isinstance(rules_in, list):
        raise c.fail("syscalls", f"expected a list of rules, got {_show(rules_in)}")
    if top.get("defaultAction") in (None, "") and not rules_in:
        return None  # Docker: nothing to enforce means seccomp is off

    out: dict[str, Any] = {"defaultAction": c.action(top.get("defaultAction"), "defaultAction")}
    if out["defaultAction"] == "SCMP_ACT_NOTIFY":
        raise c.fail("defaultAction", "SCMP_ACT_NOTIFY cannot be the default action (every "
                     "call, the runtime's own included, would wait for the listener)")
    if top.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = c.uint(top["defaultErrnoRet"], "defaultErrnoRet")

    native = _NATIVE.get(arch if arch is not None else os.uname().machine)
    if top.get("architectures") and top.get("archMap"):
        raise c.fail("archMap", "both \"architectures\" and \"archMap\" are given: use one")
    if top.get("architectures"):
        out["architectures"] = [c.arch(a, f"architectures[{i}]") for i, a in
                                enumerate(c.strings(top["architectures"], "architectures"))]
    elif top.get("archMap") is not None:
        out.update(_arch_map(c, top["archMap"], native))
    flags = c.strings(top.get("flags"), "flags")
    if flags:
        out["flags"] = flags  # passed through: the runtime knows which it supports
    for key in ("listenerPath", "listenerMetadata"):
        if top.get(key) is not None and c.string(top[key], key):
            out[key] = top[key]

    host = _Host({_cap_name(x) for x in caps}, native, kernel)
    syscalls: list[dict[str, Any]] = []
    for i, raw in enumerate(rules_in):
        field = f"syscalls[{i}]"
        rule = c.obj(raw, field, _RULE_FIELDS)
        entry: dict[str, Any] = {"names": _rule_names(c, rule, field),
                                 "action": c.action(rule.get("action"), f"{field}.action")}
        if entry["action"] == "SCMP_ACT_NOTIFY":
            if "write" in entry["names"]:
                raise c.fail(f"{field}.names", "SCMP_ACT_NOTIFY cannot cover \"write\": the "
                             "runtime writes to the listener with it")
            if not out.get("listenerPath"):
                raise c.fail(f"{field}.action", "SCMP_ACT_NOTIFY needs \"listenerPath\", the "
                             "socket the notifications go to")
        if rule.get("errnoRet") is not None:
            entry["errnoRet"] = c.uint(rule["errnoRet"], f"{field}.errnoRet")
        args = _args(c, rule.get("args"), f"{field}.args")
        if args:
            entry["args"] = args
        if rule.get("comment") is not None:
            c.string(rule["comment"], f"{field}.comment")
        excludes = _filter(c, rule.get("excludes"), f"{field}.excludes")
        includes = _filter(c, rule.get("includes"), f"{field}.includes")
        if host.keeps(c, excludes, includes, field):
            syscalls.append(entry)
    if syscalls:
        out["syscalls"] = syscalls
    return out


class _Host:
    """What a rule's conditions are tested against: the container's caps, the machine's
    architecture (libseccomp's name, or None if unknown) and kernel (read only if asked)."""

    def __init__(self, caps: set[str], native: str | None,
                 kernel: tuple[int, int] | None) -> None:
        self.caps, self.native = caps, native
        self._kernel, self._kernel_read = kernel, kernel is not None

    def kernel_at_least(self, c: _Checker, version: tuple[int, int], field: str) -> bool:
        if not self._kernel_read:
            self._kernel, self._kernel_read = _host_kernel(), True
        if self._kernel is None:
            raise c.fail(field, "cannot read this kernel's version from "
                         f"{os.uname().release!r}; pass kernel=(major, minor)")
        return tuple(self._kernel) >= version

    def keeps(self, c: _Checker, excludes: _Filter, includes: _Filter, field: str) -> bool:
        """moby's order: an exclude that holds drops the rule (any arch, any cap, the kernel);
        then every include must hold (arch among those listed, all caps, the kernel)."""
        caps, arches, min_kernel = excludes
        if self.native in arches or any(x in self.caps for x in caps):
            return False
        if min_kernel and self.kernel_at_least(c, min_kernel, f"{field}.excludes.minKernel"):
            return False
        caps, arches, min_kernel = includes
        if arches and self.native not in arches:
            return False
        if not all(x in self.caps for x in caps):
            return False
        if min_kernel and not self.kernel_at_least(c, min_kernel, f"{field}.includes.minKernel"):
            return False
        return True


def _arch_map(c: _Checker, value: Any, native: str | None) -> dict[str, Any]:
    """The archMap entry for this machine's architecture: itself and its companion ABIs."""
    if not isinstance(value, list):
        raise c.fail("archMap", f"expected a list, got {_show(value)}")
    entries = []
    for i, raw in enumerate(value):
        e = c.obj(raw, f"archMap[{i}]", _ARCHMAP_FIELDS)
        main = c.arch(e.get("architecture"), f"archMap[{i}].architecture")
        subs = [c.arch(s, f"archMap[{i}].subArchitectures[{j}]") for j, s in
                enumerate(c.strings(e.get("subArchitectures"), f"archMap[{i}].subArchitectures"))]
        entries.append((main, subs))
    wanted = _NATIVE_TO_SCMP.get(native or "")
    for main, subs in entries:
        if main == wanted:
            return {"architectures": [main, *subs]}
    return {}  # like Docker: an architecture the map does not list gets no list at all


def _rule_names(c: _Checker, rule: dict[str, Any], field: str) -> list[str]:
    """`names`, or the single `name` of older profiles; never both, never none."""
    names = c.strings(rule.get("names"), f"{field}.names")
    old = rule.get("name")
    if old not in (None, ""):
        old = c.string(old, f"{field}.name")
        if names:
            raise c.fail(field, "both \"name\" and \"names\" are given: use \"names\"")
        names = [old]
    if not names:
        raise c.fail(f"{field}.names", "no syscall names: list at least one, e.g. "
                     "\"names\": [\"mount\"]")
    for j, name in enumerate(names):
        if not name:
            raise c.fail(f"{field}.names[{j}]", "empty syscall name")
    return names


def _args(c: _Checker, value: Any, field: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise c.fail(field, f"expected a list of argument conditions, got {_show(value)}")
    out = []
    for i, raw in enumerate(value):
        f = f"{field}[{i}]"
        a = c.obj(raw, f, _ARG_FIELDS)
        op = c.string(a.get("op"), f"{f}.op")
        if op not in OPS:
            raise c.fail(f"{f}.op", f"{_show(op)} is not a comparison (one of "
                         f"{', '.join(sorted(OPS))})")
        out.append({"index": c.uint(a.get("index", 0), f"{f}.index", _MAX_ARGS - 1),
                    "value": c.uint(a.get("value", 0), f"{f}.value"),
                    "valueTwo": c.uint(a.get("valueTwo", 0), f"{f}.valueTwo"),
                    "op": op})
    return out


def _cap_name(cap: str) -> str:
    """Capabilities as the bounding set spells them: "sys_admin" -> "CAP_SYS_ADMIN"."""
    cap = cap.upper()
    return cap if cap.startswith("CAP_") else "CAP_" + cap
