"""The kernel layer: one small module per kernel concept.

Every system call these modules make goes through `libc`, the single ctypes seam that
`--trace` narrates and that unit tests replace with a recorder (`libc.install(Recorder())`).

    libc.py           the seam: every system call, narrated by --trace, errno -> KernelError
    namespaces.py     what each namespace isolates; unshare, setns, id maps
    rootfs.py         the container's filesystem: mounts, /dev, pivot_root, masked paths
    devices.py        a device node as the kernel layer makes it (mknod or bind)
    host_mountns.py   a container without a mount namespace: its rootfs in the runtime's
    idmap.py          idmapped mounts: the same files with shifted owners (or a chowned copy)
    cgroups/          cgroup v1 and v2 drivers: create, limit, join, freeze, kill, stats
    capabilities.py   the five capability sets, the bounding set, last_cap
    process.py        rlimits, the user switch, fds at exec, start time, the --init reaper
    sysctl.py         which namespace owns a sysctl; writing one under /proc/sys
    sealed_exec.py    the last execve() through a sealed memfd stub (CVE-2019-5736)
    seccomp.py        linux.seccomp compiled to a BPF program
    syscall_table.py  syscall numbers per architecture, for the seccomp compiler
    terminal.py       pseudo-terminals, the console socket, the foreground proxy
    netlink.py        rtnetlink: links, addresses and routes without ip(8)
    loopback.py       `lo` up in a new network namespace, with one ioctl
    nfgen.py          the nftables ruleset generation, and our tables read back
    resolve.py        paths inside a root, looked up by the kernel (openat2 RESOLVE_IN_ROOT)
    capnames.py       capability names and their bit numbers (linux/capability.h)

Records are `minirun.record`'s `@dataclass`, not the standard module's: the runtime's
short-lived verbs and the monitor import this layer (start-up budget).
"""
