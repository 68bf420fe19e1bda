"""The build context and Docker's COPY rules: which files a COPY/ADD names, their checksum for
the cache, and where each one lands in the image.

  sources      a path in the context (never out of it: resolved like a rootfs), or a glob
               (`*`, `?`, `[...]`, which never cross a "/"), minus what .dockerignore excludes
  checksum     name, type, mode, owner, size and content of every file -- not the mtime, so a
               `touch` or a fresh `git clone` does not invalidate the cache
  destination  a directory source copies its *contents*; a file goes into DEST/ when DEST ends
               with "/" or is a directory, else it becomes DEST; files are root's unless
               --chown; ADD unpacks local tar archives (plain, gzip, bzip2, xz)
Every write into the image goes through secure_join: an image's symlink cannot send a copied
file out of the rootfs.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import stat


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


def copy_into(src: str, name: str, root: str, dest: str, uid: int, gid: int, mode: int | None,
              extract: bool, single: bool, matcher, src_rel: str) -> None:
    """Docker's COPY rules for one source into the rootfs at `root`:
      * a directory: its *contents* are copied into dest (created if missing);
      * a file: into dest/ when dest ends with "/" or is an existing directory, else as dest;
      * ADD: a local tar archive (plain, gzip, bzip2, xz) is unpacked into dest instead.
    Paths in the rootfs are resolved with secure_join: an image symlink cannot send a file out."""
    from ..kernel.rootfs import secure_join

    def target_dir(path: str) -> str:
        t = secure_join(root, path)
        os.makedirs(t, exist_ok=True)
        return t

    if os.path.isdir(src) and not os.path.islink(src):
        base = target_dir(dest)
        for dirpath, dirnames, filenames in os.walk(src):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, src)
            for d in list(dirnames):
                r = os.path.normpath(os.path.join(src_rel, rel_dir, d))
                if not matcher.could_include_under(r):
                    dirnames.remove(d)  # excluded, and no "!" pattern re-includes below it
            here = base if rel_dir == "." else os.path.join(base, rel_dir)
            if rel_dir != ".":
                _copy_meta_dir(dirpath, here, uid, gid, mode)  # (parents of re-included files too)
            for n in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
                r = os.path.normpath(os.path.join(src_rel, rel_dir, n))
                if matcher.excluded(r):
                    continue
                _copy_file(os.path.join(dirpath, n), os.path.join(here, n), uid, gid, mode)
        return
    if extract and _is_archive(src):
        import tarfile

        base = target_dir(dest)
        with tarfile.open(src) as tar:
            _extract_archive(tar, base, root)
        return
    if dest.endswith("/") or os.path.isdir(secure_join(root, dest)):
        out = os.path.join(target_dir(dest), name)
    else:
        parent = target_dir(os.path.dirname(dest.rstrip("/")) or "/")
        out = os.path.join(parent, os.path.basename(dest.rstrip("/")))
    _copy_file(src, out, uid, gid, mode)


def _copy_meta_dir(src: str, dst: str, uid: int, gid: int, mode: int | None) -> None:
    st = os.lstat(src)
    os.makedirs(dst, exist_ok=True)
    os.chmod(dst, mode if mode is not None else stat.S_IMODE(st.st_mode))
    os.lchown(dst, uid, gid)


def _copy_file(src: str, dst: str, uid: int, gid: int, mode: int | None) -> None:
    if os.path.isdir(dst) and not os.path.islink(dst) and not os.path.isdir(src):
        shutil.rmtree(dst)
    elif os.path.lexists(dst) and not os.path.isdir(dst):
        os.unlink(dst)
    st = os.lstat(src)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISREG(st.st_mode):
        shutil.copyfile(src, dst, follow_symlinks=False)
        os.chmod(dst, mode if mode is not None else stat.S_IMODE(st.st_mode))
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
    else:
        return  # sockets, devices and fifos in a context are not copied
    os.lchown(dst, uid, gid)


def _is_archive(path: str) -> bool:
    import tarfile

    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _extract_archive(tar, base: str, root: str) -> None:
    """ADD's unpacking: entries stay under the destination; links never point the write out."""
    from ..kernel.rootfs import secure_join

    for m in tar:
        name = os.path.normpath(m.name).lstrip("/")
        if name.startswith(".."):
            continue  # nothing may land above the destination
        if name == ".":
            out = base
        else:
            parent_rel = "/" + os.path.relpath(os.path.join(base, os.path.dirname(name)), root)
            parent = secure_join(root, parent_rel)
            os.makedirs(parent, exist_ok=True)
            out = os.path.join(parent, os.path.basename(name))
        if m.isdir():
            os.makedirs(out, exist_ok=True)
            os.chmod(out, m.mode & 0o7777)
        elif m.issym():
            if os.path.lexists(out):
                os.unlink(out)
            os.symlink(m.linkname, out)
        elif m.islnk():
            link = os.path.join(base, os.path.normpath(m.linkname).lstrip("/"))
            if os.path.lexists(out):
                os.unlink(out)
            os.link(link, out)
        elif m.isfile():
            if os.path.lexists(out):
                os.unlink(out)
            with tar.extractfile(m) as f, open(out, "wb") as o:
                shutil.copyfileobj(f, o)
            os.chmod(out, m.mode & 0o7777)
        else:
            continue
        try:
            os.lchown(out, m.uid, m.gid)
        except OSError:
            pass
