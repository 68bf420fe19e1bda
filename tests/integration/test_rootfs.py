"""The container's filesystem: config.json's mounts, /dev, root.readonly, maskedPaths,
readonlyPaths, rootfsPropagation, --no-pivot, and that nothing leaks onto the host.

Each test reads the mount table from inside (/proc/self/mountinfo printed by the container's
shell) and, where it matters, looks at the host too (its own mountinfo, the bind-mounted dirs).
The default spec's mount points are compared with runc's for the same bundle (the oracle).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers import run
from hostfeatures import cgroup_layout, need


# --- helpers -----------------------------------------------------------------------------------


def unescape(path: str) -> str:
    return path.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n") \
        .replace("\\134", "\\")


class MountEntry:
    """One line of /proc/PID/mountinfo."""

    def __init__(self, line: str) -> None:
        pre, _, post = line.partition(" - ")
        f = pre.split()
        self.root, self.point = unescape(f[3]), unescape(f[4])
        self.opts = set(f[5].split(","))
        self.optional = f[6:]  # shared:N master:N unbindable ...
        p = post.split()
        self.fstype, self.source = p[0], p[1]
        self.super = set(p[2].split(",")) if len(p) > 2 else set()

    def __repr__(self) -> str:
        return f"<{self.point} {self.fstype} {','.join(sorted(self.opts))}>"


def parse_mountinfo(text: str) -> dict[str, MountEntry]:
    """mount point -> its topmost entry (a later line over the same point hides earlier ones)."""
    out = {}
    for line in text.splitlines():
        if " - " in line:
            e = MountEntry(line)
            out[e.point] = e
    return out


def host_mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return sorted(" ".join(ln.split()[3:5]) for ln in f)


MOUNTINFO = ["cat", "/proc/self/mountinfo"]


def mountinfo_of(rt, bundle, cid: str, *flags: str, **kw) -> dict[str, MountEntry]:
    return parse_mountinfo(run(rt, bundle(args=MOUNTINFO, **kw), cid, *flags).stdout)


# --- the default spec's mounts -------------------------------------------------------------------


def test_default_mount_table(oci, bundle, cid):
    m = mountinfo_of(oci, bundle, cid)
    root = m["/"]
    assert "ro" in root.opts  # root.readonly is true in the default spec

    assert m["/proc"].fstype == "proc"
    dev = m["/dev"]
    assert dev.fstype == "tmpfs" and "nosuid" in dev.opts
    assert {"mode=755", "size=65536k"} <= dev.super
    pts = m["/dev/pts"]
    assert pts.fstype == "devpts" and {"nosuid", "noexec"} <= pts.opts
    assert {"mode=620", "ptmxmode=666", "gid=5"} <= pts.super
    shm = m["/dev/shm"]
    assert shm.fstype == "tmpfs" and {"nosuid", "nodev", "noexec"} <= shm.opts
    assert "size=65536k" in shm.super
    mq = m["/dev/mqueue"]
    assert mq.fstype == "mqueue" and {"nosuid", "nodev", "noexec"} <= mq.opts
    sysfs = m["/sys"]
    assert sysfs.fstype == "sysfs" and {"ro", "nosuid", "nodev", "noexec"} <= sysfs.opts

    if cgroup_layout() == "v2":  # the one hierarchy, read-only, at /sys/fs/cgroup itself
        cg = m["/sys/fs/cgroup"]
        assert cg.fstype == "cgroup2" and "ro" in cg.opts, cg
        return
    cg = {p: e for p, e in m.items() if p.startswith("/sys/fs/cgroup/")}
    assert cg, f"no cgroup mounts under /sys/fs/cgroup: {sorted(m)}"
    for p, e in cg.items():
        assert e.fstype in ("cgroup", "cgroup2"), (p, e)
        assert "ro" in e.opts, f"{p} is writable: {e}"
    # Every v1 hierarchy of the host is there, by its controller names.
    v1 = [e for e in cg.values() if e.fstype == "cgroup"]
    assert any("memory" in e.super for e in v1) and any("pids" in e.super for e in v1)


def test_default_mount_points_match_runc(oci, runc, bundle, cid):
    b = bundle(args=MOUNTINFO)
    ours = set(parse_mountinfo(run(oci, b, cid).stdout))
    theirs = set(parse_mountinfo(run(runc, b, cid + "-runc").stdout))
    # runc 1.1 leaves the hybrid layout's cgroup2 "unified" hierarchy out of the container;
    # minirun mounts it (the container's cgroup exists there too). Every other point is equal.
    assert ours - {"/sys/fs/cgroup/unified"} == theirs - {"/sys/fs/cgroup/unified"}


def test_host_mount_table_unchanged(oci, bundle, cid):
    before = host_mounts()
    run(oci, bundle(args=MOUNTINFO), cid)
    run(oci, bundle(args=MOUNTINFO, own_rootfs=True), cid + "b", "--no-pivot")
    after = host_mounts()
    # A netns another test adds meanwhile is a mount on /run/netns: not ours to judge here.
    new = [m for m in set(after) - set(before) if "/run/netns/" not in m]
    gone = [m for m in set(before) - set(after) if "/run/netns/" not in m]
    assert not new and not gone, f"host mounts changed: new {new}, gone {gone}"


# --- root.readonly --------------------------------------------------------------------------------


def test_readonly_root_refuses_writes(oci, bundle, cid):
    r = run(oci, bundle(args=["sh", "-c", "touch /x; echo rc=$?"]), cid)
    assert "rc=1" in r.stdout
    assert "Read-only file system" in r.stderr


def test_writable_root(oci, bundle, cid):
    b = bundle(args=["sh", "-c", "touch /x && echo made"], own_rootfs=True,
               edit=lambda c: c["root"].update(readonly=False))
    r = run(oci, b, cid)
    assert r.stdout == "made\n", r.stderr
    assert (Path(b) / "rootfs" / "x").exists()
    assert "ro" not in parse_mountinfo(run(oci, bundle(
        args=MOUNTINFO, own_rootfs=True, edit=lambda c: c["root"].update(readonly=False)),
        cid + "b").stdout)["/"].opts


# --- config.json mounts ---------------------------------------------------------------------------


def test_bind_mounts_rw_and_ro_with_flags(oci, bundle, cid, tmp_path):
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "hello").write_text("from the host\n")

    def edit(c: dict) -> None:
        c["mounts"] += [
            {"destination": "/mnt/rw", "type": "bind", "source": str(rw),
             "options": ["rbind", "rw", "nosuid", "nodev", "noexec"]},
            {"destination": "/mnt/ro", "type": "bind", "source": str(ro),
             "options": ["bind", "ro"]},
        ]

    script = ("echo inside > /mnt/rw/new && echo rw-ok; cat /mnt/ro/hello; "
              "echo x > /mnt/ro/new || echo ro-refused; cat /proc/self/mountinfo")
    r = run(oci, bundle(args=["sh", "-c", script], edit=edit, own_rootfs=True), cid)
    assert r.stdout.startswith("rw-ok\nfrom the host\nro-refused\n"), r.stdout + r.stderr
    assert "Read-only file system" in r.stderr
    assert (rw / "new").read_text() == "inside\n"
    assert not (ro / "new").exists()
    m = parse_mountinfo(r.stdout)
    assert {"rw", "nosuid", "nodev", "noexec"} <= m["/mnt/rw"].opts
    assert "ro" in m["/mnt/ro"].opts and "nosuid" not in m["/mnt/ro"].opts


def test_noexec_bind_mount_refuses_exec(oci, bundle, cid, tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    prog = d / "prog"
    prog.write_text("#!/bin/sh\necho ran\n")
    prog.chmod(0o755)

    def edit(c: dict) -> None:
        c["mounts"] += [{"destination": "/mnt/exec", "type": "bind", "source": str(d),
                         "options": ["rbind"]},
                        {"destination": "/mnt/noexec", "type": "bind", "source": str(d),
                         "options": ["rbind", "noexec"]}]

    r = run(oci, bundle(args=["sh", "-c", "/mnt/exec/prog; /mnt/noexec/prog || echo refused"],
                        edit=edit, own_rootfs=True), cid)
    assert r.stdout == "ran\nrefused\n", r.stderr


def test_tmpfs_with_size_and_mode(oci, bundle, cid):
    def edit(c: dict) -> None:
        c["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                            "options": ["nosuid", "size=1m", "mode=700"]})

    r = run(oci, bundle(args=["sh", "-c", "stat -c %a /data; echo hi > /data/f && cat /data/f; "
                              "cat /proc/self/mountinfo"], edit=edit, own_rootfs=True), cid)
    lines = r.stdout.splitlines()
    assert lines[:2] == ["700", "hi"], r.stdout + r.stderr
    e = parse_mountinfo(r.stdout)["/data"]
    assert e.fstype == "tmpfs" and "nosuid" in e.opts
    assert {"size=1024k", "mode=700"} <= e.super


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_mount_through_a_symlink_stays_in_the_rootfs(oci, bundle, cid, tmp_path, kind):
    hostdir = tmp_path / "somehostdir"
    hostdir.mkdir()
    (hostdir / "keep").write_text("host file\n")
    host_before = host_mounts()

    def edit(c: dict) -> None:
        c["mounts"].append({"destination": "/escape/sub", "type": "tmpfs", "source": "tmpfs",
                            "options": ["size=1m"]})

    b = bundle(args=["sh", "-c", "echo planted > /escape/sub/file && echo wrote; "
                     "ls /escape/sub; cat /proc/self/mountinfo"], edit=edit, own_rootfs=True)
    rootfs = Path(b) / "rootfs"
    # The image's symlink names a host path (or climbs out with ..): both resolve in the rootfs.
    target = str(hostdir) if kind == "absolute" else "../" * 12 + str(hostdir).lstrip("/")
    os.symlink(target, rootfs / "escape")
    r = run(oci, b, cid)
    assert r.stdout.startswith("wrote\nfile\n"), r.stdout + r.stderr

    # Nothing reached the host directory, and no mount appeared on the host.
    assert sorted(p.name for p in hostdir.iterdir()) == ["keep"]
    assert not any(str(hostdir) in m for m in host_mounts())
    assert [m for m in host_mounts() if m not in host_before and "/run/netns/" not in m] == []
    # Inside, the tmpfs sits at the link's target *within* the rootfs...
    inside = parse_mountinfo(r.stdout)
    assert inside[str(hostdir) + "/sub"].fstype == "tmpfs"
    # ...whose directory was made in the bundle's rootfs, not on the host.
    assert (rootfs / str(hostdir).lstrip("/") / "sub").is_dir()


def test_bind_mount_through_a_symlink_stays_in_the_rootfs(oci, bundle, cid, tmp_path):
    src, hostdir = tmp_path / "src", tmp_path / "hostdir"
    src.mkdir()
    hostdir.mkdir()

    def edit(c: dict) -> None:
        c["mounts"].append({"destination": "/link", "type": "bind", "source": str(src),
                            "options": ["rbind", "rw"]})

    b = bundle(args=["sh", "-c", "echo via-link > /link/f"], edit=edit, own_rootfs=True)
    os.symlink(str(hostdir), Path(b) / "rootfs" / "link")
    run(oci, b, cid)
    assert (src / "f").read_text() == "via-link\n"
    assert list(hostdir.iterdir()) == []


# --- maskedPaths and readonlyPaths ----------------------------------------------------------------


def test_masked_paths(oci, bundle, cid):
    # /proc/kcore exists only with CONFIG_PROC_KCORE: masked, it reads as empty; absent, the
    # read fails. Either way the container reads none of the kernel's memory.
    script = ("echo kcore=$(wc -c < /proc/kcore 2>/dev/null || echo absent); "
              "echo keys=$(wc -c < /proc/keys); echo timer_list=$(wc -c < /proc/timer_list); "
              "echo acpi=$(ls -A /proc/acpi | wc -l); "
              "echo firmware=$(ls -A /sys/firmware | wc -l); "
              "touch /proc/acpi/x 2>/dev/null || echo acpi-ro")
    r = run(oci, bundle(args=["sh", "-c", script]), cid)
    out = r.stdout.split()
    assert out[0] in ("kcore=0", "kcore=absent"), r.stdout + r.stderr
    assert out[1:] == ["keys=0", "timer_list=0", "acpi=0", "firmware=0", "acpi-ro"], \
        r.stdout + r.stderr


def test_masked_path_of_our_own(oci, bundle, cid):
    def edit(c: dict) -> None:
        c["linux"]["maskedPaths"] += ["/etc/passwd", "/home", "/does/not/exist"]

    r = run(oci, bundle(args=["sh", "-c", "wc -c < /etc/passwd; ls -A /home | wc -l; "
                              "cat /etc/group | head -n1"], edit=edit), cid)
    assert r.stdout.split() == ["0", "0", "root:x:0:"], r.stderr


def test_readonly_paths(oci, bundle, cid):
    # Give the process every capability it may have, so only the read-only mount can refuse.
    def edit(c: dict) -> None:
        caps = ["CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE", "CAP_NET_ADMIN"]
        for s in ("bounding", "effective", "permitted"):
            c["process"]["capabilities"][s] += caps

    script = ("echo 1 > /proc/sys/net/ipv4/ip_forward || echo sys-refused; "
              "grep -E ' /proc/(sys|bus|fs|irq|sysrq-trigger) ' /proc/self/mountinfo | "
              "awk '{print $5, $6}'")
    r = run(oci, bundle(args=["sh", "-c", script], edit=edit), cid)
    lines = r.stdout.splitlines()
    assert lines[0] == "sys-refused", r.stdout + r.stderr
    assert "Read-only file system" in r.stderr
    ro = {ln.split()[0]: ln.split()[1] for ln in lines[1:]}
    for p in ("/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sysrq-trigger"):
        if os.path.exists(p):  # this kernel may lack some (no /proc/sysrq-trigger here)
            assert ro.get(p, "").startswith("ro"), (p, ro)


# --- /dev -----------------------------------------------------------------------------------------


def test_default_devices_and_symlinks(oci, bundle, cid):
    script = ("for d in null zero full random urandom tty; do "
              "echo $d $(stat -c '%F %t:%T %a' /dev/$d); done; "
              "for l in fd stdin stdout stderr ptmx; do echo $l $(readlink /dev/$l); done; "
              "echo hi > /dev/null && echo null-ok; head -c 4 /dev/zero | wc -c")
    r = run(oci, bundle(args=["sh", "-c", script]), cid)
    got = dict(ln.split(" ", 1) for ln in r.stdout.splitlines() if " " in ln)
    for name, dev in (("null", "1:3"), ("zero", "1:5"), ("full", "1:7"), ("random", "1:8"),
                      ("urandom", "1:9"), ("tty", "5:0")):
        assert got[name] == f"character special file {dev} 666", (name, got)
    assert got["fd"] == "/proc/self/fd"
    assert got["stdin"] == "/proc/self/fd/0"
    assert got["stdout"] == "/proc/self/fd/1"
    assert got["stderr"] == "/proc/self/fd/2"
    assert got["ptmx"] == "pts/ptmx"
    assert r.stdout.splitlines()[-2:] == ["null-ok", "4"]


def test_linux_devices_adds_nodes(oci, runc, bundle, cid):
    def edit(c: dict) -> None:
        c["linux"]["devices"] = [
            {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600,
             "uid": 0, "gid": 0},
            {"path": "/dev/sub/myzero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o640,
             "uid": 1000, "gid": 2000},
            {"path": "/dev/myfifo", "type": "p", "fileMode": 0o644},
        ]

    script = ("for d in mynull sub/myzero myfifo; do echo $d $(stat -c '%F %t:%T %a %u:%g' "
              "/dev/$d); done; echo hi > /dev/mynull && echo write-ok")
    b = bundle(args=["sh", "-c", script], edit=edit)
    out = run(oci, b, cid).stdout
    assert out.splitlines() == [
        "mynull character special file 1:3 600 0:0",
        "sub/myzero character special file 1:5 640 1000:2000",
        "myfifo fifo 0:0 644 0:0",
        "write-ok",
    ], out
    assert run(runc, b, cid + "-runc").stdout == out


# --- rootfsPropagation, --no-pivot ----------------------------------------------------------------


@pytest.mark.parametrize("prop", ["private", "rprivate", "slave", "rslave", "shared", "rshared",
                                  "unbindable", "runbindable"])
def test_rootfs_propagation(oci, bundle, cid, prop):
    before = host_mounts()
    b = bundle(args=MOUNTINFO, edit=lambda c: c["linux"].update(rootfsPropagation=prop))
    root = parse_mountinfo(run(oci, b, cid).stdout)["/"]
    tags = " ".join(root.optional)
    if "shared" in prop:
        assert "shared:" in tags, root.optional
    elif "unbindable" in prop:
        assert "unbindable" in tags, root.optional
    else:
        # Every host mount is private here, so a slave of it has no master: private either way.
        assert "shared:" not in tags and "unbindable" not in tags, root.optional
    assert [m for m in host_mounts() if m not in before and "/run/netns/" not in m] == []


def test_invalid_rootfs_propagation_is_refused(oci, bundle, cid):
    b = bundle(args=["true"], edit=lambda c: c["linux"].update(rootfsPropagation="sideways"))
    r = oci("run", "--bundle", b, cid)
    assert r.returncode != 0
    assert "rootfsPropagation" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_no_pivot(oci, bundle, cid):
    before = host_mounts()
    b = bundle(args=["sh", "-c", "ls /; cat /etc/hostname; cat /proc/self/mountinfo"],
               own_rootfs=True)
    r = run(oci, b, cid, "--no-pivot")
    names = r.stdout.split()
    assert "bin" in names and "etc" in names
    assert "boot" not in names and "usr" not in names  # the host's / is not what we see
    m = parse_mountinfo(r.stdout)
    assert m["/proc"].fstype == "proc" and "ro" in m["/"].opts
    assert [x for x in host_mounts() if x not in before and "/run/netns/" not in x] == []


# --- SELinux labels on a host without SELinux -----------------------------------------------------


def with_labels(cfg: dict) -> None:
    cfg["linux"]["mountLabel"] = "system_u:object_r:svirt_sandbox_file_t:s0:c715,c811"
    cfg["process"]["selinuxLabel"] = "system_u:system_r:svirt_lxc_net_t:s0:c124,c675"


def test_selinux_labels_are_ignored_without_selinux(oci, bundle, cid, tmp_path):
    """No SELinux here: a label means nothing to the kernel, so it is ignored, as crun does
    (runtime-tools' linux_mount_label), and said so under --debug, in --log when given."""
    need(not os.path.exists("/sys/fs/selinux/enforce"), "SELinux is enabled (labels refused)")
    b = bundle(args=["true"], edit=with_labels)
    r = oci("run", "--bundle", b, cid)
    assert r.returncode == 0 and r.stderr == ""

    r = oci("run", "--bundle", b, cid + "b", global_args=("--debug",))
    assert r.returncode == 0
    lines = r.stderr.splitlines()
    assert len(lines) == 2 and all(ln.startswith("minirun-oci: debug: ") for ln in lines)
    assert "linux.mountLabel" in lines[1] and "SELinux is not enabled" in lines[1]

    log = tmp_path / "log.json"
    r = oci("run", "--bundle", b, cid + "c",
            global_args=("--debug", "--log", str(log), "--log-format", "json"))
    assert r.returncode == 0 and r.stderr == ""
    entries = [json.loads(ln) for ln in log.read_text().splitlines()]
    assert [e["level"] for e in entries] == ["debug", "debug"]
    assert "process.selinuxLabel" in entries[0]["msg"]
