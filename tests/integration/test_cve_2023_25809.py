"""runc's CVE-2023-25809, tried against minirun-oci: "ro" on a recursive bind made only its top
read-only. Rootless runc, without a network namespace of its own, cannot mount a sysfs: it
rbinds the host's /sys read-only instead, and the mounts *below* /sys -- the host's
/sys/fs/cgroup among them -- stayed writable in the container. The same holds for any
`rbind,ro` of a host tree with mounts inside it.

minirun-oci makes read-only recursive on an rbind (mount_setattr(2), AT_RECURSIVE; remounts
of each submount on kernels before 5.12), and supports runtime-spec 1.1's explicit recursive
options (`rro`, `rnosuid` ...). Each test says how a naive runtime fails it.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from helpers import run
from hostfeatures import mount_setattr, need

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="real containers need root")

MAPS = {"uidMappings": [{"containerID": 0, "hostID": 300000, "size": 65536}],
        "gidMappings": [{"containerID": 0, "hostID": 300000, "size": 65536}]}


@pytest.fixture
def tree_with_a_mount(tmp_path):
    """A host directory with a tmpfs mounted inside it, at sub/ (unmounted after)."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "t25809", str(src / "sub")],
                   check=True)
    try:
        yield src
    finally:
        subprocess.run(["umount", "-l", str(src / "sub")], check=False)


WRITE = "touch /mnt/top 2>/dev/null && echo top-rw || echo top-ro; " \
        "touch /mnt/sub/x 2>/dev/null && echo sub-rw || echo sub-ro"


@pytest.mark.parametrize("options,want", [
    (["rbind", "ro"], ["top-ro", "sub-ro"]),   # runc before the fix: top-ro, sub-rw
    (["rbind", "rro"], ["top-ro", "sub-ro"]),  # runtime-spec 1.1's recursive read-only
    (["rbind"], ["top-rw", "sub-rw"]),         # the control: nothing asked, all writable
])
def test_read_only_reaches_the_mounts_below_an_rbind(oci, bundle, cid, tree_with_a_mount,
                                                     options, want):
    """A naive runtime remounts only the rbind's top read-only (MS_REMOUNT|MS_BIND|MS_RDONLY
    acts on one mount): `touch /mnt/sub/x` then succeeds, on the host's tmpfs."""
    if "rro" in options:
        need(mount_setattr(), "the kernel has no mount_setattr(2) (Linux 5.12): rro is refused")
    src = tree_with_a_mount

    def edit(cfg):
        cfg["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(src),
                              "options": options})
    b = bundle(args=["sh", "-c", WRITE], edit=edit)
    assert run(oci, b, cid).stdout.split() == want
    assert (src / "sub" / "x").exists() == (want[1] == "sub-rw")


def test_rootless_sysfs_fallback_is_read_only_all_the_way_down(oci, bundle, cid, searchable):
    """The CVE's own shape: a user namespace and no network namespace, so mounting sysfs is
    refused (EPERM) and the host's /sys is rbound instead. A naive runtime makes that bind's
    top read-only and leaves every host mount below /sys writable in the container
    (/sys/fs/cgroup, /sys/fs/bpf, /sys/kernel/debug ...). Every /sys mount the container sees
    must be read-only."""
    def edit(cfg):
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"]
                                      if n["type"] != "network"] + [{"type": "user"}]
        cfg["linux"].update(json.loads(json.dumps(MAPS)))
        cfg["root"]["readonly"] = False
        cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    b = bundle(args=["sh", "-c", "awk '$5 ~ \"^/sys\" {print $5, $6}' /proc/self/mountinfo"],
               own_rootfs=True, edit=edit)
    searchable(b)
    lines = run(oci, b, cid).stdout.splitlines()
    mounts = dict(ln.split(" ", 1) for ln in lines)
    below = [mp for mp in mounts if mp != "/sys"]
    if not below:
        pytest.skip("the host has no mounts below /sys to carry along")
    writable = [mp for mp, opts in mounts.items() if "ro" not in opts.split(",")]
    assert writable == [], f"writable below the read-only /sys: {writable}"
