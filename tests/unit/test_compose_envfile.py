"""Env files as Compose reads them: KEY=VAL, export, quotes, escapes, comments, KEY alone."""

from __future__ import annotations

import pytest

from minirun.compose import envfile
from minirun.errors import InvalidArgument


def test_plain_lines_comments_and_blanks():
    text = "# a comment\n\nA=1\nB = two words  \n  C=3 # inline comment\nD=no#comment\nE=\n"
    assert envfile.parse(text) == {"A": "1", "B": "two words", "C": "3", "D": "no#comment", "E": ""}


def test_export_prefix_and_yaml_style():
    assert envfile.parse("export A=1\nexport\tB=2\nC: 3\n") == {"A": "1", "B": "2", "C": "3"}


def test_double_quotes_expand_escapes_and_span_lines():
    text = 'A="line1\\nline2\\t\\"q\\" \\\\ \\$HOME"\nB="multi\nline" # comment\nC="#not a comment"\n'
    assert envfile.parse(text) == {"A": 'line1\nline2\t"q" \\ $HOME', "B": "multi\nline",
                                   "C": "#not a comment"}


def test_single_quotes_are_literal():
    text = "A='no \\n escape $HOME'\nB='it\\'s'\n"
    assert envfile.parse(text, {"HOME": "/h"}) == {"A": "no \\n escape $HOME", "B": "it's"}


def test_key_alone_takes_the_lookup_value_or_nothing():
    assert envfile.parse("SET\nUNSET\n", {"SET": "from env"}) == {"SET": "from env"}


def test_interpolation_sees_the_lookup_first_then_earlier_keys():
    text = "A=file\nB=${A}-$C\nC=late\nD=\"${MISSING:-dflt}\"\n"
    assert envfile.parse(text, {"A": "env"}) == {"A": "file", "B": "env-", "C": "late", "D": "dflt"}
    assert envfile.parse("A=1\nB=$A\n") == {"A": "1", "B": "1"}


def test_utf8_byte_order_mark_is_ignored():
    assert envfile.parse("\ufeffA=1\n") == {"A": "1"}


@pytest.mark.parametrize("text, message", [
    ("A=1\nMY KEY=2\n", ".env:2: key 'MY KEY' cannot contain a space"),
    ("A=1\n\nB=\"open\n", ".env:3: unterminated quoted value \"open"),
    ("A$=1\n", ".env:1: unexpected character '$' in variable name 'A$=1'"),
    ("A=${B:?needed}\n", ".env:1: required variable B is missing a value: needed"),
])
def test_errors_name_the_file_and_line(text, message):
    with pytest.raises(InvalidArgument) as err:
        envfile.parse(text, source=".env")
    assert str(err.value) == message


def test_read_a_file(tmp_path):
    path = tmp_path / "app.env"
    path.write_text("A=1\n")
    assert envfile.read(str(path)) == {"A": "1"}
    with pytest.raises(InvalidArgument, match="env file .*missing.env: No such file"):
        envfile.read(str(tmp_path / "missing.env"))
