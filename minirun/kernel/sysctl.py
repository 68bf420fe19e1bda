"""sysctls: kernel settings under /proc/sys, some owned by a namespace, most by the host.

A sysctl a namespace owns can be set for one container without touching the host: the IPC
namespace's System V and POSIX message-queue limits, every net.* setting of the network
namespace, the UTS namespace's host and domain names. Every other one (vm.*, kernel.pid_max,
fs.file-max ...) is one value for the whole machine, so runc and Docker refuse them.
"""

from __future__ import annotations

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
    /proc (mounted in its PID namespace) and the entry belongs to its namespaces."""
    libc.write_file("/proc/sys/" + key.replace(".", "/"), value, f"linux.sysctl {key}")
