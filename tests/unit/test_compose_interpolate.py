"""Compose interpolation: ${VAR}, defaults, alternatives, required values, $$ and nesting."""

from __future__ import annotations

import pytest

from minirun.compose.interpolate import InterpolationError, interpolate, substitute
from minirun.errors import InvalidArgument

ENV = {"SET": "value", "EMPTY": "", "B": "bee"}


@pytest.mark.parametrize("template, expected", [
    ("plain", "plain"),
    ("$SET", "value"),
    ("${SET}", "value"),
    ("a${SET}b$SET.c", "avalueb" "value.c"),
    ("$UNSET", ""),
    ("${UNSET}", ""),
    # :- is used when unset or empty, - only when unset
    ("${UNSET:-d}", "d"), ("${EMPTY:-d}", "d"), ("${SET:-d}", "value"),
    ("${UNSET-d}", "d"), ("${EMPTY-d}", ""), ("${SET-d}", "value"),
    # :+ is used when set and not empty, + when set
    ("${UNSET:+alt}", ""), ("${EMPTY:+alt}", ""), ("${SET:+alt}", "alt"),
    ("${UNSET+alt}", ""), ("${EMPTY+alt}", "alt"), ("${SET+alt}", "alt"),
    ("${SET:?must}", "value"), ("${EMPTY?must}", ""),
    # $$ is a literal $; a $ before anything but a name or { is kept
    ("$$SET", "$SET"), ("$${SET}", "${SET}"), ("cost: 5$", "cost: 5$"), ("$1 $-", "$1 $-"),
    # defaults nest, and may hold other text and operators
    ("${UNSET:-${B}}", "bee"), ("${UNSET:-${ALSO:-deep}}", "deep"),
    ("${UNSET:-x-${B}-y}", "x-bee-y"), ("${UNSET:-a:b}", "a:b"),
    ("${lower_case:-ok}", "ok"),
])
def test_substitute(template, expected):
    assert substitute(template, ENV) == expected


def test_unset_variables_are_recorded_for_the_warning():
    unset: set[str] = set()
    substitute("$A ${B} ${C:-x} ${D-x} ${SET}", {"SET": "1", "B": "2"}, unset)
    assert unset == {"A"}


@pytest.mark.parametrize("template, message", [
    ("${UNSET:?please set it}", "required variable UNSET is missing a value: please set it"),
    ("${EMPTY:?no empty}", "required variable EMPTY is missing a value: no empty"),
    ("${UNSET?}", "required variable UNSET is missing a value"),
    ("${UNSET:?need ${B}}", "required variable UNSET is missing a value: need bee"),
])
def test_required_variables(template, message):
    with pytest.raises(InterpolationError) as err:
        substitute(template, ENV)
    assert err.value.message == message
    assert isinstance(err.value, InvalidArgument)


@pytest.mark.parametrize("template, hint", [
    ("${SET", "is not closed"),
    ("a ${UNSET:-${B}", "is not closed"),
    ("${}", "does not start with a variable name"),
    ("${1ABC}", "does not start with a variable name"),
    ("${SET:x}", "unknown operator"),
    ("${SET SPACE}", "unknown operator"),
])
def test_invalid_templates(template, hint):
    with pytest.raises(InterpolationError, match="invalid interpolation format") as err:
        substitute(template, ENV)
    assert hint in err.value.message


def test_interpolate_walks_values_not_keys():
    tree = {"$SET": ["${SET}", 1, True, None, {"k": "$B"}]}
    assert interpolate(tree, ENV) == {"$SET": ["value", 1, True, None, {"k": "bee"}]}


def test_interpolate_errors_carry_the_key_path():
    with pytest.raises(InterpolationError) as err:
        interpolate({"services": {"web": {"ports": ["ok", "${PORT:?set PORT}"]}}}, {})
    assert err.value.path == ("services", "web", "ports", 1)
    assert err.value.message == "required variable PORT is missing a value: set PORT"
