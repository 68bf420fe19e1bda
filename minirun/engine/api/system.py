"""System: what minirun is, what it sees and what it keeps (Docker's /info, /version,
/system/df and the prunes of POST /.../prune), in plain data.

    info(eng)                      -> Docker's SystemInfo, plus a "Minirun" object   GET /info
    version()                      -> Docker's SystemVersion (version.py: `minirun version`
                                      stays lean)                                    GET /version
    df(eng)                        -> {"LayersSize", "Images", "Containers", "Volumes",
                                       "BuildCache"}                                  GET /system/df
    prune(eng, all, volumes_too)   -> what each family's prune removed (containers, networks,
                                      volumes, the build cache, images)

"Minirun" in info holds what Docker's object has no field for and `minirun info` shows: the
cgroup layout and why it matters, the hierarchies, the runtime root, the firewall, the
networks, the subordinate ids of user namespaces.
"""

from __future__ import annotations

import os
import platform

from ... import __version__
from ...errors import MinirunError
from ...kernel import cgroups
from ...network import nat
from .. import userns
from ..lifecycle import Engine
from . import containers, images, networks, volumes
from .images import unix_time
from .version import version  # noqa: F401 - GET /version is a system verb too


def info(eng: Engine) -> dict:
    """Docker's SystemInfo (GET /info): counts of containers by state, images, the kernel,
    the drivers; minirun's own details under "Minirun"."""
    layout = cgroups.layout()
    cs = eng.all()
    count = lambda *st: sum(1 for c in cs if c.state.status in st)  # noqa: E731
    uname = os.uname()
    sub = userns.ranges(userns.SUBUID, userns.DEFAULT_USER)
    return {
        "ID": "", "Containers": len(cs), "ContainersRunning": count("running", "restarting"),
        "ContainersPaused": count("paused"),
        "ContainersStopped": count("exited", "created", "dead"),
        "Images": len(eng.images().images()), "Volumes": len(eng.volumes.all()),
        "Driver": "overlay", "DriverStatus": [], "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs", "CgroupVersion": "2" if layout == "v2" else "1",
        "KernelVersion": uname.release, "OperatingSystem": platform.system(), "OSType": "linux",
        "Architecture": uname.machine, "NCPU": os.cpu_count() or 1,
        "MemTotal": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "DockerRootDir": eng.root, "Name": uname.nodename, "ServerVersion": __version__,
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"],
                    "Log": ["json-file"]},
        "SecurityOptions": ["name=seccomp,profile=builtin", "name=userns"],
        "DefaultRuntime": "minirun-oci",
        "Minirun": {
            "CgroupLayout": layout, "CgroupLayoutWhy": cgroups.LAYOUT_WHY.get(layout, ""),
            "CgroupHierarchies": [{"Mountpoint": h.mountpoint, "Version": h.version,
                                   "Controllers": list(h.controllers)}
                                  for h in cgroups.hierarchies()],
            "RuntimeRoot": eng.runroot, "Firewall": nat.backend(),
            "Networks": [n.Name for n in eng.net.networks.all()],
            "RunningAsRoot": os.geteuid() == 0,
            "UsernsUser": userns.DEFAULT_USER,
            "UsernsRanges": [[a, n] for a, n in sub],
        },
    }


def tree_size(path: str) -> int:
    """Bytes of the files under path (not following links; what vanishes meanwhile counts 0)."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for n in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, n)).st_size
            except OSError:
                pass
    return total


def container_sizes(eng: Engine, ref: str) -> dict:
    """Docker's SizeRw (the bytes of the container's writable layer: its overlay upper dir)
    and SizeRootFs (those plus its image's layers), for `ps -s` and `inspect -s`."""
    c = eng.get(ref)
    rw = tree_size(os.path.join(eng.cdir(c.id), "upper"))
    try:
        image = images.get(eng.images(), c.image_id).size
    except MinirunError:  # its image went (rmi -f untags only, but a store may be damaged)
        image = 0
    return {"SizeRw": rw, "SizeRootFs": rw + image}


def df(eng: Engine) -> dict:
    """Docker's disk usage object (GET /system/df): each image with its Size and how many
    containers use it, each container with SizeRw (its writable layer), each volume with
    UsageData {Size, RefCount}."""
    store = eng.images()
    images = store.images()
    cs = eng.all()
    using = {}
    for c in cs:
        using[c.image_id] = using.get(c.image_id, 0) + 1
    volume_list = eng.volumes.all()
    # SharedSize: the bytes of an image's layers that another image holds too (docker df -v)
    holders: dict[str, int] = {}
    for r in images:
        for d in set(r.diff_ids):
            holders[d] = holders.get(d, 0) + 1

    def shared(r) -> int:
        total = 0
        for d in set(r.diff_ids):
            if holders.get(d, 0) > 1:
                try:
                    total += store.layer_size(d)
                except (OSError, KeyError, ValueError, MinirunError):
                    pass
        return total

    rows = {r["Id"]: r for r in containers.list_(eng, all=True)}
    return {
        "LayersSize": sum(r.size for r in images),
        "Images": [{"Id": r.id, "RepoTags": list(r.repo_tags),
                    "RepoDigests": list(r.repo_digests), "Created": unix_time(r.created),
                    "Size": r.size,
                    "SharedSize": shared(r), "Containers": using.get(r.id, 0)} for r in images],
        "Containers": [{**rows.get(c.id, {}),
                        "Id": c.id, "Names": ["/" + c.name], "Image": c.image,
                        "ImageID": c.image_id, "State": c.state.status,
                        "Created": int(containers.parse_time(c.created)),
                        **container_sizes(eng, c.id)} for c in cs],
        "Volumes": [{**v.inspect(), "UsageData": {"Size": tree_size(v.Mountpoint),
                                                  "RefCount": len(eng.users_of_volume(v.Name))}}
                    for v in volume_list],
        "BuildCache": [],
    }


def prune(eng: Engine, all: bool = False, volumes_too: bool = False,  # noqa: A002
          images_too: bool = True) -> dict:
    """What `system prune` removes: stopped containers, unused networks, unused anonymous
    volumes with `volumes_too`, the build cache, then (with `images_too`) dangling images, or
    with `all` every image no container uses -- after the build cache, so that what only it
    kept alive goes too. {"Containers", "Networks", "Volumes", "Images"}: each family's prune
    result (None for what was not pruned)."""
    out = {"Containers": containers.prune(eng), "Networks": networks.prune(eng),
           "Volumes": volumes.prune(eng) if volumes_too else None, "Images": None}
    prune_build_cache(eng)
    if images_too:
        out["Images"] = images.prune(eng.images(), all=all)
    return out


def prune_build_cache(eng: Engine) -> None:
    """Forget every cached build step (the build cache's index in the image store)."""
    try:
        os.unlink(os.path.join(eng.images().root, "build-cache.json"))
    except FileNotFoundError:
        pass


__all__ = ["info", "version", "df", "prune", "prune_build_cache", "tree_size", "container_sizes"]
