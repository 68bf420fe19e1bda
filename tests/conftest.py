"""Shared test fixtures.

Unit tests (tests/unit) run anywhere, without root. Integration tests (tests/integration) need
root and skip with the reason otherwise. Every integration test uses its own runtime state
directory (--root) and cleans up what it made, also when it fails.
"""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="integration test: needs root (namespaces, mounts, cgroups)")
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(skip)
