"""SCMP_ACT_NOTIFY: hand the container's seccomp listener fd to a supervisor (runtime-spec).

A filter with NOTIFY rules is loaded with SECCOMP_FILTER_FLAG_NEW_LISTENER: the kernel returns
a file descriptor on which a supervisor receives each notified call (who made it, which
syscall, which arguments) and answers it (an errno, a fake result, or "let it run"). The
process that loaded the filter is inside the container; the supervisor is on the host, at
linux.seccomp.listenerPath. So the runtime takes a duplicate of the fd with pidfd_getfd(2) and
sends it over that unix socket with SCM_RIGHTS, together with the container process state:

    {"ociVersion": ..., "fds": ["seccompFd"], "pid": HOST_PID, "metadata": listenerMetadata,
     "state": {the container's state: id, status, pid, bundle, annotations}}
"""

from __future__ import annotations

import os

from .. import fastjson
from ..errors import MinirunError
from ..kernel import libc
from .state import OCI_VERSION


def forward(listener_path: str, metadata: str, pid: int, fd_in_pid: int, state: dict) -> None:
    # lazy: only SCMP_ACT_NOTIFY; socket (enum) and array (collections) stay out of every
    # other create and exec (start-up budget)
    import array
    import socket

    fd = libc.pidfd_getfd(pid, fd_in_pid, "SCMP_ACT_NOTIFY: take the seccomp listener fd from "
                          "the container's process, for the supervisor")
    try:
        msg = fastjson.dumps({"ociVersion": OCI_VERSION, "fds": ["seccompFd"], "pid": pid,
                              "metadata": metadata, "state": state}).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(listener_path)
                sock.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                      array.array("i", [fd]).tobytes())])
            except OSError as e:
                raise MinirunError(f"linux.seccomp.listenerPath {listener_path}: {e.strerror} "
                                   "(is the seccomp supervisor listening?)") from None
    finally:
        os.close(fd)
