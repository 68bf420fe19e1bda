"""`minirun pull`, `login`, `logout` end to end: the CLI in a subprocess with --root tmp_path.

Against Debian's docker-registry (open, basic, token: the conftest fixtures) and against fake
registries (conftest's FakeHTTP) that serve tampered blobs, lying configs or a slow download
that we kill -9 mid-way. Nothing here touches /var/lib/minirun.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import signal
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

import localregistry as lr
from oneline import cli_error
from polling import poll
from minirun.cli.progress import Display, human
from minirun.engine.api.distribution import _PullMessages
from minirun.image.reference import parse
from minirun.image.store import Store

MINIRUN = [str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "minirun")]
ENV = {k: v for k, v in os.environ.items()
       if "proxy" not in k.lower() and not k.startswith("MINIRUN_")}


def run(root: Path, *args: str, input: str | None = None, timeout: float = 120):
    return subprocess.run([*MINIRUN, "--root", str(root), *args], capture_output=True, text=True,
                          input=input, timeout=timeout, env=ENV)


def ok(root: Path, *args: str, **kw):
    r = run(root, *args, **kw)
    assert r.returncode == 0, r.stderr
    return r


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def store_of(root: Path) -> Store:
    return Store(str(root / "image"), sync=False)


def assert_empty_store(root: Path) -> None:
    """No image, no tag, no layer (whole or partial), nothing in flight."""
    s = store_of(root)
    assert s.images() == []
    assert s._refs() == {}
    assert s.layers() == [] and s.blobs() == []
    assert [n for n in os.listdir(s.layers_dir) if not n.endswith(".json")] == []
    assert os.listdir(s.tmp_dir) == []


def assert_consistent(root: Path) -> None:
    """Every record's layers and blobs are there, every tag names a record, tmp/ is empty."""
    s = store_of(root)
    for r in s.images():
        assert s.has_blob(r.id) and s.has_blob(r.manifest)
        for d in r.diff_ids:
            assert os.path.isdir(s.layer_dir(d))
    assert all(s.has_image(v) for v in s._refs().values())
    assert os.listdir(s.tmp_dir) == []


# ---- the real registry ------------------------------------------------------------------------

def test_pull_by_tag_then_by_digest(open_registry, image, tmp_path):
    name = f"{open_registry.host}/busybox"
    r = ok(tmp_path, "pull", f"{name}:oci")
    assert r.stdout.strip().splitlines()[-1] == f"{name}:oci"
    digest = image["amd64"]["digest"]
    r = ok(tmp_path, "pull", f"{name}@{digest}")
    assert r.stdout.strip().splitlines()[-1] == f"{name}@{digest}"
    s = store_of(tmp_path)
    by_tag, by_digest = s.resolve(f"{name}:oci"), s.resolve(f"{name}@{digest}")
    assert by_tag.id == by_digest.id
    config = json.loads(image["blobs"][digest])["config"]["digest"]
    assert by_tag.id == config
    assert by_tag.manifest == digest and by_tag.index == ""
    assert f"{name}:oci" in by_tag.repo_tags
    assert f"{name}@{digest}" in by_tag.repo_digests
    assert by_tag.platform == "linux/amd64" and by_tag.created.startswith("2024-01-01")
    assert len(by_tag.diff_ids) == 2 and by_tag.size > 0
    assert_consistent(tmp_path)
    layer2 = s.layer_dir(by_tag.diff_ids[1])
    assert Path(layer2, "etc", "motd").read_text() == "hello from layer 2\n"


@pytest.mark.parametrize("tag", ["latest", "list"])
def test_multi_arch_picks_the_host_then_platform_flag(open_registry, image, tmp_path, tag):
    name = f"{open_registry.host}/busybox:{tag}"
    ok(tmp_path / "a", "pull", name)
    rec = store_of(tmp_path / "a").resolve(name)
    assert rec.platform == "linux/amd64"
    assert rec.index and rec.repo_digests == [f"{open_registry.host}/busybox@{rec.index}"]
    ok(tmp_path / "b", "pull", "--platform", "linux/arm64/v8", name)
    rec = store_of(tmp_path / "b").resolve(name)
    assert rec.platform == "linux/arm64/v8"
    assert Path(store_of(tmp_path / "b").layer_dir(rec.diff_ids[0]), "ARCH").exists()
    r = run(tmp_path / "c", "pull", "--platform", "linux/s390x", name)
    assert "no image for platform linux/s390x" in cli_error(r)


def test_docker_v2_schema2_image(open_registry, tmp_path):
    name = f"{open_registry.host}/busybox:v2s2"
    ok(tmp_path, "pull", name)
    assert store_of(tmp_path).resolve(name).platform == "linux/amd64"


def test_second_pull_downloads_nothing(open_registry, tmp_path):
    name = f"{open_registry.host}/busybox:oci"
    first = ok(tmp_path, "pull", name).stdout
    assert "Pull complete" in first and "Downloaded newer image for" in first
    blobs = sorted(os.listdir(store_of(tmp_path).blobs_dir))
    second = ok(tmp_path, "pull", name).stdout
    layer_lines = [ln for ln in second.splitlines() if ln[:12].isalnum() and ": " in ln]
    assert layer_lines and all(ln.endswith(": Already exists") for ln in layer_lines), second
    assert "Downloading" not in second and "Extracting" not in second
    assert f"Status: Image is up to date for {name}" in second
    assert sorted(os.listdir(store_of(tmp_path).blobs_dir)) == blobs


def test_trace_narrates_the_pull_of_a_run(open_registry, tmp_path):
    """`minirun --trace run` of an image not in the store: the pull's steps (manifest, config,
    each layer with its digests) come before the container's, in the trace's format."""
    name = f"{open_registry.host}/busybox:oci"
    r = ok(tmp_path, "--runroot", str(tmp_path / "run"), "--trace", "run", "--rm",
           "--network", "none", name, "true")
    err = r.stderr
    assert f"-- image {name}: not in the store: pull it from {open_registry.host}" in err
    assert "GET /v2/busybox/manifests/oci from" in err
    assert "(the config)" in err and err.count("-> layer ") == 2
    assert err.index("(the config)") < err.index("pivot_root")


def test_plain_lines_when_not_a_terminal(open_registry, tmp_path):
    r = ok(tmp_path, "pull", f"{open_registry.host}/busybox:oci")
    assert "\r" not in r.stdout and "\x1b" not in r.stdout
    lines = r.stdout.splitlines()
    assert lines[0] == f"oci: Pulling from {open_registry.host}/busybox"
    assert any(ln.startswith("Digest: sha256:") for ln in lines)
    assert lines[-2] == f"Status: Downloaded newer image for {open_registry.host}/busybox:oci"
    layer = [ln for ln in lines if ln.endswith(": Pull complete")]
    assert len(layer) == 2
    # One line per state change: each layer shows each state at most once.
    assert len(lines) == len(set(lines))


def test_quiet_prints_only_the_name(open_registry, tmp_path):
    r = ok(tmp_path, "pull", "-q", f"{open_registry.host}/busybox:oci")
    assert r.stdout == f"{open_registry.host}/busybox:oci\n"
    assert r.stderr == ""


def test_basic_auth_needs_login(basic_registry, tmp_path):
    name = f"{basic_registry.host}/busybox:oci"
    assert "unauthorized" in cli_error(run(tmp_path, "pull", name))
    assert_empty_store(tmp_path)
    r = run(tmp_path, "login", "-u", lr.USER, "--password-stdin", basic_registry.host,
            input="wrong\n")
    assert "unauthorized" in cli_error(r)
    config = Path(ENV["DOCKER_CONFIG"]) / "config.json"  # tests/conftest.py's, per test
    assert not config.exists() and not (tmp_path / "auth.json").exists()
    r = ok(tmp_path, "login", "-u", lr.USER, "--password-stdin", basic_registry.host,
           input=lr.PASSWORD + "\n")
    assert r.stdout.strip() == "Login Succeeded"
    assert config.stat().st_mode & 0o777 == 0o600  # where `docker login` keeps them
    assert list(json.loads(config.read_text())["auths"]) == [basic_registry.host]
    ok(tmp_path, "pull", name)
    assert store_of(tmp_path).resolve(name)
    assert ok(tmp_path, "logout", basic_registry.host).stdout.startswith("Removing login")
    r = run(tmp_path, "pull", name)  # the layers are here, but the manifest needs credentials
    assert "unauthorized" in cli_error(r)
    assert ok(tmp_path, "logout", basic_registry.host).stdout.startswith("Not logged in")


def test_login_with_password_flag_warns(basic_registry, tmp_path):
    r = ok(tmp_path, "login", "-u", lr.USER, "-p", lr.PASSWORD, basic_registry.host)
    assert "--password-stdin" in r.stderr


@pytest.fixture
def own_token_registry(token_registry, registry_storage, tmp_path_factory):
    """A token registry of our own over the shared storage (the session one's token log is
    checked by test_registry_live: our pulls must not add to it)."""
    reg = lr.LocalRegistry(tmp_path_factory.mktemp("registry-token-pull"), "token",
                           registry_storage).start()
    yield reg
    reg.stop()


def test_token_auth_anonymous_pull(own_token_registry, tmp_path):
    name = f"{own_token_registry.host}/busybox:latest"
    ok(tmp_path, "pull", name)
    assert store_of(tmp_path).resolve(name).platform == "linux/amd64"
    assert any("scope=repository%3Abusybox%3Apull" in p
               for p in own_token_registry.token_requests())


def test_bad_references_and_unknown_images(open_registry, tmp_path):
    assert "invalid reference format" in cli_error(run(tmp_path, "pull", "UPPER/x"))
    r = run(tmp_path, "pull", f"{open_registry.host}/nosuch:latest")
    assert "nosuch" in cli_error(r)
    assert_empty_store(tmp_path)


# ---- fake registries ----------------------------------------------------------------------------

def tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_image(tars: list[bytes], diff_ids: list[str] | None = None) -> tuple[bytes, dict]:
    """(manifest bytes, {digest: blob}) of an OCI image of gzip layers."""
    blobs: dict[str, bytes] = {}
    layers = []
    for t in tars:
        data = gzip.compress(t, mtime=0)
        blobs[sha(data)] = data
        layers.append({"mediaType": lr.OCI_LAYER_GZIP, "digest": sha(data), "size": len(data)})
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
                         "config": {"Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers",
                                    "diff_ids": diff_ids or [sha(t) for t in tars]}}).encode()
    blobs[sha(config)] = config
    manifest = json.dumps({"schemaVersion": 2, "mediaType": lr.OCI_MANIFEST,
                           "config": {"mediaType": lr.OCI_CONFIG, "digest": sha(config),
                                      "size": len(config)},
                           "layers": layers}).encode()
    return manifest, blobs


def registry_route(manifest: bytes, blobs: dict, *, serve_blob=None):
    """A route for FakeHTTP: /v2/, the manifest by any tag or its digest, blobs by digest.
    serve_blob(req, digest, data) may answer a blob request itself (return None to pass)."""
    def route(req):
        path = req.path.split("?")[0]
        if path == "/v2/":
            return 200, {}, b"{}"
        if "/manifests/" in path:
            return 200, {"Content-Type": lr.OCI_MANIFEST, "Docker-Content-Digest": sha(manifest)}, \
                manifest
        if "/blobs/" in path:
            digest = path.rsplit("/", 1)[1]
            if digest not in blobs:
                return 404, {}, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}'
            if serve_blob is not None:
                answer = serve_blob(req, digest, blobs[digest])
                if answer is not None:
                    return answer
            return 200, {"Content-Type": "application/octet-stream"}, blobs[digest]
        return 404, {}, b"{}"
    return route


def test_wrong_digest_served_fails_and_keeps_nothing(fake, tmp_path):
    manifest, blobs = make_image([tar_of({"a": b"one"}), tar_of({"b": b"two" * 1000})])
    bad = [d for d in blobs if blobs[d][:2] == b"\x1f\x8b"][1]

    def tamper(req, digest, data):
        if digest == bad:
            return 200, {}, bytes([data[0] ^ 1]) + data[1:]  # same size, other bytes
        return None

    srv = fake(registry_route(manifest, blobs, serve_blob=tamper))
    r = run(tmp_path, "pull", f"{srv.host}/img:1")
    line = cli_error(r)
    assert "digest mismatch" in line and bad in line
    assert_empty_store(tmp_path)


def test_diff_id_mismatch_is_refused(fake, tmp_path):
    tars = [tar_of({"a": b"one"}), tar_of({"b": b"two"})]
    lie = sha(b"not this layer")
    manifest, blobs = make_image(tars, diff_ids=[sha(tars[0]), lie])
    srv = fake(registry_route(manifest, blobs))
    line = cli_error(run(tmp_path, "pull", f"{srv.host}/img:1"))
    assert "config says " + lie in line and "nothing was kept" in line
    s = store_of(tmp_path)
    assert s.images() == [] and s._refs() == {}
    assert not s.has_layer(lie) and os.listdir(s.tmp_dir) == []
    # The good layer may stay (verified, unreferenced: prune collects it), never a partial one.
    assert set(s.layers()) <= {sha(tars[0])}
    assert s.prune_unused() is not None and s.layers() == []


def test_config_with_too_few_diff_ids_is_refused(fake, tmp_path):
    tars = [tar_of({"a": b"one"}), tar_of({"b": b"two"})]
    manifest, blobs = make_image(tars, diff_ids=[sha(tars[0])])
    srv = fake(registry_route(manifest, blobs))
    assert "1 diff_ids for 2 layers" in cli_error(run(tmp_path, "pull", f"{srv.host}/img:1"))
    assert_empty_store(tmp_path)


def test_schema1_is_refused(fake, tmp_path):
    body = json.dumps({"schemaVersion": 1, "name": "img", "tag": "1", "fsLayers": []}).encode()
    srv = fake(lambda req: (200, {"Content-Type":
                                  "application/vnd.docker.distribution.manifest.v1+prettyjws"},
                            body) if "/manifests/" in req.path else (200, {}, b"{}"))
    assert "schema 1" in cli_error(run(tmp_path, "pull", f"{srv.host}/img:1"))
    assert_empty_store(tmp_path)


def test_malicious_layer_fails_the_pull_and_leaves_nothing(fake, tmp_path):
    manifest, blobs = make_image([tar_of({"ok": b"1"}), tar_of({"../../escape": b"x"})])
    srv = fake(registry_route(manifest, blobs))
    line = cli_error(run(tmp_path, "pull", f"{srv.host}/img:1"))
    assert "escape" in line
    assert not (tmp_path / "escape").exists() and not (tmp_path / "image" / "escape").exists()
    s = store_of(tmp_path)
    assert s.images() == [] and os.listdir(s.tmp_dir) == []
    # The good layer may stay (whole, verified, unreferenced); the bad one left nothing.
    assert set(s.layers()) <= {sha(tar_of({"ok": b"1"}))}
    assert len([n for n in os.listdir(s.layers_dir) if not n.endswith(".json")]) == len(s.layers())


def test_interrupted_pull_is_completed_by_the_next(fake, open_registry, image, tmp_path):
    """kill -9 while the big layer streams (slowly) from a fake server, then pull the same image
    from the real registry: it completes and the store is consistent."""
    amd64 = image["amd64"]["digest"]
    manifest = image["blobs"][amd64]
    layers = json.loads(manifest)["layers"]
    big = max(layers, key=lambda d: d["size"])["digest"]
    streaming, release = threading.Event(), threading.Event()

    def slow(req, digest, data):
        if digest != big:
            return None

        def answer(handler):
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            try:
                handler.wfile.write(data[: len(data) // 3])
                handler.wfile.flush()
                streaming.set()
                release.wait(20)  # until the client is dead
                handler.wfile.write(data[len(data) // 3:])
            except OSError:
                pass
        return answer

    srv = fake(registry_route(manifest, image["blobs"], serve_blob=slow))
    proc = subprocess.Popen([*MINIRUN, "--root", str(tmp_path), "pull", f"{srv.host}/busybox:oci"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
                            start_new_session=True)
    try:
        assert streaming.wait(30), "the pull never started the big layer"
        s = store_of(tmp_path)
        assert poll(lambda: [n for n in os.listdir(s.tmp_dir) if n.startswith("staging-")])
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
        release.set()
    s = store_of(tmp_path)  # opening the store clears the dead pull's tmp/ junk
    assert s.images() == [] and os.listdir(s.tmp_dir) == []
    name = f"{open_registry.host}/busybox:oci"
    out = ok(tmp_path, "pull", name).stdout
    assert "Pull complete" in out
    assert_consistent(tmp_path)
    rec = store_of(tmp_path).resolve(name)
    assert all(store_of(tmp_path).has_layer(d) for d in rec.diff_ids)


def cut_then(tail):
    """serve_blob for the big layer: the first GET is cut after 1 MiB + 7 bytes (the unpack
    has begun on what came), then tail(req, data) answers the retry."""
    def serve(req, digest, data):
        if len(data) < 2 << 20:
            return None
        if "Range" not in req.headers:
            def cut(handler):
                handler.send_response(200)
                handler.send_header("Content-Length", str(len(data)))
                handler.end_headers()
                handler.wfile.write(data[:(1 << 20) + 7])
                handler.close_connection = True
            return cut
        return tail(req, data)
    return serve


@pytest.mark.parametrize("resume", [True, False], ids=["range", "from-zero"])
def test_layer_unpacked_while_it_downloads_survives_a_cut_connection(fake, tmp_path, resume):
    """The layer is unpacked as it streams. A cut connection resumed with Range goes on feeding
    the same unpack; a registry that answers the Range with the whole blob (200) voids what was
    unpacked, and the verified blob is unpacked again. Either way: the right files, one layer."""
    big = os.urandom(3 << 20)
    tars = [tar_of({"d/big": big, "d/after": b"end"})]  # one layer: it gets the unpacker at once
    manifest, blobs = make_image(tars)

    def tail(req, data):
        if not resume:
            return 200, {}, data
        start = int(req.headers["Range"].removeprefix("bytes=").rstrip("-"))
        return 206, {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}, data[start:]

    srv = fake(registry_route(manifest, blobs, serve_blob=cut_then(tail)))
    ok(tmp_path, "pull", f"{srv.host}/img:1")
    assert_consistent(tmp_path)
    s = store_of(tmp_path)
    top = s.layer_dir(s.resolve(f"{srv.host}/img:1").diff_ids[0])
    assert Path(top, "d", "big").read_bytes() == big
    assert Path(top, "d", "after").read_bytes() == b"end"
    ranges = [r.headers.get("Range") for r in srv.requests if "/blobs/" in r.path and
              r.path.endswith(sha(gzip.compress(tars[0], mtime=0)))]
    assert ranges == [None, f"bytes={(1 << 20) + 7}-"]


@pytest.mark.parametrize("bad", [None, 0, 2])
def test_one_unpacker_for_many_layers(fake, tmp_path, bad):
    """unpackers=1: one layer is unpacked as it downloads, the others are downloaded meanwhile
    and unpacked from their verified blobs in turn. A malicious layer (streamed or waiting)
    fails the pull and leaves nothing half-made."""
    from minirun.errors import MinirunError
    from minirun.image.pull import pull

    files = [{f"l{i}/f{j}": os.urandom(40000) for j in range(20)} for i in range(4)]
    if bad is not None:
        files[bad] = {"../../escape": b"x"}
    manifest, blobs = make_image([tar_of(f) for f in files])
    srv = fake(registry_route(manifest, blobs))
    store = Store(str(tmp_path / "s"), sync=False)
    if bad is not None:
        with pytest.raises(MinirunError, match="escape"):
            pull(store, f"{srv.host}/img:1", unpackers=1)
        assert store.images() == [] and os.listdir(store.tmp_dir) == []
        assert len([n for n in os.listdir(store.layers_dir) if not n.endswith(".json")]) == \
            len(store.layers())
        return
    record = pull(store, f"{srv.host}/img:1", unpackers=1)
    for diff_id, layer in zip(record.diff_ids, files):
        for name, data in layer.items():
            assert Path(store.layer_dir(diff_id), name).read_bytes() == data
    assert os.listdir(store.tmp_dir) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts (char devices, trusted xattrs) need root")
def test_whiteouts_become_overlay_whiteouts(fake, tmp_path):
    tars = [tar_of({"a/x": b"1", "b/y": b"2"}), tar_of({"a/.wh.x": b"", "b/.wh..wh..opq": b""})]
    manifest, blobs = make_image(tars)
    srv = fake(registry_route(manifest, blobs))
    ok(tmp_path, "pull", f"{srv.host}/img:1")
    s = store_of(tmp_path)
    top = s.layer_dir(s.resolve(f"{srv.host}/img:1").diff_ids[1])
    st = os.lstat(os.path.join(top, "a", "x"))
    assert st.st_rdev == 0 and (st.st_mode & 0o170000) == 0o020000
    assert os.getxattr(os.path.join(top, "b"), "trusted.overlay.opaque") == b"y"


# ---- the display --------------------------------------------------------------------------------

def test_terminal_display_redraws_lines_in_place():
    out = io.StringIO()
    d = Display(out, tty=True)
    m = _PullMessages(d)  # image/pull.py's reports -> Docker's JSON messages -> the display
    m.start(parse("127.0.0.1:5000/busybox:latest"))
    m.layer("aaaaaaaaaaaa", "Pulling fs layer")
    m.layer("bbbbbbbbbbbb", "Already exists")
    m.layer("aaaaaaaaaaaa", "Downloading", 12_300_000, 45_600_000)
    m.layer("aaaaaaaaaaaa", "Pull complete")
    m.finish("sha256:" + "0" * 64, "Downloaded newer image for 127.0.0.1:5000/busybox:latest")
    text = out.getvalue()
    assert text.startswith("latest: Pulling from 127.0.0.1:5000/busybox\n")
    assert "\x1b[2A\r\x1b[2Kaaaaaaaaaaaa: Downloading  12.3MB/45.6MB" in text
    assert "\x1b[2A\r\x1b[2Kaaaaaaaaaaaa: Pull complete" in text
    assert text.endswith("Status: Downloaded newer image for 127.0.0.1:5000/busybox:latest\n")


def test_plain_display_prints_each_state_once():
    out = io.StringIO()
    d = Display(out, tty=False)
    for n in range(5):
        d.layer("aaaaaaaaaaaa", "Downloading", n, 5)
    d.layer("aaaaaaaaaaaa", "Pull complete")
    assert out.getvalue() == "aaaaaaaaaaaa: Downloading\naaaaaaaaaaaa: Pull complete\n"


def test_human_sizes():
    assert (human(512), human(12_300_000), human(1_050_000_000)) == ("512B", "12.3MB", "1.05GB")


def test_ensure_image_pull_policies(open_registry, tmp_path, capsys):
    from minirun.cli import Context
    from minirun.cli.pull import ensure_image
    from minirun.errors import ImageError

    ctx = Context(root=str(tmp_path), runroot=str(tmp_path / "run"))
    name = f"{open_registry.host}/busybox:oci"
    with pytest.raises(ImageError, match="no such image"):
        ensure_image(ctx, name, "never")
    rec = ensure_image(ctx, name)  # missing: pulled, progress on stderr
    err = capsys.readouterr().err
    assert "Unable to find image" in err and "Pull complete" in err
    assert ensure_image(ctx, name, "never").id == rec.id
    assert ensure_image(ctx, name, "missing").id == rec.id
    assert capsys.readouterr().err == ""
    assert ensure_image(ctx, name, "always").id == rec.id
    assert "Already exists" in capsys.readouterr().err


def test_pull_after_load_of_the_same_image_keeps_what_save_needs(open_registry, tmp_path):
    """A layer unpacked from an archive (stored uncompressed) is not unpacked again by a pull,
    but the gzip blob the registry's manifest names is fetched: save must find every blob."""
    name = f"{open_registry.host}/busybox:oci"
    ok(tmp_path, "pull", name)
    ok(tmp_path, "save", "-o", str(tmp_path / "bb.tar"), name)
    other = tmp_path / "other"
    ok(other, "load", "-i", str(tmp_path / "bb.tar"))  # docker-archive: uncompressed layers
    ok(other, "pull", name)
    ok(other, "save", "-o", str(tmp_path / "again.tar"), name)
    ok(other, "save", "--format", "oci", "-o", str(tmp_path / "again-oci.tar"), name)
    assert_consistent(other)


@pytest.mark.skipif(os.geteuid() != 0, reason="runs a container: needs root")
def test_run_pulls_a_missing_image_then_uses_the_stored_one(open_registry, tmp_path):
    name = f"{open_registry.host}/busybox:oci"
    runroot = tmp_path / "run"
    r = run(tmp_path, "--runroot", str(runroot), "run", "--rm", "--network", "none", name,
            "cat", "/etc/motd")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello from layer 2\n"
    assert f"Unable to find image '{name}' locally" in r.stderr
    r = run(tmp_path, "--runroot", str(runroot), "run", "--rm", "--network", "none", "--pull",
            "never", name, "true")
    assert r.returncode == 0 and "Unable to find" not in r.stderr
    r = run(tmp_path, "--runroot", str(runroot), "run", "--rm", "--network", "none", "--pull",
            "never", f"{open_registry.host}/busybox:v2s2", "true")
    assert r.returncode == 125 and "--pull=never" in r.stderr
