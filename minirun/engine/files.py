"""A container's files from the host: `cp`, `diff` and `export`, without leaving its root.

Where a container's files are, seen from the host:
  * running: /proc/<pid>/root, the init's root, with the container's own mounts (volumes,
    tmpfs) on it; stopped: containers/<id>/rootfs, the overlay mounted for the occasion.
  * its changes: containers/<id>/upper, overlay's writable layer (diff reads only that).

The container's root is opened once, as an fd, and every path inside it is looked up by the
kernel relative to that fd (kernel/resolve.py: openat2 RESOLVE_IN_ROOT), so an image's
`/etc -> /host` or a `..` chain leads to the container's /host, never the host's. What is found
is used through its fd: files are read from fds, trees are walked by fds (each directory opened
O_NOFOLLOW relative to its parent), tar entries are built from fstat/lstat and fds, and what
is copied in is created with mkdirat/openat(O_CREAT|O_EXCL|O_NOFOLLOW)/symlinkat relative to a
directory fd. Why not a path: a path checked first (resolved, lstat'ed) and opened afterwards
is walked twice, and the container, which is running, can swap a directory for a symlink in
between; the second walk then follows that absolute symlink against *our* root and reads or
writes the host (Docker's CVE-2018-15664, `docker cp`). Only the host side of a copy (DEST
or SRC on the host) is used by path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import sys
import tarfile
from typing import BinaryIO, Iterator

from ..errors import Conflict, InvalidArgument, MinirunError, NotFound
from ..image import overlay
from ..image.assemble import tarinfo_of
from ..kernel import resolve
from .userns import host_root


class FilesError(MinirunError):
    exit_code = 1


class NoSuchPath(FilesError, NotFound):
    """A path that is not there, in the container or on the host (errors.NotFound)."""


class BadCopy(FilesError, InvalidArgument):
    """A copy that cannot be done as asked: a tar entry pointing out, a destination that is not
    a directory (errors.InvalidArgument)."""


BUF = 1 << 20


@contextlib.contextmanager
def root_of(engine, c, live: bool = True) -> Iterator[str]:
    """The container's / as a host path, for as long as the caller needs it. live=False: its
    own filesystem only (the overlay), without what is mounted on it (proc, volumes). Only
    to be opened (root_fd): a path under it must never be used by name."""
    if live and c.state.status in ("running", "paused") and c.state.pid:
        yield f"/proc/{c.state.pid}/root"
        return
    cdir = engine.cdir(c.id)
    merged = os.path.join(cdir, "rootfs")
    mounted_here = False
    if not os.path.ismount(merged):
        overlay.mount_rootfs(os.path.join(engine.root, "image", "layers"), c.layers, cdir)
        mounted_here = True
    try:
        yield merged
    finally:
        if mounted_here:
            overlay.unmount_rootfs(cdir)


@contextlib.contextmanager
def root_fd(engine, c, live: bool = True) -> Iterator[int]:
    """The container's / as an O_PATH fd: every lookup inside it goes through resolve.open_in
    relative to it. /proc/PID/root is opened once (the kernel follows that magic link to the
    container's root); nothing under it is ever opened by a path string."""
    with root_of(engine, c, live) as root:
        fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            yield fd
        finally:
            os.close(fd)


def _lookup(rootfd: int, path: str, flags: int = os.O_PATH) -> int | None:
    """An fd on `path` inside the root (symlinks followed inside it), None if it is not there."""
    try:
        return resolve.open_in(rootfd, path, flags)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None
        raise


def _existing(rootfd: int, c, src: str) -> int:
    fd = _lookup(rootfd, src)
    if fd is None:
        raise NoSuchPath(f"Could not find the file {src} in container {c.name}")
    return fd


def _reopen(fd: int, flags: int = os.O_RDONLY) -> int:
    # /proc/self/fd/N names exactly the object we hold: reopening it for reading is no new walk
    return os.open(resolve.fd_path(fd), flags | os.O_CLOEXEC)


# --- out of the container -----------------------------------------------------------------------


def _add_tree(tar: tarfile.TarFile, top_fd: int, top_st: os.stat_result, arcname: str,
              inodes: dict) -> None:
    """`top_fd` (an fd from resolve) and, if it is a directory, everything below it, as tar
    entries under `arcname`; the order tar.add(path) gives (each directory before what it
    holds, names sorted), owners as numbers. Files are read from fds, never by a path."""
    info = tarinfo_of(top_st, arcname, inodes)
    if info is None:
        pass  # a socket: tar has no entry for it
    elif info.isreg():
        with os.fdopen(_reopen(top_fd), "rb") as f:
            tar.addfile(info, f)
    else:
        if info.issym():
            info.linkname = os.readlink("", dir_fd=top_fd)
        tar.addfile(info)
    if not stat.S_ISDIR(top_st.st_mode):
        return
    prefix = arcname.rstrip("/") + "/"  # "." gives "./bin", as tar.add does
    for rel, dfd, name, st in resolve.walk(top_fd):
        _add_entry(tar, dfd, name, st, prefix + rel, inodes)


def _add_entry(tar: tarfile.TarFile, dfd: int, name: str, st: os.stat_result, arcname: str,
               inodes: dict) -> None:
    """One entry of a walk as a tar entry: data from an fd opened O_NOFOLLOW relative to its
    directory and checked to be the entry listed (resolve.open_entry)."""
    info = tarinfo_of(st, arcname, inodes)
    if info is None:
        return
    if info.isreg():
        with os.fdopen(resolve.open_entry(dfd, name, st), "rb") as f:
            tar.addfile(info, f)
        return
    if info.issym():
        info.linkname = os.readlink(name, dir_fd=dfd)
    tar.addfile(info)


def export(engine, c, out) -> None:
    """The container's filesystem as a flat tar (Docker's `export`: its rootfs, not its
    volumes or /proc), written to out; walked by fds (resolve.walk)."""
    with root_fd(engine, c, live=False) as rootfd, \
            tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        inodes: dict = {}
        for rel, dfd, name, st in resolve.walk(rootfd):
            _add_entry(tar, dfd, name, st, rel, inodes)


def stat_path(engine, c, src: str) -> dict:
    """Docker's PathStat of a path in the container (see _path_stat)."""
    with root_fd(engine, c) as rootfd:
        fd = _existing(rootfd, c, src)
        try:
            return _path_stat(fd, src)
        finally:
            os.close(fd)


def _path_stat(fd: int, src: str) -> dict:
    """{"name", "size", "mode", "mtime", "linkTarget"}, mode as Go's os.FileMode bits: the
    permission bits, plus 1<<31 for a directory, 1<<27 for a symlink."""
    st = os.fstat(fd)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        mode |= 1 << 31
    elif stat.S_ISLNK(st.st_mode):
        mode |= 1 << 27
    return {"name": os.path.basename(os.path.normpath(src)) or "/", "size": st.st_size,
            "mode": mode, "mtime": st.st_mtime,
            "linkTarget": os.readlink("", dir_fd=fd) if stat.S_ISLNK(st.st_mode) else ""}


def archive_out(engine, c, src: str, out: BinaryIO) -> dict:
    """A file or a tree of the container as a tar stream (`cp CONTAINER:SRC -`), written to
    out: its entry named after SRC's last part, owners as numbers. Returns SRC's PathStat."""
    with root_fd(engine, c) as rootfd:
        fd = _existing(rootfd, c, src)
        try:
            st = _path_stat(fd, src)
            with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                _add_tree(tar, fd, os.fstat(fd), os.path.basename(os.path.normpath(src)) or ".",
                          {})
            return st
        finally:
            os.close(fd)


def _file_out(src_fd: int, st: os.stat_result, dest: str) -> None:
    """A container file (an fd) to host path `dest`, with its mode and times (as copy2)."""
    with os.fdopen(src_fd, "rb", closefd=False) as r, open(dest, "wb") as w:
        shutil.copyfileobj(r, w, BUF)
    os.chmod(dest, stat.S_IMODE(st.st_mode))
    os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))


def _link_out(target: str, st: os.stat_result, dest: str) -> None:
    if os.path.lexists(dest):
        os.unlink(dest)
    os.symlink(target, dest)
    os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _tree_out(top_fd: int, dest: str) -> None:
    """What directory `top_fd` holds, copied into host directory `dest` (made if missing),
    as copytree(symlinks=True, dirs_exist_ok=True) would, but walked by fds. Devices, fifos
    and sockets are left out (copytree cannot copy them either)."""
    os.makedirs(dest, exist_ok=True)
    dirs: list[tuple[str, os.stat_result]] = []
    for rel, dfd, name, st in resolve.walk(top_fd):
        host = os.path.join(dest, rel)
        if stat.S_ISDIR(st.st_mode):
            os.makedirs(host, exist_ok=True)
            dirs.append((host, st))
        elif stat.S_ISLNK(st.st_mode):
            _link_out(os.readlink(name, dir_fd=dfd), st, host)
        elif stat.S_ISREG(st.st_mode):
            fd = resolve.open_entry(dfd, name, st)
            try:
                _file_out(fd, st, host)
            finally:
                os.close(fd)
    for host, st in reversed(dirs):  # modes and times once their content is in
        os.chmod(host, stat.S_IMODE(st.st_mode))
        os.utime(host, ns=(st.st_atime_ns, st.st_mtime_ns))


def copy_out(engine, c, src: str, dest: str, archive: bool = False) -> None:
    """`cp CONTAINER:SRC DEST`: a file or a tree from the container to the host. SRC/. copies
    SRC's content into DEST; into DEST if it is a directory, as DEST otherwise."""
    if dest == "-":
        archive_out(engine, c, src, sys.stdout.buffer)
        return
    with root_fd(engine, c) as rootfd:
        fd = _existing(rootfd, c, src)
        try:
            st = os.fstat(fd)
            target = dest
            if os.path.isdir(dest) and not src.endswith("/."):
                target = os.path.join(dest, os.path.basename(os.path.normpath(src)))
            if stat.S_ISDIR(st.st_mode):
                _tree_out(fd, dest if src.endswith("/.") and os.path.isdir(dest) else target)
                if not (src.endswith("/.") and os.path.isdir(dest)):
                    os.chmod(target, stat.S_IMODE(st.st_mode))
                    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
            elif stat.S_ISREG(st.st_mode):
                rfd = _reopen(fd)
                try:
                    _file_out(rfd, st, target)
                finally:
                    os.close(rfd)
            elif stat.S_ISLNK(st.st_mode):
                _link_out(os.readlink("", dir_fd=fd), st, target)
            else:
                raise BadCopy(f"cp {c.name}:{src}: not a regular file, directory or symlink")
        finally:
            os.close(fd)


# --- into the container ----------------------------------------------------------------------


def _entry_st(dfd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _clear(dfd: int, name: str, st: os.stat_result | None, rmdir: bool = False) -> None:
    """Remove entry `name` of directory fd `dfd` (never following a symlink there) to make
    room for a new one; a directory only with rmdir (shutil.rmtree by fds)."""
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        if rmdir:
            shutil.rmtree(name, dir_fd=dfd)
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=dfd)


def _new_file(dfd: int, name: str) -> int:
    """A new, empty regular file `name` in directory fd `dfd`, open for writing. Whatever is
    there that is not a directory is unlinked first (a symlink is replaced, never written
    through; a device node is replaced, never opened); O_EXCL|O_NOFOLLOW: something swapped in
    meanwhile makes this retry, never redirects it."""
    for _ in range(5):
        try:
            return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                           os.O_CLOEXEC, 0o600, dir_fd=dfd)
        except FileExistsError:
            st = _entry_st(dfd, name)
            if st is not None and stat.S_ISDIR(st.st_mode):
                raise BadCopy(f"cannot overwrite directory {resolve.where(dfd)}/{name} with a "
                              "file") from None
            _clear(dfd, name, st)
    raise BadCopy(f"{resolve.where(dfd)}/{name} keeps changing while it is being written")


def _new_dir(dfd: int, name: str, mode: int = 0o777, replace: bool = True) -> int:
    """Directory `name` of directory fd `dfd`, made if missing (a non-directory there is
    replaced when `replace`), as an fd opened O_NOFOLLOW|O_DIRECTORY: a symlink swapped in
    makes this fail, never lets it write elsewhere."""
    st = _entry_st(dfd, name)
    if st is not None and not stat.S_ISDIR(st.st_mode):
        if not replace:
            raise BadCopy(f"cannot overwrite non-directory {resolve.where(dfd)}/{name} with a "
                          "directory")
        _clear(dfd, name, st)
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, mode, dir_fd=dfd)
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                       dir_fd=dfd)
    except OSError as e:
        raise BadCopy(f"{resolve.where(dfd)}/{name} is not a directory (swapped while it was "
                      f"being made?): {e.strerror}") from None


def _new_link(dfd: int, name: str, target: str) -> None:
    st = _entry_st(dfd, name)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise BadCopy(f"cannot overwrite directory {resolve.where(dfd)}/{name} with a symlink")
    _clear(dfd, name, st)
    os.symlink(target, name, dir_fd=dfd)


def _copy_xattrs(src: str, fd: int) -> None:
    # as copy2: what can be copied is, the rest (ENOTSUP, EPERM) left out
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError:
        return
    for a in names:
        with contextlib.suppress(OSError):
            os.setxattr(fd, a, os.getxattr(src, a, follow_symlinks=False))


def _put(src: str, st: os.stat_result, dfd: int, name: str, owner) -> None:
    """Host entry `src` (by path: the host side) as entry `name` of container directory fd
    `dfd`, made relative to that fd; a tree recursively. owner(st) -> (uid, gid)."""
    if stat.S_ISDIR(st.st_mode):
        sub = _new_dir(dfd, name, replace=False)
        try:
            _put_into(src, sub, owner)
            os.chown(sub, *owner(st))
            os.chmod(sub, stat.S_IMODE(st.st_mode))
            os.utime(sub, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(sub)
    elif stat.S_ISLNK(st.st_mode):
        _new_link(dfd, name, os.readlink(src))
        os.chown(name, *owner(st), dir_fd=dfd, follow_symlinks=False)
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dfd, follow_symlinks=False)
    elif stat.S_ISREG(st.st_mode):
        fd = _new_file(dfd, name)
        try:
            with open(src, "rb") as r, os.fdopen(fd, "wb", closefd=False) as w:
                shutil.copyfileobj(r, w, BUF)
            os.chown(fd, *owner(st))  # before chmod: chown drops setuid bits
            os.chmod(fd, stat.S_IMODE(st.st_mode))
            _copy_xattrs(src, fd)
            os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(fd)
    # devices, fifos, sockets: not what cp carries (copytree refused them too)


def _put_into(src_dir: str, dfd: int, owner) -> None:
    """The content of host directory `src_dir`, copied into container directory fd `dfd`."""
    with os.scandir(src_dir) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        _put(e.path, e.stat(follow_symlinks=False), dfd, e.name, owner)


def _split(path: str) -> tuple[str, str]:
    """(directory, last component) of a container path, left as written: the directory is
    resolved by the kernel (`..` after a symlink goes up from where the link leads)."""
    path = path.rstrip("/") or "/"
    head, _, name = path.rpartition("/")
    return head or "/", name


def _dest_entry(rootfd: int, dest: str) -> tuple[int, str] | None:
    """(fd of DEST's directory, DEST's name) for an entry to create, DEST's last symlink
    followed inside the root as `docker cp` does (a dangling one: its target is made); None
    if that directory is not there."""
    path = dest
    for _ in range(resolve.MAXSYMLINKS):
        head, name = _split(path)
        dfd = _lookup(rootfd, head, os.O_PATH | os.O_DIRECTORY)
        if dfd is None:
            return None
        st = _entry_st(dfd, name)
        if st is None or not stat.S_ISLNK(st.st_mode):
            return dfd, name
        target = os.readlink(name, dir_fd=dfd)
        os.close(dfd)
        path = target if target.startswith("/") else f"{head}/{target}"
    raise BadCopy(f"{dest}: too many levels of symbolic links")


def copy_in(engine, c, src: str, dest: str, archive: bool = False) -> None:
    """`cp SRC CONTAINER:DEST`: a host file or tree into the container (owned by its root,
    which is a shifted uid in a user namespace, unless -a keeps the source's owners, as Docker
    does). Every entry is made relative to a directory fd found inside the container's root."""
    if src == "-":
        archive_in(engine, c, dest, sys.stdin.buffer)
        return
    if not os.path.lexists(src):
        raise NoSuchPath(f"lstat {src}: no such file or directory")
    uid, gid = host_root(c.host_config.get("IDMappings"))  # "root" in a user namespace
    src_st = os.lstat(src)

    def owner(st: os.stat_result) -> tuple[int, int]:
        return (st.st_uid, st.st_gid) if archive else (uid, gid)

    with root_fd(engine, c) as rootfd:
        dfd = _lookup(rootfd, dest, os.O_RDONLY | os.O_DIRECTORY)
        if dfd is not None:  # DEST is a directory: SRC goes into it (SRC/.'s content: into it)
            try:
                if dest.endswith("/.") and stat.S_ISDIR(src_st.st_mode):
                    _put_into(src, dfd, owner)
                else:
                    _put(src, src_st, dfd, os.path.basename(os.path.normpath(src)), owner)
            finally:
                os.close(dfd)
            return
        found = _dest_entry(rootfd, dest)
        if found is None:
            raise NoSuchPath(f"cp {src} {c.name}:{dest}: no such directory "
                             f"{os.path.dirname(dest)} in the container")
        dfd, name = found
        try:
            _put(src, src_st, dfd, name, owner)
        finally:
            os.close(dfd)


def archive_in(engine, c, dest: str, stream: BinaryIO) -> None:
    """A tar stream (`cp - CONTAINER:DEST`) unpacked into directory DEST of the container,
    every entry kept inside it (entries are written as the tar has them)."""
    with root_fd(engine, c) as rootfd:
        target = _lookup(rootfd, dest, os.O_RDONLY | os.O_DIRECTORY)
        if target is None:
            raise BadCopy(f"cp - {c.name}:{dest}: the destination must be a directory")
        try:
            with tarfile.open(fileobj=stream, mode="r|*") as tar:
                for m in tar:
                    extract_one(tar, m, rootfd, dest, target, refuse="cp: ")
        finally:
            os.close(target)


def extract_one(tar: tarfile.TarFile, m: tarfile.TarInfo, rootfd: int, dest: str,
                target_fd: int, *, owner: tuple[int, int] | None = None,
                no_overwrite: bool = False, attrs: bool = False, refuse: str = "") -> None:
    """Tar entry `m` unpacked under container directory `dest` (open as `target_fd`): its
    directory looked up (made if missing) inside the root by resolve.parent, the entry made
    relative to that fd, never through a symlink. An entry with `..` or an absolute name is
    refused. owner: chown to it (None: left to whoever made it); no_overwrite: a directory
    may not replace a non-directory or the other way round (Conflict); attrs: directories
    take the tar's mode too, and everything its mtime (Docker's PUT /archive)."""
    name = os.path.normpath(m.name)
    dfd: int | None = None
    if name in (".", ""):
        base, st = "", os.fstat(target_fd)
    else:
        if name.startswith("..") or os.path.isabs(name):
            raise BadCopy(f"{refuse}refusing tar entry {m.name!r}: it points outside the "
                          "destination")
        dfd, base = resolve.parent(rootfd, f"{dest.rstrip('/')}/{name}")
        st = _entry_st(dfd, base)
    efd: int | None = None
    try:
        exists = st is not None
        is_dir = exists and stat.S_ISDIR(st.st_mode)
        if no_overwrite and exists and is_dir != m.isdir():
            what = "directory" if is_dir else "non-directory"
            raise Conflict(f"cannot overwrite {what} "
                           f"{os.path.normpath('/' + dest + '/' + name)} with "
                           f"{'directory' if m.isdir() else 'non-directory'} {m.name}")
        if dfd is None:
            if not m.isdir():
                return  # "." as anything but a directory: nothing to do with the destination
            efd = os.dup(target_fd)
        elif m.isdir():
            efd = _new_dir(dfd, base)
        elif m.issym():
            _clear(dfd, base, st, rmdir=True)
            os.symlink(m.linkname, base, dir_fd=dfd)
        elif m.isfile():
            _clear(dfd, base, st, rmdir=True)
            efd = _new_file(dfd, base)
            with os.fdopen(efd, "wb", closefd=False) as w:
                shutil.copyfileobj(tar.extractfile(m), w, BUF)
        else:
            return  # devices, fifos, hard links: not what docker cp carries
        if owner is not None:
            if efd is not None:
                os.chown(efd, *owner)
            else:
                os.chown(base, *owner, dir_fd=dfd, follow_symlinks=False)
        if efd is not None and (attrs or m.isfile()):
            os.chmod(efd, m.mode & 0o7777)
            if attrs:
                os.utime(efd, (m.mtime, m.mtime))
    finally:
        if efd is not None:
            os.close(efd)
        if dfd is not None:
            os.close(dfd)


# --- diff --------------------------------------------------------------------------------------


def _in_layer(layer_fd: int, rel: str) -> bool:
    """Whether a layer has `rel`, looked up one component at a time with O_NOFOLLOW: overlay
    never follows a layer's symlinks to merge it, and neither do we (nor out of the layer)."""
    parts = [p for p in rel.split("/") if p]
    cur = os.dup(layer_fd)
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            try:
                nxt = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC |
                              (0 if last else os.O_DIRECTORY), dir_fd=cur)
            except OSError:
                return False  # not there, or a non-directory (a symlink too) on the way
            os.close(cur)
            cur = nxt
        return True
    finally:
        os.close(cur)


def diff(engine, c) -> list[tuple[str, str]]:
    """`docker diff`: (kind, path) for what the writable layer holds: A added, C changed,
    D deleted. A whiteout (a 0:0 character device) is a deletion; anything else in upper is
    a change if some image layer has that path, an addition if none has. The writable layer
    is walked by fds (the running container changes it), the layers looked up by fds."""
    upper = os.path.join(engine.cdir(c.id), "upper")
    # The runtime's mount points for the container's own /etc files are not the user's changes
    # (Docker leaves them out too).
    hidden = {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}
    out: list[tuple[str, str]] = []
    try:
        upper_fd = os.open(upper, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return out
    lowers: list[int] = []
    try:
        for n in c.layers:
            with contextlib.suppress(FileNotFoundError):
                lowers.append(os.open(os.path.join(engine.root, "image", "layers", n),
                                      os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
        for rel, _dfd, _name, st in resolve.walk(upper_fd):
            rel = "/" + rel
            if rel in hidden:
                continue
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                out.append(("D", rel))
                continue
            in_lower = any(_in_layer(lo, rel) for lo in lowers)
            out.append(("C" if in_lower else "A", rel))
    finally:
        for fd in [upper_fd, *lowers]:
            os.close(fd)
    return sorted(out, key=lambda x: x[1])
