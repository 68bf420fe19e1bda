"""Podman drives minirun-oci as its OCI runtime (through conmon), as it would runc.

Podman's argv is listed in ../shared/FACTS.md §6: create with --pid-file (and --console-socket
for -t), start, exec --process --detach, kill with numbers, delete --force. Its storage and
config live in a private temp dir; the image is imported from the busybox rootfs (offline).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

OCI = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "minirun-oci")

pytestmark = pytest.mark.skipif(shutil.which("podman") is None,
                                reason="podman is not installed (scripts/setup installs it)")


@pytest.fixture(scope="module")
def podman(tmp_path_factory, rootfs_dir):
    d = tmp_path_factory.mktemp("podman")
    (d / "containers.conf").write_text(f"""
[containers]
# podman's default ulimits exceed this host's hard limits (no CAP_SYS_RESOURCE here)
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "minirun"
[engine.runtimes]
minirun = ["{OCI}"]
""")
    (d / "storage.conf").write_text(f"""
[storage]
driver = "vfs"
runroot = "{d}/runroot"
graphroot = "{d}/root"
""")
    env = dict(os.environ, CONTAINERS_CONF=str(d / "containers.conf"),
               CONTAINERS_STORAGE_CONF=str(d / "storage.conf"),
               REGISTRY_AUTH_FILE=str(d / "auth.json"))
    # podman 4.3 stats its auth file and $DOCKER_CONFIG/config.json and fails when one is
    # missing (tests/conftest.py points DOCKER_CONFIG at an empty directory): podman gets an
    # empty auth file of its own instead.
    (d / "auth.json").write_text("{}")
    env.pop("DOCKER_CONFIG", None)

    def run(*args, check=True, timeout=60):
        r = subprocess.run(["podman", *args], capture_output=True, text=True, env=env,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} -> {r.returncode}: {r.stderr}")
        return r

    with tarfile.open(d / "rootfs.tar", "w") as tar:
        tar.add(rootfs_dir, arcname=".")
    run("import", "-q", str(d / "rootfs.tar"), "localhost/mini-bb:latest")
    yield run
    run("rm", "-af", check=False)
    run("system", "reset", "-f", check=False)
    subprocess.run(["umount", "-R", str(d / "root")], capture_output=True)
    shutil.rmtree(d, ignore_errors=True)


def test_run_rm_prints_and_exits(podman):
    r = podman("run", "--rm", "--network", "none", "localhost/mini-bb",
               "sh", "-c", "echo hello; hostname; exit 3", check=False)
    assert r.returncode == 3
    assert r.stdout.splitlines()[0] == "hello"


def test_tty_goes_through_the_console_socket(podman):
    r = podman("run", "--rm", "-t", "--network", "none", "localhost/mini-bb", "tty")
    assert r.stdout.strip() == "/dev/pts/0"


def test_detached_exec_stop_rm(podman):
    cid = podman("run", "-d", "--network", "none", "localhost/mini-bb", "sleep", "300").stdout.strip()
    try:
        assert podman("inspect", "-f", "{{.State.Status}}", cid).stdout.strip() == "running"
        r = podman("exec", cid, "sh", "-c", "echo in; cat /proc/1/cmdline")
        assert r.stdout.startswith("in\nsleep")
        assert podman("exec", "-t", cid, "tty").stdout.strip().startswith("/dev/pts/")
        podman("stop", "-t", "1", cid)  # sleep as PID 1 ignores TERM: podman sends `kill ID 9`
        assert podman("inspect", "-f", "{{.State.Status}}", cid).stdout.strip() == "exited"
    finally:
        podman("rm", "-f", cid, check=False)


def test_missing_command_is_127(podman):
    r = podman("run", "--rm", "--network", "none", "localhost/mini-bb", "nosuchcmd", check=False)
    assert r.returncode == 127
    assert "not found" in r.stderr
