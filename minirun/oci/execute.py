"""`exec`: run another process inside a running container.

The same two-stage dance as create, but *joining* instead of making: the child is born in the
init's cgroup2 cgroup (clone3 CLONE_INTO_CGROUP) and moves itself into its v1 ones (`tasks`:
no migration lock), setns(2)s into each namespace of the container's init (/proc/INIT/ns/*,
user first, mount last), and forks the process that execs (only children enter the PID
namespace). The joining process is made non-dumpable first, and the program is exec'd through
the sealed stub: CVE-2019-5736 let a container reach the runtime's binary through
/proc/PID/exe of a process entering it.
"""

from __future__ import annotations

import _signal  # not `signal` (it imports enum)
import os

from .. import trace
from ..base.atomicfile import write_atomic
from ..errors import CommandError, ContainerError, MinirunError
from ..kernel import cgroups, host_mountns, libc, namespaces, sealed_exec
from ..kernel import process as kproc
from ..kernel.cgroups import migration
from . import state as st
from .channel import ERROR, NOEXEC, OK, PID, SECCOMP, Channel
from .init import _describe, enter_cwd, exec_process as do_exec, finalize_process, \
    load_seccomp, reset_signals
from .run import FORWARDED, exit_code, wait_for
from .seccomp_listener import forward as forward_seccomp_listener
from .spec import Process


def exec_process(root_dir: str, cid: str, proc: Process, detach: bool = False,
                 pid_file: str | None = None, console_socket: str | None = None,
                 preserve_fds: int = 0, detach_keys: bytes = b"") -> int:
    state = st.load(root_dir, cid)
    status = state.status()
    if status not in ("running", "created"):
        raise ContainerError(f"cannot exec in container {cid}: it is {status}")
    ours = sock = None
    if proc.terminal:
        if console_socket:
            # lazy: terminal.py brings array and socket; only exec --tty (start-up budget)
            from ..kernel import terminal

            sock = terminal.connect(console_socket)
        elif detach:
            raise MinirunError("exec --detach --tty needs --console-socket")
        else:
            import socket  # lazy: only a foreground exec --tty (start-up budget: socket)

            ours, sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    if not detach:
        libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1, "adopt the exec'd process to wait for it")
    # The init's cgroups, read now (host view) for the runtime to move the child into.
    try:
        cg = cgroups.of_process(state.pid)
    except OSError:
        cg = None
    in_userns = not namespaces.same_as_self("user", state.pid)
    # The container's seccomp filter applies to every process in it, exec'd ones too.
    flt = None
    sc = (state.config.get("linux") or {}).get("seccomp")
    if sc is not None:
        from ..kernel import seccomp  # lazy: only linux.seccomp needs its compiler (~0.7 ms)

        flt = seccomp.compile_filter(sc)
    chan = Channel()
    dirs = dict(cg.dirs) if cg is not None else {}
    child = -1
    if "" in dirs:
        # Born in the container's cgroup2 cgroup (clone3 CLONE_INTO_CGROUP): no move later,
        # so no wait for the migration lock (kernel/cgroups/migration.py).
        cfd = os.open(dirs[""], os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            child = libc.clone_into_cgroup(cfd, dirs[""], "a child that will join the "
                                           "container's namespaces, born in its cgroup")
        finally:
            if child != 0:
                os.close(cfd)
        if child >= 0:
            del dirs[""]
    if child < 0:
        child = libc.fork("a child that will join the container's namespaces")
    if child == 0:
        _child(state.pid, proc, chan.as_child(), sock, in_userns, preserve_fds, flt, dirs)
    chan.as_parent()
    if sock is not None:
        sock.close()
    trace.stage("runtime")
    pid = 0
    try:
        while True:
            msg = chan.recv_message()
            if msg is None:
                break  # every write end closed: the process has exec'd
            tag, arg = msg
            if tag == PID:
                pid = int(arg)
            elif tag == SECCOMP:
                while not pid:  # the process can outrun its parent's PID
                    pid, _ = chan.recv_pid()
                    if not pid:
                        raise MinirunError(f"exec in container {cid}: setup failed")
                forward_seccomp_listener(flt.listener_path, flt.listener_metadata, pid, int(arg), {
                    "ociVersion": st.OCI_VERSION, "id": cid, "status": "running",
                    "pid": state.pid, "bundle": state.bundle, "annotations": state.annotations})
                chan.send(OK)
            elif tag == ERROR:
                raise MinirunError(f"exec in container {cid}: {arg}")
            elif tag == NOEXEC:
                code, _, text = arg.partition(" ")
                raise CommandError(text, int(code))
        os.waitpid(child, 0)
        if not pid:
            raise MinirunError(f"exec in container {cid}: the process did not start")
    except BaseException:
        try:
            os.waitpid(child, 0)
        except ChildProcessError:
            pass
        if pid:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        raise
    finally:
        chan.close()
    if pid_file:
        write_atomic(os.path.abspath(pid_file), str(pid), mode=0o644)
    if detach:
        return 0
    if ours is not None:
        from ..kernel import terminal  # lazy: only exec --tty (start-up budget)

        master = terminal.recv_fd(ours)
        status = terminal.proxy(master, pid, detach_keys)
        if status is None:  # detached (exec -it): it runs on, its terminal held for it
            terminal.hold(master)
            return 0
        return exit_code(status)
    kproc.forward_signals(pid, [getattr(_signal, n) for n in FORWARDED], _signal)
    return exit_code(wait_for(pid))


def _child(init: int, proc: Process, chan: Channel, sock, in_userns: bool, preserve: int,
           flt, cgroup_dirs: dict[str, str]) -> None:
    code = 1
    try:
        trace.stage("exec-child")
        if proc.terminal:
            # lazy: only exec --tty (start-up budget); loaded here, before setns into the
            # container's mount namespace, where an import would search its filesystem
            from ..kernel import terminal
        libc.prctl(libc.PR_SET_DUMPABLE, 0, "CVE-2019-5736: no one in the container may open "
                   "/proc/PID/exe of this process (the runtime's interpreter)")
        for key in migration.join_order(cgroup_dirs):
            # While still the host's root (a user namespace would take that away): v1 moves
            # our one thread without the global lock; cgroup2 (if not born there) pays it.
            name, how = migration.self_join_file(key)
            libc.write_file(os.path.join(cgroup_dirs[key], name), "0",
                            f"join the container's cgroup {cgroup_dirs[key]} ({how})")
        shares_mounts = namespaces.same_as_self("mount", init)
        for t in namespaces.JOIN_ORDER:
            if os.path.exists(f"/proc/{init}/ns/{namespaces.TYPES[t][1]}") and \
                    not namespaces.same_as_self(t, init):
                namespaces.join(t, f"/proc/{init}/ns/{namespaces.TYPES[t][1]}",
                                f"enter the container's {t} namespace")
        if shares_mounts:
            host_mountns.enter_root_of(init)
        pid = libc.fork("fork: only children enter the joined PID namespace")
        if pid == 0:
            try:
                trace.stage("exec")
                libc.setsid("a session of its own, like the container's init")
                if sock is not None:
                    slave = terminal.open_exec_console(sock, proc.console_size)
                    sock.close()
                    terminal.make_controlling(slave)
                stub = sealed_exec.prepare()
                early = flt is not None and (not proc.no_new_privileges or flt.notify)
                in_cwd = enter_cwd(proc.cwd)  # the same order as the init's (init.py)
                if early:
                    load_seccomp(flt, chan, proc.no_new_privileges)
                exe, env = finalize_process(proc, in_userns, in_cwd)
                kproc.close_fds_on_exec(3 + preserve)
                reset_signals()
                if flt is not None and not early:
                    load_seccomp(flt, None, True)
                do_exec(exe, proc.args, env, stub)
            except CommandError as e:
                chan.send(NOEXEC, f"{e.command_code} {e}")
            except MinirunError as e:
                chan.send(ERROR, e)
            except BaseException as e:  # noqa: BLE001
                chan.send(ERROR, _describe(e))
            os._exit(1)
        chan.send(PID, pid)
        code = 0
    except MinirunError as e:
        chan.send(ERROR, e)
    except BaseException as e:  # noqa: BLE001
        chan.send(ERROR, _describe(e))
    os._exit(code)
