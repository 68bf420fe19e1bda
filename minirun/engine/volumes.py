"""Volumes: directories minirun manages, mounted into containers, that outlive them.

    <root>/volumes/<name>/_data         the content (bind-mounted at the container's path)
    <root>/volumes/<name>/volume.json   Name, Driver, Mountpoint, CreatedAt, Labels, Anonymous

A named volume is made on first use (`-v data:/srv`) or by `volume create`; an anonymous one
(`-v /srv`, or an image's VOLUME) gets a 64-hex name and goes with its container on `rm -v`
or `--rm`. Like Docker, a volume that is empty when a container first mounts it is seeded with
what the image has at that path (owners, modes and links kept), so `-v data:/etc/app` starts
with the image's config files. `rm` of a container never removes a named volume.
"""

from __future__ import annotations

import os
import stat

from ..record import asdict, dataclass, field

from ..base.atomicfile import write_atomic
from ..base.filelock import FileLock
from ..base.names import valid_name
from ..base.times import now
from ..errors import Conflict, InvalidArgument, MinirunError, NotFound


class VolumeError(MinirunError):
    exit_code = 1


class NoSuchVolume(VolumeError, NotFound):
    """No volume of that name (errors.NotFound; a VolumeError for the code that catches that)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"get {name}: no such volume")
        self.name = name


class VolumeInUse(VolumeError, Conflict):
    """A container uses the volume (errors.Conflict)."""


class InvalidVolume(VolumeError, InvalidArgument):
    """A volume name or driver minirun cannot take (errors.InvalidArgument)."""


@dataclass
class Volume:
    Name: str
    Mountpoint: str
    CreatedAt: str
    Driver: str = "local"
    Labels: dict = field(default_factory=dict)
    Options: dict = field(default_factory=dict)
    Scope: str = "local"
    Anonymous: bool = False

    def inspect(self) -> dict:
        d = asdict(self)
        d.pop("Anonymous")
        return d


class Volumes:
    def __init__(self, root: str) -> None:
        self.dir = os.path.join(root, "volumes")
        # Modes and CVE-2021-41091 (host users walking into containers' files, see
        # engine/records.py _guard): volumes/ is 0711, as Docker's is 0701 (root:root, so the
        # same): no host user can list the names; volumes/<name> and its _data stay 0755, as
        # Docker's do. Unlike a container's directory, a volume cannot be shut to one group:
        # it is shared, by containers without a user namespace and by user-namespaced ones
        # whose roots are different host uids and gids (--userns=auto gives each its own), and
        # each of their inits must reach _data to mount it (userns.check_reachable). What
        # remains (and Docker's layout has too): a host user who learns a volume's name (from
        # a container's /proc/<pid>/mountinfo) can read its files and run what is in it.
        os.makedirs(self.dir, mode=0o711, exist_ok=True)

    def _lock(self):
        return FileLock(os.path.join(self.dir, ".lock"))

    def _path(self, name: str, *rest: str) -> str:
        return os.path.join(self.dir, name, *rest)

    def get(self, name: str) -> Volume:
        import json  # (~1 ms: `ps`, `network ls` and an empty `volume ls` read no volume)

        try:
            with open(self._path(name, "volume.json")) as f:
                return Volume(**json.load(f))
        except (FileNotFoundError, NotADirectoryError):
            raise NoSuchVolume(name) from None
        except (OSError, ValueError, TypeError) as e:
            raise VolumeError(f"volume {name}: unreadable record: {e}") from None

    def exists(self, name: str) -> bool:
        return os.path.exists(self._path(name, "volume.json"))

    def all(self) -> list[Volume]:
        out = []
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return out
        for n in names:
            if not n.startswith(".") and os.path.exists(self._path(n, "volume.json")):
                try:
                    out.append(self.get(n))
                except VolumeError:
                    pass
        return out

    def create(self, name: str | None = None, labels: dict | None = None) -> tuple[Volume, bool]:
        """The volume `name` (made now if missing; anonymous when name is None). Returns
        (volume, made_now)."""
        anonymous = name is None
        if anonymous:
            name = os.urandom(32).hex()
        elif not valid_name(name):
            raise InvalidVolume(f'create {name}: "{name}" includes invalid characters for a local '
                              'volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you '
                              "intended to pass a host directory, use absolute path")
        with self._lock():
            if self.exists(name):
                return self.get(name), False
            os.makedirs(self._path(name, "_data"), mode=0o755, exist_ok=True)
            v = Volume(Name=name, Mountpoint=self._path(name, "_data"), CreatedAt=now()[:19] + "Z",
                       Labels=dict(labels or {}), Anonymous=anonymous)
            import json  # (~1 ms: see get)

            write_atomic(self._path(name, "volume.json"), json.dumps(asdict(v), indent=1),
                         mode=0o666)
            return v, True

    def remove(self, name: str) -> None:
        with self._lock():
            if not self.exists(name):
                raise NoSuchVolume(name)
            junk = self._path(f".{name}.removing")
            os.rename(self._path(name), junk)
        import shutil  # lazily: ps, inspect, volume ls never remove (~1.6 ms with bz2, lzma)

        shutil.rmtree(junk, ignore_errors=True)

    @staticmethod
    def is_empty(v: Volume) -> bool:
        try:
            return not os.listdir(v.Mountpoint)
        except FileNotFoundError:
            return True

    @staticmethod
    def seed(v: Volume, src: int, idmaps: dict | None = None) -> None:
        """Copy the image's content at a mount point (`src`, an fd on that directory inside the
        rootfs) into an empty volume, as Docker does: owners, modes, times, links, devices and
        xattrs kept; the volume's top takes the directory's owner and mode.

        Both sides go by fds (build_context.copy_tree): the rootfs is walked with resolve.walk
        and every entry made relative to its new directory's fd with O_NOFOLLOW. A path string
        walked again (`cp -a SRC/. VOLUME/`, as minirun did) would follow a symlink swapped into
        the image's tree, or into a volume another container shares, out to the host (runc
        CVE-2024-45310, Docker CVE-2018-15664).

        idmaps: the container runs in a user namespace and its rootfs shows owners shifted to
        host ids; the volume keeps the image's own ids, shifted back (it is idmapped in turn)."""
        from ..kernel import resolve
        from .build_context import copy_tree

        lfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=src)
        try:
            if not os.listdir(lfd):
                return
        finally:
            os.close(lfd)
        if idmaps:
            from ..kernel.idmap import unshift  # (~0.5 ms with kernel/libc.py)

            def owner(st: os.stat_result) -> tuple[int, int]:
                return unshift(st.st_uid, idmaps["UidMap"]), unshift(st.st_gid, idmaps["GidMap"])
        else:
            def owner(st: os.stat_result) -> tuple[int, int]:
                return st.st_uid, st.st_gid
        top = os.open(v.Mountpoint, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            try:
                copy_tree(src, top, owner=owner, keep_all=True)
            except (OSError, MinirunError) as e:
                raise VolumeError(f"volume {v.Name}: copying the image's files into it failed: "
                                  f"{e}") from None
            st = os.fstat(src)
            os.chown(resolve.fd_path(top), *owner(st))
            os.chmod(resolve.fd_path(top), stat.S_IMODE(st.st_mode))  # (after chown: setgid)
            os.utime(resolve.fd_path(top), ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(top)


