"""exec and logs; volumes and bind mounts; cp, diff and export: a container's data seen from both
sides."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile

from helpers import drive_pty, poll


# --- exec ---------------------------------------------------------------------------------------------


def test_exec_joins_every_namespace_and_the_cgroup(mr):
    mr.ok("run", "-d", "--name", "ex", "busybox", "sleep", "100")
    pid = mr.record("ex")["State"]["Pid"]
    for ns in ("net", "pid", "mnt", "uts", "ipc"):
        inside = mr.ok("exec", "ex", "readlink", f"/proc/self/ns/{ns}").strip()
        assert inside == os.readlink(f"/proc/{pid}/ns/{ns}"), ns
    cg = mr.ok("exec", "ex", "cat", "/proc/self/cgroup")
    with open(f"/proc/{pid}/cgroup") as f:
        assert sorted(cg.split()) == sorted(f.read().split())


def test_exec_env_workdir_user_and_exit_codes(mr):
    mr.ok("run", "-d", "--name", "ex2", "-e", "BASE=1", "busybox", "sleep", "100")
    out = mr.ok("exec", "-e", "X=2", "-w", "/tmp", "-u", "mini", "ex2", "sh", "-c",
                "echo $BASE $X; pwd; id -u")
    assert out.split() == ["1", "2", "/tmp", "1000"]
    assert mr("exec", "ex2", "sh", "-c", "exit 9").returncode == 9
    assert mr("exec", "ex2", "nope").returncode == 127
    assert mr.ok("exec", "-i", "ex2", "tr", "a", "b", input="aaa") == "bbb"


def test_exec_with_a_terminal(mr):
    mr.ok("run", "-d", "--name", "ex3", "busybox", "sleep", "100")
    code, out = drive_pty(["env", f"MINIRUN_ROOT={mr.root}", f"MINIRUN_RUNROOT={mr.runroot}",
                           *mr.argv("exec", "-it", "ex3", "sh")],
                          typed=b"tty; exit 3\r", until=b"# ", timeout=20)
    assert code == 3 and "/dev/pts/" in out


def test_exec_in_a_stopped_container_is_refused(mr):
    mr.ok("create", "--name", "ex4", "busybox", "true")
    r = mr("exec", "ex4", "true")
    assert r.returncode == 125 and "is not running" in r.stderr


# --- logs ---------------------------------------------------------------------------------------------


def test_logs_keep_streams_apart_tail_and_timestamps(mr):
    mr("run", "--name", "lg", "busybox", "sh", "-c", "echo a; echo b >&2; echo c; printf tail")
    r = mr("logs", "lg")
    assert (r.stdout, r.stderr) == ("a\nc\ntail", "b\n")
    assert mr.ok("logs", "--tail", "1", "lg") == "tail"  # (the order across streams is not kept)
    stamped = mr.ok("logs", "-t", "lg").splitlines()
    assert stamped[0].endswith(" a") and stamped[0][:4].isdigit() and "T" in stamped[0]
    cid = mr.record("lg")["Id"]
    lines = (mr.root / "containers" / cid / f"{cid}-json.log").read_text().splitlines()
    assert json.loads(lines[0])["stream"] == "stdout" and json.loads(lines[0])["log"] == "a\n"


def test_logs_follow_until_the_container_stops(mr):
    mr.ok("run", "-d", "--name", "lf", "busybox", "sh", "-c",
          "for i in 1 2 3; do echo $i; sleep 0.2; done")
    p = subprocess.run(mr.argv("logs", "-f", "lf"), env=mr.env, capture_output=True, text=True,
                       timeout=20)
    assert p.stdout.split() == ["1", "2", "3"]


# --- volumes and binds -----------------------------------------------------------------------------------


def test_two_containers_share_a_named_volume_and_it_outlives_them(mr):
    mr.ok("run", "--name", "writer", "-v", "shared:/data", "busybox", "sh", "-c",
          "echo from-writer > /data/msg")
    assert mr.ok("run", "--rm", "-v", "shared:/in:ro", "busybox", "cat", "/in/msg") == \
        "from-writer\n"
    mr.ok("rm", "writer")
    assert "shared" in mr.ok("volume", "ls", "-q").split()
    v = json.loads(mr.ok("volume", "inspect", "shared"))[0]
    assert v["Driver"] == "local" and v["Mountpoint"].endswith("/volumes/shared/_data")
    assert open(os.path.join(v["Mountpoint"], "msg")).read() == "from-writer\n"


def test_a_new_volume_is_seeded_from_the_image(mr):
    out = mr.ok("run", "--rm", "-v", "etcvol:/etc", "busybox", "sh", "-c", "ls /etc | sort")
    assert "passwd" in out.split()
    mp = json.loads(mr.ok("volume", "inspect", "etcvol"))[0]["Mountpoint"]
    assert "mini:x:1000" in open(os.path.join(mp, "passwd")).read()


def test_volume_rm_refuses_while_in_use_and_prune(mr):
    mr.ok("create", "--name", "holder", "-v", "busyvol:/x", "busybox", "true")
    r = mr("volume", "rm", "busyvol")
    assert r.returncode == 1 and "volume is in use" in r.stderr
    mr.ok("rm", "holder")
    mr.ok("volume", "create", "spare")
    assert mr.ok("volume", "prune", "-f") == "Total reclaimed space: 0B\n"  # named: kept
    assert set(mr.ok("volume", "prune", "-a", "-f").split()) >= {"busyvol", "spare"}


def test_anonymous_volumes_go_with_rm_v_and_with_rm(mr):
    mr.ok("run", "--rm", "-v", "/scratch", "busybox", "touch", "/scratch/x")
    assert mr.ok("volume", "ls", "-q") == ""
    mr.ok("run", "--name", "anon", "-v", "/scratch", "busybox", "true")
    assert len(mr.ok("volume", "ls", "-q").split()) == 1
    mr.ok("rm", "-v", "anon")
    assert mr.ok("volume", "ls", "-q") == ""


def test_bind_mounts_and_read_only(mr, tmp_path):
    (tmp_path / "h").write_text("host\n")
    r = mr("run", "--rm", "-v", f"{tmp_path}:/b:ro", "busybox", "sh", "-c",
           "cat /b/h; touch /b/new")
    assert r.stdout == "host\n" and "Read-only file system" in r.stderr
    mr.ok("run", "--rm", "--mount", f"type=bind,source={tmp_path},target=/b", "busybox",
          "sh", "-c", "echo in > /b/from-ctr")
    assert (tmp_path / "from-ctr").read_text() == "in\n"
    r = mr("run", "--rm", "-v", "/no/such/dir:/x", "busybox", "true")
    assert r.returncode == 125 and "bind source path does not exist" in r.stderr


# --- cp, diff, export --------------------------------------------------------------------------------------


def test_diff_shows_added_changed_deleted(mr):
    mr("run", "--name", "df1", "busybox", "sh", "-c",
       "echo x > /new; rm /etc/group; echo y >> /etc/passwd")
    lines = mr.ok("diff", "df1").splitlines()
    assert "A /new" in lines and "D /etc/group" in lines and "C /etc/passwd" in lines
    assert not any("hosts" in ln or "resolv.conf" in ln for ln in lines)


def test_cp_both_ways_and_never_out_of_the_rootfs(mr, tmp_path):
    mr.ok("run", "-d", "--name", "cpx", "busybox", "sh", "-c",
          "ln -s /etc /escape; ln -s ../../../../../../etc/hostname /rel; sleep 100")
    assert poll(lambda: mr("exec", "cpx", "test", "-L", "/rel").returncode == 0)
    mr.ok("cp", "cpx:/etc/passwd", str(tmp_path / "passwd"))
    assert "mini:x:1000" in (tmp_path / "passwd").read_text()
    # A symlink to /etc in the container is the container's /etc, not the host's.
    mr.ok("cp", "cpx:/escape/group", str(tmp_path / "group"))
    assert "extra:x:2000" in (tmp_path / "group").read_text()
    mr.ok("cp", "cpx:/rel", str(tmp_path / "rel"))
    cid = mr.record("cpx")["Id"]
    assert (tmp_path / "rel").read_text().strip() == cid[:12]
    (tmp_path / "in.txt").write_text("to-ctr\n")
    mr.ok("cp", str(tmp_path / "in.txt"), "cpx:/tmp/")
    assert mr.ok("exec", "cpx", "cat", "/tmp/in.txt") == "to-ctr\n"
    assert mr.ok("exec", "cpx", "stat", "-c", "%u", "/tmp/in.txt").strip() == "0"
    # Writing through the container's /escape -> /etc link lands in its /etc, never the host's.
    mr.ok("cp", str(tmp_path / "in.txt"), "cpx:/escape/planted")
    assert not os.path.exists("/etc/planted")
    assert mr.ok("exec", "cpx", "cat", "/etc/planted") == "to-ctr\n"


def test_export_is_a_flat_tar_of_the_filesystem(mr, tmp_path):
    mr("run", "--name", "ex5", "busybox", "sh", "-c", "echo mark > /marker")
    data = subprocess.run(mr.argv("export", "ex5"), env=mr.env, capture_output=True,
                          timeout=60).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        names = set(t.getnames())
        assert "marker" in names and "bin/busybox" in names
        assert t.extractfile("marker").read() == b"mark\n"
    mr.ok("export", "-o", str(tmp_path / "fs.tar"), "ex5")
    assert tarfile.is_tarfile(tmp_path / "fs.tar")
