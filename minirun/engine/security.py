"""The front end's hardening: what Docker turns on for every container, and the flags that change it.

By default a container gets (bundle.py writes them into config.json):
  capabilities   Docker's 14 (bundle.DEFAULT_CAPS); --cap-add / --cap-drop, ALL included
  seccomp        Docker's default allow-list (seccomp_profile.py), resolved for those
                 capabilities; --security-opt seccomp=unconfined | seccomp=PROFILE.json
  masked paths   /proc/kcore, /proc/keys, /sys/firmware ... (bundle.MASKED), read-only
                 /proc/sys, /proc/sysrq-trigger ...; --security-opt systempaths=unconfined
  no_new_privs   off, as in Docker; --security-opt no-new-privileges
--privileged lifts all of these at once: every capability we hold, no seccomp, no masked or
read-only paths, /sys writable, every host device node and the devices cgroup open.

There is no AppArmor or SELinux here: `apparmor=unconfined` and `label=disable` are accepted
(that is already the case), other LSM options are refused rather than silently ignored.
"""

from __future__ import annotations

import os
import stat

from ..errors import MinirunError


class SecurityOptError(MinirunError):
    exit_code = 125


def parse(opts: list[str]) -> list[str]:
    """--security-opt values -> HostConfig.SecurityOpt, as Docker stores them.

    A profile file is read now and kept by content ("seccomp=<json>"), as the docker CLI does:
    the container keeps its policy even if the file changes or goes.
    """
    out: list[str] = []
    for raw in opts:
        key, sep, value = raw.partition("=")
        if not sep:
            key, sep, value = raw.partition(":")  # the old no-new-privileges:true form
        key = key.strip()
        if key == "no-new-privileges":
            if value in ("", "true"):
                out.append("no-new-privileges")
            elif value != "false":
                raise SecurityOptError(f"--security-opt {raw}: no-new-privileges takes true "
                                       "or false")
        elif key == "seccomp" and value:
            if value == "unconfined":
                out.append("seccomp=unconfined")
            else:
                try:
                    with open(value) as f:
                        text = f.read()
                except OSError as e:
                    raise SecurityOptError(f"--security-opt seccomp={value}: cannot read the "
                                           f"profile: {e.strerror}") from None
                from .seccomp_profile import load_profile  # (start-up: `create`'s only)

                load_profile(text, [], source=value)  # a bad file fails now, naming the field
                out.append("seccomp=" + text)
        elif key == "systempaths" and value == "unconfined":
            out.append("systempaths=unconfined")
        elif (key == "apparmor" and value == "unconfined") or (key == "label" and value == "disable"):
            out.append(raw)  # no LSM on this host: unconfined is what every container is
        elif key in ("apparmor", "label"):
            raise SecurityOptError(f"--security-opt {raw}: minirun has no AppArmor or SELinux "
                                   "support; only apparmor=unconfined and label=disable apply")
        else:
            raise SecurityOptError(f"--security-opt {raw}: unknown option (use no-new-privileges, "
                                   "seccomp=unconfined, seccomp=PROFILE.json or "
                                   "systempaths=unconfined)")
    return out


def no_new_privileges(hc: dict) -> bool:
    return bool(hc.get("NoNewPrivileges")) or "no-new-privileges" in (hc.get("SecurityOpt") or [])


def masks_paths(hc: dict) -> bool:
    return not hc.get("Privileged") and \
        "systempaths=unconfined" not in (hc.get("SecurityOpt") or [])


def seccomp_for(hc: dict, caps: list[str]) -> dict | None:
    """linux.seccomp for a container with these final capabilities, or None (unconfined)."""
    from . import seccomp_profile  # (start-up: `create`'s only)

    if hc.get("Privileged"):
        return None  # Docker: --privileged runs without a filter
    chosen = None
    for o in hc.get("SecurityOpt") or []:
        if o.startswith("seccomp="):
            chosen = o[len("seccomp="):]
    if chosen == "unconfined":
        return None
    if chosen is None:
        return seccomp_profile.default_profile(caps)
    return seccomp_profile.load_profile(chosen, caps, source="--security-opt seccomp")


# Under /dev, what --privileged does not copy (runc's HostDevices rule): per-instance
# filesystems the container gets its own of, and the host's console.
_SKIP_DIRS = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}


def host_devices(top: str = "/dev") -> list[dict]:
    """Every character and block device under /dev, as linux.devices entries (--privileged)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if path == "/dev/console":
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode):
                kind = "c"
            elif stat.S_ISBLK(st.st_mode):
                kind = "b"
            else:
                continue
            out.append({"path": path, "type": kind, "major": os.major(st.st_rdev),
                        "minor": os.minor(st.st_rdev), "fileMode": stat.S_IMODE(st.st_mode),
                        "uid": st.st_uid, "gid": st.st_gid})
    return out
