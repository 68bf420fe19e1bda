"""Image building and moving: Docker's build, commit, push, save and load endpoints.

    POST /build                  a tar (or gzip'd tar) context in the body -> the classic
                                 builder's JSON stream: {"stream": "Step 1/3 : FROM busybox\\n"},
                                 RUN's output, {"aux": {"ID"}}, "Successfully built/tagged"
    POST /commit                 ?container=&repo=&tag=&comment=&author=&pause=&changes=, an
                                 optional ContainerConfig body -> 201 {"Id"}
    POST /images/{name}/push     ?tag= (none: every tag), X-Registry-Auth -> the push progress,
                                 ending in {"progressDetail": {}, "aux": {"Tag", "Digest", "Size"}}
    GET  /images/get             ?names=A&names=B -> one `docker save` tar, streamed
    GET  /images/{name}/get      the same for one image
    POST /images/load            a docker-archive or OCI tar in the body -> {"stream": "Loaded
                                 image: NAME\\n"} per image

Bodies (a context, an image archive) are read piece by piece as they arrive and never held
whole: a context is unpacked on the fly into a private directory under the image store's tmp/
(engine/api/build.unpack_context: nothing lands outside it, no device node is made), which goes
when the build ends, fails, or its client goes away. Every body is read to its end even when
the answer is an error, so a kept-alive connection's next request starts where it should.
"""

from __future__ import annotations

import io
import json
import select
import shlex
import socket
import threading
from collections.abc import Iterable, Iterator

from ..engine.api import archives, distribution
from ..engine.api import build as api
from ..engine.api import images as images_api
from ..errors import InvalidArgument, MinirunError, NotFound, Unsupported
from ..image.auth import default_path as auth_path
from . import streams, wire
from .images import registry_auth
from .routes import route


class _Body(io.RawIOBase):
    """A request body (Request.stream_body's pieces) as a binary file, for tarfile. `drain()`
    reads what the consumer left: a tar's end-of-archive padding, or all of it after an error."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._pieces: Iterator[bytes] = iter(pieces)
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        while not self._left:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._left = piece
        n = min(len(buf), len(self._left))
        buf[:n] = self._left[:n]
        self._left = self._left[n:]
        return n

    def drain(self) -> None:
        self._left = b""
        try:
            for _ in self._pieces:
                pass
        except (OSError, MinirunError):
            pass  # a body that cannot be read further: the error already said so


def _body(req: wire.Request) -> tuple[_Body, io.BufferedReader]:
    raw = _Body(req.stream_body())
    return raw, io.BufferedReader(raw, 1 << 16)


def _json_arg(req: wire.Request, name: str) -> dict[str, str | None]:
    """A query parameter that holds a JSON object of strings (buildargs, labels)."""
    text = req.arg(name)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidArgument(f"{name}: {text!r} is not JSON") from None
    if not isinstance(value, dict) or not all(v is None or isinstance(v, str)
                                              for v in value.values()):
        raise InvalidArgument(f"{name}: expected a JSON object of strings")
    return value


# -- POST /build ----------------------------------------------------------------------------

def _watch_client(conn: socket.socket | None, gone: threading.Event) -> None:
    """Set `gone` when the client closes its connection while the build runs. The stream
    alone would notice only at its next write, and a RUN may be silent for minutes; Docker
    (Go's server) cancels a build as soon as the connection's read side ends, so this does too.
    The body has been read to its end: whatever becomes readable now is that end."""
    if conn is None:
        return

    def watch() -> None:
        while not gone.is_set():
            try:
                ready, _, _ = select.select([conn], [], [], 0.5)
                if not ready:
                    continue
                if conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT):
                    return  # a pipelined request, not an end: nothing to watch for
            except BlockingIOError:
                continue
            except (OSError, ValueError):  # reset, or closed under us
                pass
            gone.set()

    threading.Thread(target=watch, daemon=True, name="build-client-watch").start()


def _build_options(req: wire.Request) -> dict:
    """The query, checked before the context is read: a bad option costs no unpacking."""
    if req.arg("remote"):
        raise Unsupported("build: remote contexts (git, URL) are not supported; send the "
                          "context as a tar")
    if req.arg("version") == "2":
        raise Unsupported("build: BuildKit (version=2) is not supported; the classic builder "
                          "is (DOCKER_BUILDKIT=0)")
    if req.flag("squash"):
        raise Unsupported("build: --squash is not supported")
    network = req.arg("networkmode") or "default"
    if network not in api.NETWORKS:
        raise InvalidArgument(f"networkmode {network}: RUN can use default, bridge, none or "
                              "host")
    tags = [t for t in req.query.get("t", []) if t]
    for t in tags:
        images_api.check_tag(t)  # a bad -t fails now, not after the whole build
    # Accepted and not needed: rm and forcerm (intermediate containers always go), cachefrom,
    # and the resource limits (memory, cpu*): RUN's containers take the engine's defaults.
    return {
        "tags": tags,
        # A build arg sent as null (`--build-arg K` with K unset) is declared without a value.
        "build_args": {k: v for k, v in _json_arg(req, "buildargs").items() if v is not None},
        "labels": {k: v or "" for k, v in _json_arg(req, "labels").items()},
        "no_cache": req.flag("nocache"),
        "target": req.arg("target") or None,
        "pull_always": req.flag("pull"),
        "network": network,
        "quiet": req.flag("q"),
    }


@route("POST", "/build")
def build(eng, req: wire.Request) -> wire.Stream:
    """Unpack the context (here, so a bad archive is a 400), then build in a worker thread
    whose messages are the response. The context goes when the worker ends, whatever way."""
    raw, body = _body(req)
    try:
        opts = _build_options(req)
        ctx = api.unpack_context(eng, body)
    except BaseException:
        raw.drain()
        raise
    raw.drain()
    try:
        dockerfile = ctx.dockerfile(req.arg("dockerfile"))
    except BaseException:
        ctx.remove()
        raise
    platform = req.arg("platform") or None
    gone = threading.Event()  # the client went away: the build stops at its next step
    started = threading.Event()

    def work(send) -> None:
        started.set()
        store = eng.images()

        def fetch(ref: str, policy: str):
            """A FROM image: the store's, else pulled, its progress in this stream (as the
            CLI's ensure_image does with its own display)."""
            if policy != "always":
                try:
                    return images_api.get(store, ref)
                except NotFound:
                    pass
            return distribution.pull(store, ref, platform=platform,
                                     auth_file=auth_path(eng.root),
                                     progress=None if opts["quiet"] else send)

        try:
            done = api.build_streamed(eng, ctx.path, dockerfile=dockerfile, pull=fetch,
                                      progress=send, cancelled=gone.is_set, **opts)
            if opts["quiet"]:
                send({"stream": done["Id"] + "\n"})  # -q: the ID is the whole output
        finally:
            ctx.remove()

    def closed() -> None:
        gone.set()  # also ends the watcher
        if not started.is_set():
            ctx.remove()  # the stream never ran its worker

    _watch_client(req.connection, gone)
    return wire.Stream(streams.json_messages(work), on_close=closed)


# -- POST /commit ---------------------------------------------------------------------------

def _config_changes(config: dict) -> list[str]:
    """A ContainerConfig body as Dockerfile changes: Docker merges it over the container's
    config the way these instructions do (Env, Labels, ports and volumes by key; the rest
    replaced)."""
    if not isinstance(config, dict):
        raise InvalidArgument("commit: the body must be a JSON object (a ContainerConfig)")
    out = []
    for key, instr in (("Cmd", "CMD"), ("Entrypoint", "ENTRYPOINT")):
        value = config.get(key)
        if value:
            out.append(f"{instr} {json.dumps(value if isinstance(value, list) else [value])}")
    if config.get("Env"):
        out.append("ENV " + " ".join(shlex.quote(e) for e in config["Env"] if "=" in e))
    if config.get("Labels"):
        out.append("LABEL " + " ".join(shlex.quote(f"{k}={v}")
                                       for k, v in config["Labels"].items()))
    if config.get("ExposedPorts"):
        out.append("EXPOSE " + " ".join(config["ExposedPorts"]))
    if config.get("Volumes"):
        out.append("VOLUME " + json.dumps(list(config["Volumes"])))
    for key, instr in (("WorkingDir", "WORKDIR"), ("User", "USER"),
                       ("StopSignal", "STOPSIGNAL")):
        if config.get(key):
            out.append(f"{instr} {config[key]}")
    return [c for c in out if c.split(" ", 1)[1:] != [""]]


@route("POST", "/commit")
def commit(eng, req: wire.Request) -> wire.Response:
    container = req.arg("container")
    if not container:
        raise InvalidArgument("commit: container is required")
    repo, tag = req.arg("repo"), req.arg("tag")
    if tag and not repo:
        raise InvalidArgument("commit: a tag needs a repo")
    repository = f"{repo}:{tag}" if repo and tag else repo or None
    if repository:
        images_api.check_tag(repository)
    changes = _config_changes(req.json({}) or {}) + [c for c in req.query.get("changes", []) if c]
    done = api.commit(eng, container, repository, comment=req.arg("comment"),
                      author=req.arg("author"), changes=changes,
                      pause=req.flag("pause", default=True))
    return wire.ok(done, 201)


# -- POST /images/{name}/push ---------------------------------------------------------------

@route("POST", "/images/{name:.+}/push")
def push(eng, req: wire.Request, name: str) -> wire.Stream:
    """?tag=T pushes NAME:T; no tag pushes every tag of NAME, as Docker does (unless NAME
    itself carries one). An image that is not here is a 404 before any progress."""
    tag = req.arg("tag")
    target = f"{name}:{tag}" if tag else name
    all_tags = not distribution.has_tag(target)
    store = eng.images()
    if not all_tags:
        try:
            images_api.get(store, target)
        except NotFound:
            raise NotFound(f"An image does not exist locally with the tag: {target}") from None
    credentials = registry_auth(req)

    def work(send) -> None:
        distribution.push(store, target, all_tags=all_tags, auth_file=auth_path(eng.root),
                          progress=send, credentials=credentials)

    return wire.Stream(streams.json_messages(work))


# -- save and load --------------------------------------------------------------------------

def _save(eng, names: list[str]) -> wire.Stream:
    """Every name looked up first: a missing image is a 404, not a cut-off tar after a 200."""
    if not names:
        raise InvalidArgument("images/get: name at least one image (names=...)")
    store = eng.images()
    for n in names:
        images_api.get(store, n)
    return wire.Stream(streams.from_writer(lambda out: archives.save(store, names, out)),
                       content_type="application/x-tar")


# Before /images/{name}/get: both are GETs, and this one must not read as an image named "get"
# (it cannot today -- {name}/get needs a name before "/get" -- but keep the order anyway).
@route("GET", "/images/get")
def save_many(eng, req: wire.Request) -> wire.Stream:
    return _save(eng, [n for n in req.query.get("names", []) if n])


@route("GET", "/images/{name:.+}/get")
def save_one(eng, req: wire.Request, name: str) -> wire.Stream:
    return _save(eng, [name])


@route("POST", "/images/load")
def load(eng, req: wire.Request) -> wire.Stream:
    """The archive is read as it arrives and loaded before the answer, so a bad one is an
    error status; the messages go out chunked, as clients (docker-py) read a load's answer
    as a stream. quiet= changes nothing: there is no progress to leave out."""
    raw, body = _body(req)
    try:
        messages = archives.load(eng.images(), body)
    finally:
        raw.drain()
    return wire.Stream(iter([(json.dumps(m) + "\r\n").encode() for m in messages]))
