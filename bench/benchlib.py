"""What the benchmarks share: a timed call with a blocking wait, the numbers, SIGTERM.

    Caller(scratch).run(argv, env)  -> (exit status, wall ms, stdout, stderr); a failure, or a
                                       call past CALL_TIMEOUT, is a BenchError (a peer's fast
                                       failure is not a time)
    stats(samples)                  -> median, p10, p90, n
    error_line(text)                -> the line of a tool's output that says why it failed
    Terminated / on_sigterm         -> SIGTERM raised like KeyboardInterrupt: cleanups run

The bench scripts import it as a sibling module (they run as `python bench/NAME.py`, so their
directory is on sys.path). Standard library only.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import threading
import time
from pathlib import Path

CALL_TIMEOUT = 120  # seconds; a call that takes longer is killed and counts as a failure


class BenchError(Exception):
    pass


class Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so that the cleanup runs."""


def on_sigterm(*_) -> None:
    raise Terminated


def error_line(text: str) -> str:
    """The line that says why: `minirun: ...`, `docker: ...`, `Error: ...`, else the last one
    that mentions an error."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    said = [ln for ln in lines if re.match(r"(minirun:|docker:|Error|ERROR:|error)", ln)]
    errs = [ln for ln in lines if re.search(r"error|failed|fatal|cannot", ln, re.I)]
    return (said or errs or lines or [""])[-1][:300]


class Caller:
    """Runs commands with output to files (a detached container may inherit them: a pipe would
    not reach EOF), a blocking wait and a watchdog timer (Popen.wait(timeout) polls, which
    rounds every time up to its polling step)."""

    def __init__(self, scratch: Path, timeout: float = CALL_TIMEOUT) -> None:
        self.out_path, self.err_path = scratch / "call.out", scratch / "call.err"
        self.timeout = timeout

    def run(self, argv: list[str], env: dict, cwd: Path | None = None,
            check: bool = True) -> tuple[int, float, str, str]:
        """(exit status, wall time in ms, stdout, stderr)."""
        with open(self.out_path, "w+b") as out, open(self.err_path, "w+b") as err:
            t = time.perf_counter_ns()
            p = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=err)
            watchdog = threading.Timer(self.timeout, p.kill)
            watchdog.daemon = True
            watchdog.start()
            try:
                rc = p.wait()
                ms = (time.perf_counter_ns() - t) / 1e6
                timed_out = not watchdog.is_alive()
            finally:  # interrupted: stop the timer, and the call (SIGTERM reaches only us)
                watchdog.cancel()
                if p.poll() is None:
                    p.kill()
                    p.wait()
            out.seek(0)
            err.seek(0)
            so, se = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        cmd = " ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv[:6]))
        if timed_out:
            raise BenchError(f"{cmd}: timed out after {self.timeout:g} s")
        if check and rc != 0:
            raise BenchError(f"{cmd}: exit {rc}: {error_line(se) or error_line(so)}")
        return rc, ms, so, se


def stats(xs: list[float]) -> dict:
    xs = sorted(xs)
    q = statistics.quantiles(xs, n=10, method="inclusive") if len(xs) > 1 else [xs[0]] * 9
    return {"median": statistics.median(xs), "p10": q[0], "p90": q[-1], "n": len(xs)}
