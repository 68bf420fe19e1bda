"""The container rootfs on overlayfs: image layers below, a private writable layer on top."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from minirun.image import overlay
from minirun.image.layers import apply_layer

from helpers import OCI, REPO


def tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def container_dir(tmp_path):
    d = tmp_path / "ctr"
    d.mkdir()
    yield d
    overlay.unmount_rootfs(str(d))


def test_many_layers_fit_thanks_to_short_names(tmp_path, container_dir):
    layers = tmp_path / "layers"
    layers.mkdir()
    names = []
    for i in range(200):
        name = f"{i:012x}"
        apply_layer(io.BytesIO(tar_of({f"f{i}": b"x", "shared": str(i).encode()})), str(layers / name))
        names.append(name)
    merged = Path(overlay.mount_rootfs(str(layers), names, str(container_dir)))
    assert (merged / "f0").exists() and (merged / "f199").exists()
    assert (merged / "shared").read_text() == "199"  # the top layer wins
    (merged / "new").write_text("hi")
    assert (container_dir / "upper" / "new").read_text() == "hi"  # writes go to upper only
    assert not any((layers / n / "new").exists() for n in names)


def test_mounts_from_many_threads_at_once_each_find_their_layers(tmp_path):
    """compose starts services from threads and the API service answers from threads. The
    lowerdirs are named relative to the cwd, which the process shares: without the lock in
    overlay.mount_in one thread's fchdir back lands between another's chdir and mount, and
    that mount fails with ENOENT (seen in CI: compose up of three services). The race is
    narrow: without the lock this test fails about one run in four, with it never."""
    import threading

    layers = tmp_path / "layers"
    layers.mkdir()
    names = [f"{i:012x}" for i in range(3)]
    for i, name in enumerate(names):
        apply_layer(io.BytesIO(tar_of({f"f{i}": b"x"})), str(layers / name))
    dirs = [tmp_path / f"c{n}" for n in range(200)]
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def mount_some(mine: list[Path]) -> None:
        start.wait()
        for d in mine:
            try:
                overlay.mount_rootfs(str(layers), names, str(d))
            except BaseException as e:  # noqa: BLE001 - collected and asserted below
                errors.append(e)
    try:
        threads = [threading.Thread(target=mount_some, args=(dirs[i::8],)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert all((d / "rootfs" / "f2").exists() for d in dirs)
    finally:
        for d in dirs:
            overlay.unmount_rootfs(str(d))


def test_a_container_runs_on_the_image(tmp_path, container_dir):
    image = tmp_path / "img"
    subprocess.run([str(REPO / "scripts" / "build-image"), str(image)], check=True,
                   capture_output=True)
    index = json.loads((image / "index.json").read_text())
    blob = lambda d: image / "blobs" / "sha256" / d.split(":")[1]  # noqa: E731
    manifest = json.loads(blob(index["manifests"][0]["digest"]).read_text())
    layers = tmp_path / "layers"
    layers.mkdir()
    apply_layer(str(blob(manifest["layers"][0]["digest"])), str(layers / "busybox00001"))
    merged = overlay.mount_rootfs(str(layers), ["busybox00001"], str(container_dir))
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    subprocess.run([OCI, "spec", "--bundle", str(bundle)], check=True)
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["root"] = {"path": merged, "readonly": False}
    cfg["process"].update(terminal=False, args=["sh", "-c", "echo changed > /etc/motd; cat /etc/motd"])
    (bundle / "config.json").write_text(json.dumps(cfg))
    r = subprocess.run([OCI, "--root", str(tmp_path / "state"), "run", "--bundle", str(bundle),
                        "ovl-test"], capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "changed\n"
    assert (container_dir / "upper" / "etc" / "motd").exists()
    assert not (layers / "busybox00001" / "etc" / "motd").exists()  # the image is untouched


def test_too_many_layers_is_one_clear_error(tmp_path):
    with pytest.raises(overlay.OverlayError, match="do not fit"):
        overlay.mount_rootfs(str(tmp_path), [f"{i:012x}" for i in range(400)], str(tmp_path / "c"))
