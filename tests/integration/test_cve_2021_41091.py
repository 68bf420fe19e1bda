"""CVE-2021-41091 regression tests: unprivileged host users reaching containers' and images' files.

Docker's bug: the directories under /var/lib/docker that hold containers' root filesystems and
images' layers were searchable by every host user (0711/0755). A container's rootfs path is no
secret (overlay's mount in /proc/mounts, world-readable, names it), so an unprivileged host user
could walk into it, read the container's files, and run a setuid-root program the image (or the
container's root) put there: root on the host. Docker made those directories 0700, or 0710
root:<remapped root's gid> where a user namespace's root must pass.

minirun's naive layout had the same hole: <root>/image/layers was 0755 (every layer's files,
busybox included, runnable by `nobody` straight from image/layers/<id>/bin/busybox) and
containers/<id> was 0711 (the merged rootfs at containers/<id>/rootfs reachable by anyone). Now
image/{blobs,layers,images} are 0700 and containers/<id> 0700, or 0710 root:<the container's root's
host gid> with a user namespace; each test below also opens the naive mode again for a moment and
shows the same probe then succeeds, so a denial is the layout's doing and not the probe's.
"""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="real containers and setpriv need root")

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


def as_nobody(*argv: str) -> subprocess.CompletedProcess:
    # Through sh: setpriv keeps its capabilities (PR_SET_KEEPCAPS) until its own execve, whose
    # path walk would pass any directory with CAP_DAC_OVERRIDE; sh walks as nobody.
    return subprocess.run([*NOBODY, "/bin/sh", "-c", 'exec "$@"', "sh", *argv],
                          capture_output=True, text=True, timeout=30)


def denied(*argv: str) -> None:
    r = as_nobody(*argv)
    assert r.returncode != 0 and "Permission denied" in r.stderr, (argv, r.returncode, r.stdout,
                                                                   r.stderr)


def mounted_rootfs(cid: str) -> str:
    """The container's merged rootfs as any host user sees it: its line in /proc/mounts."""
    with open("/proc/mounts") as f:
        points = [ln.split()[1] for ln in f if ln.split()[1].endswith(f"/{cid}/rootfs")]
    assert points, f"no rootfs of {cid} in /proc/mounts"
    return points[0]


def busybox_layer(mr) -> str:
    layers = mr.root / "image" / "layers"
    for name in sorted(os.listdir(layers)):
        p = layers / name / "bin" / "busybox"
        if p.exists():
            return str(p)
    raise AssertionError(f"no layer in {layers} holds bin/busybox")


@pytest.fixture
def reachable_root(mr, searchable):
    """Every directory above --root searchable by others (pytest's temporary directories are
    0700): only minirun's own layout may stand between `nobody` and the files, as under /var/lib."""
    searchable(mr.root)
    return mr


def test_nobody_cannot_reach_a_container_rootfs_or_an_image_layer(reachable_root, tmp_path):
    mr = reachable_root
    mr.ok("run", "-d", "--name", "c1", "--network", "none", "busybox", "sh", "-c",
          "echo container-secret > /secret; cp /bin/busybox /id; chmod 4755 /id; sleep 60")
    rec = mr.record("c1")
    cid = rec["Id"]
    cdir = mr.root / "containers" / cid
    rootfs = mounted_rootfs(cid)
    assert rootfs == rec["GraphDriver"]["Data"]["MergedDir"]
    for _ in range(100):  # the container's command writes its files
        if os.path.exists(os.path.join(rootfs, "id")):
            break
        subprocess.run(["sleep", "0.1"])
    assert os.stat(os.path.join(rootfs, "id")).st_mode & stat.S_ISUID

    assert stat.S_IMODE(os.stat(cdir).st_mode) == 0o700
    layers = mr.root / "image" / "layers"
    for d in ("blobs", "blobs/sha256", "layers", "images", "tmp"):
        assert stat.S_IMODE(os.stat(mr.root / "image" / d).st_mode) == 0o700, d
    bb = busybox_layer(mr)

    # the container: list, stat, read, run its setuid copy of busybox
    denied("ls", rootfs)
    denied("stat", os.path.join(rootfs, "bin", "busybox"))
    denied("cat", os.path.join(rootfs, "secret"))
    denied(os.path.join(rootfs, "id"), "-u")
    denied("ls", str(cdir))
    # the image: a layer's files, its busybox
    denied("ls", str(layers))
    denied("ls", os.path.dirname(os.path.dirname(bb)))
    denied("stat", bb)
    denied(bb, "true")

    # The naive layouts, for a moment: Docker's 0711 container directory lets nobody read the
    # container's files and run its setuid program as root; a 0755 layers/ lets it run busybox
    # straight from the image's layer.
    os.chmod(cdir, 0o711)
    try:
        r = as_nobody("cat", os.path.join(rootfs, "secret"))
        assert r.returncode == 0 and r.stdout == "container-secret\n", r.stderr
        r = as_nobody(os.path.join(rootfs, "id"), "-u")
        assert r.returncode == 0, r.stderr  # a setuid-root busybox (its applet `id`), run by nobody
    finally:
        os.chmod(cdir, 0o700)
    os.chmod(layers, 0o755)
    try:
        r = as_nobody(bb, "echo", "ran-from-the-layer")
        assert r.returncode == 0 and r.stdout == "ran-from-the-layer\n", r.stderr
    finally:
        os.chmod(layers, 0o700)
    denied(bb, "true")


def test_modes_an_older_minirun_left_are_fixed(reachable_root):
    """A --root an older minirun made (containers/<id> 0711, the store's directories 0755) is
    made safe the next time minirun reads it."""
    mr = reachable_root
    mr.ok("create", "--name", "old", "--network", "none", "busybox", "true")
    cdir = mr.root / "containers" / mr.record("old")["Id"]
    image = mr.root / "image"
    os.chmod(cdir, 0o711)
    for d in ("blobs", "blobs/sha256", "layers", "images"):
        os.chmod(image / d, 0o755)
    mr.ok("ps", "-a")  # reads every record and opens the store
    mr.ok("images")
    assert stat.S_IMODE(os.stat(cdir).st_mode) == 0o700
    for d in ("blobs", "blobs/sha256", "layers", "images"):
        assert stat.S_IMODE(os.stat(image / d).st_mode) == 0o700, d


@pytest.mark.parametrize("flags", [["--userns", "auto"], ["--userns-remap", "default"]],
                         ids=["auto", "remap"])
def test_a_user_namespaced_container_still_runs_behind_0710(reachable_root, subids, flags):
    """With a user namespace its init (the mapped root, an ordinary host uid and gid) walks
    containers/<id>/rootfs before pivot_root: containers/<id> is 0710 root:<that gid>, which lets
    it in and nobody else; the image's layers stay 0700 (overlayfs checks its lower directories
    as its mounter, root)."""
    mr = reachable_root
    mr.ok("run", "-d", "--name", "u1", "--network", "none", *flags, "busybox", "sleep", "60")
    rec = mr.record("u1")
    gid = rec["HostConfig"]["IDMappings"]["GidMap"][0][1]
    cdir = mr.root / "containers" / rec["Id"]
    st = os.stat(cdir)
    assert stat.S_IMODE(st.st_mode) == 0o710 and st.st_uid == 0 and st.st_gid == gid
    assert stat.S_IMODE(os.stat(mr.root / "image" / "layers").st_mode) == 0o700
    out = mr.ok("exec", "u1", "sh", "-c", "echo hi > /etc/written && cat /etc/written && id -u "
                "&& /bin/busybox true && echo ran")
    assert out.split() == ["hi", "0", "ran"]
    r = mr("run", "--rm", "--network", "none", *flags, "busybox", "sh", "-c",
           "touch /new && ls /bin/busybox && echo ok")
    assert r.returncode == 0 and r.stdout.split() == ["/bin/busybox", "ok"], r.stderr
    rootfs = mounted_rootfs(rec["Id"])
    denied("ls", rootfs)
    denied("stat", os.path.join(rootfs, "etc", "written"))
    denied(busybox_layer(mr), "true")
    # a restart walks the path again
    mr.ok("restart", "-t", "0", "u1")
    assert mr.ok("exec", "u1", "cat", "/etc/written") == "hi\n"
    assert stat.S_IMODE(os.stat(cdir).st_mode) == 0o710 and os.stat(cdir).st_gid == gid
