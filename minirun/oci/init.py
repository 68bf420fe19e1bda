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
"""

from __future__ import annotations

import os
from ..record import dataclass, field

from .. import trace
from ..base.bundle_defaults import INIT_ANNOTATION  # "true": PID 1 is a reaper (run --init)
from ..errors import CommandError, MinirunError
from ..kernel import capabilities, cgroups, host_mountns, libc, namespaces, rootfs, sealed_exec
from ..kernel.cgroups import migration
from ..kernel import process as kproc
from .channel import Channel
from .spec import Process, Spec




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
        """Does the init join its cgroup itself, just before exec? (see _init)

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


def child_main(ctx: InitContext, chan: Channel) -> None:
    """Stage 1 (never returns): namespaces, then fork init."""
    code = 1
    try:
        trace.stage("child")
        libc.prctl(libc.PR_SET_DUMPABLE, 0, "CVE-2019-5736: until it execs the container's "
                   "program, nobody may open /proc/PID/exe of this process (the host's "
                   "interpreter) or ptrace it")
        linux = ctx.spec.linux
        # Reach the state dir (exec fifo) and the console socket now, as the host's root: in a
        # new user namespace a 0700 directory on their path would refuse us (runc also opens
        # both in the runtime and hands the fds down).
        # An O_PATH fd on the fifo itself, not on its directory: a directory fd held while we
        # chdir(process.cwd) is the CVE-2024-21626 escape ("cwd": "/proc/self/fd/N").
        ctx.fifo_fd = os.open(os.path.join(ctx.state_dir, "exec.fifo"), os.O_PATH | os.O_CLOEXEC)
        if ctx.spec.process.terminal and ctx.console_sock_obj is None and ctx.console_socket:
            from ..kernel import terminal

            ctx.console_sock_obj = terminal.connect(ctx.console_socket)
        if ctx.late_cgroup_join:
            ctx.cgroup_fds = [os.open(d, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                              for d in ctx.cgroup_dirs.values()]
        if ctx.early_cgroup_join:
            for key in migration.join_order(ctx.cgroup_dirs):
                if key == "" and ctx.child_born_in_cgroup2:
                    continue
                name, how = migration.self_join_file(key)
                libc.write_file(os.path.join(ctx.cgroup_dirs[key], name), "0",
                                f"join {ctx.cgroup_dirs[key]} while still the host's root: the "
                                f"user namespace will take that away ({how})")
        # Join every namespace given by path first (user first: it decides our privileges).
        for t in namespaces.JOIN_ORDER:
            ns = linux.ns(t)
            if ns is not None and ns.path:
                namespaces.join(t, ns.path)
        userns = linux.ns("user")
        new_user = userns is not None and not userns.path
        if new_user:
            namespaces.unshare_many(["user"])
            # The runtime writes our uid/gid maps next: /proc/self/*_map of a non-dumpable
            # process belong to the host's root, which a rootless runtime is not.
            libc.prctl(libc.PR_SET_DUMPABLE, 1, "let the runtime (our owner) write our id maps")
        if new_user:
            # The runtime writes our uid/gid maps: it holds CAP_SETUID in the parent user
            # namespace; we do not.
            chan.send("setup")
            if chan.recv() != "ok":
                os._exit(1)
        if new_user:
            if any(m.container_id == 0 for m in linux.gid_mappings):
                libc.setresgid(0, "become root of the new user namespace (gid 0 is mapped)")
            if any(m.container_id == 0 for m in linux.uid_mappings):
                libc.setresuid(0, "become root of the new user namespace (uid 0 is mapped)")
        # With a late cgroup join the cgroup namespace is made by the init, after it joined.
        late = ("cgroup",) if ctx.late_cgroup_join else ()
        namespaces.unshare_many([n.type for n in linux.namespaces
                                 if not n.path and n.type != "user" and n.type not in late])
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
        chan.send(f"pid {pid}")
        code = 0
    except MinirunError as e:
        chan.send(f"error {e}")
    except BaseException as e:  # noqa: BLE001 - report anything to the runtime, never a traceback
        chan.send(f"error {_describe(e)}")
    os._exit(code)


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return f"{e.filename + ': ' if e.filename else ''}{e.strerror}"
    return f"{type(e).__name__}: {e}"


def init_main(ctx: InitContext, chan: Channel) -> None:
    """Stage 2 (never returns): PID 1 of the container."""
    try:
        trace.stage("init")
        _init(ctx, chan)
    except BaseException as e:  # noqa: BLE001 - report anything, never a traceback
        msg = str(e) if isinstance(e, MinirunError) else _describe(e)
        if chan.wfd >= 0 and isinstance(e, CommandError):
            # process.args cannot run: say which way, so a front end can exit 127 or 126.
            chan.send(f"noexec {e.command_code} {e}")
        elif chan.wfd >= 0:
            chan.send(f"error {msg}")
        else:  # after "ready" nobody listens on the channel: the container's stderr is ours
            os.write(2, f"minirun-oci: container {ctx.cid}: {msg}\n".encode(errors="replace"))
    os._exit(1)


def _init(ctx: InitContext, chan: Channel) -> None:
    spec, linux = ctx.spec, ctx.spec.linux
    proc = spec.process
    assert proc is not None
    in_userns = linux.ns("user") is not None
    root = spec.root_path

    libc.setsid("a new session: the container is no longer tied to the caller's terminal")

    # The exec fifo is reached through an O_PATH fd opened on the host side (child_main): after
    # pivot_root we re-open it through /proc/self/fd, as runc does; it is closed at exec.
    fifo_fd = ctx.fifo_fd

    # Imports the later stages need, done now while the host's Python is still reachable.
    if proc.terminal:
        from ..kernel import terminal
    if spec.hooks.get("startContainer") or spec.hooks.get("createContainer"):
        from . import hooks as _hooks  # noqa: F401
    import _signal

    # 1-3: propagation, rootfs as a mount point, config.json's mounts. Without a mount
    # namespace the runtime made the rootfs a mount point, and / is the host's: leave it alone.
    own_mounts = linux.ns("mount") is not None
    if own_mounts:
        rootfs.prepare_root(root, linux.rootfs_propagation)
    def cgroup_mount(dest: str, flags: int) -> None:
        cgroups.mount_into(dest, flags, ctx.cgroup_dirs)

    dev_is_bind = False
    for i, m in enumerate(spec.mounts):
        if trace.enabled:
            trace.note(f"mount {m.destination} ({m.type or 'bind'})")
        try:
            rootfs.mount_one(root, ctx.bundle, m, in_userns, cgroup_mount, ctx.idmapped.get(i))
        except rootfs.MountError as e:
            raise MinirunError(str(e)) from None
        except OSError as e:
            raise MinirunError(f"mount {m.destination}: {e.strerror}") from None
        if m.destination == "/dev" and ("bind" in m.options or "rbind" in m.options or m.type == "bind"):
            dev_is_bind = True
    # 4: /dev (not when the host's /dev is bound in: then the nodes are already there).
    if not dev_is_bind:
        rootfs.setup_dev(root, linux.devices, in_userns)
    try:
        cwd_in_root = rootfs.secure_join(root, proc.cwd, avoid=("proc", "sys"))
    except rootfs.MountError as e:
        raise MinirunError(f"process.cwd: {e}") from None
    if not os.path.exists(cwd_in_root):
        try:
            rootfs.mkdir_all(cwd_in_root)  # runc creates a missing cwd too
        except OSError as e:  # name the field, not the host path
            raise MinirunError(f"process.cwd {proc.cwd}: cannot create it: {e.strerror}") from None

    # Hooks that run with the namespaces in place but the host's root still visible.
    if spec.hooks.get("createRuntime") or spec.hooks.get("prestart"):
        chan.send("hooks")  # the runtime runs these in its own namespaces
        if chan.recv() != "ok":
            os._exit(1)
    if spec.hooks.get("createContainer"):
        from . import hooks
        from .state import OCI_VERSION
        from .. import fastjson

        # Lifecycle step 5, after step 2: `created`, as for prestart and createRuntime.
        st = {"ociVersion": OCI_VERSION, "id": ctx.cid, "status": "created", "pid": os.getpid(),
              "bundle": ctx.bundle, "annotations": spec.annotations}
        hooks.run(spec.hooks["createContainer"], "createContainer", fastjson.dumps(st))

    console = None
    if proc.terminal:
        console = ctx.console_sock_obj or terminal.connect(ctx.console_socket)

    # 5: the switch.
    if not own_mounts:
        host_mountns.enter_root(root)
    elif ctx.no_pivot:
        rootfs.move_root(root)
    else:
        rootfs.pivot(root)

    # 6: what the container may see and change.
    for key, value in linux.sysctl.items():
        libc.write_file("/proc/sys/" + key.replace(".", "/"), value, f"linux.sysctl {key}")
    if spec.hostname is not None:
        libc.sethostname(spec.hostname, "the UTS namespace's own hostname")
    if spec.domainname is not None:
        libc.setdomainname(spec.domainname, "the UTS namespace's own NIS domain name")
    slave = None
    if console is not None:
        slave = terminal.open_console(console, proc.console_size)
        console.close()
    rootfs.mask_paths(linux.masked_paths)
    rootfs.readonly_paths(linux.readonly_paths)
    rootfs.finish_root(spec.root_readonly, linux.rootfs_propagation)

    if proc.oom_score_adj is not None:
        libc.write_file("/proc/self/oom_score_adj", str(proc.oom_score_adj),
                        "process.oomScoreAdj: how readily the OOM killer picks this process")
    if not ctx.no_new_keyring:
        try:
            libc.keyctl_join_session(ctx.cid, "a new session keyring: keys of the host's "
                                     "session stay out of the container")
        except MinirunError as e:
            if getattr(e, "errno", 0) not in (38, 122):  # ENOSYS, EDQUOT: runc ignores these too
                raise
    if slave is not None:
        terminal.make_controlling(slave)

    if ctx.late_cgroup_join:
        # As late as possible: the pages this Python process touched until now are charged to
        # the runtime's cgroup, not the container's, so a small memory limit stays usable.
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
        ns = linux.ns("cgroup")
        if ns is not None and not ns.path:
            namespaces.unshare_many(["cgroup"])  # rooted at the cgroup we just joined

    # The seccomp filter: before the capabilities go when it needs CAP_SYS_ADMIN (no
    # no_new_privs) or a listener (its fd goes up the channel); otherwise as late as
    # possible, just before execve, so that our own calls are not filtered (runc's order).
    flt = ctx.seccomp
    stub = sealed_exec.prepare()  # made before any filter can refuse memfd_create
    early = flt is not None and (not proc.no_new_privileges or flt.notify)
    in_cwd = enter_cwd(proc.cwd)  # before any filter can refuse getcwd (runc's order)
    if early:
        load_seccomp(flt, chan, proc.no_new_privileges)
    exe, env = finalize_process(proc, in_userns, in_cwd)
    kproc.close_fds_on_exec(3 + ctx.preserve_fds)
    os.set_inheritable(fifo_fd, False)

    chan.send("ready")
    chan.close()

    # Created. Block until `start` opens the fifo for reading (open(2) of a fifo for writing
    # waits for a reader), then tell it we are going.
    if trace.enabled:
        trace.step('open("exec.fifo", O_WRONLY)', "wait here, fully set up, until `start`")
    try:
        fifo = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    except OSError as e:
        raise MinirunError(f"open exec.fifo through /proc/self/fd: {e.strerror} (the container "
                           "needs a /proc mount)") from None
    os.write(fifo, b"0")
    # Keep the write end open: it is close-on-exec, so `start` reads EOF at the moment execve()
    # succeeds (or the init dies). That is how start knows the startContainer hooks have run and
    # the program is executing before it runs poststart (runtime-spec: poststart comes "after the
    # user-specified process is executed").
    os.close(fifo_fd)

    if spec.hooks.get("startContainer"):
        from . import hooks
        from .state import OCI_VERSION
        from .. import fastjson

        st = {"ociVersion": OCI_VERSION, "id": ctx.cid, "status": "created", "pid": os.getpid(),
              "bundle": ctx.bundle, "annotations": spec.annotations}
        hooks.run(spec.hooks["startContainer"], "startContainer", fastjson.dumps(st))
    _reset_signals(_signal)
    if flt is not None and not early:
        load_seccomp(flt, None, True)
    if spec.annotations.get(INIT_ANNOTATION) == "true":
        kproc.run_as_init(exe, proc.args, env, _signal, keep_open=fifo, stub=stub)  # never returns
    exec_process(exe, proc.args, env, stub)


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


def _reset_signals(_signal) -> None:
    # Python ignores SIGPIPE and SIGXFSZ for itself; an exec'd program would inherit that.
    for sig in (_signal.SIGPIPE, _signal.SIGXFSZ):
        _signal.signal(sig, _signal.SIG_DFL)


def load_seccomp(flt, chan: Channel | None, no_new_privs: bool) -> None:
    """Load linux.seccomp's filter; with SCMP_ACT_NOTIFY rules, hand the listener fd to the
    runtime (which passes it on to the supervisor at listenerPath) over `chan`."""
    why = f"linux.seccomp: {flt.summary}"
    if not no_new_privs:
        why += " (loaded while we still hold CAP_SYS_ADMIN: no_new_privs is off)"
    fd = libc.seccomp_set_filter(flt.program, flt.flags, why)
    if flt.notify:
        if chan is None or chan.wfd < 0:
            raise MinirunError("linux.seccomp: SCMP_ACT_NOTIFY needs the runtime to pass the "
                               "listener on, and it is gone")
        chan.send(f"seccomp {fd}")
        if chan.recv() != "ok":
            raise MinirunError(f"linux.seccomp: the listener at {flt.listener_path} did not "
                               "take the seccomp fd")
        os.close(fd)


def exec_process(exe: str, args: list[str], env: dict[str, str], stub: int | None) -> None:
    try:
        sealed_exec.execve(stub, exe, args, env, "become the container's program: same PID, "
                           "new image")
    except OSError as e:
        os.write(2, f"minirun-oci: exec {args[0]}: {e.strerror}\n".encode())
        os._exit(127 if e.errno == 2 else 126)
