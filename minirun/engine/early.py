"""`minirun run`'s monitor, started before the CLI has even imported click.

The CLI starts a container's monitor ahead of time (monitorhandle.MonitorHandle) so that the
monitor's interpreter start and imports, and its network helper's import of pyroute2
(nethelper.py), overlap the CLI's own work. The earlier, the more they overlap: from where
`run`'s click handler would start it, ~55 ms after the CLI's start (interpreter, click, the
engine's modules, parsing), the helper's ~60-90 ms import is still running when the runtime has
made the namespaces. So the front end calls `start(argv)` first thing, before `import click`:
if the command line is `minirun [--root R] [--runroot R] [--debug] [--trace] run ...`, the monitor
starts now (~15 ms in), and `run` takes it with `take()`.

The argv is read by hand, conservatively: anything this reader does not know (another global
flag, `--help`, another command) starts nothing, and click parses the command line as usual.
What it guesses only decides two things, both checked again later: the root and runroot
(`take` hands the monitor over only if they are the Engine's, else it is sent home) and whether
the network helper is worth forking (a wrong guess costs time, never correctness: without a
helper the monitor plugs the container in the old way, in a forked child).
"""

from __future__ import annotations

import os

_handle = None  # the MonitorHandle started by start(), until take() hands it over


def start(argv: list[str]) -> None:
    """Start `minirun run`'s monitor now if argv is such a command line (argv[0]: the program)."""
    global _handle
    parsed = parse(argv, os.environ)
    if parsed is None or os.geteuid() != 0:
        return
    root, runroot, rest = parsed
    if tracing(argv, os.environ):  # `minirun --trace run`: narrate from here on (docs/trace.md)
        from .. import trace  # lazy: only --trace (every command imports this module)

        trace.enable("cli")
    from .monitorhandle import MonitorHandle, plugs_links  # lazy: only `run` (start-up budget)

    class Where:  # what MonitorHandle reads of an Engine
        pass

    where = Where()
    where.root, where.runroot = root, runroot
    try:
        _handle = MonitorHandle(where, network=plugs_links(_network(rest)))
    except OSError:
        _handle = None  # the CLI starts one later, and reports what is wrong
        return
    if _handle.tracing:
        from .. import trace  # lazy: only --trace (every command imports this module)

        trace.step(f"posix_spawn(monitor) = {_handle.pid}",
                   "start the container's monitor now, before click is imported: its start-up "
                   "(and its maker's and network helper's imports) overlaps ours; it narrates "
                   "on our stderr while we wait for the container")


def parse(argv: list[str], env) -> tuple[str, str, list[str]] | None:
    """(root, runroot, run's arguments) if argv is `minirun [--root R] [--runroot R] [--debug]
    [--trace] run ARGS` without -h/--help; None for anything else."""
    root = env.get("MINIRUN_ROOT") or "/var/lib/minirun"
    runroot = env.get("MINIRUN_RUNROOT") or "/run/minirun"
    i = 1
    while i < len(argv):
        a = argv[i]
        if a in ("--root", "--runroot") and i + 1 < len(argv):
            if a == "--root":
                root = argv[i + 1]
            else:
                runroot = argv[i + 1]
            i += 2
        elif a.startswith(("--root=", "--runroot=")):
            k, _, v = a.partition("=")
            root, runroot = (v, runroot) if k == "--root" else (root, v)
            i += 1
        elif a in ("--debug", "--trace"):
            i += 1
        else:
            break
    if i >= len(argv) or argv[i] != "run":
        return None
    rest = argv[i + 1:]
    if any(a in ("-h", "--help") for a in rest):
        return None
    return os.path.abspath(root), os.path.abspath(runroot), rest


def tracing(argv: list[str], env) -> bool:
    """Is `minirun`'s --trace among the global flags (before the command), or MINIRUN_TRACE set?"""
    if env.get("MINIRUN_TRACE", "") not in ("", "0"):
        return True
    skip = False
    for a in argv[1:]:
        if skip:
            skip = False
        elif a == "--trace":
            return True
        elif a in ("--root", "--runroot"):
            skip = True  # its value
        elif not a.startswith("-"):
            return False  # the command: a --trace after it is its own (or the container's)
    return False


def _network(args: list[str]) -> str:
    """--network/--net's value in `run`'s arguments ("bridge" if absent). Tokens after the
    image are the command's, but a wrong guess only decides whether a helper is forked."""
    mode = "bridge"
    for i, a in enumerate(args):
        if a in ("--network", "--net") and i + 1 < len(args):
            mode = args[i + 1]
        elif a.startswith(("--network=", "--net=")):
            mode = a.partition("=")[2]
    return mode


def take(root: str, runroot: str):
    """The monitor start() started, if it is for this root and runroot (else it is sent home:
    the caller starts the right one); or None."""
    global _handle
    h, _handle = _handle, None
    if h is None:
        return None
    if (h.root, h.runroot) != (root, runroot):
        h.cancel()
        return None
    return h
