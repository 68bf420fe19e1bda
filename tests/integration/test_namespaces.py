"""linux.namespaces: new ones, joined ones (by a path: a named netns, another container's
/proc/PID/ns/*), a user namespace with id mappings, and what each one isolates (hostname,
sysctls, network devices, the cgroup view).

The container prints its own view (readlink /proc/self/ns/*, id, /proc/self/*) on stdout; the
test compares it with the host's view of the same things.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from helpers import NS, READ_NS, create, launch, one_line_error, pairs, poll, run, run_detached


# --- helpers -----------------------------------------------------------------------------------


def host_ns(pid: int | str = "self") -> dict[str, str]:
    return {n: os.readlink(f"/proc/{pid}/ns/{n}") for n in NS}


def netns_names() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [ln.split()[0] for ln in out.splitlines() if ln.strip()]


@pytest.fixture
def named_netns():
    """A named network namespace (ip netns add), deleted again whatever happens."""
    name = f"mrtest-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)
        assert name not in netns_names()


@pytest.fixture
def open_rootfs(rootfs_dir):
    """A copy of the rootfs on a path every user may traverse.

    pytest's tmp dirs sit under a 0700 /tmp/pytest-of-root: a process that is root only in its
    own user namespace (host uid 100000) cannot reach anything below it.
    """
    d = tempfile.mkdtemp(prefix="minirun-userns-", dir="/tmp")
    try:
        os.chmod(d, 0o755)
        shutil.copytree(rootfs_dir, os.path.join(d, "rootfs"), symlinks=True)
        yield os.path.join(d, "rootfs")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def userns(host_id: int = 100000, size: int = 65536):
    def edit(c: dict) -> None:
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": host_id, "size": size}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": host_id, "size": size}]
    return edit


# --- new namespaces ------------------------------------------------------------------------------


def test_every_namespace_is_new(oci, bundle, cid):
    inside = pairs(run(oci, bundle(args=["sh", "-c", READ_NS]), cid).stdout)
    host = host_ns()
    for n in ("pid", "net", "ipc", "uts", "mnt", "cgroup"):
        assert inside[n].startswith(f"{n}:["), inside
        assert inside[n] != host[n], f"{n} namespace is the host's"
    assert inside["user"] == host["user"]  # no user namespace was asked for


def test_the_process_is_pid_1(oci, bundle, cid, tmp_path):
    script = "echo $$; cat /proc/1/comm; ls /proc | grep -c '^[0-9]'"
    r = run(oci, bundle(args=["sh", "-c", script]), cid)
    assert r.stdout.split()[:2] == ["1", "sh"]
    assert int(r.stdout.split()[2]) <= 3  # sh, ls and grep: none of the host's processes

    pid = run_detached(oci, tmp_path, bundle(args=["sleep", "60"]), cid + "b")
    with open(f"/proc/{pid}/status") as f:
        nspid = [ln.split()[1:] for ln in f if ln.startswith("NSpid:")][0]
    assert nspid == [str(pid), "1"]


def test_hostname_and_domainname(oci, bundle, cid):
    host_name = os.uname().nodename
    host_domain = Path("/proc/sys/kernel/domainname").read_text()
    b = bundle(args=["sh", "-c", "hostname; cat /proc/sys/kernel/domainname"],
               hostname="box-1", domainname="example.test")
    assert run(oci, b, cid).stdout == "box-1\nexample.test\n"
    assert os.uname().nodename == host_name
    assert Path("/proc/sys/kernel/domainname").read_text() == host_domain


def test_sysctls_change_only_the_container(oci, bundle, cid):
    fwd = Path("/proc/sys/net/ipv4/ip_forward")
    msgmax = Path("/proc/sys/kernel/msgmax")
    before = fwd.read_text(), msgmax.read_text()
    want = "4321" if before[1].strip() != "4321" else "4322"

    def edit(c: dict) -> None:
        c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.msgmax": want}

    b = bundle(args=["sh", "-c", "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax"],
               edit=edit)
    assert run(oci, b, cid).stdout.split() == ["1", want]
    assert (fwd.read_text(), msgmax.read_text()) == before


def test_host_sysctl_is_refused(oci, bundle, cid):
    b = bundle(args=["true"], edit=lambda c: c["linux"].update(sysctl={"vm.swappiness": "1"}))
    r = oci("run", "--bundle", b, cid)
    assert r.returncode != 0 and "vm.swappiness" in r.stderr


def test_new_network_namespace_has_only_lo(oci, bundle, cid):
    r = run(oci, bundle(args=["sh", "-c", "ls /sys/class/net; tail -n +3 /proc/net/dev | "
                              "cut -d: -f1"]), cid)
    assert r.stdout.split() == ["lo", "lo"]


def test_new_network_namespace_has_lo_up(oci, bundle, cid):
    """As runc does for a namespace it makes (kernel/loopback.py): 127.0.0.1 answers inside.
    flags 0x9 = IFF_UP | IFF_LOOPBACK; a runtime that skips the step shows 0x8."""
    r = run(oci, bundle(args=["cat", "/sys/class/net/lo/flags"]), cid)
    assert int(r.stdout, 16) & 0x1, r.stdout


def test_joined_network_namespace_lo_is_left_alone(oci, bundle, cid, named_netns):
    """A namespace given by path is its owner's to set up: its lo stays down."""
    path = f"/run/netns/{named_netns}"

    def edit(c: dict) -> None:
        for n in c["linux"]["namespaces"]:
            if n["type"] == "network":
                n["path"] = path

    r = run(oci, bundle(args=["cat", "/sys/class/net/lo/flags"], edit=edit), cid)
    assert not int(r.stdout, 16) & 0x1, r.stdout


def test_cgroup_namespace_shows_root(oci, bundle, cid):
    inside = run(oci, bundle(args=["cat", "/proc/self/cgroup"]), cid).stdout.splitlines()
    assert inside and all(ln.split(":", 2)[2] == "/" for ln in inside), inside
    # Without one, the container sees where it really is: its own cgroup, which minirun makes
    # at /minirun/<id> in every hierarchy when config.json gives no cgroupsPath.
    b = bundle(args=["cat", "/proc/self/cgroup"], edit=lambda c: c["linux"].update(
        namespaces=[n for n in c["linux"]["namespaces"] if n["type"] != "cgroup"]))
    without = dict(ln.split(":", 2)[1:] for ln in run(oci, b, cid + "b").stdout.splitlines())
    mine = dict(ln.split(":", 2)[1:] for ln in Path("/proc/self/cgroup").read_text().splitlines())
    assert set(without) == set(mine)
    assert set(without.values()) == {f"/minirun/{cid}b"}


# --- joining namespaces ---------------------------------------------------------------------------


def test_join_a_named_netns(oci, bundle, cid, named_netns):
    path = f"/run/netns/{named_netns}"
    subprocess.run(["ip", "-n", named_netns, "link", "add", "mrv0", "type", "veth", "peer",
                    "name", "mrv1"], check=True)

    def edit(c: dict) -> None:
        for n in c["linux"]["namespaces"]:
            if n["type"] == "network":
                n["path"] = path

    r = run(oci, bundle(args=["sh", "-c", "readlink /proc/self/ns/net; ls /sys/class/net"],
                        edit=edit), cid)
    lines = r.stdout.split()
    assert lines[0] == f"net:[{os.stat(path).st_ino}]"
    assert sorted(lines[1:]) == ["lo", "mrv0", "mrv1"]
    # The netns outlives the container, untouched.
    assert named_netns in netns_names()


def test_join_another_containers_namespaces(oci, bundle, cid, tmp_path):
    a = run_detached(oci, tmp_path, bundle(args=["sleep", "60"], hostname="ctr-a"), cid + "-a")
    a_ns = host_ns(a)

    def edit(c: dict) -> None:
        c.pop("hostname", None)  # the UTS namespace is A's: its name is A's too
        for n in c["linux"]["namespaces"]:
            if n["type"] in ("ipc", "uts", "pid"):
                n["path"] = f"/proc/{a}/ns/{n['type']}"

    r = run(oci, bundle(args=["sh", "-c", READ_NS + "; hostname; cat /proc/1/comm; echo $$"],
                        edit=edit), cid)
    inside = pairs(r.stdout)
    for n in ("ipc", "uts", "pid"):
        assert inside[n] == a_ns[n], n
    for n in ("net", "mnt", "cgroup"):
        assert inside[n] != a_ns[n] and inside[n] != host_ns()[n], n
    tail = r.stdout.splitlines()[-3:]
    assert tail[:2] == ["ctr-a", "sleep"]  # A's hostname, and A's init is PID 1 of ours
    assert tail[2] != "1"


def test_join_a_missing_namespace_path_fails(oci, bundle, cid):
    def edit(c: dict) -> None:
        c["linux"]["namespaces"][1]["path"] = "/run/netns/minirun-no-such-netns"

    r = oci("run", "--bundle", bundle(args=["true"], edit=edit), cid)
    assert r.returncode != 0
    assert "/run/netns/minirun-no-such-netns" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


# --- user namespace -------------------------------------------------------------------------------


def test_user_namespace_with_mappings(oci, bundle, cid, tmp_path, open_rootfs):
    def edit(c: dict) -> None:
        userns()(c)
        c["root"]["path"] = open_rootfs

    script = ("id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; "
              "stat -c %U:%G /bin/busybox; readlink /proc/self/ns/user")
    r = run(oci, bundle(args=["sh", "-c", script], edit=edit), cid)
    lines = r.stdout.splitlines()
    assert lines[:2] == ["0", "0"], r.stdout + r.stderr
    assert lines[2].split() == ["0", "100000", "65536"]
    assert lines[3].split() == ["0", "100000", "65536"]
    assert lines[4] == "nobody:nogroup"  # host root owns the rootfs: unmapped in here
    assert lines[5] != os.readlink("/proc/self/ns/user")

    # From the host, the container's root is uid 100000.
    pid = run_detached(oci, tmp_path, bundle(args=["sleep", "60"], edit=edit), cid + "b")
    with open(f"/proc/{pid}/status") as f:
        ids = {ln.split(":")[0]: ln.split()[1:] for ln in f if ln.startswith(("Uid:", "Gid:"))}
    assert ids == {"Uid": ["100000"] * 4, "Gid": ["100000"] * 4}
    assert os.stat(f"/proc/{pid}").st_uid == 100000


def test_user_namespace_without_network_namespace(oci, bundle, cid, open_rootfs):
    # sysfs may only be mounted by the owner of the network namespace: the host's /sys is bound
    # instead, read-only, with the flags the entry asked for (runc 1.1 fails here).
    def edit(c: dict) -> None:
        userns()(c)
        c["root"]["path"] = open_rootfs
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]

    r = run(oci, bundle(args=["sh", "-c", "id -u; grep ' /sys ' /proc/self/mountinfo; "
                              "touch /sys/x 2>&1 || echo refused"], edit=edit), cid)
    lines = r.stdout.splitlines()
    assert lines[0] == "0"
    sys_line = lines[1].split()
    assert {"ro", "nosuid", "nodev", "noexec"} <= set(sys_line[5].split(","))
    assert lines[-1] == "refused"


def test_user_namespace_state_dir_is_private(oci, bundle, cid, tmp_path, open_rootfs):
    # The state root (--root) lies under pytest's 0700 tmp dir; the init must still reach its
    # exec fifo (runc opens it in the runtime; minirun before the user namespace exists).
    def edit(c: dict) -> None:
        userns()(c)
        c["root"]["path"] = open_rootfs

    b = bundle(args=["true"], edit=edit)
    os.makedirs(oci.root, exist_ok=True)
    os.chmod(oci.root, 0o700)
    oci.ids.add(cid)
    with open(tmp_path / "create.out", "w") as o:
        r = subprocess.run([oci.binary, "--root", str(oci.root), "create", "--bundle", b, cid],
                           stdout=o, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                           timeout=30)
    assert r.returncode == 0, (tmp_path / "create.out").read_text()
    assert oci.state(cid)["status"] == "created"
    oci("start", cid, check=True)
    deadline = time.monotonic() + 5
    while oci.state(cid)["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert oci.state(cid)["status"] == "stopped"


def test_exec_into_a_user_namespace_container(oci, bundle, cid, tmp_path, open_rootfs):
    def edit(c: dict) -> None:
        userns()(c)
        c["root"]["path"] = open_rootfs

    pid = run_detached(oci, tmp_path, bundle(args=["sleep", "60"], edit=edit), cid)
    r = oci("exec", cid, "sh", "-c", "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "0" and lines[1].split() == ["0", "100000", "65536"]
    assert lines[2] == os.readlink(f"/proc/{pid}/ns/user")
    r = oci("exec", "--user", "1000:1000", cid, "id", "-u")
    assert r.stdout == "1000\n", r.stderr


def test_terminal_in_a_user_namespace(oci, bundle, cid, tmp_path, open_rootfs, console_server):
    # The console socket lies under pytest's 0700 tmp dir, out of reach of host uid 100000: the
    # runtime connects to it before the user namespace exists (runc does it in the parent).
    def edit(c: dict) -> None:
        userns()(c)
        c["root"]["path"] = open_rootfs

    srv = console_server()
    b = bundle(args=["sh", "-c", "tty; id -u"], terminal=True, edit=edit)
    oci.ids.add(cid)
    with open(tmp_path / "create.out", "w") as o:
        r = subprocess.run([oci.binary, "--root", str(oci.root), "create", "--console-socket",
                            srv.path, "--bundle", b, cid], stdin=subprocess.DEVNULL, stdout=o,
                           stderr=subprocess.STDOUT, timeout=30)
    assert r.returncode == 0, (tmp_path / "create.out").read_text()
    master = srv.master()
    oci("start", cid, check=True)
    out = srv.read_until(master).replace("\r\n", "\n").split()
    assert out[0] in ("/dev/console", "/dev/pts/0") and out[1] == "0", out


# --- no mount namespace: the runtime's is inherited (kernel/host_mountns.py) ----------------------


def mounts_at_or_below(path: str) -> list[str]:
    """Mount points at or below `path` in our own (the host's) mount table."""
    with open("/proc/self/mountinfo") as f:
        points = [ln.split()[4] for ln in f]
    return [p for p in points if p == path or p.startswith(path + "/")]


def no_namespaces(cfg: dict) -> None:
    cfg["linux"]["namespaces"] = []
    cfg.pop("hostname", None)  # a hostname needs a UTS namespace of its own


def test_unlisted_namespaces_are_the_runtimes(oci, bundle, cid, tmp_path):
    """runtime-spec (config-linux.md): a namespace type not listed is inherited from the
    runtime, the mount namespace too (runtime-tools' linux_ns_itype). Its mounts are then made
    in the host's mount table, below the rootfs, and the container is chroot()ed into it."""
    b = bundle(args=["sleep", "60"], edit=no_namespaces, own_rootfs=True)
    rootfs = os.path.join(b, "rootfs")
    (Path(rootfs) / "only-in-this-rootfs").write_text("")
    create(oci, tmp_path, b, cid)
    pid = oci.state(cid)["pid"]
    assert host_ns(pid) == host_ns()
    assert os.path.realpath(f"/proc/{pid}/root") == os.path.realpath(rootfs)
    assert {rootfs, f"{rootfs}/proc", f"{rootfs}/dev"} <= set(mounts_at_or_below(rootfs))

    oci("start", cid, check=True)
    r = oci("exec", cid, "ls", "/")  # no namespace to join: exec enters the same root
    assert r.returncode == 0 and "only-in-this-rootfs" in r.stdout.split(), r.stderr

    oci("delete", "--force", cid, check=True)
    assert mounts_at_or_below(rootfs) == []


def test_no_mount_namespace_delete_of_a_stopped_container_unmounts(oci, bundle, cid, tmp_path):
    """The container's exit cannot take its mounts away (they are the host's): delete does."""
    def edit(cfg: dict) -> None:
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"]
                                      if n["type"] != "mount"]
    b = bundle(args=["true"], edit=edit, own_rootfs=True)
    rootfs = os.path.join(b, "rootfs")
    create(oci, tmp_path, b, cid)
    oci("start", cid, check=True)
    assert poll(lambda: oci.state(cid)["status"] == "stopped")
    assert f"{rootfs}/proc" in mounts_at_or_below(rootfs)
    oci("delete", cid, check=True)
    assert mounts_at_or_below(rootfs) == []
    assert not (oci.root / cid).exists()


def test_no_mount_namespace_failed_create_leaves_no_mount(oci, bundle, cid, tmp_path):
    def edit(cfg: dict) -> None:
        no_namespaces(cfg)
        cfg["mounts"].append({"destination": "/data", "type": "bind",
                              "source": str(tmp_path / "no-such-dir"), "options": ["rbind"]})
    b = bundle(args=["true"], edit=edit, own_rootfs=True)
    r = launch(oci, tmp_path, "create", "--bundle", b, cid)
    assert r.returncode != 0 and "no-such-dir" in one_line_error(r.stderr)
    assert mounts_at_or_below(os.path.join(b, "rootfs")) == []
    assert not (oci.root / cid).exists()
