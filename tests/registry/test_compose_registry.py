"""`minirun compose pull` and `push` against Debian's docker-registry (the conftest's open
registry): a service's image comes from the registry and goes back to it under the service's
own name. skopeo checks what the registry holds."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

MINIRUN = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "minirun")
ENV = {k: v for k, v in os.environ.items()
       if "proxy" not in k.lower() and not k.startswith("MINIRUN_")}


def compose(root: Path, project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([MINIRUN, "--root", str(root), "compose", "--project-directory",
                           str(project), *args], capture_output=True, text=True, env=ENV,
                          timeout=120)


def test_compose_pull_then_push_under_the_services_name(open_registry, tmp_path):
    reg = open_registry.host
    repo = f"{reg}/compose/{uuid.uuid4().hex[:8]}"
    project = tmp_path / "p"
    project.mkdir()
    (project / "compose.yaml").write_text(
        f"services:\n  app: {{image: '{reg}/busybox:oci'}}\n"
        f"  out: {{image: '{repo}:1', build: ., pull_policy: never}}\n")
    root = tmp_path / "root"
    r = compose(root, project, "pull", "app")
    assert r.returncode == 0, r.stderr
    assert f" Image {reg}/busybox:oci  Pulled" in r.stderr.splitlines()
    images = subprocess.run([MINIRUN, "--root", str(root), "images", "--format",
                             "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True,
                            env=ENV).stdout.split()
    assert f"{reg}/busybox:oci" in images
    subprocess.run([MINIRUN, "--root", str(root), "tag", f"{reg}/busybox:oci", f"{repo}:1"],
                   check=True, env=ENV)
    r = compose(root, project, "push", "out")
    assert r.returncode == 0, r.stderr
    assert f" Image {repo}:1  Pushed" in r.stderr.splitlines()
    out = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--no-creds",
                          f"docker://{repo}:1"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    r = compose(root, project, "pull", "--ignore-buildable")  # out can be built: skipped
    assert r.returncode == 0 and "out" not in r.stderr
