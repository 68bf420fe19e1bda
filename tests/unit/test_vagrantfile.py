"""The Vagrantfile: `vagrant validate` where vagrant is installed, and a static check that
always runs: the provisioner runs scripts/setup from the synced folder, and that folder is the
path the docs give (docs/labs/facilitator.md, the Vagrantfile's own usage lines).

vagrant is not in scripts/setup's packages: Debian's `vagrant` pulls in ~250 packages (ruby,
libvirt, libguestfs, a kernel image), too much for a check of one file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VAGRANTFILE = REPO / "Vagrantfile"
FACILITATOR = REPO / "docs" / "labs" / "facilitator.md"


def code() -> str:
    """The Vagrantfile without its comment lines."""
    return "\n".join(ln for ln in VAGRANTFILE.read_text().splitlines()
                     if not ln.lstrip().startswith("#"))


def synced_folder() -> str:
    """The guest path of the enabled synced folder of the checkout (".")."""
    found = []
    for m in re.finditer(r'config\.vm\.synced_folder\s+"\."\s*,\s*"([^"]+)"([^\n]*)', code()):
        if "disabled: true" not in m.group(2):
            found.append(m.group(1))
    assert len(found) == 1, f"Vagrantfile: expected one enabled synced folder of '.', got {found}"
    return found[0]


def test_provisioning_runs_scripts_setup_from_the_synced_folder():
    folder = synced_folder()
    inline = re.findall(r'config\.vm\.provision\s+"shell"\s*,\s*inline:\s*"([^"]+)"', code())
    assert inline, "Vagrantfile: no shell provisioner with an inline command"
    assert any(re.search(rf"(^|\s|;|&&){re.escape(folder)}/scripts/setup(\s|;|$)", cmd)
               for cmd in inline), (folder, inline)
    assert (REPO / "scripts" / "setup").is_file() and os.access(REPO / "scripts" / "setup", os.X_OK)


def test_the_docs_name_the_synced_folder():
    folder = synced_folder()
    text = FACILITATOR.read_text()
    assert f"`{folder}`" in text or f"**`{folder}`**" in text, \
        f"facilitator.md does not say the checkout is at {folder} in the VM"
    assert f"{folder}/scripts/setup" in text
    # The Vagrantfile's own usage comment points at the same place.
    usage = [ln for ln in VAGRANTFILE.read_text().splitlines()
             if ln.startswith("#") and "/scripts/" in ln]
    assert usage and all(f"{folder}/" in ln for ln in usage), usage


def test_the_box_and_resources_match_the_docs():
    text = FACILITATOR.read_text()
    box = re.search(r'config\.vm\.box\s*=\s*"([^"]+)"', code()).group(1)
    assert box in text
    cpus = set(re.findall(r"\.cpus\s*=\s*(\d+)", code()))
    memory = set(re.findall(r"\.memory\s*=\s*(\d+)", code()))
    assert cpus == {"2"} and memory == {"4096"}, (cpus, memory)
    assert "2 CPUs" in text and "4 GiB" in text


@pytest.mark.skipif(shutil.which("vagrant") is None,
                    reason="vagrant is not installed (not in scripts/setup: Debian's package "
                    "pulls in ~250 packages); the static checks above still run")
def test_vagrant_validate(tmp_path):
    env = dict(os.environ, VAGRANT_CWD=str(REPO), VAGRANT_HOME=str(tmp_path / "vagrant.d"))
    r = subprocess.run(["vagrant", "validate", "--ignore-provider"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
