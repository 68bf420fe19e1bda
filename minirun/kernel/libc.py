"""The kernel seam: every system call minirun makes, in one place.

Why one seam?
  * --trace: each public function here narrates its call (arguments and the caller's reason)
    before making it, so a workshop can watch a container being built step by step;
  * tests: `install(Recorder())` swaps the real kernel for a recorder, so rootfs and namespace
    logic can be unit-tested without root;
  * errors: a failing call raises KernelError naming the call, its object and errno.

The public functions take a `why` string: a short reason written for a human reader, shown only
with --trace. Narration costs one flag test when tracing is off.

ctypes is used for the calls Python 3.11 lacks (unshare, setns, mount, umount2, pivot_root,
sethostname ...); calls the os module has (fork, execve, chroot, setresuid ...) go through here
too, so the trace is complete.

Capabilities and prctl(2) go through python-prctl's public module `prctl`: `set_caps` for
capset (one call for the three sets, through libcap), and `capbset_drop`, `set_keepcaps`,
`set_dumpable`, `set_no_new_privs`, `set_child_subreaper`, `set_pdeathsig` for those options;
it checks their arguments (a capability its libcap knows, a 0/1 flag) before the kernel sees
them. It has no function for PR_CAP_AMBIENT, so ambient capabilities stay on ctypes' prctl.
Securebits (`prctl.securebits`) are not used: Docker and runc leave them alone.
What `prctl` costs: measured with `python3 -IS -X importtime` as the lean minirun-oci launcher
runs (medians of 15-21 runs, 2-core VM): `_prctl` (its C module) 0.2 ms, `prctl` 0.7 ms (its
module body builds a property per capability; it imports nothing else), `ctypes` 2.4 ms. Only
the verbs that read a config.json (create, run, exec) import it, through capabilities.py, so
the public API adds ~0.45 ms to a ~31 ms create and nothing to state, start, kill or delete.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat

from .. import trace
from ..errors import KernelError


# --- constants (linux/sched.h, linux/mount.h, linux/prctl.h) -------------------------------

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080
CLONE_INTO_CGROUP = 0x200000000  # clone3 only (linux 5.7)

CLONE_NAMES = {
    CLONE_NEWNS: "CLONE_NEWNS", CLONE_NEWCGROUP: "CLONE_NEWCGROUP", CLONE_NEWUTS: "CLONE_NEWUTS",
    CLONE_NEWIPC: "CLONE_NEWIPC", CLONE_NEWUSER: "CLONE_NEWUSER", CLONE_NEWPID: "CLONE_NEWPID",
    CLONE_NEWNET: "CLONE_NEWNET", CLONE_NEWTIME: "CLONE_NEWTIME",
}

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MS_NAMES = {
    MS_RDONLY: "MS_RDONLY", MS_NOSUID: "MS_NOSUID", MS_NODEV: "MS_NODEV", MS_NOEXEC: "MS_NOEXEC",
    MS_SYNCHRONOUS: "MS_SYNCHRONOUS", MS_REMOUNT: "MS_REMOUNT", MS_MANDLOCK: "MS_MANDLOCK",
    MS_DIRSYNC: "MS_DIRSYNC", MS_NOSYMFOLLOW: "MS_NOSYMFOLLOW", MS_NOATIME: "MS_NOATIME",
    MS_NODIRATIME: "MS_NODIRATIME", MS_BIND: "MS_BIND", MS_MOVE: "MS_MOVE", MS_REC: "MS_REC",
    MS_SILENT: "MS_SILENT", MS_UNBINDABLE: "MS_UNBINDABLE", MS_PRIVATE: "MS_PRIVATE",
    MS_SLAVE: "MS_SLAVE", MS_SHARED: "MS_SHARED", MS_RELATIME: "MS_RELATIME",
    MS_I_VERSION: "MS_I_VERSION", MS_STRICTATIME: "MS_STRICTATIME", MS_LAZYTIME: "MS_LAZYTIME",
}

MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

# The options python-prctl has a public function for (prctl.set_dumpable(0) ...). It has none
# for PR_CAP_AMBIENT (ambient capabilities, linux 4.3): that one goes through ctypes.
_PYPRCTL_FUNCTIONS = {
    PR_SET_PDEATHSIG: "set_pdeathsig", PR_SET_DUMPABLE: "set_dumpable",
    PR_SET_KEEPCAPS: "set_keepcaps", PR_CAPBSET_DROP: "capbset_drop",
    PR_SET_CHILD_SUBREAPER: "set_child_subreaper", PR_SET_NO_NEW_PRIVS: "set_no_new_privs",
}

PRCTL_NAMES = {
    PR_SET_PDEATHSIG: "PR_SET_PDEATHSIG", PR_SET_DUMPABLE: "PR_SET_DUMPABLE",
    PR_SET_KEEPCAPS: "PR_SET_KEEPCAPS", PR_CAPBSET_DROP: "PR_CAPBSET_DROP",
    PR_SET_CHILD_SUBREAPER: "PR_SET_CHILD_SUBREAPER", PR_SET_NO_NEW_PRIVS: "PR_SET_NO_NEW_PRIVS",
    PR_CAP_AMBIENT: "PR_CAP_AMBIENT",
}

RLIMIT_INFINITY = (1 << 64) - 1
# The new mount API (linux/mount.h): detached mount trees, idmapped mounts.
OPEN_TREE_CLONE = 1
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOUNT_ATTR_IDMAP = 0x00100000
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC = 0x1, 0x2, 0x4, 0x8
MOUNT_ATTR__ATIME, MOUNT_ATTR_RELATIME, MOUNT_ATTR_NOATIME = 0x70, 0x0, 0x10
MOUNT_ATTR_STRICTATIME, MOUNT_ATTR_NODIRATIME = 0x20, 0x80
MOVE_MOUNT_F_EMPTY_PATH = 0x00000004
MOVE_MOUNT_T_EMPTY_PATH = 0x00000040
MFD_EXEC = 0x10  # memfd_create: an executable memfd (6.3; vm.memfd_noexec may insist on it)

# Syscall numbers glibc has no wrapper for, per architecture.
_SYSCALLS = {
    "x86_64": {"pivot_root": 155, "keyctl": 250, "seccomp": 317, "bpf": 321, "clone3": 435},
    "aarch64": {"pivot_root": 41, "keyctl": 219, "seccomp": 277, "bpf": 280, "clone3": 435},
}
# Numbered alike on every architecture (the tables were unified at 424).
_SYSCALLS_COMMON = {"open_tree": 428, "move_mount": 429, "openat2": 437, "pidfd_getfd": 438,
                    "mount_setattr": 442}
KEYCTL_JOIN_SESSION_KEYRING = 1


def flag_names(value: int, names: dict[int, str]) -> str:
    """Render a bit mask as A|B|C for the trace (unknown bits as hex)."""
    parts = [name for bit, name in names.items() if value & bit]
    rest = value & ~sum(b for b in names if value & b)
    if rest:
        parts.append(hex(rest))
    return "|".join(parts) or "0"


# --- the real kernel ----------------------------------------------------------------------


class Kernel:
    """The real kernel, reached through ctypes and the os module. One method per call.

    ctypes is loaded on the first call that needs it: `kill`, `state` and `delete` never do,
    and `import ctypes` costs ~2 ms of their start-up.
    """

    _lib = None
    _ctypes = None
    _prctl_mod = None
    _clone3 = None
    _nr: dict[str, int] = {}

    @property
    def _libc(self):
        if self._lib is None:
            import ctypes  # lazy: only the verbs that make raw system calls (start-up budget)

            lib = ctypes.CDLL(None, use_errno=True)
            lib.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                  ctypes.c_ulong, ctypes.c_char_p]
            lib.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong,
                                  ctypes.c_ulong, ctypes.c_ulong]
            Kernel._ctypes = ctypes
            Kernel._nr = {**_SYSCALLS.get(os.uname().machine, _SYSCALLS["x86_64"]),
                          **_SYSCALLS_COMMON}
            Kernel._lib = lib
        return self._lib

    def _check(self, rc: int, call: str, obj: str) -> int:
        if rc == -1:
            raise KernelError(call, obj, self._ctypes.get_errno())
        return rc

    def unshare(self, flags: int) -> None:
        self._check(self._libc.unshare(flags), "unshare", flag_names(flags, CLONE_NAMES))

    def setns(self, fd: int, nstype: int, what: str) -> None:
        self._check(self._libc.setns(fd, nstype), "setns", what)

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None) -> None:
        rc = self._libc.mount(_b(source), target.encode(), _b(fstype), flags, _b(data))
        self._check(rc, "mount", f"{fstype or source} on {target}")

    def umount2(self, target: str, flags: int) -> None:
        self._check(self._libc.umount2(target.encode(), flags), "umount", target)

    def syncfs(self, fd: int, what: str) -> None:
        self._check(self._libc.syncfs(fd), "syncfs", what)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        lib = self._libc
        rc = lib.syscall(self._nr["pivot_root"], new_root.encode(), put_old.encode())
        self._check(rc, "pivot_root", new_root)

    def sethostname(self, name: str) -> None:
        b = name.encode()
        self._check(self._libc.sethostname(b, len(b)), "sethostname", name)

    def setdomainname(self, name: str) -> None:
        b = name.encode()
        self._check(self._libc.setdomainname(b, len(b)), "setdomainname", name)

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0) -> int:
        name = _PYPRCTL_FUNCTIONS.get(option)
        if name is None:  # PR_CAP_AMBIENT: python-prctl has no function for it
            return self._check(self._libc.prctl(option, arg2, arg3, 0, 0), "prctl",
                               PRCTL_NAMES.get(option, str(option)))
        try:
            getattr(self._pyprctl, name)(arg2)
        except OSError as e:
            raise KernelError("prctl", PRCTL_NAMES[option], e.errno or errno.EPERM) from None
        except ValueError as e:  # python-prctl checked the argument and refused it
            raise KernelError("prctl", f"{PRCTL_NAMES[option]} {arg2}", errno.EINVAL,
                              str(e)) from None
        return 0

    @property
    def _pyprctl(self):
        """python-prctl's public module. capabilities.py imports it before any pivot_root
        (imports afterwards would search the container's rootfs); here it is then found in
        sys.modules. The other callers (monitor, exec, health checks) import it on first use."""
        if Kernel._prctl_mod is None:
            try:
                import prctl  # lazy: only the verbs that set capabilities (start-up budget)
            except ImportError:
                raise KernelError("prctl", "python-prctl", errno.ENOSYS,
                                  "install it: pip install python-prctl") from None
            Kernel._prctl_mod = prctl
        return Kernel._prctl_mod

    def prlimit(self, resource: int, soft: int, hard: int, what: str) -> None:
        lib = self._libc
        c = self._ctypes
        lim = (c.c_uint64 * 2)(soft, hard)  # struct rlimit {rlim_cur, rlim_max}
        self._check(lib.prlimit(0, resource, lim, None), "setrlimit", what)

    def keyctl_join(self, name: str) -> int:
        lib = self._libc
        rc = lib.syscall(self._nr["keyctl"], KEYCTL_JOIN_SESSION_KEYRING, name.encode())
        return self._check(rc, "keyctl(JOIN_SESSION_KEYRING)", name)

    def seccomp(self, flags: int, program: bytes) -> int:
        """seccomp(SECCOMP_SET_MODE_FILTER, flags, &{len, filter}): 0, or the listener fd."""
        import struct  # lazy: only the calls that pack a C struct (start-up budget)

        lib = self._libc
        buf = self._ctypes.create_string_buffer(program, len(program))
        fprog = self._ctypes.create_string_buffer(
            struct.pack("=HxxxxxxQ", len(program) // 8, self._ctypes.addressof(buf)), 16)
        rc = lib.syscall(self._nr["seccomp"], 1, self._ctypes.c_ulong(flags), fprog)
        return self._check(rc, "seccomp(SECCOMP_SET_MODE_FILTER)", f"{len(program) // 8} "
                           "BPF instructions")

    def pidfd_getfd(self, pid: int, fd: int) -> int:
        pidfd = os.pidfd_open(pid)
        try:
            rc = self._libc.syscall(self._nr["pidfd_getfd"], pidfd, fd, 0)
            return self._check(rc, "pidfd_getfd", f"fd {fd} of process {pid}")
        finally:
            os.close(pidfd)

    def openat2(self, dirfd: int, path: str, flags: int, mode: int, resolve: int) -> int:
        """openat2(dirfd, path, &{flags, mode, resolve}, 24): an fd, or KernelError (ENOSYS
        before linux 5.6)."""
        import struct  # lazy: only the calls that pack a C struct (start-up budget)

        lib = self._libc  # (loads ctypes on first use)
        how = self._ctypes.create_string_buffer(struct.pack("=QQQ", flags, mode, resolve), 24)
        rc = lib.syscall(self._nr["openat2"], dirfd, path.encode(), how, 24)
        return self._check(rc, "openat2", path)

    def open_tree(self, path: str, flags: int) -> int:
        rc = self._libc.syscall(self._nr["open_tree"], -100, path.encode(), flags)  # AT_FDCWD
        return self._check(rc, "open_tree", path)

    def mount_setattr(self, fd: int, flags: int, attr_set: int, userns_fd: int, what: str,
                      attr_clr: int = 0) -> None:
        import struct  # lazy: only the calls that pack a C struct (start-up budget)

        lib = self._libc  # (loads ctypes on first use)
        attr = self._ctypes.create_string_buffer(
            struct.pack("=QQQQ", attr_set, attr_clr, 0, userns_fd), 32)
        rc = lib.syscall(self._nr["mount_setattr"], fd, b"", flags | AT_EMPTY_PATH, attr, 32)
        self._check(rc, "mount_setattr", what)

    def move_mount(self, fd: int, target: str | int) -> None:
        if isinstance(target, int):  # onto an O_PATH fd (pinned target)
            rc = self._libc.syscall(self._nr["move_mount"], fd, b"", target, b"",
                                    MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)
        else:
            rc = self._libc.syscall(self._nr["move_mount"], fd, b"", -100, target.encode(),
                                    MOVE_MOUNT_F_EMPTY_PATH)
        self._check(rc, "move_mount", str(target))

    def sealed_memfd(self, name: str, data: bytes) -> int:
        flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
        try:
            fd = os.memfd_create(name, flags | MFD_EXEC)  # say "executable" where asked to
        except OSError:
            fd = os.memfd_create(name, flags)  # kernels before 6.3 know no MFD_EXEC
        try:
            os.write(fd, data)
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK |
                        fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def bpf(self, cmd: int, attr: bytes, what: str) -> tuple[int, bytes]:
        """bpf(2) with a union bpf_attr given as bytes; returns (result, the attr after the call)."""
        lib = self._libc
        buf = self._ctypes.create_string_buffer(attr, 128)
        rc = lib.syscall(self._nr["bpf"], cmd, buf, 128)
        return self._check(rc, "bpf", what), buf.raw

    def address_of(self, data: bytes):
        """Keep `data` alive in a C buffer and return (buffer, its address) for bpf_attr fields."""
        _ = self._libc  # loads ctypes
        buf = self._ctypes.create_string_buffer(data, len(data) or 1)
        return buf, self._ctypes.addressof(buf)

    def capset(self, effective: list[int], permitted: list[int], inheritable: list[int],
               last_cap: int) -> None:
        # prctl.set_caps: one capset(2) through libcap for all three sets, as (caps, set, raise
        # or clear) triples; the listed bits are raised and every other one is cleared. (The
        # module's cap_effective/cap_permitted/cap_inheritable objects make one capset per bit,
        # and the kernel refuses any step where effective is not within permitted.)
        p = self._pyprctl
        allcaps = range(last_cap + 1)
        try:
            p.set_caps((effective, p.CAP_EFFECTIVE, True),
                       (permitted, p.CAP_PERMITTED, True),
                       (inheritable, p.CAP_INHERITABLE, True),
                       ([c for c in allcaps if c not in effective], p.CAP_EFFECTIVE, False),
                       ([c for c in allcaps if c not in permitted], p.CAP_PERMITTED, False),
                       ([c for c in allcaps if c not in inheritable], p.CAP_INHERITABLE, False))
        except OSError as e:
            raise KernelError("capset", "process capabilities", e.errno or errno.EPERM) from None
        except ValueError as e:  # a capability this python-prctl does not know (before 1.8: >35)
            raise KernelError("capset", "process capabilities", errno.EINVAL,
                              f"{e}: pip install 'python-prctl>=1.8', built against this "
                              "kernel's headers") from None

    # Calls the os module already has: kept here so they are narrated and can be faked.
    def fork(self) -> int:
        return os.fork()

    def clone_into_cgroup(self, cgroup_fd: int) -> int:
        """fork(), but through clone3(CLONE_INTO_CGROUP): the child is born in the cgroup2
        cgroup behind `cgroup_fd`. -1 if this kernel cannot (clone3 is 5.3, the flag 5.7)."""
        ctypes = self._ctypes_mod()
        if Kernel._clone3 is None:
            fields = ("flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack",
                      "stack_size", "tls", "set_tid", "set_tid_size", "cgroup")
            args_t = type("clone_args", (ctypes.Structure,),
                          {"_fields_": [(f, ctypes.c_uint64) for f in fields]})
            # PyDLL: the call keeps the GIL, so the child resumes holding it, as after os.fork().
            call = ctypes.PyDLL(None, use_errno=True).syscall
            call.restype = ctypes.c_long
            Kernel._clone3 = (args_t, call)
        args_t, call = Kernel._clone3
        args = args_t(flags=CLONE_INTO_CGROUP, exit_signal=17, cgroup=cgroup_fd)  # SIGCHLD
        api = ctypes.pythonapi
        api.PyOS_BeforeFork()  # what os.fork() does around fork(2): locks, at-fork hooks
        pid = call(ctypes.c_long(self._nr_of("clone3")), ctypes.byref(args),
                   ctypes.c_size_t(ctypes.sizeof(args)))
        if pid == 0:
            api.PyOS_AfterFork_Child()
            return 0
        err = ctypes.get_errno()
        api.PyOS_AfterFork_Parent()
        if pid < 0:
            if err in (38, 22, 7):  # ENOSYS, EINVAL, E2BIG: an older kernel
                return -1
            raise KernelError("clone3", "CLONE_INTO_CGROUP", err)
        return pid

    def _ctypes_mod(self):
        self._libc  # loads ctypes
        return self._ctypes

    def _nr_of(self, name: str) -> int:
        self._libc
        return self._nr[name]

    def execve(self, path: str, args: list[str], env: dict[str, str]) -> None:
        os.execve(path, args, env)

    def chroot(self, path: str) -> None:
        os.chroot(path)

    def chdir(self, path: str | int) -> None:
        os.chdir(path)

    def mknod(self, path: str, mode: int, device: int, dir_fd: int | None = None) -> None:
        os.mknod(path, mode, device, dir_fd=dir_fd)

    def chown(self, path: str, uid: int, gid: int, dir_fd: int | None = None) -> None:
        os.chown(path, uid, gid, dir_fd=dir_fd, follow_symlinks=False)

    def chmod(self, path: str, mode: int, dir_fd: int | None = None) -> None:
        if dir_fd is None:
            os.chmod(path, mode)
            return
        # fchmodat has no working AT_SYMLINK_NOFOLLOW: open the entry itself, refuse a symlink
        # (swapped in since it was made), chmod exactly that object.
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                raise OSError(errno.ELOOP, "a symlink: refusing to chmod through it", path)
            os.chmod(f"/proc/self/fd/{fd}", mode)
        finally:
            os.close(fd)

    def symlink(self, target: str, path: str, dir_fd: int | None = None) -> None:
        os.symlink(target, path, dir_fd=dir_fd)

    def write_file(self, path: str, data: str, dir_fd: int | None = None) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            os.write(fd, data.encode())
        finally:
            os.close(fd)

    def setgroups(self, gids: list[int]) -> None:
        os.setgroups(gids)

    def setresgid(self, gid: int) -> None:
        os.setresgid(gid, gid, gid)

    def setresuid(self, uid: int) -> None:
        os.setresuid(uid, uid, uid)

    def setsid(self) -> None:
        os.setsid()

    def umask(self, mask: int) -> None:
        os.umask(mask)

    def kill(self, pid: int, sig: int) -> None:
        os.kill(pid, sig)


def _b(s: str | None) -> bytes | None:
    return None if s is None else s.encode()


class Recorder:
    """A fake kernel for unit tests: records each call as (name, args) and succeeds.

    `fail` maps a call name to an errno to simulate a failure of that call.
    """

    def __init__(self, fail: dict[str, int] | None = None) -> None:
        self.calls: list[tuple] = []
        self.fail = fail or {}
        self._next_pid = 1000

    # Lookups are made for real: they change nothing, and the code under test goes on to
    # create and mount on what they found (in the test's own tmp tree).
    REAL = ("openat2",)

    def __getattr__(self, name: str):
        if name in self.REAL:
            return getattr(Kernel(), name)

        def record(*args):
            self.calls.append((name, *args))
            if name in self.fail:
                raise KernelError(name, str(args[0]) if args else "", self.fail[name])
            if name in ("fork", "clone_into_cgroup"):
                self._next_pid += 1
                return self._next_pid
            return 0
        return record

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


_k: Kernel | Recorder | None = None


def preload() -> None:
    """Load ctypes and libc now, off the critical path (the first raw call would otherwise)."""
    k = kernel()
    if isinstance(k, Kernel):
        k._libc


def kernel() -> Kernel | Recorder:
    global _k
    if _k is None:
        _k = Kernel()
    return _k


def install(impl: Kernel | Recorder | None) -> None:
    """Swap the kernel behind the seam (tests pass a Recorder; None restores the real one)."""
    global _k
    _k = impl


# --- the seam: narrate, then call --------------------------------------------------------


def unshare(flags: int, why: str) -> None:
    if trace.enabled:
        trace.step(f"unshare({flag_names(flags, CLONE_NAMES)})", why)
    kernel().unshare(flags)


def setns(path: str, nstype: int, why: str) -> None:
    """Join the namespace behind a /proc/PID/ns/* (or bind-mounted) file."""
    if trace.enabled:
        trace.step(f'setns(open("{path}"), {flag_names(nstype, CLONE_NAMES)})', why)
    k = kernel()
    if isinstance(k, Recorder):
        k.setns(path, nstype)
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise KernelError("open namespace", path, e.errno or 1) from None
    try:
        k.setns(fd, nstype, path)
    finally:
        os.close(fd)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None,
          why: str, shown: tuple[str | None, str] | None = None) -> None:
    """mount(2). `shown` (source, target): what the trace names instead of /proc/self/fd/N
    paths, when the call goes through pinned file descriptors (kernel/rootfs.py)."""
    if trace.enabled:
        src, tgt, via = source, target, []
        if shown:  # through pinned fds: the call names the objects, then says how
            if shown[0] and source and source != shown[0]:
                src, via = shown[0], via + [f"source {source}"]
            if target != shown[1]:
                tgt, via = shown[1], via + [f"target {target}"]
        trace.step(f'mount("{src or ""}", "{tgt}", "{fstype or ""}", '
                   f'{flag_names(flags, MS_NAMES)}{", " + repr(data) if data else ""})'
                   + (f" [{', '.join(via)}]" if via else ""), why)
    k = kernel()
    if shown and isinstance(k, Recorder):  # tests read names, not fd numbers
        source, target = (shown[0] if source else source), shown[1]
    k.mount(source, target, fstype, flags, data)


def umount2(target: str, flags: int, why: str) -> None:
    if trace.enabled:
        trace.step(f'umount2("{target}", {"MNT_DETACH" if flags & MNT_DETACH else flags})', why)
    kernel().umount2(target, flags)


def pivot_root(new_root: str, put_old: str, why: str) -> None:
    if trace.enabled:
        trace.step(f'pivot_root("{new_root}", "{put_old}")', why)
    kernel().pivot_root(new_root, put_old)


def chroot(path: str, why: str) -> None:
    if trace.enabled:
        trace.step(f'chroot("{path}")', why)
    kernel().chroot(path)


def chdir(path: str | int, why: str) -> None:
    if trace.enabled:
        trace.step(f"fchdir({path})" if isinstance(path, int) else f'chdir("{path}")', why)
    kernel().chdir(path)


def sethostname(name: str, why: str) -> None:
    if trace.enabled:
        trace.step(f'sethostname("{name}")', why)
    kernel().sethostname(name)


def setdomainname(name: str, why: str) -> None:
    if trace.enabled:
        trace.step(f'setdomainname("{name}")', why)
    kernel().setdomainname(name)


def _at(path: str, dir_fd: int | None) -> tuple[str, str]:
    """(the path to show, the trace's suffix) for a call relative to a directory fd: the trace
    and a Recorder name the object (its directory's real path + the name), then say how."""
    if dir_fd is None:
        return path, ""
    try:
        where = os.readlink(f"/proc/self/fd/{dir_fd}")
    except OSError:
        return path, f" [relative to dir fd {dir_fd}]"
    return os.path.join(where, path), f" [relative to dir fd {dir_fd}]"


def _call_at(name: str, path: str, dir_fd: int | None, *args) -> None:
    """kernel().name(path, *args[, dir_fd]): a Recorder gets the shown path, never an fd."""
    k = kernel()
    if dir_fd is None:
        getattr(k, name)(path, *args)
    elif isinstance(k, Recorder):  # tests read names, not fd numbers
        getattr(k, name)(_at(path, dir_fd)[0], *args)
    else:
        getattr(k, name)(path, *args, dir_fd)


def mknod(path: str, mode: int, major: int, minor: int, why: str, dir_fd: int | None = None
          ) -> None:
    """mknod(2), or mknodat(2) relative to `dir_fd` (an entry made in a directory we hold)."""
    if trace.enabled:
        shown, how = _at(path, dir_fd)
        trace.step(f'mknod("{shown}", {oct(mode)}, makedev({major}, {minor})){how}', why)
    _call_at("mknod", path, dir_fd, mode, os.makedev(major, minor))


def chown(path: str, uid: int, gid: int, why: str, dir_fd: int | None = None) -> None:
    if trace.enabled:
        shown, how = _at(path, dir_fd)
        trace.step(f'lchown("{shown}", {uid}, {gid}){how}', why)
    _call_at("chown", path, dir_fd, uid, gid)


def chmod(path: str, mode: int, why: str, dir_fd: int | None = None) -> None:
    if trace.enabled:
        shown, how = _at(path, dir_fd)
        trace.step(f'chmod("{shown}", {oct(mode)}){how}', why)
    _call_at("chmod", path, dir_fd, mode)


def symlink(target: str, path: str, why: str, dir_fd: int | None = None) -> None:
    if trace.enabled:
        shown, how = _at(path, dir_fd)
        trace.step(f'symlink("{target}", "{shown}"){how}', why)
    k = kernel()
    if dir_fd is None:
        k.symlink(target, path)
    elif isinstance(k, Recorder):  # tests read names, not fd numbers
        k.symlink(target, _at(path, dir_fd)[0])
    else:
        k.symlink(target, path, dir_fd)


def write_file(path: str, data: str, why: str, dir_fd: int | None = None) -> None:
    """Write a kernel control file (/proc/PID/uid_map, /proc/sys/..., cgroup files)."""
    if trace.enabled:
        shown = data.strip().replace("\n", "\\n")
        trace.step(f'write("{path}", "{shown}")', why)
    kernel().write_file(path, data, dir_fd)


def prctl(option: int, arg2: int, why: str, arg3: int = 0) -> int:
    if trace.enabled:
        shown = {PR_CAP_AMBIENT_RAISE: "PR_CAP_AMBIENT_RAISE",
                 PR_CAP_AMBIENT_CLEAR_ALL: "PR_CAP_AMBIENT_CLEAR_ALL"}.get(arg2, arg2) \
            if option == PR_CAP_AMBIENT else arg2
        trace.step(f"prctl({PRCTL_NAMES.get(option, option)}, {shown}"
                   f"{', ' + str(arg3) if arg3 else ''})", why)
    return kernel().prctl(option, arg2, arg3)


def setrlimit(resource: int, name: str, soft: int, hard: int, why: str) -> None:
    if trace.enabled:
        trace.step(f"setrlimit({name}, soft={soft}, hard={hard})", why)
    kernel().prlimit(resource, soft, hard, name)


def keyctl_join_session(name: str, why: str) -> None:
    if trace.enabled:
        trace.step(f'keyctl(KEYCTL_JOIN_SESSION_KEYRING, "{name}")', why)
    kernel().keyctl_join(name)


def capset(effective: list[int], permitted: list[int], inheritable: list[int], last_cap: int,
           why: str) -> None:
    if trace.enabled:
        trace.step(f"capset(effective={_mask(effective)}, permitted={_mask(permitted)}, "
                   f"inheritable={_mask(inheritable)})", why)
    kernel().capset(effective, permitted, inheritable, last_cap)


def seccomp_set_filter(program: bytes, flags: int, why: str) -> int:
    """Load a seccomp BPF program for this process and its descendants, for good."""
    if trace.enabled:
        names = {1: "TSYNC", 2: "LOG", 4: "SPEC_ALLOW", 8: "NEW_LISTENER", 32: "WAIT_KILLABLE_RECV"}
        shown = "|".join("SECCOMP_FILTER_FLAG_" + n for b, n in names.items() if flags & b) or "0"
        trace.step(f"seccomp(SECCOMP_SET_MODE_FILTER, {shown}, {{len={len(program) // 8}}})", why)
    return kernel().seccomp(flags, program)


def open_tree(path: str, recursive: bool, why: str) -> int:
    """A detached copy of the mount tree at `path` (OPEN_TREE_CLONE): an fd, attached nowhere."""
    flags = OPEN_TREE_CLONE | os.O_CLOEXEC | (AT_RECURSIVE if recursive else 0)
    if trace.enabled:
        trace.step(f'open_tree(AT_FDCWD, "{path}", OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC'
                   f'{"|AT_RECURSIVE" if recursive else ""})', why)
    return kernel().open_tree(path, flags)


def mount_setattr_idmap(fd: int, userns_fd: int, recursive: bool, what: str, why: str) -> None:
    """Make a detached mount idmapped: files are seen through the user namespace's id maps."""
    if trace.enabled:
        trace.step(f'mount_setattr({fd}, "", AT_EMPTY_PATH{"|AT_RECURSIVE" if recursive else ""}, '
                   f"{{attr_set=MOUNT_ATTR_IDMAP, userns_fd={userns_fd}}})", why)
    kernel().mount_setattr(fd, AT_RECURSIVE if recursive else 0, MOUNT_ATTR_IDMAP, userns_fd, what)


MOUNT_ATTR_NAMES = {MOUNT_ATTR_RDONLY: "RDONLY", MOUNT_ATTR_NOSUID: "NOSUID",
                    MOUNT_ATTR_NODEV: "NODEV", MOUNT_ATTR_NOEXEC: "NOEXEC",
                    MOUNT_ATTR_NOATIME: "NOATIME", MOUNT_ATTR_STRICTATIME: "STRICTATIME",
                    MOUNT_ATTR_NODIRATIME: "NODIRATIME"}


def mount_setattr_recursive(fd: int, attr_set: int, attr_clr: int, shown: str, why: str) -> None:
    """Set and clear mount attributes (MOUNT_ATTR_*) on the mount an fd holds and on every mount
    below it (AT_RECURSIVE, linux 5.12): what a remount cannot do in one call."""
    if trace.enabled:
        trace.step(f'mount_setattr("{shown}", AT_RECURSIVE, {{attr_set='
                   f"{flag_names(attr_set, MOUNT_ATTR_NAMES)}, attr_clr="
                   f"{flag_names(attr_clr, MOUNT_ATTR_NAMES)}}})", why)
    k = kernel()
    k.mount_setattr(shown if isinstance(k, Recorder) else fd,  # tests read names, not fds
                    AT_RECURSIVE, attr_set, 0, shown, attr_clr)


def syncfs(fd: int, shown: str, why: str) -> None:
    """Write the dirty data and metadata of the filesystem that holds fd to its disk, and wait
    (sync(2) for one filesystem). os has none."""
    if trace.enabled:
        trace.step(f'syncfs(open("{shown}"))', why)
    kernel().syncfs(fd, shown)


def move_mount(fd: int, target: str | int, why: str, shown: str | None = None) -> None:
    """Attach a detached mount tree at `target` (a path, or an O_PATH fd on the mount point)."""
    if trace.enabled:
        if isinstance(target, int):
            trace.step(f'move_mount({fd}, "", {target}, "", MOVE_MOUNT_F_EMPTY_PATH|'
                       f'MOVE_MOUNT_T_EMPTY_PATH) [target {shown or target}]', why)
        else:
            trace.step(f'move_mount({fd}, "", AT_FDCWD, "{target}", MOVE_MOUNT_F_EMPTY_PATH)', why)
    kernel().move_mount(fd, target)


def pidfd_getfd(pid: int, fd: int, why: str) -> int:
    """A duplicate of another process's file descriptor (needs ptrace rights over it)."""
    if trace.enabled:
        trace.step(f"pidfd_getfd(pidfd_open({pid}), {fd}, 0)", why)
    return kernel().pidfd_getfd(pid, fd)


def sealed_memfd(name: str, data: bytes, why: str) -> int:
    """An in-memory file holding `data`, sealed so that nobody can ever change it."""
    if trace.enabled:
        trace.step(f'memfd_create("{name}", MFD_CLOEXEC|MFD_ALLOW_SEALING|MFD_EXEC); '
                   f"write({len(data)} bytes); fcntl(F_ADD_SEALS, SEAL|SHRINK|GROW|WRITE)", why)
    return kernel().sealed_memfd(name, data)


def _mask(caps: list[int]) -> str:
    return hex(sum(1 << c for c in caps))


def setgroups(gids: list[int], why: str) -> None:
    if trace.enabled:
        trace.step(f"setgroups({gids})", why)
    kernel().setgroups(gids)


def setresgid(gid: int, why: str) -> None:
    if trace.enabled:
        trace.step(f"setresgid({gid}, {gid}, {gid})", why)
    kernel().setresgid(gid)


def setresuid(uid: int, why: str) -> None:
    if trace.enabled:
        trace.step(f"setresuid({uid}, {uid}, {uid})", why)
    kernel().setresuid(uid)


def setsid(why: str) -> None:
    if trace.enabled:
        trace.step("setsid()", why)
    kernel().setsid()


def umask(mask: int, why: str) -> None:
    if trace.enabled:
        trace.step(f"umask({oct(mask)})", why)
    kernel().umask(mask)


def fork(why: str) -> int:
    if trace.enabled:
        trace.step("fork()", why)
    return kernel().fork()


def kill(pid: int, sig: int, why: str) -> None:
    if trace.enabled:
        trace.step(f"kill({pid}, {sig})", why)
    kernel().kill(pid, sig)


def write_memory(address: int, data: bytes) -> None:
    """Copy bytes into our own memory (the argv area, for set_cmdline); no system call."""
    k = kernel()
    if isinstance(k, Kernel):
        ctypes = k._ctypes_mod()
        ctypes.memmove(address, data, len(data))


def clone_into_cgroup(cgroup_fd: int, cgroup: str, why: str) -> int:
    """fork() with the child born in a cgroup2 cgroup (no migration, so no migration lock).
    -1 when the kernel is too old: the caller forks and joins the usual way."""
    if trace.enabled:
        trace.step(f'clone3(CLONE_INTO_CGROUP, cgroup=open("{cgroup}"))', why)
    return kernel().clone_into_cgroup(cgroup_fd)


def execve(path: str, args: list[str], env: dict[str, str], why: str,
           shown: tuple[str, list[str]] | None = None) -> None:
    """execve(2); `shown` is what the trace says is run, when the call goes through a stub."""
    if trace.enabled:
        p, a = shown or (path, args)
        trace.step(f'execve("{p}", {a})', why)
    kernel().execve(path, args, env)


# --- bpf(2): the cgroup v2 device filter -----------------------------------------------------


def bpf_prog_load(prog_type: int, insns: bytes, license: str, why: str) -> int:
    """BPF_PROG_LOAD: verify and load a program; returns its fd. The verifier's log is kept
    for the error message when it refuses the program."""
    import struct  # lazy: only the calls that pack a C struct (start-up budget)

    if trace.enabled:
        trace.step(f"bpf(BPF_PROG_LOAD, type={prog_type}, {len(insns) // 8} insns)", why)
    k = kernel()
    if isinstance(k, Recorder):
        k.bpf(5, insns, "prog_load")
        return os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)  # a real fd: callers close it
    ins_buf, ins_addr = k.address_of(insns)
    lic_buf, lic_addr = k.address_of(license.encode() + b"\0")
    log_buf, log_addr = k.address_of(b"\0" * 4096)
    attr = struct.pack("<IIQQIIQII", prog_type, len(insns) // 8, ins_addr, lic_addr, 1, 4096,
                       log_addr, 0, 0)
    try:
        fd, _ = k.bpf(5, attr, "BPF_PROG_LOAD (cgroup device filter)")
    except KernelError as e:
        log = log_buf.raw.split(b"\0", 1)[0].decode(errors="replace").strip().splitlines()
        raise KernelError("bpf(BPF_PROG_LOAD)", "device filter", e.errno,
                          log[-1] if log else "") from None
    del ins_buf, lic_buf
    return fd


def bpf_prog_attach(cgroup_fd: int, prog_fd: int, attach_type: int, flags: int, why: str) -> None:
    import struct  # lazy: only the calls that pack a C struct (start-up budget)

    if trace.enabled:
        trace.step(f"bpf(BPF_PROG_ATTACH, cgroup fd {cgroup_fd}, prog fd {prog_fd}, "
                   f"type={attach_type}, flags={flags})", why)
    kernel().bpf(8, struct.pack("<IIII", cgroup_fd, prog_fd, attach_type, flags),
                 "BPF_PROG_ATTACH")


def bpf_prog_query(cgroup_fd: int, attach_type: int) -> list[int]:
    """IDs of the programs attached to a cgroup (no narration: it changes nothing)."""
    import struct  # lazy: only the calls that pack a C struct (start-up budget)

    k = kernel()
    if isinstance(k, Recorder):
        return []
    ids_buf, ids_addr = k.address_of(b"\0" * 4 * 64)
    attr = struct.pack("<IIIIQI", cgroup_fd, attach_type, 0, 0, ids_addr, 64)
    _, out = k.bpf(16, attr, "BPF_PROG_QUERY")
    count = struct.unpack_from("<I", out, 24)[0]
    return list(struct.unpack_from(f"<{count}I", ids_buf.raw))


def bpf_prog_detach_id(cgroup_fd: int, prog_id: int, attach_type: int, why: str) -> None:
    import struct  # lazy: only the calls that pack a C struct (start-up budget)

    if trace.enabled:
        trace.step(f"bpf(BPF_PROG_DETACH, cgroup fd {cgroup_fd}, prog id {prog_id})", why)
    k = kernel()
    fd, _ = k.bpf(13, struct.pack("<I", prog_id), "BPF_PROG_GET_FD_BY_ID")
    try:
        k.bpf(9, struct.pack("<III", cgroup_fd, fd, attach_type), "BPF_PROG_DETACH")
    finally:
        os.close(fd)
