"""What this host has: the questions a test asks before it relies on a kernel or tool feature.

Machines of one kind differ (one has BFQ, the next has not; one has /dev/kvm, one mounts
net_cls). A test that needs a feature asks here and skips with the reason, or asserts
minirun's clear refusal where minirun refuses; it never assumes. Each probe is cached: it asks
the host once per test session.

    from hostfeatures import need, blkio_weight_file
    need(blkio_weight_file(), "blkio.weight needs the CFQ or BFQ I/O scheduler")
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile

import pytest

CGROUP = "/sys/fs/cgroup"


def need(have: object, why: str) -> None:
    """Skip the calling test unless `have` is true; `why` says what the host lacks."""
    if not have:
        pytest.skip(f"not on this host: {why}")


@functools.cache
def cgroup_layout() -> str:
    """'v2' (one unified hierarchy), 'hybrid' (v1 controllers + a cgroup2 mount), or 'v1'."""
    if os.path.exists(f"{CGROUP}/cgroup.controllers"):
        return "v2"
    return "hybrid" if os.path.isdir(f"{CGROUP}/unified") else "v1"


def v1_controller(name: str) -> bool:
    """A v1 hierarchy for controller `name` is mounted (net_cls, hugetlb ... are not everywhere)."""
    return cgroup_layout() != "v2" and os.path.isdir(f"{CGROUP}/{name}")


def v1_file(controller: str, name: str) -> bool:
    """The v1 controller's root has this file (e.g. blkio.bfq.weight only with BFQ)."""
    return v1_controller(controller) and os.path.exists(f"{CGROUP}/{controller}/{name}")


@functools.cache
def blkio_weight_file() -> str | None:
    """Where a v1 blkio weight goes: CFQ's blkio.weight, BFQ's blkio.bfq.weight, or nowhere
    (schedulers none/mq-deadline/kyber have no weights)."""
    for name in ("blkio.weight", "blkio.bfq.weight"):
        if v1_file("blkio", name):
            return name
    return None


@functools.cache
def block_device() -> tuple[str, int, int] | None:
    """A real disk of this host as (name, major, minor): the one the root filesystem is on if
    it can be told, else the first non-virtual one in /sys/block."""
    names = sorted(n for n in os.listdir("/sys/block")
                   if not n.startswith(("loop", "ram", "zram", "nbd", "dm-", "md")))
    st = os.stat("/")
    root = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    for n in names:
        with open(f"/sys/block/{n}/dev") as f:
            if f.read().strip() == root:
                names.insert(0, n)
                break
    if not names:
        return None
    with open(f"/sys/block/{names[0]}/dev") as f:
        major, minor = (int(x) for x in f.read().split(":"))
    return names[0], major, minor


@functools.cache
def hugepage_sizes() -> list[str]:
    """Huge page sizes the kernel offers, as cgroup files name them ('2MB', '1GB')."""
    try:
        entries = os.listdir("/sys/kernel/mm/hugepages")
    except FileNotFoundError:
        return []
    out = []
    for e in sorted(entries):  # hugepages-2048kB
        kb = int(e.removeprefix("hugepages-").removesuffix("kB"))
        out.append(f"{kb // 1024 // 1024}GB" if kb >= 1 << 20 else f"{kb // 1024}MB")
    return out


def tool(name: str) -> bool:
    """A program on PATH."""
    return shutil.which(name) is not None


@functools.cache
def kvm() -> bool:
    """/dev/kvm can be opened (the cgroup v2 VM uses TCG without it)."""
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
        return True
    except OSError:
        return False


@functools.cache
def unprivileged_userns() -> bool:
    """An ordinary user may create a user namespace (Debian's kernel.unprivileged_userns_clone,
    Ubuntu's apparmor_restrict_unprivileged_userns, user.max_user_namespaces may forbid it)."""
    if os.geteuid() != 0 or not (tool("setpriv") and tool("unshare")):
        return False
    r = subprocess.run(["setpriv", "--reuid=12345", "--regid=12345", "--clear-groups",
                        "unshare", "--user", "true"], capture_output=True, timeout=30)
    return r.returncode == 0


@functools.cache
def idmapped_mounts(where: str | None = None) -> bool:
    """The kernel can make an idmapped mount of a directory on the filesystem of `where`
    (default: the temp dir tests use): Linux 5.12+, and per filesystem (tmpfs only from 6.3)."""
    if os.geteuid() != 0:
        return False
    from minirun.errors import KernelError
    from minirun.kernel import idmap

    base = where or tempfile.gettempdir()
    d = tempfile.mkdtemp(prefix="minirun-idmap-probe-", dir=base)
    ns = -1
    try:
        m = [(0, 300000, 1)]
        ns = idmap.userns_fd(m, m)
        os.close(idmap.idmapped_tree(d, ns))
        return True
    except (OSError, KernelError, idmap.Unsupported):
        return False
    finally:
        if ns >= 0:
            os.close(ns)
        os.rmdir(d)


@functools.cache
def mount_setattr() -> bool:
    """The kernel has mount_setattr(2) (Linux 5.12): recursive mount attributes (rro ...).
    Asked with an invalid call: EBADF means the call exists, ENOSYS that it does not."""
    import ctypes
    import errno

    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.syscall(442, -1, b"", 0x1000, None, 0)  # fd -1, AT_EMPTY_PATH, no attr
    return rc == 0 or ctypes.get_errno() != errno.ENOSYS


@functools.cache
def nftables() -> bool:
    """nft is installed and the kernel answers it (nf_tables built in or loadable)."""
    if not tool("nft") or os.geteuid() != 0:
        return False
    return subprocess.run(["nft", "list", "tables"], capture_output=True, timeout=30).returncode == 0
