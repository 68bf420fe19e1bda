"""The image store: blobs verified by digest, layers unpacked once, records and tags, crash safety.

Crashes are real where it matters: a forked child is SIGKILLed in the middle of a write, and the
store must then open consistent (check_consistent below states what "consistent" means).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import threading
import time

import pytest

from minirun.errors import DigestError, ImageError, ReferenceError
from minirun.image import store as st
from minirun.image.store import ImageRecord, Store
from polling import poll


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hexof(digest: str) -> str:
    return digest.split(":", 1)[1]


@pytest.fixture
def store(tmp_path):
    return Store(str(tmp_path / "store"))


def add_layer(store: Store, content: bytes) -> str:
    """A fake layer: its 'tar' is `content`, unpacked as one file; returns the diff_id."""
    diff_id = sha(b"diff:" + content)
    with store.new_layer(diff_id) as target:
        if target is not None:
            with open(os.path.join(target, "file"), "wb") as f:
                f.write(content)
    return diff_id


def make_image(store: Store, layers: list[bytes], tags=(), created="2024-01-01T00:00:00Z",
               extra: str = "") -> ImageRecord:
    """Blobs, layers, then the record (the order a pull uses)."""
    diff_ids, blob_digests = [], []
    for content in layers:
        blob_digests.append(sha(content))
        store.put_blob(content, sha(content))
        diff_ids.append(add_layer(store, content))
    config = json.dumps({"created": created, "rootfs": {"type": "layers", "diff_ids": diff_ids},
                         "extra": extra}).encode()
    manifest = json.dumps({"config": sha(config), "layers": blob_digests}).encode()
    store.put_blob(config, sha(config))
    store.put_blob(manifest, sha(manifest))
    return store.add_image(ImageRecord(id=sha(config), diff_ids=diff_ids, layers=blob_digests,
                                       manifest=sha(manifest), repo_tags=list(tags), created=created,
                                       platform="linux/amd64"))


def check_consistent(store: Store) -> None:
    """The invariants a crash at any point must preserve."""
    refs = store._refs()
    for record in store.images():
        assert store.has_blob(record.id), record
        for diff_id in record.diff_ids:
            assert store.has_layer(diff_id), (record, diff_id)
    for image_id in refs.values():
        assert store.has_image(image_id)
    for digest in store.blobs():
        with store.open_blob(digest) as f:
            assert sha(f.read()) == digest
    names = {n for n in os.listdir(store.layers_dir)}
    for name in names:
        if not name.endswith(".json"):
            assert name + ".json" in names  # every layer directory has its record


def fork(child) -> int:
    """Run child() in a forked process that never returns into pytest."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            child()
        except BaseException:  # noqa: BLE001 - report through the exit status
            code = 1
        finally:
            os._exit(code)
    return pid


def blocked_on_a_lock(pid: int) -> bool:
    """/proc/locks lists `pid` as waiting for a lock ("1: -> FLOCK ... PID ...")."""
    with open("/proc/locks") as f:
        return any(ln.split()[1] == "->" and ln.split()[5] == str(pid) for ln in f)


def wait_exit(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


# --- layout and blobs --------------------------------------------------------------------------


def test_layout_is_created_and_reopening_is_harmless(tmp_path):
    root = tmp_path / "store"
    Store(str(root))
    Store(str(root))
    assert sorted(os.listdir(root)) == ["blobs", "images", "layers", "tmp"]
    assert os.listdir(root / "blobs") == ["sha256"]


def test_put_blob_from_bytes_path_and_file(store, tmp_path):
    a, b, c = b"alpha", b"bravo" * 100000, b"charlie"
    path = tmp_path / "b.bin"
    path.write_bytes(b)
    assert store.put_blob(a, sha(a)) == store.blob_path(sha(a))
    store.put_blob(str(path), sha(b))
    store.put_blob(io.BytesIO(c), sha(c))
    for data in (a, b, c):
        assert store.has_blob(sha(data))
        with store.open_blob(sha(data)) as f:
            assert f.read() == data
    assert store.blobs() == sorted(sha(x) for x in (a, b, c))
    assert os.stat(store.blob_path(sha(a))).st_mode & 0o777 == 0o644
    assert store.blob_path(sha(a)) == os.path.join(store.root, "blobs", "sha256", hexof(sha(a)))
    assert os.listdir(store.tmp_dir) == []


def test_digest_mismatch_keeps_nothing(store):
    good, bad = b"what the manifest promised", b"what the server sent"
    with pytest.raises(DigestError) as err:
        store.put_blob(bad, sha(good))
    msg = str(err.value)
    assert sha(good) in msg and sha(bad) in msg and "nothing was kept" in msg
    assert "\n" not in msg
    assert not store.has_blob(sha(good)) and not store.has_blob(sha(bad))
    assert store.blobs() == [] and os.listdir(store.tmp_dir) == []


@pytest.mark.parametrize("digest", ["sha256:../../etc/passwd", "sha256:" + "A" * 64, "md5:" + "a" * 32,
                                    "sha256:" + "a" * 63, "a" * 64, "", "sha512:" + "a" * 128])
def test_invalid_digests_are_refused_before_touching_disk(store, digest):
    with pytest.raises(ImageError, match="invalid digest"):
        store.put_blob(b"x", digest)
    with pytest.raises(ImageError, match="invalid digest"):
        store.has_blob(digest)
    with pytest.raises(ImageError, match="invalid digest"):
        with store.new_layer(digest):
            pass
    assert os.listdir(store.tmp_dir) == [] and store.blobs() == []


def test_new_blob_streams_and_an_exception_keeps_nothing(store):
    data = os.urandom(3 << 20)
    with store.new_blob(sha(data)) as w:
        for i in range(0, len(data), 65536):
            w.write(data[i:i + 65536])
        assert w.size == len(data) and w.digest == sha(data)
    assert store.has_blob(sha(data))

    other = b"interrupted download"
    with pytest.raises(ConnectionError):
        with store.new_blob(sha(other)) as w:
            w.write(other[:5])
            raise ConnectionError("reset by peer")
    assert not store.has_blob(sha(other)) and os.listdir(store.tmp_dir) == []


def test_put_blob_skips_content_already_present(store):
    data = b"present"
    store.put_blob(data, sha(data))

    class Unreadable(io.RawIOBase):
        def read(self, n=-1):
            raise AssertionError("should not be read")

    assert store.put_blob(Unreadable(), sha(data)) == store.blob_path(sha(data))


def test_open_blob_of_a_missing_blob(store):
    with pytest.raises(ImageError, match=r"blob sha256:0{64} is not in the store"):
        store.open_blob("sha256:" + "0" * 64)


def test_put_blob_killed_mid_write_leaves_only_tmp_junk(tmp_path):
    root = str(tmp_path / "store")
    store = Store(root)
    data = os.urandom(1 << 20)
    r, w = os.pipe()

    def child():
        s = Store(root)
        with s.new_blob(sha(data)) as bw:
            bw.write(data[: len(data) // 2])
            os.write(w, b"x")
            time.sleep(60)

    pid = fork(child)
    os.read(r, 1)
    assert len(os.listdir(store.tmp_dir)) == 1
    Store(root)  # opening while the writer lives must not take its file away
    assert len(os.listdir(store.tmp_dir)) == 1
    os.kill(pid, signal.SIGKILL)
    wait_exit(pid)
    assert not store.has_blob(sha(data))
    reopened = Store(root)  # the writer is dead: its file is junk
    assert os.listdir(reopened.tmp_dir) == []
    reopened.put_blob(data, sha(data))
    check_consistent(reopened)


# --- layers ------------------------------------------------------------------------------------


def test_new_layer_commits_once_under_a_short_name(store):
    diff_id = sha(b"layer one")
    with store.new_layer(diff_id) as target:
        assert target is not None and target.startswith(store.tmp_dir + os.sep)
        assert os.listdir(target) == [] and os.stat(target).st_mode & 0o777 == 0o755
        os.mkdir(os.path.join(target, "etc"))
        with open(os.path.join(target, "etc", "hostname"), "w") as f:
            f.write("x" * 100)
        os.link(os.path.join(target, "etc", "hostname"), os.path.join(target, "hardlink"))
        os.symlink("/etc/hostname", os.path.join(target, "abs-link"))
    assert store.has_layer(diff_id)
    assert store.layer_name(diff_id) == hexof(diff_id)[:12]
    assert store.layer_dir(diff_id) == os.path.join(store.layers_dir, hexof(diff_id)[:12])
    assert sorted(os.listdir(store.layer_dir(diff_id))) == ["abs-link", "etc", "hardlink"]
    record = json.loads(open(store.layer_dir(diff_id) + ".json").read())
    assert record["diff_id"] == diff_id
    assert store.layer_size(diff_id) == record["size"] == 100 + len("/etc/hostname")  # hard link once
    assert store.layers() == [diff_id]
    with store.new_layer(diff_id) as again:
        assert again is None
    assert os.listdir(store.tmp_dir) == []


def test_missing_layer_is_a_one_line_error(store):
    diff_id = sha(b"nope")
    assert not store.has_layer(diff_id)
    with pytest.raises(ImageError, match=f"layer {diff_id} is not in the store"):
        store.layer_dir(diff_id)


def test_new_layer_that_raises_leaves_nothing(store):
    diff_id = sha(b"bad layer")
    with pytest.raises(ValueError):
        with store.new_layer(diff_id) as target:
            os.makedirs(os.path.join(target, "ro", "sub"))
            open(os.path.join(target, "ro", "sub", "f"), "w").close()
            os.chmod(os.path.join(target, "ro", "sub"), 0o555)
            os.chmod(os.path.join(target, "ro"), 0o555)
            raise ValueError("path escapes the layer")
    assert not store.has_layer(diff_id)
    assert os.listdir(store.layers_dir) == [] and os.listdir(store.tmp_dir) == []
    with store.new_layer(diff_id) as target:  # and it can be made afterwards
        assert target is not None
    assert store.has_layer(diff_id)


def test_new_layer_killed_mid_unpack_is_cleared_and_redone(tmp_path):
    root = str(tmp_path / "store")
    store = Store(root)
    diff_id = sha(b"big layer")
    r, w = os.pipe()

    def child():
        with Store(root).new_layer(diff_id) as target:
            for i in range(50):
                open(os.path.join(target, f"f{i}"), "w").close()
            os.write(w, b"x")
            time.sleep(60)

    pid = fork(child)
    os.read(r, 1)
    assert len(os.listdir(store.tmp_dir)) == 2  # the unpack directory and the layer's lock
    os.kill(pid, signal.SIGKILL)
    wait_exit(pid)
    assert not store.has_layer(diff_id)
    assert os.listdir(store.layers_dir) == []
    reopened = Store(root)
    assert os.listdir(reopened.tmp_dir) == []
    with reopened.new_layer(diff_id) as target:
        assert target is not None
    assert reopened.has_layer(diff_id)
    check_consistent(reopened)


def test_concurrent_new_layer_unpacks_once(tmp_path):
    root = str(tmp_path / "store")
    Store(root)
    diff_id = sha(b"shared base layer")
    log = str(tmp_path / "log")
    go_r, go_w = os.pipe()

    def creator():
        s = Store(root)
        os.read(go_r, 1)
        with s.new_layer(diff_id) as target:
            with open(log, "a") as f:
                f.write("unpack\n" if target else "skip\n")
            if target:
                time.sleep(0.3)  # the other creator arrives while we unpack
                with open(os.path.join(target, "by"), "w") as f:
                    f.write(str(os.getpid()))

    pids = [fork(creator) for _ in range(2)]
    os.write(go_w, b"xx")
    assert [wait_exit(p) for p in pids] == [0, 0]
    assert sorted(open(log).read().split()) == ["skip", "unpack"]
    store = Store(root)
    assert int(open(os.path.join(store.layer_dir(diff_id), "by")).read()) in pids
    assert os.listdir(store.tmp_dir) == []
    check_consistent(store)


def test_concurrent_new_layer_from_threads(store):
    diff_id = sha(b"threads")
    results, barrier = [], threading.Barrier(4)

    def creator():
        barrier.wait()
        with store.new_layer(diff_id) as target:
            results.append(target is not None)
            if target:
                time.sleep(0.1)

    threads = [threading.Thread(target=creator) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]


def test_layer_short_name_clash_takes_a_longer_name(store):
    a = "sha256:" + "ab" * 6 + "0" * 52
    b = "sha256:" + "ab" * 6 + "1" * 52  # same first 12 hex digits
    for d in (a, b):
        with store.new_layer(d) as target:
            open(os.path.join(target, d[-1]), "w").close()
    assert store.layer_name(a) == "ab" * 6
    assert store.layer_name(b) == "ab" * 6 + "1111"
    assert os.listdir(store.layer_dir(b)) == ["1"]
    # With a's layer gone, b is still found under its longer name.
    make_config = json.dumps({"b": 1}).encode()
    store.put_blob(make_config, sha(make_config))
    store.add_image(ImageRecord(id=sha(make_config), diff_ids=[b], repo_tags=["keep:b"]))
    pruned = store.prune_unused()
    assert pruned.layers == [a]
    assert not store.has_layer(a) and store.has_layer(b)
    assert store.layer_name(b) == "ab" * 6 + "1111"


# --- images, tags, resolve ---------------------------------------------------------------------


def test_image_record_json_round_trip():
    rec = ImageRecord(id=sha(b"c"), diff_ids=[sha(b"d")], layers=[sha(b"l")], manifest=sha(b"m"),
                      repo_tags=["docker.io/library/a:latest"], created="2024-01-01T00:00:00Z",
                      size=5, platform="linux/arm64/v8")
    assert ImageRecord.from_json(rec.to_json()) == rec
    assert ImageRecord.from_dict({**rec.to_dict(), "future_field": 1}) == rec
    assert rec.short_id == hexof(rec.id)[:12]


def test_add_image_and_read_it_back(store):
    rec = make_image(store, [b"base", b"app"], tags=["alpine", "127.0.0.1:5000/busybox:v1"])
    assert rec.repo_tags == ["127.0.0.1:5000/busybox:v1", "docker.io/library/alpine:latest"]
    assert rec.size == len(b"base") + len(b"app")
    assert store.image(rec.id) == rec == store.image(hexof(rec.id))
    assert store.images() == [rec]
    on_disk = json.loads(open(os.path.join(store.images_dir, hexof(rec.id) + ".json")).read())
    assert on_disk["repo_tags"] == [] and on_disk["diff_ids"] == rec.diff_ids  # tags live elsewhere
    refs = json.loads(open(store.refs_path).read())
    assert refs == {"127.0.0.1:5000/busybox:v1": rec.id, "docker.io/library/alpine:latest": rec.id}


def test_add_image_merges_refs_and_records_repo_digests(store):
    rec = make_image(store, [b"x"], tags=["a:1"])
    again = store.add_image(ImageRecord(**{**rec.to_dict(), "repo_tags": ["b"],
                                           "repo_digests": [f"a@{rec.manifest}"]}))
    assert again.repo_tags == ["docker.io/library/a:1", "docker.io/library/b:latest"]
    assert again.repo_digests == [f"docker.io/library/a@{rec.manifest}"]
    with pytest.raises(ReferenceError, match="a tag cannot contain a digest"):
        store.add_image(ImageRecord(**{**rec.to_dict(), "repo_tags": [f"a:1@{rec.manifest}"]}))
    with pytest.raises(ReferenceError, match="repo digest"):
        store.add_image(ImageRecord(**{**rec.to_dict(), "repo_digests": ["a:1"]}))


def test_add_image_refuses_a_record_whose_content_is_missing(store):
    config = b'{"config": 1}'
    diff_id = sha(b"never unpacked")
    with pytest.raises(ImageError, match="config blob is not in the store"):
        store.add_image(ImageRecord(id=sha(config), diff_ids=[]))
    store.put_blob(config, sha(config))
    with pytest.raises(ImageError, match=f"layer {diff_id} is not in the store"):
        store.add_image(ImageRecord(id=sha(config), diff_ids=[diff_id], repo_tags=["x"]))
    assert store.images() == [] and not os.path.exists(store.refs_path)
    with pytest.raises(ImageError, match="invalid digest"):
        store.add_image(ImageRecord(id=sha(config), manifest="sha256:../../x"))


def test_tag_untag_and_dangling(store):
    a = make_image(store, [b"a"], tags=["app:latest"], created="2024-01-01T00:00:00Z")
    b = make_image(store, [b"b"], created="2024-02-01T00:00:00Z")
    assert [r.id for r in store.images()] == [b.id, a.id]  # newest first
    assert [r.id for r in store.dangling()] == [b.id]
    assert store.tag("app", b.id) == "docker.io/library/app:latest"  # the tag moves ...
    assert store.image(b.id).repo_tags == ["docker.io/library/app:latest"]
    assert [r.id for r in store.dangling()] == [a.id]  # ... leaving a dangling
    store.tag("app:v2", b.id)
    assert store.untag("app:latest") == b.id
    assert store.image(b.id).repo_tags == ["docker.io/library/app:v2"]
    with pytest.raises(ImageError, match="no such image: app:latest"):
        store.untag("app")
    with pytest.raises(ReferenceError):
        store.tag(f"app@{a.manifest}", a.id)
    with pytest.raises(ImageError, match="no such image"):
        store.tag("x", sha(b"no such config"))


def test_repo_digest_alone_does_not_keep_an_image_from_dangling(store):
    rec = make_image(store, [b"d"])
    store.add_image(ImageRecord(**{**rec.to_dict(), "repo_digests": [f"alpine@{rec.manifest}"]}))
    assert [r.id for r in store.dangling()] == [rec.id]


def test_resolve(store):
    a = make_image(store, [b"a"], tags=["alpine:3", "127.0.0.1:5000/busybox"])
    b = make_image(store, [b"b"], tags=["alpine:latest"])
    store.add_image(ImageRecord(**{**a.to_dict(), "repo_digests": [f"alpine@{a.manifest}"]}))
    assert store.resolve("alpine").id == b.id
    assert store.resolve("alpine:latest").id == b.id
    assert store.resolve("docker.io/library/alpine:3").id == a.id
    assert store.resolve("127.0.0.1:5000/busybox:latest").id == a.id
    assert store.resolve(a.id).id == a.id  # sha256:<64>
    assert store.resolve(hexof(a.id)).id == a.id  # <64>
    assert store.resolve(hexof(a.id)[:12]).id == a.id  # short ID
    assert store.resolve("sha256:" + hexof(a.id)[:20]).id == a.id
    assert store.resolve(f"alpine@{a.manifest}").id == a.id
    # name:tag@digest: the digest wins even though the tag names another image now.
    assert store.resolve(f"alpine:latest@{a.manifest}").id == a.id


def test_resolve_failures(store):
    a = make_image(store, [b"a"], tags=["alpine"])
    with pytest.raises(ImageError, match="^no such image: busybox:latest$"):
        store.resolve("busybox")
    with pytest.raises(ImageError, match="no such image"):
        store.resolve(hexof(a.id)[:11])  # too short to be an ID prefix: a name, and not a known one
    with pytest.raises(ImageError, match="no such image"):
        store.resolve("sha256:" + "0" * 64)
    with pytest.raises(ImageError, match="no such image"):
        store.resolve(f"alpine@sha256:{'0' * 64}")
    with pytest.raises(ReferenceError, match="must be lowercase"):
        store.resolve("Alpine")
    with pytest.raises(ReferenceError):
        store.resolve("")


def test_resolve_ambiguous_short_id(store):
    a = make_image(store, [b"a"])
    # Two IDs sharing 12 digits cannot be made from real content: plant a second record.
    twin = hexof(a.id)[:12] + "f" * 52
    with open(os.path.join(store.images_dir, twin + ".json"), "w") as f:
        f.write(ImageRecord(id="sha256:" + twin).to_json())
    with pytest.raises(ImageError, match=f"image ID prefix {hexof(a.id)[:12]} is ambiguous: it matches 2"):
        store.resolve(hexof(a.id)[:12])
    if hexof(a.id)[12] != "f":  # one more digit tells them apart
        assert store.resolve(hexof(a.id)[:13]).id == a.id
    assert store.resolve(a.id).id == a.id


def test_resolve_prefers_a_name_over_an_id_prefix(store):
    a = make_image(store, [b"a"])
    b = make_image(store, [b"b"])
    name = hexof(a.id)[:12]  # a valid repository name that is also a's short ID
    store.tag(name, b.id)
    assert store.resolve(name).id == b.id
    assert store.resolve(hexof(a.id)[:13]).id == a.id


# --- delete and garbage collection -------------------------------------------------------------


def test_delete_and_prune_remove_exactly_the_unreferenced(store):
    x = make_image(store, [b"shared base", b"only x"], tags=["x"])
    y = make_image(store, [b"shared base", b"only y"], tags=["y"])
    stray = b"a blob nobody names"
    store.put_blob(stray, sha(stray))
    store.delete_image(x.id)
    assert not store.has_image(x.id)
    assert json.loads(open(store.refs_path).read()) == {"docker.io/library/y:latest": y.id}
    assert store.has_layer(x.diff_ids[1])  # still there until pruned

    pruned = store.prune_unused()
    x_only = {x.id, x.manifest, x.layers[1], sha(stray)}
    assert sorted(pruned.blobs) == sorted(x_only)
    assert pruned.layers == [x.diff_ids[1]]
    assert pruned.reclaimed >= len(b"only x") + len(stray)
    assert set(store.blobs()) == {y.id, y.manifest, *y.layers}
    assert set(store.layers()) == set(y.diff_ids)
    assert sorted(os.listdir(store.layers_dir)) == sorted(
        [store.layer_name(d) for d in y.diff_ids] + [store.layer_name(d) + ".json" for d in y.diff_ids])
    assert store.prune_unused().blobs == []  # nothing more to do
    check_consistent(store)


def test_prune_clears_junk_a_crash_can_leave(store):
    keep = make_image(store, [b"keep"], tags=["keep"])
    # A tag naming a record that is gone, a layer record without its directory, a directory
    # without its record, and tmp/ junk from a dead writer.
    refs = store._refs()
    refs["docker.io/library/ghost:latest"] = sha(b"gone")
    store._write_refs(refs)
    with open(os.path.join(store.layers_dir, "0123456789ab.json"), "w") as f:
        json.dump({"diff_id": "sha256:0123456789ab" + "0" * 52, "size": 0}, f)
    os.makedirs(os.path.join(store.layers_dir, "fedcba987654", "x"))
    os.makedirs(os.path.join(store.tmp_dir, "layer-dead-unpack", "etc"))
    open(os.path.join(store.tmp_dir, "blob-dead"), "w").close()
    os.symlink("/etc", os.path.join(store.tmp_dir, "evil"))

    store.prune_unused()
    assert store._refs() == {"docker.io/library/keep:latest": keep.id}
    assert sorted(os.listdir(store.layers_dir)) == [store.layer_name(keep.diff_ids[0]),
                                                    store.layer_name(keep.diff_ids[0]) + ".json"]
    assert os.listdir(store.tmp_dir) == []
    assert os.path.isdir("/etc")
    check_consistent(store)


def test_a_crash_between_record_and_tags_leaves_a_dangling_image(store, monkeypatch):
    def crash(_refs):
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "_write_refs", crash)
    with pytest.raises(KeyboardInterrupt):
        make_image(store, [b"z"], tags=["z"])
    monkeypatch.undo()
    [rec] = store.images()
    assert rec.repo_tags == [] and store.dangling() == [rec]
    check_consistent(store)
    assert store.resolve(hexof(rec.id)[:12]) == rec


def test_prune_waits_for_a_pull_in_progress(store):
    started, release, done = threading.Event(), threading.Event(), threading.Event()
    state = {}

    def pull():
        with store.ingest():
            diff_id = add_layer(store, b"pulled, not yet recorded")
            started.set()
            release.wait(5)
            state["diff_id"] = diff_id
            config = b'{"pulled": true}'
            store.put_blob(config, sha(config))
            state["image"] = store.add_image(ImageRecord(id=sha(config), diff_ids=[diff_id]))

    def prune():
        state["pruned"] = store.prune_unused()
        done.set()

    t1 = threading.Thread(target=pull)
    t1.start()
    started.wait(5)
    t2 = threading.Thread(target=prune)
    t2.start()
    assert not done.wait(0.3)  # blocked behind the pull
    release.set()
    t1.join(5)
    t2.join(5)
    assert state["pruned"].layers == []
    assert store.has_layer(state["diff_id"])
    check_consistent(store)


def test_prune_inside_lock_or_ingest_is_refused(store):
    with store.lock():
        with pytest.raises(ImageError, match="would deadlock"):
            store.prune_unused()
    with store.ingest():
        with pytest.raises(ImageError, match="would deadlock"):
            store.prune_unused()
    store.prune_unused()


def test_lock_is_reentrant_in_a_thread_and_excludes_other_processes(tmp_path):
    root = str(tmp_path / "store")
    store = Store(root)
    rec = make_image(store, [b"l"], tags=["one"])
    go_r, go_w = os.pipe()

    def child():
        os.read(go_r, 1)
        Store(root).tag("three", rec.id)

    # Fork before locking: a child forked inside lock() would share (and keep) our flock.
    pid = fork(child)
    with store.lock():
        store.tag("two", rec.id)  # takes lock() again inside: must not deadlock
        os.write(go_w, b"x")
        # The child waits for our lock: the kernel lists it as a blocked waiter ("->") in
        # /proc/locks until we let go.
        assert poll(lambda: blocked_on_a_lock(pid)), "the child never waited for the lock"
        assert os.waitpid(pid, os.WNOHANG) == (0, 0)
        assert "docker.io/library/three:latest" not in store._refs()
    assert wait_exit(pid) == 0
    assert store.image(rec.id).repo_tags == ["docker.io/library/one:latest",
                                             "docker.io/library/three:latest",
                                             "docker.io/library/two:latest"]


def test_clean_tmp_keeps_what_a_live_writer_holds(store):
    with store.new_blob(sha(b"held")) as w:
        w.write(b"he")
        open(os.path.join(store.tmp_dir, "junk"), "w").close()
        store.clean_tmp()
        assert len(os.listdir(store.tmp_dir)) == 1  # ours, not the junk
        w.write(b"ld")
    assert store.has_blob(sha(b"held"))


def test_sync_false_store_works_the_same(tmp_path):
    store = Store(str(tmp_path / "s"), sync=False)
    rec = make_image(store, [b"a"], tags=["a"])
    assert store.resolve("a") == rec
    store.delete_image(rec.id)
    assert store.prune_unused().layers == rec.diff_ids
    check_consistent(store)


def test_default_root():
    assert st.DEFAULT_ROOT == "/var/lib/minirun"


def test_remove_tree_copes_with_read_only_directories(tmp_path, monkeypatch):
    # As root rmtree never meets EACCES; make the first attempt fail as it would for a user.
    top = tmp_path / "layer"
    (top / "ro" / "sub").mkdir(parents=True)
    (top / "ro" / "sub" / "f").write_text("x")
    os.chmod(top / "ro" / "sub", 0o555)
    os.chmod(top / "ro", 0o000)
    real, calls = shutil.rmtree, []  # store.py imports shutil where it removes a tree

    def rmtree_once_denied(path, *a, **kw):
        calls.append(path)
        if len(calls) == 1:
            raise PermissionError(13, "Permission denied", path)
        return real(path, *a, **kw)

    monkeypatch.setattr(shutil, "rmtree", rmtree_once_denied)
    st._remove_tree(str(top))
    assert not top.exists() and len(calls) == 2


def test_staging_downloads_are_moved_in_and_survive_other_openers(store):
    data, bad = os.urandom(1 << 20), b"corrupt"
    with store.staging() as d:
        assert d.startswith(store.tmp_dir + os.sep)
        os.makedirs(os.path.join(d, "sha256"))
        good_path = os.path.join(d, "sha256", hexof(sha(data)))
        bad_path = os.path.join(d, "sha256", "bad")
        with open(good_path, "wb") as f:
            f.write(data)
        with open(bad_path, "wb") as f:
            f.write(bad)
        Store(store.root)  # another process opening the store must not take the download away
        assert os.path.exists(good_path)
        assert store.put_blob(good_path, sha(data)) == store.blob_path(sha(data))
        assert not os.path.exists(good_path)  # moved, not copied
        with pytest.raises(DigestError, match=f"blob {sha(data[:10])}: content has digest {sha(bad)}"):
            store.put_blob(bad_path, sha(data[:10]))
        assert not os.path.exists(bad_path) and not store.has_blob(sha(data[:10]))
    with store.open_blob(sha(data)) as f:
        assert f.read() == data
    assert os.listdir(store.tmp_dir) == []


def test_put_blob_copies_a_path_outside_the_store(store, tmp_path):
    src = tmp_path / "outside"
    src.write_bytes(b"keep me")
    store.put_blob(str(src), sha(b"keep me"))
    assert src.read_bytes() == b"keep me"
