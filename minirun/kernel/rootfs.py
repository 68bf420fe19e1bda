"""The container's filesystem: mounts, /dev, pivot_root, masked and read-only paths.

The order follows the kernel's rules:
  1. make / a slave mount (MS_SLAVE|MS_REC) in our new mount namespace, so nothing we mount or
     unmount propagates back to the host;
  2. bind-mount the rootfs onto itself: pivot_root(2) needs the new root to be a mount point;
  3. config.json's mounts, in order, each destination looked up *inside* the rootfs by the
     kernel (kernel/resolve.py: openat2 RESOLVE_IN_ROOT), its missing directories made one
     at a time relative to their parent's fd (mkdirat, then O_NOFOLLOW|O_DIRECTORY), a file
     target made O_CREAT|O_EXCL|O_NOFOLLOW; mount(2) then goes onto /proc/self/fd/N of the
     O_PATH fd that came out. Nothing is walked twice by name, so a symlink swapped in by a
     concurrent writer (another container sharing a volume) can make a mount fail, never
     land or create anything on the host: runc's CVE-2021-30465 and CVE-2024-45310;
  4. /dev: default device nodes and the /dev/fd, /dev/std* and /dev/ptmx symlinks, each made
     with mknodat/symlinkat relative to the fd of its directory;
  5. pivot_root(".", "."), then detach the old root: the host's filesystem is gone from view;
  6. maskedPaths (hidden under /dev/null or an empty read-only tmpfs) and readonlyPaths, each
     looked up with openat2 in the container's / and mounted onto through its fd;
  7. finally, a read-only remount of / if root.readonly.
"""

from __future__ import annotations

import errno
import os
import stat

from ..errors import MinirunError
from . import libc, resolve
from .devices import Device
from .libc import (MNT_DETACH, MS_BIND, MS_MOVE, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE,
                   MS_RDONLY, MS_REC, MS_REMOUNT, MS_SHARED, MS_SLAVE, MS_UNBINDABLE)

# option -> (clear?, flag): runc's table (mount(8) names)
FLAGS: dict[str, tuple[bool, int]] = {
    "ro": (False, MS_RDONLY), "rw": (True, MS_RDONLY),
    "nosuid": (False, MS_NOSUID), "suid": (True, MS_NOSUID),
    "nodev": (False, MS_NODEV), "dev": (True, MS_NODEV),
    "noexec": (False, MS_NOEXEC), "exec": (True, MS_NOEXEC),
    "sync": (False, libc.MS_SYNCHRONOUS), "async": (True, libc.MS_SYNCHRONOUS),
    "dirsync": (False, libc.MS_DIRSYNC), "remount": (False, MS_REMOUNT),
    "mand": (False, libc.MS_MANDLOCK), "nomand": (True, libc.MS_MANDLOCK),
    "noatime": (False, libc.MS_NOATIME), "atime": (True, libc.MS_NOATIME),
    "nodiratime": (False, libc.MS_NODIRATIME), "diratime": (True, libc.MS_NODIRATIME),
    "relatime": (False, libc.MS_RELATIME), "norelatime": (True, libc.MS_RELATIME),
    "strictatime": (False, libc.MS_STRICTATIME), "nostrictatime": (True, libc.MS_STRICTATIME),
    "lazytime": (False, libc.MS_LAZYTIME), "nolazytime": (True, libc.MS_LAZYTIME),
    "silent": (False, libc.MS_SILENT), "loud": (True, libc.MS_SILENT),
    "iversion": (False, libc.MS_I_VERSION), "noiversion": (True, libc.MS_I_VERSION),
    "nosymfollow": (False, libc.MS_NOSYMFOLLOW), "symfollow": (True, libc.MS_NOSYMFOLLOW),
    "bind": (False, MS_BIND), "rbind": (False, MS_BIND | MS_REC),
}
PROPAGATION: dict[str, int] = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC, "shared": MS_SHARED,
    "rshared": MS_SHARED | MS_REC, "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}
# Options that need mount_setattr(2) or idmapped mounts: refused clearly rather than ignored.
UNSUPPORTED = {"tmpcopyup"}
# runtime-spec 1.1's recursive options: mount_setattr(2) with AT_RECURSIVE (linux 5.12) on the
# new mount and every mount below it. option -> (attr_set, attr_clr); an atime mode is one
# value of a 3-bit field, so setting one clears the whole field (the kernel's rule).
_ATIME = libc.MOUNT_ATTR__ATIME
RECURSIVE: dict[str, tuple[int, int]] = {
    "rro": (libc.MOUNT_ATTR_RDONLY, 0), "rrw": (0, libc.MOUNT_ATTR_RDONLY),
    "rnosuid": (libc.MOUNT_ATTR_NOSUID, 0), "rsuid": (0, libc.MOUNT_ATTR_NOSUID),
    "rnodev": (libc.MOUNT_ATTR_NODEV, 0), "rdev": (0, libc.MOUNT_ATTR_NODEV),
    "rnoexec": (libc.MOUNT_ATTR_NOEXEC, 0), "rexec": (0, libc.MOUNT_ATTR_NOEXEC),
    "rnoatime": (libc.MOUNT_ATTR_NOATIME, _ATIME), "ratime": (libc.MOUNT_ATTR_RELATIME, _ATIME),
    "rrelatime": (libc.MOUNT_ATTR_RELATIME, _ATIME),
    "rstrictatime": (libc.MOUNT_ATTR_STRICTATIME, _ATIME),
    "rnodiratime": (libc.MOUNT_ATTR_NODIRATIME, 0), "rdiratime": (0, libc.MOUNT_ATTR_NODIRATIME),
}
IDMAP_OPTIONS = {"idmap", "ridmap"}  # handled by the runtime (kernel/idmap.py), not mount(2)

# statvfs f_flag bits that a remount must keep (they are locked in a user namespace).
_LOCKED = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | libc.MS_NOATIME | libc.MS_NODIRATIME | \
    libc.MS_RELATIME

DEFAULT_DEVICES = [  # path, major, minor (all char devices, mode 0666, owned by root)
    ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7), ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
]
DEV_SYMLINKS = [("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
                ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
                ("pts/ptmx", "/dev/ptmx")]


class MountError(MinirunError):
    """A mount cannot be made safely or as asked; names the path."""


def parse_options(options: list[str]) -> tuple[int, int, str]:
    """mount(8)-style options -> (mount flags, propagation flags, fs-specific data string)."""
    flags, prop, data = 0, 0, []
    for opt in options:
        if opt in FLAGS:
            clear, bit = FLAGS[opt]
            flags = flags & ~bit if clear else flags | bit
        elif opt in PROPAGATION:
            prop |= PROPAGATION[opt]
        elif opt in IDMAP_OPTIONS or opt in RECURSIVE:
            continue  # (recursive_attrs; the idmap options: kernel/idmap.py)
        elif opt in UNSUPPORTED:
            raise MountError(f"mount option {opt!r} is not supported by minirun yet")
        else:
            data.append(opt)
    return flags, prop, ",".join(data)


def recursive_attrs(options: list[str]) -> tuple[int, int]:
    """The recursive options (rro, rnosuid ...) -> (attr_set, attr_clr) for mount_setattr."""
    aset = aclr = 0
    for opt in options:
        if opt in RECURSIVE:
            on, off = RECURSIVE[opt]
            if off == _ATIME:  # a mode of the atime field: the last one named wins
                aset, aclr = (aset & ~_ATIME) | on, aclr | _ATIME
            else:
                aset, aclr = (aset & ~off) | on, (aclr & ~on) | off
    return aset, aclr


_reals: dict[str, str] = {}


def _real(rootfs: str) -> str:  # (oci/init.py uses it too)
    """realpath(rootfs), walked once per create rather than once per mount."""
    if rootfs not in _reals:
        _reals[rootfs] = os.path.realpath(rootfs)
    return _reals[rootfs]


def _mount_fd(source: str | None, fd: int, fstype: str | None, flags: int, data: str | None,
              why: str, shown_source: str | None = None) -> None:
    """mount(2) onto the object an O_PATH fd holds (/proc/self/fd/N): the object that was
    looked up is the one mounted on, whatever is swapped in on the way there meanwhile
    (CVE-2021-30465). The trace names the destination's real path, then the fd path."""
    shown = None
    if libc.trace.enabled or isinstance(libc.kernel(), libc.Recorder):  # who reads the name
        shown = (shown_source or source, resolve.where(fd))
    libc.mount(source, resolve.fd_path(fd), fstype, flags, data, why, shown=shown)


def _reopen(root: int | str, fd: int, root_real: str, dest: str) -> int:
    """An O_PATH fd on the mount just made onto `fd`. mount(2) stacks the new mount on top of
    the directory `fd` holds, and `fd` keeps naming that directory *under* it: a remount or a
    propagation change needs the new mount's root (EINVAL otherwise), so look the same real
    path up again, inside the root, and check it still is that path. `dest`: the
    destination as the config names it, for the messages."""
    here = resolve.where(fd)
    rel = _below(here, root_real)
    try:
        new = resolve.open_in(root, rel, os.O_PATH | os.O_NOFOLLOW,
                              why="the mount just made: its root, for the remount")
    except OSError as e:
        raise MountError(f"mount destination {dest}: {here}: {e.strerror} (changed while it "
                         "was being mounted on?)") from None
    if resolve.where(new) != here:
        os.close(new)
        raise MountError(f"mount destination {dest} ({here}) changed while it was being "
                         "mounted on: refusing to remount it")
    return new


def _below(path: str, root_real: str) -> str:
    """`path` (a real path at or under `root_real`) as seen from that root: "/" or "/a/b"."""
    return path[len(root_real.rstrip("/")):] or "/"


def _current_flags(path: str) -> int:
    try:
        return os.statvfs(path).f_flag & _LOCKED
    except OSError:
        return 0


def prepare_root(rootfs: str, propagation: str) -> None:
    """Steps 1-2: isolate mount propagation, make the rootfs a mount point."""
    flag = PROPAGATION.get(propagation, 0) if propagation else 0
    if not flag or flag & (MS_SHARED | MS_UNBINDABLE):
        # Even a "shared" rootfs starts from a slave /: otherwise our mounts reach the host.
        # An unbindable / could not be bound onto itself next (EINVAL, as runc 1.1 fails):
        # both are applied by finish_root, after pivot_root.
        flag = MS_SLAVE | MS_REC
    libc.mount(None, "/", None, flag, None,
               "stop mounts in this namespace from propagating back to the host")
    libc.mount(rootfs, rootfs, None, MS_BIND | MS_REC, None,
               "pivot_root needs the new root to be a mount point: bind it onto itself")


def bind_source(bundle: str, m) -> str:
    """A bind mount's source: relative names are relative to the bundle."""
    src = m.source or ""
    return src if src.startswith("/") else os.path.join(bundle, src)


# Mounts a config may put inside /proc: the files LXCFS emulates (runc's checkProcMount list).
PROC_MOUNTS_ALLOWED = ("cpuinfo", "diskstats", "meminfo", "stat", "swaps", "uptime", "loadavg",
                       "slabinfo", "net/dev", "sys/kernel/ns_last_pid",
                       "sys/crypto/fips_enabled")


def _is_procfs(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(ln.split()[4] == path and ln.split(" - ", 1)[1].split()[0] == "proc"
                   for ln in f if " - " in ln)


def check_proc_mount(rootfs: str, dest: str, m, is_bind: bool) -> None:
    """Refuse a mount that lands on or inside the container's /proc, wherever its destination
    *string* pointed (CVE-2019-16884, CVE-2023-27561): `dest` is the real path of what the
    destination resolved to (`rootfs` real too), so an image symlink (/lnk -> /proc) is seen
    through. A tmpfs or bind over /proc/self/attr would fake the LSM label files; over /proc,
    hide the real one. On /proc itself only procfs (or a bind of one); inside it only the
    files LXCFS emulates."""
    rel = _below(dest, rootfs).lstrip("/") if dest.startswith(rootfs.rstrip("/") + "/") \
        else os.path.relpath(dest, rootfs)
    if rel != "proc" and not rel.startswith("proc/"):
        return
    if rel == "proc":
        if m.type == "proc" and not is_bind:
            return
        if is_bind and _is_procfs(os.path.realpath(m.source or "")):
            return
        raise MountError(f"mount destination {m.destination} is /proc in the container, and "
                         f"this is not a proc file system: refusing to mount it")
    if rel[len("proc/"):] in PROC_MOUNTS_ALLOWED:
        return
    raise MountError(f"mount destination {m.destination} resolves to /{rel}, inside the "
                     "container's /proc: refusing to mount there")


def _open_root(rootfs: str) -> int:
    """The rootfs as an O_PATH fd, the root every lookup below is made in (a dup of one opened
    once per rootfs: the caller closes its copy). Opened after prepare_root bound the rootfs
    onto itself: an fd opened before would hold the directory *under* that mount, and the
    mounts made there would be out of its sight. pivot() forgets it (close-on-exec anyway)."""
    fd = _roots.get(rootfs)
    if fd is None:
        try:
            fd = _roots[rootfs] = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise MountError(f"rootfs {rootfs}: {e.strerror}") from None
    return os.dup(fd)


_roots: dict[str, int] = {}


def forget_roots() -> None:
    """Close the rootfs fds _open_root keeps (at pivot_root: no fd on the old tree stays)."""
    for fd in _roots.values():
        os.close(fd)
    _roots.clear()


def _landing(root_fd: int, path: str) -> str | None:
    """Where `path` would land, as a real path: its longest existing prefix, resolved inside the
    root, plus the rest. Only to explain a failed lookup (is it inside /proc?)."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    for n in range(len(parts), -1, -1):
        try:
            fd = resolve.open_in(root_fd, "/".join(parts[:n]) or "/", os.O_PATH)
        except OSError:
            continue
        try:
            return os.path.normpath(os.path.join(resolve.where(fd), *parts[n:]))
        finally:
            os.close(fd)
    return None


def mkdirs(rootfs: str, path: str, why: str) -> int:
    """An O_PATH fd on directory `path` inside `rootfs`, made if missing by fds (resolve.mkdirs,
    dangling symlinks followed inside the root):
    for the runtime's other directories (process.cwd)."""
    root_fd = _open_root(rootfs)
    try:
        return resolve.mkdirs(root_fd, path, follow_dangling=True, why=why)
    finally:
        os.close(root_fd)


def _parent(root_fd: int, path: str, why: str) -> tuple[int, str]:
    """resolve.parent, dangling symlinks followed inside the root: (fd of path's directory,
    made if missing; the last name)."""
    parts = [p for p in os.path.normpath("/" + path).split("/") if p]
    if not parts:
        raise resolve.ResolveError(path, "names the root itself, not an entry in it")
    return resolve.mkdirs(root_fd, "/".join(parts[:-1]), follow_dangling=True, why=why), \
        parts[-1]


def _target(root_fd: int, rootfs: str, m, is_file: bool, is_bind: bool) -> int:
    """An O_PATH fd on the mount's destination inside the rootfs, made if missing: a directory
    (mkdirs: one mkdirat + openat(O_NOFOLLOW|O_DIRECTORY) per missing component) or, for a
    file bind source, an empty file (openat O_CREAT|O_EXCL|O_NOFOLLOW). CVE-2024-45310: a
    symlink swapped in while this runs (from a volume another container shares) makes it
    fail; it never creates on the host. Then refused if it landed in /proc."""
    real = _real(rootfs)
    why = f"mount destination {m.destination}"
    try:
        if is_file:
            dfd, name = _parent(root_fd, m.destination, why)
            try:
                fd = resolve.create_file(dfd, name, why=why + ": the file to bind onto")
            finally:
                os.close(dfd)
        else:
            # an image's /dev -> /somewhere-missing is followed inside the rootfs, as runtimes
            # always did (resolve.mkdirs alone refuses a dangling link)
            fd = resolve.mkdirs(root_fd, m.destination, follow_dangling=True, why=why)
    except (resolve.ResolveError, OSError) as e:
        landing = _landing(root_fd, m.destination)
        if landing is not None:
            check_proc_mount(real, landing, m, is_bind)  # the clearer reason, when it is one
        what = str(e) if isinstance(e, MinirunError) else e.strerror
        raise MountError(f"mount destination {m.destination}: {what}") from None
    try:
        here = resolve.where(fd)
        if here != real and not here.startswith(real.rstrip("/") + "/"):
            # cannot happen with RESOLVE_IN_ROOT: belt and braces
            raise MountError(f"mount destination {m.destination} resolves to {here}, outside "
                             "the container's root")
        check_proc_mount(real, here, m, is_bind)
    except BaseException:
        os.close(fd)
        raise
    return fd


def mount_one(rootfs: str, bundle: str, m, in_userns: bool, cgroup_mount=None,
              idmapped_fd: int | None = None) -> None:
    """Step 3: one entry of config.json's mounts. `idmapped_fd`: the runtime's detached,
    idmapped copy of the source (kernel/idmap.py), attached here instead of a bind.

    The destination is looked up afresh in the rootfs for each entry, so one nested under an
    earlier mount (a volume, then a bind inside it) lands on that mount."""
    flags, prop, data = parse_options(m.options)
    rset, rclr = recursive_attrs(m.options)
    is_bind = bool(flags & MS_BIND) or m.type == "bind"
    if is_bind and flags & MS_REC and flags & MS_RDONLY:
        # CVE-2023-25809: "ro" on an rbind made only its top read-only, and what is mounted
        # below it stayed writable (runc's rootless /sys rbind left the host's /sys/fs/cgroup
        # writable). Read-only is made recursive, as Docker 25 does for read-only binds.
        rset |= libc.MOUNT_ATTR_RDONLY
    implied = rset == libc.MOUNT_ATTR_RDONLY and not rclr and \
        not any(o in RECURSIVE for o in m.options)
    src = ""
    src_is_dir = True
    if is_bind:
        src = bind_source(bundle, m)
        try:
            src_is_dir = os.path.isdir(src)
            os.stat(src)
        except OSError as e:
            raise MountError(f"bind mount source {m.source} for {m.destination}: {e.strerror}") \
                from None
    root_fd = _open_root(rootfs)
    fd = -1
    try:
        fd = _target(root_fd, rootfs, m, not src_is_dir, is_bind)
        real = _real(rootfs)
        remount = None  # what is left to do on the new mount's root (it needs reopening)
        if is_bind:
            rec = flags & MS_REC
            if idmapped_fd is not None:
                libc.move_mount(idmapped_fd, fd, f"idmapped bind mount: {m.source} appears at "
                                f"{m.destination}, its owners seen through the mount's id maps",
                                shown=resolve.where(fd))
            else:
                _mount_fd(src, fd, None, MS_BIND | rec, None,
                          f"bind mount: {m.source} appears at {m.destination} in the container")
            extra = flags & ~(MS_BIND | MS_REC | MS_REMOUNT)
            if extra:
                remount = (extra, in_userns)
        elif m.type == "cgroup":
            if cgroup_mount is None:
                raise MountError(f"cgroup mount at {m.destination}: no cgroup support")
            # cgroups.mount_into mounts onto the fd, and onto what it makes under the mount
            # through that mount's fd, which _reopen finds (the fd names what is under it)
            cgroup_mount(fd, flags, lambda f: _reopen(root_fd, f, real, m.destination))
        else:
            why = {
                "proc": "a fresh /proc: shows only this PID namespace's processes",
                "sysfs": "/sys for this network namespace",
                "tmpfs": "an in-memory filesystem",
                "devpts": "a private devpts instance: the container's own /dev/pts/N terminals",
                "mqueue": "POSIX message queues of this IPC namespace",
            }.get(m.type or "", f"mount {m.type}")
            try:
                _mount_fd(m.source or m.type, fd, m.type, flags & ~MS_REMOUNT, data or None, why)
            except Exception as e:
                # Without their own network (sysfs) or IPC (mqueue) namespace, a user namespace
                # may not mount these: bind the host's instead, as runc does.
                if getattr(e, "errno", 0) == 1 and m.type in ("sysfs", "mqueue") and in_userns:
                    host = "/sys" if m.type == "sysfs" else "/dev/mqueue"
                    _mount_fd(host, fd, None, MS_BIND | MS_REC, None,
                              f"{m.type} is not ours to mount here: bind the host's read-only")
                    # Keep the nosuid/nodev/noexec the entry asked for: a bind drops them.
                    remount = (MS_RDONLY | (flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC)), True)
                    # ... and read-only all the way down: the host's /sys/fs/cgroup, debugfs,
                    # bpffs are mounts below /sys (CVE-2023-25809).
                    rset |= libc.MOUNT_ATTR_RDONLY
                    implied = implied or not rclr
                else:
                    raise
        if remount is not None or prop or rset or rclr:
            top = _reopen(root_fd, fd, real, m.destination)
            os.close(fd)
            fd = top
        if remount is not None:
            extra, keep_locked = remount
            keep = _current_flags(resolve.fd_path(fd)) if keep_locked else 0
            _mount_fd(None, fd, None, MS_BIND | MS_REMOUNT | extra | keep, None,
                      "a bind mount takes ro/nosuid/nodev/noexec only on a remount")
        if rset or rclr:
            _recursive(fd, rset, rclr, m.destination, implied)
        if prop:
            _mount_fd(None, fd, None, prop, None, "propagation type asked for in the options")
        if resolve.where(fd) == real:
            forget_roots()  # a mount on the root itself: the next lookups start on top of it
    finally:
        if fd >= 0:
            os.close(fd)
        os.close(root_fd)


def _recursive(fd: int, aset: int, aclr: int, dest: str, implied: bool) -> None:
    """The recursive attributes onto the new mount and every mount below it. Kernels before
    5.12 have no mount_setattr: an implied read-only (a read-only rbind) is then made by
    remounting each submount; an asked-for r* option is refused there, naming the kernel."""
    here = resolve.where(fd)
    try:
        libc.mount_setattr_recursive(fd, aset, aclr, here, "recursive mount options: this mount "
                                     "and every mount below it (a remount reaches only the top)")
        return
    except MinirunError as e:
        if getattr(e, "errno", 0) != errno.ENOSYS or not implied:
            raise MountError(f"mount {dest}: recursive options need mount_setattr(2) "
                             f"(linux 5.12): {e}") from None
    with open("/proc/self/mountinfo") as f:
        below = [ln.split()[4] for ln in f if ln.split()[4].startswith(here.rstrip("/") + "/")]
    for mp in below:
        libc.mount(None, mp, None, MS_BIND | MS_REMOUNT | MS_RDONLY | _current_flags(mp), None,
                   "read-only below a read-only rbind too (no mount_setattr on this kernel)")


def _make_dev_entry(root_fd: int, path: str) -> tuple[int, str]:
    """(fd of the entry's directory, made if missing; its name), as a MountError if it cannot."""
    try:
        return _parent(root_fd, path, f"the directory of {path}")
    except (resolve.ResolveError, OSError) as e:
        what = str(e) if isinstance(e, MinirunError) else e.strerror
        raise MountError(f"{path}: {what}") from None


def _lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def setup_dev(rootfs: str, devices: list, in_userns: bool) -> None:
    """Step 4: device nodes (default ones plus linux.devices) and the /dev symlinks, each made
    relative to the fd of its directory (resolved inside the rootfs): an image's /dev that is a
    symlink is followed inside the rootfs, one in the entry's place is replaced, never
    followed, and nothing swapped in meanwhile redirects a node to the host."""
    all_devs = [Device("c", p, ma, mi, 0o666, 0, 0) for p, ma, mi in DEFAULT_DEVICES]
    paths = {d.path for d in devices}
    all_devs = [d for d in all_devs if d.path not in paths] + list(devices)
    root_fd = _open_root(rootfs)
    dirs: dict[str, int] = {}  # each directory looked up (and made) once: its fd, reused

    def entry(path: str) -> tuple[int, str]:
        parent = os.path.dirname(os.path.normpath(path))
        if parent not in dirs:
            dirs[parent] = _make_dev_entry(root_fd, path)[0]
        return dirs[parent], os.path.basename(os.path.normpath(path))

    try:
        for d in all_devs:
            kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK,
                    "p": stat.S_IFIFO}[d.type]
            mode = d.file_mode if d.file_mode is not None else 0o666
            dfd, name = entry(d.path)
            st = _lstat_at(dfd, name)
            if st is not None and (stat.S_ISLNK(st.st_mode) or not in_userns):
                # an image's /dev/null -> elsewhere is replaced, never followed
                os.unlink(name, dir_fd=dfd)
            if in_userns:
                # mknod(2) of a device is refused in a user namespace: bind the host's node
                # onto an empty file made (O_EXCL|O_NOFOLLOW) in the directory we hold.
                try:
                    fd = resolve.create_file(dfd, name, why=f"{d.path}: the file to bind onto")
                except resolve.ResolveError as e:
                    raise MountError(f"{d.path}: {e}") from None
                try:
                    _mount_fd(d.path, fd, None, MS_BIND, None,
                              "no mknod in a user namespace: bind-mount the host's device node")
                finally:
                    os.close(fd)
                continue
            libc.mknod(name, kind | mode, d.major, d.minor, "create the device node",
                       dir_fd=dfd)
            # Through the seam, like the mknod it follows (a Recorder's mknod creates no file).
            libc.chmod(name, mode, "mknod's mode is filtered by the umask: set it exactly",
                       dir_fd=dfd)
            if d.uid or d.gid:
                libc.chown(name, d.uid or 0, d.gid or 0, "device owner from linux.devices",
                           dir_fd=dfd)
        links = list(DEV_SYMLINKS)
        if os.path.exists("/proc/kcore"):
            links.append(("/proc/kcore", "/dev/core"))
        for target, link in links:
            dfd, name = entry(link)
            if _lstat_at(dfd, name) is not None:
                if link != "/dev/ptmx":
                    continue
                os.unlink(name, dir_fd=dfd)
            libc.symlink(target, name, "standard /dev symlink", dir_fd=dfd)
    finally:
        for fd in dirs.values():
            os.close(fd)
        os.close(root_fd)


def pivot(rootfs: str) -> None:
    """Step 5: make rootfs the new / and detach the old root (runc's pivot_root(".", ".") trick)."""
    forget_roots()
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc.chdir(new, "enter the new root")
        libc.pivot_root(".", ".", "swap the container's rootfs in as /; the old root is stacked "
                        "on top and unmounted next")
        libc.chdir(old, "step onto the old root (now mounted over the new one)")
        libc.mount(None, ".", None, MS_SLAVE | MS_REC, None,
                   "make the old root a slave so unmounting it cannot reach the host")
        libc.umount2(".", MNT_DETACH, "detach the old root: the host filesystem is out of reach")
        libc.chdir("/", "stand in the container's /")
    finally:
        os.close(old)
        os.close(new)


def move_root(rootfs: str) -> None:
    """--no-pivot: move the rootfs over / and chroot (weaker: the old root stays underneath)."""
    forget_roots()
    libc.chdir(rootfs, "enter the new root")
    libc.mount(rootfs, "/", None, MS_MOVE, None, "--no-pivot: move the rootfs over /")
    libc.chroot(".", "--no-pivot: chroot into it (escapable with CAP_SYS_CHROOT; pivot_root is not)")
    libc.chdir("/", "stand in the container's /")


def _open_in_container(p: str) -> int | None:
    """An O_PATH fd on `p` itself (no symlink followed in the last place), looked up in the
    container's / with openat2 (after pivot_root): None if it is not there."""
    try:
        return resolve.open_in("/", p, os.O_PATH | os.O_NOFOLLOW,
                               why="look the path up in the container's /, then mount on the fd")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise MountError(f"{p}: {e.strerror}") from None


def mask_paths(paths: list[str]) -> None:
    """Step 6a: hide kernel files a container should not read (/proc/kcore, /proc/keys ...)."""
    null = -1
    try:
        for p in paths:
            fd = _open_in_container(p)
            if fd is None:
                continue
            try:
                st = os.fstat(fd)
                if stat.S_ISLNK(st.st_mode):
                    continue  # a symlink in its place: masking it would mask what it points at
                if stat.S_ISDIR(st.st_mode):
                    _mount_fd("tmpfs", fd, "tmpfs", MS_RDONLY, None,
                              "maskedPaths: cover the directory with an empty read-only tmpfs")
                    continue
                if null < 0:
                    # CVE-2025-31133: /dev/null swapped for a symlink (to core_pattern, say)
                    # would make the "mask" a writable window onto that file. Open it without
                    # following, check it is the null device, and bind exactly what was checked.
                    null = _open_in_container("/dev/null")
                    if null is None:
                        null = -1
                        raise MountError("/dev/null is missing in the container: cannot mask paths")
                    st_null = os.fstat(null)
                    if not stat.S_ISCHR(st_null.st_mode) or st_null.st_rdev != os.makedev(1, 3):
                        raise MountError("/dev/null in the container is not the null device: "
                                         "refusing to use it to mask paths")
                _mount_fd(resolve.fd_path(null), fd, None, MS_BIND, None,
                          "maskedPaths: bind /dev/null over the file", shown_source="/dev/null")
            finally:
                os.close(fd)
    finally:
        if null >= 0:
            os.close(null)


def readonly_paths(paths: list[str]) -> None:
    """Step 6b: bind each path onto itself and remount it read-only, through its fd."""
    for p in paths:
        fd = _open_in_container(p)
        if fd is None:
            continue
        try:
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                continue  # made read-only would be whatever it points at
            _mount_fd(resolve.fd_path(fd), fd, None, MS_BIND | MS_REC, None,
                      "readonlyPaths: make it its own mount", shown_source=resolve.where(fd))
            top = _reopen("/", fd, "/", p)
            os.close(fd)
            fd = top
            _mount_fd(None, fd, None, MS_BIND | MS_REMOUNT | MS_RDONLY |
                      _current_flags(resolve.fd_path(fd)), None,
                      "readonlyPaths: now remount it read-only")
        finally:
            os.close(fd)


def finish_root(readonly: bool, propagation: str) -> None:
    """Step 7: read-only / and the rootfs propagation asked for."""
    if readonly:
        libc.mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | _current_flags("/"), None,
                   "root.readonly: the container cannot write its rootfs")
    if propagation:
        libc.mount(None, "/", None, PROPAGATION[propagation], None,
                   "linux.rootfsPropagation")
