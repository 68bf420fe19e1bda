"""The container side of `create`: two forked stages, then the user's program.

    minirun-oci create  (the runtime, in the host's namespaces)
      └─ fork: child    joins namespaces given by path, unshares the new ones,
           │            has its uid/gid maps written and its cgroup set by the runtime
           └─ fork: init    PID 1 of the new PID namespace (unshare(CLONE_NEWPID) only
                            affects children): builds the rootfs, pivot_root, drops
                            privileges, reports "ready", blocks on exec.fifo until `start`,
                            then execve()s process.args
The child exits as soon as init exists, so init is re-parented (to a subreaper or PID 1): the
runtime leaves no daemon behind. Everything these stages import is imported before pivot_root:
afterwards module lookups would search the container's filesystem.

`child_main` and `_init` read as tables of contents (nsjail's containProc): one line per step,
in the order the kernel needs them; each step is a small function below them, in the same
order, whose docstring says what it does and why there. The messages they send the runtime
are declared in channel.py.
"""

from __future__ import annotations

import _signal  # not `signal` (it imports enum); the init resets two dispositions before exec
import os

from .. import fastjson, trace
from ..base.bundle_defaults import INIT_ANNOTATION  # "true": PID 1 is a reaper (run --init)
from ..errors import CommandError, MinirunError
from ..kernel import capabilities, cgroups, host_mountns, libc, loopback, namespaces, rootfs
from ..kernel import sealed_exec
from ..kernel import process as kproc
from ..kernel.cgroups import migration
from ..record import dataclass, field
from . import hooks
from .channel import ERROR, HOOKS, NOEXEC, OK, PID, READY, SECCOMP, SETUP, START_BYTE, Channel
from .spec import Process, Spec
from .state import OCI_VERSION


@dataclass
class InitContext:
    cid: str
    spec: Spec
    bundle: str
    state_dir: str
    console_socket: str | None = None
    console_sock_obj: object = None  # an already-connected socket (foreground `run`)
    no_pivot: bool = False
    no_new_keyring: bool = False
    preserve_fds: int = 0
    fifo_fd: int = -1  # O_PATH fd on exec.fifo, opened by the child while still the host's root
    cgroup_dirs: dict = field(default_factory=dict)  # the container's cgroup per hierarchy
    cgroup_fds: list = field(default_factory=list)  # O_PATH fds to them, for the late join
    # Hybrid hosts: the init is born in its cgroup2 cgroup (clone3 CLONE_INTO_CGROUP); that
    # hierarchy has no memory controller there, so nothing of ours is charged by it.
    clone_into_cgroup2: bool = False
    born_in_cgroup2: bool = False  # set in the init when that clone worked
    child_born_in_cgroup2: bool = False  # early join: the runtime cloned the child into it
    seccomp: object = None  # linux.seccomp compiled by the runtime (kernel.seccomp.Filter)
    idmapped: dict = field(default_factory=dict)  # mounts[i] -> detached idmapped mount fd

    @property
    def late_cgroup_join(self) -> bool:
        """Does the init join its cgroup itself, just before exec? (see join_cgroup_late)

        Not in a new user namespace: there the init is no longer host root and may not write
        the host's cgroup.procs, so the runtime moves the child in early instead (runc's way).
        """
        return bool(self.cgroup_dirs) and self.spec.linux.ns("user") is None

    @property
    def early_cgroup_join(self) -> bool:
        """In a user namespace the child joins its cgroup itself, *before* it enters the
        namespace (after that it is no longer host root and may not write the host's cgroup
        files): v1 through `tasks` (no migration lock), cgroup2 by being born there (the runtime
        forks it with clone3 CLONE_INTO_CGROUP). runc joins this early too; the price is that
        the pages the child touches from then on are charged to the container."""
        return bool(self.cgroup_dirs) and not self.late_cgroup_join

    @property
    def in_userns(self) -> bool:
        """Is the container in a user namespace of its own (new or joined)?"""
        return self.spec.linux.ns("user") is not None

    @property
    def own_mount_ns(self) -> bool:
        """Does the container have a mount namespace? Without one, / is the host's."""
        return self.spec.linux.ns("mount") is not None


# --- Stage 1: the child, in the runtime's PID namespace --------------------------------------

def child_main(ctx: InitContext, chan: Channel) -> None:
    """Stage 1 (never returns): namespaces, then fork init."""
    code = 1
    try:
        trace.stage("child")
        make_undumpable()
        open_host_fds(ctx)
        join_cgroup_early(ctx)
        join_namespaces(ctx)
        make_user_namespace(ctx, chan)
        unshare_namespaces(ctx)
        pid = fork_init(ctx, chan)
        chan.send(PID, pid)
        code = 0
    except MinirunError as e:
        chan.send(ERROR, e)
    except BaseException as e:  # noqa: BLE001 - report anything to the runtime, never a traceback
        chan.send(ERROR, _describe(e))
    os._exit(code)


def make_undumpable() -> None:
    """PR_SET_DUMPABLE 0 until the container's program is exec'd: CVE-2019-5736, a container
    that opens /proc/PID/exe of a process entering it overwrites the host's runtime binary (here
    the interpreter); a non-dumpable process's /proc files belong to the host's root."""
    libc.prctl(libc.PR_SET_DUMPABLE, 0, "CVE-2019-5736: until it execs the container's "
               "program, nobody may open /proc/PID/exe of this process (the host's "
               "interpreter) or ptrace it")


def open_host_fds(ctx: InitContext) -> None:
    """Reach the state dir (exec fifo), the console socket and the cgroup directories now, as
    the host's root: in a new user namespace a 0700 directory on their path would refuse us
    (runc also opens them in the runtime and hands the fds down).

    An O_PATH fd on the fifo itself, not on its directory: a directory fd held while we
    chdir(process.cwd) is the CVE-2024-21626 escape ("cwd": "/proc/self/fd/N")."""
    ctx.fifo_fd = os.open(os.path.join(ctx.state_dir, "exec.fifo"), os.O_PATH | os.O_CLOEXEC)
    if ctx.spec.process.terminal and ctx.console_sock_obj is None and ctx.console_socket:
        # lazy: terminal.py brings array (collections); only a container with a terminal
        # pays for it (start-up budget of create)
        from ..kernel import terminal

        ctx.console_sock_obj = terminal.connect(ctx.console_socket)
    if ctx.late_cgroup_join:
        ctx.cgroup_fds = [os.open(d, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                          for d in ctx.cgroup_dirs.values()]


def join_cgroup_early(ctx: InitContext) -> None:
    """With a new user namespace, join the container's cgroups before entering it: afterwards
    we are no longer the host's root and may not write the host's cgroup files (see
    InitContext.early_cgroup_join). A child born in its cgroup2 cgroup skips that one."""
    if not ctx.early_cgroup_join:
        return
    for key in migration.join_order(ctx.cgroup_dirs):
        if key == "" and ctx.child_born_in_cgroup2:
            continue
        name, how = migration.self_join_file(key)
        libc.write_file(os.path.join(ctx.cgroup_dirs[key], name), "0",
                        f"join {ctx.cgroup_dirs[key]} while still the host's root: the "
                        f"user namespace will take that away ({how})")


def join_namespaces(ctx: InitContext) -> None:
    """setns(2) into every namespace config.json gives by path, first, in JOIN_ORDER (user
    first: it decides our privileges for the others; mount last)."""
    linux = ctx.spec.linux
    for t in namespaces.JOIN_ORDER:
        ns = linux.ns(t)
        if ns is not None and ns.path:
            namespaces.join(t, ns.path)


def make_user_namespace(ctx: InitContext, chan: Channel) -> None:
    """A new user namespace: unshare it, have the runtime write our uid/gid maps (SETUP), then
    become root in it where 0 is mapped.

    The runtime writes the maps because it holds CAP_SETUID in the parent user namespace and
    we do not; /proc/self/*_map of a non-dumpable process belong to the host's root, which a
    rootless runtime is not, so we are dumpable again meanwhile."""
    linux = ctx.spec.linux
    userns = linux.ns("user")
    if userns is None or userns.path:
        return
    namespaces.unshare_many(["user"])
    libc.prctl(libc.PR_SET_DUMPABLE, 1, "let the runtime (our owner) write our id maps")
    chan.send(SETUP)
    if chan.recv() != OK:
        os._exit(1)
    if any(m.container_id == 0 for m in linux.gid_mappings):
        libc.setresgid(0, "become root of the new user namespace (gid 0 is mapped)")
    if any(m.container_id == 0 for m in linux.uid_mappings):
        libc.setresuid(0, "become root of the new user namespace (uid 0 is mapped)")


def unshare_namespaces(ctx: InitContext) -> None:
    """unshare(2) the other new namespaces at once (user is done, path ones are joined). With
    a late cgroup join the cgroup namespace is made by the init, after it joined: a cgroup
    namespace is rooted at the cgroup its maker is in."""
    linux = ctx.spec.linux
    late = ("cgroup",) if ctx.late_cgroup_join else ()
    namespaces.unshare_many([n.type for n in linux.namespaces
                             if not n.path and n.type != "user" and n.type not in late])


def fork_init(ctx: InitContext, chan: Channel) -> int:
    """Fork the container's init, PID 1 of the new PID namespace (unshare(CLONE_NEWPID) moves
    only the caller's children into it). On a hybrid host it is born in its cgroup2 cgroup
    (clone3 CLONE_INTO_CGROUP): no migration later, so no wait for the migration lock.
    Returns the init's PID as the runtime sees it."""
    pid = -1
    if ctx.clone_into_cgroup2:
        key_fds = dict(zip(ctx.cgroup_dirs, ctx.cgroup_fds))
        pid = libc.clone_into_cgroup(
            key_fds[""], ctx.cgroup_dirs[""], "fork the container's init, born in its "
            "cgroup2 cgroup: no migration later, so no wait for the migration lock")
        if pid == 0:
            ctx.born_in_cgroup2 = True
            init_main(ctx, chan)  # never returns
    if pid < 0:
        pid = libc.fork("fork the container's init: the first process of the new PID "
                        "namespace")
        if pid == 0:
            init_main(ctx, chan)  # never returns
    return pid


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return f"{e.filename + ': ' if e.filename else ''}{e.strerror}"
    return f"{type(e).__name__}: {e}"


# --- Stage 2: the init, PID 1 of the container ------------------------------------------------

def init_main(ctx: InitContext, chan: Channel) -> None:
    """Stage 2 (never returns): PID 1 of the container."""
    try:
        trace.stage("init")
        _init(ctx, chan)
    except BaseException as e:  # noqa: BLE001 - report anything, never a traceback
        msg = str(e) if isinstance(e, MinirunError) else _describe(e)
        if chan.wfd >= 0 and isinstance(e, CommandError):
            # process.args cannot run: say which way, so a front end can exit 127 or 126.
            chan.send(NOEXEC, f"{e.command_code} {e}")
        elif chan.wfd >= 0:
            chan.send(ERROR, msg)
        else:  # after "ready" nobody listens on the channel: the container's stderr is ours
            os.write(2, f"minirun-oci: container {ctx.cid}: {msg}\n".encode(errors="replace"))
    os._exit(1)


def _init(ctx: InitContext, chan: Channel) -> None:
    """The init's set-up, one step per line, in order (each step's docstring says why)."""
    proc = ctx.spec.process
    assert proc is not None
    new_session()
    load_terminal(ctx)
    prepare_root(ctx)
    dev_is_bind = mount_all(ctx)
    make_dev(ctx, dev_is_bind)
    make_cwd(ctx)
    run_runtime_hooks(ctx, chan)
    run_hooks(ctx, "createContainer")
    console = connect_console(ctx)
    pivot(ctx)
    write_sysctls(ctx)
    set_hostname(ctx)
    loopback_up(ctx)
    tty = open_console(ctx, console)
    mask_paths(ctx)
    set_oom_score_adj(ctx)
    join_session_keyring(ctx)
    make_controlling_terminal(tty)
    join_cgroup_late(ctx)
    stub = sealed_exec.prepare()  # made before any filter can refuse memfd_create
    in_cwd = enter_cwd(proc.cwd)  # before any filter can refuse getcwd (runc's order)
    early = load_seccomp_early(ctx, chan)
    exe, env = finalize_process(proc, ctx.in_userns, in_cwd)
    close_fds(ctx)
    report_ready(chan)
    fifo = wait_for_start(ctx)
    run_hooks(ctx, "startContainer")
    reset_signals()
    load_seccomp_late(ctx, early)
    if ctx.spec.annotations.get(INIT_ANNOTATION) == "true":
        kproc.run_as_init(exe, proc.args, env, _signal, keep_open=fifo, stub=stub)  # never returns
    exec_process(exe, proc.args, env, stub)


def new_session() -> None:
    """setsid(): the container no longer belongs to the caller's session, so the caller's
    terminal cannot signal it (SIGHUP, SIGINT) and it can take a controlling terminal of its
    own."""
    libc.setsid("a new session: the container is no longer tied to the caller's terminal")


def load_terminal(ctx: InitContext) -> None:
    """Import kernel/terminal.py now when the container has a terminal: after pivot_root a
    module lookup would search the container's filesystem. (The steps after pivot_root that
    use it find it in sys.modules.)"""
    if ctx.spec.process.terminal:
        # lazy: terminal.py brings array (collections); only a container with a terminal
        # pays for it (start-up budget of create)
        from ..kernel import terminal  # noqa: F401


def prepare_root(ctx: InitContext) -> None:
    """Steps 1-2: stop mount propagation to the host (rootfsPropagation, `/` made slave or
    private) and make the rootfs a mount point, which pivot_root(2) requires. Without a mount
    namespace the runtime made the rootfs a mount point, and / is the host's: leave it alone."""
    if ctx.own_mount_ns:
        rootfs.prepare_root(ctx.spec.root_path, ctx.spec.linux.rootfs_propagation)


def mount_all(ctx: InitContext) -> bool:
    """Step 3: config.json's mounts, in order, each onto a target resolved inside the rootfs
    and pinned by an fd (CVE-2021-30465: a symlink swapped in would redirect it). cgroup mounts
    show the container's own cgroup. True when /dev is bound from elsewhere (make_dev then has
    nothing to do)."""
    spec = ctx.spec

    def cgroup_mount(dest: int, flags: int, reopen) -> None:
        cgroups.mount_into(dest, flags, ctx.cgroup_dirs, reopen)

    dev_is_bind = False
    for i, m in enumerate(spec.mounts):
        if trace.enabled:
            trace.note(f"mount {m.destination} ({m.type or 'bind'})")
        try:
            rootfs.mount_one(spec.root_path, ctx.bundle, m, ctx.in_userns, cgroup_mount,
                             ctx.idmapped.get(i))
        except rootfs.MountError as e:
            raise MinirunError(str(e)) from None
        except OSError as e:
            raise MinirunError(f"mount {m.destination}: {e.strerror}") from None
        if m.destination == "/dev" and ("bind" in m.options or "rbind" in m.options or m.type == "bind"):
            dev_is_bind = True
    return dev_is_bind


def make_dev(ctx: InitContext, dev_is_bind: bool) -> None:
    """Step 4: the device nodes (runtime-spec's defaults plus linux.devices) and the /dev
    symlinks; not when the host's /dev is bound in: then the nodes are already there."""
    if not dev_is_bind:
        rootfs.setup_dev(ctx.spec.root_path, ctx.spec.linux.devices, ctx.in_userns)


def make_cwd(ctx: InitContext) -> None:
    """Create a missing process.cwd inside the rootfs (runc does too), never under /proc or
    /sys. Looked up and made by fds (kernel/rootfs.py mkdirs: openat2 RESOLVE_IN_ROOT, then
    mkdirat + O_NOFOLLOW per missing directory), so a symlink swapped in meanwhile cannot make it
    create a directory on the host (CVE-2024-45310). The chdir itself comes later, after
    pivot_root, by path in the container's own / (enter_cwd, which checks CVE-2024-21626)."""
    import errno

    from ..kernel import resolve

    cwd = ctx.spec.process.cwd
    root = ctx.spec.root_path
    try:
        fd = rootfs.mkdirs(root, cwd, "process.cwd: made if missing, inside the rootfs")
    except (resolve.ResolveError, rootfs.MountError, OSError) as e:
        err = getattr(e, "errno", 0)
        if err == errno.ELOOP:
            # RESOLVE_NO_MAGICLINKS: /proc/self/fd/N, /proc/PID/cwd point at host objects
            raise MinirunError(f"process.cwd {cwd}: resolves through /proc's magic links (or a "
                               "symlink loop), which is not allowed here") from None
        what = str(e) if isinstance(e, MinirunError) else e.strerror
        raise MinirunError(f"process.cwd {cwd}: cannot create it: {what}") from None
    try:
        real = rootfs._real(root)
        rel = os.path.relpath(resolve.where(fd), real)
    finally:
        os.close(fd)
    top = rel.split("/", 1)[0]
    if top in ("proc", "sys"):
        raise MinirunError(f"process.cwd {cwd} resolves through /{top}, which is not allowed here")


def run_runtime_hooks(ctx: InitContext, chan: Channel) -> None:
    """prestart and createRuntime hooks: the namespaces are in place and the host's root is
    still visible (before pivot_root, runtime-spec), but they run in the runtime's namespaces,
    so we ask the runtime (HOOKS) and wait for its answer."""
    if ctx.spec.hooks.get("createRuntime") or ctx.spec.hooks.get("prestart"):
        chan.send(HOOKS)
        if chan.recv() != OK:
            os._exit(1)


def run_hooks(ctx: InitContext, phase: str) -> None:
    """A hook phase the init runs itself, in the container's namespaces: createContainer
    (before pivot_root) or startContainer (after `start`, just before the program). Both get
    the state of lifecycle step 5, `created`, as prestart and createRuntime do."""
    if ctx.spec.hooks.get(phase):
        st = {"ociVersion": OCI_VERSION, "id": ctx.cid, "status": "created", "pid": os.getpid(),
              "bundle": ctx.bundle, "annotations": ctx.spec.annotations}
        hooks.run(ctx.spec.hooks[phase], phase, fastjson.dumps(st))


def connect_console(ctx: InitContext):
    """The console socket, connected (by the child, or here) before pivot_root: its path is
    the host's. None without a terminal."""
    if not ctx.spec.process.terminal:
        return None
    from ..kernel import terminal  # loaded by load_terminal (start-up budget of create)

    return ctx.console_sock_obj or terminal.connect(ctx.console_socket)


def pivot(ctx: InitContext) -> None:
    """Step 5, the switch: pivot_root(2) to the rootfs and detach the old root; --no-pivot
    moves the rootfs over / and chroots (the old root stays underneath); without a mount
    namespace, chroot into the rootfs the runtime mounted in the host's table."""
    root = ctx.spec.root_path
    if not ctx.own_mount_ns:
        host_mountns.enter_root(root)
    elif ctx.no_pivot:
        rootfs.move_root(root)
    else:
        rootfs.pivot(root)


def write_sysctls(ctx: InitContext) -> None:
    """linux.sysctl, written after pivot_root: the container's own /proc/sys, whose
    namespaced entries (net.*, kernel.shm*, ...) belong to its namespaces."""
    if ctx.spec.linux.sysctl:
        from ..kernel import sysctl  # loaded already: spec.load checked these keys with it

        for key, value in ctx.spec.linux.sysctl.items():
            sysctl.write(key, value)


def set_hostname(ctx: InitContext) -> None:
    """hostname and domainname: the UTS namespace's own."""
    if ctx.spec.hostname is not None:
        libc.sethostname(ctx.spec.hostname, "the UTS namespace's own hostname")
    if ctx.spec.domainname is not None:
        libc.setdomainname(ctx.spec.domainname, "the UTS namespace's own NIS domain name")


def loopback_up(ctx: InitContext) -> None:
    """A network namespace made for the container starts with `lo` down: bring it up, as runc
    does (kernel/loopback.py). One that is joined (a path) is someone else's to set up."""
    net = ctx.spec.linux.ns("network")
    if net is not None and not net.path:
        loopback.up(where="the container's new network namespace")


def open_console(ctx: InitContext, console) -> int | None:
    """With a terminal: open a pty in the container's /dev/pts, send its master over the
    console socket (the caller holds it), keep the slave. None without a terminal."""
    if console is None:
        return None
    from ..kernel import terminal  # loaded by load_terminal (start-up budget of create)

    tty = terminal.open_console(console, ctx.spec.process.console_size)
    console.close()
    return tty


def mask_paths(ctx: InitContext) -> None:
    """Steps 6-7: hide kernel files a container should not read (maskedPaths: /proc/kcore,
    /proc/keys ...), make readonlyPaths read-only (/proc/sys, /proc/sysrq-trigger ...), then a
    read-only / if asked and the rootfs propagation asked for."""
    linux = ctx.spec.linux
    rootfs.mask_paths(linux.masked_paths)
    rootfs.readonly_paths(linux.readonly_paths)
    rootfs.finish_root(ctx.spec.root_readonly, linux.rootfs_propagation)


def set_oom_score_adj(ctx: InitContext) -> None:
    """process.oomScoreAdj, while we are still root (raising it needs CAP_SYS_RESOURCE);
    inherited across execve."""
    adj = ctx.spec.process.oom_score_adj
    if adj is not None:
        libc.write_file("/proc/self/oom_score_adj", str(adj),
                        "process.oomScoreAdj: how readily the OOM killer picks this process")


def join_session_keyring(ctx: InitContext) -> None:
    """A new session keyring named after the container (not with --no-new-keyring): keys of
    the host's session stay out of it. ENOSYS and EDQUOT are ignored, as runc does."""
    if ctx.no_new_keyring:
        return
    try:
        libc.keyctl_join_session(ctx.cid, "a new session keyring: keys of the host's "
                                 "session stay out of the container")
    except MinirunError as e:
        if getattr(e, "errno", 0) not in (38, 122):  # ENOSYS, EDQUOT: runc ignores these too
            raise


def make_controlling_terminal(tty: int | None) -> None:
    """The pty slave becomes our controlling terminal and stdin/stdout/stderr."""
    if tty is not None:
        from ..kernel import terminal  # loaded by load_terminal (start-up budget of create)

        terminal.make_controlling(tty)


def join_cgroup_late(ctx: InitContext) -> None:
    """Join the container's cgroups (without a user namespace), as late as possible: the
    pages this Python process touched until now are charged to the runtime's cgroup, not the
    container's, so a small memory limit stays usable. Then the new cgroup namespace, rooted
    at the cgroup we just joined."""
    if not ctx.late_cgroup_join:
        return
    fds = dict(zip(ctx.cgroup_dirs, ctx.cgroup_fds))
    for key in migration.join_order(ctx.cgroup_dirs):
        if key == "" and ctx.born_in_cgroup2:
            os.close(fds[key])
            continue
        name, how = migration.self_join_file(key)
        libc.write_file(name, "0", f"join {ctx.cgroup_dirs[key]} now, just before exec, so "
                        f"the runtime's memory is not charged to the container ({how})",
                        dir_fd=fds[key])
        os.close(fds[key])
    ns = ctx.spec.linux.ns("cgroup")
    if ns is not None and not ns.path:
        namespaces.unshare_many(["cgroup"])  # rooted at the cgroup we just joined


def load_seccomp_early(ctx: InitContext, chan: Channel) -> bool:
    """The seccomp filter, now, before the capabilities go, when it needs CAP_SYS_ADMIN (no
    no_new_privs) or has a listener (its fd goes up the channel, which closes at READY).
    Otherwise it waits for load_seccomp_late. True when loaded here."""
    flt, proc = ctx.seccomp, ctx.spec.process
    early = flt is not None and (not proc.no_new_privileges or flt.notify)
    if early:
        load_seccomp(flt, chan, proc.no_new_privileges)
    return early


def close_fds(ctx: InitContext) -> None:
    """Every fd but stdio and the --preserve-fds ones is closed at execve (CVE-2024-21626: no
    host fd reaches the container), the exec fifo's O_PATH fd included."""
    kproc.close_fds_on_exec(3 + ctx.preserve_fds)
    os.set_inheritable(ctx.fifo_fd, False)


def report_ready(chan: Channel) -> None:
    """READY: set-up is done; the runtime saves state.json (`created`) and exits. The channel
    closes: from now on our errors go to the container's stderr."""
    chan.send(READY)
    chan.close()


def wait_for_start(ctx: InitContext) -> int:
    """Created. Block until `start` opens exec.fifo for reading (open(2) of a fifo for writing
    waits for a reader), then write START_BYTE: we are going.

    The fifo is re-opened through /proc/self/fd on the O_PATH fd the child opened on the host
    side, as runc does. The write end stays open and is close-on-exec, so `start` reads EOF at
    the moment execve() succeeds (or the init dies): that is how start knows the
    startContainer hooks have run and the program is executing before it runs poststart
    (runtime-spec: poststart comes "after the user-specified process is executed").
    Returns that write end."""
    if trace.enabled:
        trace.step('open("exec.fifo", O_WRONLY)', "wait here, fully set up, until `start`")
    try:
        fifo = os.open(f"/proc/self/fd/{ctx.fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    except OSError as e:
        raise MinirunError(f"open exec.fifo through /proc/self/fd: {e.strerror} (the container "
                           "needs a /proc mount)") from None
    os.write(fifo, START_BYTE)
    os.close(ctx.fifo_fd)
    return fifo


def load_seccomp_late(ctx: InitContext, early: bool) -> None:
    """The seccomp filter, when load_seccomp_early did not load it: as late as possible, just
    before execve, so that our own calls are not filtered (runc's order)."""
    if ctx.seccomp is not None and not early:
        load_seccomp(ctx.seccomp, None, True)


# --- Shared with `exec` (execute.py) ----------------------------------------------------------

def enter_cwd(cwd: str) -> bool:
    """chdir(process.cwd) while still root and before a seccomp filter is loaded: a profile
    may deny getcwd(2), which the CVE-2024-21626 check below needs, and the filter is loaded
    before finalize_process when it needs CAP_SYS_ADMIN. runc also enters the cwd before it
    switches user. False: root may not search it (EACCES: e.g. a directory only the
    container's user can enter, in a user namespace); finalize_process tries again as that
    user."""
    try:
        libc.chdir(cwd, "process.cwd, entered as root before the seccomp filter")
    except OSError as e:
        if e.errno == 13:  # EACCES
            return False
        raise MinirunError(f"process.cwd {cwd}: {e.strerror}") from None
    _check_cwd(cwd)
    return True


def _check_cwd(cwd: str) -> None:
    # CVE-2024-21626: a cwd reached through a leaked fd lies outside our root, and the
    # kernel says so: getcwd() then starts with "(unreachable)".
    try:
        inside = os.getcwd().startswith("/")
    except OSError as e:
        raise MinirunError(f"process.cwd {cwd}: {e.strerror}") from None
    if not inside:
        raise MinirunError(f"process.cwd {cwd}: resolves outside the container's root")


def finalize_process(proc: Process, in_userns: bool, in_cwd: bool = False
                     ) -> tuple[str, dict[str, str]]:
    """The last steps as root: rlimits, capabilities, user, no_new_privs, umask, cwd (unless
    enter_cwd already entered it: in_cwd).

    Returns the resolved executable and the environment. Shared by `create` and `exec`.
    """
    top = capabilities.last_cap()
    kproc.set_rlimits([(r.type, r.soft, r.hard) for r in proc.rlimits])
    caps = proc.capabilities
    if caps is not None:
        capabilities.drop_bounding(caps.get("bounding", []), top)
    u = proc.user
    if u.uid != 0 or u.gid != 0 or u.additional_gids or caps is not None:
        groups_ok = kproc.setgroups_allowed()
        if not groups_ok and u.additional_gids:
            raise MinirunError("process.user.additionalGids: setgroups(2) is denied in this user "
                               "namespace (a rootless runtime had to deny it to map gids); "
                               "remove them")
        try:
            kproc.switch_user(u.uid, u.gid, u.additional_gids, setgroups_allowed=groups_ok)
        except (MinirunError, OSError) as e:
            why = e.strerror if isinstance(e, OSError) else e
            raise MinirunError(f"process.user {u.uid}:{u.gid}: {why}") from None
    if caps is not None:
        capabilities.apply(caps, top)
    if proc.no_new_privileges:
        libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1, "process.noNewPrivileges: execve() can never "
                   "grant more privileges (setuid bits and file capabilities are ignored)")
    libc.umask(u.umask if u.umask is not None else 0o022, "process.user.umask")
    if not in_cwd:
        try:
            libc.chdir(proc.cwd, "process.cwd")
        except OSError as e:
            raise MinirunError(f"process.cwd {proc.cwd}: {e.strerror}") from None
        _check_cwd(proc.cwd)
    env = proc.env_dict()
    if "HOME" not in env:
        env["HOME"] = _home_of(u.uid)
    try:
        exe = kproc.find_executable(proc.args[0], env.get("PATH"))
    except OSError as e:
        raise CommandError(str(e), 127 if isinstance(e, FileNotFoundError) else 126) from None
    return exe, env


def _home_of(uid: int) -> str:
    """HOME from the container's /etc/passwd (as runc does when process.env has none)."""
    try:
        with open("/etc/passwd") as f:
            for line in f:
                parts = line.split(":")
                if len(parts) > 5 and parts[2] == str(uid):
                    return parts[5] or "/"
    except OSError:
        pass
    return "/"


def reset_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ for itself; an exec'd program would inherit that
    (ignored dispositions survive execve)."""
    for sig in (_signal.SIGPIPE, _signal.SIGXFSZ):
        _signal.signal(sig, _signal.SIG_DFL)


def load_seccomp(flt, chan: Channel | None, no_new_privs: bool) -> None:
    """Load linux.seccomp's filter; with SCMP_ACT_NOTIFY rules, hand the listener fd to the
    runtime (SECCOMP: it passes it on to the supervisor at listenerPath) over `chan`."""
    why = f"linux.seccomp: {flt.summary}"
    if not no_new_privs:
        why += " (loaded while we still hold CAP_SYS_ADMIN: no_new_privs is off)"
    fd = libc.seccomp_set_filter(flt.program, flt.flags, why)
    if flt.notify:
        if chan is None or chan.wfd < 0:
            raise MinirunError("linux.seccomp: SCMP_ACT_NOTIFY needs the runtime to pass the "
                               "listener on, and it is gone")
        chan.send(SECCOMP, fd)
        if chan.recv() != OK:
            raise MinirunError(f"linux.seccomp: the listener at {flt.listener_path} did not "
                               "take the seccomp fd")
        os.close(fd)


def exec_process(exe: str, args: list[str], env: dict[str, str], stub: int | None) -> None:
    """execve(process.args) through the sealed stub (CVE-2019-5736: the container never sees
    our interpreter at /proc/self/exe). On failure: exit 127 (not found) or 126, as a shell."""
    try:
        sealed_exec.execve(stub, exe, args, env, "become the container's program: same PID, "
                           "new image")
    except OSError as e:
        os.write(2, f"minirun-oci: exec {args[0]}: {e.strerror}\n".encode())
        os._exit(127 if e.errno == 2 else 126)
