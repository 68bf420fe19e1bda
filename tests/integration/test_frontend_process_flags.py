"""run/create's process, logging and sharing flags (issue 17), seen from inside the container
(`id`, `ip link`, mounts, files) and from outside (inspect, the files on disk): --group-add,
--cidfile, --label-file, --mac-address, --volumes-from, -a, --detach-keys (run, attach, exec in
a pty), --log-driver json-file|local|none with --log-opt max-size/max-file rotation, and the
same fields through the Docker API (the docker CLI against `minirun system service`).

Every test runs the offline busybox image on the module's --root (the `mr` fixture), and
removes what it made.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from helpers import ApiService, drive_pty, poll

DOCKER = "/usr/local/bin/docker"


def test_group_add_names_and_numbers_are_the_process_groups(mr):
    out = mr.ok("run", "--name", "groups", "--group-add", "daemon", "--group-add", "4242",
                "busybox", "id")
    assert "groups=1(daemon),4242" in out
    assert mr.record("groups")["HostConfig"]["GroupAdd"] == ["daemon", "4242"]
    r = mr("run", "--rm", "--group-add", "no-such-group", "busybox", "id")
    assert r.returncode == 125 and r.stderr.splitlines() == [
        "minirun: Unable to find group no-such-group: no matching entries in group file"]
    assert mr.ok("ps", "-aq").split() == [mr.record("groups")["Id"][:12]]  # nothing half-made


def test_cidfile_holds_the_id_and_an_existing_one_is_refused(mr, tmp_path):
    path = tmp_path / "cid"
    cid = mr.ok("create", "--cidfile", str(path), "busybox", "true").strip()
    assert path.read_text() == cid  # no newline, as Docker writes it
    r = mr("run", "--rm", "--cidfile", str(path), "busybox", "true")
    assert r.returncode == 125 and r.stderr.strip() == (
        "minirun: container ID file found, make sure the other container isn't running or "
        f"delete {path}")
    assert mr.ok("ps", "-aq", "--no-trunc").split() == [cid]
    mr.ok("rm", cid)
    assert path.exists()  # Docker leaves it: the user deletes it


def test_label_file_and_label(mr, tmp_path):
    f = tmp_path / "labels"
    f.write_text("# team labels\ntier=web\n\nowner=ops team\n")
    mr.ok("create", "--name", "labelled", "--label-file", str(f), "-l", "tier=db", "busybox")
    labels = mr.record("labelled")["Config"]["Labels"]
    assert labels["tier"] == "db" and labels["owner"] == "ops team"  # -l wins over the file


def test_mac_address_is_the_first_networks(mr):
    out = mr.ok("run", "--name", "mac", "--mac-address", "02:AA:bb:cc:dd:01", "busybox",
                "ip", "link", "show", "eth0")
    assert "link/ether 02:aa:bb:cc:dd:01 " in out
    rec = mr.record("mac")
    assert rec["Config"]["MacAddress"] == "02:aa:bb:cc:dd:01"
    assert rec["NetworkSettings"]["Networks"]["bridge"]["MacAddress"] == "02:aa:bb:cc:dd:01"
    for bad in ("zz:00:00:00:00:00", "03:00:00:00:00:01", "02:00:00:00:00"):
        r = mr("run", "--rm", "--mac-address", bad, "busybox", "true")
        assert r.returncode == 125 and len(r.stderr.splitlines()) == 1
        assert f"{bad} is not a valid mac address" in r.stderr
    r = mr("run", "--rm", "--network", "host", "--mac-address", "02:00:00:00:00:01", "busybox",
           "true")
    assert r.returncode == 125 and "conflicting options: mac-address and the network mode" \
        in r.stderr


def test_volumes_from_copies_volumes_and_binds_with_their_mode(mr, tmp_path):
    bind = tmp_path / "bind"
    bind.mkdir()
    mr.ok("create", "--name", "store", "-v", f"{bind}:/bind:ro", "-v", "vf-named:/named",
          "-v", "/anon", "busybox")
    out = mr.ok("run", "--rm", "--volumes-from", "store", "busybox", "sh", "-c",
                "echo hi > /named/f && echo a > /anon/f && (echo x > /bind/f || echo ro-bind)"
                " 2>/dev/null; cat /named/f /anon/f")
    assert out.split() == ["ro-bind", "hi", "a"]
    r = mr("run", "--rm", "--volumes-from", "store:ro", "busybox", "sh", "-c",
           "echo y > /named/g")
    assert r.returncode != 0 and "Read-only file system" in r.stderr
    mr.ok("create", "--name", "copier", "--volumes-from", "store", "-v", "vf-own:/named",
          "busybox")
    mounts = {m["Destination"]: m for m in mr.record("copier")["Mounts"]}
    assert mounts["/named"]["Name"] == "vf-own"  # its own -v wins at the same place
    assert mounts["/bind"]["RW"] is False and mounts["/bind"]["Source"] == str(bind)
    assert mr.record("copier")["HostConfig"]["VolumesFrom"] == ["store"]
    anon = {m["Destination"]: m for m in mr.record("store")["Mounts"]}["/anon"]["Name"]
    mr.ok("rm", "-v", "store")  # its anonymous volume is still the copier's: it stays
    assert anon in mr.ok("volume", "ls", "-q").split()
    mr.ok("rm", "-v", "copier")  # the last one using it: now it goes, as in Docker
    assert anon not in mr.ok("volume", "ls", "-q").split()
    mr.ok("volume", "rm", "vf-named", "vf-own")
    r = mr("run", "--rm", "--volumes-from", "no-such-container", "busybox", "true")
    assert r.returncode == 125 and "no-such-container" in r.stderr


def test_attach_only_stdout(mr):
    r = mr("run", "--rm", "-a", "stdout", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert (r.returncode, r.stdout, r.stderr) == (0, "out\n", "")
    r = mr("run", "--rm", "-a", "STDERR", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, "", "err\n")


def _log_files(mr, name: str) -> list[str]:
    cid = mr.record(name)["Id"]
    d = mr.root / "containers" / cid
    return sorted(str(d / f) for f in os.listdir(d) if "-json.log" in f)


def test_json_file_rotation_keeps_max_file_files_of_max_size(mr):
    # ~4 MB quickly: 60000 lines of 64 bytes (each line ~120 bytes as a JSON record)
    mr.ok("run", "--name", "chatty", "--log-opt", "max-size=100k", "--log-opt", "max-file=3",
          "busybox", "sh", "-c",
          "i=0; while [ $i -lt 60000 ]; do echo \"line $i $(printf '%040d' 0)\"; "
          "i=$((i+1)); done", timeout=120)
    files = _log_files(mr, "chatty")
    assert [os.path.basename(f)[64:] for f in files] == ["-json.log", "-json.log.1",
                                                         "-json.log.2"]
    for f in files:
        assert os.path.getsize(f) <= 100_000 + 200, f  # max-size, passed by one record at most
    lines = mr.ok("logs", "chatty").splitlines()
    numbers = [int(line.split()[1]) for line in lines]
    assert numbers[-1] == 59999 and numbers == list(range(numbers[0], 60000))  # newest, in order
    assert 1500 < len(numbers) < 3000  # ~300 kB of records: the rest was rotated away
    assert mr.ok("logs", "--tail", "2", "chatty").split("\n")[0].startswith("line 59998 ")
    assert mr.ok("logs", "-f", "chatty").splitlines() == lines  # a stopped one: -f ends
    cfg = mr.record("chatty")["HostConfig"]["LogConfig"]
    assert cfg == {"Type": "json-file", "Config": {"max-size": "100k", "max-file": "3"}}


def test_logs_follow_goes_on_across_rotations(mr):
    mr.ok("run", "-d", "--name", "ticker", "--log-opt", "max-size=2k", "--log-opt", "max-file=2",
          "busybox", "sh", "-c", "sleep 1; i=0; while [ $i -lt 300 ]; do echo tick $i; "
          "i=$((i+1)); usleep 2000; done")
    out = mr.ok("logs", "-f", "ticker", timeout=60).split("\n")
    ticks = [int(line.split()[1]) for line in out if line]
    assert ticks == list(range(300))  # followed from the start: nothing lost, no repeats
    assert len(_log_files(mr, "ticker")) == 2


def test_log_driver_none_keeps_nothing_and_logs_says_so(mr):
    assert mr.ok("run", "--name", "silent", "--log-driver", "none", "busybox", "echo",
                 "hi") == "hi\n"  # an attached run still shows the output
    assert _log_files(mr, "silent") == []
    rec = mr.record("silent")
    assert rec["HostConfig"]["LogConfig"] == {"Type": "none", "Config": {}}
    assert rec["LogPath"] == ""
    r = mr("logs", "silent")
    assert r.returncode != 0 and r.stderr.splitlines() == [
        "minirun: configured logging driver does not support reading"]


def test_log_driver_local_is_json_file_with_its_limits(mr):
    mr.ok("run", "--name", "loc", "--log-driver", "local", "busybox", "echo", "kept")
    assert mr.ok("logs", "loc") == "kept\n"
    assert mr.record("loc")["HostConfig"]["LogConfig"]["Type"] == "local"
    r = mr("run", "--rm", "--log-driver", "syslog", "busybox", "true")
    assert r.returncode == 125 and "logging driver 'syslog' is not supported" in r.stderr
    r = mr("run", "--rm", "--log-opt", "max-file=0", "busybox", "true")
    assert r.returncode == 125 and "max-file cannot be less than 1" in r.stderr
    assert "loc" in mr.ok("ps", "-a", "--format", "{{.Names}}").split()  # only that one made


def _pty(mr, *args: str, typed: bytes, until: bytes):
    return drive_pty(["env", f"MINIRUN_ROOT={mr.root}", f"MINIRUN_RUNROOT={mr.runroot}",
                      *mr.argv(*args)], typed=typed, until=until, timeout=30)


def test_detach_keys_leave_the_container_running(mr):
    ticker = "while true; do echo tick; sleep 0.2; done"
    code, out = _pty(mr, "run", "-it", "--name", "detached", "--detach-keys", "ctrl-x,ctrl-y",
                     "busybox", "sh", "-c", ticker, typed=b"\x18\x19", until=b"tick")
    assert code == 0 and "read escape sequence" in out
    assert mr.record("detached")["State"]["Running"]
    # attach with the default keys (ctrl-p ctrl-q): detaches again, and it still runs
    code, out = _pty(mr, "attach", "detached", typed=b"\x10\x11", until=b"tick")
    assert code == 0 and "read escape sequence" in out
    assert mr.record("detached")["State"]["Running"]
    # exec -it: the exec'd shell runs on after its session detached
    code, _ = _pty(mr, "exec", "-it", "--detach-keys", "ctrl-a", "detached", "sh", "-c",
                   "echo started; exec sleep 300", typed=b"\x01", until=b"started")
    assert code == 0
    assert poll(lambda: "sleep 300" in mr.ok("top", "detached"), timeout=5)
    mr.ok("rm", "-f", "detached")


def test_the_docker_api_takes_the_new_host_config_fields(mr, tmp_path):
    with ApiService(mr.root, mr.runroot, tmp_path / "api.sock") as svc:
        env = dict(os.environ, DOCKER_HOST=f"unix://{svc.path}")

        def docker(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([DOCKER, *args], env=env, capture_output=True, text=True,
                                  timeout=60)

        r = docker("create", "--name", "api-src", "-v", "/shared", "busybox")
        assert r.returncode == 0, r.stderr
        r = docker("run", "--name", "api-run", "--group-add", "4242", "--log-opt",
                   "max-size=1m", "--log-opt", "max-file=2", "--volumes-from", "api-src:ro",
                   "busybox", "sh", "-c", "id; grep -c ' /shared .*ro,' /proc/mounts")
        assert r.returncode == 0, r.stderr
        assert "4242" in r.stdout and r.stdout.split()[-1] == "1"
        rec = json.loads(docker("inspect", "api-run").stdout)[0]
        assert rec["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {
            "max-size": "1m", "max-file": "2"}}
        assert rec["HostConfig"]["GroupAdd"] == ["4242"]
        assert rec["HostConfig"]["VolumesFrom"] == ["api-src:ro"]
        r = docker("run", "--name", "api-none", "--log-driver", "none", "busybox", "true")
        assert r.returncode == 0, r.stderr
        r = docker("logs", "api-none")
        assert r.returncode == 1 and "configured logging driver does not support reading" \
            in r.stderr
        r = docker("run", "--rm", "--log-driver", "gelf", "busybox", "true")
        assert r.returncode == 125 and "logging driver 'gelf' is not supported" in r.stderr


def test_the_docker_cli_detaches_through_the_api(mr, tmp_path):
    with ApiService(mr.root, mr.runroot, tmp_path / "api.sock") as svc:
        env = dict(os.environ, DOCKER_HOST=f"unix://{svc.path}")
        code, _ = drive_pty([DOCKER, "run", "-it", "--name", "api-tty", "--detach-keys",
                             "ctrl-a", "busybox", "sh", "-c",
                             "while true; do echo tick; sleep 0.2; done"],
                            typed=b"\x01", until=b"tick", timeout=30, env=env)
        assert code == 0
        assert mr.record("api-tty")["State"]["Running"]  # detached: it runs on
        mr.ok("rm", "-f", "api-tty")
