"""The front end's hardening, seen from inside by tests/integration/probe.sh: namespaces,
capability sets, seccomp mode, NoNewPrivs, masked paths, a writable /proc/sys or not, mount
flags, host devices, and which syscalls the kernel lets through (the static probe). Asserted for
the default, --privileged, --cap-drop ALL, --userns-remap and the --security-opt choices."""

from __future__ import annotations

import json
import os

import pytest

from helpers import pairs

DOCKER_CAPS = "00000000a80425fb"  # Docker's 14 default capabilities


def own_bounding() -> str:
    with open("/proc/self/status") as f:
        return next(ln.split()[1] for ln in f if ln.startswith("CapBnd:"))


def probe(mr, probe_dir, *flags: str) -> dict[str, str]:
    out = mr.ok("run", "--rm", "--network", "none", "-v", f"{probe_dir}:/t:ro", *flags,
                "busybox", "/t/probe.sh")
    return pairs(out)


def host_ns(name: str) -> str:
    return os.readlink(f"/proc/self/ns/{name}")


def test_default_hardening(mr, probe_dir):
    p = probe(mr, probe_dir)
    for ns in ("ipc", "mnt", "net", "pid", "uts"):
        assert p[f"ns.{ns}"] != host_ns(ns), ns
    assert p["ns.user"] == host_ns("user")  # opt-in only, as in Docker
    assert (p["CapEff"], p["CapPrm"], p["CapBnd"], p["CapInh"], p["CapAmb"]) == \
        (DOCKER_CAPS, DOCKER_CAPS, DOCKER_CAPS, "0" * 16, "0" * 16)
    assert p["Seccomp"] == "2" and p["NoNewPrivs"] == "0"
    assert p["path./proc/keys"] == p["path./proc/timer_list"] == p["path./sys/firmware"] == "masked"
    assert p["procsys"] == "read-only" and p["mount./sys"] == "ro" and p["mount./proc/sys"] == "ro"
    assert p["blockdevs"] == "0"
    # Docker's seccomp profile: keyrings, BPF and new user namespaces refused; clone3 ENOSYS
    # (so glibc falls back to clone, whose flags the filter can see); mount refused (no cap)
    assert (p["keyctl"], p["bpf"], p["unshare_user"], p["mount"], p["clone3"]) == \
        ("EPERM", "EPERM", "EPERM", "EPERM", "ENOSYS")
    assert p["personality_query"] == "ok"


def test_privileged_lifts_everything(mr, probe_dir):
    p = probe(mr, probe_dir, "--privileged")
    assert p["CapEff"] == p["CapBnd"] == own_bounding()
    assert p["Seccomp"] == "0"
    assert p["path./proc/keys"] == "visible" and p["path./sys/firmware"] == "visible"
    assert p["procsys"] == "writable" and p["mount./sys"] == "rw" and "mount./proc/sys" not in p
    host_blocks = sum(1 for d in os.listdir("/dev") if os.path.exists(f"/dev/{d}") and
                      __import__("stat").S_ISBLK(os.stat(f"/dev/{d}").st_mode))
    assert int(p["blockdevs"]) == host_blocks > 0  # the host's devices, as Docker gives them
    assert (p["keyctl"], p["mount"], p["unshare_user"]) == ("ok", "ok", "ok")


def test_cap_drop_all(mr, probe_dir):
    p = probe(mr, probe_dir, "--cap-drop", "ALL")
    assert p["CapEff"] == p["CapPrm"] == p["CapBnd"] == "0" * 16
    assert p["Seccomp"] == "2"
    r = mr("run", "--rm", "--network", "none", "--cap-drop", "ALL", "busybox", "chown", "1", "/tmp")
    assert r.returncode == 1 and "Operation not permitted" in r.stderr


def test_cap_add_widens_the_filter_too(mr, probe_dir):
    """Docker's profile follows the capabilities: with CAP_SYS_ADMIN, mount and unshare pass."""
    p = probe(mr, probe_dir, "--cap-add", "SYS_ADMIN")
    assert p["mount"] == "ok" and p["unshare_user"] == "ok" and p["keyctl"] == "EPERM"


def test_userns_remap(mr, probe_dir, subids, searchable):
    searchable(mr.root, probe_dir)
    p = probe(mr, probe_dir, "--userns-remap", "default")
    first = subids("minirun")
    assert p["uid_map"] == f"0:{first}:65536"
    assert p["ns.user"] != host_ns("user")
    assert p["CapEff"] == DOCKER_CAPS and p["Seccomp"] == "2"  # root in there, hardened as usual
    assert p["procsys"] == "read-only"


@pytest.mark.parametrize("opt,key,want", [
    ("no-new-privileges", "NoNewPrivs", "1"),
    ("no-new-privileges=true", "NoNewPrivs", "1"),
    ("seccomp=unconfined", "Seccomp", "0"),
    ("systempaths=unconfined", "path./proc/keys", "visible"),
])
def test_security_opts(mr, probe_dir, opt, key, want):
    assert probe(mr, probe_dir, "--security-opt", opt)[key] == want


def test_a_seccomp_profile_file(mr, tmp_path):
    prof = tmp_path / "p.json"
    prof.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 122}]}))
    r = mr("run", "--rm", "--network", "none", "--security-opt", f"seccomp={prof}", "busybox",
           "mkdir", "/x")
    assert r.returncode == 1 and "Disk quota exceeded" in r.stderr
    mr.ok("create", "--name", "sp", "--security-opt", f"seccomp={prof}", "busybox", "true")
    prof.unlink()  # kept by content, as Docker keeps it: the file can go
    assert mr("start", "-a", "sp").returncode == 0
    opts = mr.record("sp")["HostConfig"]["SecurityOpt"]
    assert opts and opts[0].startswith("seccomp={")


@pytest.mark.parametrize("opt,msg", [
    ("seccomp=/no/such.json", "cannot read the profile"),
    ("apparmor=myprofile", "no AppArmor or SELinux"),
    ("bogus", "unknown option"),
])
def test_bad_security_opts_are_one_line_125(mr, opt, msg):
    r = mr("run", "--rm", "--security-opt", opt, "busybox", "true")
    assert r.returncode == 125 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_bad_profile_names_the_field(mr, tmp_path):
    prof = tmp_path / "bad.json"
    prof.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_SOMETIMES"}]}))
    r = mr("run", "--rm", "--security-opt", f"seccomp={prof}", "busybox", "true")
    assert r.returncode == 125 and "syscalls[0].action" in r.stderr
    assert "Traceback" not in r.stderr


def test_exec_is_filtered_like_the_container(mr, probe_dir):
    mr.ok("run", "-d", "--name", "fx", "-v", f"{probe_dir}:/t:ro", "busybox", "sleep", "60")
    assert mr.ok("exec", "fx", "/t/probe", "keyctl").strip() == "keyctl=EPERM"
    assert "Seccomp:\t2" in mr.ok("exec", "fx", "cat", "/proc/self/status")


def test_a_volume_on_an_image_symlink_stays_in_the_container(mr, tmp_path, rootfs_dir):
    """The image's /data is a symlink to the host's /etc: the volume is mounted on the
    container's /etc (resolved inside its root) and seeded from it, never from the host's."""
    import tarfile

    tar = tmp_path / "img.tar"
    with tarfile.open(tar, "w") as t:
        t.add(rootfs_dir, arcname=".", filter=lambda i: i)
        link = tarfile.TarInfo("./data")
        link.type, link.linkname = tarfile.SYMTYPE, "/../../../etc"
        t.addfile(link)
    mr.ok("import", str(tar), "linky:1")
    host_mounts = open("/proc/self/mountinfo").read()
    out = mr.ok("run", "--rm", "--network", "none", "-v", "lv:/data", "linky:1", "sh", "-c",
                "grep -c ' /etc ' /proc/self/mountinfo; ls /etc/passwd; touch /data/mark")
    assert out.split() == ["1", "/etc/passwd"]
    assert not os.path.exists("/etc/mark") and open("/proc/self/mountinfo").read() == host_mounts
    vol = json.loads(mr.ok("volume", "inspect", "lv"))[0]["Mountpoint"]
    assert os.path.exists(os.path.join(vol, "mark")) and os.path.exists(os.path.join(vol, "passwd"))
    with open(os.path.join(vol, "passwd")) as a, open(os.path.join(rootfs_dir, "etc", "passwd")) as b:
        assert a.read() == b.read()  # seeded from the image's /etc, not the host's
    mr("volume", "rm", "lv")
    mr("rmi", "linky:1")
