"""Docker's and containerd's breakout CVEs at the engine level, tried against minirun (issue 21).

CVE-2020-15257 (containerd): the shim's API socket was an *abstract* unix socket, which lives in
the network namespace, not the filesystem: a `--network host` container could connect to it
and drive the shim as root. CVE-2019-13139 (Docker): `docker build` passed a git URL's
"#ref:dir" fragment to `git fetch` as an argument, so `--upload-pack=CMD` ran CMD on the host.
CVE-2020-13401 (Docker): the host took IPv6 router advertisements from containers, which with
CAP_NET_RAW could reroute the host's traffic. Each test says how a naive engine fails.
"""

from __future__ import annotations

import json
import os
import re

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="real containers need root")


def _socket_inodes(pid: int) -> set[str]:
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", link)
        if m:
            out.add(m.group(1))
    return out


def test_monitor_sockets_are_never_abstract(mr, tmp_path):
    """CVE-2020-15257: every socket a container's monitor listens on must be a file in the
    container's 0700 state directory (reachable only through the host's mount namespace), or
    unnamed: an abstract one (`@name` in /proc/net/unix) is reachable from any process in the
    host's network namespace, containers run with `--network host` included. A naive monitor
    that binds "\\0minirun-<id>" (containerd 1.3's shim did) fails: its inode shows with "@"."""
    cid = mr.ok("run", "-d", "-i", "--name", "held", "busybox", "sleep", "100").strip()
    rec = json.loads((mr.root / "containers" / cid / "container.json").read_text())
    monitor = rec["state"]["monitor_pid"]
    inodes = _socket_inodes(monitor)
    assert inodes, "the monitor holds no socket at all: the test sees nothing"
    with open("/proc/net/unix") as f:
        rows = [ln.split() for ln in f.readlines()[1:]]
    named = {r[6]: r[7] for r in rows if len(r) >= 8}  # inode -> path
    abstract = {i: named[i] for i in inodes if i in named and named[i].startswith("@")}
    assert abstract == {}, f"the monitor listens on abstract sockets: {abstract}"
    # and from where the attack came: a --network host container sees no abstract socket of ours
    seen = mr.ok("run", "--rm", "--network", "host", "busybox", "cat", "/proc/net/unix")
    ours = [ln for ln in seen.splitlines() if "@" in ln and "minirun" in ln]
    assert ours == []


def test_a_git_url_context_runs_no_git(mr, tmp_path):
    """CVE-2019-13139: a build context given as a git URL whose fragment is a git option.
    A naive engine runs `git fetch origin <fragment>`, and `--upload-pack=CMD` runs CMD on the
    host as root. minirun builds from a local directory only: the URL is refused with a
    one-line error, and nothing runs."""
    marker = tmp_path / "pwned"
    r = mr("build", "-t", "gitctx", f"git@github.com:a/b.git#--upload-pack=touch {marker}:x")
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert "URL" in r.stderr
    assert not marker.exists()


def test_the_host_takes_no_router_advertisements_from_containers(mr):
    """CVE-2020-13401: a container with CAP_NET_RAW (Docker's default set has it) sends IPv6
    router advertisements on the bridge; a host that accepts them (accept_ra=1 on the bridge, the
    kernel's default) installs the container as its router. minirun's bridge takes none
    (accept_ra=0), whatever the host default is. (The host's veth ends are bridge ports: the
    bridge takes every frame they receive, their own IPv6 stack never sees one.)"""
    cid = mr.ok("run", "-d", "busybox", "sleep", "100").strip()
    info = json.loads(mr.ok("network", "inspect", "bridge"))[0]
    bridge = info["Options"]["com.docker.network.bridge.name"]
    conf = "/proc/sys/net/ipv6/conf"
    if not os.path.isdir(f"{conf}/{bridge}"):
        pytest.skip("IPv6 is disabled on this host: no router advertisements to take")
    assert open(f"{conf}/{bridge}/accept_ra").read().strip() == "0"
    assert os.listdir(f"/sys/class/net/{bridge}/brif"), f"{cid}: no port on {bridge}"


def test_run_mount_is_refused_not_half_done(mr, tmp_path):
    """BuildKit's CVE-2024-23651 / -23652 / -23653: `RUN --mount` cache mounts raced with a
    symlink swap, and tearing a mount down removed files outside the container. A builder
    that accepts `--mount` and ignores it (or half-supports it) is where such bugs live:
    minirun refuses every BuildKit `RUN` option with a one-line error naming it, before any
    container or mount is made."""
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN --mount=type=cache,target=/c true\n")
    r = mr("build", "-t", "runmount", str(tmp_path))
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert "--mount" in r.stderr or "BuildKit" in r.stderr
    assert mr.ok("ps", "-aq").strip() == ""
