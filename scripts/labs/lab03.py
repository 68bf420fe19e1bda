"""Lab 03: the root filesystem (docs/labs/03-rootfs.md).

Exercise: a container lab03-ro with a read-only root, a writable tmpfs at /scratch, and in it
/scratch/mountinfo: the container's own mount table, as seen from inside.
"""

from __future__ import annotations

import os

from labs import mountinfo, remove_containers, running_pid

TITLE = "the root filesystem: pivot_root, /proc, masked paths, /dev"
VERIFIED = ("lab03-ro's / is read-only, /scratch is a tmpfs, and /scratch/mountinfo is its own "
            "mount table (with /proc/keys masked)")

HOW = "minirun run -d --name lab03-ro --read-only --tmpfs /scratch busybox sleep 600"
SAVE = "minirun exec lab03-ro sh -c 'cat /proc/self/mountinfo > /scratch/mountinfo'"
SOLUTION = HOW + "\n" + SAVE + "\n"


def check() -> list[str]:
    pid, problems = running_pid("lab03-ro", HOW)
    if pid is None:
        return problems
    again = f"`minirun rm -f lab03-ro`, then `{HOW}`"
    table = mountinfo(pid)
    root = [m for m in table if m["point"] == "/"]
    if not root:
        problems.append(f"cannot read lab03-ro's mount table (/proc/{pid}/mountinfo)")
        return problems
    if "ro" not in root[-1]["options"]:
        problems.append(f"lab03-ro's / is mounted {root[-1]['options'][0]}, not ro: start it with "
                        f"--read-only: {again}")
    scratch = [m for m in table if m["point"] == "/scratch"]
    if not scratch:
        problems.append(f"lab03-ro has no mount at /scratch: add --tmpfs /scratch: {again}")
    elif scratch[-1]["fstype"] != "tmpfs":
        problems.append(f"lab03-ro's /scratch is {scratch[-1]['fstype']}, not a tmpfs: use "
                        f"--tmpfs /scratch: {again}")
    saved = f"/proc/{pid}/root/scratch/mountinfo"
    if not os.path.isfile(saved):
        problems.append(f"/scratch/mountinfo is missing in lab03-ro: save its mount table there "
                        f"from inside: `{SAVE}`")
    else:
        text = open(saved, errors="replace").read()
        points = [ln.split(" - ")[0].split()[4] for ln in text.splitlines()
                  if len(ln.split(" - ")[0].split()) >= 5]
        if "/proc/keys" not in points or "/scratch" not in points:
            problems.append(f"/scratch/mountinfo in lab03-ro is not the container's own mount "
                            f"table (no /proc/keys or /scratch line): `{SAVE}`")
    return problems


def cleanup() -> None:
    remove_containers("lab03-")
