"""`-v` and `--mount` specs, parsed into Docker's Mounts entries (what `inspect` shows).

  -v /ctr                       an anonymous volume
  -v name:/ctr[:ro|rw]          a named volume (made on first use)
  -v /host:/ctr[:ro|rw]         a bind mount (the host path must exist: Docker's -v would
                                create it, --mount refuses; minirun refuses both ways, since a
                                typo would otherwise leave a new root-owned directory behind)
  --mount type=bind|volume|tmpfs,source=...,target=...[,readonly][,tmpfs-size=..,tmpfs-mode=..]
"""

from __future__ import annotations

import os

from ..errors import InvalidArgument


class MountSpecError(InvalidArgument):
    exit_code = 125


_MODES = {"ro", "rw", "z", "Z", "nocopy", "shared", "rshared", "slave", "rslave", "private",
          "rprivate", "consistent", "cached", "delegated"}


def parse_volume(spec: str) -> dict:
    parts = spec.split(":")
    if len(parts) == 1:
        return {"Type": "volume", "Name": "", "Destination": parts[0], "Mode": "", "RW": True,
                "Anonymous": True}
    if len(parts) > 3 or not parts[0] or not parts[1]:
        raise MountSpecError(f"invalid volume specification: '{spec}'")
    src, dest = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else ""
    opts = [o for o in mode.split(",") if o]
    bad = [o for o in opts if o not in _MODES]
    if bad:
        raise MountSpecError(f"invalid mode: {bad[0]} (in volume specification '{spec}')")
    rw = "ro" not in opts
    if src.startswith("/") or src.startswith("."):
        return {"Type": "bind", "Source": os.path.abspath(src), "Destination": dest,
                "Mode": mode, "RW": rw, "Propagation": "rprivate"}
    return {"Type": "volume", "Name": src, "Destination": dest, "Mode": mode, "RW": rw}


def parse_mount(spec: str) -> dict:
    kv: dict[str, str] = {}
    flags: set[str] = set()
    for item in spec.split(","):
        if not item:
            continue
        k, eq, v = item.partition("=")
        k = k.strip().lower()
        if eq:
            kv[k] = v
        else:
            flags.add(k)
    kind = kv.get("type", "volume")
    target = kv.get("target") or kv.get("destination") or kv.get("dst")
    if not target:
        raise MountSpecError(f"invalid argument \"{spec}\" for \"--mount\" flag: target is required")
    source = kv.get("source") or kv.get("src") or ""
    ro = "readonly" in flags or "ro" in flags or kv.get("readonly", kv.get("ro", "false")) in (
        "1", "true")
    if kind == "bind":
        if not source:
            raise MountSpecError(f"invalid argument \"{spec}\" for \"--mount\" flag: a bind "
                                 "mount needs source=")
        return {"Type": "bind", "Source": os.path.abspath(source), "Destination": target,
                "Mode": "", "RW": not ro, "Propagation": kv.get("bind-propagation", "rprivate")}
    if kind == "volume":
        return {"Type": "volume", "Name": source, "Destination": target, "Mode": "",
                "RW": not ro, "Anonymous": not source}
    if kind == "tmpfs":
        if source:
            raise MountSpecError("invalid --mount: a tmpfs mount takes no source")
        opts = []
        if "tmpfs-size" in kv:
            opts.append(f"size={kv['tmpfs-size']}")
        if "tmpfs-mode" in kv:
            opts.append(f"mode={kv['tmpfs-mode']}")
        return {"Type": "tmpfs", "Source": "", "Destination": target, "Mode": "", "RW": not ro,
                "Options": opts + (["ro"] if ro else [])}
    raise MountSpecError(f"invalid mount type {kind!r}: bind, volume or tmpfs")
