"""File locks: flock(2) on a lock file or a directory, held for the length of a `with` block.

Used wherever two processes may change the same records: the container store and each
container's record (engine/records.py), a runtime container's state directory (oci/state.py),
network records and their address allocations (network/networks.py), the build cache and the
image store. flock belongs to the open file description, so two threads of one process that
each take the lock exclude each other too, and a process that dies releases what it held.

A class, not contextlib.contextmanager: minirun-oci's verbs take a lock on their start path,
and contextlib is kept out of it (tests/unit/test_startup_budget.py).
"""

from __future__ import annotations

import fcntl
import os


class FileLock:
    """`with FileLock(path):` holds an exclusive flock on `path` (created if missing).

    shared     a shared lock (readers together, writers alone)
    directory  `path` is a directory, locked as it is (nothing is created)
    remove     unlink the lock file before releasing it (lock files that must not pile up);
               a waiter that then gets the lock on the unlinked file notices and tries again
    mode       permissions of a lock file made now
    """

    def __init__(self, path: str, *, shared: bool = False, directory: bool = False,
                 remove: bool = False, mode: int = 0o600) -> None:
        self.path = path
        self.how = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        self.directory = directory
        self.remove = remove
        self.mode = mode
        self.fd = -1

    def __enter__(self) -> int:
        """Wait for the lock; returns the file descriptor that holds it."""
        while True:
            if self.directory:
                fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            else:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, self.mode)
            try:
                fcntl.flock(fd, self.how)
            except BaseException:
                os.close(fd)
                raise
            # A lock file that its holder (or a cleaner) removes may have been unlinked while
            # we waited: a lock on a file nobody else can open any more excludes nobody.
            if same_file(fd, self.path):
                self.fd = fd
                return fd
            os.close(fd)

    def __exit__(self, *exc: object) -> None:
        if self.remove:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        os.close(self.fd)
        self.fd = -1


def same_file(fd: int, path: str) -> bool:
    """Whether `path` still names the file open as `fd`."""
    try:
        a, b = os.fstat(fd), os.lstat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
