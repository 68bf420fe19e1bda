"""Paths inside a root: looked up by the kernel as if the root were /, created one component at a
time relative to the parent's file descriptor, never by a path string.

Why: a container's rootfs, its volumes and an image being built are written by someone else --
the container itself, another container sharing a volume, an image's author. A path checked
first and used afterwards (`realpath`, then `mkdir`/`open`/`mount` by name) is walked twice by
the kernel, and anything that can write a directory on the way can swap it for a symlink in
between: the second walk then follows an absolute symlink against *the host's* root. That race
is behind runc's CVE-2021-30465 (mount targets), CVE-2024-45310 (directories and files created
for mounts, through a volume two containers share) and Docker's CVE-2018-15664 (`docker cp`).

The answer, in three rules:
  1. Look a path up with openat2(2) (linux 5.6) and RESOLVE_IN_ROOT: the kernel resolves every
     component, symlinks and `..` included, as if the root fd were /, so nothing leads out;
     RESOLVE_NO_MAGICLINKS refuses /proc's magic links (/proc/self/fd/N, /proc/PID/root),
     which point at objects, not paths; RESOLVE_NO_XDEV, where asked, refuses to cross a
     mount point (so a path under /proc stays on that procfs).
  2. Keep the result as an fd and use the fd: mount(2) onto /proc/self/fd/N, read and write
     through it, create entries with mkdirat/openat/mknodat/symlinkat relative to a directory
     fd. The object checked is the object used.
  3. Create a missing directory with mkdirat(parent_fd, name), then open it with
     openat(parent_fd, name, O_NOFOLLOW|O_DIRECTORY): if a symlink was swapped in between,
     the open fails (ENOTDIR/ELOOP) instead of following it.

Kernels before 5.6 have no openat2 (ENOSYS): the same lookup is then done here, in userspace,
as runc's filepath-securejoin does: one openat(O_PATH|O_NOFOLLOW) per component, a symlink
read with readlinkat and its target walked again from the root (absolute) or the current
directory (relative), `..` never above the root. Setting `USE_OPENAT2 = False` forces that walk
(the unit tests run both).

    fd = open_in(root_fd, "/etc/passwd", os.O_RDONLY)         # read a file of the container
    fd = mkdirs(root_fd, "/data/sub")                         # O_PATH fd of the dir, made if missing
    fd = create_file(root_fd, "/etc/resolv.conf")             # O_PATH fd of a file, made if missing
    dirfd, name = parent(root_fd, "/dev/null")                # make the entry yourself: mknodat
    for rel, dfd, name, st in walk(dir_fd): ...               # a tree, by fds (cp, export, commit)
    fd = open_entry(dfd, name, st)                            # one of its files, for reading

Every function takes a root as an fd or a path, and returns fds the caller closes. Errors are
ResolveError (a MinirunError) naming the path and what was in the way.
"""

from __future__ import annotations

import errno
import os
import stat

TYPE_CHECKING = False  # no `import typing` (~7 ms, start-up budget): annotations are strings
if TYPE_CHECKING:
    from collections.abc import Iterator

from .. import trace
from ..errors import MinirunError
from . import libc

# openat2's resolve flags (linux/openat2.h)
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
RESOLVE_NAMES = {RESOLVE_NO_XDEV: "RESOLVE_NO_XDEV", RESOLVE_NO_MAGICLINKS: "RESOLVE_NO_MAGICLINKS",
                 RESOLVE_NO_SYMLINKS: "RESOLVE_NO_SYMLINKS", RESOLVE_BENEATH: "RESOLVE_BENEATH",
                 RESOLVE_IN_ROOT: "RESOLVE_IN_ROOT"}
OPEN_NAMES = {os.O_PATH: "O_PATH", os.O_DIRECTORY: "O_DIRECTORY", os.O_NOFOLLOW: "O_NOFOLLOW",
              os.O_CREAT: "O_CREAT", os.O_EXCL: "O_EXCL", os.O_WRONLY: "O_WRONLY",
              os.O_RDWR: "O_RDWR", os.O_TRUNC: "O_TRUNC", os.O_CLOEXEC: "O_CLOEXEC"}
MAXSYMLINKS = 40  # the kernel's own limit (ELOOP past it)

USE_OPENAT2: bool | None = None  # None: try it once; False: openat2 is missing (or forced off)


class ResolveError(MinirunError):
    """A path inside a root cannot be looked up or created safely; names it and the cause."""

    def __init__(self, path: str, why: str, err: int = 0) -> None:
        super().__init__(f"{path}: {why}")
        self.errno = err


# --- helpers ---------------------------------------------------------------------------------


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def _root_fd(root: int | str) -> tuple[int, bool]:
    """(fd, whether we opened it)."""
    if isinstance(root, int):
        return root, False
    return os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC), True


def where(fd: int) -> str:
    """The host path of an open object (for messages and the trace)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return f"fd {fd}"


def fd_path(fd: int) -> str:
    """/proc/self/fd/N: a path naming exactly the open object (for mount(2), tar, shutil)."""
    return f"/proc/self/fd/{fd}"


def _narrate(root_fd: int, path: str, flags: int, resolve: int, why: str) -> None:
    if trace.enabled:
        how = "openat2" if USE_OPENAT2 is not False else "openat per component (no openat2)"
        trace.step(f'{how}({where(root_fd)}, "{path}", '
                   f"{libc.flag_names(flags & ~os.O_CLOEXEC, OPEN_NAMES)}, "
                   f"{libc.flag_names(resolve, RESOLVE_NAMES)})", why)


# --- the lookup ------------------------------------------------------------------------------


def open_in(root: int | str, path: str, flags: int = os.O_PATH, mode: int = 0o644, *,
            no_xdev: bool = False, why: str = "") -> int:
    """openat2(root, path, flags, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS[|RESOLVE_NO_XDEV]): an
    fd on what `path` names inside the root, symlinks followed *inside* it (O_NOFOLLOW: not in
    the last place). OSError with the errno when it is not there (ENOENT), is no directory
    where one must be (ENOTDIR), loops (ELOOP) or crosses a mount with no_xdev (EXDEV)."""
    global USE_OPENAT2
    rfd, mine = _root_fd(root)
    resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | (RESOLVE_NO_XDEV if no_xdev else 0)
    flags |= os.O_CLOEXEC
    try:
        _narrate(rfd, path, flags, resolve, why or "look the path up inside the root: "
                 "symlinks and .. cannot lead out of it")
        if USE_OPENAT2 is not False:
            try:
                fd = libc.kernel().openat2(rfd, path or "/", flags,
                                           mode if flags & os.O_CREAT else 0, resolve)
                USE_OPENAT2 = True
                return fd
            except MinirunError as e:
                err = getattr(e, "errno", 0)
                if err != errno.ENOSYS:
                    raise OSError(err, os.strerror(err), path) from None
                USE_OPENAT2 = False
        return _walk(rfd, path, flags, mode, no_xdev)
    finally:
        if mine:
            os.close(rfd)


def _walk(root_fd: int, path: str, flags: int, mode: int, no_xdev: bool) -> int:
    """RESOLVE_IN_ROOT in userspace (kernels before 5.6). Symlinks are read as text and their
    targets walked again inside the root, so a magic link is never followed either."""
    root_dev = os.fstat(root_fd).st_dev
    stack = [os.dup(root_fd)]  # the directories from the root down to where we are
    todo = _parts(path)
    links = 0
    try:
        if not todo:
            return os.open(".", flags & ~os.O_CREAT, mode, dir_fd=root_fd)
        while todo:
            part = todo.pop(0)
            cur = stack[-1]
            if part == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            last = not todo
            if last and not flags & os.O_PATH:
                try:
                    fd = os.open(part, flags | os.O_NOFOLLOW, mode, dir_fd=cur)
                except OSError as e:
                    if e.errno != errno.ELOOP or flags & os.O_NOFOLLOW:
                        raise
                    fd = -1  # a symlink in the last place: follow it, inside the root
                if fd >= 0:
                    if no_xdev and os.fstat(fd).st_dev != root_dev:
                        os.close(fd)
                        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), path)
                    return fd
            else:
                fd = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=cur)
            st = os.fstat(fd) if fd >= 0 else None
            if st is None or stat.S_ISLNK(st.st_mode):
                if last and st is not None and flags & os.O_NOFOLLOW:
                    return fd  # O_PATH|O_NOFOLLOW: the link itself, as openat2 gives it
                if fd >= 0:
                    os.close(fd)
                links += 1
                if links > MAXSYMLINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                target = os.readlink(part, dir_fd=cur)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                todo = _parts(target) + todo
                continue
            if no_xdev and st.st_dev != root_dev:
                os.close(fd)
                raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), path)
            if last:
                if flags & os.O_DIRECTORY and not stat.S_ISDIR(st.st_mode):
                    os.close(fd)
                    raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
                return fd
            if not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
            stack.append(fd)
        # the path ended in ".." (or a link to a directory): where we stand now
        return os.open(".", (flags | os.O_DIRECTORY) & ~os.O_CREAT, dir_fd=stack[-1])
    finally:
        for fd in stack:
            os.close(fd)


# --- creating, one component at a time ---------------------------------------------------------


def _existing_prefix(root_fd: int, parts: list[str], no_xdev: bool, why: str) -> tuple[int, int]:
    """(fd of the longest prefix of `parts` that exists as a directory, how many parts it took).
    Longest first: the whole path is there in the common case, one lookup."""
    for n in range(len(parts), -1, -1):
        try:
            return open_in(root_fd, "/".join(parts[:n]) or "/", os.O_PATH | os.O_DIRECTORY,
                           no_xdev=no_xdev, why=why), n
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise ResolveError("/" + "/".join(parts[:n]),
                                   f"cannot be used as a directory ({e.strerror})",
                                   e.errno or 0) from None
    raise ResolveError("/", "the root is gone")  # "/" always opens: not reached


def mkdirs(root: int | str, path: str, mode: int = 0o755, *, no_xdev: bool = False,
           follow_dangling: bool = False, why: str = "") -> int:
    """An O_PATH fd on directory `path` inside the root, each missing component created with
    mkdirat(parent_fd, name) and opened with O_NOFOLLOW|O_DIRECTORY (rule 3): a symlink
    swapped in while we create makes this fail, never redirects it (CVE-2024-45310).

    A dangling symlink on the way is an error, as in runc's MkdirAllInRoot: its target is not
    made. follow_dangling=True makes it instead, *inside the root*, as Docker's MkdirAll under
    FollowSymlinkInScope does for COPY and WORKDIR and runtimes always did for an image's
    `/dev -> /somewhere-missing`: the link is read by fd and the rewritten path made again
    with these same rules, so nothing is created outside the root, nor by a path string."""
    if not follow_dangling:
        return _mkdirs(root, path, mode, no_xdev, why)
    for _ in range(MAXSYMLINKS):
        try:
            return _mkdirs(root, path, mode, no_xdev, why)
        except ResolveError:
            nxt = _through_dangling(root, path)
            if nxt is None:
                raise
            path = nxt
    raise ResolveError(path, "too many levels of symbolic links", errno.ELOOP)


def _through_dangling(root: int | str, path: str) -> str | None:
    """`path` with its first dangling symlink replaced by the link's target (resolved inside
    the root again by the next lookup), or None when no dangling symlink is in the way. A link
    whose lookup fails otherwise (a loop, a /proc magic link: ELOOP) is not followed."""
    parts = [p for p in path.split("/") if p not in ("", ".")]  # (".." left to the kernel)
    for i in range(1, len(parts) + 1):
        here = "/".join(parts[:i])
        try:
            fd = open_in(root, here, os.O_PATH | os.O_NOFOLLOW)
        except OSError:
            return None
        try:
            if not stat.S_ISLNK(os.fstat(fd).st_mode):
                continue
            try:
                os.close(open_in(root, here, os.O_PATH))
                continue  # not dangling: the lookup follows it
            except FileNotFoundError:
                pass  # dangling
            except OSError:
                return None
            target = os.readlink("", dir_fd=fd)  # the link the fd holds (O_PATH, empty name)
        finally:
            os.close(fd)
        head = "/" if target.startswith("/") else "/" + "/".join(parts[:i - 1])
        return os.path.join(head, target, *parts[i:])
    return None


def _mkdirs(root: int | str, path: str, mode: int, no_xdev: bool, why: str) -> int:
    rfd, mine = _root_fd(root)
    try:
        parts = _parts(path)
        cur, n = _existing_prefix(rfd, parts, no_xdev, why or "find what exists of the path")
        rest = os.path.normpath("/".join(parts[n:])) if parts[n:] else ""
        if rest.startswith(".."):
            os.close(cur)
            raise ResolveError(path, "leads above a directory that is not there yet")
        for part in _parts(rest):
            if trace.enabled:
                trace.step(f'mkdirat({where(cur)}, "{part}", {oct(mode)}) + '
                           f'openat(O_PATH|O_DIRECTORY|O_NOFOLLOW)',
                           why or "create the missing directory relative to its parent's fd: "
                           "never through a symlink (CVE-2024-45310)")
            try:
                try:
                    os.mkdir(part, mode, dir_fd=cur)
                except FileExistsError:
                    pass  # made by someone else meanwhile: fine if it is a directory
                nxt = os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                              dir_fd=cur)
            except OSError as e:
                raise ResolveError(f"{where(cur)}/{part}", "is not a directory (a symlink swapped "
                                   f"in while it was being created?): {e.strerror}",
                                   e.errno or 0) from None
            finally:
                os.close(cur)
            cur = nxt
        return cur
    finally:
        if mine:
            os.close(rfd)


def parent(root: int | str, path: str, mode: int = 0o755, *, no_xdev: bool = False,
           why: str = "") -> tuple[int, str]:
    """(O_PATH fd of path's directory, made if missing; the last component's name), to create,
    replace or remove that entry relative to the fd. The entry itself is not looked up: a
    symlink there is the caller's to see (and replace), never followed."""
    parts = _parts(os.path.normpath("/" + path))
    if not parts:
        raise ResolveError(path, "names the root itself, not an entry in it")
    return mkdirs(root, "/".join(parts[:-1]), mode, no_xdev=no_xdev, why=why), parts[-1]


def create_file(root: int | str, path: str, mode: int = 0o644, *, why: str = "") -> int:
    """An O_PATH fd on the file at `path` (a bind-mount target), made empty if nothing is there
    (openat(O_CREAT|O_EXCL|O_NOFOLLOW) relative to its directory's fd). A symlink in the last
    place is refused, never followed; so is a directory."""
    dfd, name = parent(root, path, why=why)
    try:
        for _ in range(3):  # another look if someone else made it between the two calls
            try:
                pfd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
            except FileNotFoundError:
                if trace.enabled:
                    trace.step(f'openat({where(dfd)}, "{name}", O_CREAT|O_EXCL|O_NOFOLLOW, '
                               f"{oct(mode)})", why or "an empty file to mount on, made "
                               "relative to its directory's fd")
                try:
                    os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                                     os.O_CLOEXEC, mode, dir_fd=dfd))
                except FileExistsError:
                    pass
                continue
            kind = os.fstat(pfd).st_mode
            if stat.S_ISLNK(kind) or stat.S_ISDIR(kind):
                os.close(pfd)
                what = "a symlink: refusing to follow it" if stat.S_ISLNK(kind) else \
                    "a directory, where a file is needed"
                raise ResolveError(path, f"is {what}",
                                   errno.ELOOP if stat.S_ISLNK(kind) else errno.EISDIR)
            return pfd
        raise ResolveError(path, "keeps changing while it is being created")
    finally:
        os.close(dfd)


def is_inside(fd: int, root_real: str) -> bool:
    """Whether an open object is at or under `root_real` (a real path), seen from here."""
    real = where(fd)
    return real == root_real or real.startswith(root_real.rstrip("/") + "/")


# --- reading a tree, by fds --------------------------------------------------------------------


def open_entry(dir_fd: int, name: str, st: os.stat_result | None = None,
               flags: int = os.O_RDONLY) -> int:
    """Open entry `name` of an open directory without following a symlink there; with `st`
    (its lstat from walk), also check it is still that very object (same device and inode):
    an entry swapped between the listing and the open is an error, not another file read."""
    fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
    if st is not None:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            os.close(fd)
            raise ResolveError(f"{where(dir_fd)}/{name}", "was replaced while it was being read",
                               errno.ESTALE)
    return fd


def walk(top_fd: int, rel: str = "") -> Iterator[tuple[str, int, str, os.stat_result]]:
    """(path relative to top, its directory's fd, its name, its lstat) for every entry under
    the open directory `top_fd`, names sorted, each directory before what it holds. Each
    directory is opened relative to its parent's fd with O_NOFOLLOW|O_DIRECTORY and checked to
    be the one listed, so a symlink swapped in for it mid-walk is an error, never a way out.
    The directory fd is valid while the caller handles that entry."""
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=top_fd)
    try:
        for name in sorted(os.listdir(fd)):
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue  # gone since the listing
            path = f"{rel}/{name}" if rel else name
            yield path, fd, name, st
            if stat.S_ISDIR(st.st_mode):
                try:
                    sub = open_entry(fd, name, st, os.O_RDONLY | os.O_DIRECTORY)
                except OSError as e:
                    raise ResolveError(f"{where(fd)}/{name}", "is no longer a directory (swapped "
                                       f"while it was being read?): {e.strerror}",
                                       e.errno or 0) from None
                try:
                    yield from walk(sub, path)
                finally:
                    os.close(sub)
    finally:
        os.close(fd)
