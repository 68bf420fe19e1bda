"""`@dataclass` and `field` for the runtime's hot path: a drop-in subset of `dataclasses`.

Why not the standard module? `import dataclasses` costs ~12 ms here (it imports inspect, re,
enum ...), and every `minirun-oci` call is a fresh process racing runc's ~13 ms per call. This
subset (annotated fields, defaults, default_factory, __init__/__repr__/__eq__, asdict) is all
minirun uses; replacing the import with `from dataclasses import dataclass, field, asdict`
gives the same behaviour.

The boundary (with fastjson.py, its JSON twin): this module is for the records the short-lived
processes load: the `minirun-oci` verbs (minirun/oci/, minirun/kernel/), the per-container
monitor (engine/monitor.py and the engine modules on its start path, such as
engine/records.py), and what the everyday commands read (`ps`, `images`, `network ls`,
`volume ls`: the container, image, network and volume records; each must answer in <= 35 ms,
of which `import dataclasses` and compiling a class's methods would be ~1.5 ms).
tests/unit/test_startup_budget.py checks that the first two never load `dataclasses`.
Everything else (compose, the API service, image references, builds, the rest of the engine)
uses the standard `dataclasses`, which has frozen records, `replace`, `fields` and the rest.
"""

from __future__ import annotations

_MISSING = object()


class Field:
    __slots__ = ("default", "default_factory")

    def __init__(self, default: object = _MISSING, default_factory: object = _MISSING) -> None:
        self.default = default
        self.default_factory = default_factory


def field(*, default: object = _MISSING, default_factory: object = _MISSING) -> Field:
    return Field(default, default_factory)


def dataclass(cls: type) -> type:
    """Generate __init__, __repr__ and __eq__ from the class's annotated fields, in order."""
    # name -> (default, factory), in definition order. Each base's own tuple already holds its
    # ancestors' fields: a dict keeps each name once, and a redefined field keeps its place
    # with the new default, as in dataclasses.
    fields: dict[str, tuple[object, object]] = {}
    for base in reversed(cls.__mro__[1:]):
        for name, default, factory in base.__dict__.get("__record_fields__", ()):
            fields[name] = (default, factory)
    for name in cls.__dict__.get("__annotations__", {}):
        value = cls.__dict__.get(name, _MISSING)
        if isinstance(value, Field):
            default, factory = value.default, value.default_factory
            if default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, default)
        else:
            default, factory = value, _MISSING
        fields[name] = (default, factory)

    cls.__init__ = _make_init(cls.__name__, fields)
    cls.__record_fields__ = tuple((n, d, f) for n, (d, f) in fields.items())
    names = tuple(fields)

    def __repr__(self: object) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{type(self).__name__}({inner})"

    def __eq__(self: object, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in names)

    cls.__repr__ = __repr__
    cls.__eq__ = __eq__
    cls.__hash__ = None
    return cls


def _make_init(cls_name: str, fields: dict[str, tuple[object, object]]):
    """One generic __init__ over the field table. dataclasses writes each class's __init__ as
    source and compiles it: ~80 us per class, ~1.1 ms for the records a `minirun-oci create`
    loads; this one costs a few microseconds more per call, and a call makes a few dozen."""
    names = tuple(fields)
    count = len(names)

    def __init__(self: object, *args: object, **kwargs: object) -> None:
        if len(args) > count:
            raise TypeError(f"{cls_name}.__init__() takes {count + 1} positional arguments "
                            f"but {len(args) + 1} were given")
        for name, value in zip(names, args):
            setattr(self, name, value)
        for name in names[len(args):]:
            if name in kwargs:
                value = kwargs.pop(name)
            else:
                default, factory = fields[name]
                if default is not _MISSING:
                    value = default
                elif factory is not _MISSING:
                    value = factory()
                else:
                    raise TypeError(f"{cls_name}.__init__() missing 1 required argument: "
                                    f"'{name}'")
            setattr(self, name, value)
        for name in kwargs:
            if name in fields:
                raise TypeError(f"{cls_name}.__init__() got multiple values for argument "
                                f"'{name}'")
            raise TypeError(f"{cls_name}.__init__() got an unexpected keyword argument "
                            f"'{name}'")

    return __init__


def field_names(cls: type) -> tuple[str, ...]:
    """The record's field names, in order (dataclasses.fields(cls), names only)."""
    return tuple(f[0] for f in cls.__record_fields__)


def asdict(obj: object) -> object:
    """Records -> dicts, recursively (lists, tuples and dicts too)."""
    fields = getattr(type(obj), "__record_fields__", None)
    if fields is not None:
        return {f[0]: asdict(getattr(obj, f[0])) for f in fields}
    if isinstance(obj, (list, tuple)):
        return type(obj)(asdict(v) for v in obj)
    if isinstance(obj, dict):
        return {k: asdict(v) for k, v in obj.items()}
    return obj
