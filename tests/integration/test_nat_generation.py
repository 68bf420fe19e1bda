"""network/nat.py's `remember`: the ~15 ms `nft -f` is skipped only while the kernel still
holds exactly the ruleset minirun wrote (kernel/nfgen.py: the ruleset generation has not moved,
or our tables read back as they were right after the write) and the new ruleset is the same; a
change to our tables makes the next call write.
A private table name, removed at the end whatever happens; nothing else is touched."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

if os.geteuid() != 0:
    pytest.skip("needs root: it writes nftables tables", allow_module_level=True)
if shutil.which("nft") is None:
    pytest.skip("nft is missing (apt install nftables)", allow_module_level=True)

from minirun.kernel import nfgen  # noqa: E402
from minirun.network import nat  # noqa: E402
from minirun.network.networks import Networks  # noqa: E402


def has_table(name: str) -> bool:
    return subprocess.run(["nft", "list", "table", "ip", name], capture_output=True).returncode == 0


@pytest.fixture
def setup(tmp_path):
    table = "mrgen" + uuid.uuid4().hex[:8]
    nets = Networks(str(tmp_path / "root"))
    net = nets.create("natgen", subnet="10.233.77.0/24")
    try:
        yield table, net, str(tmp_path / "remember.nft")
    finally:
        for fam in ("ip", "ip6"):
            subprocess.run(["nft", "delete", "table", fam, table], capture_output=True)


def skipped_once(net, table: str, remember: str) -> bool:
    """Does a second apply of the same ruleset skip nft? Another program on this host (a
    firewall, a test of another suite, podman) may change the ruleset between our two calls,
    which rightly makes it write: so a few tries, with a write before each."""
    for _ in range(5):
        nat.apply([net], [], table, remember=remember)
        if nat.apply([net], [], table, remember=remember) is False:
            return True
    return False


def test_written_once_then_skipped_until_the_ruleset_changes(setup):
    table, net, remember = setup
    assert nfgen.generation() is not None
    assert nat.apply([net], [], table, remember=remember) is True
    assert has_table(table)
    assert skipped_once(net, table, remember)  # same ruleset, same generation


def skipped_after(net, table: str, remember: str, change) -> bool:
    """After `change` (someone else's), does the next apply skip nft? A few tries, for the
    reason skipped_once gives."""
    for _ in range(5):
        nat.apply([net], [], table, remember=remember)
        change()
        if nat.apply([net], [], table, remember=remember) is False:
            return True
    return False


def test_a_change_elsewhere_moves_the_generation_but_writes_nothing(setup):
    table, net, remember = setup
    other = "mrother" + uuid.uuid4().hex[:6]

    def elsewhere():
        subprocess.run(["nft", "add", "table", "ip", other], check=True)
        subprocess.run(["nft", "delete", "table", "ip", other], check=True)

    assert skipped_after(net, table, remember, elsewhere)
    assert nfgen.tables(table)  # ours were read back, and are there


def test_a_rule_added_to_our_table_is_taken_out_again(setup):
    table, net, remember = setup
    nat.apply([net], [], table, remember=remember)
    written = nfgen.tables(table)
    subprocess.run(["nft", "add", "rule", "ip", table, "forward", "iifname", "lo", "drop"],
                   check=True)
    assert nfgen.tables(table) != written
    assert nat.apply([net], [], table, remember=remember) is True
    out = subprocess.run(["nft", "list", "table", "ip", table], capture_output=True,
                         text=True).stdout
    assert 'iifname "lo" drop' not in out


def test_a_table_deleted_behind_our_back_comes_back(setup):
    table, net, remember = setup
    nat.apply([net], [], table, remember=remember)
    subprocess.run(["nft", "delete", "table", "ip", table], check=True)  # `nft flush ruleset`'s kind
    assert nat.apply([net], [], table, remember=remember) is True
    assert has_table(table)


def test_a_new_ruleset_is_written(setup):
    table, net, remember = setup
    nat.apply([net], [], table, remember=remember)
    port = nat.Published(proto="tcp", host_ip="", host_port=28081, ip="10.233.77.2", port=80)
    assert nat.apply([net], [port], table, remember=remember) is True
    out = subprocess.run(["nft", "list", "table", "ip", table], capture_output=True,
                         text=True).stdout
    assert "28081" in out
