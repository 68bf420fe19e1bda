"""Names only, read cheaply: what shell completion offers at each <Tab> (cli/completion.py).

    container_names(root, want) -> ["web", ...]   want: any, running, stopped, paused
    image_names(root)           -> ["busybox:latest", "127.0.0.1:5000/app:v2", ...]
    network_names(root)         -> ["backend", "bridge", "host", "none"]
    volume_names(root)          -> ["data", ...]

A <Tab> starts a process that must answer at once: these read the records under --root
directly (a directory listing and small JSON files with the light reader the monitor uses),
without the engine, the image store, locks, or refresh() (a monitorless container keeps the
state its record says). A record being replaced or removed meanwhile is skipped.
"""

from __future__ import annotations

import os

from ... import fastjson

_HUB_PREFIXES = ("docker.io/library/", "docker.io/")

def _read_json(path: str):
    with open(path, "rb") as f:
        return fastjson.loads(f.read())


def container_names(root: str, want: str = "any") -> list[str]:
    """Container names under root: want "any", "running", "stopped" or "paused"."""
    d = os.path.join(root, "containers")
    try:
        ids = os.listdir(d)
    except OSError:
        return []
    names = []
    for cid in ids:
        if len(cid) != 64:
            continue
        try:
            rec = _read_json(os.path.join(d, cid, "container.json"))
        except (OSError, ValueError):
            continue
        status = (rec.get("state") or {}).get("status", "")
        running = status in ("running", "paused", "restarting")
        if (want == "running" and status != "running") or (want == "stopped" and running) \
                or (want == "paused" and status != "paused"):
            continue
        names.append(rec.get("name", ""))
    return sorted(n for n in names if n)


def image_names(root: str) -> list[str]:
    """Image names as Docker shows them (busybox:latest, 127.0.0.1:5000/x:1), digests left out."""
    try:
        refs = _read_json(os.path.join(root, "image", "repositories.json"))
    except (OSError, ValueError):
        return []
    out = set()
    for name in refs:
        if "@" in name:
            continue
        for prefix in _HUB_PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix):]
                break
        out.add(name)
    return sorted(out)


def network_names(root: str) -> list[str]:
    try:
        files = os.listdir(os.path.join(root, "networks"))
    except OSError:
        files = []
    made = {f[:-5] for f in files
            if f.endswith(".json") and not f.endswith(".ipam.json") and not f.startswith(".")}
    return sorted(made | {"bridge", "host", "none"})


def volume_names(root: str) -> list[str]:
    d = os.path.join(root, "volumes")
    try:
        return sorted(n for n in os.listdir(d)
                      if not n.startswith(".") and os.path.exists(os.path.join(d, n, "volume.json")))
    except OSError:
        return []
