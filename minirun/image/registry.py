"""A registry client (distribution spec v2) on http.client: manifests, blobs, auth, push.

    reg = Registry("127.0.0.1:5000", insecure=True, credentials=("user", "pass"))
    m = reg.get_manifest("busybox", "latest")              # index, list or image manifest
    if m.is_index:
        m = reg.get_manifest("busybox", select_platform(m.json)["digest"])
    fetch_blobs(reg, "busybox", [m.json["config"], *m.json["layers"]], "/var/lib/minirun/blobs")

Auth follows the registry's lead: every request goes out anonymously until a 401 names a scheme.
`Basic` -> the stored credentials on every later request; `Bearer realm=,service=,scope=` -> a token
from the realm (with Basic credentials if we have some), cached per scope and sent from then on.
Nothing is trusted without its digest: manifests are hashed against the reference or
Docker-Content-Digest, blobs are hashed while they stream to a temp file and renamed into place
only when they match. Connection errors, 5xx and 429 are retried (3 tries, exponential backoff),
a body cut short resumes with a Range request. Every failure is one RegistryError line naming the
image, e.g. "pull 127.0.0.1:5000/nosuch:latest: manifest unknown".

Pushes (image/push.py drives them): blob_exists(push=True) asks first, mount_blob() borrows a blob
from another repository of the same registry, upload_blob() sends it in one PUT or, above
MONOLITHIC_MAX, in UPLOAD_CHUNK-sized PATCHes that resume where the registry says it got to.
A request may need several scopes (a mount: push here, pull there); they travel as one
space-separated string, the form of a registry's challenge, and become one scope= each.

Stdlib only: each thread keeps one kept-alive connection per host, so concurrent blob fetches
(fetch_blobs) do not share sockets.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import ipaddress
import json
import os
import re
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, Callable, TypeVar
from urllib.parse import urlencode, urljoin, urlsplit

from .. import __version__
from ..base.atomicfile import AtomicFile
from ..base.mediatypes import (DOCKER_LIST, DOCKER_MANIFEST, INDEX_TYPES, MANIFEST_TYPES,
                               OCI_INDEX, OCI_MANIFEST, SCHEMA1_TYPES)
from ..errors import RegistryError
from ..record import dataclass

# All four, always: without the OCI types distribution answers 404 for OCI content, and with no
# Accept at all it down-converts a Docker v2 manifest to schema 1.
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))

CHUNK = 1 << 20
MAX_MANIFEST = 4 << 20  # distribution refuses bigger manifests; a bigger answer is not one
MAX_REDIRECTS = 5
MAX_RETRY_AFTER = 10.0  # seconds: a longer Retry-After is not worth blocking a pull on
DOCKER_HUB_API = "registry-1.docker.io"  # "docker.io" names the registry, this host serves it
USER_AGENT = f"minirun/{__version__}"
# Push: a blob up to MONOLITHIC_MAX goes in one PUT; a bigger one in UPLOAD_CHUNK-sized PATCHes,
# so a dropped connection costs one chunk, not the blob, and proxies that cap request bodies
# still pass it. Read at each upload: tests lower them.
MONOLITHIC_MAX = 8 << 20
UPLOAD_CHUNK = 8 << 20

_DIGEST = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPO = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')
_REDIRECTS = (301, 302, 303, 307, 308)

T = TypeVar("T")
Progress = Callable[[int, "int | None"], None]


@dataclass
class Manifest:
    media_type: str
    digest: str
    raw_bytes: bytes
    json: dict

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


class _Transient(Exception):
    """A failure another try may cure (connection error, 5xx, 429); str() is the final message."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# ---- small helpers ---------------------------------------------------------------------------

def is_loopback(host: str) -> bool:
    """True for localhost, 127.x and ::1 (with or without a port): where plain HTTP is fine."""
    h = host.strip().lower()
    if h.startswith("["):
        h = h[1:].split("]", 1)[0]
    elif h.count(":") == 1:
        h = h.split(":", 1)[0]
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback  # "127.example.com" is a name, not 127/8
    except ValueError:
        return False


def parse_challenge(header: str) -> dict[str, str] | None:
    """'Bearer realm="r",service="s",scope="a:b:pull"' -> {"scheme": "bearer", "realm": "r", ...}."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    out = {"scheme": scheme.lower()}
    for key, quoted, bare in _CHALLENGE_PARAM.findall(rest):
        out[key.lower()] = re.sub(r"\\(.)", r"\1", quoted) if quoted else bare
    return out


def error_text(status: int, reason: str, body: bytes) -> str:
    """The registry's {"errors": [{"code", "message"}]} as one line, else the HTTP status."""
    messages = []
    try:
        for e in json.loads(body).get("errors") or []:
            messages.append(str(e.get("message") or e.get("code", "")).strip()
                            or str(e.get("code", "")).lower().replace("_", " "))
    except (ValueError, AttributeError, TypeError):
        pass
    text = "; ".join(m for m in messages if m) or f"HTTP {status} {reason}".strip()
    text = " ".join(text.split())  # one line, whatever the server put in
    return text if len(text) <= 300 else text[:297] + "..."


def blob_path(dest_dir: str, digest: str) -> str:
    """dest_dir/sha256/<hex>: the blobs/ layout of an OCI image layout."""
    _check_digest(digest, "blob")
    algo, hexpart = digest.split(":", 1)
    return os.path.join(dest_dir, algo, hexpart)


def _check_digest(digest: str, what: str) -> None:
    # Digests become file names and URL paths: only the two algorithms, lowercase hex.
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise RegistryError(f"{what}: invalid digest {digest!r}")


def _hash(algo: str, data: bytes) -> str:
    return f"{algo}:{hashlib.new(algo, data).hexdigest()}"


def _is_digest(ref: str) -> bool:
    return ":" in ref


# ---- the client ------------------------------------------------------------------------------

class Registry:
    """One registry host: `host` is "host[:port]" as in image references ("docker.io" works)."""

    def __init__(self, host: str, insecure: bool = False,
                 credentials: tuple[str, str] | None = None, timeout: float = 30, *,
                 tries: int = 3, backoff: float = 0.5) -> None:
        self.host = host
        self.api_host = DOCKER_HUB_API if host in ("docker.io", "index.docker.io") else host
        self.insecure = insecure
        self.scheme = "http" if insecure else "https"
        self.credentials = credentials
        self.timeout = timeout
        self.tries = max(1, tries)
        self.backoff = backoff
        self._ssl: ssl.SSLContext | None = None
        self._lock = threading.Lock()  # guards the challenge, the token cache, the conn list
        self._challenge: dict[str, str] | None = None
        self._tokens: dict[str, str] = {}  # scope -> bearer token
        self._token_locks: dict[str, threading.Lock] = {}  # scope -> held while asking for it
        self._local = threading.local()  # per-thread {(scheme, netloc): connection}
        self._conns: list[http.client.HTTPConnection] = []

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection any thread opened (call when no request is in flight)."""
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            c.close()

    # -- public API -----------------------------------------------------------------------------

    def ping(self) -> None:
        """Check that the host is a v2 registry we reach; with credentials, that they work."""
        what = f"registry {self.host}"
        # Without credentials a 401 still proves a live registry: only `login` needs more.
        ok = (200,) if self.credentials else (200, 401)
        self._retry(lambda: self._discard(self._request("GET", "/v2/", what=what, scope="", ok=ok)))

    def get_manifest(self, repo: str, ref: str) -> Manifest:
        """The manifest or index that `ref` (tag or digest) names, its digest checked."""
        what = f"pull {self._name(repo, ref)}"
        self._check_name(repo, ref, what)

        def attempt() -> tuple[http.client.HTTPResponse, bytes]:
            resp = self._request("GET", f"/v2/{repo}/manifests/{ref}", what=what,
                                 scope=self._scope(repo), ok=(200,), headers={"Accept": ACCEPT})
            return resp, self._read_manifest(resp, what)

        resp, data = self._retry(attempt)
        ctype = (resp.getheader("Content-Type") or "").split(";")[0].strip().lower()
        if ctype in SCHEMA1_TYPES:
            raise RegistryError(f"{what}: Docker schema 1 manifests are not supported "
                                "(push the image again with a current client)")
        try:
            doc = json.loads(data)
        except ValueError:
            raise RegistryError(f"{what}: the manifest is not JSON") from None
        if not isinstance(doc, dict):
            raise RegistryError(f"{what}: the manifest is not a JSON object")
        if doc.get("schemaVersion") == 1:
            raise RegistryError(f"{what}: Docker schema 1 manifests are not supported "
                                "(push the image again with a current client)")
        media = doc.get("mediaType") or ctype
        if media not in INDEX_TYPES + MANIFEST_TYPES:
            # OCI made mediaType optional in the body: fall back on what the document holds.
            media = OCI_INDEX if "manifests" in doc else OCI_MANIFEST if "layers" in doc else media
        if media not in INDEX_TYPES + MANIFEST_TYPES:
            raise RegistryError(f"{what}: unsupported manifest type {media or 'unknown'!r}")
        if _is_digest(ref):
            digest = ref
            actual = _hash(ref.split(":", 1)[0], data)
        else:
            header = (resp.getheader("Docker-Content-Digest") or "").strip()
            digest = header if _DIGEST.match(header) else _hash("sha256", data)
            actual = _hash(digest.split(":", 1)[0], data)
        if actual != digest:
            raise RegistryError(f"{what}: manifest digest mismatch: expected {digest}, "
                                f"got {actual}")
        return Manifest(media_type=media, digest=digest, raw_bytes=data, json=doc)

    def blob_exists(self, repo: str, digest: str, *, push: bool = False) -> bool:
        """HEAD the blob. push=True asks under the push scope, so a push needs one token."""
        what = f"{'push' if push else 'pull'} {self.host}/{repo}@{digest}"
        self._check_name(repo, digest, what)
        return self._blob_exists(repo, digest, what, self._scope(repo, push=push))

    def fetch_blob(self, repo: str, digest: str, dest_path: str, expected_size: int | None = None,
                   progress: Progress | None = None, *, stop: threading.Event | None = None,
                   tee: Callable[[bytes | None], None] | None = None) -> str:
        """Stream a blob into dest_path, sha256-checked; nothing is left at dest_path on failure.

        The bytes go to a temp file next to dest_path (base/atomicfile.py) and are renamed in only after the
        digest (and expected_size) matched. progress(done, total) follows each 1 MiB chunk; `stop`
        set by another thread cancels the fetch.

        tee(chunk) is given each chunk as it arrives, in order, before the digest is known (pull
        unpacks a layer while it downloads: nothing unpacked is kept unless this returns); tee(None)
        says that what it was given is void, because the download starts again from byte 0 (a
        registry that ignored our Range). It is hashed once, here, as it streams.
        """
        what = f"pull {self.host}/{repo}@{digest}"
        self._check_name(repo, digest, what)
        algo = digest.split(":", 1)[0]
        directory = os.path.dirname(os.path.abspath(dest_path))
        os.makedirs(directory, exist_ok=True)
        # The name promises the content: fsynced before the rename, and only once checked.
        with AtomicFile(dest_path, mode=0o600, fsync=True) as f:
            st: dict[str, Any] = {"done": 0, "hash": hashlib.new(algo)}

            def restart() -> None:
                f.seek(0)
                f.truncate()
                st["done"], st["hash"] = 0, hashlib.new(algo)
                if tee is not None:
                    tee(None)

            def attempt() -> None:
                headers = {"Range": f"bytes={st['done']}-"} if st["done"] else {}
                resp = self._request("GET", f"/v2/{repo}/blobs/{digest}", what=what,
                                     scope=self._scope(repo), ok=(200, 206), headers=headers)
                if resp.status == 206:
                    start = (resp.getheader("Content-Range") or "").removeprefix("bytes ").split("-")[0]
                    if start != str(st["done"]):
                        self._drop(resp)
                        restart()
                        raise _Transient(f"{what}: the registry resumed at the wrong offset")
                elif st["done"]:
                    restart()  # a 200 to our Range: the server sends it all again
                length = resp.getheader("Content-Length")
                body_len = int(length) if length and length.isdigit() else None
                total = expected_size if expected_size is not None else (
                    None if body_len is None else body_len + st["done"])
                got = 0
                try:
                    while True:
                        if stop is not None and stop.is_set():
                            raise RegistryError(f"{what}: cancelled")
                        chunk = resp.read(CHUNK)
                        if not chunk:
                            break
                        f.write(chunk)
                        st["hash"].update(chunk)
                        st["done"] += len(chunk)
                        if tee is not None:
                            tee(chunk)
                        got += len(chunk)
                        if expected_size is not None and st["done"] > expected_size:
                            raise RegistryError(f"{what}: the registry sent more than the "
                                                f"{expected_size} bytes the descriptor names")
                        if progress is not None:
                            progress(st["done"], total)
                except (OSError, http.client.HTTPException) as e:
                    self._drop(resp)
                    raise _Transient(f"{what}: connection lost: {e or type(e).__name__}") from None
                finally:
                    if not resp.isclosed():
                        self._drop(resp)
                if body_len is not None and got < body_len:
                    # http.client's read() reports a short body as a quiet EOF: resume from here.
                    raise _Transient(f"{what}: connection closed after {st['done']} bytes")

            self._retry(attempt)
            if expected_size is not None and st["done"] != expected_size:
                raise RegistryError(f"{what}: size mismatch: expected {expected_size} bytes, "
                                    f"got {st['done']}")
            actual = f"{algo}:{st['hash'].hexdigest()}"
            if actual != digest:
                raise RegistryError(f"{what}: digest mismatch: got {actual}; nothing was kept")
        return dest_path

    def upload_blob(self, repo: str, path: str, digest: str, *, location: str | None = None,
                    progress: Progress | None = None) -> bool:
        """Push the file at `path` as blob `digest`; returns False when the repository already
        had it (nothing was sent).

        Without `location`: HEAD, then POST a new upload. With one (an upload already opened,
        e.g. by a mount the registry could not do) the bytes go there at once. Up to
        MONOLITHIC_MAX bytes: one PUT ?digest=. Above: PATCHes of UPLOAD_CHUNK bytes with
        Content-Range (distribution's chunked protocol), then an empty PUT ?digest=.
        progress(sent, total) follows the bytes out.
        """
        what = f"push {self.host}/{repo}@{digest}"
        self._check_name(repo, digest, what)
        scope = self._scope(repo, push=True)
        size = os.path.getsize(path)
        opened = [location] if location else []

        def attempt() -> bool:
            if opened:
                url = self._upload_url(repo, opened.pop())  # used once: a retry starts afresh
            elif self._blob_exists(repo, digest, what, scope):
                return False
            else:
                url = self._start_upload(repo, what)
            if size > MONOLITHIC_MAX:
                url = self._patch_chunks(url, path, size, what, scope, progress)
                headers, body = {"Content-Length": "0"}, b""
            else:
                headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
                body = lambda: _FileSlice(path, 0, size, progress, size)  # noqa: E731
            url += ("&" if urlsplit(url).query else "?") + urlencode({"digest": digest})
            resp = self._request("PUT", url, what=what, scope=scope, ok=(201,), headers=headers,
                                 body=body)
            self._discard(resp)
            return True

        return self._retry(attempt)

    def mount_blob(self, repo: str, digest: str, source: str) -> str | None:
        """Ask the registry to link blob `digest` from repository `source` into `repo`
        (POST ?mount=&from=). None: mounted (201). Otherwise the URL of the upload the registry
        opened instead (202: it lacks the blob there, or will not mount): upload to it."""
        what = f"push {self.host}/{repo}@{digest}"
        self._check_name(repo, digest, what)
        self._check_name(source, digest, what)
        # The registry checks pull access on the source too: one token for both repositories.
        scope = f"{self._scope(repo, push=True)} {self._scope(source)}"
        query = urlencode({"mount": digest, "from": source})

        def attempt() -> str | None:
            resp = self._request("POST", f"/v2/{repo}/blobs/uploads/?{query}", what=what,
                                 scope=scope, ok=(201, 202), headers={"Content-Length": "0"},
                                 body=b"")
            location = resp.getheader("Location")
            self._discard(resp)
            if resp.status == 201:
                return None
            if not location:
                raise RegistryError(f"{what}: the registry sent no upload Location")
            return self._upload_url(repo, location)

        return self._retry(attempt)

    def cancel_upload(self, url: str) -> None:
        """DELETE an upload we will not use (best effort: the registry purges stale ones)."""
        try:
            repo = urlsplit(url).path.split("/v2/", 1)[1].rsplit("/blobs/uploads/", 1)[0]
            resp = self._request("DELETE", url, what=f"push {self.host}/{repo}",
                                 scope=self._scope(repo, push=True), ok=(204, 404))
            self._discard(resp)
        except (RegistryError, _Transient, IndexError):
            pass

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        """Push a manifest or index under ref (tag or digest); returns its digest."""
        what = f"push {self._name(repo, ref)}"
        self._check_name(repo, ref, what)
        digest = _hash("sha256", data)
        if _is_digest(ref) and _hash(ref.split(":", 1)[0], data) != ref:
            raise RegistryError(f"{what}: the manifest bytes do not have digest {ref}")

        def attempt() -> http.client.HTTPResponse:
            resp = self._request("PUT", f"/v2/{repo}/manifests/{ref}", what=what,
                                 scope=self._scope(repo, push=True), ok=(201,),
                                 headers={"Content-Type": media_type}, body=data)
            self._discard(resp)
            return resp

        resp = self._retry(attempt)
        header = (resp.getheader("Docker-Content-Digest") or "").strip()
        if header.startswith("sha256:") and header != digest:
            raise RegistryError(f"{what}: the registry stored digest {header}, expected {digest}")
        return digest

    # -- requests -------------------------------------------------------------------------------

    def _name(self, repo: str, ref: str) -> str:
        return f"{self.host}/{repo}{'@' if _is_digest(ref) else ':'}{ref}"

    def _check_name(self, repo: str, ref: str, what: str) -> None:
        # Both go into URL paths: refuse anything that is not a plain name, tag or digest.
        if not _REPO.match(repo or ""):
            raise RegistryError(f"{what}: invalid repository name {repo!r}")
        if _is_digest(ref):
            _check_digest(ref, what)
        elif not _TAG.match(ref or ""):
            raise RegistryError(f"{what}: invalid tag {ref!r}")

    @staticmethod
    def _scope(repo: str, push: bool = False) -> str:
        return f"repository:{repo}:{'pull,push' if push else 'pull'}"

    def _blob_exists(self, repo: str, digest: str, what: str, scope: str) -> bool:
        def attempt() -> bool:
            resp = self._request("HEAD", f"/v2/{repo}/blobs/{digest}", what=what, scope=scope,
                                 ok=(200, 404))
            self._discard(resp)
            return resp.status == 200

        return self._retry(attempt)

    def _start_upload(self, repo: str, what: str) -> str:
        """POST a new blob upload; its URL (the Location, made absolute)."""
        resp = self._request("POST", f"/v2/{repo}/blobs/uploads/", what=what,
                             scope=self._scope(repo, push=True), ok=(202,),
                             headers={"Content-Length": "0"}, body=b"")
        location = resp.getheader("Location")
        self._discard(resp)
        if not location:
            raise RegistryError(f"{what}: the registry sent no upload Location")
        return self._upload_url(repo, location)

    def _upload_url(self, repo: str, location: str) -> str:
        # Locations may be relative, and carry distribution's _state query: keep it whole.
        return urljoin(f"{self.scheme}://{self.api_host}/v2/{repo}/blobs/uploads/", location)

    def _patch_chunks(self, url: str, path: str, size: int, what: str, scope: str,
                      progress: Progress | None) -> str:
        """PATCH the file to the upload at `url` in UPLOAD_CHUNK pieces; returns the URL to PUT.

        Each answer's Location replaces the URL (distribution signs the offset into its _state)
        and its Range says how much the registry holds. After a failed chunk we ask the
        registry where it got to (GET the upload) and go on from there: a dropped connection
        costs one chunk. Failures in a row beyond `tries` give up; a lost or cancelled upload
        raises _Transient, so the caller starts a new one.
        """
        chunk = max(1, UPLOAD_CHUNK)
        offset, failures = 0, 0
        while offset < size:
            n = min(chunk, size - offset)
            headers = {"Content-Type": "application/octet-stream",
                       "Content-Range": f"{offset}-{offset + n - 1}", "Content-Length": str(n)}
            try:
                resp = self._request("PATCH", url, what=what, scope=scope, ok=(202, 416),
                                     headers=headers,
                                     body=lambda o=offset, n=n: _FileSlice(path, o, n, progress,
                                                                           size))
                if resp.status == 416:  # not where the registry is: resynchronize below
                    self._discard(resp)
                    raise _Transient(f"{what}: the registry refused the range {offset}-"
                                     f"{offset + n - 1}")
                url = self._upload_url_from(resp, url)
                end = _range_end(resp.getheader("Range"))
                self._discard(resp)
                offset = end + 1 if end is not None and end + 1 > offset else offset + n
                failures = 0
            except _Transient as e:
                failures += 1
                if failures >= self.tries:
                    raise RegistryError(str(e)) from None
                time.sleep(min(self.backoff * 2 ** (failures - 1), MAX_RETRY_AFTER))
                url, offset = self._upload_status(url, what, scope)
        return url

    def _upload_status(self, url: str, what: str, scope: str) -> tuple[str, int]:
        """(url, bytes the registry holds) of an upload in progress (GET -> 204 + Range)."""
        resp = self._request("GET", url, what=what, scope=scope, ok=(204, 400, 404))
        self._discard(resp)
        if resp.status != 204:
            # Unknown, or (distribution) cancelled because it holds more than the offset our
            # URL's _state promises, e.g. half of a chunk whose answer we lost: start over.
            raise _Transient(f"{what}: the registry dropped the upload")
        end = _range_end(resp.getheader("Range"))
        # distribution says "0-0" for an empty upload as for one byte: read it as empty.
        return self._upload_url_from(resp, url), end + 1 if end else 0

    def _upload_url_from(self, resp: http.client.HTTPResponse, url: str) -> str:
        location = resp.getheader("Location")
        return urljoin(url, location) if location else url

    def _retry(self, fn: Callable[[], T]) -> T:
        for attempt in range(self.tries):
            try:
                return fn()
            except _Transient as e:
                if attempt + 1 >= self.tries:
                    raise RegistryError(str(e)) from None
                delay = e.retry_after if e.retry_after is not None else self.backoff * 2 ** attempt
                time.sleep(min(delay, MAX_RETRY_AFTER))
        raise AssertionError("unreachable")

    def _request(self, method: str, path: str, *, what: str, scope: str, ok: tuple[int, ...],
                 headers: dict[str, str] | None = None,
                 body: bytes | Callable[[], Any] | None = None) -> http.client.HTTPResponse:
        """One logical request: 401 challenges answered, redirects followed.

        Returns the response (body unread) when its status is in `ok`. Connection errors, 5xx
        and 429 raise _Transient (the caller's _retry tries again); anything else RegistryError.
        """
        url = path if "://" in path else f"{self.scheme}://{self.api_host}{path}"
        answered = False
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            # Credentials go to the registry only: a redirect elsewhere (a CDN) gets none.
            ours = (parts.scheme, parts.netloc) == (self.scheme, self.api_host)
            h = {"User-Agent": USER_AGENT, **(headers or {})}
            if ours:
                auth = self._authorization(scope, what)
                if auth:
                    h["Authorization"] = auth
            resp = self._send(method, url, h, body)
            if resp.status in ok:
                return resp
            if resp.status == 401 and ours:
                challenge = resp.getheader("WWW-Authenticate") or ""
                self._discard(resp)
                if answered:
                    raise RegistryError(self._unauthorized(what))
                self._answer(challenge, scope, what)
                answered = True
                continue
            if resp.status in _REDIRECTS:
                location = resp.getheader("Location")
                self._discard(resp)
                if not location:
                    raise RegistryError(f"{what}: HTTP {resp.status} without a Location")
                url = urljoin(url, location)
                if resp.status == 303:
                    method, body = "GET", None
                continue
            message = f"{what}: {error_text(resp.status, resp.reason, self._discard(resp))}"
            if resp.status == 403 and scope.split(" ")[0].endswith(",push"):
                # Authenticated, but not allowed to write here: say where to fix it.
                message += f" (pushing needs write access: check `minirun login {self.host}`)"
            if resp.status >= 500 or resp.status == 429:
                retry_after = resp.getheader("Retry-After") or ""
                raise _Transient(message, float(retry_after) if retry_after.isdigit() else None)
            raise RegistryError(message)
        raise RegistryError(f"{what}: more than {MAX_REDIRECTS} redirects")

    def _send(self, method: str, url: str, headers: dict[str, str],
              body: bytes | Callable[[], Any] | None) -> http.client.HTTPResponse:
        """One HTTP exchange on this thread's kept-alive connection to the URL's host."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        subject = f"registry {parts.netloc}" if parts.netloc == self.api_host else parts.netloc
        for fresh in (False, True):
            conn = self._conn(key)
            reused = conn.sock is not None
            stream = body() if callable(body) else None
            try:
                conn.request(method, target, body=stream if stream is not None else body,
                             headers=headers)
                resp = conn.getresponse()
            except ssl.SSLCertVerificationError as e:
                self._close(key)
                raise RegistryError(f"{subject}: TLS certificate not trusted ({e.verify_message}); "
                                    "for a registry without a trusted certificate, mark it insecure"
                                    ) from None
            except ssl.SSLError as e:
                self._close(key)
                raise RegistryError(f"{subject}: TLS handshake failed ({e.reason}); if it speaks "
                                    "plain HTTP, mark it insecure") from None
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                self._close(key)
                if reused and not fresh:
                    continue  # the server closed our idle kept-alive connection: a new one
                raise _Transient(f"cannot reach {subject}: {_reason(e)}") from None
            except socket.gaierror:
                self._close(key)
                raise RegistryError(f"cannot reach {subject}: unknown host") from None
            except (OSError, http.client.HTTPException) as e:
                self._close(key)
                raise _Transient(f"cannot reach {subject}: {_reason(e)}") from None
            finally:
                if stream is not None:
                    stream.close()
            resp.conn_key = key  # type: ignore[attr-defined]  # so _drop knows its connection
            return resp
        raise AssertionError("unreachable")

    def _conn(self, key: tuple[str, str]) -> http.client.HTTPConnection:
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        conn = pool.get(key)
        if conn is None:
            scheme, netloc = key
            if scheme == "https":
                if self._ssl is None:
                    self._ssl = ssl.create_default_context()  # the system CAs
                conn = http.client.HTTPSConnection(netloc, timeout=self.timeout, context=self._ssl,
                                                   blocksize=CHUNK)
            elif scheme == "http":
                conn = http.client.HTTPConnection(netloc, timeout=self.timeout, blocksize=CHUNK)
            else:
                raise RegistryError(f"unsupported URL scheme {scheme!r} (from a redirect?)")
            pool[key] = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def _close(self, key: tuple[str, str]) -> None:
        conn = getattr(self._local, "pool", {}).pop(key, None)
        if conn is not None:
            conn.close()
            with self._lock:
                if conn in self._conns:
                    self._conns.remove(conn)

    def _drop(self, resp: http.client.HTTPResponse) -> None:
        """Abandon a response mid-body: its connection cannot carry another request."""
        resp.close()
        self._close(resp.conn_key)  # type: ignore[attr-defined]

    def _discard(self, resp: http.client.HTTPResponse) -> bytes:
        """Read a (small) body to its end so the connection is reusable; return it."""
        try:
            data = resp.read(65536)
        except (OSError, http.client.HTTPException):
            data = b""
        if not resp.isclosed():
            self._drop(resp)
        return data

    def _read_manifest(self, resp: http.client.HTTPResponse, what: str) -> bytes:
        try:
            data = resp.read(MAX_MANIFEST + 1)
        except (OSError, http.client.HTTPException) as e:
            self._drop(resp)
            raise _Transient(f"{what}: connection lost: {e or type(e).__name__}") from None
        if len(data) > MAX_MANIFEST:
            self._drop(resp)
            raise RegistryError(f"{what}: the manifest is larger than {MAX_MANIFEST >> 20} MiB")
        length = resp.getheader("Content-Length")
        if length and length.isdigit() and len(data) < int(length):
            self._drop(resp)
            raise _Transient(f"{what}: connection closed after {len(data)} of {length} bytes")
        if not resp.isclosed():
            self._drop(resp)
        return data

    # -- auth -----------------------------------------------------------------------------------

    def _basic(self) -> str:
        user, password = self.credentials  # type: ignore[misc]
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def _unauthorized(self, what: str) -> str:
        if self.credentials:
            return f"{what}: unauthorized: check `minirun login {self.host}`"
        return (f"{what}: unauthorized: the repository does not exist or needs "
                f"`minirun login {self.host}`")

    def _authorization(self, scope: str, what: str) -> str | None:
        """The Authorization header for a request, once the registry has told us its scheme."""
        challenge = self._challenge
        if challenge is None:
            return None  # anonymous until the first 401
        if challenge["scheme"] == "basic":
            return self._basic() if self.credentials else None
        # A pull,push token covers pulls too.
        token = self._tokens.get(scope) or self._tokens.get(scope + ",push")
        if token is None:
            # Workers needing the same new scope at once (a push's layers): one asks, the
            # others wait for its token instead of each asking the token server.
            with self._lock:
                lock = self._token_locks.setdefault(scope, threading.Lock())
            with lock:
                token = self._tokens.get(scope) or self._tokens.get(scope + ",push")
                if token is None:
                    token = self._token(scope, scope.split(), what)  # a mount names two repos
        return f"Bearer {token}"

    def _answer(self, header: str, scope: str, what: str) -> None:
        """Meet a 401's WWW-Authenticate challenge, so that the next try carries credentials."""
        challenge = parse_challenge(header)
        if challenge is None or challenge["scheme"] not in ("basic", "bearer"):
            raise RegistryError(f"{what}: unauthorized (no usable WWW-Authenticate challenge: "
                                f"{header[:80]!r})")
        with self._lock:
            self._challenge = challenge
            self._tokens.pop(scope, None)  # expired or too narrow: ask again
        if challenge["scheme"] == "basic":
            if not self.credentials:
                raise RegistryError(self._unauthorized(what))
            return
        # Ask for our scope and for the one the registry named, when it is another (push: the
        # registry may name pull,push while we hold a pull token; /v2/: we have none). Either
        # may hold several, space-separated (a mount): each becomes a scope= of its own.
        scopes = list(dict.fromkeys([*scope.split(), *challenge.get("scope", "").split()]))
        self._token(scope, scopes, what)

    def _token(self, key: str, scopes: list[str], what: str) -> str:
        """A bearer token from the challenge's realm for `scopes`, cached under `key`."""
        challenge = self._challenge or {}
        realm = challenge.get("realm", "")
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RegistryError(f"{what}: the registry named no usable token realm ({realm!r})")
        if (parts.scheme == "http" and self.credentials and not self.insecure
                and not is_loopback(parts.netloc)):
            raise RegistryError(f"{what}: token realm {realm} is plain HTTP: refusing to send "
                                "credentials (mark the registry insecure to allow it)")
        params = ([("service", challenge["service"])] if challenge.get("service") else [])
        params += [("scope", s) for s in scopes]
        url = realm + ("&" if parts.query else "?") + urlencode(params) if params else realm
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self.credentials:
            headers["Authorization"] = self._basic()

        def attempt() -> bytes:
            resp = self._send("GET", url, headers, None)
            body = self._discard(resp)
            if resp.status == 401 or resp.status == 403:
                raise RegistryError(self._unauthorized(what))
            if resp.status != 200:
                message = f"{what}: token server: {error_text(resp.status, resp.reason, body)}"
                if resp.status >= 500 or resp.status == 429:
                    raise _Transient(message)
                raise RegistryError(message)
            return body

        body = self._retry(attempt)
        try:
            data = json.loads(body)
            token = data.get("token") or data.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{what}: the token server {parts.netloc} sent no token")
        with self._lock:
            self._tokens[key] = token
        return token


def _range_end(header: str | None) -> int | None:
    """The last byte of an upload's Range header ("0-1234" -> 1234); None if absent or odd."""
    start, _, end = (header or "").strip().removeprefix("bytes=").partition("-")
    return int(end) if start.isdigit() and end.isdigit() else None


class _FileSlice:
    """`length` bytes of the file at `path` from `offset`: a request body http.client reads in
    blocks. progress(offset + sent, total) follows each block."""

    def __init__(self, path: str, offset: int, length: int, progress: Progress | None,
                 total: int) -> None:
        self._file = open(path, "rb")
        self._file.seek(offset)
        self._left, self._done = length, offset
        self._progress, self._total = progress, total

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        data = self._file.read(self._left if n is None or n < 0 else min(n, self._left))
        self._left = self._left - len(data) if data else 0  # a shrunk file ends the body
        self._done += len(data)
        if self._progress is not None and data:
            self._progress(self._done, self._total)
        return data

    def close(self) -> None:
        self._file.close()


def _reason(e: BaseException) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, TimeoutError):
        return "timed out"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return str(e) or type(e).__name__


# ---- concurrent pulls ------------------------------------------------------------------------

def fetch_blobs(registry: Registry, repo: str, descriptors: list[dict], dest_dir: str,
                workers: int = 4,
                progress: Callable[[str, int, "int | None"], None] | None = None,
                have: Callable[[str], bool] | None = None) -> dict[str, str]:
    """Fetch the descriptors' blobs into dest_dir/<algo>/<hex>, `workers` at a time.

    Blobs for which have(digest) is true are skipped (the caller's store has them; it may also
    report "already exists" from there). progress(digest, done, total) is called from worker
    threads. The first failure cancels the other downloads and is raised; blobs completed
    before it stay (each is verified). Returns {digest: path} of the blobs fetched.
    """
    todo: dict[str, dict] = {}
    for d in descriptors:
        digest = d.get("digest", "")
        _check_digest(digest, f"pull {registry.host}/{repo}")
        if digest not in todo and not (have is not None and have(digest)):
            todo[digest] = d
    if not todo:
        return {}
    stop = threading.Event()
    done: dict[str, str] = {}
    first: BaseException | None = None
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo))),
                              thread_name_prefix="minirun-pull")
    try:
        futures = {}
        for digest, d in todo.items():
            cb = None if progress is None else (
                lambda n, total, digest=digest: progress(digest, n, total))
            futures[pool.submit(registry.fetch_blob, repo, digest, blob_path(dest_dir, digest),
                                d.get("size"), cb, stop=stop)] = digest
        for fut in as_completed(futures):
            try:
                done[futures[fut]] = fut.result()
            except BaseException as e:  # noqa: BLE001 - re-raised below, after the others stop
                if first is None:
                    first = e
                    stop.set()
                    for other in futures:
                        other.cancel()  # not started yet: never started
    except BaseException:
        stop.set()  # Ctrl-C: running downloads stop at their next chunk
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if first is not None:
        # A cancelled sibling's "cancelled" must not hide the error that caused it.
        raise first
    return done
