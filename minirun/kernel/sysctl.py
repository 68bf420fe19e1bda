"""sysctls: kernel settings under /proc/sys, some owned by a namespace, most by the host.

A sysctl a namespace owns can be set for one container without touching the host: the IPC
namespace's System V and POSIX message-queue limits, every net.* setting of the network
namespace, the UTS namespace's host and domain names. Every other one (vm.*, kernel.pid_max,
fs.file-max ...) is one value for the whole machine, so runc and Docker refuse them.
"""

from __future__ import annotations

import os

from ..errors import MinirunError
from . import libc

# The IPC namespace's sysctls (runc's list, from ipc_namespaces(7) and mq_overview(7)).
IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
               "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")


def namespace_of(key: str) -> str | None:
    """The namespace that owns sysctl `key` ("ipc", "network", "uts"), or None: the host's."""
    if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
        return "ipc"
    if key.startswith("net."):
        return "network"
    if key in ("kernel.hostname", "kernel.domainname"):
        return "uts"
    return None


def write(key: str, value: str) -> None:
    """Set `key` through /proc/sys: run after pivot_root, so that it is the container's own
    /proc (mounted in its PID namespace) and the entry belongs to its namespaces.

    Why by fds: a config mount (or a volume's symlink) over /proc/sys, or over one of its
    files, would redirect a write by path to a file of someone else's choosing -- runc's
    procfs hardening after CVE-2019-19921 and CVE-2025-52881. The directory is looked up from
    /proc's own root with RESOLVE_NO_XDEV (it never leaves that procfs), the entry checked to
    be on it too, and written relative to the directory's fd."""
    from . import resolve  # lazy: spec.load and the engine only check keys (start-up budget)

    rel = "sys/" + key.replace(".", "/")
    where, name = rel.rsplit("/", 1)
    try:
        dfd = resolve.open_in("/proc", where, os.O_PATH | os.O_DIRECTORY, no_xdev=True,
                              why=f"linux.sysctl {key}: its directory, on /proc's own procfs")
    except OSError as e:
        raise MinirunError(f"linux.sysctl {key}: /proc/{where}: {e.strerror}") from None
    try:
        try:
            os.close(resolve.open_in(dfd, name, os.O_PATH | os.O_NOFOLLOW, no_xdev=True,
                                     why=f"linux.sysctl {key}: no mount over the entry"))
        except OSError as e:
            raise MinirunError(f"linux.sysctl {key}: /proc/{rel}: {e.strerror}") from None
        libc.write_file(name, value, f"linux.sysctl {key}", dir_fd=dfd)
    finally:
        os.close(dfd)
