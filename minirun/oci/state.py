"""Container state on disk: <root>/<id>/state.json, plus the exec fifo while `created`.

State is a file, not a process: there is no daemon. Whether a container is still alive is
derived each time from its init's PID *and* start time (/proc/PID/stat field 22), so `state` is
right even when nobody waits for the process, and a reused PID is never mistaken for it.

  created   init is alive and still blocked on exec.fifo (start has not opened it yet)
  running   init is alive and the fifo is gone
  paused    running, with its cgroup frozen
  stopped   init is gone (or a zombie)

Writes are atomic (base/atomicfile.py); a flock on the container's directory (base/filelock.py)
serialises the verbs that change a container (start, kill, delete) between concurrent callers.
"""

from __future__ import annotations

import os

from .. import fastjson
from ..base.names import valid_runtime_id
from ..errors import ContainerError
from ..kernel import process
from ..record import asdict, dataclass, field

DEFAULT_ROOT = "/run/minirun"
OCI_VERSION = "1.2.0"
FIFO = "exec.fifo"


@dataclass
class State:
    id: str
    pid: int
    pid_start: int
    bundle: str
    rootfs: str
    created: str
    annotations: dict[str, str] = field(default_factory=dict)
    owner: str = ""
    cgroup_paths: dict[str, str] = field(default_factory=dict)  # hierarchy key -> our dir
    cgroup_version: int = 0  # 1 (v1 or hybrid) or 2; 0: no cgroup
    cgroup_made: list[str] = field(default_factory=list)  # directories create made (delete removes)
    # No mount namespace: the mount ID of the rootfs bind create made in the host's mount
    # table, which delete detaches with everything below it (kernel/host_mountns.py); 0: none.
    host_root_mount: int = 0
    hooks: dict[str, object] = field(default_factory=dict)  # raw config hooks, frozen at create
    config: dict[str, object] = field(default_factory=dict)  # the config.json create saw
    root_dir: str = DEFAULT_ROOT

    @property
    def dir(self) -> str:
        return os.path.join(self.root_dir, self.id)

    def status(self) -> str:
        if process.start_time(self.pid) != self.pid_start:
            return "stopped"
        if os.path.exists(os.path.join(self.dir, FIFO)):
            return "created"
        if self._frozen():
            return "paused"
        return "running"

    def _frozen(self) -> bool:
        for mnt, path in self.cgroup_paths.items():
            for name, frozen in (("cgroup.freeze", "1"), ("freezer.state", "FROZEN")):
                try:
                    with open(os.path.join(path, name)) as f:
                        if f.read().strip() == frozen:
                            return True
                except OSError:
                    pass
        return False

    def oci(self) -> dict[str, object]:
        """The runtime-spec state object (what `state` prints and hooks read on stdin)."""
        status = self.status()
        out: dict[str, object] = {
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "pid": self.pid if status != "stopped" else 0,
            "status": status,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
        }
        if self.annotations:
            out["annotations"] = self.annotations
        return out

    def save(self) -> None:
        data = asdict(self)
        data.pop("root_dir")
        # lazy: `state`, `list` and the failed look-ups only read (start-up budget: each
        # module on every verb's path costs ~60 us here)
        from ..base.atomicfile import write_atomic

        write_atomic(os.path.join(self.dir, "state.json"), fastjson.dumps(data))


def check_id(cid: str) -> None:
    if not valid_runtime_id(cid):
        raise ContainerError(f"invalid container ID {cid!r}: use letters, digits and _ + - .")


def load(root_dir: str, cid: str) -> State:
    check_id(cid)
    path = os.path.join(root_dir, cid, "state.json")
    try:
        with open(path, "rb") as f:
            data = fastjson.loads(f.read())
    except FileNotFoundError:
        if os.path.isdir(os.path.join(root_dir, cid)):
            raise ContainerError(f"container {cid} is still being created (or its create failed);"
                                 f" try again, or `delete --force {cid}`") from None
        raise ContainerError(f"container {cid} does not exist") from None
    except (OSError, ValueError) as e:
        raise ContainerError(f"container {cid}: unreadable state {path}: {e}") from None
    known = {f[0] for f in State.__record_fields__}
    try:
        # Unknown keys (a newer minirun wrote this file) are ignored, missing ones are an error.
        return State(root_dir=root_dir, **{k: v for k, v in data.items() if k in known})
    except TypeError as e:
        raise ContainerError(f"container {cid}: incomplete state {path} ({e}); "
                             f"`delete --force {cid}` removes it") from None


def list_ids(root_dir: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(root_dir) if valid_runtime_id(n)
                      and os.path.isdir(os.path.join(root_dir, n)))
    except FileNotFoundError:
        return []
