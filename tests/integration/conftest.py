"""Fixtures for integration tests: a busybox rootfs, bundles, and runtimes to drive.

    def test_x(bundle, oci):
        b = bundle(args=["sh", "-c", "echo hi"])        # a bundle dir with config.json
        r = oci("run", "--bundle", b, "c1")              # minirun-oci with a private --root
        assert r.stdout == "hi\\n"

`runc` is the same runner for runc (the oracle); both clean up their containers at teardown.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OCI = str(REPO / ".venv" / "bin" / "minirun-oci")
sys.path.insert(0, str(REPO))

from minirun.oci.spec import default_config  # noqa: E402


@pytest.fixture(scope="session")
def rootfs_dir(tmp_path_factory) -> Path:
    """A busybox rootfs built once per session by scripts/build-rootfs."""
    d = tmp_path_factory.mktemp("rootfs") / "rootfs"
    subprocess.run([str(REPO / "scripts" / "build-rootfs"), str(d)], check=True)
    return d


class Runtime:
    """Runs an OCI runtime binary with a private state directory; remembers container IDs."""

    def __init__(self, binary: str, root: Path) -> None:
        self.binary = binary
        self.root = root
        self.ids: set[str] = set()

    def __call__(self, *args: str, check: bool = False, timeout: float = 30, input: str | None = None,
                 env: dict | None = None, global_args: tuple = ()) -> subprocess.CompletedProcess:
        cmd = [self.binary, "--root", str(self.root), *global_args, *map(str, args)]
        if args and args[0] in ("create", "run") and args[-1] and not str(args[-1]).startswith("-"):
            self.ids.add(str(args[-1]))
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL, env=env)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} -> {r.returncode}\nstdout: {r.stdout}\n"
                                 f"stderr: {r.stderr}")
        return r

    def state(self, cid: str) -> dict:
        return json.loads(self("state", cid, check=True).stdout)

    def cleanup(self) -> None:
        for cid in list(self.ids):
            subprocess.run([self.binary, "--root", str(self.root), "delete", "--force", cid],
                           capture_output=True, timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def oci(tmp_path):
    rt = Runtime(OCI, tmp_path / "oci-state")
    yield rt
    rt.cleanup()


@pytest.fixture
def runc(tmp_path):
    if not shutil.which("runc"):
        pytest.skip("runc is not installed (scripts/setup installs it)")
    rt = Runtime(shutil.which("runc"), tmp_path / "runc-state")
    yield rt
    rt.cleanup()


@pytest.fixture
def bundle(tmp_path, rootfs_dir):
    """bundle(args=[...], **changes) -> path of a fresh bundle dir.

    The config is `minirun-oci spec`'s default with terminal off, then `edit(cfg)` if given,
    then the keyword changes applied to process (args, env, cwd, user ...) or the top level.
    The rootfs is shared (read-only default config); pass own_rootfs=True for a private copy.
    """
    counter = [0]

    def make(args=None, edit=None, own_rootfs=False, **changes) -> str:
        counter[0] += 1
        b = tmp_path / f"bundle{counter[0]}"
        b.mkdir()
        cfg = copy.deepcopy(default_config())
        cfg["process"]["terminal"] = False
        if own_rootfs:
            shutil.copytree(rootfs_dir, b / "rootfs", symlinks=True)
        else:
            cfg["root"]["path"] = str(rootfs_dir)
        if args is not None:
            cfg["process"]["args"] = list(args)
        for k, v in changes.items():
            if k in cfg["process"] or k in ("user", "env", "cwd", "rlimits", "capabilities",
                                            "noNewPrivileges", "oomScoreAdj", "terminal"):
                cfg["process"][k] = v
            else:
                cfg[k] = v
        if edit:
            edit(cfg)
        (b / "config.json").write_text(json.dumps(cfg, indent=2))
        return str(b)

    return make


@pytest.fixture
def cid() -> str:
    return "t-" + uuid.uuid4().hex[:10]
