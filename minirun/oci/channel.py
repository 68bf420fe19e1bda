"""Every message between the runtime and the processes it forks, declared here once.

`create` forks a child, which forks the init (init.py); `exec` forks an exec-child, which
forks the process that execs (execute.py). They talk to the runtime over one Channel: two
pipes carrying one short text line per message, `TAG` or `TAG ARGUMENT` (a newline inside an
argument becomes a space). The init and the exec'd process inherit the child's pipe ends, so
they talk to the runtime directly; their lines and the child's can arrive in either order.
Pipes, not sockets: they cost nothing to import and vanish with their processes. A closed
pipe (EOF, `recv()` is None) tells each side the other is gone; it is the only "no".

    tag       sent by → to            when                                     argument
    SETUP     child → runtime         create, after unshare(CLONE_NEWUSER):    -
                                      "write my uid/gid maps" (the runtime
                                      holds CAP_SETUID in the parent user
                                      namespace); waits for OK
    PID       child → runtime         create: the init is forked;              the PID, decimal,
              exec-child → runtime    exec: the process is forked              in the runtime's
                                                                               PID namespace
    HOOKS     init → runtime          create, mounts made, before pivot_root,  -
                                      when prestart or createRuntime hooks
                                      exist: the runtime runs them in its own
                                      namespaces; waits for OK
    SECCOMP   init or exec'd          a filter with SCMP_ACT_NOTIFY rules is   the listener's fd
              process → runtime       loaded: the runtime takes the listener   number in the
                                      fd (pidfd_getfd) and passes it to        sender's fd table
                                      listenerPath; waits for OK
    READY     init → runtime          create: set-up done, about to block on   -
                                      exec.fifo; the init closes its ends
    ERROR     any stage → runtime     set-up failed; the sender exits 1        one line of text
    NOEXEC    init or exec'd          process.args cannot be executed          "CODE TEXT": 127 not
              process → runtime                                                found, 126 not
                                                                               executable
    OK        runtime → child/init    the answer to SETUP, HOOKS and SECCOMP   -
                                      (a failure closes the pipe instead)

`exec` has no READY: every pipe end is close-on-exec, so the runtime's EOF says the process
has exec'd. One more message is not on the channel: at `start`, once `start` opens exec.fifo
for reading, the init writes START_BYTE into it and keeps its close-on-exec write end, so
`start` reads EOF when the program runs (init.wait_for_start, container.start).
"""

from __future__ import annotations

import os
import select

# child, exec-child, init, exec'd process -> runtime
SETUP = "setup"
PID = "pid"
HOOKS = "hooks"
SECCOMP = "seccomp"
READY = "ready"
ERROR = "error"
NOEXEC = "noexec"
# runtime -> child, init, exec'd process
OK = "ok"
# init -> `start`, through exec.fifo
START_BYTE = b"0"
# the longest line recv() accepts: a longer one (or one without its newline) is treated as
# EOF, so a peer cannot make the runtime buffer without bound (runc's CVE-2021-43784 lesson)
MAX_LINE = 64 * 1024
# /proc/sys/kernel/pid_max can be at most 2**22 (PID_MAX_LIMIT on 64-bit)
_PID_LIMIT = 1 << 22


class Channel:
    def __init__(self) -> None:
        self.c2p_r, self.c2p_w = os.pipe()
        self.p2c_r, self.p2c_w = os.pipe()
        self._buf = b""
        self._overflowed = False
        self.rfd = self.wfd = -1

    def as_parent(self) -> "Channel":
        os.close(self.c2p_w)
        os.close(self.p2c_r)
        self.rfd, self.wfd = self.c2p_r, self.p2c_w
        return self

    def as_child(self) -> "Channel":
        os.close(self.c2p_r)
        os.close(self.p2c_w)
        self.rfd, self.wfd = self.p2c_r, self.c2p_w
        return self

    def send(self, tag: str, arg: object = None) -> None:
        """One message: `TAG` or `TAG ARG` (str(arg), its newlines made spaces)."""
        line = tag if arg is None else f"{tag} {arg}"
        try:
            os.write(self.wfd, (line.replace("\n", " ") + "\n").encode())
        except OSError:
            pass  # the other side is gone; its EOF tells it the rest

    def wait(self, timeout: float) -> bool:
        """True when a line (or EOF) can be read now or arrives within timeout seconds."""
        if b"\n" in self._buf:
            return True
        return bool(select.select([self.rfd], [], [], timeout)[0])

    def recv(self) -> str | None:
        """The next line, or None at EOF (or after a line longer than MAX_LINE, for good)."""
        while b"\n" not in self._buf:
            if self._overflowed or len(self._buf) > MAX_LINE:
                self._overflowed, self._buf = True, b""
                return None
            try:
                chunk = os.read(self.rfd, 4096)
            except InterruptedError:
                continue
            if not chunk:
                return None
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        if self._overflowed or len(line) > MAX_LINE:
            self._overflowed, self._buf = True, b""
            return None
        return line.decode(errors="replace")

    def recv_message(self) -> tuple[str, str] | None:
        """The next message as (tag, argument; "" if none), or None at EOF."""
        line = self.recv()
        if line is None:
            return None
        tag, _, arg = line.partition(" ")
        return tag, arg

    def recv_pid(self) -> tuple[int, str | None]:
        """Wait for PID: (the PID, None), or (0, what came instead: a line, or None at EOF).
        The init (or the exec'd process) can outrun its parent's PID on the channel."""
        line = self.recv()
        if line is None or not line.startswith(PID + " "):
            return 0, line
        arg = line[len(PID) + 1:]
        if not (arg.isascii() and arg.isdigit() and len(arg) <= 7 and 0 < int(arg) < _PID_LIMIT):
            return 0, line[:80]
        return int(arg), None

    def close(self) -> None:
        for fd in (self.rfd, self.wfd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.rfd = self.wfd = -1
