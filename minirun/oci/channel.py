"""A line protocol over two pipes between the runtime and the processes it forks.

The runtime (parent) and the container's setup stages talk in short text lines:
    child -> parent:  "setup" | "pid N" | "hooks" | "ready" | "error MESSAGE"
    parent -> child:  "ok" | "fail"
Pipes (not sockets) because they cost nothing to import and vanish with their processes: a
closed pipe (EOF) tells each side the other is gone.
"""

from __future__ import annotations

import os


class Channel:
    def __init__(self) -> None:
        self.c2p_r, self.c2p_w = os.pipe()
        self.p2c_r, self.p2c_w = os.pipe()
        self._buf = b""
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

    def send(self, line: str) -> None:
        try:
            os.write(self.wfd, (line.replace("\n", " ") + "\n").encode())
        except OSError:
            pass  # the other side is gone; its EOF tells it the rest

    def wait(self, timeout: float) -> bool:
        """True when a line (or EOF) can be read now or arrives within timeout seconds."""
        if b"\n" in self._buf:
            return True
        import select

        return bool(select.select([self.rfd], [], [], timeout)[0])

    def recv(self) -> str | None:
        """The next line, or None at EOF."""
        while b"\n" not in self._buf:
            try:
                chunk = os.read(self.rfd, 4096)
            except InterruptedError:
                continue
            if not chunk:
                return None
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode(errors="replace")

    def close(self) -> None:
        for fd in (self.rfd, self.wfd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.rfd = self.wfd = -1
