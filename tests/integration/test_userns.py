"""User namespaces: idmapped mounts in minirun-oci, a rootless `spec --rootless` bundle run by
an ordinary user, and the front end's --userns-remap / --userns=auto with the image and the
volumes owned by the container's root (idmapped, or copied with shifted owners).

Seen from inside (ids, owners, writes) and from the host (which uids own what, whose
subordinate ranges were used, nothing left behind).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import OCI, one_line_error, run
from hostfeatures import idmapped_mounts, need, unprivileged_userns

MAPS = {"uidMappings": [{"containerID": 0, "hostID": 300000, "size": 65536}],
        "gidMappings": [{"containerID": 0, "hostID": 300000, "size": 65536}]}


def in_userns(cfg: dict) -> None:
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"].update(json.loads(json.dumps(MAPS)))
    cfg["root"]["readonly"] = False


# --- minirun-oci: idmapped bind mounts --------------------------------------------------------


@pytest.fixture
def shared_dir(tmp_path, searchable):
    d = tmp_path / "shared"
    d.mkdir()
    (d / "f").write_text("host root's\n")
    searchable(d)
    return d


@pytest.mark.parametrize("how", ["explicit", "idmap-option"])
def test_idmapped_bind_mount(oci, bundle, cid, shared_dir, searchable, how):
    need(idmapped_mounts(str(shared_dir)), "the kernel cannot idmap a mount of this filesystem "
         "(Linux 5.12+; tmpfs from 6.3)")
    def edit(cfg):
        in_userns(cfg)
        m = {"destination": "/vol", "type": "bind", "source": str(shared_dir),
             "options": ["rbind"] + (["idmap"] if how == "idmap-option" else [])}
        if how == "explicit":
            m.update(json.loads(json.dumps(MAPS)))
        cfg["mounts"].append(m)
        cfg["mounts"].append({"destination": "/plain", "type": "bind", "source": str(shared_dir),
                              "options": ["rbind"]})
    b = bundle(args=["sh", "-c", "stat -c '%n %u %g' /vol/f /plain/f; echo new > /vol/g; "
                     "stat -c '%n %u %g' /vol/g"], own_rootfs=True, edit=edit)
    for d in ("vol", "plain"):
        (Path(b) / "rootfs" / d).mkdir()
    searchable(b)
    owners = {ln.split()[0]: ln.split()[1:] for ln in run(oci, b, cid).stdout.splitlines()}
    assert owners["/vol/f"] == ["0", "0"]  # host root's file is the container root's
    assert owners["/plain/f"] == ["65534", "65534"]  # without the idmap: nobody's
    assert owners["/vol/g"] == ["0", "0"]
    st = (shared_dir / "g").stat()
    assert (st.st_uid, st.st_gid) == (0, 0)  # written back through the map: root's on disk


@pytest.mark.parametrize("edit,msg", [
    (lambda c: c["mounts"].append({"destination": "/v", "type": "bind", "source": "/tmp",
                                   "options": ["idmap"]}), "needs a user namespace"),
    (lambda c: (in_userns(c), c["mounts"].append({"destination": "/v", "type": "tmpfs",
                                                  "source": "tmpfs", "options": ["idmap"]})),
     "only bind mounts"),
    (lambda c: (in_userns(c), c["mounts"].append({"destination": "/v", "type": "bind",
                                                  "source": "/tmp", "options": ["rbind"],
                                                  "uidMappings": MAPS["uidMappings"]})),
     "needs gidMappings"),
])
def test_idmapped_mount_errors_name_the_field(oci, bundle, cid, edit, msg):
    r = oci("create", "--bundle", bundle(edit=edit), cid)
    assert r.returncode != 0 and msg in one_line_error(r.stderr)


# --- minirun-oci as an ordinary user (spec --rootless) ----------------------------------------

USER = 12345


def need_rootless() -> None:
    need(shutil.which("setpriv"), "setpriv (util-linux) is not installed")
    need(unprivileged_userns(), "an ordinary user may not create a user namespace here "
         "(kernel.unprivileged_userns_clone, user.max_user_namespaces or an LSM forbids it)")
    r = subprocess.run(["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups", OCI,
                        "--version"], capture_output=True, text=True, timeout=30)
    need(r.returncode == 0, f"uid {USER} cannot run {OCI}: a directory above this checkout is "
         "not open to other users (e.g. a clone under /root)")


@pytest.fixture
def rootless_bundle(rootfs_dir, tmp_path_factory):
    """A bundle made by `spec --rootless` as uid 12345, in a directory that user owns."""
    top = Path("/tmp") / f"minirun-rootless-test-{os.getpid()}"
    shutil.rmtree(top, ignore_errors=True)
    top.mkdir(mode=0o755)
    b = top / "bundle"
    b.mkdir()
    shutil.copytree(rootfs_dir, b / "rootfs", symlinks=True)
    subprocess.run(["chown", "-R", f"{USER}:{USER}", str(top)], check=True)
    yield b
    # Whatever a failed test left: its containers (as the user), then any process of that uid.
    r = as_user("list", "-q", cwd=b)
    for cid in r.stdout.split():
        as_user("delete", "--force", cid, cwd=b)
    subprocess.run(["pkill", "-KILL", "-U", str(USER)], capture_output=True)
    shutil.rmtree(top, ignore_errors=True)


def as_user(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """minirun-oci as uid 12345. `create` gets files, not pipes, for its output: the
    container inherits them, and a pipe would stay open as long as it runs."""
    e = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "XDG_RUNTIME_DIR": str(cwd.parent / "xdg")}
    e.update(env or {})
    argv = ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups", OCI, *args]
    if args[0] != "create":
        return subprocess.run(argv, cwd=cwd, env=e, capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    out, err = cwd.parent / "create.out", cwd.parent / "create.err"
    with open(out, "w") as o, open(err, "w") as x:
        r = subprocess.run(argv, cwd=cwd, env=e, stdout=o, stderr=x, timeout=30,
                           stdin=subprocess.DEVNULL)
    return subprocess.CompletedProcess(argv, r.returncode, out.read_text(), err.read_text())


def test_rootless_run_as_an_ordinary_user(rootless_bundle):
    need_rootless()
    b = rootless_bundle
    assert as_user("spec", "--rootless", cwd=b).returncode == 0
    cfg = json.loads((b / "config.json").read_text())
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sh", "-c", "id -u; cat /proc/self/uid_map; touch /tmp/x && echo rw"]
    cfg["root"]["readonly"] = False
    (b / "config.json").write_text(json.dumps(cfg))
    r = as_user("run", "c1", cwd=b)
    assert r.returncode == 0, r.stderr
    out = r.stdout.split("\n")
    assert out[0] == "0" and out[1].split() == ["0", str(USER), "1"] and out[2] == "rw"
    st = (b / "rootfs" / "tmp" / "x").stat()
    assert st.st_uid == USER  # root inside is the user outside
    # the lifecycle verbs, state in $XDG_RUNTIME_DIR/minirun, no cgroup of its own
    cfg["process"]["args"] = ["sleep", "30"]
    (b / "config.json").write_text(json.dumps(cfg))
    assert as_user("create", "c2", cwd=b).returncode == 0
    state = json.loads(as_user("state", "c2", cwd=b).stdout)
    assert state["status"] == "created"
    assert (b.parent / "xdg" / "minirun" / "c2" / "state.json").exists()
    with open(f"/proc/{state['pid']}/status") as f:
        assert f"Uid:\t{USER}\t" in f.read()
    assert not list(Path("/sys/fs/cgroup").glob("*/minirun/c2"))  # none delegated: no cgroup
    assert as_user("start", "c2", cwd=b).returncode == 0
    assert as_user("kill", "c2", "KILL", cwd=b).returncode == 0
    assert as_user("delete", "--force", "c2", cwd=b).returncode == 0
    assert not (b.parent / "xdg" / "minirun" / "c2").exists()


def test_rootless_asking_for_limits_without_delegation_fails(rootless_bundle):
    need_rootless()
    b = rootless_bundle
    as_user("spec", "--rootless", cwd=b)
    cfg = json.loads((b / "config.json").read_text())
    cfg["process"]["terminal"] = False
    cfg["linux"]["resources"] = {"pids": {"limit": 10}}
    (b / "config.json").write_text(json.dumps(cfg))
    r = as_user("run", "c3", cwd=b)
    assert r.returncode != 0 and "Permission denied" in one_line_error(r.stderr)
    assert not (b.parent / "xdg" / "minirun" / "c3").exists()


# --- the front end: --userns-remap and --userns=auto -------------------------------------------


@pytest.fixture
def umr(mr, subids, searchable):
    searchable(mr.root)
    return mr


def host_uid_of(mr, name: str) -> int:
    pid = mr.record(name)["State"]["Pid"]
    with open(f"/proc/{pid}/status") as f:
        return int(next(ln.split()[1] for ln in f if ln.startswith("Uid:")))


def test_auto_gives_each_container_its_own_range(umr, subids):
    umr.ok("run", "-d", "--name", "a1", "--network", "none", "--userns", "auto", "busybox", "sleep", "60")
    umr.ok("run", "-d", "--name", "a2", "--network", "none", "--userns", "auto", "busybox", "sleep", "60")
    first = subids("minirun")
    u1, u2 = host_uid_of(umr, "a1"), host_uid_of(umr, "a2")
    assert u1 != u2 and first < u1 and first < u2  # block 0 stays the remap's
    assert (u1 - first) % 65536 == 0 and (u2 - first) % 65536 == 0
    maps = umr.record("a1")["HostConfig"]["IDMappings"]
    assert maps["UidMap"] == [[0, u1, 65536]]
    # root inside owns the image: it can change /etc; on the host that write is u1's
    umr.ok("exec", "a1", "sh", "-c", "echo x >> /etc/passwd")
    upper = umr.root / "containers" / umr.record("a1")["Id"] / "upper" / "etc" / "passwd"
    assert upper.stat().st_uid == u1
    small = umr.ok("run", "--rm", "--network", "none", "--userns", "auto:size=1000", "busybox",
                   "cat", "/proc/self/uid_map").split()
    assert small[2] == "1000" and int(small[1]) not in (u1, u2)


def test_remap_with_a_named_volume_and_exec(umr, subids):
    umr.ok("run", "-d", "--name", "r1", "--userns-remap", "default", "-v", "rv:/data",
           "busybox", "sleep", "60")
    assert host_uid_of(umr, "r1") == subids("minirun")
    out = umr.ok("exec", "r1", "sh", "-c", "id -u; touch /data/f; ls -ln /data/f; ls -ldn /")
    lines = out.splitlines()
    assert lines[0] == "0" and lines[1].split()[2] == "0" and lines[2].split()[2] == "0"
    vol = json.loads(umr.ok("volume", "inspect", "rv"))[0]["Mountpoint"]
    assert os.stat(os.path.join(vol, "f")).st_uid == 0  # the volume keeps the container's ids


def test_remap_where_idmapped_mounts_are_not_possible(umr, subids, monkeypatch):
    monkeypatch.setitem(umr.env, "MINIRUN_NO_IDMAP", "1")
    r = umr("run", "--rm", "--network", "none", "--userns-remap", "default", "busybox", "sh", "-c",
            "touch /etc/x && ls -ln /etc/x")
    assert r.returncode == 0, r.stderr
    assert "copying the image's layers with shifted owners" in r.stderr
    assert r.stdout.split()[2] == "0"


def test_cp_into_a_remapped_container_gives_files_to_its_root(umr, tmp_path):
    umr.ok("run", "-d", "--name", "cp1", "--network", "none", "--userns", "auto", "busybox", "sleep", "60")
    f = tmp_path / "hello"
    f.write_text("hi\n")
    umr.ok("cp", str(f), "cp1:/tmp/")
    assert umr.ok("exec", "cp1", "stat", "-c", "%u %g", "/tmp/hello").split() == ["0", "0"]


@pytest.mark.parametrize("flags,msg", [
    (["--userns", "auto", "--privileged"], "--privileged cannot be combined"),
    (["--userns", "sideways"], "use host, auto"),
    (["--userns", "auto", "--userns-remap", "default"], "pick one"),
    (["--userns-remap", "nosuchuser"], "no subordinate uids for nosuchuser"),
])
def test_userns_flag_errors(umr, flags, msg):
    r = umr("run", "--rm", *flags, "busybox", "true")
    assert r.returncode == 125 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert umr.ok("ps", "-aq") == ""


def test_an_unsearchable_root_is_named(mr, subids, tmp_path):
    os.chmod(mr.root, 0o700)  # (pytest's directories above it are 0700 too)
    r = mr("run", "--rm", "--network", "none", "--userns", "auto", "busybox", "true")
    assert r.returncode == 125 and "is not searchable by the container's root" in r.stderr
    assert mr.ok("ps", "-aq") == ""
