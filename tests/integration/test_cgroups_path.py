"""linux.cgroupsPath on this machine: hybrid (v1 controllers + cgroup2 at /sys/fs/cgroup/unified)
here, or pure v2 (one hierarchy) on other hosts; the tests ask which (tests/hostfeatures.py).

A relative path goes under the caller's own cgroup in each hierarchy (from /proc/self/cgroup),
an absolute one under each hierarchy's root; the container's init is in that cgroup in *every*
hierarchy, unified included (as runc does); delete removes every directory create made, the
intermediate ones too, and nothing else. Inside, a cgroup namespace shows "/" and
/sys/fs/cgroup is read-only.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from helpers import create, own_cgroups, run_detached
from hostfeatures import cgroup_layout


def in_container(name: str, controller: str) -> str:
    """Path, inside the container, of cgroup file `name` of `controller`'s hierarchy: v1 has a
    directory per controller, v2 one directory for all."""
    return f"/sys/fs/cgroup/{name}" if cgroup_layout() == "v2" else \
        f"/sys/fs/cgroup/{controller}/{name}"


# --- helpers -----------------------------------------------------------------------------------


def hierarchies() -> dict[str, tuple[str, str]]:
    """/proc/self/cgroup key ('memory', 'name=systemd', '' for cgroup2) -> (mount point, the
    cgroup path the mount shows at its top)."""
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fstype, _, sopts = post.split()[:3]
            if fstype in ("cgroup", "cgroup2"):
                fields = pre.split()
                mounts.append((fstype, set(sopts.split(",")), fields[4], fields[3]))
    out = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, key, _ = line.rstrip("\n").split(":", 2)
            for fstype, sopts, mnt, root in mounts:
                if (key == "" and fstype == "cgroup2") or \
                        (key and fstype == "cgroup" and set(key.split(",")) <= sopts):
                    out.setdefault(key, (mnt, root))
                    break
    return out


def expected_dirs(cgroups_path: str) -> dict[str, Path]:
    """Where the runtime must put the container: {key: directory} in every hierarchy."""
    own = own_cgroups()
    out = {}
    for key, (mnt, root) in hierarchies().items():
        if cgroups_path.startswith("/"):
            rel = cgroups_path
        else:
            rel = os.path.join(own[key], cgroups_path)
        if root != "/" and rel.startswith(root):
            rel = rel[len(root):]
        out[key] = Path(os.path.normpath(mnt + "/" + rel.lstrip("/")))
    return out


def with_path(path: str, drop_cgroupns: bool = False):
    def edit(c: dict) -> None:
        c["linux"]["cgroupsPath"] = path
        if drop_cgroupns:
            c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"]
                                        if n["type"] != "cgroup"]
    return edit


def procs(d: Path) -> list[int]:
    return [int(x) for x in (d / "cgroup.procs").read_text().split()]


@pytest.fixture
def cg_cleanup():
    """Directories a test expects to be gone: removed (deepest first) if a failure left them."""
    dirs: list[Path] = []
    yield dirs
    for d in sorted(dirs, key=lambda p: len(str(p)), reverse=True):
        for _ in range(100):
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.01)


# --- where the cgroup goes ------------------------------------------------------------------------


def test_relative_path_under_our_own_cgroup(oci, bundle, cid, tmp_path, cg_cleanup):
    parent = f"minirun-test-{cid}"  # the intermediate directory create must make (and delete)
    dirs = expected_dirs(f"{parent}/{cid}")
    assert dirs, f"no cgroup hierarchy found: {hierarchies()}"
    if cgroup_layout() == "hybrid":  # every hierarchy, the cgroup2 one included
        assert "" in dirs and "memory" in dirs, hierarchies()
    cg_cleanup += list(dirs.values()) + [d.parent for d in dirs.values()]
    assert not any(d.parent.exists() for d in dirs.values())

    b = bundle(args=["sleep", "60"], edit=with_path(f"{parent}/{cid}"))
    pid = run_detached(oci, tmp_path, b, cid)
    for key, d in dirs.items():
        assert pid in procs(d), f"{key or 'unified'}: init {pid} not in {d}"
    # /proc/PID/cgroup, read from the host, names the same cgroups.
    own = own_cgroups()
    for key, path in own_cgroups(pid).items():
        assert path == os.path.join(own[key], parent, cid), key

    oci("delete", "--force", cid, check=True)
    for key, d in dirs.items():
        assert not d.exists(), f"{d} is left"
        assert not d.parent.exists(), f"intermediate {d.parent} is left"
        assert d.parent.parent.is_dir()  # our own cgroup stays, of course


def test_relative_path_matches_runc(oci, runc, bundle, cid, tmp_path, cg_cleanup):
    b = bundle(args=["sleep", "60"], edit=with_path(f"minirun-test-{cid}/ctr"))
    dirs = expected_dirs(f"minirun-test-{cid}/ctr")
    cg_cleanup += list(dirs.values()) + [d.parent for d in dirs.values()]
    ours = own_cgroups(run_detached(oci, tmp_path, b, cid))
    oci("delete", "--force", cid, check=True)
    theirs = own_cgroups(run_detached(runc, tmp_path, b, cid + "-runc"))
    runc("delete", "--force", cid + "-runc", check=True)
    assert ours == theirs


def test_absolute_path(oci, bundle, cid, tmp_path, cg_cleanup):
    path = f"/minirun-test-{cid}"
    dirs = expected_dirs(path)
    cg_cleanup += list(dirs.values())
    assert all(d.parent == Path(hierarchies()[k][0]) for k, d in dirs.items())

    pid = run_detached(oci, tmp_path, bundle(args=["sleep", "60"], edit=with_path(path)), cid)
    for key, d in dirs.items():
        assert procs(d) == [pid], key
    assert set(own_cgroups(pid).values()) == {path}
    oci("delete", "--force", cid, check=True)
    assert not any(d.exists() for d in dirs.values())


def test_delete_of_a_created_container_removes_the_cgroups(oci, bundle, cid, tmp_path, cg_cleanup):
    path = f"/minirun-test-{cid}/a/b"
    dirs = expected_dirs(path)
    cg_cleanup += [p for d in dirs.values() for p in (d, d.parent, d.parent.parent)]
    create(oci, tmp_path, bundle(args=["true"], edit=with_path(path)), cid)
    pid = oci.state(cid)["pid"]
    assert all(procs(d) == [pid] for d in dirs.values())
    oci("delete", "--force", cid, check=True)  # created is not stopped: --force (runtime.md)
    assert not any(d.parent.parent.exists() for d in dirs.values())


def test_failed_create_removes_the_cgroups(oci, bundle, cid, tmp_path, cg_cleanup):
    path = f"/minirun-test-{cid}/x"
    dirs = expected_dirs(path)
    cg_cleanup += [p for d in dirs.values() for p in (d, d.parent)]
    b = bundle(args=["no-such-program"], edit=with_path(path))
    oci.ids.add(cid)
    r = oci("create", "--bundle", b, cid)
    assert r.returncode != 0 and "no-such-program" in r.stderr
    assert not any(d.parent.exists() for d in dirs.values())


def test_shared_parent_stays_while_used(oci, bundle, cid, tmp_path, cg_cleanup):
    parent = f"/minirun-test-{cid}"
    a, b = expected_dirs(parent + "/a"), expected_dirs(parent + "/b")
    cg_cleanup += list(a.values()) + list(b.values()) + [d.parent for d in a.values()]
    run_detached(oci, tmp_path, bundle(args=["sleep", "60"], edit=with_path(parent + "/a")),
                 cid + "a")
    run_detached(oci, tmp_path, bundle(args=["sleep", "60"], edit=with_path(parent + "/b")),
                 cid + "b")
    oci("delete", "--force", cid + "a", check=True)
    assert not any(d.exists() for d in a.values())
    assert all(d.is_dir() for d in b.values())  # the parent (and b) stay for the other one
    oci("delete", "--force", cid + "b", check=True)
    # b's create found the parent already there (a made it), so b's delete leaves it: the
    # last container out does not know it is last. runc leaves parents in place too.
    for d in b.values():
        assert not d.exists()
        if d.parent.exists():
            d.parent.rmdir()


# --- the container's view -------------------------------------------------------------------------


def test_cgroup_namespace_view(oci, bundle, cid, tmp_path, cg_cleanup):
    path = f"minirun-test-{cid}/{cid}"
    dirs = expected_dirs(path)
    cg_cleanup += list(dirs.values()) + [d.parent for d in dirs.values()]
    script = (f"cat /proc/self/cgroup; echo ---; cat {in_container('cgroup.procs', 'pids')}; "
              "echo ---; "
              "grep ' /sys/fs/cgroup' /proc/self/mountinfo | cut -d' ' -f4-6")
    r = oci("run", "--bundle", bundle(args=["sh", "-c", script], edit=with_path(path)), cid)
    assert r.returncode == 0, r.stderr
    cg, pids, mounts = r.stdout.split("---\n")
    lines = cg.splitlines()
    assert lines and all(ln.split(":", 2)[2] == "/" for ln in lines), lines
    assert "1" in pids.split()  # the container's own processes, by their in-container PIDs
    for ln in mounts.splitlines():
        root, point, opts = ln.split()
        assert opts.split(",")[0] == "ro", ln
        if point != "/sys/fs/cgroup":
            assert root == "/", ln  # each hierarchy shows the container's cgroup as its top
    assert not any(d.parent.exists() for d in dirs.values())


def test_no_cgroup_namespace_binds_the_own_cgroup(oci, bundle, cid, tmp_path, cg_cleanup):
    path = f"/minirun-test-{cid}"
    dirs = expected_dirs(path)
    cg_cleanup += list(dirs.values())
    script = f"cat /proc/self/cgroup; echo ---; cat {in_container('cgroup.procs', 'memory')}"
    r = oci("run", "--bundle", bundle(args=["sh", "-c", script],
                                      edit=with_path(path, drop_cgroupns=True)), cid)
    assert r.returncode == 0, r.stderr
    cg, pids = r.stdout.split("---\n")
    assert {ln.split(":", 2)[2] for ln in cg.splitlines()} == {path}  # the host's names
    # /sys/fs/cgroup(/memory) is the container's own cgroup, not the host's whole tree.
    assert "1" in pids.split() and len(pids.split()) <= 3


def test_sys_fs_cgroup_is_read_only(oci, bundle, cid, tmp_path, cg_cleanup):
    path = f"/minirun-test-{cid}"
    dirs = expected_dirs(path)
    cg_cleanup += list(dirs.values())

    def edit(c: dict) -> None:
        with_path(path)(c)
        for s in ("bounding", "effective", "permitted"):  # only the mount may refuse
            c["process"]["capabilities"][s] += ["CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE"]

    v2 = cgroup_layout() == "v2"
    script = (f"ls /sys/fs/cgroup; mkdir {in_container('sub', 'memory')} 2>&1 || "
              "echo mkdir-refused; "
              f"echo 10 > {in_container('cgroup.procs' if v2 else 'pids.max', 'pids')} || "
              "echo write-refused; "
              "touch /sys/fs/cgroup/x 2>&1 || echo top-refused")
    r = oci("run", "--bundle", bundle(args=["sh", "-c", script], edit=edit), cid)
    assert r.returncode == 0, r.stderr
    out = r.stdout.split()
    # v1: a read-only tmpfs holding each hierarchy; v2: the one hierarchy, read-only.
    for name in (("cgroup.procs", "cgroup.controllers") if v2 else (
            "memory", "pids", "cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio")):
        assert name in out, name
    assert {"mkdir-refused", "write-refused", "top-refused"} <= set(out), r.stdout
    assert "Read-only file system" in r.stdout + r.stderr
    assert not any(d.exists() for d in dirs.values())  # run deleted the container
