"""The build context and Docker's COPY rules: which files a COPY/ADD names, their checksum for
the cache, and where each one lands in the image.

  sources      a path in the context (never out of it: resolved like a rootfs), or a glob
               (`*`, `?`, `[...]`, which never cross a "/"), minus what .dockerignore excludes
  checksum     name, type, mode, owner, size and content of every file -- not the mtime, so a
               `touch` or a fresh `git clone` does not invalidate the cache
  destination  a directory source copies its *contents*; a file goes into DEST/ when DEST ends
               with "/" or is a directory, else it becomes DEST; files are root's unless
               --chown; ADD unpacks local tar archives (plain, gzip, bzip2, xz)
Every write into the image is made relative to a directory fd (kernel/resolve.py): dest is
looked up with openat2 RESOLVE_IN_ROOT, missing directories made with mkdirat + O_NOFOLLOW, each
entry created with O_NOFOLLOW|O_EXCL and a symlink in its place unlinked, never written through.
A path string checked first and used later could be swapped for a symlink to the host in
between (runc CVE-2024-45310, Docker CVE-2018-15664); an fd cannot.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import stat
from typing import BinaryIO, Callable

from ..kernel import resolve


def has_glob(s: str) -> bool:
    return any(ch in s for ch in "*?[")


def glob_match(pattern: str, path: str) -> bool:
    """Go's filepath.Match, as COPY uses it: `*`, `?` and `[...]` never cross a "/"."""
    pp, parts = pattern.split("/"), path.split("/")
    return len(pp) == len(parts) and all(fnmatch.fnmatchcase(x, y) for y, x in zip(pp, parts))


def all_paths(root: str, matcher) -> list[str]:
    """Every path in the context that .dockerignore leaves in (dockerignore.walk)."""
    from ..image.dockerfile.dockerignore import walk

    return list(walk(root, matcher))


def checksum(root: str, files: list[tuple[str, str]], matcher) -> str:
    """Name, type, mode, owner, size and content of every source file (not mtimes: touching
    a file does not change what COPY copies)."""
    h = hashlib.sha256()
    for rel, _ in files:
        top = os.path.join(root, rel) if rel else root
        paths = [top]
        if os.path.isdir(top) and not os.path.islink(top):
            paths = [top]
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames.sort()
                for d in list(dirnames):
                    if not matcher.could_include_under(os.path.relpath(os.path.join(dirpath, d), root)):
                        dirnames.remove(d)
                for n in sorted(dirnames + filenames):
                    p = os.path.join(dirpath, n)
                    if not matcher.excluded(os.path.relpath(p, root)):
                        paths.append(p)
        for p in paths:
            st = os.lstat(p)
            h.update(f"{os.path.relpath(p, top)}\0{st.st_mode:o}\0{st.st_uid}\0{st.st_gid}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(p).encode())
            elif stat.S_ISREG(st.st_mode):
                h.update(str(st.st_size).encode())
                with open(p, "rb") as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
    return h.hexdigest()


def copy_into(src: str, name: str, root: str | int, dest: str, uid: int, gid: int,
              mode: int | None, extract: bool, single: bool, matcher, src_rel: str,
              src_root: str | None = None) -> None:
    """Docker's COPY rules for one source into the rootfs at `root` (a path or an fd):
      * a directory: its *contents* are copied into dest (created if missing);
      * a file: into dest/ when dest ends with "/" or is an existing directory, else as dest;
      * ADD: a local tar archive (plain, gzip, bzip2, xz) is unpacked into dest instead.
    The source is `src` on the host (the build context, a download), or, with `src_root`,
    `src_rel` inside that root (COPY --from: another stage's or an image's rootfs), read by fds
    with resolve.walk so its symlinks are copied as links, never followed out of it.
    In the rootfs, dest is looked up with resolve (openat2 RESOLVE_IN_ROOT) and every entry is
    made relative to its directory's fd with O_NOFOLLOW: an image's `/dest -> /tmp/x` means the
    image's /tmp/x, never the host's, and a symlink where a file goes is replaced, not written
    through (runc CVE-2024-45310, Docker CVE-2018-15664: a path checked then used by name can be
    swapped for a symlink in between)."""
    rfd, mine = (root, False) if isinstance(root, int) else \
        (os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC), True)
    try:
        if src_root is not None:
            _copy_from_root(src_root, src_rel, name, rfd, dest, uid, gid, mode)
            return
        if os.path.isdir(src) and not os.path.islink(src):
            base = make_dirs(rfd, dest)
            tree = _DestTree(base)
            try:
                for dirpath, dirnames, filenames in os.walk(src):
                    dirnames.sort()
                    rel_dir = os.path.relpath(dirpath, src)
                    for d in list(dirnames):
                        r = os.path.normpath(os.path.join(src_rel, rel_dir, d))
                        if not matcher.could_include_under(r):
                            dirnames.remove(d)  # excluded, and no "!" pattern re-includes below it
                    if rel_dir == ".":
                        here = base
                    else:  # (parents of re-included files too)
                        here = _make_dir(tree.parent_of(rel_dir), os.path.basename(rel_dir),
                                         os.lstat(dirpath), uid, gid, mode)
                        tree.push(rel_dir, here)
                    for n in sorted(filenames + [d for d in dirnames
                                                 if os.path.islink(os.path.join(dirpath, d))]):
                        r = os.path.normpath(os.path.join(src_rel, rel_dir, n))
                        if matcher.excluded(r):
                            continue
                        _copy_file(os.path.join(dirpath, n), here, n, uid, gid, mode)
            finally:
                tree.close()
            return
        if extract and _is_archive(src):
            import tarfile  # lazy: ~1.2 ms, only ADD of a local archive

            base = make_dirs(rfd, dest)
            try:
                with tarfile.open(src) as tar:
                    _extract_archive(tar, rfd, dest, base)
            finally:
                os.close(base)
            return
        dfd, leaf = _file_target(rfd, dest, name)
        try:
            _copy_file(src, dfd, leaf, uid, gid, mode)
        finally:
            os.close(dfd)
    finally:
        if mine:
            os.close(rfd)


def _file_target(rfd: int, dest: str, name: str) -> tuple[int, str]:
    """(fd of the directory a single file goes in, its name there): dest/name when dest ends
    with "/" or is a directory (symlinks followed inside the root), else dest itself."""
    norm = os.path.normpath("/" + dest)
    if dest.endswith("/") or norm == "/" or _is_dir_in(rfd, dest):
        return make_dirs(rfd, dest), name
    return make_dirs(rfd, os.path.dirname(norm)), os.path.basename(norm)


def _copy_from_root(src_root: str, src_rel: str, name: str, rfd: int, dest: str, uid: int,
                    gid: int, mode: int | None) -> None:
    """COPY --from: the source is inside another rootfs; looked up there with RESOLVE_IN_ROOT
    and read by fds (resolve.walk for a directory)."""
    top = resolve.open_in(src_root, src_rel or "/", os.O_PATH)
    try:
        st = os.fstat(top)
        if stat.S_ISDIR(st.st_mode):
            base = make_dirs(rfd, dest)
            try:
                copy_tree(top, base, owner=lambda _st: (uid, gid), mode=mode)
            finally:
                os.close(base)
            return
        dfd, leaf = _file_target(rfd, dest, name)
        try:
            _put(top, "", st, dfd, leaf, uid, gid, mode)
        finally:
            os.close(dfd)
    finally:
        os.close(top)


def make_dirs(root: int | str, path: str) -> int:
    """resolve.mkdirs with a dangling symlink on the way followed *inside the root* and its
    target made, as Docker's MkdirAll under FollowSymlinkInScope does for COPY and a missing
    WORKDIR."""
    return resolve.mkdirs(root, path, follow_dangling=True)


def _is_dir_in(rfd: int, path: str) -> bool:
    try:
        os.close(resolve.open_in(rfd, path, os.O_PATH | os.O_DIRECTORY))
        return True
    except OSError:
        return False


class _DestTree:
    """The destination's directory fds along the current path of a depth-first copy (the
    walk is depth first, so a directory's fd is closed once the walk has left it)."""

    def __init__(self, base: int, on_leave=None) -> None:
        self.stack: list[tuple[str, int]] = [("", base)]
        self.on_leave = on_leave  # (fd) -> None, before a directory's fd is closed

    def parent_of(self, rel: str) -> int:
        want = os.path.dirname(rel)
        while self.stack[-1][0] != want:
            if len(self.stack) == 1:
                raise resolve.ResolveError(rel, "its directory was not copied")
            self._leave()
        return self.stack[-1][1]

    def push(self, rel: str, fd: int) -> None:
        self.stack.append((rel, fd))

    def _leave(self) -> None:
        _, fd = self.stack.pop()
        try:
            if self.on_leave:
                self.on_leave(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        while len(self.stack) > 1:
            self._leave()
        if self.on_leave:
            self.on_leave(self.stack[0][1])
        os.close(self.stack[0][1])


def _clear(dfd: int, name: str, for_dir: bool) -> None:
    """Make room for `name` in the directory: a file or a symlink there is unlinked relative
    to the fd (never written through); a directory is removed unless a directory is coming."""
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if not for_dir:
            shutil.rmtree(name, dir_fd=dfd)  # fd-based: never follows a link inside
    else:
        os.unlink(name, dir_fd=dfd)


def _make_dir(dfd: int, name: str, st: os.stat_result, uid: int, gid: int,
              mode: int | None) -> int:
    """Directory `name` in dfd (a symlink there replaced by it), chmod/chown'ed as the source;
    an O_PATH fd on it, opened O_NOFOLLOW."""
    _clear(dfd, name, for_dir=True)
    try:
        os.mkdir(name, 0o755, dir_fd=dfd)
    except FileExistsError:
        pass
    fd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    try:
        os.chmod(resolve.fd_path(fd), mode if mode is not None else stat.S_IMODE(st.st_mode))
        os.chown(name, uid, gid, dir_fd=dfd, follow_symlinks=False)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _hardlink(root_fd: int, target: str, dfd: int, name: str) -> None:
    """Entry `name` of directory `dfd` made a hard link to `target`, looked up inside the root:
    linkat(2) of the object the lookup's fd holds (/proc/self/fd/N, followed), never of a name
    the kernel would walk again."""
    tfd = resolve.open_in(root_fd, target, os.O_PATH | os.O_NOFOLLOW)
    try:
        _clear(dfd, name, for_dir=False)
        os.link(resolve.fd_path(tfd), name, dst_dir_fd=dfd, follow_symlinks=True)
    finally:
        os.close(tfd)


def _write(dfd: int, name: str, src: BinaryIO, perm: int, times: tuple[int, int] | None,
           uid: int | None, gid: int | None) -> None:
    """A regular file `name` in dfd with the content of `src` (an open binary file), made
    O_CREAT|O_EXCL|O_NOFOLLOW (nothing there: _clear ran); then chmod, times and owner (unless
    None), by its fd."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600, dir_fd=dfd)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
        out.flush()
        os.fchmod(fd, perm)
        if times is not None:
            os.utime(fd, ns=times)
        if uid is not None:
            os.fchown(fd, uid, gid)


def _copy_file(src: str, dfd: int, name: str, uid: int, gid: int, mode: int | None) -> None:
    """One host file (the build context) into dfd as `name`."""
    st = os.lstat(src)
    _clear(dfd, name, for_dir=os.path.isdir(src))
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), name, dir_fd=dfd)
        os.chown(name, uid, gid, dir_fd=dfd, follow_symlinks=False)
    elif stat.S_ISREG(st.st_mode):
        with open(src, "rb") as f:
            _write(dfd, name, f, mode if mode is not None else stat.S_IMODE(st.st_mode),
                   (st.st_atime_ns, st.st_mtime_ns), uid, gid)
    # sockets, devices and fifos in a context are not copied


def _put(sdfd: int, sname: str, st: os.stat_result, dfd: int, name: str, uid: int, gid: int,
         mode: int | None) -> None:
    """One non-directory entry of a root (sname in sdfd; "" for sdfd itself, an O_PATH fd)
    into dfd as `name`, as COPY does: links as links, files with their mode and mtime."""
    _clear(dfd, name, for_dir=False)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(sname, dir_fd=sdfd), name, dir_fd=dfd)
        os.chown(name, uid, gid, dir_fd=dfd, follow_symlinks=False)
    elif stat.S_ISREG(st.st_mode):
        fd = resolve.open_entry(sdfd, sname, st) if sname else \
            os.open(resolve.fd_path(sdfd), os.O_RDONLY | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            _write(dfd, name, f, mode if mode is not None else stat.S_IMODE(st.st_mode),
                   (st.st_atime_ns, st.st_mtime_ns), uid, gid)


def copy_tree(src_fd: int, dst_fd: int, *, owner: Callable[[os.stat_result], tuple[int, int]],
              mode: int | None = None,
              keep_all: bool = False) -> None:
    """Copy the content of the open directory src_fd into the directory dst_fd, both sides by
    fds: the source read with resolve.walk (each directory opened O_NOFOLLOW relative to its
    parent and checked), every entry made relative to its new parent's fd with O_NOFOLLOW,
    a symlink in the way replaced, never followed. owner(lstat) -> (uid, gid).

    COPY (keep_all False): directories, files (mode or --chmod, mtime) and symlinks.
    Volume seeding (keep_all True, `cp -a`): also fifos, devices and sockets, hard links
    as links, extended attributes, and directory times."""
    links: dict[tuple[int, int], str] = {}  # (dev, ino) -> where its first copy is, under dst
    dir_times: dict[int, tuple[int, int]] = {}

    def leave(fd: int) -> None:
        if fd in dir_times:
            os.utime(resolve.fd_path(fd), ns=dir_times.pop(fd))

    tree = _DestTree(os.dup(dst_fd), leave if keep_all else None)
    try:
        for rel, sdfd, name, st in resolve.walk(src_fd):
            dfd = tree.parent_of(rel)
            uid, gid = owner(st)
            kind = stat.S_IFMT(st.st_mode)
            if kind == stat.S_IFDIR:
                fd = _make_dir(dfd, name, st, uid, gid, mode)
                if keep_all:
                    _copy_xattrs(sdfd, name, fd)
                    dir_times[fd] = (st.st_atime_ns, st.st_mtime_ns)
                tree.push(rel, fd)
                continue
            if keep_all and st.st_nlink > 1 and kind != stat.S_IFLNK:
                first = links.get((st.st_dev, st.st_ino))
                if first is not None:  # a link to the first copy, looked up inside dst
                    _hardlink(dst_fd, first, dfd, name)
                    continue
            if kind in (stat.S_IFLNK, stat.S_IFREG):
                _put(sdfd, name, st, dfd, name, uid, gid, mode)
            elif keep_all and kind in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK):
                _clear(dfd, name, for_dir=False)
                os.mknod(name, kind | 0o600, st.st_rdev, dir_fd=dfd)
                os.chown(name, uid, gid, dir_fd=dfd, follow_symlinks=False)
                pfd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
                try:
                    os.chmod(resolve.fd_path(pfd), stat.S_IMODE(st.st_mode))
                finally:
                    os.close(pfd)
            else:
                continue
            if keep_all and kind != stat.S_IFLNK:
                pfd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
                try:
                    if kind == stat.S_IFREG:
                        _copy_xattrs(sdfd, name, pfd)
                        # again after the chown, which clears setuid/setgid (cp -a's order)
                        os.chmod(resolve.fd_path(pfd), stat.S_IMODE(st.st_mode))
                finally:
                    os.close(pfd)
                if st.st_nlink > 1:
                    links[(st.st_dev, st.st_ino)] = rel
            if keep_all:
                os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dfd,
                         follow_symlinks=False)
    finally:
        tree.close()


def _copy_xattrs(sdfd: int, name: str, dst: int) -> None:
    """Extended attributes of `name` in sdfd onto the open object dst, as far as they go
    (cp -a does not complain either)."""
    try:
        fd = resolve.open_entry(sdfd, name, None, os.O_PATH)
    except OSError:
        return
    try:
        src, to = resolve.fd_path(fd), resolve.fd_path(dst)
        for key in os.listxattr(src):
            try:
                os.setxattr(to, key, os.getxattr(src, key))
            except OSError:
                pass
    except OSError:
        pass
    finally:
        os.close(fd)


def _is_archive(path: str) -> bool:
    import tarfile  # lazy: ~1.2 ms, only ADD of a local file

    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _extract_archive(tar, rfd: int, dest: str, base: int) -> None:
    """ADD's unpacking: entries stay under the destination; each is made relative to its
    directory's fd (the directory looked up inside the rootfs, as dest + the entry's path), a
    symlink in its place replaced, and a hard link's target looked up inside the rootfs too:
    neither an image's symlink nor the archive's own can point a write out."""
    top = os.path.normpath("/" + dest)
    for m in tar:
        name = os.path.normpath(m.name).lstrip("/")
        if name.startswith(".."):
            continue  # nothing may land above the destination
        if name == ".":
            if m.isdir():
                os.chmod(resolve.fd_path(base), m.mode & 0o7777)
                try:
                    os.chown(resolve.fd_path(base), m.uid, m.gid)
                except OSError:
                    pass
            continue
        dfd = make_dirs(rfd, os.path.join(top, os.path.dirname(name)))
        leaf = os.path.basename(name)
        try:
            if m.isdir():
                _clear(dfd, leaf, for_dir=True)
                try:
                    os.mkdir(leaf, 0o755, dir_fd=dfd)
                except FileExistsError:
                    pass
                fd = os.open(leaf, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                             dir_fd=dfd)
                try:
                    os.chmod(resolve.fd_path(fd), m.mode & 0o7777)
                finally:
                    os.close(fd)
            elif m.issym():
                _clear(dfd, leaf, for_dir=False)
                os.symlink(m.linkname, leaf, dir_fd=dfd)
            elif m.islnk():
                _hardlink(rfd, os.path.join(top, os.path.normpath(m.linkname).lstrip("/")),
                          dfd, leaf)
            elif m.isfile():
                _clear(dfd, leaf, for_dir=False)
                with tar.extractfile(m) as f:
                    _write(dfd, leaf, f, m.mode & 0o7777, None, None, None)
            else:
                continue
            try:
                os.chown(leaf, m.uid, m.gid, dir_fd=dfd, follow_symlinks=False)
            except OSError:
                pass
        finally:
            os.close(dfd)
