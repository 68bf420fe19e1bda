"""`minirun push` end to end: the CLI in a subprocess with --root tmp_path, against Debian's
docker-registry (open, basic, token: the conftest fixtures), often through a RecordingProxy that
shows which requests a push made. skopeo and a fresh `minirun pull` check what the registry got;
podman too, when it is installed and we are root.

Every test pushes to repositories of its own (push/<random>): the registries share one storage.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

import localregistry as lr
from oneline import cli_error
from minirun.image import registry as registry_module
from minirun.image.push import INDEX_FILE, push
from minirun.image.store import Store

MINIRUN = [str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "minirun")]
ENV = {k: v for k, v in os.environ.items()
       if "proxy" not in k.lower() and not k.startswith("MINIRUN_")}
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def run(root: Path, *args: str, input: str | None = None, timeout: float = 120):
    return subprocess.run([*MINIRUN, "--root", str(root), *args], capture_output=True, text=True,
                          input=input, timeout=timeout, env=ENV)


def ok(root: Path, *args: str, **kw):
    r = run(root, *args, **kw)
    assert r.returncode == 0, r.stderr
    return r


def store_of(root: Path) -> Store:
    return Store(str(root / "image"), sync=False)


def new_repo() -> str:
    return f"push/{uuid.uuid4().hex[:10]}"


def rootfs_tar(path: Path, payload: bytes = b"") -> Path:
    """A tiny rootfs for `minirun import`; `payload` goes to /data/blob (make it big and random
    to get a layer that gzip cannot shrink below a lowered chunk threshold)."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for d in ("bin", "etc", "data"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(info)
        files = {"etc/motd": b"pushed by minirun\n", "bin/hello": b"#!/bin/sh\necho hi\n",
                 "data/blob": payload or b"x" * 1000}
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755 if name.startswith("bin/") else 0o644
            tf.addfile(info, io.BytesIO(data))
    return path


def imported(root: Path, name: str, payload: bytes = b"") -> str:
    """Import a rootfs tar as `name`; returns the image ID."""
    tar = rootfs_tar(root.parent / f"{root.name}-rootfs.tar", payload)
    return ok(root, "import", str(tar), name).stdout.strip()


def parse_push(stdout: str) -> tuple[list[str], str, int]:
    """(layer lines, digest, size) of a non-terminal `minirun push` output."""
    lines = stdout.splitlines()
    assert lines[0].startswith("The push refers to repository ["), stdout
    tag, _, rest = lines[-1].partition(": digest: ")
    digest, _, size = rest.partition(" size: ")
    assert digest.startswith("sha256:") and size.isdigit(), stdout
    return lines[1:-1], digest, int(size)


def skopeo_inspect(name: str, raw: bool = False) -> dict:
    if not shutil.which("skopeo"):
        pytest.skip("skopeo not installed (apt-get install skopeo; scripts/setup does it)")
    cmd = ["skopeo", "inspect", "--tls-verify=false", "--no-creds"] + (["--raw"] if raw else [])
    r = subprocess.run([*cmd, f"docker://{name}"], capture_output=True, text=True, timeout=60,
                       env={**ENV, "REGISTRY_AUTH_FILE": "/nonexistent/auth.json"})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def pulled_id(root: Path, name: str) -> str:
    """Pull `name` into a fresh root; the image ID it got there."""
    ok(root, "pull", "-q", name)
    return store_of(root).resolve(name).id


@pytest.fixture
def proxy(open_registry):
    p = lr.RecordingProxy(open_registry.host)
    yield p
    p.stop()


@pytest.fixture
def own_token_registry(token_registry, registry_storage, tmp_path_factory):
    """A token registry of our own over the shared storage: its token log is ours to read (the
    session one's is checked by test_registry_live)."""
    reg = lr.LocalRegistry(tmp_path_factory.mktemp("registry-token-push"), "token",
                           registry_storage).start()
    yield reg
    reg.stop()


# ---- what gets pushed ---------------------------------------------------------------------------

def test_push_an_imported_image(open_registry, tmp_path):
    """An uncompressed layer is gzipped, wrapped in an OCI manifest around the unchanged config:
    skopeo sees it, a fresh pull by the printed digest gets the same image ID."""
    name = f"{open_registry.host}/{new_repo()}:1"
    image_id = imported(tmp_path / "a", name)
    r = ok(tmp_path / "a", "push", name)
    assert r.stderr == "" and "\r" not in r.stdout and "\x1b" not in r.stdout
    assert r.stdout.startswith(f"The push refers to repository [{name[:-2]}]\n")
    layers, digest, size = parse_push(r.stdout)
    record = store_of(tmp_path / "a").resolve(name)
    assert layers == [f"{record.diff_ids[0][7:19]}: Pushed"]  # Docker keys layers by diff_id
    assert r.stdout.splitlines()[-1] == f"1: digest: {digest} size: {size}"

    index = json.loads((tmp_path / "a" / "image" / INDEX_FILE).read_text())
    gz = index[record.diff_ids[0]]
    raw = skopeo_inspect(name, raw=True)
    assert raw["mediaType"] == OCI_MANIFEST
    assert raw["config"]["digest"] == image_id == record.id
    assert [(d["mediaType"], d["digest"], d["size"]) for d in raw["layers"]] == [
        ("application/vnd.oci.image.layer.v1.tar+gzip", gz["digest"], gz["size"])]
    info = skopeo_inspect(name)
    assert info["Digest"] == digest and info["Layers"] == [gz["digest"]]
    status, _, body = open_registry.get(f"/v2/{name.split('/', 1)[1].replace(':', '/manifests/')}",
                                        {"Accept": OCI_MANIFEST})
    assert status == 200 and len(body) == size and lr.sha256(body) == digest

    assert f"{name[:-2]}@{digest}" in record.repo_digests  # Docker's RepoDigests after a push
    assert pulled_id(tmp_path / "b", f"{name[:-2]}@{digest}") == image_id
    b = store_of(tmp_path / "b")
    motd = Path(b.layer_dir(b.resolve(f"{name[:-2]}@{digest}").diff_ids[0]), "etc", "motd")
    assert motd.read_text() == "pushed by minirun\n"


def test_second_push_sends_no_blob(proxy, tmp_path):
    name = f"{proxy.host}/{new_repo()}:1"
    imported(tmp_path, name)
    first = parse_push(ok(tmp_path, "push", name).stdout)
    proxy.clear()
    layers, digest, _ = parse_push(ok(tmp_path, "push", name).stdout)
    assert layers and all(ln.endswith(": Layer already exists") for ln in layers)
    assert digest == first[1]
    assert proxy.blob_writes() == []  # no POST, PATCH or PUT of a blob: only HEADs
    assert {r.method for r in proxy.requests} == {"HEAD", "PUT"}
    assert [r.path for r in proxy.requests if r.method == "PUT"] == [
        f"/v2/{name.split('/', 1)[1].replace(':1', '')}/manifests/1"]


def test_push_to_another_repository_mounts_the_blobs(proxy, tmp_path):
    repo_a, repo_b = new_repo(), new_repo()
    a, b = f"{proxy.host}/{repo_a}:1", f"{proxy.host}/{repo_b}:1"
    imported(tmp_path, a)
    digest_a = parse_push(ok(tmp_path, "push", a).stdout)[1]
    ok(tmp_path, "tag", a, b)
    proxy.clear()
    layers, digest_b, _ = parse_push(ok(tmp_path, "push", b).stdout)
    assert layers and all(ln.endswith(f": Mounted from {repo_a}") for ln in layers), layers
    assert digest_b == digest_a
    posts = [r.path for r in proxy.requests if r.method == "POST"]
    assert len(posts) == 2 and all(f"from={quote(repo_a, safe='')}" in p and "mount=" in p
                                   for p in posts)  # the layer and the config
    assert not [r for r in proxy.requests if r.method == "PATCH"]
    assert [r.method for r in proxy.blob_writes()] == ["POST", "POST"]


def test_a_refused_mount_uploads_to_the_upload_it_opened(proxy, tmp_path):
    """The image is also tagged for a repository that the registry lacks: the mount gets a 202
    and the blob goes to that upload, without another POST."""
    a, b = f"{proxy.host}/{new_repo()}:1", f"{proxy.host}/{new_repo()}:1"
    imported(tmp_path, a)
    ok(tmp_path, "tag", a, b)  # never pushed: nothing to mount from
    layers, digest, _ = parse_push(ok(tmp_path, "push", a).stdout)
    assert layers and all(ln.endswith(": Pushed") for ln in layers)
    posts = [r.path for r in proxy.requests if r.method == "POST"]
    assert len(posts) == 2 and all("mount=" in p for p in posts)
    assert len([r for r in proxy.requests if r.method == "PUT" and "/blobs/" in r.path]) == 2
    assert pulled_id(tmp_path / "fresh", f"{a[:-2]}@{digest}") == store_of(tmp_path).resolve(a).id


def test_pulled_v2s2_image_keeps_its_manifest(open_registry, tmp_path):
    """Compressed layers go as they are, under the stored manifest, byte for byte: a Docker
    v2s2 image stays v2s2 and keeps the digest it was pulled by."""
    src = f"{open_registry.host}/busybox:v2s2"
    ok(tmp_path, "pull", "-q", src)
    record = store_of(tmp_path).resolve(src)
    dest = f"{open_registry.host}/{new_repo()}:v2s2"
    ok(tmp_path, "tag", src, dest)
    layers, digest, size = parse_push(ok(tmp_path, "push", dest).stdout)
    assert digest == record.manifest
    assert len(layers) == 2 and all(ln.endswith(": Mounted from busybox") for ln in layers)
    raw = skopeo_inspect(dest, raw=True)
    assert raw["mediaType"] == DOCKER_MANIFEST
    assert size == os.path.getsize(store_of(tmp_path).blob_path(digest))
    assert not (tmp_path / "image" / INDEX_FILE).exists()  # nothing was compressed


def test_loaded_docker_archive_layers_are_gzipped(open_registry, tmp_path):
    """`load` of a docker-archive keeps uncompressed layers: both are gzipped (concurrently)
    into a new OCI manifest, and the image ID survives the trip."""
    src = f"{open_registry.host}/busybox:oci"
    ok(tmp_path / "a", "pull", "-q", src)
    ok(tmp_path / "a", "save", "-o", str(tmp_path / "bb.tar"), src)
    ok(tmp_path / "b", "load", "-i", str(tmp_path / "bb.tar"))
    record = store_of(tmp_path / "b").resolve(src)
    assert record.layers == record.diff_ids  # stored uncompressed
    dest = f"{open_registry.host}/{new_repo()}:1"
    ok(tmp_path / "b", "tag", src, dest)
    layers, digest, _ = parse_push(ok(tmp_path / "b", "push", dest).stdout)
    assert sorted(layers) == sorted(f"{d[7:19]}: Pushed" for d in record.diff_ids)
    raw = skopeo_inspect(dest, raw=True)
    assert raw["mediaType"] == OCI_MANIFEST and raw["config"]["digest"] == record.id
    assert all(d["mediaType"].endswith("+gzip") for d in raw["layers"])
    assert pulled_id(tmp_path / "c", f"{dest[:-2]}@{digest}") == record.id


def test_mixed_layers_as_build_makes_them(open_registry, tmp_path):
    """A pulled base (gzip blobs, Docker v2s2 manifest) plus an uncompressed layer on top, as
    `build` stores them: the base layers are mounted as they are, the new one gzipped, all in
    one OCI manifest (Docker's layer types turned into OCI's)."""
    src = f"{open_registry.host}/busybox:v2s2"
    ok(tmp_path, "pull", "-q", src)
    imported(tmp_path, "scratch-layer:1")  # an uncompressed layer in the store
    s = store_of(tmp_path)
    base, top = s.resolve(src), s.resolve("scratch-layer:1")
    config = json.loads(s.open_blob(base.id).read())
    config["rootfs"]["diff_ids"].append(top.diff_ids[0])
    config_data = json.dumps(config).encode()
    image_id = lr.sha256(config_data)
    s.put_blob(config_data, image_id)
    manifest = json.loads(s.open_blob(base.manifest).read())
    manifest["config"] = {**manifest["config"], "digest": image_id, "size": len(config_data)}
    manifest["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                               "digest": top.diff_ids[0],
                               "size": os.path.getsize(s.blob_path(top.diff_ids[0]))})
    manifest_data = json.dumps(manifest).encode()
    s.put_blob(manifest_data, lr.sha256(manifest_data))
    dest = f"{open_registry.host}/{new_repo()}:built"
    s.add_image(type(base)(id=image_id, diff_ids=config["rootfs"]["diff_ids"],
                           layers=[*base.layers, top.diff_ids[0]],
                           manifest=lr.sha256(manifest_data), repo_tags=[dest],
                           created=base.created, platform=base.platform))

    layers, digest, _ = parse_push(ok(tmp_path, "push", dest).stdout)
    # (Without a terminal each line comes when its layer is done, as with docker: any order.)
    assert sorted(layers) == sorted([f"{top.diff_ids[0][7:19]}: Pushed"] + [
        f"{d[7:19]}: Mounted from busybox" for d in base.diff_ids])
    raw = skopeo_inspect(dest, raw=True)
    assert raw["mediaType"] == OCI_MANIFEST and raw["config"]["digest"] == image_id
    assert [d["digest"] for d in raw["layers"][:2]] == base.layers
    assert {d["mediaType"] for d in raw["layers"]} == {"application/vnd.oci.image.layer.v1.tar+gzip"}
    assert pulled_id(tmp_path / "fresh", f"{dest.rpartition(':')[0]}@{digest}") == image_id


# ---- chunked uploads ------------------------------------------------------------------------------

@pytest.fixture
def small_chunks(monkeypatch):
    """Chunked uploads above 64 KiB, in 64 KiB chunks (the defaults are 8 MiB)."""
    monkeypatch.setattr(registry_module, "MONOLITHIC_MAX", 64 << 10)
    monkeypatch.setattr(registry_module, "UPLOAD_CHUNK", 64 << 10)
    return 64 << 10


def _push_in_process(root: Path, name: str):
    return push(store_of(root), name, auth_file=str(root / "auth.json"))


def _patches(proxy) -> list[tuple[int, int]]:
    out = []
    for r in proxy.requests:
        if r.method == "PATCH":
            start, _, end = r.headers["Content-Range"].partition("-")
            assert int(r.headers["Content-Length"]) == int(end) - int(start) + 1 == len(r.body)
            out.append((int(start), int(end)))
    return out


def test_chunked_upload_above_the_threshold(proxy, tmp_path, small_chunks):
    name = f"{proxy.host}/{new_repo()}:1"
    image_id = imported(tmp_path / "a", name, payload=os.urandom(300_000))
    [pushed] = _push_in_process(tmp_path / "a", name)
    size = json.loads((tmp_path / "a" / "image" / INDEX_FILE).read_text()).popitem()[1]["size"]
    ranges = _patches(proxy)
    assert len(ranges) == -(-size // small_chunks) >= 4
    assert ranges[0][0] == 0 and ranges[-1][1] == size - 1
    assert all(b[0] == a[1] + 1 for a, b in zip(ranges, ranges[1:]))  # contiguous, in order
    final = [r for r in proxy.requests if r.method == "PUT" and "/blobs/" in r.path]
    assert any("digest=sha256" in r.path and r.body == b"" for r in final)
    assert pulled_id(tmp_path / "b", f"{name[:-2]}@{pushed.digest}") == image_id


def test_chunked_upload_resumes_after_a_failed_chunk(proxy, tmp_path, small_chunks):
    """The second PATCH fails (500) before the registry saw it: we ask where the upload is
    (GET -> Range) and go on from there, in the same upload."""
    failed = []

    def intercept(p, req):
        if req.method == "PATCH" and not req.headers["Content-Range"].startswith("0-") \
                and not failed:
            failed.append(req)
            return 500, {}, b'{"errors":[{"code":"UNKNOWN","message":"injected"}]}'
        return None

    proxy.intercept = intercept
    name = f"{proxy.host}/{new_repo()}:1"
    image_id = imported(tmp_path / "a", name, payload=os.urandom(300_000))
    [pushed] = _push_in_process(tmp_path / "a", name)
    assert failed
    status = [r for r in proxy.requests if r.method == "GET" and "/blobs/uploads/" in r.path]
    assert len(status) == 1
    ranges = _patches(proxy)
    assert ranges.count(ranges[1]) == 2  # the failed chunk, sent again
    assert [r for r in proxy.requests if r.method == "POST"] and len(
        [r for r in proxy.requests if r.method == "POST" and "mount=" not in r.path]) == 2
    assert pulled_id(tmp_path / "b", f"{name[:-2]}@{pushed.digest}") == image_id


def test_chunk_cut_short_restarts_the_upload(proxy, tmp_path, small_chunks):
    """Half of the second chunk reaches the registry, then the client sees a 500. distribution
    then holds more than the offset signed into our upload URL's _state, and cancels the upload
    when we ask about it (BLOB_UPLOAD_INVALID): the blob is sent again in a new upload."""
    cut = []

    def intercept(p, req):
        if req.method == "PATCH" and not req.headers["Content-Range"].startswith("0-") and not cut:
            cut.append(req)
            start = int(req.headers["Content-Range"].split("-")[0])
            half = len(req.body) // 2
            headers = {**req.headers, "Content-Range": f"{start}-{start + half - 1}"}
            p.forward(req, headers=headers, body=req.body[:half])
            return 500, {}, b""
        return None

    proxy.intercept = intercept
    name = f"{proxy.host}/{new_repo()}:1"
    image_id = imported(tmp_path / "a", name, payload=os.urandom(300_000))
    [pushed] = _push_in_process(tmp_path / "a", name)
    assert cut
    layer_posts = [r for r in proxy.requests if r.method == "POST" and "mount=" not in r.path]
    assert len(layer_posts) == 3  # the layer twice, the config once
    assert pulled_id(tmp_path / "b", f"{name[:-2]}@{pushed.digest}") == image_id


# ---- auth ---------------------------------------------------------------------------------------

def test_basic_auth_push_needs_login(basic_registry, tmp_path):
    name = f"{basic_registry.host}/{new_repo()}:1"
    imported(tmp_path, name)
    line = cli_error(run(tmp_path, "push", name))
    assert "unauthorized" in line and f"`minirun login {basic_registry.host}`" in line
    ok(tmp_path, "login", "-u", lr.USER, "--password-stdin", basic_registry.host,
       input=lr.PASSWORD + "\n")
    layers, _, _ = parse_push(ok(tmp_path, "push", name).stdout)
    assert layers and all(ln.endswith(": Pushed") for ln in layers)


def test_token_auth_push(own_token_registry, tmp_path):
    """Anonymous tokens grant pull only: the push's mount gets 401 insufficient_scope, asks
    again for exactly that scope and is refused in one line. After `minirun login` the tokens
    are for pull,push on the target, plus pull on the mount source (one token naming both,
    shared by the layer workers), and the layers are mounted."""
    reg = own_token_registry
    src = f"{reg.host}/busybox:oci"
    ok(tmp_path, "pull", "-q", src)  # anonymous: a pull token
    repo = new_repo()
    dest = f"{reg.host}/{repo}:1"
    ok(tmp_path, "tag", src, dest)
    push_scope = f"scope=repository%3A{quote(repo, safe='')}%3Apull%2Cpush"
    mount_scope = f"{push_scope}&scope=repository%3Abusybox%3Apull"
    before = len(reg.token_requests())
    line = cli_error(run(tmp_path, "push", dest))
    assert "unauthorized" in line and f"`minirun login {reg.host}`" in line
    asked = [p.partition("&")[2] for p in reg.token_requests()[before:]]
    # HEAD (the challenge names pull), the mount, the mount again after insufficient_scope:
    # our scopes, plus the challenge's when it spells them otherwise (distribution lists the
    # actions in Go map order: "pull,push" or "push,pull").
    assert len(asked) == 3, asked
    assert asked[:2] == [f"{push_scope}&scope=repository%3A{quote(repo, safe='')}%3Apull",
                         mount_scope]
    assert asked[2] == mount_scope or asked[2].startswith(mount_scope + "&scope="), asked

    ok(tmp_path, "login", "-u", lr.USER, "--password-stdin", reg.host, input=lr.PASSWORD + "\n")
    before = len(reg.token_requests())
    layers, digest, _ = parse_push(ok(tmp_path, "push", dest).stdout)
    assert len(layers) == 2 and all(ln.endswith(": Mounted from busybox") for ln in layers)
    asked = [p.partition("&")[2] for p in reg.token_requests()[before:]]
    assert asked == [f"{push_scope}&scope=repository%3A{quote(repo, safe='')}%3Apull",
                     mount_scope]
    assert digest == store_of(tmp_path).resolve(src).manifest
    assert pulled_id(tmp_path / "fresh", f"{dest[:-2]}@{digest}") == \
        store_of(tmp_path).resolve(src).id


def test_a_refused_blob_fails_in_one_line_and_records_no_digest(proxy, tmp_path):
    """The registry refuses the layer: one line, exit 125, no RepoDigest, no manifest pushed;
    the gzip digest is remembered all the same (the next push need not compress again)."""
    name = f"{proxy.host}/{new_repo()}:1"
    image_id = imported(tmp_path, name)

    def intercept(p, req):
        if req.method == "PUT" and "/blobs/" in req.path and image_id[7:] not in req.path:
            return 400, {"Content-Type": "application/json"}, \
                b'{"errors":[{"code":"DIGEST_INVALID","message":"injected refusal"}]}'
        return None

    proxy.intercept = intercept
    line = cli_error(run(tmp_path, "push", name))
    assert line.startswith(f"push {proxy.host}/") and "injected refusal" in line
    assert store_of(tmp_path).resolve(name).repo_digests == []
    assert not [r for r in proxy.requests if "/manifests/" in r.path]
    assert json.loads((tmp_path / "image" / INDEX_FILE).read_text())


def test_unreachable_registry_is_one_line(tmp_path):
    host = f"127.0.0.1:{lr.free_port()}"
    imported(tmp_path, f"{host}/x:1")
    line = cli_error(run(tmp_path, "push", f"{host}/x:1"))
    assert f"cannot reach registry {host}" in line


# ---- the command line ---------------------------------------------------------------------------

def test_names_that_cannot_be_pushed(tmp_path):
    r = run(tmp_path, "push", "127.0.0.1:5000/nosuch")
    assert cli_error(r) == \
        "An image does not exist locally with the tag: 127.0.0.1:5000/nosuch"
    assert r.stdout == "Using default tag: latest\n"  # as docker prints it, before asking
    r = run(tmp_path, "push", "-q", "nosuch:1")
    assert cli_error(r) == "An image does not exist locally with the tag: nosuch"
    assert r.stdout == ""
    imported(tmp_path, "127.0.0.1:5000/x:1")
    line = cli_error(run(tmp_path, "push", "127.0.0.1:5000/x:2"))
    assert line == "tag does not exist: 127.0.0.1:5000/x:2"
    assert "tag can't be used with --all-tags" in cli_error(
        run(tmp_path, "push", "-a", "127.0.0.1:5000/x:1"))
    assert "cannot push a digest reference" in cli_error(
        run(tmp_path, "push", "127.0.0.1:5000/x@sha256:" + "0" * 64))
    assert "invalid reference format" in cli_error(run(tmp_path, "push", "UPPER/x"))


def test_all_tags_and_quiet(open_registry, tmp_path):
    repo = f"{open_registry.host}/{new_repo()}"
    imported(tmp_path, f"{repo}:1")
    ok(tmp_path, "tag", f"{repo}:1", f"{repo}:2")
    r = ok(tmp_path, "push", "-a", repo)
    lines = r.stdout.splitlines()
    assert lines[0] == f"The push refers to repository [{repo}]"
    assert lines.count(lines[0]) == 1
    digests = [ln for ln in lines if ": digest: sha256:" in ln]
    assert [d.split(":")[0] for d in digests] == ["1", "2"]
    assert len({d.split()[2] for d in digests}) == 1  # one image, one manifest
    assert ok(tmp_path, "push", "-q", f"{repo}:1").stdout == f"{repo}:1\n"
    assert ok(tmp_path, "image", "push", "-q", "-a", repo).stdout == f"{repo}\n"
    assert ok(tmp_path, "push", "-q", repo + ":2").stderr == ""


def test_terminal_display_redraws_each_layer_in_place():
    from minirun.cli.push import _display
    from minirun.engine.api.distribution import _PushMessages
    from minirun.image.push import Pushed
    from minirun.image.reference import parse

    out = io.StringIO()
    d = _display(out, tty=True)
    m = _PushMessages(d)  # image/push.py's reports -> Docker's JSON messages -> the display
    m.start(parse("127.0.0.1:5000/busybox:latest"))
    m.layer("aaaaaaaaaaaa", "Preparing")
    m.layer("bbbbbbbbbbbb", "Preparing")
    m.layer("aaaaaaaaaaaa", "Pushing", 1_200_000, 3_400_000)
    m.layer("bbbbbbbbbbbb", "Layer already exists")
    m.layer("aaaaaaaaaaaa", "Pushed")
    m.finish(Pushed("127.0.0.1:5000/busybox:latest", "latest", "sha256:" + "0" * 64, 527))
    text = out.getvalue()
    assert text.startswith("The push refers to repository [127.0.0.1:5000/busybox]\n"
                           "aaaaaaaaaaaa: Preparing\nbbbbbbbbbbbb: Preparing\n")
    assert "\x1b[2A\r\x1b[2Kaaaaaaaaaaaa: Pushing  1.2MB/3.4MB" in text
    assert "\x1b[1A\r\x1b[2Kbbbbbbbbbbbb: Layer already exists" in text
    assert "\x1b[2A\r\x1b[2Kaaaaaaaaaaaa: Pushed" in text
    assert text.endswith(f"latest: digest: sha256:{'0' * 64} size: 527\n")

    out = io.StringIO()
    d = _display(out, tty=False)
    for status in ("Preparing", "Pushing", "Pushed"):
        d.layer("aaaaaaaaaaaa", status, 1, 2)
    d.layer("bbbbbbbbbbbb", "Mounted from library/busybox")
    assert out.getvalue() == ("aaaaaaaaaaaa: Pushed\n"
                              "bbbbbbbbbbbb: Mounted from library/busybox\n")


# ---- another client reads what we pushed ----------------------------------------------------------

@pytest.mark.skipif(not shutil.which("podman"), reason="podman not installed (scripts/setup "
                    "installs it)")
@pytest.mark.skipif(os.geteuid() != 0, reason="podman with a private vfs storage here needs root")
def test_podman_pulls_what_we_pushed(open_registry, tmp_path):
    name = f"{open_registry.host}/{new_repo()}:1"
    image_id = imported(tmp_path / "root", name)
    digest = parse_push(ok(tmp_path / "root", "push", name).stdout)[1]
    p = tmp_path / "podman"
    p.mkdir()
    (p / "containers.conf").write_text(
        "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n"
        f"events_logfile_path = \"{p}/events.log\"\ntmp_dir = \"{p}/tmp\"\n")
    (p / "storage.conf").write_text(
        f"[storage]\ndriver = \"vfs\"\nrunroot = \"{p}/runroot\"\ngraphroot = \"{p}/root\"\n")
    (p / "auth.json").write_text("{}")  # podman insists that its auth file exists
    env = {**ENV, "CONTAINERS_CONF": str(p / "containers.conf"),
           "CONTAINERS_STORAGE_CONF": str(p / "storage.conf"),
           "REGISTRY_AUTH_FILE": str(p / "auth.json")}

    def podman(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["podman", *args], capture_output=True, text=True, env=env,
                              timeout=120)

    try:
        r = podman("pull", "--tls-verify=false", name)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip().splitlines()[-1] == image_id.partition(":")[2]
        r = podman("image", "inspect", "--format", "{{.Digest}}", name)
        assert r.returncode == 0 and r.stdout.strip() == digest, r.stderr
    finally:
        podman("system", "reset", "-f")


# ---- a fake registry ------------------------------------------------------------------------------

def test_forbidden_push_says_so_in_one_line(fake, tmp_path):
    """Credentials that may pull but not push: 403 DENIED, named, with where to fix it."""
    def route(req):
        if req.method == "HEAD":
            return 404, {}, b""
        return 403, {"Content-Type": "application/json"}, \
            b'{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}'

    srv = fake(route)
    imported(tmp_path, f"{srv.host}/x:1")
    line = cli_error(run(tmp_path, "push", f"{srv.host}/x:1"))
    assert line == (f"push {srv.host}/x@{store_of(tmp_path).resolve(f'{srv.host}/x:1').id}"
                    ": requested access to the resource is denied (pushing needs write access: "
                    f"check `minirun login {srv.host}`)")
