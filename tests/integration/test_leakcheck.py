"""scripts/leakcheck judges what the tests did, not the machine: with a snapshot taken before,
only objects made since count, and what was there before (a user's bridge, containers,
volumes) is left alone and not reported."""

from __future__ import annotations

import os
import subprocess

from helpers import REPO

LEAKCHECK = str(REPO / "scripts" / "leakcheck")


def veth(name: str) -> None:
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"],
                   check=True, capture_output=True)


def gone(name: str) -> None:
    subprocess.run(["ip", "link", "del", name], capture_output=True)


def test_only_what_is_new_since_the_snapshot_is_a_leak(tmp_path):
    tag = f"mrlk{os.getpid() % 100000}"
    before, during = tag + "a", tag + "b"
    snap = tmp_path / "snapshot"
    veth(before)  # a user's own interface, there before the tests
    try:
        subprocess.run([LEAKCHECK, "--snapshot", str(snap)], check=True, capture_output=True)
        assert f"network interface {before}\n" in snap.read_text()
        veth(during)  # what "the tests" make
        try:
            r = subprocess.run([LEAKCHECK, "--since", str(snap)], capture_output=True, text=True)
            assert r.returncode == 1
            leaks = [ln for ln in r.stdout.splitlines() if ln.startswith("leak: ")]
            assert f"leak: network interface {during}" in leaks
            assert f"leak: network interface {during}p" in leaks
            assert not any(before in ln for ln in leaks), leaks
        finally:
            gone(during)
        r = subprocess.run([LEAKCHECK, "--since", str(snap)], capture_output=True, text=True)
        assert not any(before in ln for ln in r.stdout.splitlines()), r.stdout
    finally:
        gone(before)


def test_since_without_a_snapshot_says_how_to_take_one(tmp_path):
    r = subprocess.run([LEAKCHECK, "--since", str(tmp_path / "none")], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "--snapshot" in r.stderr
