"""minirun.record: the subset of dataclasses minirun uses, behaving like dataclasses."""

from __future__ import annotations

import dataclasses

import pytest

from minirun.record import asdict, dataclass, field


@dataclass
class Point:
    x: int
    y: int = 0
    tags: list = field(default_factory=list)


@dataclass
class Box:
    name: str
    corner: Point = field(default_factory=lambda: Point(1, 2))
    points: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)


def test_defaults_and_required_fields():
    p = Point(3)
    assert (p.x, p.y, p.tags) == (3, 0, [])
    with pytest.raises(TypeError):
        Point()


def test_default_factory_gives_a_fresh_object_per_instance():
    a, b = Point(1), Point(2)
    a.tags.append("x")
    assert b.tags == [] and a.tags is not b.tags


def test_positional_and_keyword_init():
    assert Point(1, 2, ["t"]) == Point(y=2, tags=["t"], x=1)
    with pytest.raises(TypeError):
        Point(1, z=3)


def test_field_with_plain_default_is_a_class_attribute():
    assert Point.y == 0
    assert not hasattr(Point, "tags")  # factory fields leave no shared class attribute


def test_repr_lists_fields_in_order():
    assert repr(Point(1, 2)) == "Point(x=1, y=2, tags=[])"
    assert repr(Box("b", points=[Point(1)])) == \
        "Box(name='b', corner=Point(x=1, y=2, tags=[]), points=[Point(x=1, y=0, tags=[])], meta={})"


def _std_point():
    @dataclasses.dataclass
    class _StdPoint:
        x: int
        y: int = 0
        tags: list = dataclasses.field(default_factory=list)
    return _StdPoint


def test_eq_compares_fields_and_type():
    assert Point(1, 2) == Point(1, 2)
    assert Point(1, 2) != Point(1, 3)
    assert Point(1) != (1, 0, [])

    @dataclass
    class Other:
        x: int
        y: int = 0
        tags: list = field(default_factory=list)

    assert Point(1) != Other(1)


def test_records_are_unhashable_like_dataclasses():
    with pytest.raises(TypeError):
        hash(Point(1))


def test_asdict_recurses_into_records_lists_and_dicts():
    b = Box("b", points=[Point(1), Point(2, 3)], meta={"p": Point(4)})
    assert asdict(b) == {"name": "b", "corner": {"x": 1, "y": 2, "tags": []},
                         "points": [{"x": 1, "y": 0, "tags": []}, {"x": 2, "y": 3, "tags": []}],
                         "meta": {"p": {"x": 4, "y": 0, "tags": []}}}
    assert asdict((Point(1),)) == ({"x": 1, "y": 0, "tags": []},)


def test_asdict_copies_containers():
    p = Point(1, tags=["a"])
    d = asdict(p)
    d["tags"].append("b")
    assert p.tags == ["a"]


@dataclass
class Base:
    a: int
    b: int = 1


@dataclass
class Child(Base):
    c: int = 2
    b: int = 10  # redefined: keeps its place, takes the new default


@dataclass
class GrandChild(Child):
    d: list = field(default_factory=list)


def test_inherited_fields_come_first():
    assert Child(0) == Child(a=0, b=10, c=2)
    assert repr(Child(0)) == "Child(a=0, b=10, c=2)"


def test_field_order_matches_dataclasses_on_redefinition():
    @dataclasses.dataclass
    class SBase:
        a: int
        b: int = 1

    @dataclasses.dataclass
    class SChild(SBase):
        c: int = 2
        b: int = 10

    assert [f.name for f in dataclasses.fields(SChild)] == list(asdict(Child(0)))


def test_three_levels_of_inheritance():
    g = GrandChild(5, 6, 7)
    assert (g.a, g.b, g.c, g.d) == (5, 6, 7, [])
    assert asdict(g) == {"a": 5, "b": 6, "c": 7, "d": []}
    assert GrandChild(1).d is not GrandChild(1).d


def test_swapping_in_the_standard_module_gives_the_same_results():
    std = _std_point()
    assert dataclasses.asdict(std(1, 2, ["t"])) == asdict(Point(1, 2, ["t"]))


def test_spec_records_use_this_module():
    from minirun.oci import spec

    assert asdict(spec.Hook("/bin/x")) == {"path": "/bin/x", "args": [], "env": [], "timeout": None}


def test_init_refuses_what_a_dataclass_refuses():
    std = _std_point()
    for bad in (lambda cls: cls(1, 2, [], 4), lambda cls: cls(1, x=2), lambda cls: cls(y=1),
                lambda cls: cls(1, z=3)):
        with pytest.raises(TypeError):
            bad(std)
        with pytest.raises(TypeError):
            bad(Point)
