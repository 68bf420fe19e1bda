"""The registry client against tiny local HTTP servers that misbehave on purpose.

Tampered content, flaky and dropped connections, redirects to another host, bearer tokens that
expire: what docker-registry never does on its own. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time

import pytest

from minirun.errors import RegistryError
from minirun.image.registry import OCI_MANIFEST, Registry, fetch_blobs

BLOB = os.urandom(3 * 1024 * 1024 + 123)  # more than one 1 MiB chunk
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                       "config": {"mediaType": "x", "digest": "sha256:" + "0" * 64, "size": 1},
                       "layers": []}).encode()
BASIC = "Basic " + base64.b64encode(b"u:p").decode()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def registry(host: str, **kw) -> Registry:
    return Registry(host, insecure=True, backoff=0.01, **kw)


def manifest_answer(body: bytes = MANIFEST, digest: str | None = None):
    headers = {"Content-Type": OCI_MANIFEST}
    if digest is not None:
        headers["Docker-Content-Digest"] = digest
    return 200, headers, body


def no_partials(d) -> bool:
    return not [n for n in os.listdir(d) if n.startswith(".partial")]


# ---- content that is not what it claims --------------------------------------------------------

def test_tampered_blob_fails_and_keeps_nothing(fake, tmp_path):
    good = b"the layer that was pushed"
    srv = fake(lambda req: (200, {}, b"the layer a mirror made up"))
    with pytest.raises(RegistryError) as e:
        registry(srv.host).fetch_blob("img", sha(good), str(tmp_path / "blob"))
    assert str(e.value).startswith(f"pull {srv.host}/img@{sha(good)}: digest mismatch: got sha256:")
    assert str(e.value).endswith("; nothing was kept")
    assert os.listdir(tmp_path) == []


def test_one_tampered_blob_fails_a_concurrent_fetch(fake, tmp_path):
    good, bad = b"good blob", b"bad blob"
    srv = fake(lambda req: (200, {}, b"tampered" if req.path.endswith(sha(bad)) else good))
    descs = [{"digest": sha(good), "size": len(good)}, {"digest": sha(bad), "size": len(bad)}]
    with pytest.raises(RegistryError, match="digest mismatch"):
        fetch_blobs(registry(srv.host), "img", descs, str(tmp_path))
    assert os.listdir(tmp_path / "sha256") in ([], [sha(good).split(":")[1]])
    assert no_partials(tmp_path / "sha256")


def test_first_failure_cancels_the_other_downloads(fake, tmp_path):
    bad = b"bad blob"

    hung_up = threading.Event()

    def slow(handler):  # 64 MiB at 1 MiB per 0.3 s: ~20 s unless the client hangs up
        handler.send_response(200)
        handler.send_header("Content-Length", str(64 << 20))
        handler.end_headers()
        for _ in range(64):
            try:
                handler.wfile.write(b"x" * (1 << 20))
            except OSError:
                hung_up.set()
                return
            time.sleep(0.3)

    srv = fake(lambda req: (200, {}, b"tampered") if req.path.endswith(sha(bad)) else slow)
    descs = [{"digest": sha(b"slow"), "size": 64 << 20}, {"digest": sha(bad), "size": len(bad)}]
    with pytest.raises(RegistryError, match="digest mismatch"):  # not the sibling's "cancelled"
        fetch_blobs(registry(srv.host), "img", descs, str(tmp_path), workers=2)
    # The sibling download was cancelled, not waited out: the server saw the client hang up
    # while it still had most of the blob to send.
    assert hung_up.wait(timeout=15)
    assert os.listdir(tmp_path / "sha256") == []


def test_manifest_by_digest_must_hash_to_it(fake):
    wanted = sha(b"{}")
    srv = fake(lambda req: manifest_answer())
    with pytest.raises(RegistryError) as e:
        registry(srv.host).get_manifest("img", wanted)
    assert str(e.value) == (f"pull {srv.host}/img@{wanted}: manifest digest mismatch: "
                            f"expected {wanted}, got {sha(MANIFEST)}")


def test_manifest_by_tag_must_match_docker_content_digest(fake):
    srv = fake(lambda req: manifest_answer(digest=sha(b"other")))
    with pytest.raises(RegistryError, match="manifest digest mismatch"):
        registry(srv.host).get_manifest("img", "latest")
    srv2 = fake(lambda req: manifest_answer())  # no header: the digest of the bytes
    assert registry(srv2.host).get_manifest("img", "latest").digest == sha(MANIFEST)


def test_schema1_is_refused(fake):
    body = json.dumps({"schemaVersion": 1, "name": "img", "fsLayers": []}).encode()
    srv = fake(lambda req: (200, {"Content-Type":
                                  "application/vnd.docker.distribution.manifest.v1+prettyjws"}, body))
    with pytest.raises(RegistryError) as e:
        registry(srv.host).get_manifest("img", "old")
    assert str(e.value) == (f"pull {srv.host}/img:old: Docker schema 1 manifests are not supported "
                            "(push the image again with a current client)")


def test_accept_names_all_four_types(fake):
    srv = fake(lambda req: manifest_answer())
    registry(srv.host).get_manifest("img", "latest")
    accept = srv.requests[-1].headers["Accept"]
    for t in ("application/vnd.oci.image.index.v1+json",
              "application/vnd.docker.distribution.manifest.list.v2+json",
              "application/vnd.oci.image.manifest.v1+json",
              "application/vnd.docker.distribution.manifest.v2+json"):
        assert t in accept


def test_404_without_a_json_body(fake):
    srv = fake(lambda req: (404, {"Content-Type": "text/html"}, b"<html>\nnot here\n</html>"))
    with pytest.raises(RegistryError) as e:
        registry(srv.host).get_manifest("img", "latest")
    assert str(e.value) == f"pull {srv.host}/img:latest: HTTP 404 Not Found"


# ---- transient failures ------------------------------------------------------------------------

def flaky(fails: int, status: int = 503, headers: dict | None = None, then=manifest_answer):
    count = [0]

    def route(req):
        count[0] += 1
        if count[0] <= fails:
            body = json.dumps({"errors": [{"code": "UNAVAILABLE", "message": "try later"}]})
            return status, headers or {}, body.encode()
        return then()

    return route


def test_retries_5xx(fake):
    srv = fake(flaky(2))
    assert registry(srv.host).get_manifest("img", "latest").raw_bytes == MANIFEST
    assert len(srv.requests) == 3


def test_retries_429_honouring_retry_after(fake):
    srv = fake(flaky(1, 429, {"Retry-After": "0"}))
    assert registry(srv.host).get_manifest("img", "latest").digest == sha(MANIFEST)
    assert len(srv.requests) == 2


def test_gives_up_after_three_tries(fake):
    srv = fake(flaky(99))
    with pytest.raises(RegistryError) as e:
        registry(srv.host).get_manifest("img", "latest")
    assert str(e.value) == f"pull {srv.host}/img:latest: try later"
    assert len(srv.requests) == 3


def test_no_retry_on_client_errors(fake):
    srv = fake(flaky(99, 400))
    with pytest.raises(RegistryError, match="try later"):
        registry(srv.host).get_manifest("img", "latest")
    assert len(srv.requests) == 1


def test_blob_retries_after_503(fake, tmp_path):
    srv = fake(flaky(2, then=lambda: (200, {}, BLOB)))
    registry(srv.host).fetch_blob("img", sha(BLOB), str(tmp_path / "b"), len(BLOB))
    assert (tmp_path / "b").read_bytes() == BLOB
    assert no_partials(tmp_path)


def cut_short(handler, at: int = 1024 * 1024 + 7) -> None:
    """Promise the whole blob, send part of it, hang up."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(BLOB)))
    handler.send_header("Accept-Ranges", "bytes")
    handler.end_headers()
    handler.wfile.write(BLOB[:at])
    handler.close_connection = True


def test_cut_connection_resumes_with_range(fake, tmp_path):
    def route(req):
        if "Range" not in req.headers:
            return cut_short
        start = int(req.headers["Range"].removeprefix("bytes=").rstrip("-"))
        return 206, {"Content-Range": f"bytes {start}-{len(BLOB) - 1}/{len(BLOB)}"}, BLOB[start:]

    srv = fake(route)
    progress = []
    registry(srv.host).fetch_blob("img", sha(BLOB), str(tmp_path / "b"), len(BLOB),
                                  progress=lambda n, total: progress.append((n, total)))
    assert (tmp_path / "b").read_bytes() == BLOB
    assert [r.headers.get("Range") for r in srv.requests] == [None, f"bytes={1024 * 1024 + 7}-"]
    assert progress[-1] == (len(BLOB), len(BLOB))


def test_cut_connection_without_range_support_starts_over(fake, tmp_path):
    srv = fake(lambda req: cut_short if "Range" not in req.headers else (200, {}, BLOB))
    registry(srv.host).fetch_blob("img", sha(BLOB), str(tmp_path / "b"))  # 200 to the Range
    assert (tmp_path / "b").read_bytes() == BLOB
    assert len(srv.requests) == 2


def test_always_cut_short_fails_and_keeps_nothing(fake, tmp_path):
    srv = fake(lambda req: cut_short)
    with pytest.raises(RegistryError, match="connection closed after"):
        registry(srv.host).fetch_blob("img", sha(BLOB), str(tmp_path / "b"))
    assert len(srv.requests) == 3
    assert os.listdir(tmp_path) == []


def test_a_server_closing_idle_connections_costs_no_retry(fake):
    def answer_and_hang_up(handler):  # HTTP/1.1 without "Connection: close", then close
        handler.send_response(200)
        handler.send_header("Content-Type", OCI_MANIFEST)
        handler.send_header("Content-Length", str(len(MANIFEST)))
        handler.end_headers()
        handler.wfile.write(MANIFEST)
        handler.close_connection = True

    srv = fake(lambda req: answer_and_hang_up)
    r = Registry(srv.host, insecure=True, tries=1)  # one try: a stale socket must not use it up
    for _ in range(3):
        time.sleep(0.05)  # let the server's close arrive
        assert r.get_manifest("img", "latest").raw_bytes == MANIFEST
    assert len(srv.requests) == 3


def test_https_to_a_plain_http_registry_says_so(fake):
    srv = fake(lambda req: (200, {}, b"{}"))
    with pytest.raises(RegistryError) as e:
        Registry(srv.host).ping()  # not insecure: TLS
    assert str(e.value).startswith(f"registry {srv.host}: TLS handshake failed (")
    assert str(e.value).endswith("if it speaks plain HTTP, mark it insecure")


# ---- redirects ---------------------------------------------------------------------------------

def basic_guard(req, answer):
    if req.headers.get("Authorization") != BASIC:
        return 401, {"WWW-Authenticate": 'Basic realm="fake"'}, b""
    return answer


def test_redirect_to_another_host_drops_authorization(fake, tmp_path):
    cdn = fake(lambda req: (200, {}, BLOB))
    srv = fake(lambda req: basic_guard(
        req, (307, {"Location": f"http://{cdn.host}/blobs/x?signature=abc"}, b"")))
    registry(srv.host, credentials=("u", "p")).fetch_blob("img", sha(BLOB), str(tmp_path / "b"))
    assert (tmp_path / "b").read_bytes() == BLOB
    assert srv.requests[-1].headers["Authorization"] == BASIC
    assert [r.path for r in cdn.requests] == ["/blobs/x?signature=abc"]
    assert "Authorization" not in cdn.requests[0].headers


def test_redirect_on_the_same_host_keeps_authorization(fake, tmp_path):
    def route(req):
        if req.path.startswith("/storage/"):
            return basic_guard(req, (200, {}, BLOB))
        return basic_guard(req, (302, {"Location": "/storage/blob"}, b""))

    srv = fake(route)
    registry(srv.host, credentials=("u", "p")).fetch_blob("img", sha(BLOB), str(tmp_path / "b"))
    assert [r.path for r in srv.requests] == [f"/v2/img/blobs/{sha(BLOB)}"] * 2 + ["/storage/blob"]


def test_redirect_loop_is_bounded(fake):
    srv = fake(lambda req: (307, {"Location": "/v2/img/manifests/latest"}, b""))
    with pytest.raises(RegistryError, match="more than 5 redirects"):
        registry(srv.host).get_manifest("img", "latest")


# ---- bearer tokens -----------------------------------------------------------------------------

def test_bearer_token_flow_caches_and_renews(fake):
    issued = []
    valid = set()

    def token_route(req):
        issued.append(req)
        tok = f"tok{len(issued)}"
        valid.clear()
        valid.add(tok)
        return 200, {}, json.dumps({"access_token": tok}).encode()  # no "token" key

    tokens = fake(token_route)
    challenge = (f'Bearer realm="http://{tokens.host}/token",service="fake-svc",'
                 'scope="repository:img:pull"')

    def route(req):
        if req.headers.get("Authorization", "").removeprefix("Bearer ") not in valid:
            return 401, {"WWW-Authenticate": challenge}, b""
        return manifest_answer()

    srv = fake(route)
    r = registry(srv.host, credentials=("u", "p"))
    r.get_manifest("img", "latest")
    r.get_manifest("img", "latest")
    assert len(issued) == 1  # cached for the scope
    assert issued[0].path == "/token?service=fake-svc&scope=repository%3Aimg%3Apull"
    assert issued[0].headers["Authorization"] == BASIC  # credentials go to the realm
    valid.clear()  # the token expired: one 401, a new token, the request again
    r.get_manifest("img", "latest")
    assert len(issued) == 2
    assert [q.headers.get("Authorization") for q in srv.requests] == [
        None, "Bearer tok1", "Bearer tok1", "Bearer tok1", "Bearer tok2"]


def test_bearer_token_server_refusing_credentials(fake):
    tokens = fake(lambda req: (401, {}, b""))
    srv = fake(lambda req: (401, {"WWW-Authenticate": f'Bearer realm="http://{tokens.host}/t"'}, b""))
    with pytest.raises(RegistryError) as e:
        registry(srv.host, credentials=("u", "bad")).get_manifest("img", "latest")
    assert str(e.value) == f"pull {srv.host}/img:latest: unauthorized: check `minirun login {srv.host}`"


def test_no_credentials_over_plain_http_to_a_remote_realm(monkeypatch):
    r = Registry("registry.example", credentials=("u", "p"))

    def no_traffic(*args):
        raise AssertionError("a request was sent")

    monkeypatch.setattr(r, "_send", no_traffic)
    r._challenge = {"scheme": "bearer", "realm": "http://auth.example/token"}
    with pytest.raises(RegistryError, match="is plain HTTP: refusing to send credentials"):
        r._token("repository:img:pull", ["repository:img:pull"], "pull registry.example/img:latest")


# ---- push --------------------------------------------------------------------------------------

def test_upload_follows_a_relative_location_with_a_query(fake, tmp_path):
    def route(req):
        if req.method == "HEAD":
            return 404, {}, b""
        if req.method == "POST":
            return 202, {"Location": "/v2/img/blobs/uploads/u1?_state=s1"}, b""
        return 201, {"Docker-Content-Digest": sha(BLOB)}, b""

    srv = fake(route)
    (tmp_path / "b").write_bytes(BLOB)
    assert registry(srv.host).upload_blob("img", str(tmp_path / "b"), sha(BLOB)) is True
    put = srv.requests[-1]
    assert put.method == "PUT"
    assert put.path == f"/v2/img/blobs/uploads/u1?_state=s1&digest=sha256%3A{sha(BLOB)[7:]}"
    assert put.body == BLOB and put.headers["Content-Type"] == "application/octet-stream"


def test_put_manifest_sends_its_media_type(fake):
    srv = fake(lambda req: (201, {"Docker-Content-Digest": sha(MANIFEST)}, b""))
    assert registry(srv.host).put_manifest("img", "v1", MANIFEST, OCI_MANIFEST) == sha(MANIFEST)
    assert srv.requests[0].headers["Content-Type"] == OCI_MANIFEST
    assert srv.requests[0].body == MANIFEST
    with pytest.raises(RegistryError, match="do not have digest"):
        registry(srv.host).put_manifest("img", sha(b"x"), MANIFEST, OCI_MANIFEST)
