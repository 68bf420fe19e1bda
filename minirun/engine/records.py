"""A container's record: what `create` was asked for, and what has happened to it since.

One JSON file per container, containers/<id>/container.json, replaced whole by rename (readers
never see half of it: base/atomicfile.py) and changed only under containers/<id>/lock (flock:
base/filelock.py), so the monitor and
the CLI can update it from different processes. Names are unique: `create` and `rename` hold
the store-wide containers/.lock while they check and claim one.

Docker's states: created -> running <-> paused, running -> restarting -> running, running ->
exited; `dead` when minirun cannot know what happened (the monitor was killed and the process
is gone). The monitor writes the transitions; `refresh()` notices a monitor that died.
"""

from __future__ import annotations

import os
import stat

# The light subsets of dataclasses and json: the monitor imports this module on its start path
# (tests/unit/test_startup_budget.py), so neither json, dataclasses nor typing is loaded here.
from .. import fastjson
from ..base.atomicfile import write_atomic
from ..base.filelock import FileLock
from ..base.names import new_id, valid_name
from ..base.times import ZERO_TIME, now
from ..record import asdict, dataclass, field
from ..errors import Conflict as ConflictKind, ContainerError, InvalidArgument, MinirunError, NotFound

class NoSuchContainer(ContainerError, NotFound):
    exit_code = 1  # docker: "Error response from daemon: No such container: x", exit 1

    def __init__(self, ref: str) -> None:
        super().__init__(f"No such container: {ref}")


class Conflict(ContainerError, ConflictKind):
    """A container's name is taken, or its state forbids the request (errors.Conflict, and a
    ContainerError for the code that catches that)."""

    exit_code = 125


class InvalidName(ContainerError, InvalidArgument):
    """A container name that breaks Docker's rule (400 in the API, as Docker's)."""

    exit_code = 125


class AmbiguousPrefix(ContainerError, InvalidArgument):
    exit_code = 125


# The statuses in which a container's processes exist (State.running; Containers.raw readers).
RUNNING = ("running", "paused", "restarting")


@dataclass
class State:
    status: str = "created"  # created running paused restarting exited dead removing
    pid: int = 0
    exit_code: int = 0
    oom_killed: bool = False
    error: str = ""
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    restart_count: int = 0
    monitor_pid: int = 0  # the monitor, identified by PID and start time (PIDs are reused)
    monitor_start: int = 0
    stop_requested: bool = False  # `stop`/`kill`: the restart policy must not bring it back
    # Docker's State.Health ({"Status", "FailingStreak", "Log"}), kept by the monitor of a
    # container with a HEALTHCHECK (engine/health.py); None (no Health key) without one.
    health: dict | None = None

    @property
    def running(self) -> bool:
        return self.status in RUNNING


@dataclass
class Container:
    id: str
    name: str
    image: str  # as the user typed it
    image_id: str
    created: str
    config: dict = field(default_factory=dict)  # Docker's Config: Cmd, Env, Tty, Labels ...
    host_config: dict = field(default_factory=dict)  # Docker's HostConfig: Memory, Binds ...
    mounts: list = field(default_factory=list)  # Docker's Mounts: Type, Source, Destination ...
    layers: list = field(default_factory=list)  # the image's layer directories, bottom first
    networks: dict = field(default_factory=dict)  # network name -> endpoint (IPAddress ...)
    path: str = ""  # args[0] and the rest, as `inspect` shows them
    args: list = field(default_factory=list)
    state: State = field(default_factory=State)

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def to_json(self) -> str:
        return fastjson.dumps(asdict(self), indent=1)

    @classmethod
    def from_dict(cls, d: dict) -> "Container":
        known = {f[0] for f in cls.__record_fields__}
        c = cls(**{k: v for k, v in d.items() if k in known and k != "state"})
        s = d.get("state") or {}
        sk = {f[0] for f in State.__record_fields__}
        c.state = State(**{k: v for k, v in s.items() if k in sk})
        return c


# A name like Docker's adjective_surname; the surnames are people whose work is in this code.
_ADJECTIVES = ("brave", "calm", "clever", "eager", "gentle", "happy", "jolly", "keen", "lucid",
               "nimble", "quiet", "sharp", "steady", "swift", "tidy", "vivid", "wise", "zealous")
_NAMES = ("torvalds", "ritchie", "thompson", "pike", "kerrisk", "viro", "tejun", "hallyn",
          "biederman", "menage", "corbet", "levin", "brauner", "poettering", "hopper", "lovelace",
          "knuth", "lamport", "liskov", "dijkstra")


class Containers:
    """The container records under <root>/containers."""

    def __init__(self, root: str) -> None:
        self.dir = os.path.join(root, "containers")
        # containers/ itself stays 0711: the root of every user-namespaced container must pass
        # through it, and --userns=auto gives each a gid of its own, so no single group could
        # be let in. It cannot be listed, and what it holds is guarded one level down
        # (_guard: containers/<id> is 0700 or 0710; CVE-2021-41091).
        os.makedirs(self.dir, mode=0o711, exist_ok=True)

    def path(self, cid: str, *names: str) -> str:
        return os.path.join(self.dir, cid, *names)

    # -- locks ---------------------------------------------------------------------------------
    def names_lock(self) -> FileLock:
        """The store-wide lock: name checks and claims, creation and removal of records."""
        return FileLock(os.path.join(self.dir, ".lock"))

    def lock(self, cid: str) -> FileLock:
        """One container's lock: every read-modify-write of its record."""
        return FileLock(self.path(cid, "lock"))

    # -- records -------------------------------------------------------------------------------
    def _dirs(self) -> list[str]:
        """The names of the container directories, in ID order (a record or not yet)."""
        try:
            return sorted(n for n in os.listdir(self.dir) if len(n) == 64)
        except FileNotFoundError:
            return []

    def ids(self) -> list[str]:
        return [n for n in self._dirs() if os.path.exists(self.path(n, "container.json"))]

    def raw(self, skip: tuple[bytes, ...] = ()) -> list[dict]:
        """Every record as its JSON says it, in ID order, without making Containers of them:
        for the scans of every container that a start makes (the NAT's published ports), which
        read a field or two of each. At 100 containers this takes 1.8 ms where all() takes 3.4
        (no Container, no State, no stat per record). `skip`: byte strings that mark a record
        the caller has no use for (`"PortBindings": {}`), left unparsed: a string value in a
        record is JSON-escaped, so only a real key can match, and a record in any other format
        is parsed as usual. An unreadable record is skipped, as all() skips it."""
        out = []
        for cid in self._dirs():
            try:
                with open(self.path(cid, "container.json"), "rb") as f:
                    data = f.read()
                if not any(s in data for s in skip):
                    out.append(fastjson.loads(data))
            except (OSError, ValueError):
                continue  # removed meanwhile, not a record, or unreadable
        return out

    def load(self, cid: str) -> Container:
        try:
            with open(self.path(cid, "container.json"), "rb") as f:
                c = Container.from_dict(fastjson.loads(f.read()))
        except FileNotFoundError:
            raise NoSuchContainer(cid) from None
        except (OSError, ValueError) as e:
            raise MinirunError(f"container {cid[:12]}: unreadable record: {e}") from None
        self._guard(c, legacy_only=True)
        return c

    def save(self, c: Container) -> None:
        # No fsync: a record is runtime state that a crash makes stale anyway; refresh()
        # re-derives it from what is running. 0o666 less the umask, as open() made it.
        write_atomic(self.path(c.id, "container.json"), c.to_json(), mode=0o666)
        self._guard(c)

    def _guard(self, c: Container, legacy_only: bool = False) -> None:
        """Give containers/<id> the mode and group that keep host users out (CVE-2021-41091).

        Docker's CVE-2021-41091: its container directories were searchable by every host user,
        and a container's rootfs path is in /proc/mounts for anyone to read, so an unprivileged
        host user could walk into the rootfs and run a setuid-root program the image (or the
        container's root) put there, as root on the host, or read the container's files.
        Docker's fix, ours too: 0700 root:root, or with a user namespace 0710
        root:<the container's root's host gid>, the one host group whose search the container
        needs (its init walks containers/<id>/rootfs as that uid/gid before pivot_root;
        userns.check_reachable checks it). The gid is known only once the maps are recorded,
        after new() made the directory 0700, hence here, on every save (one stat when right).

        legacy_only (load): fix only a directory an older minirun made 0711. A directory of
        ours never has bits for others, and load must not race create's first save of the
        maps (a record read before it would make the directory 0700 behind it)."""
        d = self.path(c.id)
        try:
            st = os.stat(d)
        except OSError:
            return
        if legacy_only and not st.st_mode & 0o007:
            return
        gid = _root_gid(c.host_config.get("IDMappings"))
        mode, want_gid = (0o700, st.st_gid) if gid is None else (0o710, gid)
        if stat.S_IMODE(st.st_mode) == mode and st.st_gid == want_gid:
            return
        try:
            os.chmod(d, 0o700)  # nobody else in while the group changes
            if st.st_gid != want_gid:
                os.chown(d, -1, want_gid)
            os.chmod(d, mode)
        except OSError:
            pass  # not ours to change (a read-only look at another user's --root)

    def all(self) -> list[Container]:
        out = []
        for cid in self._dirs():  # (not ids(): load() finds a directory without a record itself)
            try:
                out.append(self.load(cid))
            except MinirunError:
                continue  # removed meanwhile
        return out

    def find(self, ref: str) -> Container:
        """A container by full ID, name, or unique ID prefix (Docker's order of precedence)."""
        if not ref:
            raise NoSuchContainer(ref)
        if len(ref) == 64 and os.path.exists(self.path(ref, "container.json")):
            return self.load(ref)
        holder = self._holder(ref.lstrip("/"))
        if holder is not None:  # the names index, checked against the record it points to
            try:
                c = self.load(holder)
            except NoSuchContainer:
                c = None
            if c is not None and c.name == ref.lstrip("/"):
                return c
        everyone = self.all()
        for c in everyone:
            if c.name == ref.lstrip("/"):
                return c
        hits = [c for c in everyone if c.id.startswith(ref)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise AmbiguousPrefix(f"multiple containers match the ID prefix {ref!r}: use more of "
                                 "the ID, or the name")
        raise NoSuchContainer(ref)

    def new(self, c: Container) -> Container:
        """Claim an ID and a name, and write the first record (atomically, under the lock)."""
        with self.names_lock():
            self._index_checked()
            if c.name:
                if not valid_name(c.name):
                    raise InvalidName(f"Invalid container name ({c.name}), only "
                                   "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
                holder = self._holder(c.name)
                if holder is not None:
                    raise Conflict(f'Conflict. The container name "/{c.name}" is already in use '
                                   f'by container "{holder}". You have to remove (or '
                                   "rename) that container to be able to reuse that name.")
            else:
                c.name = _free_name(lambda name: self._holder(name) is not None)
            while True:
                c.id = new_id()
                try:
                    # 0700: no other host user may reach the rootfs and files under it
                    # (CVE-2021-41091); save() lets a user-namespaced one's root in (_guard)
                    os.mkdir(self.path(c.id), 0o700)
                    break
                except FileExistsError:
                    continue
            try:
                os.symlink(c.id, self._index_entry(c.name))
                self.save(c)
            except BaseException:  # nothing half-made: no name claimed, no empty directory
                self._unindex(c.name, c.id)
                try:
                    os.rmdir(self.path(c.id))
                except OSError:
                    pass
                raise
        return c

    def rename(self, cid: str, new_name: str) -> None:
        with self.names_lock():
            if not valid_name(new_name):
                raise InvalidName(f"Invalid container name ({new_name}), only "
                               "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
            self._index_checked()
            holder = self._holder(new_name)
            if holder is not None:
                raise Conflict(f'Conflict. The container name "/{new_name}" is already in '
                               f'use by container "{holder}". You have to remove (or rename) '
                               "that container to be able to reuse that name.")
            with self.lock(cid):
                c = self.load(cid)
                old, c.name = c.name, new_name
                os.symlink(cid, self._index_entry(new_name))
                try:
                    self.save(c)
                except BaseException:  # the record keeps its old name: so does the index
                    self._unindex(new_name, cid)
                    raise
                self._unindex(old, cid)

    def update(self, cid: str, change) -> Container:
        """Apply change(container) to the record under its lock and save it."""
        with self.lock(cid):
            c = self.load(cid)
            change(c)
            self.save(c)
            return c

    def remove_dir(self, cid: str) -> None:
        """Forget a container: its directory goes (the caller has unmounted and cleaned up)."""
        from ..base.tree import remove_tree  # not shutil: ~7 ms of `run --rm` in the monitor

        with self.names_lock():
            d = self.path(cid)
            junk = f"{d}.removing"
            try:
                with open(os.path.join(d, "container.json"), "rb") as f:
                    name = fastjson.loads(f.read()).get("name")
            except (OSError, ValueError):
                name = None  # (the index's count check finds the entry left, if any)
            try:
                os.rename(d, junk)  # one step: nobody sees a half-removed record
            except FileNotFoundError:
                return
            if name:
                self._unindex(name, cid)
        remove_tree(junk, ignore_errors=True)

    # -- the names index -----------------------------------------------------------------------
    # containers/.names/<name> is a symlink to the ID of the container that has the name, so
    # that claiming a name (every create) and finding a container by name (every command given
    # one) is one readlink, not a read of every record: at 100 containers, 3.5 ms of each
    # `run`. The records stay the truth: the index is made from them when it is missing or
    # does not add up (.names/.count: how many container directories have no name entry, as
    # one a crash left between mkdir and its first record), and find() checks the record an
    # entry points to. Changed only under names_lock, by new, rename and remove_dir.

    def _index_entry(self, name: str) -> str:
        return os.path.join(self.dir, ".names", name)

    def _holder(self, name: str) -> str | None:
        """The ID the index gives for this name, or None."""
        if not valid_name(name):
            return None
        try:
            return os.readlink(self._index_entry(name))
        except OSError:
            return None

    def _unindex(self, name: str, cid: str) -> None:
        if self._holder(name) == cid:
            try:
                os.unlink(self._index_entry(name))
            except FileNotFoundError:
                pass

    def _index_checked(self) -> None:
        """Make the index again if it is missing or its entries and the container directories
        do not add up (an older minirun made or removed a container, or a crash came between
        two steps). Under names_lock."""
        index = os.path.join(self.dir, ".names")
        try:
            entries = len(os.listdir(index)) - 1  # less .count
            with open(os.path.join(index, ".count"), "rb") as f:
                nameless = int(f.read())
        except (OSError, ValueError):
            entries, nameless = -1, 0
        dirs = len(self._dirs())
        if entries >= 0 and dirs == entries + nameless:
            return
        from ..base.tree import remove_tree  # lazy: only when the index is made again

        remove_tree(index, ignore_errors=True)
        os.makedirs(index, mode=0o700, exist_ok=True)
        named = 0
        for d in self.raw():
            if d.get("name") and d.get("id"):
                try:
                    os.symlink(d["id"], self._index_entry(d["name"]))
                    named += 1
                except (FileExistsError, ValueError):
                    pass  # two records with one name: the first in ID order keeps it
        write_atomic(os.path.join(index, ".count"), str(dirs - named), mode=0o600)


def _root_gid(maps: dict | None) -> int | None:
    """The host gid of a user-namespaced container's root (None without a user namespace):
    kernel/idmap.shift(0, GidMap), inline (the monitor's start-up budget: no idmap import)."""
    for inside, outside, count in (maps or {}).get("GidMap") or ():
        if inside <= 0 < inside + count:
            return outside - inside
    return None


def _free_name(taken) -> str:
    """A free adjective_surname name; taken(name) says whether one is in use."""
    import random  # lazily: the monitor imports this module (its start-up budget)

    rng = random.Random()
    for attempt in range(1000):
        name = f"{rng.choice(_ADJECTIVES)}_{rng.choice(_NAMES)}"
        if attempt > 100:
            name += str(rng.randint(1, 99))
        if not taken(name):
            return name
    return "ctr_" + os.urandom(4).hex()
