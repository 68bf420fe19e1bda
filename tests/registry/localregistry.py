"""Local registries and test images for the registry client tests (no pytest in here).

- build_layout(dir, rootfs): an OCI image layout in pure Python: a busybox image for linux/amd64
  (two gzip layers: the rootfs from scripts/build-rootfs and a small one), a fake linux/arm64/v8
  image (one tiny layer) and an index over both. Refs in index.json: "amd64", "arm64", "multi".
- LocalRegistry: Debian's docker-registry on 127.0.0.1 and a free port, mode "open", "basic"
  (htpasswd with bcrypt entries) or "token" (JWT token server: tokenserver.py, run here).
  Several registries may share one storage directory: push once, serve it in every mode.
- skopeo_copy: push a layout ref to a registry (plain HTTP, no policy file, no auth file).
- RecordingProxy: a reverse proxy in front of a registry that records (and may answer) requests.

Every process started here is in its own session and is stopped by stop(): nothing outlives
the tests.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOKEN_SERVER = HERE / "tokenserver.py"
ISSUER, SERVICE = "minirun-test-issuer", "minirun-registry"
# Throw-away accounts for the local test registries only.
USER, PASSWORD = "testuser", "testpass"

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---- images ----------------------------------------------------------------------------------

def _tar(add) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        add(tf)
    return buf.getvalue()


def _tar_tree(root: Path) -> bytes:
    def add(tf: tarfile.TarFile) -> None:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                path = Path(dirpath) / name
                info = tf.gettarinfo(str(path), str(path.relative_to(root)))
                info.mtime = 0
                if info.isfile():
                    with open(path, "rb") as f:
                        tf.addfile(info, f)
                else:
                    tf.addfile(info)
    return _tar(add)


def _tar_files(files: dict[str, bytes]) -> bytes:
    def add(tf: tarfile.TarFile) -> None:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tf.addfile(info, io.BytesIO(data))
    return _tar(add)


class Layout:
    """An OCI image layout being written: blobs by digest, refs in index.json."""

    def __init__(self, path: Path) -> None:
        self.path = path
        (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        self.refs: list[dict] = []
        self.blobs: dict[str, bytes] = {}

    def blob(self, data: bytes, media_type: str, **extra) -> dict:
        digest = sha256(data)
        (self.path / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(data)
        self.blobs[digest] = data
        return {"mediaType": media_type, "digest": digest, "size": len(data), **extra}

    def image(self, layers: list[bytes], arch: str, variant: str = "") -> dict:
        """A manifest over gzip layers made from the given tars; returns its descriptor."""
        descs = [self.blob(gzip.compress(t, mtime=0), OCI_LAYER_GZIP) for t in layers]
        platform = {"architecture": arch, "os": "linux", **({"variant": variant} if variant else {})}
        config = {
            **platform,
            "created": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc).isoformat(),
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin:/sbin"], "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": [sha256(t) for t in layers]},
            "history": [{"created_by": f"minirun tests: layer {i}"} for i in range(len(layers))],
        }
        manifest = {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": self.blob(json.dumps(config).encode(), OCI_CONFIG),
            "layers": descs,
        }
        return self.blob(json.dumps(manifest).encode(), OCI_MANIFEST, platform=platform)

    def tag(self, desc: dict, name: str) -> None:
        d = {k: v for k, v in desc.items() if k != "platform"}
        d["annotations"] = {"org.opencontainers.image.ref.name": name}
        self.refs.append(d)
        (self.path / "index.json").write_text(json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.refs}))


def build_layout(path: Path, rootfs: Path | None) -> dict:
    """Write the test layout; returns {"amd64": desc, "arm64": desc, "multi": desc, "blobs": {...}}.

    rootfs: a busybox tree (scripts/build-rootfs); None gives a tiny stand-in layer.
    """
    lay = Layout(path)
    base = _tar_tree(rootfs) if rootfs else _tar_files({"bin/sh": b"#!stand-in\n"})
    amd64 = lay.image([base, _tar_files({"etc/motd": b"hello from layer 2\n"})], "amd64")
    arm64 = lay.image([_tar_files({"ARCH": b"arm64 (fake: never run it)\n"})], "arm64", "v8")
    multi = lay.blob(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                 "manifests": [amd64, arm64]}).encode(), OCI_INDEX)
    lay.tag(amd64, "amd64")
    lay.tag(arm64, "arm64")
    lay.tag(multi, "multi")
    return {"amd64": amd64, "arm64": arm64, "multi": multi, "blobs": lay.blobs, "path": path}


def skopeo_copy(layout: Path, ref: str, dest: str, *, fmt: str | None = None, all_: bool = False,
                creds: str | None = None) -> None:
    """skopeo copy oci:LAYOUT:REF docker://DEST over plain HTTP, isolated from host config."""
    cmd = ["skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false"]
    if fmt:
        cmd += ["--format", fmt]
    if all_:
        cmd += ["--all"]
    cmd += ["--dest-creds", creds] if creds else ["--dest-no-creds"]
    cmd += [f"oci:{layout}:{ref}", f"docker://{dest}"]
    # Only 127.0.0.1 is ever contacted: no proxy, and no auth file but a private one.
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["REGISTRY_AUTH_FILE"] = str(layout.parent / "skopeo-auth.json")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} -> {r.returncode}: {r.stderr.strip()}")


# ---- registries ------------------------------------------------------------------------------

def _wait_listening(port: int, proc: subprocess.Popen, log: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"not listening on 127.0.0.1:{port} after {timeout}s: "
                       f"{log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the process group is just it
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def make_token_keys(directory: Path) -> tuple[Path, Path]:
    """An RSA key and a self-signed cert (CN=issuer) for signing and checking tokens."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


class LocalRegistry:
    """docker-registry on 127.0.0.1:<free port>; .host is "127.0.0.1:PORT"."""

    def __init__(self, workdir: Path, mode: str = "open", storage: Path | None = None) -> None:
        assert mode in ("open", "basic", "token")
        self.workdir, self.mode = workdir, mode
        self.storage = storage or workdir / "data"
        self.proc: subprocess.Popen | None = None
        self.token_proc: subprocess.Popen | None = None
        self.token_log = workdir / "tokenserver.log"
        self.port = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def _auth_config(self) -> dict:
        if self.mode == "basic":
            import bcrypt  # htpasswd in distribution takes bcrypt entries only

            htpasswd = self.workdir / "htpasswd"
            entry = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
            htpasswd.write_text(f"{USER}:{entry}\n")
            return {"htpasswd": {"realm": "minirun-test", "path": str(htpasswd)}}
        if self.mode == "token":
            key, cert = make_token_keys(self.workdir)
            log = open(self.token_log, "w")
            self.token_proc = subprocess.Popen(
                [sys.executable, str(TOKEN_SERVER), str(key), str(cert), "0"],
                stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True,
                start_new_session=True, env={**os.environ, "TOKEN_USERS": f"{USER}:{PASSWORD}"})
            log.close()
            line = self.token_proc.stdout.readline().strip()
            if not line.isdigit():
                _stop(self.token_proc)
                raise RuntimeError(f"token server did not start: {self.token_log.read_text()}")
            self.token_port = int(line)
            return {"token": {"realm": f"http://127.0.0.1:{self.token_port}/token",
                              "service": SERVICE, "issuer": ISSUER,
                              "rootcertbundle": str(cert)}}
        return {}

    def start(self) -> LocalRegistry:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage.mkdir(parents=True, exist_ok=True)
        auth = self._auth_config()
        for _ in range(5):  # a free port can be taken between picking and binding it
            self.port = free_port()
            config = {  # YAML is a superset of JSON
                "version": 0.1,
                "log": {"level": "warn", "accesslog": {"disabled": True}},
                "storage": {"filesystem": {"rootdirectory": str(self.storage)},
                            "delete": {"enabled": True},
                            "maintenance": {"uploadpurging": {"enabled": False}}},
                "http": {"addr": self.host, "secret": "minirun-tests-only"},
                **({"auth": auth} if auth else {}),
            }
            cfg = self.workdir / "config.yml"
            cfg.write_text(json.dumps(config))
            log_path = self.workdir / "registry.log"
            with open(log_path, "w") as log:
                self.proc = subprocess.Popen(["docker-registry", "serve", str(cfg)], stdout=log,
                                             stderr=log, stdin=subprocess.DEVNULL,
                                             start_new_session=True)
            try:
                _wait_listening(self.port, self.proc, log_path)
                return self
            except RuntimeError:
                if self.proc.poll() is None or "address already in use" not in log_path.read_text():
                    self.stop()
                    raise
        self.stop()
        raise RuntimeError("docker-registry: no free port after 5 tries")

    def stop(self) -> None:
        _stop(self.proc)
        _stop(self.token_proc)
        if self.token_proc is not None and self.token_proc.stdout:
            self.token_proc.stdout.close()

    def token_requests(self) -> list[str]:
        """The paths the token server was asked for (its access log), oldest first."""
        if not self.token_log.exists():
            return []
        return [line.split('"')[1].split()[1] for line in self.token_log.read_text().splitlines()
                if line.startswith("token: ") and '"GET ' in line]

    def get(self, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
        """A raw request to the registry (to check what it really stored); http.client, no proxy."""
        h = dict(headers or {})
        if self.mode == "basic":
            h["Authorization"] = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        conn = http.client.HTTPConnection(self.host, timeout=10)
        try:
            conn.request("GET", path, headers=h)
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()


# ---- a recording proxy -----------------------------------------------------------------------

class ProxyRequest:
    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method, self.path, self.headers, self.body = method, path, headers, body

    def __repr__(self) -> str:
        return f"{self.method} {self.path}"


class RecordingProxy:
    """A reverse proxy on 127.0.0.1:<free port> in front of a registry: records every request
    (.requests) and lets a test answer some itself: intercept(proxy, req) returns None (forward
    it) or (status, headers, body). The Host header is passed on unchanged, so the Locations the
    registry builds point back at the proxy and a whole push goes through it."""

    _HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection"}

    def __init__(self, target: str, intercept=None) -> None:
        self.target, self.intercept = target, intercept
        self.requests: list[ProxyRequest] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10

            def handle_one(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                req = ProxyRequest(self.command, self.path, dict(self.headers.items()),
                                   self.rfile.read(n) if n else b"")
                outer.requests.append(req)
                answer = outer.intercept(outer, req) if outer.intercept else None
                status, headers, body = answer if answer is not None else outer.forward(req)
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in outer._HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body) if self.command != "HEAD"
                                                       else headers.get("Content-Length", 0)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_one

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def forward(self, req: ProxyRequest, *, headers: dict | None = None,
                body: bytes | None = None) -> tuple[int, dict, bytes]:
        """Send req (or req with other headers / body) to the registry; its answer."""
        h = {k: v for k, v in (headers if headers is not None else req.headers).items()
             if k.lower() not in self._HOP}
        data = req.body if body is None else body
        h["Content-Length"] = str(len(data))
        conn = http.client.HTTPConnection(self.target, timeout=30)
        try:
            conn.request(req.method, req.path, body=data, headers=h)
            r = conn.getresponse()
            out = r.read()
            return r.status, dict(r.getheaders()), out
        finally:
            conn.close()

    def blob_writes(self) -> list[ProxyRequest]:
        """Requests that upload or start uploading a blob (POST, PATCH, PUT under /blobs/)."""
        return [r for r in self.requests
                if r.method in ("POST", "PATCH", "PUT") and "/blobs/" in r.path]

    def clear(self) -> None:
        self.requests.clear()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
