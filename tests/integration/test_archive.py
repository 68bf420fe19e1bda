"""save, load and import through the CLI: archives minirun writes, and archives others write.

The demo image comes from scripts/build-image (an OCI layout, offline). skopeo makes a
docker-archive from it; skopeo and podman (private storage) check what minirun saves. Tampered
archives must fail with one line and leave no image and no tag behind.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MINIRUN = str(REPO / ".venv" / "bin" / "minirun")
sys.path.insert(0, str(REPO))

from minirun.image.store import Store  # noqa: E402

needs_skopeo = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
needs_podman = pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")


def mr(root: Path, *args: str, check: bool = True, stdin=None, input: bytes | None = None,
       stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    r = subprocess.run([MINIRUN, "--root", str(root), *args], stdout=stdout,
                       stderr=subprocess.PIPE, stdin=stdin if input is None else None,
                       input=input, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError(f"minirun {' '.join(args)} -> {r.returncode}: {r.stderr.decode()}")
    return r


def store_of(root: Path) -> Store:
    return Store(str(root / "image"), sync=False)


def tar_dir(src: Path, out: Path, compress: bool = False) -> Path:
    with tarfile.open(out, "w:gz" if compress else "w") as tar:
        for p in sorted(src.iterdir()):
            tar.add(p, arcname=p.name)
    return out


def read_tar(path: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(path) as tar:
        return [(m, tar.extractfile(m).read() if m.isreg() else None) for m in tar.getmembers()]


def write_tar(path: Path, members) -> Path:
    with tarfile.open(path, "w") as tar:
        for m, data in members:
            if data is not None:
                m.size = len(data)
                tar.addfile(m, io.BytesIO(data))
            else:
                tar.addfile(m)
    return path


def assert_nothing_recorded(root: Path) -> None:
    s = store_of(root)
    assert s.images() == []
    assert s._refs() == {}


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("layout") / "busybox"
    subprocess.run([str(REPO / "scripts" / "build-image"), str(out)], check=True,
                   capture_output=True)
    return out


@pytest.fixture(scope="module")
def image_id(layout) -> str:
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_bytes())
    return manifest["config"]["digest"]


def check_busybox(root: Path, image_id: str, name: str = "busybox") -> None:
    s = store_of(root)
    record = s.resolve(name)
    assert record.id == image_id
    assert len(record.diff_ids) == 1
    assert os.path.isfile(os.path.join(s.layer_dir(record.diff_ids[0]), "bin", "busybox"))


@pytest.mark.parametrize("form", ["dir", "tar", "tar.gz", "stdin-gz"])
def test_load_oci_layout(tmp_path, layout, image_id, form):
    root = tmp_path / "root"
    if form == "dir":
        r = mr(root, "load", "-i", str(layout), "--repository", "busybox")
    elif form == "stdin-gz":
        data = tar_dir(layout, tmp_path / "l.tar.gz", compress=True).read_bytes()
        r = mr(root, "load", "--repository", "busybox", input=data)
    else:
        path = tar_dir(layout, tmp_path / f"l.{form}", compress=form == "tar.gz")
        r = mr(root, "load", "-i", str(path), "--repository", "busybox")
    assert r.stdout.decode() == "Loaded image: busybox:latest\n"
    check_busybox(root, image_id)


def test_load_names_the_image_from_its_full_name_annotation(tmp_path, layout, image_id):
    r = mr(tmp_path, "load", "-i", str(layout))
    assert r.stdout.decode() == "Loaded image: busybox:latest\n"
    assert store_of(tmp_path).image(image_id).repo_tags == ["docker.io/library/busybox:latest"]


def test_load_short_ref_name_without_repository_is_untagged(tmp_path, layout, image_id):
    short = tmp_path / "short"
    shutil.copytree(layout, short)  # the module's layout stays as it is
    index = json.loads((short / "index.json").read_text())
    for m in index["manifests"]:
        m["annotations"].pop("io.containerd.image.name", None)  # only the short "latest" left
    (short / "index.json").write_text(json.dumps(index))
    r = mr(tmp_path, "load", "-i", str(short))
    assert r.stdout.decode() == f"Loaded image ID: {image_id}\n"
    s = store_of(tmp_path)
    assert [i.id for i in s.dangling()] == [image_id]


def test_loading_twice_unpacks_once_and_keeps_the_image(tmp_path, layout, image_id):
    mr(tmp_path, "load", "-i", str(layout), "--repository", "busybox")
    s = store_of(tmp_path)
    before = s.layers()
    mr(tmp_path, "load", "-q", "-i", str(layout), "--repository", "other")
    assert s.layers() == before
    # --repository only names images the archive leaves unnamed; this one carries its name
    assert s.image(image_id).repo_tags == ["docker.io/library/busybox:latest"]


def rmi(root: Path, name: str) -> None:
    if mr(root, "rmi", "--help", check=False).returncode == 0:
        mr(root, "rmi", name)
    else:
        s = store_of(root)
        s.delete_image(s.resolve(name).id)
    s = store_of(root)
    s.prune_unused()
    assert s.images() == [] and s.layers() == [] and s.blobs() == []


@pytest.mark.parametrize("fmt", ["docker-archive", "oci"])
def test_save_rmi_load_round_trip(tmp_path, layout, image_id, fmt):
    root = tmp_path / "root"
    mr(root, "load", "-i", str(layout), "--repository", "busybox")
    out = tmp_path / "saved.tar"
    mr(root, "save", "--format", fmt, "-o", str(out), "busybox")
    names = {m.name for m, _ in read_tar(out)}
    if fmt == "oci":
        assert {"oci-layout", "index.json"} <= names
    else:
        assert {"manifest.json", "repositories", f"{image_id[7:]}.json"} <= names
        manifest = json.loads(dict((m.name, d) for m, d in read_tar(out))["manifest.json"])
        assert manifest[0]["RepoTags"] == ["busybox:latest"]
        # docker-archive layers are uncompressed: their digest is the diff_id
        layer = dict((m.name, d) for m, d in read_tar(out))[manifest[0]["Layers"][0]]
        config = json.loads(dict((m.name, d) for m, d in read_tar(out))[f"{image_id[7:]}.json"])
        assert "sha256:" + hashlib.sha256(layer).hexdigest() == config["rootfs"]["diff_ids"][0]
    rmi(root, "busybox")
    r = mr(root, "load", "-i", str(out))
    assert r.stdout.decode() == "Loaded image: busybox:latest\n"
    check_busybox(root, image_id)


def test_save_to_stdout_and_load_from_stdin(tmp_path, layout, image_id):
    a, b = tmp_path / "a", tmp_path / "b"
    mr(a, "load", "-i", str(layout), "--repository", "busybox")
    data = mr(a, "save", image_id[7:19]).stdout  # by ID prefix: all of its tags
    assert data[257:262] == b"ustar"
    r = mr(b, "image", "load", input=data)
    assert r.stdout.decode() == "Loaded image: busybox:latest\n"
    check_busybox(b, image_id)


def test_save_refuses_a_terminal(tmp_path, layout):
    mr(tmp_path, "load", "-i", str(layout), "--repository", "busybox")
    master, slave = os.openpty()
    try:
        r = mr(tmp_path, "save", "busybox", check=False, stdout=slave)
    finally:
        os.close(slave)
        os.close(master)
    assert r.returncode == 125
    assert r.stderr.decode().count("\n") == 1 and "terminal" in r.stderr.decode()


@needs_skopeo
def test_docker_archive_made_by_skopeo_loads(tmp_path, layout, image_id):
    archive = tmp_path / "sk.tar"
    subprocess.run(["skopeo", "copy", "-q", f"oci:{layout}:latest",
                    f"docker-archive:{archive}:busybox:latest"], check=True, capture_output=True)
    r = mr(tmp_path / "root", "load", "-i", str(archive))
    assert r.stdout.decode() == "Loaded image: busybox:latest\n"
    check_busybox(tmp_path / "root", image_id)


@needs_skopeo
@pytest.mark.parametrize("fmt,transport", [("docker-archive", "docker-archive"), ("oci", "oci-archive")])
def test_skopeo_inspects_what_minirun_saves(tmp_path, layout, image_id, fmt, transport):
    mr(tmp_path, "load", "-i", str(layout), "--repository", "busybox")
    out = tmp_path / "saved.tar"
    mr(tmp_path, "save", "--format", fmt, "-o", str(out), "busybox")
    r = subprocess.run(["skopeo", "inspect", "--config", f"{transport}:{out}"],
                       capture_output=True, text=True, check=True)
    config = json.loads(r.stdout)
    assert config["config"]["Cmd"] == ["sh"]
    assert "sha256:" + hashlib.sha256(
        subprocess.run(["skopeo", "inspect", "--raw", "--config", f"{transport}:{out}"],
                       capture_output=True, check=True).stdout).hexdigest() == image_id


@pytest.fixture
def podman(tmp_path):
    d = tmp_path / "podman"
    d.mkdir()
    (d / "containers.conf").write_text('[engine]\ncgroup_manager = "cgroupfs"\n'
                                       'events_logger = "file"\n')
    (d / "storage.conf").write_text(f'[storage]\ndriver = "vfs"\nrunroot = "{d}/runroot"\n'
                                    f'graphroot = "{d}/root"\n')
    env = dict(os.environ, CONTAINERS_CONF=str(d / "containers.conf"),
               CONTAINERS_STORAGE_CONF=str(d / "storage.conf"))

    def run(*args, check=True):
        r = subprocess.run(["podman", *args], capture_output=True, text=True, env=env,
                           timeout=120, stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} -> {r.returncode}: {r.stderr}")
        return r

    yield run
    run("system", "reset", "-f", check=False)
    subprocess.run(["umount", "-R", str(d / "root")], capture_output=True)
    shutil.rmtree(d, ignore_errors=True)


@needs_podman
@pytest.mark.parametrize("fmt", ["docker-archive", "oci"])
def test_podman_loads_what_minirun_saves(tmp_path, layout, image_id, podman, fmt):
    mr(tmp_path, "load", "-i", str(layout), "--repository", "busybox")
    out = tmp_path / "saved.tar"
    mr(tmp_path, "save", "--format", fmt, "-o", str(out), "busybox")
    podman("load", "-i", str(out))
    r = podman("image", "inspect", "--format", "{{.Id}} {{.RepoTags}}", image_id[7:])
    assert r.stdout.startswith(image_id[7:])
    assert "busybox:latest" in r.stdout


# --- tampering ----------------------------------------------------------------------------------


def one_line_failure(r: subprocess.CompletedProcess) -> str:
    err = r.stderr.decode()
    assert r.returncode != 0
    assert err.count("\n") == 1 and err.startswith("minirun: "), err
    return err


@pytest.fixture
def docker_archive(tmp_path, layout) -> Path:
    src = tmp_path / "src"
    mr(src, "load", "-i", str(layout), "--repository", "busybox")
    out = tmp_path / "good.tar"
    mr(src, "save", "-o", str(out), "busybox")
    return out


def test_changed_layer_byte_in_docker_archive_records_nothing(tmp_path, docker_archive):
    members = read_tar(docker_archive)
    for i, (m, data) in enumerate(members):
        if m.name.endswith("layer.tar"):
            members[i] = (m, data[:-1] + b"\x01")  # in the end padding: still a tar, other digest
    bad = write_tar(tmp_path / "bad.tar", members)
    root = tmp_path / "root"
    err = one_line_failure(mr(root, "load", "-i", str(bad), check=False))
    assert "unpacks to" in err
    assert_nothing_recorded(root)
    assert store_of(root).layers() == []


def test_wrong_config_digest_in_docker_archive_records_nothing(tmp_path, docker_archive):
    members = read_tar(docker_archive)
    for i, (m, data) in enumerate(members):
        if m.name.endswith(".json") and "/" not in m.name and m.name != "manifest.json":
            members[i] = (m, data + b" ")
    bad = write_tar(tmp_path / "bad.tar", members)
    root = tmp_path / "root"
    err = one_line_failure(mr(root, "load", "-i", str(bad), check=False))
    assert "digest" in err
    assert_nothing_recorded(root)


def test_changed_layer_byte_in_oci_layout_records_nothing(tmp_path, layout):
    bad = tmp_path / "bad"
    shutil.copytree(layout, bad)
    index = json.loads((bad / "index.json").read_text())
    manifest = json.loads((bad / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_bytes())
    blob = bad / "blobs" / "sha256" / manifest["layers"][0]["digest"][7:]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    root = tmp_path / "root"
    err = one_line_failure(mr(root, "load", "-i", str(tar_dir(bad, tmp_path / "bad.tar")),
                              "--repository", "busybox", check=False))
    assert manifest["layers"][0]["digest"] in err
    assert_nothing_recorded(root)
    assert store_of(root).layers() == []


def test_wrong_config_digest_in_oci_layout_records_nothing(tmp_path, layout):
    bad = tmp_path / "bad"
    shutil.copytree(layout, bad)
    index = json.loads((bad / "index.json").read_text())
    mpath = bad / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]
    manifest = json.loads(mpath.read_bytes())
    cfg = bad / "blobs" / "sha256" / manifest["config"]["digest"][7:]
    cfg.write_bytes(cfg.read_bytes().replace(b'"sh"', b'"ls"'))  # same size, other digest
    root = tmp_path / "root"
    err = one_line_failure(mr(root, "load", "-i", str(bad), "--repository", "busybox", check=False))
    assert manifest["config"]["digest"] in err
    assert_nothing_recorded(root)


def test_a_bad_second_image_records_the_first_neither(tmp_path, layout, docker_archive):
    # two entries in manifest.json: the first good, the second with a missing layer file
    members = read_tar(docker_archive)
    for i, (m, data) in enumerate(members):
        if m.name == "manifest.json":
            entries = json.loads(data)
            second = dict(entries[0], RepoTags=["other:1"], Layers=["nope/layer.tar"])
            members[i] = (m, json.dumps(entries + [second]).encode())
    bad = write_tar(tmp_path / "bad.tar", members)
    root = tmp_path / "root"
    err = one_line_failure(mr(root, "load", "-i", str(bad), check=False))
    assert "nope/layer.tar" in err
    assert_nothing_recorded(root)


def test_traversal_in_archive_is_refused(tmp_path, docker_archive):
    members = read_tar(docker_archive)
    evil = tarfile.TarInfo("../evil")
    members.append((evil, b"x"))
    bad = write_tar(tmp_path / "bad.tar", members)
    err = one_line_failure(mr(tmp_path / "root", "load", "-i", str(bad), check=False))
    assert "'..'" in err
    assert not (tmp_path / "root" / "evil").exists()
    assert_nothing_recorded(tmp_path / "root")


def test_not_an_archive(tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(b"hello" * 100)
    one_line_failure(mr(tmp_path / "root", "load", "-i", str(junk), check=False))
    assert_nothing_recorded(tmp_path / "root")


# --- import -------------------------------------------------------------------------------------


def test_import_flat_tar(tmp_path, rootfs_dir):
    flat = tmp_path / "rootfs.tar.gz"
    with tarfile.open(flat, "w:gz") as tar:
        tar.add(rootfs_dir, arcname=".")
    root = tmp_path / "root"
    r = mr(root, "import", "-c", 'CMD ["sh"]', "-c", "ENV A=1 B=2", "-c", "WORKDIR /tmp",
           "-c", "EXPOSE 80", "-c", "LABEL x=y", str(flat), "mini:1")
    image_id = r.stdout.decode().strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    s = store_of(root)
    record = s.resolve("mini:1")
    assert record.id == image_id and len(record.diff_ids) == 1 and record.layers == record.diff_ids
    assert os.path.isfile(os.path.join(s.layer_dir(record.diff_ids[0]), "bin", "busybox"))
    with s.open_blob(image_id) as f:
        config = json.load(f)
    assert config["config"]["Cmd"] == ["sh"]
    assert config["config"]["Env"] == ["A=1", "B=2"]
    assert config["config"]["WorkingDir"] == "/tmp"
    assert config["config"]["ExposedPorts"] == {"80/tcp": {}}
    assert config["config"]["Labels"] == {"x": "y"}
    # an imported image saves and loads like any other
    out = tmp_path / "mini.tar"
    mr(root, "save", "-o", str(out), "mini:1")
    other = tmp_path / "other"
    assert mr(other, "load", "-i", str(out)).stdout.decode() == "Loaded image: mini:1\n"
    assert store_of(other).resolve("mini:1").id == image_id


def test_import_from_stdin_untagged(tmp_path, rootfs_dir):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(rootfs_dir / "bin", arcname="bin")
    r = mr(tmp_path, "image", "import", "-", input=buf.getvalue())
    image_id = r.stdout.decode().strip()
    s = store_of(tmp_path)
    assert [i.id for i in s.dangling()] == [image_id]
    assert s.image(image_id).diff_ids == ["sha256:" + hashlib.sha256(buf.getvalue()).hexdigest()]


def test_import_bad_change_is_one_line(tmp_path, rootfs_dir):
    flat = tmp_path / "r.tar"
    with tarfile.open(flat, "w") as tar:
        tar.add(rootfs_dir / "bin", arcname="bin")
    err = one_line_failure(mr(tmp_path / "root", "import", "-c", "RUN rm -rf /", str(flat),
                              check=False))
    assert "RUN" in err
    assert_nothing_recorded(tmp_path / "root")


def test_gzip_flat_tar_has_one_gzip_free_layer(tmp_path, rootfs_dir):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        tar.add(rootfs_dir / "etc", arcname="etc")
    raw = data.getvalue()
    flat = tmp_path / "etc.tar.gz"
    flat.write_bytes(gzip.compress(raw))
    image_id = mr(tmp_path, "import", str(flat), "etc:latest").stdout.decode().strip()
    record = store_of(tmp_path).image(image_id)
    assert record.layers == ["sha256:" + hashlib.sha256(raw).hexdigest()]


def test_docker25_archive_with_blobs_layout(tmp_path, layout, image_id):
    """Docker 25+ writes manifest.json naming blobs/sha256/<hex> (uncompressed layers) next to
    an OCI index.json: manifest.json wins, and its full RepoTags are used."""
    d = tmp_path / "d25"
    shutil.copytree(layout, d)
    index = json.loads((d / "index.json").read_text())
    manifest = json.loads((d / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_bytes())
    layer = gzip.decompress((d / "blobs" / "sha256" / manifest["layers"][0]["digest"][7:]).read_bytes())
    layer_hex = hashlib.sha256(layer).hexdigest()
    (d / "blobs" / "sha256" / layer_hex).write_bytes(layer)
    (d / "manifest.json").write_text(json.dumps([{
        "Config": f"blobs/sha256/{image_id[7:]}", "RepoTags": ["docker.io/library/busybox:25"],
        "Layers": [f"blobs/sha256/{layer_hex}"]}]))
    r = mr(tmp_path / "root", "load", "-i", str(tar_dir(d, tmp_path / "d25.tar")))
    assert r.stdout.decode() == "Loaded image: busybox:25\n"
    check_busybox(tmp_path / "root", image_id, "busybox:25")


def test_multi_arch_layout_loads_this_hosts_image(tmp_path):
    out = tmp_path / "multi"
    subprocess.run([str(REPO / "scripts" / "build-image"), str(out), "--multi-arch"], check=True,
                   capture_output=True)
    r = mr(tmp_path / "root", "load", "-i", str(out), "--repository", "busybox")
    assert r.stdout.decode() == "Loaded image: busybox:latest\n"
    s = store_of(tmp_path / "root")
    record = s.resolve("busybox")
    assert record.index == json.loads((out / "index.json").read_text())["manifests"][0]["digest"]
    assert record.platform.split("/")[1] == {"x86_64": "amd64", "aarch64": "arm64"}.get(
        os.uname().machine, os.uname().machine)
