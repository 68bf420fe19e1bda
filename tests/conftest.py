"""Shared test fixtures.

Unit tests (tests/unit) run anywhere, without root. Integration tests (tests/integration) need
root and skip with the reason otherwise. Every integration test uses its own runtime state
directory (--root) and cleans up what it made, also when it fails.
"""

from __future__ import annotations

import os

import pytest


_DOCKER_CONFIG: list[str] = []  # the run's private Docker config directory (pytest_configure)


def pytest_configure(config):
    """A private Docker config directory for the whole run: `minirun login` writes Docker's
    config.json ($DOCKER_CONFIG, else ~/.docker), and no test may touch the real one. Set
    before the test modules copy os.environ for their subprocesses."""
    import tempfile

    _DOCKER_CONFIG.append(tempfile.mkdtemp(prefix="minirun-test-docker-config-"))
    os.environ["DOCKER_CONFIG"] = _DOCKER_CONFIG[0]


def pytest_unconfigure(config):
    import shutil

    for d in _DOCKER_CONFIG:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(autouse=True)
def _logged_in_nowhere():
    """Every test starts logged in nowhere: the run's Docker config directory is emptied (one
    test's `login` must not authorize the next one's pull)."""
    import shutil

    for d in _DOCKER_CONFIG:
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d, mode=0o700, exist_ok=True)
    yield


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="integration test: needs root (namespaces, mounts, cgroups)")
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """How many tests skipped, grouped by reason: a host that lacks a feature says so here.

    pytest's own `-rs` groups by file and line; a reader wants to know *why* (no BFQ, no KVM,
    no podman), once per reason, with the count.
    """
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons: dict[str, int] = {}
    for report in skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    terminalreporter.section(f"{len(skipped)} skipped, by reason")
    for reason, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
        terminalreporter.write_line(f"{n:5d}  {reason}")
