"""Merging several Compose files (`-f a.yaml -f b.yaml`, or compose.yaml + compose.override.yaml).

The loader first brings each file to the canonical form (lists of `KEY=VAL` become mappings,
short port and volume syntax becomes long syntax...), so the rules below only ever see one shape
per key. They are Compose's (https://docs.docker.com/reference/compose-file/merge/, as
compose-go's override package implements them):

* a mapping merges key by key, recursively; a scalar is replaced by the later file's;
* a sequence is appended to; where an entry has an identity (below) a later entry with the same
  identity replaces the earlier one, in the earlier one's place;
* `command`, `entrypoint` and `healthcheck.test` are replaced whole, never appended to;
* a null in the later file leaves the earlier value as it was;
* `logging` merges only when both files name the same driver (or one names none), otherwise
  the later file's replaces it; `ulimits.NAME` is replaced whole;
* `networks.*.ipam.config` entries merge by `subnet`.

The identities ("unique resources"): a port by host IP, published port, target and protocol; a
volume by target; a secret or config by target (its default target when none is given); an
env_file entry by path; a device by its container path; and in `cap_add`, `dns`, `expose`,
`profiles`, `tmpfs`, ... a string by itself (by its key, for `KEY=VAL` strings). Compose applies
them within one file as well, so `merge_all` applies them to the result even for a single file.
"""

from __future__ import annotations

from collections.abc import Callable

Path = tuple[str, ...]
Identity = Callable[[object], object]


def _by_value(entry: object) -> object:
    """A string entry's identity: the key of `KEY=VAL`, or the string itself."""
    return entry.split("=", 1)[0] if isinstance(entry, str) else repr(entry)


def _port(entry: object) -> object:
    if not isinstance(entry, dict):
        return repr(entry)
    return (entry.get("host_ip", ""), entry.get("published", ""), entry.get("target"),
            entry.get("protocol", "tcp"))


def _target(entry: object) -> object:
    return entry.get("target") if isinstance(entry, dict) else repr(entry)


def _mount_target(default_dir: str) -> Identity:
    """A secret's or config's identity: its target, or where it is mounted by default."""
    def identity(entry: object) -> object:
        if not isinstance(entry, dict):
            return repr(entry)
        return entry.get("target") or f"{default_dir}/{entry.get('source')}"
    return identity


def _env_file(entry: object) -> object:
    return entry.get("path") if isinstance(entry, dict) else repr(entry)


def _device(entry: object) -> object:
    """A device's identity is its path in the container: "SRC:DST[:PERMS]" or {"target": DST}."""
    if isinstance(entry, dict):
        return entry.get("target")
    parts = str(entry).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _whole(entry: object) -> object:
    return repr(entry)


# Sequences whose entries have an identity (compose-go's override/uncity.go).
UNIQUE: dict[Path, Identity] = {
    ("services", "*", "ports"): _port,
    ("services", "*", "volumes"): _target,
    ("services", "*", "secrets"): _mount_target("/run/secrets"),
    ("services", "*", "configs"): _mount_target(""),
    ("services", "*", "env_file"): _env_file,
    ("services", "*", "devices"): _device,
    ("services", "*", "extra_hosts"): _whole,
    **{("services", "*", key): _by_value
       for key in ("cap_add", "cap_drop", "dns", "dns_opt", "dns_search", "expose", "links",
                   "profiles", "tmpfs")},
    ("services", "*", "networks", "*", "aliases"): _by_value,
    ("services", "*", "networks", "*", "link_local_ips"): _by_value,
    ("services", "*", "build", "tags"): _by_value,
    ("services", "*", "build", "platforms"): _by_value,
}

# Values the later file replaces whole.
REPLACE: set[Path] = {
    ("services", "*", "command"),
    ("services", "*", "entrypoint"),
    ("services", "*", "healthcheck", "test"),
    ("services", "*", "ulimits", "*"),
}


def _matches(path: Path, pattern: Path) -> bool:
    return len(path) == len(pattern) and all(p in ("*", k) for k, p in zip(path, pattern))


def _lookup(table: dict, path: Path):
    """The value of the first pattern of `table` that `path` matches, or None."""
    return next((value for pattern, value in table.items() if _matches(path, pattern)), None)


def _merge_logging(base: dict, override: dict, path: Path) -> dict:
    """Options merge only for the same driver: another driver's options would not apply."""
    if "driver" in base and "driver" in override and base["driver"] != override["driver"]:
        return override
    return _merge_mappings(base, override, path)


def _merge_ipam_config(base: list, override: list, path: Path) -> list:
    """IPAM pools are identified by their subnet: one for the same subnet merges into it."""
    merged = [dict(pool) if isinstance(pool, dict) else pool for pool in base]
    for pool in override:
        same = next((m for m in merged if isinstance(m, dict) and isinstance(pool, dict)
                     and m.get("subnet") == pool.get("subnet")), None)
        if same is None:
            merged.append(pool)
        else:
            same.update(pool)
    return merged


SPECIAL: dict[Path, Callable[[object, object, Path], object]] = {
    ("services", "*", "logging"): _merge_logging,
    ("networks", "*", "ipam", "config"): _merge_ipam_config,
}


def _merge_mappings(base: dict, override: dict, path: Path) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = merge(base[key], value, path + (key,)) if key in base else value
    return merged


def merge(base: object, override: object, path: Path = ()) -> object:
    """`override` (from a later file) merged over `base`, both in canonical form; `path` is the
    key path of the pair, from the top of the model, for the rules above."""
    if override is None:
        return base
    if any(_matches(path, pattern) for pattern in REPLACE):
        return override
    special = _lookup(SPECIAL, path)
    if special is not None and type(base) is type(override):
        return special(base, override, path)
    if isinstance(base, dict) and isinstance(override, dict):
        return _merge_mappings(base, override, path)
    if isinstance(base, list) and isinstance(override, list):
        return base + override
    return override


def unique(entries: list, identity: Identity) -> list:
    """`entries` with a later entry replacing an earlier one of the same identity, in place."""
    result: list = []
    where: dict[object, int] = {}
    for entry in entries:
        key = identity(entry)
        if key in where:
            result[where[key]] = entry
        else:
            where[key] = len(result)
            result.append(entry)
    return result


def enforce_unicity(value: object, path: Path = ()) -> object:
    """`value` with the sequences of UNIQUE rid of duplicate identities, recursively."""
    if isinstance(value, dict):
        return {k: enforce_unicity(v, path + (k,)) for k, v in value.items()}
    if isinstance(value, list):
        identity = _lookup(UNIQUE, path)
        return unique(value, identity) if identity else value
    return value


def merge_all(models: list[dict]) -> dict:
    """The canonical models of several files merged in order, later files over earlier ones."""
    merged: dict = {}
    for model in models:
        merged = merge(merged, model)
    return enforce_unicity(merged)
