"""Volumes: the verbs of Docker's /volumes endpoints, in plain data.

    create(eng, name, driver, labels)   -> Volume                    POST /volumes/create
    list_(eng, filters)                 -> {"Volumes", "Warnings"}   GET /volumes
    inspect(eng, name)                  -> Volume                    GET /volumes/{name}
    remove(eng, name, force)            -> None                      DELETE /volumes/{name}
    prune(eng, all, filters)            -> {"VolumesDeleted", "SpaceReclaimed"}   POST /volumes/prune

A Volume is Docker's: {"Name", "Driver", "Mountpoint", "CreatedAt", "Labels", "Scope",
"Options"}. Errors: NotFound (no such volume), Conflict (a container uses it), InvalidArgument
(a bad name, driver or filter).
"""

from __future__ import annotations

from .. import events as journal
from ..lifecycle import Engine
from ..volumes import InvalidVolume, NoSuchVolume, Volume, VolumeInUse

LIST_FILTERS = ("dangling", "name", "label")


def create(eng: Engine, name: str | None = None, driver: str = "local",
           labels: dict[str, str] | None = None) -> dict:
    """The volume `name` (a random 64-hex name if None), made now unless it exists: Docker
    returns an existing volume of that name as it is. InvalidArgument for a bad name or a
    driver other than local."""
    if driver != "local":
        raise InvalidVolume(f"volume driver {driver!r}: only local exists")
    v, made = eng.volumes.create(name, labels or {})
    if made:
        journal.record(eng.root, "volume", "create", v.Name, {"driver": "local"})
    return v.inspect()


def list_(eng: Engine, filters: dict[str, list[str]] | None = None) -> dict:
    """Every volume (sorted by name) matching every filter: dangling=true|false (no container
    uses it), name= (a substring), label=k or k=v. InvalidArgument for another filter."""
    vs = eng.volumes.all()
    for k, values in (filters or {}).items():
        if k not in LIST_FILTERS:
            raise InvalidVolume(f"invalid filter '{k}': dangling, name or label")
        for val in values:
            vs = [v for v in vs if _matches(eng, v, k, val)]
    return {"Volumes": [v.inspect() for v in vs], "Warnings": []}


def _matches(eng: Engine, v: Volume, k: str, val: str) -> bool:
    if k == "dangling":
        return (not eng.users_of_volume(v.Name)) == (val in ("1", "true"))
    if k == "name":
        return val in v.Name
    lk, eq, lv = val.partition("=")
    return lk in v.Labels and (not eq or v.Labels[lk] == lv)


def inspect(eng: Engine, name: str) -> dict:
    """Docker's Volume. NotFound if there is no such volume."""
    return eng.volumes.get(name).inspect()


def remove(eng: Engine, name: str, force: bool = False) -> None:
    """Remove a volume and its content. Conflict while a container (running or not) uses it;
    NotFound if there is none, unless `force`."""
    users = eng.users_of_volume(name)
    if users:
        raise VolumeInUse(f"remove {name}: volume is in use - [{', '.join(c.id for c in users)}]")
    try:
        eng.volumes.remove(name)
    except NoSuchVolume:
        if not force:
            raise
        return
    journal.record(eng.root, "volume", "destroy", name, {"driver": "local"})


def prune(eng: Engine, all: bool = False) -> dict:  # noqa: A002 - Docker's name
    """Remove the anonymous volumes no container uses (named ones too with `all`), as Docker
    23+ does."""
    gone = []
    for v in eng.volumes.all():
        if (v.Anonymous or all) and not eng.users_of_volume(v.Name):
            eng.volumes.remove(v.Name)
            gone.append(v.Name)
    return {"VolumesDeleted": gone, "SpaceReclaimed": 0}


__all__ = ["create", "list_", "inspect", "remove", "prune"]
