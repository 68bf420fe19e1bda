"""run's resource flags on cgroup v2: the linux.resources the engine makes of a HostConfig
(engine/bundle.py, engine/devices.py) applied by minirun-oci, read back from the v2 files;
`update` of them. (The v1 side, with the front end, is tests/integration/test_cgroups_flags.py;
the VM has no image store, so these tests start from the engine's translation.)
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from helpers import launch
from minirun.engine import bundle as engine_bundle, devices, limits

MiB = 1 << 20
CG = Path("/sys/fs/cgroup")


def cgdir(cid: str) -> Path:
    return CG / "minirun" / cid


def read(p: Path) -> str:
    return p.read_text().strip()


def start_detached(oci, tmp_path: Path, b: str, cid: str) -> None:
    """run --detach with the container's stdio on files: a pipe would keep us waiting for the
    container itself (helpers.launch)."""
    r = launch(oci, tmp_path, "run", "--detach", "--bundle", b, cid, timeout=120)
    assert r.returncode == 0, r.stderr
    for _ in range(200):
        if oci.state(cid)["status"] == "running":
            return
        time.sleep(0.05)


@pytest.fixture
def loopdev(tmp_path):
    """A loop block device (the VM's root is virtiofs: no disk of its own)."""
    img = tmp_path / "disk.img"
    img.write_bytes(b"\0" * (4 * MiB))
    subprocess.run(["modprobe", "loop"], capture_output=True)
    r = subprocess.run(["losetup", "-f", "--show", str(img)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"no loop device in this VM: {r.stderr.strip()}")
    dev = r.stdout.strip()
    yield dev
    subprocess.run(["losetup", "-d", dev], capture_output=True)


def test_host_probe_sees_v2_and_discards_oom_kill_disable():
    host = limits.Host.probe()
    assert host.cgroup_v2
    hc = {"OomKillDisable": True, "Memory": 64 * MiB}
    assert limits.check(hc, host) == ["Your kernel does not support OomKillDisable. "
                                      "OomKillDisable discarded."]
    assert limits.cgroupns_mode("", host) == "private"


def test_cpu_quota_period_reservation_and_mems_reach_the_v2_files(oci, bundle, cid, tmp_path):
    res = engine_bundle.resources({"Memory": 64 * MiB, "MemoryReservation": 32 * MiB,
                                   "CpuQuota": 20000, "CpuPeriod": 50000, "CpusetMems": "0"})
    b = bundle(["sleep", "600"], res)
    start_detached(oci, tmp_path, b, cid)
    d = cgdir(cid)
    assert read(d / "cpu.max") == "20000 50000"
    assert read(d / "memory.low") == str(32 * MiB)
    assert read(d / "memory.max") == str(64 * MiB)
    assert read(d / "cpuset.mems") == "0"
    # update: the live files change; the period stays (cpu.max is written whole)
    oci("update", "--cpu-quota", "30000", "--memory-reservation", "40m", cid, check=True)
    assert read(d / "cpu.max") == "30000 50000"
    assert read(d / "memory.low") == str(40 * MiB)


def test_device_throttles_reach_io_max(oci, bundle, cid, tmp_path, loopdev):
    res = engine_bundle.resources({"BlkioDeviceReadBps": [{"Path": loopdev, "Rate": MiB}],
                                   "BlkioDeviceWriteIOps": [{"Path": loopdev, "Rate": 100}]})
    b = bundle(["sleep", "600"], res)
    start_detached(oci, tmp_path, b, cid)
    st = os.stat(loopdev)
    line = next(ln for ln in read(cgdir(cid) / "io.max").splitlines()
                if ln.startswith(f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)} "))
    assert "rbps=1048576" in line and "wiops=100" in line


def test_device_flag_node_and_rule_on_the_ebpf_filter(oci, bundle, cid):
    nodes, rules = devices.gather([devices.parse("/dev/zero:/dev/myzero:r")])
    script = "; ".join([
        "head -c 2 /dev/myzero | wc -c",
        "echo x > /dev/myzero 2>/dev/null && echo write:ok || echo write:denied",
        "mknod /dev/blk b 7 0 && echo mknod:ok || echo mknod:denied",
        "head -c 1 /dev/blk >/dev/null 2>&1 && echo blk:ok || echo blk:denied",
    ])

    def edit(cfg: dict) -> None:
        cfg["linux"]["devices"] = nodes
        for s in ("bounding", "effective", "permitted"):
            cfg["process"]["capabilities"][s].append("CAP_MKNOD")

    b = bundle(["sh", "-c", script], {"devices": devices.DEFAULT_RULES + rules}, edit=edit)
    r = oci("run", "--bundle", b, cid, timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.split() == ["2", "write:denied", "mknod:ok", "blk:denied"], r.stderr
