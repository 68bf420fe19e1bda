"""Registries: pull, push, login, logout, in plain data, progress as Docker's JSON messages.

    pull(store, name, platform, ...)    -> ImageRecord               POST /images/create?fromImage
    push(store, name, all_tags, ...)    -> [{"Tag", "Digest", "Size"}]  POST /images/{name}/push
    login(auth_file, server, username, password) -> {"Status", "IdentityToken"}   POST /auth
    logout(auth_file, server)           -> the host forgotten, or "" if it had no credentials

Credentials are read from Docker's config.json first, then minirun's `auth_file`
(image/auth.py's Credentials). `login` keeps them in `auth_file` when given one (the API
service's POST /auth), in Docker's config.json when given None (the CLI, as `docker login`);
`logout` forgets them in both.
    server_host(server)                 -> the key credentials are kept under (docker.io default)

`progress` is a callable given each of Docker's JSON progress messages, in order, as the
daemon streams them: {"status": "Pulling from library/busybox", "id": "latest"}, {"status":
"Downloading", "progressDetail": {"current": 1200, "total": 3400}, "id": "<12 hex>"},
{"status": "Digest: sha256:..."}; for push, {"status": "latest: digest: ... size: 527"} and
{"aux": {"Tag", "Digest", "Size"}}. A callback rather than an iterator: the layers move in
worker threads and the call returns the image; the CLI renders each message as it comes
(cli/progress.py), the Docker API service writes each as one JSON line of its response.

Errors: RegistryError (unreachable, refused, bad content; 500), ImageError/NotFound (a tag to
push that is not in the store), InvalidArgument (a bad reference: errors.ReferenceError).
"""

from __future__ import annotations

import os
from typing import Callable, Iterable

from ...errors import RegistryError
from ...image import auth, reference
from ...image import pull as image_pull
from ...image import push as image_push
from ...image.store import ImageRecord, Store
from .. import events as journal

Progress = Callable[[dict], None]


class _PullMessages(image_pull.Progress):
    """image/pull.py's reports as Docker's JSON progress messages."""

    def __init__(self, send: Progress) -> None:
        self.send = send

    def start(self, ref: reference.Reference) -> None:
        self.send({"status": f"Pulling from {ref.familiar_repo}",
                   "id": ref.digest or ref.tag or "latest"})

    def layer(self, digest: str, status: str, done: int | None = None,
              total: int | None = None) -> None:
        self.send({"status": status, "progressDetail": _detail(done, total), "id": digest})

    def finish(self, digest: str, status: str) -> None:
        self.send({"status": f"Digest: {digest}"})
        self.send({"status": f"Status: {status}"})


class _PushMessages(image_push.Progress):
    """image/push.py's reports as Docker's JSON progress messages."""

    def __init__(self, send: Progress) -> None:
        self.send = send

    def start(self, ref: reference.Reference) -> None:
        self.send({"status": f"The push refers to repository [{ref.repo}]"})

    def layer(self, key: str, status: str, done: int | None = None,
              total: int | None = None) -> None:
        self.send({"status": status, "progressDetail": _detail(done, total), "id": key})

    def finish(self, pushed: image_push.Pushed) -> None:
        self.send({"status": f"{pushed.tag}: digest: {pushed.digest} size: {pushed.size}"})
        self.send({"progressDetail": {},
                   "aux": {"Tag": pushed.tag, "Digest": pushed.digest, "Size": pushed.size}})


def _detail(done: int | None, total: int | None) -> dict:
    detail = {}
    if done is not None:
        detail["current"] = done
    if total is not None:
        detail["total"] = total
    return detail


def pull(store: Store, name: str, *, platform: str | None = None,
         insecure_registries: Iterable[str] = (), auth_file: str | None = None,
         progress: Progress | None = None,
         credentials: tuple[str, str] | None = None) -> ImageRecord:
    """Pull NAME[:TAG|@DIGEST] (for `platform`, os/arch[/variant], default this host's) into
    the store; returns its record. Plain HTTP only for loopback registries and those in
    `insecure_registries`; credentials from `auth_file`."""
    record = image_pull.pull(store, name, platform=platform,
                             insecure_registries=insecure_registries, auth_file=auth_file,
                             progress=_PullMessages(progress) if progress else None,
                             quiet=progress is None, credentials=credentials)
    journal.record(os.path.dirname(store.root), "image", "pull", name, {"name": name})
    return record


def push(store: Store, name: str, *, all_tags: bool = False,
         insecure_registries: Iterable[str] = (), auth_file: str | None = None,
         progress: Progress | None = None,
         credentials: tuple[str, str] | None = None) -> list[dict]:
    """Push NAME[:TAG] (every tag of NAME with `all_tags`): [{"Tag", "Digest", "Size"}] per
    tag pushed, the manifest's digest now a RepoDigest of the image."""
    pushed = image_push.push(store, name, all_tags=all_tags,
                             insecure_registries=insecure_registries, auth_file=auth_file,
                             progress=_PushMessages(progress) if progress else None,
                             credentials=credentials)
    return [{"Tag": p.tag, "Digest": p.digest, "Size": p.size} for p in pushed]


def manifest_inspect(name: str, *, verbose: bool = False, insecure_registries: Iterable[str] = (),
                     auth_file: str | None = None) -> dict | list:
    """What the registry holds for NAME[:TAG|@DIGEST], read and checked, nothing pulled:
    `docker manifest inspect`. The manifest or index as the registry sent it; with `verbose`,
    Docker's verbose form: {"Ref", "Descriptor", "Raw", "SchemaV2Manifest"|"OCIManifest"} for
    one manifest, a list of them (one per platform, each fetched) for an index."""
    import base64

    from ...base import mediatypes
    from ...image import reference

    ref = reference.parse(name)
    with image_pull.registry_for(ref.registry, insecure_registries=insecure_registries,
                                 auth_file=auth_file) as reg:
        top = reg.get_manifest(ref.repository, ref.manifest_ref)
        if not verbose:
            return top.json

        def entry(m, platform: dict | None) -> dict:
            descriptor = {"mediaType": m.media_type, "digest": m.digest, "size": len(m.raw_bytes)}
            if platform:
                descriptor["platform"] = platform
            key = "OCIManifest" if m.media_type == mediatypes.OCI_MANIFEST else "SchemaV2Manifest"
            return {"Ref": f"{ref.repo}@{m.digest}" if platform else ref.name,
                    "Descriptor": descriptor, "Raw": base64.b64encode(m.raw_bytes).decode(),
                    key: m.json}

        if not top.is_index:
            return entry(top, None)
        return [entry(reg.get_manifest(ref.repository, d["digest"]), d.get("platform") or {})
                for d in top.json.get("manifests") or []]


def has_tag(name: str) -> bool:
    """Whether NAME names a tag ("x:1", not "x" or "host:5000/x"): push says "Using default
    tag" otherwise."""
    return image_push.has_tag(name)


def server_host(server: str | None) -> str:
    """The registry host credentials are kept under (docker.io when none is given).
    RegistryError for an address that names no host."""
    host = auth.normalize_host(server or "docker.io")
    if not host:
        raise RegistryError(f"invalid registry address {server!r}")
    return host


def login(auth_file: str | None, server: str | None, username: str, password: str, *,
          insecure_registries: Iterable[str] = ()) -> dict:
    """Check the credentials against the registry, then keep them (in minirun's `auth_file`,
    or with None in Docker's config.json and its credential helper): Docker's AuthResponse
    {"Status": "Login Succeeded", "IdentityToken": ""}."""
    host = server_host(server)
    if not username or not password:
        raise RegistryError(f"login {host}: user name and password must not be empty")
    with image_pull.registry_for(host, insecure_registries=insecure_registries,
                                 credentials=(username, password)) as reg:
        reg.ping()
    if auth_file is None:
        auth.Credentials(None).store(host, username, password)
    else:
        auth.AuthFile(auth_file).login(host, username, password)
    return {"Status": "Login Succeeded", "IdentityToken": ""}


def logout(auth_file: str, server: str | None) -> str:
    """Forget a registry's credentials, in Docker's config.json and in minirun's `auth_file`:
    its host, or "" when there were none."""
    host = server_host(server)
    return host if auth.Credentials(auth_file).erase(host) else ""


__all__ = ["Progress", "pull", "push", "has_tag", "server_host", "login", "logout"]
