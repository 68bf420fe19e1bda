"""The container lifecycle verbs: create, start, state, kill, delete, list, ps.

Each verb is a short-lived process (no daemon): it reads the state file, checks the status
the runtime-spec allows for the verb, does its one thing and exits.
"""

from __future__ import annotations

import os
import time

from .. import fastjson, trace
from ..base.names import valid_runtime_id
from ..base.tree import remove_tree
from ..errors import CommandError, ContainerError, MinirunError
from ..kernel import process as kproc
from ..record import dataclass
from . import log
from . import state as st

# Imported in the functions that need them, for the start-up budget of the other verbs (every
# verb but spec and features loads this module; measured: five small modules more cost state,
# start, kill and delete ~0.4 ms each):
#   spec.py (and hooks.py, init.py, which import it) brings kernel/capabilities.py and prctl;
#   kernel/cgroups (~0.7 ms) only for the verbs that touch a cgroup (not state, start, list);
#   channel.py, seccomp_listener.py, namespaces.py, host_mountns.py only for create (delete).
#   kernel/libc.py (the seam for raw calls, ~0.4 ms with errno and fcntl) only for create and
#   for kill's signal; state, start and delete make no call that needs it.
TYPE_CHECKING = False  # no `import typing` (start-up budget); these are imported lazily
if TYPE_CHECKING:
    from . import spec as spec_mod
    from .channel import Channel


@dataclass
class CreateOptions:
    root_dir: str
    cid: str
    bundle: str
    pid_file: str | None = None
    console_socket: str | None = None
    no_pivot: bool = False
    no_new_keyring: bool = False
    preserve_fds: int = 0
    systemd_cgroup: bool = False
    console_sock_obj: object = None  # foreground run with a terminal: our end of a socketpair
    spec: object = None  # config.json already loaded by the caller (run), else read here



def create(o: CreateOptions) -> st.State:
    """Build the container up to the point of running process.args, then return."""
    # lazy: only create builds a container (spec and init bring prctl; cgroups ~0.7 ms)
    from ..base.atomicfile import write_atomic
    from ..base.times import now
    from ..kernel import cgroups
    from ..kernel import libc
    from ..kernel.cgroups import migration
    from . import spec as spec_mod
    from .channel import ERROR, HOOKS, NOEXEC, OK, PID, READY, SECCOMP, SETUP, Channel
    from .init import InitContext, child_main

    st.check_id(o.cid)
    bundle = os.path.abspath(o.bundle)
    spec = o.spec if o.spec is not None else spec_mod.load(bundle)
    if spec.process is None:
        raise MinirunError("config.json: process: is required to create a container")
    for note in spec.ignored:
        log.debug(f"create {o.cid}: config.json: {note}")
    if spec.process.terminal and not (o.console_socket or o.console_sock_obj):
        raise MinirunError("process.terminal is true: pass --console-socket (or set "
                           "\"terminal\": false in config.json)")
    flt = None
    if spec.linux.seccomp is not None:
        from ..kernel import seccomp  # lazy: only linux.seccomp needs its compiler (~0.7 ms)

        flt = seccomp.compile_filter(spec.linux.seccomp)  # a bad profile fails before we start
    # What only some specs need is imported only for them, and here, before the fork below (an
    # import after fork() pays a copy-on-write fault for each page it writes): ~0.07 ms each.
    if spec.hooks:
        from . import hooks  # lazy: see above
    if spec.linux.ns("mount") is None:
        from ..kernel import host_mountns  # lazy: see above
    if flt is not None and flt.notify:
        from .seccomp_listener import forward as forward_seccomp_listener  # lazy: see above

    os.makedirs(o.root_dir, mode=0o711, exist_ok=True)
    sdir = os.path.join(o.root_dir, o.cid)
    try:
        os.mkdir(sdir, 0o711)
    except FileExistsError:
        raise ContainerError(f"container {o.cid} already exists (delete it first, or pick "
                             "another ID)") from None

    cg_dirs: dict[str, str] = {}
    cg_made: list[str] = []
    host_root_mount = 0
    child = init_pid = 0
    chan = warm = None
    idmapped: dict[int, int] = {}
    try:
        # 0622: the init may have dropped to any uid before it opens the fifo for writing.
        os.mkfifo(os.path.join(sdir, st.FIFO), 0o622)
        os.chmod(os.path.join(sdir, st.FIFO), 0o622)
        cg = _make_cgroup(o, spec)
        if cg is not None:
            cg_dirs, cg_made = cg.dirs, cg.made

        idmapped = _idmapped_mounts(spec, bundle)
        if spec.linux.ns("mount") is None:
            host_root_mount = host_mountns.bind_root(spec.root_path)
        ctx = InitContext(cid=o.cid, spec=spec, bundle=bundle, state_dir=sdir,
                          console_socket=o.console_socket, console_sock_obj=o.console_sock_obj,
                          no_pivot=o.no_pivot, no_new_keyring=o.no_new_keyring,
                          preserve_fds=o.preserve_fds, cgroup_dirs=cg_dirs, seccomp=flt,
                          idmapped=idmapped)
        ctx.clone_into_cgroup2 = cg is not None and ctx.late_cgroup_join and \
            "" in cg_dirs and cgroups.layout() == "hybrid"
        chan = Channel()
        # ctypes now, before the fork: the child needs it for unshare, and an import after
        # fork() writes to pages shared with the parent, each write a copy-on-write fault
        # (measured: ctypes' import 1.0 ms before the fork, 1.5 ms after).
        libc.preload()
        child = -1
        if ctx.early_cgroup_join and "" in cg_dirs:
            cfd = os.open(cg_dirs[""], os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                child = libc.clone_into_cgroup(cfd, cg_dirs[""], "a child to create the "
                                               "namespaces in, born in its cgroup2 cgroup: it "
                                               "will not be host root long enough to join it")
            finally:
                if child != 0:
                    os.close(cfd)
            if child == 0:
                ctx.child_born_in_cgroup2 = True
                child_main(ctx, chan.as_child())  # never returns
            ctx.child_born_in_cgroup2 = child > 0
        if child < 0:
            child = libc.fork("a child to create the namespaces in (the runtime stays outside)")
            if child == 0:
                child_main(ctx, chan.as_child())  # never returns
        chan.as_parent()
        trace.stage("runtime")
        for fd in idmapped.values():
            os.close(fd)  # the child has its copies
        idmapped = {}
        if os.environ.get("MINIRUN_NO_WARM") is None and \
                migration.pays_grace_period([k for k in cg_dirs if k or not (
                    ctx.clone_into_cgroup2 or ctx.child_born_in_cgroup2)], by_pid=False):
            warm = _warm_migration_lock()
        while True:
            if warm is not None and not chan.wait(migration.INTERVAL):
                if not warm.move():
                    warm = None
                continue
            msg = chan.recv_message()
            if msg is None:
                raise MinirunError(f"create {o.cid}: the container's init exited during setup")
            tag, arg = msg
            if tag == SETUP:
                _parent_setup(spec, child)
                chan.send(OK)
            elif tag == PID:
                init_pid = int(arg)
            elif tag == HOOKS:
                while not init_pid:
                    # The init can outrun the child's PID (both write this channel): the
                    # hooks must see the init's PID, so wait for it.
                    init_pid, other = chan.recv_pid()
                    if not init_pid:
                        raise MinirunError(f"create {o.cid}: setup failed: {other or 'child exited'}")

                # runtime-spec (runtime.md, State and Lifecycle): `creating` is step 2, building
                # the environment; prestart and createRuntime are steps 3-4, "after step 2",
                # with the program not yet run: `created` (as crun; runc says `creating`).
                state_json = fastjson.dumps({
                    "ociVersion": st.OCI_VERSION, "id": o.cid, "status": "created",
                    "pid": init_pid, "bundle": bundle, "annotations": spec.annotations})
                for phase in ("prestart", "createRuntime"):
                    hooks.run(spec.hooks.get(phase, []), phase, state_json)
                chan.send(OK)
            elif tag == SECCOMP:
                init_pid = init_pid or _await_pid(chan)
                forward_seccomp_listener(flt.listener_path, flt.listener_metadata, init_pid, int(arg), {
                    "ociVersion": st.OCI_VERSION, "id": o.cid, "status": "creating",
                    "pid": init_pid, "bundle": bundle, "annotations": spec.annotations})
                chan.send(OK)
            elif tag == READY:
                if warm is not None:
                    warm.stop()
                while not init_pid:
                    # The init and the child both write this channel: under load the init's
                    # READY can come before the child's PID. Wait for the PID.
                    init_pid, other = chan.recv_pid()
                    if not init_pid:
                        raise MinirunError(f"create {o.cid}: the init is ready but its PID never "
                                           f"came ({other or 'the child exited'})")
                break
            elif tag == ERROR:
                raise MinirunError(arg)
            elif tag == NOEXEC:
                code, _, text = arg.partition(" ")
                raise CommandError(text, int(code))
        os.waitpid(child, 0)
        child = 0
        start = kproc.start_time(init_pid)
        if start is None:
            raise MinirunError(f"create {o.cid}: the container's init exited during setup")
        state = st.State(id=o.cid, pid=init_pid, pid_start=start, bundle=bundle,
                         rootfs=spec.root_path, created=now(),
                         annotations=spec.annotations, cgroup_paths=cg_dirs,
                         cgroup_version=cg.version if cg is not None else 0,
                         cgroup_made=cg_made, host_root_mount=host_root_mount,
                         hooks=spec.raw.get("hooks") or {},
                         config=spec.raw, root_dir=o.root_dir)
        state.save()
        if o.pid_file:
            # runtime-tools reads the bare decimal PID: no trailing newline.
            write_atomic(os.path.abspath(o.pid_file), str(init_pid), mode=0o644)
        return state
    except BaseException:
        # "as if the operation were never attempted": kill what we started, undo what we made.
        if init_pid:
            try:
                os.kill(init_pid, 9)
            except ProcessLookupError:
                pass
            _reap_if_child(init_pid)
        if child:
            try:
                os.kill(child, 9)
            except ProcessLookupError:
                pass
            os.waitpid(child, 0)
        if cg_made:
            try:
                cg.kill_all()
                cg.remove()
            except (OSError, MinirunError):
                pass
        if host_root_mount:
            try:
                host_mountns.detach_root(spec.root_path, host_root_mount)
            except (OSError, MinirunError):
                pass
        remove_tree(sdir)
        if spec.hooks.get("poststop"):
            # runtime-spec: a failed create continues the lifecycle at destroy, then poststop
            # (runc does this for any failure once the container exists).
            hooks.run(spec.hooks["poststop"], "poststop", fastjson.dumps({
                "ociVersion": st.OCI_VERSION, "id": o.cid, "status": "stopped", "pid": 0,
                "bundle": bundle, "annotations": spec.annotations}), warn_only=True)
        raise
    finally:
        if chan is not None:
            chan.close()
        if warm is not None:
            warm.stop()
        for fd in idmapped.values():
            os.close(fd)


def _idmapped_mounts(spec: "spec_mod.Spec", bundle: str) -> dict[int, int]:
    """Detached, idmapped copies of the idmapped bind mounts' sources, made here, in the host's
    user namespace: mount_setattr(MOUNT_ATTR_IDMAP) needs privilege over the filesystem, which
    the container's init, inside its own user namespace, does not have. The init attaches them
    with move_mount()."""
    wanted = [(i, m) for i, m in enumerate(spec.mounts) if m.idmapped]
    if not wanted:
        return {}
    from ..kernel import idmap, rootfs  # lazy: only idmapped mounts (start-up budget of create)

    ns_fds: dict[tuple, int] = {}
    out: dict[int, int] = {}
    try:
        for i, m in wanted:
            key = (tuple((x.container_id, x.host_id, x.size) for x in m.uid_mappings),
                   tuple((x.container_id, x.host_id, x.size) for x in m.gid_mappings))
            if key not in ns_fds:
                ns_fds[key] = idmap.userns_fd(list(key[0]), list(key[1]))
            recursive = "ridmap" in m.options or "rbind" in m.options
            try:
                out[i] = idmap.idmapped_tree(rootfs.bind_source(bundle, m), ns_fds[key], recursive)
            except idmap.Unsupported as e:
                raise MinirunError(f"mounts[{i}] ({m.destination}): cannot make an idmapped "
                                   f"mount here: {e}") from None
    except BaseException:
        for fd in out.values():
            os.close(fd)
        raise
    finally:
        for fd in ns_fds.values():
            os.close(fd)
    return out


def _await_pid(chan: Channel) -> int:
    """The init's PID, from the child's PID message: the init can outrun it on the channel."""
    pid, other = chan.recv_pid()
    if not pid:
        raise MinirunError(f"the container's setup failed: {other or 'the child exited'}")
    return pid


def _make_cgroup(o: CreateOptions, spec: "spec_mod.Spec"):
    """Create the container's cgroup and apply linux.resources to it (before anyone joins)."""
    from ..kernel import cgroups  # lazy: only create and the cgroup verbs (~0.7 ms)

    if cgroups.layout() == "none":
        if spec.linux.cgroups_path or spec.linux.resources.get("memory"):
            raise MinirunError("linux.cgroupsPath: no cgroup filesystem is mounted on this host")
        return None
    path = spec.linux.cgroups_path or cgroups.default_path(o.cid)
    if o.systemd_cgroup and path.count(":") == 2:
        path = cgroups.systemd_path(path)
    cg = cgroups.open_cgroup(path)
    try:
        cg.create()
        cg.apply(spec.linux.resources)
    except PermissionError:
        cg.remove()
        if os.geteuid() == 0 or _asks_for_limits(spec.linux.resources):
            raise
        # Rootless (runc's rule): without a cgroup delegated to this user there is nothing we
        # may write; a container that asks for no limits runs in the caller's cgroup.
        if trace.enabled:
            trace.note(f"cgroup {path}: not writable by uid {os.geteuid()}; no limits asked "
                       "for, so the container stays in our own cgroup")
        return None
    except BaseException:
        cg.remove()
        raise
    return cg


def _asks_for_limits(res: dict) -> bool:
    """Does linux.resources ask for anything (runtime-spec's default device rules do not)?"""
    return any(v for k, v in res.items() if k != "devices")


def _warm_migration_lock():
    """Start keeping the cgroup migration lock warm (kernel/cgroups/migration.py), or None.

    Right after the fork: the init's late join (and, in a new user namespace, our move of the
    child) then finds the lock warm instead of waiting out an RCU grace period.
    """
    from ..kernel import cgroups  # lazy: only create and the cgroup verbs (~0.7 ms)
    from ..kernel.cgroups import migration

    try:
        own = next(iter(cgroups.of_process("self").dirs.values()))
    except (OSError, StopIteration):
        return None
    return migration.Warmer.start(os.path.join(own, "cgroup.procs"))


def _parent_setup(spec: "spec_mod.Spec", child: int) -> None:
    """The child's new user namespace gets its id maps (written from out here)."""
    from ..kernel import namespaces  # lazy: only create (start-up budget of the other verbs)

    m = spec.linux
    namespaces.write_id_maps(child, [(x.container_id, x.host_id, x.size) for x in m.uid_mappings],
                             [(x.container_id, x.host_id, x.size) for x in m.gid_mappings])


def _reap_if_child(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        # Not ours (re-parented to a subreaper or PID 1): wait until it is gone.
        for _ in range(500):
            if kproc.start_time(pid) is None:
                return
            time.sleep(0.002)


def _discard(sdir: str) -> None:
    """Remove a container's state directory as one step, seen from outside: renamed first to
    a name no container ID can have (`~`), then emptied. Emptied in place, the directory would
    be there for a moment without its state.json, and a concurrent `state`, `kill` or `exec`
    would take the container for one still being created."""
    gone = f"{sdir}~deleted.{os.getpid()}"
    try:
        os.rename(sdir, gone)
    except FileNotFoundError:
        return
    remove_tree(gone)  # base/tree.py: not shutil (~7 ms to import, a third of a delete)


def _locked(state: st.State):
    """The container's lock (flock on its state directory), for the verbs that change it. A
    directory gone since its state was read is a container deleted meanwhile (another
    caller's delete took it away as one rename): "does not exist", not an OSError."""
    from ..base.filelock import FileLock  # lazy: `state` and `list` take no lock (start-up budget)

    class Lock(FileLock):
        def __enter__(self) -> int:
            try:
                return super().__enter__()
            except FileNotFoundError:
                raise ContainerError(f"container {state.id} does not exist") from None

    return Lock(state.dir, directory=True)


def start(root_dir: str, cid: str, state: st.State | None = None) -> st.State:
    """Release a created container's init: it execs process.args. `run` passes the state
    its create just wrote, which saves reading it back."""
    if state is None:
        state = st.load(root_dir, cid)
    with _locked(state):
        status = state.status()
        if status != "created":
            raise ContainerError(f"cannot start container {cid}: it is {status} (only a created "
                                 "container can be started)")
        fifo = os.path.join(state.dir, st.FIFO)
        if trace.enabled:
            trace.step(f'open("{fifo}", O_RDONLY)', "unblock the init waiting on the exec fifo")
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            import select  # lazy: only start polls (the other verbs' start-up budget, ~0.05 ms)

            p = select.poll()
            p.register(fd, select.POLLIN)
            # The init writes its byte when released, runs the startContainer hooks and execs;
            # its write end is close-on-exec, so EOF says the program runs. Return only then:
            # runtime-spec (runtime.md, State) calls a container `running` once it "has executed
            # the user-specified program", and callers act on that (runtime-tools' killsig sends
            # TERM as soon as `state` says running: before the execve it would reach our
            # Python init, which, as PID 1 of its namespace, drops it). Poststart needs it too.
            released = False
            while True:
                if p.poll(100):
                    data = os.read(fd, 1)
                    if data:
                        released = True
                        continue
                    if released:
                        break  # EOF: the init's close-on-exec write end closed at execve()
                    raise ContainerError(f"cannot start container {cid}: its init exited")
                if kproc.start_time(state.pid) != state.pid_start:
                    if released:
                        break  # it died after release (a failed exec): the process has ended
                    raise ContainerError(f"cannot start container {cid}: its init exited")
        finally:
            os.close(fd)
        os.unlink(fifo)
    poststart = state.hooks.get("poststart")
    if poststart:
        # lazy: only a container with poststart hooks (spec.py brings prctl: start-up budget)
        from . import hooks
        from . import spec as spec_mod

        # The state of lifecycle step 9, "after step 8" (the program was executed): `running`
        # with the container's PID, even when a short program has already exited by now (the
        # live `state` then says `stopped`). crun passes the same.
        oci = state.oci()
        oci["status"], oci["pid"] = "running", state.pid
        hooks.run(spec_mod.parse_hooks({"poststart": poststart})["poststart"], "poststart",
                  fastjson.dumps(oci), warn_only=True)
    return state


def state_json(root_dir: str, cid: str) -> str:
    return fastjson.dumps(st.load(root_dir, cid).oci(), indent=2)


def container_pids(state: st.State) -> list[int]:
    """Every process of the container: from its cgroup, else from its PID namespace."""
    if state.cgroup_paths:
        from ..kernel import cgroups  # lazy: only create and the cgroup verbs (~0.7 ms)

        pids = cgroups.Cgroup(state.cgroup_paths).procs()
        if pids:
            return pids
    try:
        target = os.stat(f"/proc/{state.pid}/ns/pid").st_ino
    except OSError:
        return []
    if target == os.stat("/proc/self/ns/pid").st_ino:
        return [state.pid] if kproc.start_time(state.pid) == state.pid_start else []
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}/ns/pid").st_ino == target:
                    out.append(int(name))
            except OSError:
                pass
    return sorted(out)


def kill(root_dir: str, cid: str, sig: int, all_procs: bool = False) -> None:
    state = st.load(root_dir, cid)
    status = state.status()
    if status == "stopped":
        raise ContainerError(f"cannot kill container {cid}: it is not running")
    with _locked(state):
        pids = container_pids(state) if all_procs else [state.pid]
        _signal_all(pids, sig)


def _signal_all(pids: list[int], sig: int) -> None:
    from ..kernel import libc  # lazy: see the note at the top (start-up budget)

    for pid in pids:
        try:
            libc.kill(pid, sig, "deliver the signal to the container's process")
        except ProcessLookupError:
            pass


def delete(root_dir: str, cid: str, force: bool = False) -> None:
    """Remove a stopped container (with --force: kill it first, whatever its state)."""
    try:
        state = st.load(root_dir, cid)
    except ContainerError:
        sdir = os.path.join(root_dir, cid)
        if force and valid_runtime_id(cid) and os.path.isdir(sdir):
            _discard(sdir)  # a create that died half way: nothing else to undo
            return
        if force and valid_runtime_id(cid):
            return  # runc: delete --force of a missing container succeeds
        raise
    with _locked(state):
        status = state.status()
        if status != "stopped" and not force:
            # runtime-spec (runtime.md, Delete): "Attempting to delete a container that is not
            # stopped MUST have no effect on the container and MUST generate an error." That
            # includes `created`, whose init is alive and waiting (runc kills it instead).
            raise ContainerError(f"cannot delete container {cid}: it is {status} (kill it "
                                 "first, or use delete --force)")
        cg = cgroup_of(state)
        if status != "stopped" or (cg is not None and cg.populated()):
            # --force; or leftovers of a stopped container (processes that were never in its
            # PID namespace) that go with it.
            _kill_and_wait(state)
        if state.host_root_mount:
            from ..kernel import host_mountns  # lazy: only without a mount ns (start-up budget)

            # Its mounts were made in the host's mount table: the container cannot take them
            # away by exiting.
            host_mountns.detach_root(state.rootfs, state.host_root_mount)
        poststop = state.hooks.get("poststop")
        if poststop:
            # lazy: only a container with poststop hooks (spec.py brings prctl: start-up budget)
            from . import hooks
            from . import spec as spec_mod

            hooks.run(spec_mod.parse_hooks({"poststop": poststop})["poststop"], "poststop", fastjson.dumps(state.oci()), warn_only=True)
        if state.cgroup_made:
            from ..kernel import cgroups  # lazy: only create and the cgroup verbs (~0.7 ms)

            try:
                cgroups.from_state(state.cgroup_version, state.cgroup_paths).remove(state.cgroup_made)
            except OSError as e:
                raise ContainerError(f"delete {cid}: cannot remove cgroup {e.filename}: "
                                     f"{e.strerror}") from None
    _discard(state.dir)


def cgroup_of(state: st.State):
    """The container's cgroup driver, or None if it has no cgroup."""
    if not state.cgroup_paths:
        return None
    from ..kernel import cgroups  # lazy: only create and the cgroup verbs (~0.7 ms)

    return cgroups.from_state(state.cgroup_version, state.cgroup_paths)


def _kill_and_wait(state: st.State) -> None:
    """SIGKILL every process of the container (its whole cgroup), then wait for the init."""
    cg = cgroup_of(state)
    if cg is not None:
        cg.kill_all()  # v2: cgroup.kill; v1: freeze, kill each, thaw (also ends a pause)
    pids = [] if cg is not None else container_pids(state)
    if kproc.start_time(state.pid) == state.pid_start and state.pid not in pids:
        pids.append(state.pid)
    for pid in pids:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    # Reap it if it is our child (foreground `run`); otherwise its reaper will.
    try:
        os.waitpid(state.pid, os.WNOHANG)
    except ChildProcessError:
        pass
    deadline = time.monotonic() + 10
    while kproc.start_time(state.pid) == state.pid_start and time.monotonic() < deadline:
        try:
            os.waitpid(state.pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.001)


def list_states(root_dir: str) -> list[st.State]:
    out = []
    for cid in st.list_ids(root_dir):
        try:
            out.append(st.load(root_dir, cid))
        except ContainerError:
            pass
    return out
