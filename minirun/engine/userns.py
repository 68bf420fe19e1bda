"""User namespaces for `run`: root inside is an unprivileged uid outside.

Three modes, as Docker and Podman name them:
  --userns=host (the default)   no user namespace: root in the container is the host's root
  --userns-remap=default|USER[:GROUP]
                                Docker's remap: every such container maps its 0..N-1 onto the
                                first range USER owns in /etc/subuid and /etc/subgid. `default`
                                is the user "minirun"; its ranges are added to those files when
                                missing (Docker creates its "dockremap" user the same way).
  --userns=auto[:size=N]        Podman's auto: each container gets a range of its own (65536
                                ids unless size says otherwise) from minirun's ranges, so two
                                containers never share a uid on the host. The first block of
                                the range stays reserved for the remap mode.

/etc/subuid lines read "NAME:FIRST:COUNT" (subuid(5)). The container's image and volumes
are owned by the host's root; the container sees them through idmapped mounts (kernel/idmap.py)
so that its root owns them, and where the kernel cannot, through a copy with shifted owners.
"""

from __future__ import annotations

import os
import pwd
import sys

from ..errors import MinirunError
from ..kernel.idmap import shift

SUBUID, SUBGID = "/etc/subuid", "/etc/subgid"
DEFAULT_USER = "minirun"
BLOCK = 65536  # the ids a container gets by default: all 16-bit uids, as Docker and Podman do
DEFAULT_RANGE = 32 * BLOCK  # what `default` adds for minirun: the remap block and 31 for auto


class UsernsError(MinirunError):
    exit_code = 125


def parse(userns: str, remap: str) -> tuple[str, str, int]:
    """--userns and --userns-remap -> (mode, user[:group], size), mode in host|remap|auto."""
    userns = (userns or "").strip()
    if userns == "host":  # as with Docker's daemon-wide remap: host opts one container out
        return "host", "", 0
    if remap:
        if userns:
            raise UsernsError(f"--userns {userns} and --userns-remap: pick one")
        return "remap", DEFAULT_USER if remap == "default" else remap, 0
    if not userns:
        return "host", "", 0
    if userns == "auto" or userns.startswith("auto:"):
        size = BLOCK
        for opt in userns[5:].split(",") if ":" in userns else []:
            k, _, v = opt.partition("=")
            if k != "size" or not v.isdigit() or not 0 < int(v) <= BLOCK * 16:
                raise UsernsError(f"--userns {userns}: only auto:size=N is understood "
                                  f"(1 <= N <= {BLOCK * 16})")
            size = int(v)
        return "auto", DEFAULT_USER, size
    raise UsernsError(f"--userns {userns}: use host, auto or auto:size=N (or --userns-remap)")


def ranges(path: str, name: str | None) -> list[tuple[int, int]]:
    """NAME's subordinate ranges in /etc/subuid or /etc/subgid, in file order (every user's
    when name is None)."""
    names = None
    if name is not None:
        names = {name}
        try:
            names.add(str(pwd.getpwnam(name).pw_uid))  # the file may name the user by uid
        except KeyError:
            pass
    out = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and (names is None or parts[0] in names) and \
                        parts[1].isdigit() and parts[2].isdigit():
                    out.append((int(parts[1]), int(parts[2])))
    except FileNotFoundError:
        pass
    return out


def ensure_default_ranges() -> None:
    """Give the user "minirun" subordinate ids if it has none: above every range in use."""
    for path in (SUBUID, SUBGID):
        if ranges(path, DEFAULT_USER):
            continue
        top = max([s + c for s, c in ranges(path, None)] + [100000])
        start = -(-top // BLOCK) * BLOCK  # the next multiple of 65536
        line = f"{DEFAULT_USER}:{start}:{DEFAULT_RANGE}\n"
        with open(path, "a") as f:
            f.write(line)
        sys.stderr.write(f"minirun: added {line.strip()} to {path} (subordinate ids for "
                         "user-namespaced containers)\n")


def maps_for(mode: str, user: str, size: int, taken: list[tuple[int, int]]
             ) -> tuple[list[list[int]], list[list[int]]]:
    """The container's uid and gid maps, as [[inside, outside, count]] lists.

    `taken`: the host uid ranges (first, count) other containers' auto maps already hold.
    """
    if user == DEFAULT_USER:
        ensure_default_ranges()
    name, _, group = user.partition(":")
    uids, gids = ranges(SUBUID, name), ranges(SUBGID, group or name)
    for what, found, path in (("uid", uids, SUBUID), ("gid", gids, SUBGID)):
        if not found:
            raise UsernsError(f"no subordinate {what}s for {group if what == 'gid' and group else name} "
                              f"in {path}: add a line such as "
                              f"\"{group if what == 'gid' and group else name}:100000:65536\" "
                              "(usermod --add-subuids/--add-subgids does it)")
    (u0, ucount), (g0, gcount) = uids[0], gids[0]
    if mode == "remap":
        n = min(ucount, gcount)
        if name == DEFAULT_USER:
            n = min(n, BLOCK)  # the rest of minirun's range is for --userns=auto's blocks
        return [[0, u0, n]], [[0, g0, n]]
    # auto: the first free block after the reserved one
    step = -(-size // BLOCK) * BLOCK
    k = 1
    while (k + 1) * step <= min(ucount, gcount):
        start = u0 + k * step
        if not any(start < s + c and s < start + size for s, c in taken):
            return [[0, start, size]], [[0, g0 + k * step, size]]
        k += 1
    raise UsernsError(f"--userns=auto: no free block of {size} ids left in {name}'s range "
                      f"({u0}:{ucount} in {SUBUID}); remove containers or add a larger range")


def check_reachable(path: str, maps: dict) -> None:
    """Every directory above `path` must be searchable by the container's root (an ordinary
    host uid now), or its init cannot even reach its rootfs or a volume to mount it."""
    uid, gid = host_root(maps)
    d = os.path.abspath(path)
    while True:
        d = os.path.dirname(d)
        st = os.stat(d)
        ok = st.st_mode & 0o001 or (st.st_uid == uid and st.st_mode & 0o100) or \
            (st.st_gid == gid and st.st_mode & 0o010)
        if not ok:
            raise UsernsError(f"{d} (mode {st.st_mode & 0o7777:o}) is not searchable by the "
                              f"container's root, host uid {uid}: chmod o+x {d}, or keep "
                              "minirun's --root and volumes under searchable directories")
        if d == "/":
            return


def host_root(maps: dict | None) -> tuple[int, int]:
    """The host uid and gid of the container's root (0, 0 without a user namespace)."""
    if not maps:
        return 0, 0
    return shift(0, maps["UidMap"]), shift(0, maps["GidMap"])


def oci_maps(m: list) -> list[dict]:
    return [{"containerID": i, "hostID": o, "size": n} for i, o, n in m]


def enabled() -> bool:
    """Can this host make user namespaces at all? (a sysctl can forbid them)"""
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            return int(f.read()) > 0
    except (OSError, ValueError):
        return os.path.exists("/proc/self/ns/user")
