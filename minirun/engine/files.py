"""A container's files from the host: `cp`, `diff` and `export`, without leaving its root.

Where a container's files are, seen from the host:
  * running: /proc/<pid>/root, the init's root, with the container's own mounts (volumes,
    tmpfs) on it; stopped: containers/<id>/rootfs, the overlay mounted for the occasion.
  * its changes: containers/<id>/upper, overlay's writable layer (diff reads only that).

Paths inside are resolved with secure_join: each symlink is read and followed *as if the
container's root were /*, so an image's `/etc -> /host` or a `..` chain cannot walk out to the
host (the class of bug behind CVE-2018-15664 in `docker cp`). `/proc/<pid>/root/etc/x` must
never be opened directly: the kernel would resolve an absolute symlink in it against *our* root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
import tarfile
from typing import BinaryIO, Iterator

from ..errors import InvalidArgument, MinirunError, NotFound
from ..image import overlay
from ..kernel.rootfs import secure_join
from .userns import host_root


class FilesError(MinirunError):
    exit_code = 1


class NoSuchPath(FilesError, NotFound):
    """A path that is not there, in the container or on the host (errors.NotFound)."""


class BadCopy(FilesError, InvalidArgument):
    """A copy that cannot be done as asked: a tar entry pointing out, a destination that is not
    a directory (errors.InvalidArgument)."""


@contextlib.contextmanager
def root_of(engine, c, live: bool = True) -> Iterator[str]:
    """The container's / as a host path, for as long as the caller needs it. live=False: its
    own filesystem only (the overlay), without what is mounted on it (proc, volumes)."""
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


def _numeric(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # The container's users are not the host's: keep numbers, drop the host's names for them.
    info.uname = info.gname = ""
    return info


def export(engine, c, out) -> None:
    """The container's filesystem as a flat tar (Docker's `export`: its rootfs, not its
    volumes or /proc), written to out."""
    with root_of(engine, c, live=False) as root:
        base = secure_join(root, "/")
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(os.listdir(base)):
                tar.add(os.path.join(base, name), arcname=name, filter=_numeric)


def _existing(root: str, c, src: str) -> str:
    path = secure_join(root, src)
    if not os.path.lexists(path):
        raise NoSuchPath(f"Could not find the file {src} in container {c.name}")
    return path


def stat_path(engine, c, src: str) -> dict:
    """Docker's PathStat of a path in the container (see _path_stat)."""
    with root_of(engine, c) as root:
        return _path_stat(_existing(root, c, src), src)


def _path_stat(path: str, src: str) -> dict:
    """{"name", "size", "mode", "mtime", "linkTarget"}, mode as Go's os.FileMode bits: the
    permission bits, plus 1<<31 for a directory, 1<<27 for a symlink."""
    st = os.lstat(path)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        mode |= 1 << 31
    elif stat.S_ISLNK(st.st_mode):
        mode |= 1 << 27
    return {"name": os.path.basename(os.path.normpath(src)) or "/", "size": st.st_size,
            "mode": mode, "mtime": st.st_mtime,
            "linkTarget": os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""}


def archive_out(engine, c, src: str, out: BinaryIO) -> dict:
    """A file or a tree of the container as a tar stream (`cp CONTAINER:SRC -`), written to
    out: its entry named after SRC's last part, owners as numbers. Returns SRC's PathStat."""
    with root_of(engine, c) as root:
        path = _existing(root, c, src)
        st = _path_stat(path, src)
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            tar.add(path, arcname=os.path.basename(os.path.normpath(src)) or ".",
                    filter=_numeric)
        return st


def copy_out(engine, c, src: str, dest: str, archive: bool = False) -> None:
    """`cp CONTAINER:SRC DEST`: a file or a tree from the container to the host."""
    if dest == "-":
        archive_out(engine, c, src, sys.stdout.buffer)
        return
    with root_of(engine, c) as root:
        path = _existing(root, c, src)
        target = dest
        if os.path.isdir(dest) and not src.endswith("/."):
            target = os.path.join(dest, os.path.basename(os.path.normpath(src)))
        if os.path.isdir(path) and not os.path.islink(path):
            if src.endswith("/.") and os.path.isdir(dest):
                for name in os.listdir(path):
                    _copy_any(os.path.join(path, name), os.path.join(dest, name))
            else:
                shutil.copytree(path, target, symlinks=True, dirs_exist_ok=True)
        else:
            _copy_any(path, target)


def copy_in(engine, c, src: str, dest: str, archive: bool = False) -> None:
    """`cp SRC CONTAINER:DEST`: a host file or tree into the container (owned by its root,
    which is a shifted uid in a user namespace, unless -a keeps the source's owners, as Docker
    does)."""
    if src == "-":
        archive_in(engine, c, dest, sys.stdin.buffer)
        return
    if not os.path.lexists(src):
        raise NoSuchPath(f"lstat {src}: no such file or directory")
    uid, gid = host_root(c.host_config.get("IDMappings"))  # "root" in a user namespace
    with root_of(engine, c) as root:
        target = secure_join(root, dest)
        if os.path.isdir(target) and not dest.endswith("/."):
            target = os.path.join(target, os.path.basename(os.path.normpath(src)))
            target = os.path.join(secure_join(root, os.path.dirname(_rel(root, target))),
                                  os.path.basename(target))
        parent = os.path.dirname(target)
        if not os.path.isdir(parent):
            raise NoSuchPath(f"cp {src} {c.name}:{dest}: no such directory {os.path.dirname(dest)}"
                             " in the container")
        if os.path.isdir(src) and not os.path.islink(src):
            shutil.copytree(src, target, symlinks=True, dirs_exist_ok=True)
            if not archive:
                for dirpath, dirnames, filenames in os.walk(target):
                    for n in dirnames + filenames:
                        os.lchown(os.path.join(dirpath, n), uid, gid)
                os.lchown(target, uid, gid)
        else:
            if os.path.islink(target):
                os.unlink(target)  # replace the link itself, never write through it
            _copy_any(src, target)
            if not archive:
                os.lchown(target, uid, gid)


def archive_in(engine, c, dest: str, stream: BinaryIO) -> None:
    """A tar stream (`cp - CONTAINER:DEST`) unpacked into directory DEST of the container,
    every entry kept inside it (entries are written as the tar has them)."""
    with root_of(engine, c) as root:
        target = secure_join(root, dest)
        if not os.path.isdir(target):
            raise BadCopy(f"cp - {c.name}:{dest}: the destination must be a directory")
        _extract(stream, target, root)


def _rel(root: str, path: str) -> str:
    return "/" + os.path.relpath(path, root)


def _copy_any(src: str, dst: str) -> None:
    if os.path.islink(src):
        if os.path.lexists(dst):
            os.unlink(dst)
        os.symlink(os.readlink(src), dst)
    else:
        shutil.copy2(src, dst, follow_symlinks=False)


def _extract(stream, target: str, root: str) -> None:
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        for m in tar:
            name = os.path.normpath(m.name)
            if name.startswith("..") or os.path.isabs(name):
                raise BadCopy(f"cp: refusing tar entry {m.name!r}: it points outside the "
                                 "destination")
            dest = os.path.join(secure_join(root, os.path.dirname(_rel(root, os.path.join(
                target, name)))), os.path.basename(name))
            if m.isdir():
                os.makedirs(dest, exist_ok=True)
            elif m.issym():
                if os.path.lexists(dest):
                    os.unlink(dest)
                os.symlink(m.linkname, dest)
            elif m.isfile():
                if os.path.islink(dest):
                    os.unlink(dest)
                with open(dest, "wb") as f:
                    shutil.copyfileobj(tar.extractfile(m), f)
                os.chmod(dest, m.mode & 0o7777)


def diff(engine, c) -> list[tuple[str, str]]:
    """`docker diff`: (kind, path) for what the writable layer holds: A added, C changed,
    D deleted. A whiteout (a 0:0 character device) is a deletion; anything else in upper is
    a change if some image layer has that path, an addition if none has."""
    upper = os.path.join(engine.cdir(c.id), "upper")
    # The runtime's mount points for the container's own /etc files are not the user's changes
    # (Docker leaves them out too).
    hidden = {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}
    lowers = [os.path.join(engine.root, "image", "layers", n) for n in c.layers]
    out: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(upper):
        rel_dir = "/" + os.path.relpath(dirpath, upper) if dirpath != upper else "/"
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.join(rel_dir, name)
            if rel in hidden:
                continue
            st = os.lstat(full)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                out.append(("D", rel))
                continue
            in_lower = any(os.path.lexists(os.path.join(lo, rel.lstrip("/"))) for lo in lowers)
            out.append(("C" if in_lower else "A", rel))
    return sorted(out, key=lambda x: x[1])
