"""The container's filesystem: mounts, /dev, pivot_root, masked and read-only paths.

The order follows the kernel's rules:
  1. make / a slave mount (MS_SLAVE|MS_REC) in our new mount namespace, so nothing we mount or
     unmount propagates back to the host;
  2. bind-mount the rootfs onto itself: pivot_root(2) needs the new root to be a mount point;
  3. config.json's mounts, in order, each destination resolved *inside* the rootfs: a symlink in
     the image may not point a mount at a host path. (The resolved path is then handed to
     mount(2), which walks it again: a concurrent writer that swaps a directory for a symlink
     in between could still redirect it, the race behind runc's CVE-2021-30465. Mounting
     through an O_PATH fd opened with openat2(RESOLVE_IN_ROOT) closes it: security issue.)
  4. /dev: default device nodes and the /dev/fd, /dev/std* and /dev/ptmx symlinks;
  5. pivot_root(".", "."), then detach the old root: the host's filesystem is gone from view;
  6. maskedPaths (hidden under /dev/null or an empty read-only tmpfs) and readonlyPaths;
  7. finally, a read-only remount of / if root.readonly.
"""

from __future__ import annotations

import os
import stat

from ..errors import MinirunError
from . import libc
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
UNSUPPORTED = {"rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec", "rexec",
               "tmpcopyup", "rnoatime", "ratime", "rrelatime", "rstrictatime"}
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
        elif opt in IDMAP_OPTIONS:
            continue
        elif opt in UNSUPPORTED:
            raise MountError(f"mount option {opt!r} is not supported by minirun yet")
        else:
            data.append(opt)
    return flags, prop, ",".join(data)


def secure_join(root: str, unsafe: str, avoid: tuple[str, ...] = ()) -> str:
    """Resolve `unsafe` as if `root` were /: symlinks and '..' can never leave root.

    Like filepath-securejoin: each symlink is read and re-resolved with root as its /, so an
    image's `/etc -> /host/etc` becomes root + /host/etc, never the host's /etc.
    """
    parts = [p for p in unsafe.split("/") if p not in ("", ".")]
    done: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        if not done and part in avoid:
            # /proc's magic links (/proc/self/fd/N, /proc/PID/cwd) point at host objects:
            # resolving through them would leave the rootfs after all.
            raise MountError(f"{unsafe} resolves through /{part}, which is not allowed here")
        cur = os.path.join(root, *done, part)
        try:
            st = os.lstat(cur)
        except (FileNotFoundError, NotADirectoryError):
            done.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > 255:
                raise MountError(f"too many levels of symbolic links resolving {unsafe} in {root}")
            target = os.readlink(cur)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        done.append(part)
    return os.path.join(root, *done) if done else root


def _join_parent(root: str, path: str) -> str:
    """secure_join for an entry we create: resolve its directory, not the entry itself, so a
    symlink already there is seen (and replaced or kept), not followed to its target."""
    path = os.path.normpath(path)
    return os.path.join(secure_join(root, os.path.dirname(path)), os.path.basename(path))


def pin(path: str, inside: str | None = None) -> int:
    """An O_PATH fd on `path` itself, to hand to mount(2) as /proc/self/fd/N.

    Why (CVE-2021-30465, and CVE-2025-31133 / -52565 for /dev/null and /dev/console): between
    our check of a path and the kernel's own walk of it, anything that can write the directory
    can swap a component for a symlink, and the mount lands elsewhere -- on the host. Once the
    object is open, /proc/self/fd/N names exactly that object. O_NOFOLLOW refuses a symlink in
    the last place; `inside` (a real path) checks where the open object actually is.
    """
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise MountError(f"{path}: {e.strerror}") from None
    try:
        if stat.S_ISLNK(os.fstat(fd).st_mode):
            raise MountError(f"{path} is a symlink (swapped in while the container was being "
                             "set up?): refusing to mount on it")
        if inside is not None:
            real = os.readlink(f"/proc/self/fd/{fd}")
            if real != inside and not real.startswith(inside.rstrip("/") + "/"):
                raise MountError(f"{path} resolves to {real}, outside the container's root: "
                                 "refusing to mount on it")
    except BaseException:
        os.close(fd)
        raise
    return fd


_reals: dict[str, str] = {}


def _real(rootfs: str) -> str:
    """realpath(rootfs), walked once per create rather than once per mount."""
    if rootfs not in _reals:
        _reals[rootfs] = os.path.realpath(rootfs)
    return _reals[rootfs]


def _mount_on(source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None, why: str, inside: str | None, shown_source: str | None = None
              ) -> None:
    """mount(2) onto a pinned `target` (see pin)."""
    fd = pin(target, inside)
    try:
        libc.mount(source, f"/proc/self/fd/{fd}", fstype, flags, data, why,
                   shown=(shown_source or source, target))
    finally:
        os.close(fd)


def mkdir_all(path: str, mode: int = 0o755) -> None:
    os.makedirs(path, mode=mode, exist_ok=True)


def make_file(path: str) -> None:
    """Create an empty file as a bind-mount target (if nothing is there yet)."""
    mkdir_all(os.path.dirname(path))
    if not os.path.lexists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


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
    *string* pointed (CVE-2019-16884, CVE-2023-27561): `dest` is already resolved, so an image
    symlink (/lnk -> /proc) is seen through. A tmpfs or bind over /proc/self/attr would fake the
    LSM label files; over /proc, hide the real one. On /proc itself only procfs (or a bind of
    one); inside it only the files LXCFS emulates."""
    rel = os.path.relpath(dest, rootfs)
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


def mount_one(rootfs: str, bundle: str, m, in_userns: bool, cgroup_mount=None,
              idmapped_fd: int | None = None) -> None:
    """Step 3: one entry of config.json's mounts. `idmapped_fd`: the runtime's detached,
    idmapped copy of the source (kernel/idmap.py), attached here instead of a bind."""
    flags, prop, data = parse_options(m.options)
    dest = secure_join(rootfs, m.destination)
    inside = _real(rootfs)
    is_bind = bool(flags & MS_BIND) or m.type == "bind"
    check_proc_mount(rootfs, dest, m, is_bind)
    if is_bind:
        src = bind_source(bundle, m)
        try:
            src_is_dir = os.path.isdir(src)
            os.stat(src)
        except OSError as e:
            raise MountError(f"bind mount source {m.source} for {m.destination}: {e.strerror}") \
                from None
        if src_is_dir:
            mkdir_all(dest)
        else:
            make_file(dest)
        rec = flags & MS_REC
        if idmapped_fd is not None:
            fd = pin(dest, inside)
            try:
                libc.move_mount(idmapped_fd, fd, f"idmapped bind mount: {m.source} appears at "
                                f"{m.destination}, its owners seen through the mount's id maps",
                                shown=dest)
            finally:
                os.close(fd)
        else:
            _mount_on(src, dest, None, MS_BIND | rec, None,
                      f"bind mount: {m.source} appears at {m.destination} in the container", inside)
        extra = flags & ~(MS_BIND | MS_REC | MS_REMOUNT)
        if extra:
            keep = _current_flags(dest) if in_userns else 0
            _mount_on(None, dest, None, MS_BIND | MS_REMOUNT | extra | keep, None,
                      "a bind mount takes ro/nosuid/nodev/noexec only on a remount", inside)
    elif m.type == "cgroup":
        if cgroup_mount is None:
            raise MountError(f"cgroup mount at {m.destination}: no cgroup support")
        mkdir_all(dest)
        cgroup_mount(dest, flags)
    else:
        mkdir_all(dest)
        why = {
            "proc": "a fresh /proc: shows only this PID namespace's processes",
            "sysfs": "/sys for this network namespace",
            "tmpfs": "an in-memory filesystem",
            "devpts": "a private devpts instance: the container's own /dev/pts/N terminals",
            "mqueue": "POSIX message queues of this IPC namespace",
        }.get(m.type or "", f"mount {m.type}")
        try:
            _mount_on(m.source or m.type, dest, m.type, flags & ~MS_REMOUNT, data or None, why,
                      inside)
        except Exception as e:
            # Without their own network (sysfs) or IPC (mqueue) namespace, a user namespace may
            # not mount these: bind the host's instead, as runc does.
            if getattr(e, "errno", 0) == 1 and m.type in ("sysfs", "mqueue") and in_userns:
                host = "/sys" if m.type == "sysfs" else "/dev/mqueue"
                libc.mount(host, dest, None, MS_BIND | MS_REC, None,
                           f"{m.type} is not ours to mount here: bind the host's read-only")
                # Keep the nosuid/nodev/noexec the entry asked for: a bind drops them.
                asked = flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC)
                libc.mount(None, dest, None, MS_BIND | MS_REMOUNT | MS_RDONLY | asked |
                           _current_flags(dest), None, "and make it read-only")
            else:
                raise
    if prop:
        _mount_on(None, dest, None, prop, None, "propagation type asked for in the options", inside)


def setup_dev(rootfs: str, devices: list, in_userns: bool) -> None:
    """Step 4: device nodes (default ones plus linux.devices) and the /dev symlinks."""
    all_devs = [Device("c", p, ma, mi, 0o666, 0, 0) for p, ma, mi in DEFAULT_DEVICES]
    paths = {d.path for d in devices}
    all_devs = [d for d in all_devs if d.path not in paths] + list(devices)
    for d in all_devs:
        dest = _join_parent(rootfs, d.path)
        mkdir_all(os.path.dirname(dest))
        kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[d.type]
        mode = d.file_mode if d.file_mode is not None else 0o666
        if os.path.islink(dest):
            os.unlink(dest)  # an image's /dev/null -> elsewhere is replaced, never followed
        if in_userns:
            # mknod(2) of a device is refused in a user namespace: bind the host's node instead.
            make_file(dest)
            libc.mount(d.path, dest, None, MS_BIND, None,
                       "no mknod in a user namespace: bind-mount the host's device node")
            continue
        if os.path.lexists(dest):
            os.unlink(dest)
        libc.mknod(dest, kind | mode, d.major, d.minor, "create the device node")
        # Through the seam, like the mknod it follows (a Recorder's mknod creates no file).
        libc.chmod(dest, mode, "mknod's mode is filtered by the umask: set it exactly")
        if d.uid or d.gid:
            libc.chown(dest, d.uid or 0, d.gid or 0, "device owner from linux.devices")
    links = list(DEV_SYMLINKS)
    if os.path.exists("/proc/kcore"):
        links.append(("/proc/kcore", "/dev/core"))
    for target, link in links:
        dest = _join_parent(rootfs, link)
        if os.path.lexists(dest):
            if link != "/dev/ptmx":
                continue
            os.unlink(dest)
        libc.symlink(target, dest, "standard /dev symlink")


def pivot(rootfs: str) -> None:
    """Step 5: make rootfs the new / and detach the old root (runc's pivot_root(".", ".") trick)."""
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
    libc.chdir(rootfs, "enter the new root")
    libc.mount(rootfs, "/", None, MS_MOVE, None, "--no-pivot: move the rootfs over /")
    libc.chroot(".", "--no-pivot: chroot into it (escapable with CAP_SYS_CHROOT; pivot_root is not)")
    libc.chdir("/", "stand in the container's /")


def mask_paths(paths: list[str]) -> None:
    """Step 6a: hide kernel files a container should not read (/proc/kcore, /proc/keys ...)."""
    null = -1
    try:
        for p in paths:
            try:
                st = os.lstat(p)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if stat.S_ISLNK(st.st_mode):
                continue  # a symlink in its place: masking it would mask whatever it points at
            if stat.S_ISDIR(st.st_mode):
                _mount_on("tmpfs", p, "tmpfs", MS_RDONLY, None,
                          "maskedPaths: cover the directory with an empty read-only tmpfs", None)
                continue
            if null < 0:
                # CVE-2025-31133: /dev/null swapped for a symlink (to core_pattern, say) would
                # make the "mask" a writable window onto that file. Open it without following,
                # check it is the null device, and bind exactly what was checked.
                null = pin("/dev/null")
                st_null = os.fstat(null)
                if not stat.S_ISCHR(st_null.st_mode) or st_null.st_rdev != os.makedev(1, 3):
                    raise MountError("/dev/null in the container is not the null device: "
                                     "refusing to use it to mask paths")
            _mount_on(f"/proc/self/fd/{null}", p, None, MS_BIND, None,
                      "maskedPaths: bind /dev/null over the file", None, shown_source="/dev/null")
    finally:
        if null >= 0:
            os.close(null)


def readonly_paths(paths: list[str]) -> None:
    """Step 6b: bind each path onto itself and remount it read-only."""
    for p in paths:
        if not os.path.lexists(p):
            continue
        libc.mount(p, p, None, MS_BIND | MS_REC, None, "readonlyPaths: make it its own mount")
        libc.mount(None, p, None, MS_BIND | MS_REMOUNT | MS_RDONLY | _current_flags(p), None,
                   "readonlyPaths: now remount it read-only")


def finish_root(readonly: bool, propagation: str) -> None:
    """Step 7: read-only / and the rootfs propagation asked for."""
    if readonly:
        libc.mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | _current_flags("/"), None,
                   "root.readonly: the container cannot write its rootfs")
    if propagation:
        libc.mount(None, "/", None, PROPAGATION[propagation], None,
                   "linux.rootfsPropagation")
