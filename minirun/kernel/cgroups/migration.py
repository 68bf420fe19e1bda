"""The cgroup migration lock, and how to keep it warm while a container is being set up.

Every write to a cgroup.procs file (moving a process between cgroups) takes the kernel's
cgroup_threadgroup_rwsem for writing. It is a per-CPU rwsem (kernel/cgroup/cgroup.c,
kernel/rcu/sync.c): readers (every fork and exit) take it cheaply, and a writer first switches
them to a slow path, which costs an RCU grace period: 3-15 ms on the development VM, longer
when both CPUs are busy. The switch back happens one grace period after the last writer
leaves, so a writer that follows closely finds the lock "warm" and does not wait. (A cgroup2
mount with `favordynmods` keeps readers on the slow path for good; that is the host's choice.)

A container's init joins its cgroup late, just before exec, so that the runtime's Python pages
are not charged to it. That join would pay the grace period on the critical path. So the
runtime, idle while the init builds its rootfs, moves itself into the cgroup it is already in
(a no-op move that still takes the lock) right after it forks, and again every few ms until the
init reports ready: the init's join then finds the lock warm. Each repeat costs ~0.1 ms.

On v1 hierarchies there is a way around the lock altogether: a thread that moves *itself*
(writing "0" to the v1 `tasks` file, which moves one thread) needs no threadgroup stability,
so the kernel skips the global rwsem (cgroup_procs_write_start: `threadgroup_locked = pid ||
threadgroup`). The init has a single thread (fork copies only the caller; and execve would end
any other), so moving that thread moves the whole process, at no grace period. cgroup2 has no
such door for domain cgroups (cgroup.threads refuses moves between domains), so there the
init writes cgroup.procs and the warmer is what helps.

Two things the warmer must not do: start before the cgroup mkdirs (a move holds cgroup_mutex through
its grace period, and mkdir needs that mutex), or hold the lock itself (readers, i.e. every
fork on the machine, would block).
"""

from __future__ import annotations

import os

from ... import trace

INTERVAL = 0.003  # s between moves: well inside one grace period
MAX_MOVES = 700   # ~2 s: setups slower than that (hooks, big rootfs) gain nothing more


def self_join_file(key: str) -> tuple[str, str]:
    """The file through which a single-threaded process joins a cgroup of hierarchy `key`
    ('' is cgroup2), and why that file."""
    if key:
        return "tasks", ("v1: move our one thread ourselves, which skips the global migration "
                         "lock (no RCU grace period)")
    return "cgroup.procs", "cgroup2: move the whole process (the migration lock is warm)"


def join_order(keys) -> list:
    """v1 hierarchies first (no lock), the cgroup2 one last (the warmer gets more time)."""
    return sorted(keys, key=lambda k: k == "")


def pays_grace_period(keys, by_pid: bool) -> bool:
    """Will some join take the global lock? Yes for a cgroup2 hierarchy, and whenever another
    process is moved by PID (the runtime moving its child in a new user namespace)."""
    return bool(keys) and (by_pid or "" in keys)


class Warmer:
    """Keeps the migration lock warm by moving this process into its own cgroup, repeatedly."""

    def __init__(self, fd: int) -> None:
        self.fd, self.pid, self.moves = fd, str(os.getpid()).encode(), 0

    @classmethod
    def start(cls, procs: str) -> "Warmer | None":
        """The first (slow) move into `procs`, the cgroup.procs of a cgroup we are in (any
        hierarchy: the lock is global). None if that cannot be done."""
        if trace.enabled:
            trace.step(f'write("{procs}", "{os.getpid()}")', "warm the cgroup migration lock "
                       f"(an RCU grace period) while the init builds its rootfs, and again every "
                       f"{INTERVAL * 1000:.0f} ms, so its late join is quick")
        try:
            fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            return None
        w = cls(fd)
        return w if w.move() else None

    def move(self) -> bool:
        """One no-op move; False (and the file closed) once warming is over or failed."""
        if self.fd >= 0 and self.moves < MAX_MOVES:
            try:
                os.write(self.fd, self.pid)
                self.moves += 1
                return True
            except OSError:
                pass
        self.stop()
        return False

    def stop(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
