"""Regression tests for container escapes: runc's CVE lessons, each attack tried and shown to fail.

CVE-2024-21626: a host directory fd leaked into the container lets "cwd": "/proc/self/fd/N"
start it inside the host's filesystem (minirun's init once held such an fd on its state dir).
CVE-2019-5736: a `#!/proc/self/exe` program makes the runtime run its own host binary inside
the container, which can then overwrite it. CVE-2025-31133 / -52565: /dev/null or /dev/console
swapped for a symlink turns a mask or a console bind into a window on a host file. Mount
targets are pinned (O_PATH) and checked to be in the rootfs (CVE-2021-30465). Every container
gets a session keyring of its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from helpers import launch, one_line_error, run


@pytest.mark.parametrize("fd", [3, 4, 5, 6, 7])
def test_cwd_through_a_leaked_fd_is_refused(oci, bundle, cid, tmp_path, fd):
    b = bundle(args=["sh", "-c", "pwd; ls ..; touch escaped"], cwd=f"/proc/self/fd/{fd}")
    r = oci("run", "--bundle", b, cid)
    assert r.returncode != 0
    assert "process.cwd" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not list((tmp_path / "oci-state").rglob("escaped"))


def test_cwd_symlink_into_proc_is_refused(oci, bundle, cid, tmp_path):
    b = bundle(args=["pwd"], own_rootfs=True, cwd="/work")
    os.symlink("/proc/self/fd/3", os.path.join(b, "rootfs", "work"))
    r = oci("run", "--bundle", b, cid)
    assert r.returncode != 0 and "resolves through /proc" in r.stderr
    # nothing was created in the image by following the host path the link points at
    assert sorted(os.listdir(os.path.join(b, "rootfs", "tmp"))) == []


def test_only_stdio_is_open_in_the_container(oci, bundle, cid):
    r = oci("run", "--bundle", bundle(args=["sh", "-c", "ls /proc/self/fd"]), cid)
    # 0 1 2, plus the directory fd `ls` itself opens
    assert r.returncode == 0
    assert [int(x) for x in r.stdout.split()][:3] == [0, 1, 2] and len(r.stdout.split()) <= 4


def test_exec_cwd_through_a_leaked_fd_is_refused(oci, bundle, cid, tmp_path):
    assert launch(oci, tmp_path, "run", "--detach", "--bundle", bundle(args=["sleep", "60"]),
                  cid).returncode == 0
    for fd in (3, 4, 5):
        r = oci("exec", "--cwd", f"/proc/self/fd/{fd}", cid, "pwd")
        assert r.returncode != 0, r.stdout
    r = oci("exec", cid, "ls", "/proc/self/fd")
    assert [int(x) for x in r.stdout.split()][:3] == [0, 1, 2] and len(r.stdout.split()) <= 4


# --- CVE-2019-5736: the runtime's own binary through /proc/self/exe ---------------------------------

EVIL = "#!/proc/self/exe\nthis would run the host's interpreter inside the container\n"


def interpreter_digest() -> str:
    with open(os.path.realpath(sys.executable), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def evil_bundle(bundle, args):
    b = bundle(args=args, own_rootfs=True)
    p = Path(b) / "rootfs" / "evil"
    p.write_text(EVIL)
    p.chmod(0o755)
    return b


def test_proc_self_exe_program_is_refused_by_run(oci, bundle, cid):
    before = interpreter_digest()
    r = oci("run", "--bundle", evil_bundle(bundle, ["/evil"]), cid)
    assert r.returncode == 126 and "CVE-2019-5736" in r.stderr
    assert interpreter_digest() == before


def test_proc_self_exe_program_is_refused_by_exec(oci, bundle, cid, tmp_path):
    b = evil_bundle(bundle, ["sleep", "60"])
    assert launch(oci, tmp_path, "run", "--detach", "--bundle", b, cid).returncode == 0
    r = oci("exec", cid, "/evil")
    assert r.returncode == 126 and "CVE-2019-5736" in r.stderr
    # and the program itself sees its own binary, never the runtime's
    assert oci("exec", cid, "readlink", "/proc/self/exe").stdout.strip() == "/bin/busybox"


def test_a_python_pid1_is_out_of_reach(oci, bundle, cid, tmp_path):
    """With --init PID 1 stays the runtime's interpreter for the container's life: it is not
    dumpable, so even root in the container cannot open its /proc/1/exe, mem or environ."""
    def edit(cfg):
        cfg["annotations"] = {"run.minirun.init": "true"}
        cfg["process"]["capabilities"] = {s: ["CAP_DAC_OVERRIDE", "CAP_KILL"] for s in
                                          ("bounding", "effective", "permitted")}
    b = bundle(args=["sleep", "60"], edit=edit)
    assert launch(oci, tmp_path, "run", "--detach", "--bundle", b, cid).returncode == 0
    r = oci("exec", cid, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; "
            "readlink /proc/1/exe || echo exe-denied; head -c1 /proc/1/environ || echo env-denied")
    assert r.stdout.startswith("minirun-init -- sleep 60")
    assert "exe-denied" in r.stdout and "env-denied" in r.stdout


# --- CVE-2025-31133 and CVE-2025-52565: /dev/null and /dev/console swapped for symlinks ------------


def swap_hook(rootfs: str, name: str) -> dict:
    """A createContainer hook (in the container's mount namespace, before pivot_root) that
    does what a racing attacker would: /dev/NAME becomes a symlink to a host-global file."""
    return {"createContainer": [{"path": "/bin/sh", "args": [
        "sh", "-c", f"rm -f {rootfs}/dev/{name}; ln -s /proc/sys/kernel/core_pattern "
                    f"{rootfs}/dev/{name}"]}]}


def test_masking_with_a_swapped_dev_null_is_refused(oci, bundle, cid, tmp_path):
    before = Path("/proc/sys/kernel/core_pattern").read_text()
    b = bundle(args=["sh", "-c", "echo '|/tmp/pwn' > /proc/keys"], own_rootfs=True)
    cfg = json.loads((Path(b) / "config.json").read_text())
    cfg["hooks"] = swap_hook(os.path.join(b, "rootfs"), "null")
    (Path(b) / "config.json").write_text(json.dumps(cfg))
    r = oci("run", "--bundle", b, cid)
    msg = one_line_error(r.stderr)
    assert r.returncode != 0 and "/dev/null" in msg and "refusing" in msg
    assert Path("/proc/sys/kernel/core_pattern").read_text() == before
    assert not (tmp_path / "oci-state" / cid).exists()


def test_console_over_a_swapped_symlink_is_the_pty(oci, bundle, cid, console_server):
    srv = console_server()
    b = bundle(args=["sh", "-c", "ls -l /dev/console; grep -c core_pattern /proc/self/mountinfo"],
               own_rootfs=True, terminal=True)
    cfg = json.loads((Path(b) / "config.json").read_text())
    cfg["hooks"] = swap_hook(os.path.join(b, "rootfs"), "console")
    (Path(b) / "config.json").write_text(json.dumps(cfg))
    r = oci("run", "--detach", "--console-socket", srv.path, "--bundle", b, cid)
    assert r.returncode == 0, r.stderr
    out = srv.read_until(srv.master())
    assert out.lstrip().startswith("crw") and " 136, " in out  # a pty slave, not a symlink
    assert out.split()[-1] == "0"  # core_pattern is mounted nowhere


def test_mount_targets_are_looked_up_in_the_root_by_fd(tmp_path):
    """What mount_one does with a destination (kernel/resolve.py): the fd names a directory
    inside the rootfs, whatever symlink is on the way; a symlink in the last place is kept as
    the link (O_NOFOLLOW), never followed to the host's /etc."""
    from minirun.kernel import resolve

    root = tmp_path / "rootfs"
    (root / "d").mkdir(parents=True)
    (root / "etc").mkdir()
    os.symlink("/etc", root / "link")
    for path, where in (("/d", root / "d"), ("/link", root / "etc"), ("/link/", root / "etc"),
                        ("/../../link", root / "etc")):
        fd = resolve.open_in(str(root), path, os.O_PATH)
        try:
            assert os.readlink(f"/proc/self/fd/{fd}") == str(where), path
        finally:
            os.close(fd)
    fd = resolve.open_in(str(root), "/link", os.O_PATH | os.O_NOFOLLOW)
    try:
        assert os.readlink(f"/proc/self/fd/{fd}") == str(root / "link")
    finally:
        os.close(fd)


# --- a session keyring per container ----------------------------------------------------------


def test_each_container_has_its_own_session_keyring(oci, bundle, cid, probe):
    def edit(cfg):
        cfg["mounts"].append({"destination": "/probe", "type": "bind", "source": probe,
                              "options": ["bind", "ro"]})
    b = bundle(args=["/probe", "keyring"], edit=edit)
    one = run(oci, b, cid).stdout.strip()
    two = run(oci, b, cid + "x").stdout.strip()
    assert one.endswith(";" + cid) and two.endswith(";" + cid + "x")
    r = run(oci, b, cid + "y", "--no-new-keyring").stdout.strip()
    assert not r.endswith(cid + "y")  # the caller's own keyring, as asked


def test_an_image_dev_symlink_stays_in_the_rootfs(oci, bundle, cid, tmp_path):
    """CVE-2026-41579's shape: the image's /dev is a symlink to a host path. The /dev tmpfs and
    its device nodes land inside the rootfs, wherever the link points."""
    outside = tmp_path / "host-dev"
    outside.mkdir()
    b = bundle(args=["sh", "-c", "ls /dev/null && echo ok"], own_rootfs=True)
    rootfs = Path(b) / "rootfs"
    shutil.rmtree(rootfs / "dev")
    os.symlink(str(outside), rootfs / "dev")
    r = oci("run", "--bundle", b, cid)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["/dev/null", "ok"]
    assert os.listdir(outside) == []  # nothing on the host path
    inside = rootfs / str(outside).lstrip("/")
    assert inside.is_dir()  # the link was followed inside the rootfs
