"""Lab 04: copy-on-write (docs/labs/04-copy-on-write.md).

Exercise: a container lab04-cow in which /etc/passwd gained a line for a user lab04 and /bin/vi
was deleted; its upper dir's path saved in /tmp/lab04/upperdir; the image layer unchanged.
"""

from __future__ import annotations

import os
import stat

from labs import container, minirun, remove_containers, remove_paths

TITLE = "copy-on-write: the overlay's upper and lower dirs"
VERIFIED = ("lab04-cow's upper dir holds the copied-up /etc/passwd (with lab04) and a whiteout "
            "for /bin/vi, `minirun diff` shows both, /tmp/lab04/upperdir names it, and the "
            "image layer is unchanged")

HOW = "minirun run -d --name lab04-cow busybox sleep 600"
EDIT = ("minirun exec lab04-cow sh -c "
        "'echo lab04:x:4004:4004:lab04:/tmp:/bin/sh >> /etc/passwd'")
DELETE = "minirun exec lab04-cow rm /bin/vi"
SAVE = ("mkdir -p /tmp/lab04 && minirun inspect --format '{{.GraphDriver.Data.UpperDir}}' "
        "lab04-cow > /tmp/lab04/upperdir")
SOLUTION = "\n".join([HOW, EDIT, DELETE, SAVE]) + "\n"


def _has_lab04(path: str) -> bool:
    try:
        with open(path, errors="replace") as f:
            return any(line.startswith("lab04:") for line in f)
    except OSError:
        return False


def check() -> list[str]:
    c = container("lab04-cow")
    if c is None:
        return [f"there is no container named lab04-cow: create it with `{HOW}`"]
    data = c.get("GraphDriver", {}).get("Data", {})
    upper = data.get("UpperDir", "")
    lowers = [d for d in data.get("LowerDir", "").split(":") if d]
    problems: list[str] = []
    for low in lowers:
        if _has_lab04(os.path.join(low, "etc/passwd")):
            problems.append(f"the image layer {low} has a lab04 line in etc/passwd: you edited "
                            f"the image, not the container (every container of busybox now sees "
                            f"it): remove that line from {low}/etc/passwd, and make the change "
                            f"from inside: `{EDIT}`")
        if not os.path.lexists(os.path.join(low, "bin/vi")):
            problems.append(f"bin/vi is gone from the image layer {low}: you deleted it in the "
                            f"image, not in the container; tell the facilitator (reload the "
                            f"image), then `{DELETE}`")
    if not _has_lab04(os.path.join(upper, "etc/passwd")):
        problems.append(f"lab04-cow's upper dir has no copied-up etc/passwd with a lab04 line: "
                        f"change the file inside the container: `{EDIT}`")
    try:
        st = os.lstat(os.path.join(upper, "bin/vi"))
        whiteout = stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    except OSError:
        whiteout = False
    if not whiteout:
        problems.append(f"lab04-cow's upper dir has no whiteout for bin/vi (a 0:0 character "
                        f"device): delete it inside the container: `{DELETE}`")
    if not problems:
        r = minirun("diff", "lab04-cow")
        lines = set(r.stdout.splitlines())
        for want in ("C /etc/passwd", "D /bin/vi"):
            if want not in lines:
                problems.append(f"`minirun diff lab04-cow` does not list `{want}` (it says: "
                                f"{r.stdout.strip() or r.stderr.strip()!r}): tell the facilitator")
    try:
        saved = open("/tmp/lab04/upperdir").read().strip()
    except OSError:
        saved = None
    if saved is None:
        problems.append(f"/tmp/lab04/upperdir is missing: save lab04-cow's upper dir path there "
                        f"(find it in `minirun inspect lab04-cow` or in /proc/self/mountinfo): "
                        f"`{SAVE}`")
    elif os.path.realpath(saved) != os.path.realpath(upper):
        problems.append(f"/tmp/lab04/upperdir says {saved!r}, but lab04-cow's upper dir is "
                        f"another one: look at GraphDriver.Data in `minirun inspect lab04-cow`")
    return problems


def cleanup() -> None:
    remove_containers("lab04-")
    remove_paths("/tmp/lab04")
