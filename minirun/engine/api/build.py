"""Making images: build (a Dockerfile), commit (a container), the build cache, in plain data.

    build(eng, context, ..., pull, progress)   -> {"Id"}           POST /build
    commit(eng, container, repository, ...)    -> {"Id"}           POST /commit
    prune_cache(eng)                           -> {"SpaceReclaimed"}  POST /build/prune

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

import os
from typing import Callable

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
    if context == "-" or "://" in context:
        raise BuildArgumentError(f"build {context}: only a local directory is a context here "
                                 "(no URL, git or stdin builds)")
    if network not in NETWORKS:
        raise BuildArgumentError(f"--network {network}: RUN can use default, none or host")
    opts = BuildOptions(context=context, dockerfile=dockerfile, tags=list(tags),
                        build_args=dict(build_args or {}), no_cache=no_cache, target=target,
                        pull=pull_always, network=network, quiet=quiet,
                        labels=dict(labels or {}))
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


__all__ = ["build", "commit", "prune_cache", "NETWORKS", "BuildArgumentError"]
