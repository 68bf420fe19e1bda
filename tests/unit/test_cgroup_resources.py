"""linux.resources -> cgroup files: every OCI field's file and value on v2 and on v1, the errors
for what a version cannot do, and the device rules (v1 lines, the v2 eBPF program).

plan_v2/plan_v1 are pure: they are given `exists` (and on v1 `current`) and return the writes in
order, so no cgroup filesystem is needed. docs/cgroups.md shows the same table for people.
"""

from __future__ import annotations

import struct

import pytest

from minirun.kernel.cgroups import devices, resources
from minirun.kernel.cgroups.resources import ResourceError, plan_v1, plan_v2, shares_to_weight

M = 1 << 20
NO_LIMIT_V1 = 9223372036854771712  # what a v1 *_limit_in_bytes reads when unlimited

# Files a typical v2 container cgroup has (every controller enabled, swap accounting, 2MB pages).
V2_FILES = {"memory.max", "memory.low", "memory.high", "memory.swap.max", "cpu.weight",
            "cpu.max", "cpu.max.burst", "cpu.idle", "cpuset.cpus", "cpuset.mems", "pids.max",
            "io.weight", "io.max", "hugetlb.2MB.max", "hugetlb.1GB.max"}

# (controller, file) a typical v1 host has.
V1_FILES = {("memory", "memory.limit_in_bytes"), ("memory", "memory.memsw.limit_in_bytes"),
            ("memory", "memory.soft_limit_in_bytes"), ("memory", "memory.swappiness"),
            ("memory", "memory.kmem.limit_in_bytes"), ("memory", "memory.oom_control"),
            ("blkio", "blkio.weight"), ("blkio", "blkio.weight_device"),
            ("blkio", "blkio.leaf_weight"), ("hugetlb", "hugetlb.2MB.limit_in_bytes"),
            ("net_cls", "net_cls.classid"), ("net_prio", "net_prio.ifpriomap")}


def v2(res, files=V2_FILES):
    return plan_v2(res, lambda name: name in files)


def v1(res, files=V1_FILES, current=None):
    cur = current or {}
    return plan_v1(res, lambda c, n: (c, n) in files, lambda c, n: cur.get(n))


def v2_error(res, files=V2_FILES) -> ResourceError:
    with pytest.raises(ResourceError) as e:
        v2(res, files)
    return e.value


def v1_error(res, files=V1_FILES, current=None) -> ResourceError:
    with pytest.raises(ResourceError) as e:
        v1(res, files, current)
    return e.value


# --- THE TABLE: one row per field, the exact writes on each version ---------------------------
# (resources, v2 writes [(file, value)] or the field of the error, v1 writes [(ctrl, file, value)]
#  or the field of the error)
TABLE = [
    ({"memory": {"limit": 64 * M}},
     [("memory.max", "67108864")], [("memory", "memory.limit_in_bytes", "67108864")]),
    ({"memory": {"limit": -1}},
     [("memory.max", "max")], [("memory", "memory.limit_in_bytes", "-1")]),
    ({"memory": {"reservation": 32 * M}},
     [("memory.low", "33554432")], [("memory", "memory.soft_limit_in_bytes", "33554432")]),
    ({"memory": {"kernel": 16 * M}},
     "memory.kernel", [("memory", "memory.kmem.limit_in_bytes", "16777216")]),
    ({"memory": {"kernelTCP": 8 * M}},
     "memory.kernelTCP", [("memory", "memory.kmem.tcp.limit_in_bytes", "8388608")]),
    ({"memory": {"swappiness": 60}},
     "memory.swappiness", [("memory", "memory.swappiness", "60")]),
    ({"memory": {"disableOOMKiller": True}},
     "memory.disableOOMKiller", [("memory", "memory.oom_control", "1")]),
    ({"memory": {"disableOOMKiller": False}}, [], []),
    ({"cpu": {"shares": 1024}}, [("cpu.weight", "39")], [("cpu", "cpu.shares", "1024")]),
    ({"cpu": {"quota": 50000, "period": 100000}},
     [("cpu.max", "50000 100000")],
     [("cpu", "cpu.cfs_period_us", "100000"), ("cpu", "cpu.cfs_quota_us", "50000")]),
    ({"cpu": {"quota": -1}}, [("cpu.max", "max 100000")], [("cpu", "cpu.cfs_quota_us", "-1")]),
    ({"cpu": {"quota": 25000}}, [("cpu.max", "25000 100000")],
     [("cpu", "cpu.cfs_quota_us", "25000")]),
    ({"cpu": {"period": 50000}}, [("cpu.max", "max 50000")],
     [("cpu", "cpu.cfs_period_us", "50000")]),
    ({"cpu": {"burst": 10000}}, [("cpu.max.burst", "10000")], [("cpu", "cpu.cfs_burst_us", "10000")]),
    ({"cpu": {"realtimePeriod": 1000000}}, "cpu.realtimePeriod",
     [("cpu", "cpu.rt_period_us", "1000000")]),
    ({"cpu": {"realtimeRuntime": 950000}}, "cpu.realtimeRuntime",
     [("cpu", "cpu.rt_runtime_us", "950000")]),
    ({"cpu": {"cpus": "0-1"}}, [("cpuset.cpus", "0-1")], [("cpuset", "cpuset.cpus", "0-1")]),
    ({"cpu": {"mems": "0"}}, [("cpuset.mems", "0")], [("cpuset", "cpuset.mems", "0")]),
    ({"cpu": {"idle": 1}}, [("cpu.idle", "1")], "cpu.idle"),
    ({"cpu": {"idle": 0}}, [("cpu.idle", "0")], "cpu.idle"),
    ({"pids": {"limit": 100}}, [("pids.max", "100")], [("pids", "pids.max", "100")]),
    ({"pids": {"limit": 0}}, [("pids.max", "max")], [("pids", "pids.max", "max")]),
    ({"pids": {"limit": -1}}, [("pids.max", "max")], [("pids", "pids.max", "max")]),
    ({"blockIO": {"weight": 500}}, [("io.weight", "default 4950")],
     [("blkio", "blkio.weight", "500")]),
    ({"blockIO": {"leafWeight": 300}}, "blockIO.leafWeight", [("blkio", "blkio.leaf_weight", "300")]),
    ({"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 500}]}},
     [("io.weight", "8:0 4950")], [("blkio", "blkio.weight_device", "8:0 500")]),
    ({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]}},
     [("io.max", "8:0 rbps=1048576")], [("blkio", "blkio.throttle.read_bps_device", "8:0 1048576")]),
    ({"blockIO": {"throttleWriteBpsDevice": [{"major": 8, "minor": 16, "rate": 2097152}]}},
     [("io.max", "8:16 wbps=2097152")],
     [("blkio", "blkio.throttle.write_bps_device", "8:16 2097152")]),
    ({"blockIO": {"throttleReadIOPSDevice": [{"major": 253, "minor": 0, "rate": 100}]}},
     [("io.max", "253:0 riops=100")], [("blkio", "blkio.throttle.read_iops_device", "253:0 100")]),
    ({"blockIO": {"throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 50}]}},
     [("io.max", "8:0 wiops=50")], [("blkio", "blkio.throttle.write_iops_device", "8:0 50")]),
    ({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * M}]},
     [("hugetlb.2MB.max", "4194304")], [("hugetlb", "hugetlb.2MB.limit_in_bytes", "4194304")]),
    ({"network": {"classID": 0x100001}}, "network",
     [("net_cls", "net_cls.classid", "1048577")]),
    ({"network": {"priorities": [{"name": "eth0", "priority": 5}]}}, "network",
     [("net_prio", "net_prio.ifpriomap", "eth0 5")]),
    ({"unified": {"memory.high": "50000000"}}, [("memory.high", "50000000")], "unified"),
    ({"rdma": {"mlx5_0": {"hcaHandles": 3}}}, "rdma", "rdma"),
    ({}, [], []),
]


def _row_id(row) -> str:
    res = row[0]
    if not res:
        return "empty"
    section = next(iter(res))
    inner = res[section]
    if isinstance(inner, dict) and inner:
        return f"{section}.{'+'.join(inner)}={'+'.join(str(v) for v in inner.values())}"
    return section


@pytest.mark.parametrize("res, want_v2, want_v1", TABLE, ids=[_row_id(r) for r in TABLE])
def test_table_v2(res, want_v2, want_v1):
    if isinstance(want_v2, str):
        e = v2_error(res)
        assert e.field == want_v2
        assert str(e).startswith(f"config.json: linux.resources.{want_v2}: ")
    else:
        assert v2(res) == want_v2


@pytest.mark.parametrize("res, want_v2, want_v1", TABLE, ids=[_row_id(r) for r in TABLE])
def test_table_v1(res, want_v2, want_v1):
    if isinstance(want_v1, str):
        e = v1_error(res)
        assert e.field == want_v1
        assert str(e).startswith(f"config.json: linux.resources.{want_v1}: ")
    else:
        assert v1(res) == want_v1


# --- memory + swap ------------------------------------------------------------------------


def test_v2_swap_is_swap_alone_not_memory_plus_swap():
    assert v2({"memory": {"limit": 64 * M, "swap": 192 * M}}) == [
        ("memory.max", "67108864"), ("memory.swap.max", str(128 * M))]


def test_v2_swap_equal_to_limit_means_no_swap():
    assert v2({"memory": {"limit": 64 * M, "swap": 64 * M}})[-1] == ("memory.swap.max", "0")


def test_v2_swap_minus_one_is_max():
    assert v2({"memory": {"limit": 64 * M, "swap": -1}}) == [
        ("memory.max", "67108864"), ("memory.swap.max", "max")]
    assert v2({"memory": {"swap": -1}}) == [("memory.swap.max", "max")]


def test_v2_swap_below_limit_is_an_error():
    e = v2_error({"memory": {"limit": 128 * M, "swap": 64 * M}})
    assert str(e).startswith("config.json: linux.resources.memory.swap: ")
    assert "below memory.limit" in str(e)


def test_v2_swap_without_a_limit_is_an_error():
    assert "needs a memory limit" in str(v2_error({"memory": {"swap": 128 * M}}))
    assert "needs a memory limit" in str(v2_error({"memory": {"limit": -1, "swap": 128 * M}}))


def test_v2_swap_without_swap_accounting_is_an_error():
    e = v2_error({"memory": {"limit": 64 * M, "swap": 128 * M}}, V2_FILES - {"memory.swap.max"})
    assert e.field == "memory.swap" and "memory.swap.max is missing" in str(e)


def test_v1_memsw_growing_writes_memsw_first():
    # current memsw 128M; both grow: a new limit above the old memsw would be refused if
    # written first, so memsw goes first.
    plan = v1({"memory": {"limit": 256 * M, "swap": 512 * M}},
              current={"memory.memsw.limit_in_bytes": 128 * M})
    assert plan == [("memory", "memory.memsw.limit_in_bytes", str(512 * M)),
                    ("memory", "memory.limit_in_bytes", str(256 * M))]


def test_v1_memsw_shrinking_writes_limit_first():
    plan = v1({"memory": {"limit": 64 * M, "swap": 128 * M}},
              current={"memory.memsw.limit_in_bytes": NO_LIMIT_V1})
    assert plan == [("memory", "memory.limit_in_bytes", str(64 * M)),
                    ("memory", "memory.memsw.limit_in_bytes", str(128 * M))]


def test_v1_memsw_unlimited_goes_first():
    plan = v1({"memory": {"limit": 64 * M, "swap": -1}},
              current={"memory.memsw.limit_in_bytes": 128 * M})
    assert [w[1] for w in plan] == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]


def test_v1_memsw_unreadable_current_writes_limit_first():
    plan = v1({"memory": {"limit": 64 * M, "swap": 128 * M}})
    assert [w[1] for w in plan] == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]


def test_v1_swap_without_swap_accounting_is_an_error():
    e = v1_error({"memory": {"limit": 64 * M, "swap": 128 * M}},
                 V1_FILES - {("memory", "memory.memsw.limit_in_bytes")})
    assert e.field == "memory.swap" and "swapaccount=1" in str(e)


@pytest.mark.parametrize("value", [-2, 101])
def test_v1_swappiness_out_of_range(value):
    assert v1_error({"memory": {"swappiness": value}}).field == "memory.swappiness"


def test_swappiness_minus_one_means_unset_as_in_runc():
    assert v1({"memory": {"swappiness": -1}}) == []
    assert v2({"memory": {"swappiness": -1}}) == []


@pytest.mark.parametrize("key, value", [("kernel", 1), ("kernelTCP", 1), ("swappiness", 10),
                                        ("disableOOMKiller", True)])
def test_v2_rejects_v1_only_memory_fields_by_name(key, value):
    e = v2_error({"memory": {"limit": 64 * M, key: value}})
    assert str(e).startswith(f"config.json: linux.resources.memory.{key}: ")
    assert "cgroup v2" in str(e)


# --- cpu ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shares, weight", [(2, 1), (1024, 39), (262144, 10000),
                                            (512, 20), (0, 1), (1, 1), (10**6, 10000)])
def test_shares_to_weight(shares, weight):
    assert shares_to_weight(shares) == weight
    if 2 <= shares <= 262144:
        assert weight == 1 + ((shares - 2) * 9999) // 262142


def test_v2_cpu_quota_zero_is_max():
    assert v2({"cpu": {"quota": 0, "period": 20000}}) == [("cpu.max", "max 20000")]


def test_v2_has_no_realtime_budget():
    e = v2_error({"cpu": {"realtimeRuntime": 1000}})
    assert str(e).startswith("config.json: linux.resources.cpu.realtimeRuntime: ")


def test_v1_cpu_idle_is_an_error_without_the_file():
    assert str(v1_error({"cpu": {"idle": 1}})).startswith("config.json: linux.resources.cpu.idle: ")


def test_v1_cpu_idle_is_written_where_the_kernel_has_it():
    files = V1_FILES | {("cpu", "cpu.idle")}
    assert v1({"cpu": {"idle": 1}}, files) == [("cpu", "cpu.idle", "1")]


def test_v1_cpu_writes_in_order():
    plan = v1({"cpu": {"shares": 512, "quota": 20000, "period": 50000, "cpus": "1", "mems": "0"}})
    assert plan == [("cpu", "cpu.shares", "512"), ("cpu", "cpu.cfs_period_us", "50000"),
                    ("cpu", "cpu.cfs_quota_us", "20000"), ("cpuset", "cpuset.cpus", "1"),
                    ("cpuset", "cpuset.mems", "0")]


# --- block I/O ----------------------------------------------------------------------------


@pytest.mark.parametrize("blkio, io", [(10, 1), (500, 4950), (1000, 10000)])
def test_v2_blkio_weight_scale(blkio, io):
    assert v2({"blockIO": {"weight": blkio}}) == [("io.weight", f"default {io}")]


def test_v2_bfq_weight_keeps_the_blkio_scale():
    files = V2_FILES | {"io.bfq.weight"}
    assert v2({"blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 200}]}},
              files) == [("io.bfq.weight", "500"), ("io.bfq.weight", "8:0 200")]


def test_v2_device_weight_uses_the_same_scale_as_the_default():
    # One file, one scale: "default 4950" and "8:0 4950" both mean blkio weight 500.
    plan = v2({"blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 500},
                                                          {"major": 8, "minor": 16, "weight": 10}]}})
    assert plan == [("io.weight", "default 4950"), ("io.weight", "8:0 4950"), ("io.weight", "8:16 1")]


def test_v2_all_four_throttles_go_to_io_max():
    dev = {"major": 8, "minor": 0}
    plan = v2({"blockIO": {"throttleReadBpsDevice": [dict(dev, rate=1048576)],
                           "throttleWriteBpsDevice": [dict(dev, rate=2097152)],
                           "throttleReadIOPSDevice": [dict(dev, rate=100)],
                           "throttleWriteIOPSDevice": [dict(dev, rate=50)]}})
    assert plan == [("io.max", "8:0 rbps=1048576"), ("io.max", "8:0 wbps=2097152"),
                    ("io.max", "8:0 riops=100"), ("io.max", "8:0 wiops=50")]


def test_throttle_without_rate_names_the_entry():
    res = {"blockIO": {"throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 1},
                                                   {"major": 8, "minor": 0}]}}
    for e in (v2_error(res), v1_error(res)):
        assert str(e).startswith(
            "config.json: linux.resources.blockIO.throttleWriteIOPSDevice[1].rate: ")


def test_device_without_major_names_it():
    e = v2_error({"blockIO": {"throttleReadBpsDevice": [{"minor": 0, "rate": 1}]}})
    assert e.field == "blockIO.throttleReadBpsDevice[0].major"


def test_v1_bfq_weight_files_when_cfq_is_gone():
    files = {("blkio", "blkio.bfq.weight"), ("blkio", "blkio.bfq.weight_device")}
    assert v1({"blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 200}]}},
              files) == [("blkio", "blkio.bfq.weight", "300"),
                         ("blkio", "blkio.bfq.weight_device", "8:0 200")]


def test_v1_blkio_weight_without_a_weight_file_is_an_error():
    e = v1_error({"blockIO": {"weight": 300}}, set())
    assert str(e).startswith("config.json: linux.resources.blockIO.weight: ")
    e = v1_error({"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 1}]}}, set())
    assert e.field == "blockIO.weightDevice[0]"
    e = v1_error({"blockIO": {"leafWeight": 300}}, set())
    assert e.field == "blockIO.leafWeight"


# --- hugetlb, network, unified, rdma --------------------------------------------------------


def test_hugepage_missing_file_is_an_error_on_both():
    res = {"hugepageLimits": [{"pageSize": "2MB", "limit": 0}, {"pageSize": "64KB", "limit": 0}]}
    e = v2_error(res)
    assert str(e).startswith("config.json: linux.resources.hugepageLimits[1]: no hugetlb.64KB.max")
    e = v1_error(res)
    assert str(e).startswith("config.json: linux.resources.hugepageLimits[1]: "
                             "no hugetlb.64KB.limit_in_bytes")


def test_hugepage_two_sizes():
    res = {"hugepageLimits": [{"pageSize": "2MB", "limit": 2 * M}, {"pageSize": "1GB", "limit": 0}]}
    assert v2(res) == [("hugetlb.2MB.max", "2097152"), ("hugetlb.1GB.max", "0")]


def test_v1_network_without_its_controller_is_an_error():
    e = v1_error({"network": {"classID": 1}}, set())
    assert str(e).startswith("config.json: linux.resources.network.classID: ")
    e = v1_error({"network": {"priorities": [{"name": "lo", "priority": 1}]}}, set())
    assert str(e).startswith("config.json: linux.resources.network.priorities[0]: ")


def test_v2_network_error_suggests_the_v2_way():
    assert "eBPF" in str(v2_error({"network": {"classID": 1}}))


@pytest.mark.parametrize("key", ["../memory.max", "memory", ".hidden", "a/b.c"])
def test_v2_unified_invalid_key(key):
    e = v2_error({"unified": {key: "1"}})
    assert str(e).startswith(f"config.json: linux.resources.unified.{key}: ")
    assert "not a cgroup interface file" in str(e)


def test_v2_unified_missing_file():
    e = v2_error({"unified": {"memory.oom.group": "1"}})
    assert str(e).startswith("config.json: linux.resources.unified.memory.oom.group: no such file")


def test_v2_unified_writes_every_key_after_the_fields():
    files = V2_FILES | {"memory.oom.group"}
    plan = v2({"pids": {"limit": 5}, "unified": {"memory.oom.group": "1", "memory.high": "max"}},
              files)
    assert plan == [("pids.max", "5"), ("memory.oom.group", "1"), ("memory.high", "max")]


def test_v1_unified_is_an_error():
    e = v1_error({"unified": {"memory.high": "1"}})
    assert str(e).startswith("config.json: linux.resources.unified: ")


# --- types --------------------------------------------------------------------------------


@pytest.mark.parametrize("res, field", [
    ({"memory": {"limit": "64m"}}, "memory.limit"),
    ({"memory": {"limit": True}}, "memory.limit"),
    ({"cpu": {"shares": 1.5}}, "cpu.shares"),
    ({"cpu": {"quota": "1"}}, "cpu.quota"),
    ({"pids": {"limit": "10"}}, "pids.limit"),
    ({"blockIO": {"weight": "x"}}, "blockIO.weight"),
    ({"hugepageLimits": [{"pageSize": "2MB", "limit": "1"}]}, "hugepageLimits[0].limit"),
])
def test_non_integers_are_errors_on_both(res, field):
    for e in (v2_error(res), v1_error(res)):
        assert str(e).startswith(f"config.json: linux.resources.{field}: ")
        assert "is not an integer" in str(e)


def test_everything_at_once_keeps_the_order():
    res = {"memory": {"limit": 64 * M, "reservation": 32 * M, "swap": 128 * M},
           "cpu": {"shares": 2, "quota": 1000, "period": 10000, "cpus": "0", "mems": "0"},
           "pids": {"limit": 32}}
    assert [f for f, _ in v2(res)] == ["memory.max", "memory.low", "memory.swap.max",
                                       "cpu.weight", "cpu.max", "cpuset.cpus", "cpuset.mems",
                                       "pids.max"]
    assert [f for _, f, _ in v1(res, current={"memory.memsw.limit_in_bytes": NO_LIMIT_V1})] == [
        "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes",
        "cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpuset.cpus", "cpuset.mems",
        "pids.max"]


def test_resource_error_is_a_minirun_error():
    from minirun.errors import MinirunError

    e = ResourceError("pids.limit", "why")
    assert isinstance(e, MinirunError) and str(e) == "config.json: linux.resources.pids.limit: why"
    assert resources.THROTTLES[0][0] == "throttleReadBpsDevice"


# --- devices: rules ---------------------------------------------------------------------


@pytest.mark.parametrize("rule, where", [
    ({"type": "c"}, "devices[0].allow: must be true or false"),
    ({"allow": "yes"}, "devices[0].allow: must be true or false"),
    ("a *:* rwm", "devices[0].allow: must be true or false"),
    ({"allow": True, "type": "x"}, "devices[0].type: 'x' is not a, b or c"),
    ({"allow": True, "type": "c", "access": "rwx"}, "devices[0].access: 'rwx' is not made of r, w, m"),
    ({"allow": True, "access": "read"}, "devices[0].access:"),
])
def test_normalise_errors(rule, where):
    with pytest.raises(devices.DeviceRuleError) as e:
        devices.normalise([rule])
    assert str(e.value).startswith("config.json: linux.resources." + where)


def test_normalise_names_the_index():
    with pytest.raises(devices.DeviceRuleError, match=r"devices\[1\]\.type"):
        devices.normalise([{"allow": False}, {"allow": True, "type": "z"}])


def test_normalise_fills_defaults():
    assert devices.normalise([{"allow": False}]) == [
        {"allow": False, "type": "a", "major": -1, "minor": -1, "access": "rwm"}]
    rule = {"allow": True, "type": "c", "major": 1, "minor": None, "access": "r"}
    assert devices.normalise([rule]) == [
        {"allow": True, "type": "c", "major": 1, "minor": -1, "access": "r"}]


def test_v1_lines():
    rules = devices.normalise([
        {"allow": False, "access": "rwm"},
        {"allow": False, "type": "a", "major": 1, "minor": 3, "access": "r"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": True, "type": "c", "major": 136, "minor": -1, "access": "rw"},
        {"allow": False, "type": "b", "access": "m"},
    ])
    assert devices.v1_lines(rules) == [
        ("devices.deny", "a"), ("devices.deny", "a"), ("devices.allow", "c 1:3 rwm"),
        ("devices.allow", "c 136:* rw"), ("devices.deny", "b *:* m")]


def test_default_allow_list_as_v1_lines():
    lines = devices.v1_lines(devices.normalise(devices.DEFAULT_ALLOW))
    assert lines == [("devices.allow", x) for x in (
        "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 1:8 rwm", "c 1:9 rwm",
        "c 5:2 rwm", "c 136:* rwm")]


# --- devices: the eBPF program (v2) --------------------------------------------------------

LDXW, AND_K, RSH_K, MOV32_X, MOV64_K, JNE_K, EXIT = 0x61, 0x54, 0x74, 0xBC, 0xB7, 0x55, 0x95


def decode(prog: bytes) -> list[tuple[int, int, int, int, int]]:
    """(code, dst, src, off, imm) per 8-byte instruction."""
    assert len(prog) % 8 == 0
    out = []
    for i in range(0, len(prog), 8):
        code, regs, off, imm = struct.unpack("<BBhi", prog[i:i + 8])
        out.append((code, regs & 0xF, regs >> 4, off, imm))
    return out


def run(prog: bytes, dev_type: str, access: str, major: int, minor: int) -> int:
    """Interpret the few instructions program() emits on one bpf_cgroup_dev_ctx."""
    acc = sum({"m": 1, "r": 2, "w": 4}[a] for a in access)
    ctx = [(acc << 16) | {"b": 1, "c": 2}[dev_type], major, minor]
    regs = [0] * 11
    insns = decode(prog)
    pc = 0
    for _ in range(len(insns) + 1):
        code, dst, src, off, imm = insns[pc]
        pc += 1
        if code == LDXW:
            assert src == 1 and off in (0, 4, 8)
            regs[dst] = ctx[off // 4]
        elif code == AND_K:
            regs[dst] = regs[dst] & imm & 0xFFFFFFFF
        elif code == RSH_K:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif code == MOV32_X:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif code == MOV64_K:
            regs[dst] = imm
        elif code == JNE_K:
            if regs[dst] != imm:
                pc += off
        elif code == EXIT:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
    raise AssertionError("the program did not exit")


def oracle(rules, dev_type, access, major, minor) -> int:
    """The last matching rule decides; no match is a deny."""
    verdict = 0
    for r in rules:
        if r["type"] not in ("a", dev_type):
            continue
        if r["major"] not in (-1, major) or r["minor"] not in (-1, minor):
            continue
        if set(access) - set(r["access"]):
            continue
        verdict = 1 if r["allow"] else 0
    return verdict


def check_control_flow(prog: bytes) -> None:
    """What the verifier checks that we can: every jump lands inside the program, forward, at the
    start of the next rule (right after an exit); nothing is unreachable; the program ends in an
    exit."""
    insns = decode(prog)
    n = len(insns)
    assert insns[-1][0] == EXIT
    reached = set()
    todo = [0]
    while todo:
        pc = todo.pop()
        if pc in reached:
            continue
        assert 0 <= pc < n, f"fell off the program at {pc}"
        reached.add(pc)
        code, _, _, off, _ = insns[pc]
        if code == EXIT:
            continue
        if code == JNE_K:
            target = pc + 1 + off
            assert pc < target < n, f"jump at {pc} to {target} leaves the program"
            assert insns[target - 1][0] == EXIT, f"jump at {pc} lands inside a rule ({target})"
            todo.append(target)
        todo.append(pc + 1)
    assert reached == set(range(n)), f"unreachable: {sorted(set(range(n)) - reached)}"


DEFAULT_OCI = devices.normalise([{"allow": False, "access": "rwm"}]) + \
    devices.normalise(devices.DEFAULT_ALLOW)


def test_program_for_the_default_list_has_no_trailing_default():
    prog = devices.program(DEFAULT_OCI)
    insns = decode(prog)
    # 6 loads; 7 rules "c MAJ:MIN rwm" of 3 checks + mov + exit; "c 136:* rwm" of 2 + 2;
    # the unconditional "deny all" last: mov r0, 0; exit, and nothing after it.
    assert len(insns) == 6 + 7 * 5 + 4 + 2 == 47
    assert insns[-2] == (MOV64_K, 0, 0, 0, 0) and insns[-1][0] == EXIT
    check_control_flow(prog)


def test_program_header_loads_the_context():
    insns = decode(devices.program(DEFAULT_OCI))
    assert insns[:6] == [(LDXW, 2, 1, 0, 0), (AND_K, 2, 0, 0, 0xFFFF), (LDXW, 3, 1, 0, 0),
                         (RSH_K, 3, 0, 0, 16), (LDXW, 4, 1, 4, 0), (LDXW, 5, 1, 8, 0)]


def test_program_without_unconditional_rule_ends_in_deny():
    rules = devices.normalise([{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}])
    insns = decode(devices.program(rules))
    # type check, access check (3), major, minor, mov, exit; then the default deny
    assert len(insns) == 6 + 8 + 2
    assert insns[6] == (JNE_K, 2, 0, 7, 2)            # type != c -> skip the 8-insn block
    assert insns[7:10] == [(MOV32_X, 1, 3, 0, 0), (AND_K, 1, 0, 0, 1), (JNE_K, 1, 0, 4, 0)]
    assert insns[-2] == (MOV64_K, 0, 0, 0, 0) and insns[-1][0] == EXIT
    check_control_flow(devices.program(rules))


def test_unconditional_rule_last_in_the_list_ends_the_program():
    rules = devices.normalise([{"allow": False, "type": "c", "major": 1, "minor": 3},
                               {"allow": True}])
    insns = decode(devices.program(rules))
    assert len(insns) == 6 + 2 and insns[-2] == (MOV64_K, 0, 0, 0, 1)
    check_control_flow(devices.program(rules))


def test_empty_rule_list_denies_everything():
    prog = devices.program([])
    assert len(decode(prog)) == 8
    assert run(prog, "c", "r", 1, 3) == 0


RULE_SETS = [
    DEFAULT_OCI,
    devices.normalise([{"allow": True}, {"allow": False, "type": "b", "major": 8, "access": "w"}]),
    devices.normalise([{"allow": False}, {"allow": True, "type": "c", "major": 10, "minor": 200,
                                          "access": "rw"},
                       {"allow": True, "type": "b", "access": "m"},
                       {"allow": False, "type": "c", "major": 10, "minor": 200, "access": "w"}]),
    devices.normalise([{"allow": True, "type": "c", "access": "r"},
                       {"allow": True, "type": "a", "major": 4, "access": "w"}]),
]


@pytest.mark.parametrize("rules", RULE_SETS, ids=["default", "allow-all-but", "mixed", "no-default"])
def test_program_decides_as_the_last_matching_rule(rules):
    prog = devices.program(rules)
    check_control_flow(prog)
    for t in ("b", "c"):
        for major, minor in ((1, 3), (1, 5), (5, 2), (8, 0), (10, 200), (136, 4), (4, 1)):
            for access in ("r", "w", "m", "rw", "rwm", "wm"):
                assert run(prog, t, access, major, minor) == oracle(rules, t, access, major, minor), \
                    (t, major, minor, access)
