"""docs/kubernetes.md's containerd configuration, loaded by a real containerd's CRI plugin.

The ```toml block of docs/kubernetes.md (the `minirun` runtime handler) is taken from the page,
its BinaryName pointed at this checkout's minirun-oci, and appended to the config of a private
containerd (bench/ctr_bench.py's PrivateContainerd: root, state, sockets, opt dir, CNI dirs and
config file in a temp dir, the CRI plugin enabled, no network, no pod started). Checked: the
CRI plugin is `ok` in `ctr plugins ls`, and the handler is in `containerd config dump` and in
the config the running CRI plugin logs when it starts (`Start cri plugin with config {...}`,
what `crictl info` reports; crictl itself is used when installed). The page's warning (the
`runc` entry must stay, or the CRI plugin fails to load) is checked too. containerd is stopped
at the end whatever happened, and nothing is left: processes, mounts, dirs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from helpers import OCI, REPO

sys.path.insert(0, str(REPO / "bench"))
from ctr_bench import PrivateContainerd  # noqa: E402

DOC = REPO / "docs" / "kubernetes.md"
CRI = "io.containerd.grpc.v1.cri"
MISSING = [n for n in ("containerd", "ctr", "containerd-shim-runc-v2") if not shutil.which(n)]

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="containerd needs root"),
    pytest.mark.skipif(bool(MISSING), reason=f"not installed: {', '.join(MISSING)} "
                       "(Debian: apt-get install containerd)"),
]


def doc_toml() -> str:
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1, f"docs/kubernetes.md should hold one ```toml block, has {len(blocks)}"
    return blocks[0]


def handler_toml(binary: str, drop_runc: bool = False) -> str:
    """The doc's block without its `version` line (ours comes first), BinaryName filled in."""
    text = re.sub(r"(?m)^version = 2\n", "", doc_toml())
    text, n = re.subn(r'(?m)^(\s*BinaryName = )".*"$', lambda m: f'{m.group(1)}"{binary}"', text)
    assert n == 1, "the doc's TOML should set BinaryName once"
    if drop_runc:
        text, n = re.subn(r'(?ms)^\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes'
                          r'\.runc\]\n.*?(?=^\[|\Z)', "", text)
        assert n == 1
    return text


def plugin_status(cd: PrivateContainerd, plugin_id: str) -> str:
    for line in cd.ctr("plugins", "ls").stdout.splitlines():
        f = line.split()
        if len(f) >= 4 and f[0] == "io.containerd.grpc.v1" and f[1] == plugin_id:
            return f[-1]
    return "absent"


@pytest.fixture
def containerd():
    made: list[PrivateContainerd] = []

    def start(extra: str) -> PrivateContainerd:
        # a short path: the shim's ttrpc socket path is derived from it
        d = Path(os.environ.get("TMPDIR", "/tmp")) / f"mr-cri-{os.getpid()}-{len(made)}"
        d.mkdir()
        cd = PrivateContainerd(d, cri=True, extra_toml=extra)
        made.append(cd)
        cd.start()
        return cd

    yield start
    for cd in made:
        cd.stop()
        assert not cd.dir.exists(), f"{cd.dir} left behind"
        mounts = Path("/proc/self/mountinfo").read_text()
        assert str(cd.dir) not in mounts, "a mount under the containerd dir was left"
        strays = subprocess.run(["pgrep", "-f", str(cd.dir)], capture_output=True, text=True)
        assert not strays.stdout.strip(), f"processes left: {strays.stdout.strip()}"
        for d, was in cd.run_dirs_before.items():
            if not was:
                assert not os.path.exists(d) or os.listdir(d), f"{d} left behind, empty"


def test_doc_toml_is_the_handler_the_page_describes():
    cfg = tomllib.loads(doc_toml())
    assert cfg["version"] == 2
    ctd = cfg["plugins"][CRI]["containerd"]
    assert ctd["default_runtime_name"] in ctd["runtimes"]
    mr = ctd["runtimes"]["minirun"]
    assert mr["runtime_type"] == "io.containerd.runc.v2"
    assert mr["options"]["BinaryName"].startswith("/")
    assert mr["options"]["BinaryName"].endswith("/minirun-oci")
    assert mr["options"]["SystemdCgroup"] is False
    assert ctd["runtimes"]["runc"]["runtime_type"] == "io.containerd.runc.v2"
    # the manifests name the same handler
    text = DOC.read_text()
    assert re.search(r"apiVersion: node\.k8s\.io/v1\nkind: RuntimeClass\n.*?\nhandler: minirun",
                     text, re.S)
    assert "runtimeClassName: minirun" in text


def test_cri_plugin_loads_the_minirun_handler(containerd):
    binary = str(OCI)
    assert os.access(binary, os.X_OK), f"{binary} missing (scripts/setup)"
    cd = containerd(handler_toml(binary))
    assert plugin_status(cd, "cri") == "ok", cd.ctr("plugins", "ls", "-d", "id==cri").stdout
    detail = cd.ctr("plugins", "ls", "-d", "id==cri").stdout
    assert "Error:" not in detail, detail

    # what the file says, merged with containerd's defaults
    dump = subprocess.run(["containerd", "--config", str(cd.config), "config", "dump"],
                          capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0, dump.stderr
    runtimes = tomllib.loads(dump.stdout)["plugins"][CRI]["containerd"]["runtimes"]
    assert runtimes["minirun"]["runtime_type"] == "io.containerd.runc.v2"
    assert runtimes["minirun"]["options"]["BinaryName"] == binary
    assert runtimes["minirun"]["options"]["SystemdCgroup"] is False

    # what the running CRI plugin holds: the config it logs when it starts
    log = cd.log_text()
    assert "Start cri plugin with config" in log, log[-2000:]
    m = re.search(r"minirun:\{Type:(\S+) .*?Options:map\[([^\]]*)\]", log)
    assert m, "the CRI plugin's config has no minirun handler"
    assert m.group(1) == "io.containerd.runc.v2"
    assert f"BinaryName:{binary}" in m.group(2).split()
    assert "SystemdCgroup:false" in m.group(2).split()

    if shutil.which("crictl"):
        r = subprocess.run(["crictl", "--runtime-endpoint", f"unix://{cd.sock}", "info"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        info = json.loads(r.stdout)
        rt = info["config"]["containerd"]["runtimes"]["minirun"]
        assert rt["runtimeType"] == "io.containerd.runc.v2"
        assert rt["options"]["BinaryName"] == binary


def test_without_the_runc_entry_the_cri_plugin_fails(containerd):
    """The page's warning: naming any runtime drops containerd's built-in `runc` one."""
    cd = containerd(handler_toml(str(OCI), drop_runc=True))
    assert plugin_status(cd, "cri") == "error"
    detail = cd.ctr("plugins", "ls", "-d", "id==cri").stdout
    assert 'no corresponding runtime configured in `containerd.runtimes`' in detail, detail
    assert 'default_runtime_name = "runc"' in detail, detail

