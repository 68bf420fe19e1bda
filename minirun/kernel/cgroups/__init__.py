"""cgroups: where a container's processes are grouped, counted and limited.

Three host layouts exist, and minirun has a driver for each kind of hierarchy:

  v2      one cgroup2 hierarchy at /sys/fs/cgroup (every modern distro)     -> v2.V2
  hybrid  v1 controllers at /sys/fs/cgroup/<controller> plus a cgroup2 mount at
          /sys/fs/cgroup/unified without useful controllers (systemd's "hybrid" mode;
          this development VM)                                              -> v1.V1
  v1      v1 controllers only                                               -> v1.V1

Both drivers offer one interface (`Cgroup`): create, apply linux.resources, join, freeze/thaw,
list and kill processes, stats, OOM kills, remove.

    __init__.py    the layout, the hierarchies, `Cgroup`, and which driver a path gets
    v2.py          the cgroup v2 driver: one directory in the unified hierarchy
    v1.py          the cgroup v1 driver: one directory per controller hierarchy
    resources.py   linux.resources -> cgroup files: the one table both drivers follow
    devices.py     device access rules: v1's devices.allow/deny, v2's eBPF program
    migration.py   the migration lock, and keeping it warm while a container is set up

A relative cgroupsPath is placed under the caller's own cgroup (as runc does); an absolute one
under the hierarchy's root; an empty one becomes /minirun/<container id>.
"""

from __future__ import annotations

import os
import time

from ... import trace
from ...record import dataclass

# kernel/libc.py is imported in the functions that write or mount, not here: `kill`, `delete`,
# `pause` and `resume` read and rmdir cgroups and do not pay for the seam's import (~0.3 ms of
# a ~10 ms call; start-up budget: tests/unit/test_startup_budget.py). Where it runs after
# pivot_root (the init's late join), libc is already loaded: the import is a dict look-up.

ROOT = "/sys/fs/cgroup"
PARENT = "minirun"  # the default parent of every container's cgroup

LAYOUT_WHY = {
    "v2": "pure cgroup v2: one unified hierarchy; limits are files like memory.max, cpu.max",
    "hybrid": "v1 controllers plus a cgroup2 mount without useful controllers: limits go to the "
              "v1 files (memory.limit_in_bytes, cpu.cfs_quota_us ...); the container also joins "
              "the cgroup2 tree, as runc does",
    "v1": "legacy cgroup v1 only: one hierarchy per controller, limits in the v1 files",
    "none": "no cgroup filesystem is mounted: containers cannot be limited",
}


@dataclass
class Hierarchy:
    mountpoint: str
    version: int  # 1 or 2
    controllers: list  # v1: the controllers (or name=...) this hierarchy carries
    root: str  # the cgroup path the mount shows at its top (not "/" inside a cgroup namespace)

    @property
    def key(self) -> str:
        """How /proc/PID/cgroup names this hierarchy: 'memory', 'cpu,cpuacct', 'name=systemd', ''."""
        return ",".join(self.controllers) if self.version == 1 else ""


_V1_CONTROLLERS = {"memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "devices", "freezer",
                   "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc"}


_seen: tuple[int, list[Hierarchy]] | None = None  # (mount namespace inode, its hierarchies)


def hierarchies() -> list[Hierarchy]:
    """Every cgroup hierarchy mounted in our mount namespace (first mount of each wins).

    Read from mountinfo once per mount namespace: creating a container asks a dozen times.
    """
    global _seen
    ns = os.stat("/proc/self/ns/mnt").st_ino
    if _seen is None or _seen[0] != ns:
        _seen = (ns, _read_hierarchies())
    return list(_seen[1])


def _read_hierarchies() -> list[Hierarchy]:
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
            ctrls = [] if fstype == "cgroup2" else \
                [o for o in superopts.split(",") if o in _V1_CONTROLLERS or o.startswith("name=")]
            h = Hierarchy(mnt, 2 if fstype == "cgroup2" else 1, ctrls, root)
            if h.key in seen:
                continue
            seen.add(h.key)
            out.append(h)
    return out


def _unescape(path: str) -> str:
    return path.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def layout() -> str:
    """'v2', 'hybrid', 'v1' or 'none' (see the module docstring)."""
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


def _dir_in(h: Hierarchy, path: str) -> str:
    """The directory of cgroup `path` (as /proc/PID/cgroup spells it) under mount `h`."""
    if h.root != "/" and path.startswith(h.root):
        path = path[len(h.root):] or "/"
    return os.path.normpath(h.mountpoint + "/" + path.lstrip("/"))


MARK = "trusted.minirun"  # an xattr on every cgroup directory minirun makes


def mark(path: str) -> None:
    """Remember on the cgroup itself that minirun made it, so the last container to leave a
    shared parent removes it, while a parent someone else made stays."""
    try:
        os.setxattr(path, MARK, b"1")
    except OSError:
        pass  # no xattrs on this cgroupfs: such parents stay behind, as runc leaves them


def marked(path: str) -> bool:
    try:
        os.getxattr(path, MARK)
        return True
    except OSError:
        return False


def default_path(cid: str) -> str:
    return f"/{PARENT}/{cid}"


def systemd_path(path: str) -> str:
    """"slice:prefix:name" (how systemd drivers spell a cgroup) mapped onto cgroupfs."""
    sl, prefix, name = path.split(":")
    return f"/{sl or 'system.slice'}/{prefix}-{name}.scope"


def open_cgroup(cgroups_path: str, pid: int | str = "self") -> "Cgroup":
    """The container's cgroup for this host's layout (not created yet)."""
    # lazy: v1.py and v2.py import Cgroup from this module (an import cycle)
    from .v1 import V1
    from .v2 import V2

    own = membership(pid)
    hs = hierarchies()
    if layout() == "v2":
        h = [x for x in hs if x.version == 2][0]
        base = cgroups_path if cgroups_path.startswith("/") else \
            os.path.join(own.get("", "/"), cgroups_path)
        return V2({"": _dir_in(h, base)})
    dirs = {}
    for h in hs:
        base = cgroups_path if cgroups_path.startswith("/") else \
            os.path.join(own.get(h.key, "/"), cgroups_path)
        dirs[h.key] = _dir_in(h, base)
    return V1(dirs)


def from_state(version: int, dirs: dict[str, str]) -> "Cgroup":
    if version == 2:
        from .v2 import V2  # lazy: v2.py imports Cgroup from this module (an import cycle)

        return V2(dirs)
    from .v1 import V1  # lazy: v1.py imports Cgroup from this module (an import cycle)

    return V1(dirs)


def of_process(pid: int | str) -> "Cgroup":
    """The cgroups a running process is in (exec joins the init's)."""
    # lazy: v1.py and v2.py import Cgroup from this module (an import cycle)
    from .v1 import V1
    from .v2 import V2

    mine = membership(pid)
    dirs = {h.key: _dir_in(h, mine[h.key]) for h in hierarchies() if h.key in mine}
    return V2(dirs) if layout() == "v2" else V1(dirs)


class Cgroup:
    """One container's cgroup: a directory in each hierarchy (`dirs`: key -> path)."""

    version = 0

    def __init__(self, dirs: dict[str, str]) -> None:
        self.dirs = dict(dirs)
        self.made: list[str] = []

    # -- life cycle --------------------------------------------------------------------------
    def create(self) -> list[str]:
        """mkdir the cgroup (and missing parents) in each hierarchy; returns what we made."""
        for key, d in self.dirs.items():
            mnt = self._mount_of(d)
            for attempt in range(3):
                missing = []
                p = d
                while not os.path.isdir(p) and p != mnt and p != "/":
                    missing.append(p)
                    p = os.path.dirname(p)
                try:
                    for p in reversed(missing):
                        if trace.enabled:
                            trace.step(f'mkdir("{p}")', "a new cgroup: the kernel fills "
                                            "it with the controllers' files")
                        try:
                            os.mkdir(p)
                        except FileExistsError:
                            continue  # a parent another container's create made just now
                        mark(p)
                        self.made.append(p)
                        self._prepare_new(key, p)
                    break
                except FileNotFoundError:
                    # A parent the last container in it removed just now: walk again.
                    if attempt == 2:
                        raise
        return self.made

    def _mount_of(self, d: str) -> str:
        best = ""
        for h in hierarchies():
            if (d + "/").startswith(h.mountpoint.rstrip("/") + "/") and len(h.mountpoint) > len(best):
                best = h.mountpoint
        return best

    def _prepare_new(self, key: str, path: str) -> None:
        """Hook for the drivers (v1 cpuset needs its parent's cpus and mems)."""

    def join(self, pid: int | str) -> None:
        """Move `pid` ("0": the caller) into the cgroup in every hierarchy."""
        from .. import libc

        for d in self.dirs.values():
            libc.write_file(os.path.join(d, "cgroup.procs"), str(pid),
                            "put the process in the container's cgroup (its children follow)")

    def procs(self) -> list[int]:
        pids: set[int] = set()
        for d in self.dirs.values():
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    pids.update(int(x) for x in f.read().split())
            except OSError:
                pass
        return sorted(pids)

    def populated(self) -> bool:
        """Does the cgroup hold any process, in any of its hierarchies? (On v1 a process can
        be moved by hand in one hierarchy only, so each is read.) One raw read(2) of a byte
        per hierarchy: `delete` asks this of ten v1 hierarchies on a hybrid host, and a text
        file object costs ~4 more system calls and ~30 us each. oci/quick.py _populated has a
        copy (it may use only built-in modules): change both."""
        for d in self.dirs.values():
            try:
                fd = os.open(os.path.join(d, "cgroup.procs"), os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                if os.read(fd, 1):
                    return True
            except OSError:
                pass
            finally:
                os.close(fd)
        return False

    def remove(self, made: list[str] | None = None) -> None:
        """rmdir the cgroups we made, deepest first (a cgroup empties a moment after its
        last process exits, so the leaf is retried briefly)."""
        dirs = made if made is not None else self.made
        for d in sorted(dirs, key=len, reverse=True):
            leaf = not any(o.startswith(d + "/") for o in dirs)
            for attempt in range(200 if leaf else 1):
                try:
                    os.rmdir(d)
                    if trace.enabled:
                        trace.step(f'rmdir("{d}")', "remove the container's cgroup")
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if not leaf:
                        break  # a parent another container still uses: leave it
                    if attempt == 199:
                        raise
                    time.sleep(0.01)
        # A parent that another container's create made (and marked), such as /minirun, goes
        # with the last container in it: else it would stay behind when that one left first.
        gone = set(dirs)
        for d in dirs:
            p = os.path.dirname(d)
            while p not in gone and p != "/" and (p in dirs or marked(p)):
                gone.add(p)
                try:
                    os.rmdir(p)
                    if trace.enabled:
                        trace.step(f'rmdir("{p}")', "the last container out removes the "
                                        "parent minirun made")
                except FileNotFoundError:
                    pass  # removed above
                except OSError:
                    break  # another container still uses it
                p = os.path.dirname(p)

    # -- the driver's part -------------------------------------------------------------------
    def apply(self, resources: dict) -> None:
        raise NotImplementedError

    def freeze(self) -> None:
        raise NotImplementedError

    def thaw(self) -> None:
        raise NotImplementedError

    def frozen(self) -> bool:
        raise NotImplementedError

    def kill_all(self) -> None:
        raise NotImplementedError

    def oom_kills(self) -> int:
        raise NotImplementedError

    def stats(self) -> dict:
        raise NotImplementedError

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def read(path: str) -> str | None:
        try:
            with open(path) as f:
                return f.read()
        except OSError:
            return None

    @staticmethod
    def read_int(path: str) -> int | None:
        text = Cgroup.read(path)
        if text is None:
            return None
        text = text.strip()
        if text == "max":
            return -1
        try:
            return int(text.split()[0])
        except (ValueError, IndexError):
            return None

    @staticmethod
    def flat_keyed(path: str) -> dict[str, int]:
        """'key value' lines (memory.stat, cpu.stat, memory.events ...) as a dict."""
        out = {}
        for line in (Cgroup.read(path) or "").splitlines():
            k, _, v = line.partition(" ")
            try:
                out[k] = int(v)
            except ValueError:
                pass
        return out

    def write(self, path: str, value: str, field: str, why: str) -> None:
        # lazy: only create and update write resources (start-up budget of kill, delete, pause)
        from .. import libc
        from .resources import ResourceError

        try:
            libc.write_file(path, value, why)
        except OSError as e:
            raise ResourceError(field, f"writing {value!r} to {path}: {e.strerror}") from None
        except libc.KernelError as e:
            raise ResourceError(field, f"writing {value!r} to {path}: {e}") from None


def mount_into(dest: int, flags: int, dirs: dict[str, str], reopen) -> None:
    """Give the container a /sys/fs/cgroup showing its own cgroup (the OCI "cgroup" mount).

    We bind the container's own cgroup directory (runc's way without a cgroup namespace) rather
    than mounting a fresh cgroupfs: a fresh mount shows the tree from the root of the *mounting*
    process's cgroup namespace, and ours is only made at the very end, when the init joins its
    cgroup (as late as possible, see oci/init.py). The bind shows exactly the container's subtree
    either way. On v1 there is one such bind per hierarchy, under a small tmpfs.

    `dest`: an O_PATH fd on the destination, looked up inside the rootfs (kernel/resolve.py);
    every mount goes onto an fd (/proc/self/fd/N), every directory and link under it is made
    relative to the tmpfs's fd: no path string is walked again (CVE-2021-30465's rule).
    `reopen(fd)`: the mount just stacked on `fd`, as a new fd (a remount needs the new mount's
    root; the old fd names the directory under it).
    """
    from .. import libc
    from ..libc import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT

    def fdp(fd: int) -> str:
        return f"/proc/self/fd/{fd}"

    def shown(src: str | None, fd: int) -> tuple[str | None, str] | None:
        if libc.trace.enabled or isinstance(libc.kernel(), libc.Recorder):
            return src, os.readlink(fdp(fd))
        return None

    def bind(src: str, fd: int, top_of) -> None:
        libc.mount(src, fdp(fd), None, MS_BIND | MS_REC, None,
                   "bind only the container's own cgroup directory", shown=shown(src, fd))
        top = top_of(fd)
        try:
            libc.mount(None, fdp(top), None, MS_BIND | MS_REMOUNT | (flags & ~(MS_BIND | MS_REC)),
                       None, "apply the mount's flags (ro, nosuid ...) to the bind mount",
                       shown=shown(None, top))
        finally:
            os.close(top)

    if layout() == "v2":
        if "" in dirs:
            bind(dirs[""], dest, reopen)
        return
    libc.mount("tmpfs", fdp(dest), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755",
               "v1 cgroups: one directory per hierarchy under a small tmpfs",
               shown=shown("tmpfs", dest))
    tmp = reopen(dest)  # the tmpfs's root: made by us just now, written by nobody else
    try:
        for key, src in dirs.items():
            name = "unified" if key == "" else key.replace("name=", "")
            os.mkdir(name, 0o755, dir_fd=tmp)

            def sub(_fd: int, name: str = name) -> int:  # the bind on `name`, looked up again
                return os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                               dir_fd=tmp)
            target = sub(tmp)
            try:
                bind(src, target, sub)
            finally:
                os.close(target)
            if "," in name:
                for c in name.split(","):
                    os.symlink(name, c, dir_fd=tmp)
        if flags & MS_RDONLY:
            libc.mount(None, fdp(tmp), None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV |
                       MS_NOEXEC, "mode=755", "and the tmpfs holding them read-only",
                       shown=shown(None, tmp))
    finally:
        os.close(tmp)
