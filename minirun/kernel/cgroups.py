"""cgroups: where a container's processes are grouped, counted and (later) limited.

This module knows the host's layout and how to place a process in a cgroup; resource limits
arrive with the cgroups drivers (v2 and v1). Three layouts exist:

  v2      one cgroup2 hierarchy at /sys/fs/cgroup (every modern distro)
  hybrid  v1 controllers at /sys/fs/cgroup/<controller> plus a cgroup2 mount at
          /sys/fs/cgroup/unified (systemd's "hybrid" mode; this development VM)
  v1      v1 controllers only

On v1 a process belongs to one cgroup *per hierarchy*, so "the container's cgroup" is a
directory in each mounted hierarchy. A relative cgroupsPath is placed under the caller's own
cgroup in each hierarchy (as runc does); an absolute one under the hierarchy's root.
"""

from __future__ import annotations

import os
from ..record import dataclass

from . import libc

ROOT = "/sys/fs/cgroup"


@dataclass
class Hierarchy:
    mountpoint: str
    version: int  # 1 or 2
    controllers: list[str]  # v1: the controllers (or name=...) this hierarchy carries
    root: str  # the cgroup path the mount shows at its top (not "/" inside a cgroup namespace)

    @property
    def key(self) -> str:
        """How /proc/PID/cgroup names this hierarchy: 'memory', 'cpu,cpuacct', 'name=systemd', ''."""
        return ",".join(self.controllers) if self.version == 1 else ""


def hierarchies() -> list[Hierarchy]:
    """Every cgroup hierarchy mounted in our mount namespace (first mount of each wins)."""
    out: list[Hierarchy] = []
    seen: set[str] = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fstype, _src, superopts = post.split()[:3]
            if fstype not in ("cgroup", "cgroup2"):
                continue
            fields = pre.split()
            root, mnt = fields[3], _unescape(fields[4])
            if fstype == "cgroup2":
                ctrls: list[str] = []
            else:
                known = {"memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "devices",
                         "freezer", "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc"}
                ctrls = [o for o in superopts.split(",") if o in known or o.startswith("name=")]
            h = Hierarchy(mnt, 2 if fstype == "cgroup2" else 1, ctrls, root)
            if h.key in seen:
                continue
            seen.add(h.key)
            out.append(h)
    return out


def _unescape(path: str) -> str:
    return path.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def layout() -> str:
    """'v2', 'hybrid' or 'v1' (see the module docstring)."""
    if os.path.exists(os.path.join(ROOT, "cgroup.controllers")):
        return "v2"
    hs = hierarchies()
    if any(h.version == 1 for h in hs):
        return "hybrid" if any(h.version == 2 for h in hs) else "v1"
    return "v2" if hs else "none"


def membership(pid: int | str = "self") -> dict[str, str]:
    """/proc/PID/cgroup as {hierarchy key: path}."""
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, key, path = line.rstrip("\n").split(":", 2)
            out[key] = path
    return out


def resolve(cgroups_path: str, pid: int | str = "self") -> dict[str, str]:
    """The container's cgroup directory in every hierarchy: {mountpoint: directory}."""
    own = membership(pid)
    dirs = {}
    for h in hierarchies():
        if cgroups_path.startswith("/"):
            rel = cgroups_path
        else:
            rel = os.path.join(own.get(h.key, "/"), cgroups_path)
        # The mount may show a subtree (its root field); paths in /proc/PID/cgroup are absolute.
        if h.root != "/" and rel.startswith(h.root):
            rel = rel[len(h.root):] or "/"
        dirs[h.mountpoint] = os.path.normpath(h.mountpoint + "/" + rel.lstrip("/"))
    return dirs


def create(dirs: dict[str, str]) -> list[str]:
    """mkdir the container's cgroup in each hierarchy; returns the directories we made."""
    made = []
    for mnt, d in dirs.items():
        missing = []
        p = d
        while not os.path.isdir(p) and p != mnt:
            missing.append(p)
            p = os.path.dirname(p)
        for p in reversed(missing):
            os.mkdir(p)
            made.append(p)
            if mnt.endswith("/cpuset") or os.path.basename(mnt).startswith("cpuset"):
                _cpuset_inherit(p)
    return made


def _cpuset_inherit(path: str) -> None:
    # A new v1 cpuset starts with empty cpus and mems, and no task may join it until both are
    # set: copy the parent's (runc does the same).
    parent = os.path.dirname(path)
    for f in ("cpuset.cpus", "cpuset.mems"):
        try:
            with open(os.path.join(path, f)) as cur:
                if cur.read().strip():
                    continue
            with open(os.path.join(parent, f)) as src:
                libc.write_file(os.path.join(path, f), src.read().strip() or "\n",
                                "a new v1 cpuset is empty: copy the parent's so tasks may join")
        except OSError:
            pass


def join(dirs: dict[str, str], pid: int) -> None:
    """Move `pid` into the container's cgroup in every hierarchy."""
    for d in dirs.values():
        libc.write_file(os.path.join(d, "cgroup.procs"), str(pid),
                        "put the container's process in its cgroup (children inherit it)")


def procs(dirs: dict[str, str]) -> list[int]:
    pids: set[int] = set()
    for d in dirs.values():
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                pids.update(int(x) for x in f.read().split())
        except OSError:
            pass
    return sorted(pids)


def remove(dirs: list[str]) -> None:
    """rmdir the cgroups we made, deepest first; a cgroup empties a moment after its last exit."""
    import time

    for d in sorted(dirs, key=len, reverse=True):
        leaf = not any(o.startswith(d + "/") for o in dirs)
        for attempt in range(100 if leaf else 1):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                if not leaf:
                    break  # a parent another container still uses: leave it
                if attempt == 99:
                    raise
                time.sleep(0.01)


def mount_into(dest: str, flags: int, own_namespace: bool) -> None:
    """Give the container a /sys/fs/cgroup showing its own cgroup (the OCI "cgroup" mount).

    With a cgroup namespace the kernel shows the namespace root, so a fresh mount is right.
    Without one, a fresh mount would show the whole host tree: bind the container's own cgroup
    directory instead (runc's way). On v1 there is one such mount per hierarchy, under a tmpfs.
    """
    from .libc import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT

    mine = membership()

    def one(h: Hierarchy, target: str) -> None:
        if own_namespace:
            fstype = "cgroup2" if h.version == 2 else "cgroup"
            data = None if h.version == 2 else ",".join(h.controllers)
            try:
                libc.mount(fstype, target, fstype, flags, data,
                           "in a cgroup namespace a fresh mount shows only our subtree")
                return
            except Exception as e:
                if getattr(e, "errno", 0) != 1:
                    raise
        rel = mine.get(h.key, "/")
        if h.root != "/" and rel.startswith(h.root):
            rel = rel[len(h.root):]
        src = os.path.normpath(h.mountpoint + "/" + rel.lstrip("/"))
        libc.mount(src, target, None, MS_BIND | MS_REC, None,
                   "no cgroup namespace: bind only the container's own cgroup directory")
        libc.mount(None, target, None, MS_BIND | MS_REMOUNT | (flags & ~(MS_BIND | MS_REC)), None,
                   "apply the mount's flags (ro, nosuid ...) to the bind mount")

    hs = hierarchies()
    if layout() == "v2":
        v2 = [h for h in hs if h.version == 2]
        if v2:
            one(v2[0], dest)
        return
    libc.mount("tmpfs", dest, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755",
               "v1 cgroups: one directory per hierarchy under a small tmpfs")
    for h in hs:
        name = "unified" if h.version == 2 else h.key.replace("name=", "")
        target = os.path.join(dest, name)
        os.makedirs(target, exist_ok=True)
        one(h, target)
        if h.version == 1 and "," in name:
            for c in h.controllers:
                os.symlink(name, os.path.join(dest, c))
    if flags & MS_RDONLY:
        libc.mount(None, dest, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                   "mode=755", "and the tmpfs holding them read-only")
