"""OCI hooks: programs the runtime runs at fixed points of the lifecycle.

  prestart, createRuntime  runtime namespace, after the namespaces exist, before pivot_root
  createContainer          container namespaces, before pivot_root (run by the init)
  startContainer           in the container, after `start`, just before the user's program
  poststart                runtime namespace, after the program started (failure: a warning)
  poststop                 runtime namespace, at delete (failure: a warning)

Each hook gets the container's state JSON on stdin; it may exit without reading it (so EPIPE is
ignored) and is killed after `timeout` seconds.
"""

from __future__ import annotations

import _signal  # not `signal` (it imports enum)
import os
import sys
import time

from .. import trace
from ..errors import MinirunError
from .spec import Hook


class HookError(MinirunError):
    pass


def run(hooks: list[Hook], phase: str, state_json: str, warn_only: bool = False) -> None:
    """Run one phase's hooks in order; the first failure raises (or only warns)."""
    for i, h in enumerate(hooks):
        if trace.enabled:
            trace.step(f"fork+execve({h.path!r}, {h.args or [h.path]})",
                       f"{phase} hook #{i}: state JSON on its stdin")
        try:
            _run_one(h, state_json)
        except HookError as e:
            msg = f"{phase} hook #{i} ({h.path}): {e}"
            if warn_only:
                sys.stderr.write(f"minirun-oci: warning: {msg}\n")
                continue
            raise HookError(msg) from None


def _run_one(h: Hook, state_json: str) -> None:
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the hook
        try:
            os.close(wfd)
            os.dup2(rfd, 0)
            # Python ignores SIGPIPE and SIGXFSZ, and ignored signals survive execve().
            for sig in (_signal.SIGPIPE, _signal.SIGXFSZ):
                _signal.signal(sig, _signal.SIG_DFL)
            env = dict(e.split("=", 1) for e in h.env)
            os.execve(h.path, h.args or [h.path], env)
        except OSError as e:
            os.write(2, f"minirun-oci: hook {h.path}: {e.strerror}\n".encode())
        except BaseException as e:  # e.g. an env entry without '=': never return into the runtime
            os.write(2, f"minirun-oci: hook {h.path}: {e}\n".encode())
        os._exit(127)
    os.close(rfd)
    # Written in pieces between the checks below: a state bigger than the pipe buffer, to a
    # hook that does not read it, must not keep us blocked in write() past the timeout.
    data = memoryview(state_json.encode())
    os.set_blocking(wfd, False)
    deadline = None if h.timeout is None else time.monotonic() + h.timeout
    try:
        while True:
            if data:
                try:
                    data = data[os.write(wfd, data):]
                except BlockingIOError:
                    pass
                except OSError:
                    data = data[:0]  # EPIPE: the hook need not read its stdin
                if not data:
                    os.close(wfd)
                    wfd = -1
            wpid, status = os.waitpid(pid, os.WNOHANG if deadline or data else 0)
            if wpid == pid:
                break
            if deadline and time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                raise HookError(f"timed out after {h.timeout}s")
            time.sleep(0.005)
    finally:
        if wfd >= 0:
            os.close(wfd)
    if os.WIFSIGNALED(status):
        raise HookError(f"killed by signal {os.WTERMSIG(status)}")
    code = os.WEXITSTATUS(status)
    if code:
        raise HookError(f"exited with status {code}")
