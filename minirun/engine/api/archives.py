"""Images as tar archives: save, load, import (Docker's /images/get, /images/load, and
/images/create?fromSrc), offline; image/archive.py does the work.

    save(store, names, out, format)     -> a tar written to `out`       GET /images/get
    load(store, src, repository)        -> [{"stream": "Loaded image: x\\n"}]  POST /images/load
    import_(store, src, repository, changes, message) -> {"Id"}  POST /images/create?fromSrc

(`export`, a container's filesystem as a tar, is the containers' family.) Errors: ImageError
(a damaged or unreadable archive), NotFound (an image to save that is not here),
InvalidArgument (a bad reference or --change).
"""

from __future__ import annotations

import os
from typing import BinaryIO, Iterable

from ...image import archive
from ...image.store import Store
from .images import familiar


def save(store: Store, names: list[str], out: str | os.PathLike | BinaryIO,
         format: str = "docker-archive") -> None:  # noqa: A002 - Docker's name
    """Docker's GET /images/get: the images `names` name, as one tar written to `out` (a path
    or a binary stream): docker-archive (docker save's) or oci (an OCI image layout)."""
    archive.save(store, names, out, format=format)


def load(store: Store, src: str | os.PathLike | BinaryIO,
         repository: str | None = None) -> list[dict]:
    """Docker's POST /images/load: the images of a docker-archive or OCI layout (a tar, plain or
    compressed, a directory, or a binary stream). Returns its messages: {"stream": "Loaded
    image: busybox:latest\n"} per tag, {"stream": "Loaded image ID: sha256:...\n"} for an
    image without one. `repository` names OCI images known only by a tag."""
    out = []
    for record in archive.load(store, src, default_repo=repository):
        out += [{"stream": f"Loaded image: {familiar(t)}\n"} for t in record.repo_tags]
        if not record.repo_tags:
            out.append({"stream": f"Loaded image ID: {record.id}\n"})
    return out


def import_(store: Store, src: str | os.PathLike | BinaryIO, repository: str | None = None,
            changes: Iterable[str] = (), message: str = "") -> dict:
    """Docker's POST /images/create?fromSrc: a flat rootfs tar ("-": stdin) becomes a one-layer
    image, tagged `repository` if given, its config changed by `changes` (CMD, ENV, ...):
    {"Id"}."""
    record = archive.import_tar(store, src, repository, changes=changes, message=message)
    return {"Id": record.id}


__all__ = ["save", "load", "import_"]
