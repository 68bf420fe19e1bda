"""Atomic file writes: a reader sees a file's old content or its new one, never half of it.

The one file writer of minirun (crun's utils.c is the model): state.json, container records,
image records, auth.json, network records, a container's /etc files and config.json are all
replaced through `write_atomic`, or `AtomicFile` when the content is streamed. Each write goes
to a temporary file (beside the target, or where the caller keeps its temporary files), is
fsynced if the caller asks, and is renamed over the target; rename(2) is atomic within a
filesystem. An error names the target file, not the temporary one, and leaves no temporary
file behind.

Only `os` and `itertools` are imported: minirun-oci's verbs write state.json on their start
path (tests/unit/test_startup_budget.py).
"""

from __future__ import annotations

import itertools
import os

# Unique temporary names within a process (threads included): pid + a counter. next() on an
# itertools.count is atomic under the GIL, and a crash's leftovers carry another pid.
_sequence = itertools.count()


def temp_path(path: str) -> str:
    """A temporary name beside `path`, unique to this process and call."""
    return f"{path}.tmp{os.getpid()}.{next(_sequence)}"


def fsync_dir(path: str) -> None:
    """fsync a directory, so that a rename into it survives a crash (rename is durable only
    once its directory is)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def naming(err: OSError, path: str) -> OSError:
    """The same error (same type and errno) with `path` as its file name, so that a message
    says which file could not be written rather than which temporary name."""
    if err.errno is None:
        return type(err)(f"{path}: {err}")
    return type(err)(err.errno, err.strerror, path)


class AtomicFile:
    """`with AtomicFile(path) as f: f.write(data)`: `path` is replaced by what was written when
    the block ends normally; after an exception the temporary file goes and `path` is as it was.

    mode       permissions of the new file (subject to the umask, as open(2) is), unless `tmp`
               is given: a file the caller made is set to exactly `mode`
    fsync      flush the data to disk before the rename (content that must survive a crash)
    fsync_dir  also fsync the directory after the rename (the new name must survive too)
    tmp        an existing temporary file to write instead of one beside `path` (the image
               store keeps them in its tmp/, where its cleaner finds what a crash left)
    """

    def __init__(self, path: str, *, mode: int = 0o600, fsync: bool = False,
                 fsync_dir: bool = False, tmp: str | None = None) -> None:
        self.path = path
        self.mode = mode
        self.fsync = fsync
        self.fsync_dir = fsync_dir
        self.given_tmp = tmp is not None
        self.tmp = tmp if tmp is not None else temp_path(path)
        self.file = None

    def __enter__(self):  # -> BinaryIO (no typing at run time: the start-up budget)
        try:
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, self.mode)
        except OSError as e:
            raise naming(e, self.path) from None
        if self.given_tmp:
            os.fchmod(fd, self.mode)
        self.file = os.fdopen(fd, "wb")
        return self.file

    def __exit__(self, typ: object, exc: BaseException | None, tb: object) -> bool:
        try:
            if exc is None:
                self.file.flush()
                if self.fsync:
                    os.fsync(self.file.fileno())
            self.file.close()
            if exc is None:
                os.rename(self.tmp, self.path)
                if self.fsync_dir:
                    fsync_dir(os.path.dirname(self.path) or ".")
                return False
        except OSError as e:
            self._discard()
            raise naming(e, self.path) from None
        self._discard()
        return False  # the block's own exception goes on as it is

    def _discard(self) -> None:
        try:
            os.unlink(self.tmp)
        except OSError:
            pass  # already gone (renamed, or never made): nothing to clean


def write_atomic(path: str, data: str | bytes, *, mode: int = 0o600, fsync: bool = False,
                 fsync_dir: bool = False, tmp: str | None = None) -> None:
    """Replace the file `path` with `data` (text is written as UTF-8); see AtomicFile."""
    with AtomicFile(path, mode=mode, fsync=fsync, fsync_dir=fsync_dir, tmp=tmp) as f:
        f.write(data.encode() if isinstance(data, str) else data)
