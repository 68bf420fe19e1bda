"""fastjson must behave like the json module for everything minirun writes and reads."""

from __future__ import annotations

import json

import pytest

from minirun import fastjson

VALUES = [
    None, True, False, 0, -1, 2**64 - 1, -(2**70), 1.5, -0.25, 1e300, 3.141592653589793,
    "", "plain", "quote \" backslash \\ slash /", "tab\tnewline\n\x00\x1f",
    "héllo wörld", "日本語", "emoji \U0001f600", "\u2028\u2029",
    [], {}, [[]], [{}], {"": ""}, [1, "two", 3.0, None, True],
    {"a": {"b": {"c": [1, {"d": []}]}}, "e": {}},
    {"ociVersion": "1.2.0", "process": {"args": ["sh", "-c", "echo hi"], "env": ["A=1"]}},
    list(range(50)),
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_dumps_matches_json(value):
    assert fastjson.dumps(value) == json.dumps(value)
    assert fastjson.dumps(value, compact=True) == json.dumps(value, separators=(",", ":"))


@pytest.mark.parametrize("indent", [1, 2, 4])
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_indent_matches_json(value, indent):
    assert fastjson.dumps(value, indent=indent) == json.dumps(value, indent=indent)


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_round_trip(value):
    text = json.dumps(value)
    assert fastjson.loads(text) == json.loads(text) == value
    assert fastjson.loads(fastjson.dumps(value)) == value


def test_tuples_dump_as_arrays():
    assert fastjson.dumps((1, (2,)), indent=2) == json.dumps((1, (2,)), indent=2)
    assert fastjson.loads(fastjson.dumps((1, 2))) == [1, 2]


def test_non_string_keys_like_json():
    d = {True: 1, False: 2, None: 3, 7: 4, 1.5: 5}
    assert fastjson.dumps(d) == json.dumps(d)
    assert fastjson.dumps(d, indent=2) == json.dumps(d, indent=2)


def test_loads_accepts_bytes_and_surrounding_whitespace():
    assert fastjson.loads(b' \n{"k": "\xc3\xa9"}\r\n\t') == {"k": "é"}
    assert fastjson.loads("  [1]  ") == [1]


def test_loads_nan_and_infinity_like_json():
    v = fastjson.loads("[Infinity, -Infinity, NaN]")
    assert v[:2] == [float("inf"), float("-inf")] and v[2] != v[2]


def test_big_ints_and_floats_keep_their_type():
    assert fastjson.loads("123456789012345678901234567890") == 123456789012345678901234567890
    assert isinstance(fastjson.loads("1.0"), float)
    assert isinstance(fastjson.loads("1"), int)


@pytest.mark.parametrize("text", ["", "   ", "{", "[1,", '{"a" 1}', '{"a": }', "[1] [2]", "{} x",
                                  "nul", "tru", "'single'", '"unterminated', "[1,]", "01",
                                  '{"a": 1,}', '"ctrl \x01"'])
def test_malformed_input_raises_jsonerror(text):
    with pytest.raises(fastjson.JSONError):
        fastjson.loads(text)


def test_jsonerror_is_a_valueerror_and_trailing_data_is_named():
    assert issubclass(fastjson.JSONError, ValueError)
    with pytest.raises(ValueError, match="extra data"):
        fastjson.loads('{"a": 1} {"b": 2}')


def test_unserialisable_object_raises_typeerror():
    with pytest.raises(TypeError, match="not JSON serializable: object"):
        fastjson.dumps({"x": object()})
    with pytest.raises(TypeError):
        fastjson.dumps({"x": object()}, indent=2)
