"""Making images: build (a Dockerfile), commit (a container), the build cache, in plain data.

    build(eng, context, ..., pull, progress)   -> {"Id"}           POST /build
    commit(eng, container, repository, ...)    -> {"Id"}           POST /commit
    prune_cache(eng)                           -> {"SpaceReclaimed"}  POST /build/prune
    unpack_context(eng, src)                   -> BuildContext     POST /build's tar body
    build_streamed(eng, context, ..., progress, cancelled) -> {"Id"}  POST /build (a service):
                                                  RUN's output in `progress` too, fds untouched

build streams as Docker's classic builder does: `progress` gets {"stream": "Step 1/3 : FROM
busybox\n"}, {"stream": " ---> 1a2b3c4d5e6f\n"}, ..., then {"aux": {"ID": "sha256:..."}}.
(What RUN's commands print goes to the caller's stdout and stderr, not through `progress`.)
`pull(ref, policy) -> ImageRecord` is how a FROM image that is not here yet is fetched: the
front end's, with its own progress display.

Errors: BuildError (builder.py: a bad context, Dockerfile or step; InvalidArgument for the
options refused before anything runs), DockerfileError, NotFound (no such container),
InvalidArgument (a repository that is no REPOSITORY[:TAG]).
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import threading
from typing import BinaryIO, Callable

from ...errors import InvalidArgument
from ..builder import Builder, BuildError, BuildOptions
from ..lifecycle import Engine

NETWORKS = ("default", "bridge", "none", "host")


class BuildArgumentError(BuildError, InvalidArgument):
    """A build the builder refuses before it starts: a URL or stdin context, a RUN network it
    has not."""


def build(eng: Engine, context: str, *, dockerfile: str | None = None, tags: list[str] = (),
          build_args: dict[str, str] | None = None, no_cache: bool = False,
          target: str | None = None, pull_always: bool = False, network: str = "default",
          labels: dict[str, str] | None = None, quiet: bool = False,
          pull: Callable | None = None, progress: Callable[[dict], None] | None = None) -> dict:
    """Build an image from the Dockerfile in the directory `context` (Docker's names: -f is
    `dockerfile`, --pull `pull_always`, --network `network`: default, none or host); returns
    {"Id": the image ID}. Streams to `progress` unless `quiet`."""
    opts = _options(context, dockerfile, tags, build_args, no_cache, target, pull_always,
                    network, labels, quiet, network_flag="--network")
    send = progress or (lambda message: None)
    record = Builder(eng, opts, pull, out=lambda text: send({"stream": text + "\n"})).build()
    send({"aux": {"ID": record.id}})
    return {"Id": record.id}


def commit(eng: Engine, container: str, repository: str | None = None, *, comment: str = "",
           author: str = "", changes: list[str] = (), pause: bool = True) -> dict:
    """A new image from a container's changes (Docker's POST /commit): {"Id"}. `changes` are
    Dockerfile instructions applied to its config (CMD, ENV, ...); `pause` freezes a running
    container while its layer is read."""
    from ..commit import commit as commit_container  # lazy: `build` alone needs no commit

    record = commit_container(eng, eng.get(container), repository, comment, author,
                              list(changes), pause)
    return {"Id": record.id}


def prune_cache(eng: Engine) -> dict:
    """Forget the build cache; its layers go when no image uses them: {"SpaceReclaimed"}."""
    store = eng.images()
    try:
        os.unlink(os.path.join(store.root, "build-cache.json"))
    except FileNotFoundError:
        pass
    return {"SpaceReclaimed": store.prune_unused().reclaimed}


# -- a build context sent as a tar (the API service's POST /build) --------------------------------

class ContextError(BuildError, InvalidArgument):
    """A build context archive that cannot be used: not a tar, an entry that would land outside
    the context or write through a link, a Dockerfile that is not in it."""


class BuildContext:
    """A build context unpacked from a tar into the image store's tmp/. The directory is
    flock()ed while it lives, so the store's clean_tmp (run by every Store that opens, in any
    thread or process) leaves it alone, and sweeps it if the service dies before remove()."""

    def __init__(self, path: str, fd: int) -> None:
        self.path, self._fd = path, fd
        self._lock = threading.Lock()

    def dockerfile(self, name: str = "") -> str:
        """The Dockerfile `name` (a path inside the context; "" is Dockerfile) as a host path.
        ContextError if it leaves the context (also through a symlink) or is no file there."""
        name = name or "Dockerfile"
        rel = posixpath.normpath(name)
        if rel.startswith("/") or rel == ".." or rel.startswith("../"):
            raise ContextError(f"the Dockerfile ({name}) must be within the build context")
        path = os.path.join(self.path, rel)
        real, top = os.path.realpath(path), os.path.realpath(self.path)
        if not real.startswith(top + os.sep):
            raise ContextError(f"the Dockerfile ({name}) must be within the build context")
        if not os.path.isfile(real):
            raise ContextError(f"Cannot locate specified Dockerfile: {name}")
        return real

    def remove(self) -> None:
        """Delete the directory (again: nothing). Safe from any thread."""
        with self._lock:
            if self._fd < 0:
                return
            shutil.rmtree(self.path, ignore_errors=True)
            os.close(self._fd)  # the flock goes with it
            self._fd = -1

    def __enter__(self) -> "BuildContext":
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def unpack_context(eng: Engine, src: BinaryIO) -> BuildContext:
    """Unpack a build context -- a tar, plain or gzip/bzip2/xz compressed, read once from `src`
    (never held in memory) -- into a new private directory; the caller remove()s it. Only
    directories, regular files, symlinks and hard links inside the context are made (device
    nodes, fifos and sockets are skipped, as a directory context's are); every entry is created
    relative to its parent's descriptor, opened without following links, so neither `..` nor a
    symlink earlier in the archive can point a write outside. Owners are not kept (COPY makes
    files root's). ContextError (400) for an archive that is no tar or breaks these rules."""
    import tarfile  # lazily: only the service builds from an archive

    store = eng.images()
    # The store's own tmp entries are made this way (created, then flocked and checked).
    path, fd = store._tmp_entry("build-context-", directory=True)
    ctx = BuildContext(path, fd)
    try:
        with tarfile.open(fileobj=src, mode="r|*") as tar:
            _unpack_tar(tar, fd)
    except (tarfile.TarError, EOFError, ValueError) as e:
        ctx.remove()
        why = " ".join(str(e).split()) or type(e).__name__  # one line, whatever tarfile says
        raise ContextError(f"the build context is not a usable tar archive: {why}") from None
    except OSError as e:
        ctx.remove()
        raise BuildError(f"unpacking the build context: {e.strerror or e}") from None
    except BaseException:
        ctx.remove()
        raise
    return ctx


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _entry_parts(name: str) -> list[str]:
    """A tar entry's path as components under the context ([] for the context itself)."""
    rel = posixpath.normpath(name.lstrip("/"))
    if rel == ".." or rel.startswith("../"):
        raise ContextError(f"tar entry {name!r} points outside the build context")
    return [] if rel == "." else rel.split("/")


def _open_dir(root_fd: int, parts: list[str], name: str, create: bool) -> int:
    """A descriptor of directory `parts` under root_fd, each step opened with O_NOFOLLOW (and
    made first when `create`): a symlink or a file on the way is refused, not followed."""
    fd = os.dup(root_fd)
    try:
        for part in parts:
            if create:
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                if e.errno not in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                    raise
                raise ContextError(f"tar entry {name!r}: {part} is not a directory of the "
                                   f"context ({e.strerror})") from None
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


def _clear(parent: int, leaf: str, name: str) -> None:
    """Make room for entry `leaf`: a later entry replaces an earlier file or link, as tar
    does; a directory is not replaced by something else."""
    try:
        os.unlink(leaf, dir_fd=parent)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        raise ContextError(f"tar entry {name!r} would replace a directory") from None


def _unpack_tar(tar, root_fd: int) -> None:
    for m in tar:
        parts = _entry_parts(m.name)
        if m.isdir():
            fd = _open_dir(root_fd, parts, m.name, create=True)
            try:
                os.fchmod(fd, m.mode & 0o7777)
            finally:
                os.close(fd)
            continue
        if not parts or not (m.isreg() or m.issym() or m.islnk()):
            continue  # devices, fifos: not in a context (a directory context skips them too)
        parent = _open_dir(root_fd, parts[:-1], m.name, create=True)
        leaf = parts[-1]
        try:
            _clear(parent, leaf, m.name)
            if m.issym():
                os.symlink(m.linkname, leaf, dir_fd=parent)  # only data: COPY resolves it inside
            elif m.islnk():
                src = _entry_parts(m.linkname)
                if not src:
                    raise ContextError(f"tar entry {m.name!r}: a hard link to the context itself")
                sfd = _open_dir(root_fd, src[:-1], m.name, create=False)
                try:
                    os.link(src[-1], leaf, src_dir_fd=sfd, dst_dir_fd=parent,
                            follow_symlinks=False)
                except FileNotFoundError:
                    raise ContextError(f"tar entry {m.name!r}: hard link to {m.linkname!r}, "
                                       "which is not in the archive before it") from None
                finally:
                    os.close(sfd)
            else:
                fd = os.open(leaf, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                             os.O_CLOEXEC, 0o600, dir_fd=parent)
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(tar.extractfile(m), out, 1 << 20)
                    os.fchmod(out.fileno(), m.mode & 0o7777)
                    os.utime(out.fileno(), (m.mtime, m.mtime))
        finally:
            os.close(parent)


# -- a build whose every output goes through `progress` (the API service) --------------------------

def _options(context: str, dockerfile: str | None, tags, build_args: dict | None,
             no_cache: bool, target: str | None, pull_always: bool, network: str,
             labels: dict | None, quiet: bool, network_flag: str) -> BuildOptions:
    """The build's options, checked (a local directory as the context, a network RUN can
    use); `network_flag` is how the caller's user named it (--network, networkmode)."""
    if context == "-" or "://" in context:
        raise BuildArgumentError(f"build {context}: only a local directory is a context here "
                                 "(no URL, git or stdin builds)")
    if network not in NETWORKS:
        raise BuildArgumentError(f"{network_flag} {network}: RUN can use default, none or host")
    return BuildOptions(context=context, dockerfile=dockerfile, tags=list(tags),
                        build_args=dict(build_args or {}), no_cache=no_cache, target=target,
                        pull=pull_always, network=network, quiet=quiet, labels=dict(labels or {}))


class BuildCancelled(BuildError):
    """The client that asked for the build went away (Docker cancels the build then too)."""


def build_streamed(eng: Engine, context: str, *, dockerfile: str | None = None,
                   tags: list[str] = (), build_args: dict[str, str] | None = None,
                   no_cache: bool = False, target: str | None = None, pull_always: bool = False,
                   network: str = "default", labels: dict[str, str] | None = None,
                   quiet: bool = False, pull: Callable | None = None,
                   progress: Callable[[dict], None] | None = None,
                   cancelled: Callable[[], bool] = lambda: False) -> dict:
    """build(), for a service: what RUN's commands print comes as {"stream": ...} messages in
    `progress` too (as Docker's daemon streams it) instead of going to this process's stdout
    and stderr, and -q never redirects the process's descriptors (other requests' threads
    share them). `cancelled()` true (the client went away) ends the build at the next step or
    within half a second of a RUN, its container removed: BuildCancelled."""
    opts = _options(context, dockerfile, tags, build_args, no_cache, target, pull_always,
                    network, labels, quiet, network_flag="networkmode")
    sink = progress or (lambda message: None)

    def send(message: dict) -> None:
        if cancelled():
            raise BuildCancelled("build cancelled: the client went away")
        sink(message)

    record = _StreamingBuilder(eng, opts, pull, send, cancelled).build()
    send({"aux": {"ID": record.id}})
    return {"Id": record.id}


class _StreamingBuilder(Builder):
    """The Builder with RUN's output relayed into messages (Builder.relay writes to fds 1 and
    2, and -q dup2()s them: right for the CLI, wrong in a threaded service)."""

    def __init__(self, eng: Engine, opts: BuildOptions, pull, send: Callable[[dict], None],
                 cancelled: Callable[[], bool]) -> None:
        super().__init__(eng, opts, pull, out=lambda text: send({"stream": text + "\n"}))
        self.send, self.cancelled = send, cancelled

    def relay(self, sock) -> int | None:
        """Start the attached container; its output as {"stream"} messages until it exits
        (its code) or the monitor goes (None). stderr in red, as Docker's builder sends it."""
        import codecs
        import select

        from .. import attach as frames

        decoders = {frames.STDOUT: codecs.getincrementaldecoder("utf-8")("replace"),
                    frames.STDERR: codecs.getincrementaldecoder("utf-8")("replace")}
        reader = frames.Reader()
        try:
            sock.sendall(frames.frame(frames.START))
            while True:
                if self.cancelled():
                    raise BuildCancelled("build cancelled: the client went away")
                ready, _, _ = select.select([sock], [], [], 0.5)
                if not ready:
                    continue
                data = sock.recv(65536)
                if not data:
                    return None
                for kind, payload in reader.feed(data):
                    if kind == frames.EXIT:
                        return int(payload or b"0")
                    if kind in decoders and not self.opts.quiet:
                        text = decoders[kind].decode(payload)
                        if text:
                            self.send({"stream": text if kind == frames.STDOUT
                                       else f"\x1b[91m{text}\x1b[0m"})
        finally:
            sock.close()


__all__ = ["build", "commit", "prune_cache", "NETWORKS", "BuildArgumentError", "BuildContext",
           "ContextError", "unpack_context", "BuildCancelled", "build_streamed"]
