"""Fixtures for the cgroup v2 tests: they need a pure cgroup2 hierarchy at /sys/fs/cgroup.

The development and CI hosts have hybrid cgroups, so these tests skip there; scripts/test-cgroup-v2
runs them inside a throw-away qemu VM (scripts/vm-run) that mounts cgroup2 alone. In that VM the
checkout is visible read-only at its host path (writes go to a discarded overlay) and /tmp is a
fresh tmpfs, where the rootfs and bundles are built. Everything runs ~15x slower there (TCG):
keep this suite small.

The fixtures are a trimmed version of tests/integration/conftest.py's (that file's fixtures are
not visible from this directory); Runtime and write_bundle come from tests/integration/helpers.py.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CGROOT = Path("/sys/fs/cgroup")
HERE = str(Path(__file__).resolve().parent)
sys.path.insert(0, str(REPO / "tests" / "integration"))

from helpers import OCI, Runtime, build_rootfs, write_bundle  # noqa: E402


def _skip_reason() -> str | None:
    if not (CGROOT / "cgroup.controllers").exists():
        return ("cgroup v2 tests need a pure cgroup2 hierarchy (/sys/fs/cgroup/cgroup.controllers "
                "is absent: hybrid or v1 host); run them in a VM with scripts/test-cgroup-v2")
    if os.geteuid() != 0:
        return "cgroup v2 tests need root (namespaces, mounts, cgroups)"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _skip_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if str(item.fspath).startswith(HERE + os.sep):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def rootfs_dir(tmp_path_factory) -> Path:
    """A busybox rootfs built once per session by scripts/build-rootfs."""
    return build_rootfs(tmp_path_factory.mktemp("rootfs") / "rootfs")


@pytest.fixture
def oci(tmp_path):
    rt = Runtime(OCI, tmp_path / "oci-state", timeout=60)  # ~15x slower in the VM
    yield rt
    rt.cleanup()


@pytest.fixture
def bundle(tmp_path, rootfs_dir):
    """bundle(args, resources=None, edit=None) -> path of a fresh bundle dir.

    `minirun-oci spec`'s default config (terminal off, the shared read-only rootfs); `resources`
    is merged into linux.resources (the default "deny all devices" rule stays), then `edit(cfg)`.
    """
    counter = [0]

    def make(args, resources: dict | None = None, edit=None) -> str:
        def configure(cfg: dict) -> None:
            cfg["linux"]["resources"].update(resources or {})
            if edit:
                edit(cfg)

        counter[0] += 1
        return write_bundle(tmp_path / f"bundle{counter[0]}", rootfs_dir, args=args,
                            edit=configure)

    return make


@pytest.fixture
def cid() -> str:
    return "v2-" + uuid.uuid4().hex[:10]


@pytest.fixture
def scratch_cgroups():
    """Directories under /sys/fs/cgroup a test makes itself: removed at teardown, deepest first,
    after their processes are killed (cgroup.kill)."""
    made: list[Path] = []
    yield made
    for d in sorted(made, key=lambda p: len(str(p)), reverse=True):
        for sub in sorted((p for p in d.glob("**/") if p != d), key=lambda p: len(str(p)),
                          reverse=True) + [d]:
            if (sub / "cgroup.kill").exists():
                try:
                    (sub / "cgroup.kill").write_text("1")
                except OSError:
                    pass
            for _ in range(200):
                try:
                    sub.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
