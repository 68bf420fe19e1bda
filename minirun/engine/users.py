"""`-u user[:group]` and the image's USER, resolved the way Docker resolves them.

Names are looked up in the *image's* /etc/passwd and /etc/group, never the host's: uid 1000 is
whoever the image says it is. Forms: `name`, `uid`, `name:group`, `uid:gid`, `name:gid`,
`uid:group`. A numeric uid that is not in passwd is fine (gid 0 then); an unknown name is an
error. The user's supplementary groups are every group in /etc/group that lists the name, as
`initgroups(3)` would do. The files are opened with openat2 RESOLVE_IN_ROOT at the rootfs
(kernel/resolve.py) and read by that fd: an image whose /etc is a symlink to the host's /etc
still reads its own, and no symlink swapped in after a check can redirect the read (the path
is walked once, by the kernel, inside the root: CVE-2018-15664's check-then-use race).
"""

from __future__ import annotations

import errno
import os
from ..record import dataclass, field

from ..errors import MinirunError
from ..kernel.resolve import open_in


class UserError(MinirunError):
    exit_code = 125


@dataclass
class ResolvedUser:
    uid: int
    gid: int
    additional_gids: list[int] = field(default_factory=list)
    home: str = "/"


def _entries(rootfs: str | int, name: str) -> list[list[str]]:
    try:
        # O_NONBLOCK: a fifo planted as /etc/passwd must not hang the engine
        fd = open_in(rootfs, f"/etc/{name}", os.O_RDONLY | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return []
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        return []  # a symlink loop: no file
    try:
        with os.fdopen(fd, errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip() and not
                    line.startswith("#")]
    except IsADirectoryError:  # (read(2) of a directory)
        return []


def resolve(rootfs: str | int, spec: str) -> ResolvedUser:
    """Resolve a USER / -u value against the image's rootfs."""
    spec = (spec or "").strip()
    if not spec:
        spec = "0"
    user, _, group = spec.partition(":")
    passwd = [e for e in _entries(rootfs, "passwd") if len(e) >= 4]
    groups = [e for e in _entries(rootfs, "group") if len(e) >= 3]

    entry = None
    if user.isdigit():
        uid = int(user)
        entry = next((e for e in passwd if e[2] == user), None)
    else:
        entry = next((e for e in passwd if e[0] == user), None)
        if entry is None:
            raise UserError(f"unable to find user {user}: no matching entries in passwd file")
        uid = int(entry[2])
    gid = int(entry[3]) if entry is not None and entry[3].isdigit() else 0
    home = entry[5] if entry is not None and len(entry) > 5 and entry[5] else "/"
    name = entry[0] if entry is not None else None

    if group:
        if group.isdigit():
            gid = int(group)
        else:
            g = next((e for e in groups if e[0] == group), None)
            if g is None:
                raise UserError(f"unable to find group {group}: no matching entries in group file")
            gid = int(g[2])
    extra: list[int] = []
    if name is not None and not group:
        for g in groups:
            members = g[3].split(",") if len(g) > 3 and g[3] else []
            if name in members and g[2].isdigit() and int(g[2]) != gid:
                extra.append(int(g[2]))
    return ResolvedUser(uid, gid, sorted(set(extra)), home)


def exists_in(rootfs: str | int, path: str) -> bool:
    """Whether `path` names an entry inside the rootfs (a dangling symlink in the last place
    counts, as lexists would): looked up with RESOLVE_IN_ROOT, never on the host."""
    try:
        os.close(open_in(rootfs, path, os.O_PATH | os.O_NOFOLLOW))
        return True
    except OSError:
        return False


def group_add(rootfs: str | int, gids: list[int], extra: list[str]) -> list[int]:
    """--group-add: more supplementary groups for the process, after the user's own. A name
    is looked up in the image's /etc/group (an unknown one is an error, as runc's
    GetAdditionalGroups says it); a number is taken as it is, listed there or not."""
    groups = [e for e in _entries(rootfs, "group") if len(e) >= 3]
    out = list(gids)
    for g in extra:
        g = str(g).strip()
        if g.isdigit():
            gid = int(g)
        else:
            entry = next((e for e in groups if e[0] == g), None)
            if entry is None or not entry[2].isdigit():
                raise UserError(f"Unable to find group {g}: no matching entries in group file")
            gid = int(entry[2])
        if gid not in out:
            out.append(gid)
    return out
