"""Unit-test guard rails: no test here may reach the real kernel.

Every test runs with a fresh libc.Recorder behind the seam (so a mount, unshare or capset
is recorded, never made, even as root) and with --trace narration off; both are restored after.
"""

from __future__ import annotations

import os

import pytest

from minirun import trace
from minirun.kernel import libc


@pytest.fixture(autouse=True)
def recorder(monkeypatch):
    """The fake kernel installed for this test; its .calls lists what was asked of it."""
    monkeypatch.delenv("MINIRUN_TRACE", raising=False)
    saved = (trace.enabled, trace._fd, trace._who, trace._t0)
    rec = libc.Recorder()
    libc.install(rec)
    yield rec
    libc.install(None)
    if trace._fd not in (saved[1], 0, 1, 2):
        try:
            os.close(trace._fd)  # the private dup of stderr that trace.enable() made
        except OSError:
            pass
    trace.enabled, trace._fd, trace._who, trace._t0 = saved


@pytest.fixture
def cli_runner():
    """click's CliRunner with stdout and stderr kept apart: always so from click 8.2, asked for
    with mix_stderr=False before (the oldest click pyproject.toml allows is older)."""
    import inspect

    from click.testing import CliRunner

    if "mix_stderr" in inspect.signature(CliRunner).parameters:
        return CliRunner(mix_stderr=False)
    return CliRunner()
