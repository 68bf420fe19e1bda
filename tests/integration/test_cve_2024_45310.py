"""runc's CVE-2024-45310: a symlink swapped in while the runtime creates mount targets, in a
volume two containers share, makes the runtime create directories and files on the host.

The set-up: a host directory is mounted in two containers at /vol. The second one's config
also mounts something at /vol/d/x/y (a directory target) and /vol/d/f (a file target), so the
runtime has to create vol/d/x/y and vol/d/f inside the volume. The first container (here a
host thread standing in for it) keeps swapping vol/d between a real directory and a symlink to
a host directory, `outside`, with renameat2(RENAME_EXCHANGE).

How a naive runtime fails: it resolves the destination inside the rootfs first (a textual
secure_join: every symlink read and re-resolved with the rootfs as /), gets back a host path
string, rootfs/vol/d/x/y, and then creates it *by that path*: `mkdir -p`/os.makedirs, and
open(O_CREAT) for the file. If vol/d is a directory during the resolve and a symlink during
the mkdir, the kernel's own walk of the string follows the symlink on the host: x/y and f
appear in `outside`, a host directory the container was never given (minirun before
kernel/resolve.py did exactly this and lost the race within a few runs). runc 1.1.14 fixed it
by creating each component with mkdirat relative to its parent's fd, then opening it with
O_NOFOLLOW: the swap then makes the create fail, never redirects it; minirun does the same
(kernel/resolve.py mkdirs and create_file, used by kernel/rootfs.py mount_one).

Each run must either succeed (the mounts inside the container) or fail cleanly: one line on
stderr naming the destination, no traceback, no container and no mount left; and `outside`
must stay empty throughout.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="real containers need root")

AT_FDCWD = -100
RENAME_EXCHANGE = 2
_libc = ctypes.CDLL(None, use_errno=True)


def exchange(a: Path, b: Path) -> None:
    """renameat2(a, b, RENAME_EXCHANGE): the two names swap atomically (neither is ever absent)."""
    if _libc.renameat2(AT_FDCWD, str(a).encode(), AT_FDCWD, str(b).encode(),
                       RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(a))


class Swapper:
    """The other container: swaps `name` between a real directory and a symlink to `target`,
    as fast as it can, until stopped. Counts its swaps (the race must really have run)."""

    def __init__(self, vol: Path, name: str, target: Path) -> None:
        self.d, self.other = vol / name, vol / f".{name}.swap"
        self.d.mkdir()
        os.symlink(str(target), self.other)
        self.stop = threading.Event()
        self.swaps = 0
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                exchange(self.d, self.other)
                self.swaps += 1
            except OSError as e:  # not expected: both names always exist
                self.errors.append(str(e))
                time.sleep(0.001)

    def __enter__(self) -> "Swapper":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


def host_mounts_under(d: Path) -> list[str]:
    """Mount points on the host at or under d (other tests' containers come and go elsewhere)."""
    with open("/proc/self/mountinfo") as f:
        points = [ln.split()[4] for ln in f]
    return [p for p in points if p == str(d) or p.startswith(str(d) + "/")]


def everything_under(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


def clean_failure(stderr: str) -> bool:
    lines = stderr.strip().splitlines()
    return len(lines) == 1 and "Traceback" not in stderr and "/vol/d" in stderr


def test_swapped_volume_symlink_creates_nothing_on_the_host(oci, bundle, cid, tmp_path):
    vol, outside = tmp_path / "vol", tmp_path / "outside"
    src_dir, src_file = tmp_path / "src-dir", tmp_path / "src-file"
    for d in (vol, outside, src_dir):
        d.mkdir()
    (src_dir / "marker").write_text("dir-mounted\n")
    src_file.write_text("file-mounted\n")

    def edit(cfg: dict) -> None:
        cfg["mounts"] += [
            {"destination": "/vol", "type": "bind", "source": str(vol), "options": ["rbind"]},
            {"destination": "/vol/d/x/y", "type": "bind", "source": str(src_dir),
             "options": ["bind", "ro"]},
            {"destination": "/vol/d/f", "type": "bind", "source": str(src_file),
             "options": ["bind", "ro"]},
        ]
    b = bundle(args=["sh", "-c", "cat /vol/d/x/y/marker /vol/d/f 2>/dev/null; true"],
               own_rootfs=True, edit=edit)
    state = tmp_path / "oci-state"
    ok, failed, runs = 0, 0, 0
    with Swapper(vol, "d", outside) as swapper:
        deadline = time.monotonic() + 8
        while runs < 80 and time.monotonic() < deadline:
            name = f"{cid}-{runs}"
            r = oci("run", "--bundle", b, name)
            runs += 1
            assert os.listdir(outside) == [], (  # checked after every run: the escape is early
                f"run {runs}: the runtime created {everything_under(outside)} in a host "
                f"directory through the swapped symlink\n{r.stderr}")
            if r.returncode == 0:
                ok += 1
            else:
                failed += 1
                assert clean_failure(r.stderr), f"run {runs}: not a clean failure:\n{r.stderr}"
            assert not (state / name).exists(), f"run {runs}: container state left behind"
    assert swapper.swaps > 100 and not swapper.errors, (swapper.swaps, swapper.errors[:3])
    assert host_mounts_under(tmp_path) == []  # nothing mounted on the host, nothing left
    assert os.listdir(outside) == []
    assert ok + failed == runs and runs >= 20, (ok, failed, runs)
    # without the swapper, the same bundle works: the mounts land inside the volume
    exchange(vol / "d", vol / ".d.swap") if (vol / "d").is_symlink() else None
    r = oci("run", "--bundle", b, f"{cid}-last")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "dir-mounted\nfile-mounted\n", r.stdout
    assert (vol / "d" / "x" / "y").is_dir() and (vol / "d" / "f").is_file()
    assert os.listdir(outside) == []


def test_frontend_containers_sharing_a_volume(mr, tmp_path):
    """The same race between two real containers of the front end: A swaps /vol/d in a shared
    named volume (rm and mkdir, rm and ln -s to a host directory, in a loop); B is run again and
    again with the volume at /vol and a host directory bound at /vol/d/x. The host directory
    `outside` (the symlink's target) must stay empty; B either runs or fails cleanly."""
    outside, hostdir = tmp_path / "outside", tmp_path / "hostdir"
    outside.mkdir()
    hostdir.mkdir()
    vol = "cve45310-" + os.urandom(4).hex()
    a = mr("run", "-d", "--name", vol + "-a", "-v", f"{vol}:/vol", "busybox", "sh", "-c",
           f"while :; do rm -rf /vol/d; mkdir /vol/d; rm -rf /vol/d; ln -s {outside} /vol/d; "
           "done")
    assert a.returncode == 0, a.stderr
    ok = failed = 0
    deadline = time.monotonic() + 15
    try:
        while time.monotonic() < deadline:
            r = mr("run", "--rm", "-v", f"{vol}:/vol", "-v", f"{hostdir}:/vol/d/x", "busybox",
                   "true")
            assert os.listdir(outside) == [], (everything_under(outside), r.stderr)
            if r.returncode == 0:
                ok += 1
            else:
                failed += 1
                assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 2, \
                    r.stderr
    finally:
        mr("rm", "-f", vol + "-a")
    assert ok + failed >= 5, (ok, failed)
    assert os.listdir(outside) == [] and os.listdir(hostdir) == []
    left = mr("ps", "-aq").stdout.split()
    assert left == [], left
    mr("volume", "rm", vol)
