"""The Dockerfile parser and ShellLex expansion, against BuildKit's behaviour and test tables."""

from __future__ import annotations

import pytest

from minirun.errors import MinirunError
from minirun.image.dockerfile.dockerfile import (
    DockerfileError,
    Instruction,
    fields,
    go_duration,
    healthcheck,
    key_values,
    parse,
    parse_onbuild,
    split_copy,
    stage,
)
from minirun.image.dockerfile.shellwords import expand, expand_words


def one(line: str, prefix: str = "FROM scratch\n") -> Instruction:
    """The last instruction of `prefix + line`."""
    return parse(prefix + line).instructions[-1]


def error(text: str, filename: str = "Dockerfile") -> str:
    with pytest.raises(DockerfileError) as info:
        parse(text, filename)
    return str(info.value)


# --- directives ----------------------------------------------------------------------------------


def test_escape_directive_backtick_continues_lines():
    df = parse("# escape=`\nFROM scratch\nRUN dir c:\\ `\n    && echo ok\n")
    assert df.escape == "`"
    assert df.directives == {"escape": "`"}
    run = df.instructions[1]
    assert run.args == ["dir c:\\     && echo ok"]
    assert run.line == 3


def test_backslash_is_literal_under_backtick_escape():
    df = parse("# escape=`\nFROM scratch\nRUN echo \\\nRUN two\n")
    assert [i.args for i in df.instructions[1:]] == [["echo \\"], ["two"]]


def test_directives_are_case_insensitive_and_spaced():
    df = parse("#  ESCAPE = `\n# Syntax=docker/dockerfile:1\n#check=skip=all\nFROM scratch\n")
    assert df.directives == {"escape": "`", "syntax": "docker/dockerfile:1", "check": "skip=all"}
    assert df.escape == "`"


def test_unknown_directive_is_a_comment_and_ends_directives():
    df = parse("# unknowndirective=value\n# escape=`\nFROM scratch\nRUN a \\\n b\n")
    assert df.directives == {}
    assert df.escape == "\\"
    assert df.instructions[1].args == ["a  b"]


def test_directive_after_a_comment_is_a_comment():
    df = parse("# a comment\n# escape=`\nFROM scratch\n")
    assert df.escape == "\\" and df.directives == {}


def test_directive_after_a_blank_line_is_a_comment():
    df = parse("\n# escape=`\nFROM scratch\n")
    assert df.escape == "\\"


def test_directive_after_an_instruction_is_a_comment():
    df = parse("FROM scratch\n# escape=`\nRUN a \\\n b\n")
    assert df.escape == "\\"
    assert df.instructions[1].args == ["a  b"]


def test_repeated_directive_is_an_error_naming_its_line():
    assert error("# escape=`\n# escape=\\\nFROM scratch\n") == (
        "Dockerfile:2: only one escape parser directive can be used")


def test_bad_escape_token():
    assert error("# escape=x\nFROM scratch\n") == (
        "Dockerfile:1: invalid escape token 'x' does not match ` or \\")


def test_bom_is_stripped():
    assert parse("\ufeff# escape=`\nFROM scratch\n").escape == "`"


# --- lines ---------------------------------------------------------------------------------------


def test_comments_and_blank_lines_inside_a_continuation():
    text = "FROM scratch\nRUN apt-get update \\\n  # install\n\n   \n  && apt-get install -y x\n"
    run = parse(text).instructions[1]
    assert run.args == ["apt-get update   && apt-get install -y x"]
    assert run.original == "RUN apt-get update   && apt-get install -y x"
    assert run.line == 2


def test_trailing_whitespace_after_continuation():
    assert one("RUN a \\  \t\n b\n").args == ["a  b"]


def test_escaped_escape_is_not_a_continuation():
    df = parse("FROM scratch\nRUN echo a\\\\\nRUN b\n")
    assert [i.args for i in df.instructions[1:]] == [["echo a\\\\"], ["b"]]


def test_empty_continuation_lines_at_end_of_file():
    assert one("RUN echo hi \\\n\n\n").args == ["echo hi"]
    assert one("RUN echo hi \\").args == ["echo hi"]


def test_line_numbers_follow_the_file():
    df = parse("# c\n\nFROM scratch\n\n# c\nRUN a \\\n  b\nUSER x\n")
    assert [(i.cmd, i.line) for i in df.instructions] == [("FROM", 3), ("RUN", 6), ("USER", 8)]


def test_crlf_and_leading_whitespace():
    df = parse("FROM scratch\r\n   RUN a \\\r\n b\r\n")
    assert df.instructions[1].args == ["a  b"]


def test_instruction_names_are_case_insensitive():
    df = parse("from scratch\nrun echo\nCopy a b\n")
    assert [i.cmd for i in df.instructions] == ["FROM", "RUN", "COPY"]


def test_comment_after_leading_whitespace():
    assert len(parse("FROM scratch\n    # RUN nothing\n").instructions) == 1


# --- forms ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("line, args, is_json", [
    ('RUN ["echo", "hi"]', ["echo", "hi"], True),
    ("RUN echo hi", ["echo hi"], False),
    ("RUN [echo, hi]", ["[echo, hi]"], False),  # not JSON: silently shell form
    ('CMD ["a", "b"', ['["a", "b"'], False),
    ("CMD []", [], True),
    ('ENTRYPOINT   [ "x" ]  ', ["x"], True),
    ('ENTRYPOINT ["x"] extra', ['["x"] extra'], False),
    ("CMD ['single']", ["['single']"], False),
    ('SHELL ["/bin/bash", "-c"]', ["/bin/bash", "-c"], True),
    ('COPY ["a b", "/c d/"]', ["a b", "/c d/"], True),
    ("COPY a b /c/", ["a b /c/"], False),
    ('ADD ["x", "y"]', ["x", "y"], True),
    ('VOLUME ["/data", "/logs"]', ["/data", "/logs"], True),
    ("VOLUME /data /logs", ["/data /logs"], False),
    ('USER ["x"]', ['["x"]'], False),  # USER has no JSON form
    ("WORKDIR /a b", ["/a b"], False),
    ("CMD [NaN]", ["[NaN]"], False),
    ("RUN", [], False),
    ("CMD", [], False),
])
def test_exec_and_shell_forms(line, args, is_json):
    instr = one(line)
    assert (instr.args, instr.json) == (args, is_json)


def test_json_array_of_non_strings_is_an_error():
    assert error('FROM scratch\nCMD ["a", 1]\n') == (
        "Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only")


def test_fields_split_shell_form_at_blanks():
    assert fields(one("EXPOSE 80  443/udp\t8080")) == ["80", "443/udp", "8080"]
    assert fields(one('VOLUME ["/a b"]')) == ["/a b"]


def test_original_and_line():
    instr = one("RUN --network=none  echo \\\n  hi")
    assert instr.original == "RUN --network=none  echo   hi"
    assert instr.args == ["echo   hi"]


# --- flags ---------------------------------------------------------------------------------------


def test_flags():
    instr = one('COPY --from=build --chown="app user" --chmod=0644 a b')
    assert instr.flags == {"from": "build", "chown": "app user", "chmod": "0644"}
    assert instr.args == ["a b"]


@pytest.mark.parametrize("flag, value", [("--link", "true"), ("--link=true", "true"),
                                         ("--link=FALSE", "false")])
def test_boolean_flags(flag, value):
    assert one(f"COPY {flag} a b").flags == {"link": value}


def test_repeated_flag_keeps_a_list():
    instr = one("RUN --mount=type=cache,target=/a --mount=type=tmpfs,target=/b make")
    assert instr.flags == {"mount": ["type=cache,target=/a", "type=tmpfs,target=/b"]}
    assert instr.flag_list("mount") == ["type=cache,target=/a", "type=tmpfs,target=/b"]
    assert one("RUN --mount=type=cache,target=/a x").flag_list("mount") == ["type=cache,target=/a"]
    assert instr.flag_list("network") == []


def test_flags_end_at_first_argument_and_at_double_dash():
    assert one("RUN echo --not-a-flag").flags == {}
    assert one("RUN echo --not-a-flag").args == ["echo --not-a-flag"]
    instr = one("RUN --network=none -- --weird")
    assert instr.flags == {"network": "none"} and instr.args == ["--weird"]


def test_from_platform_flag():
    df = parse("FROM --platform=$BUILDPLATFORM golang:1.22 AS build\n")
    assert df.instructions[0].flags == {"platform": "$BUILDPLATFORM"}
    assert stage(df.instructions[0]) == ("golang:1.22", "build")


@pytest.mark.parametrize("line, problem", [
    ("COPY --bogus=1 a b", "unknown flag: --bogus"),
    ("MAINTAINER --boo joe@example.com", "unknown flag: --boo"),
    ("ENV --x=1 A=b", "unknown flag: --x"),
    ("COPY --from=a --from=b x y", "duplicate flag specified: --from"),
    ("COPY --from x y", "missing a value on flag: --from"),
    ("COPY --link= x y", "missing a value on flag: --link"),
    ("COPY --link=maybe x y", "expecting boolean value for flag --link, not: maybe"),
    ("RUN --mount make --network=none", None),  # "--mount" with no value
])
def test_flag_errors_name_the_line(line, problem):
    message = error("FROM scratch\n" + line + "\n")
    assert message.startswith("Dockerfile:2: ")
    if problem:
        assert message == "Dockerfile:2: " + problem


def test_arg_and_stopsignal_flags_are_not_checked():
    assert one("ARG --whatever X").flags == {"whatever": "true"}


# --- errors naming the line ----------------------------------------------------------------------


@pytest.mark.parametrize("line, problem", [
    ("RUNN echo", "unknown instruction: RUNN"),
    ("foo bar", "unknown instruction: foo"),
    ("MAINTAINER", "MAINTAINER requires exactly one argument"),
    ("WORKDIR", "WORKDIR requires exactly one argument"),
    ("USER", "USER requires exactly one argument"),
    ("STOPSIGNAL", "STOPSIGNAL requires exactly one argument"),
    ("ENV", "ENV requires at least one argument"),
    ("LABEL", "LABEL requires at least one argument"),
    ("ARG", "ARG requires at least one argument"),
    ("ONBUILD", "ONBUILD requires at least one argument"),
    ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
    ("EXPOSE", "EXPOSE requires at least one argument"),
    ("VOLUME", "VOLUME requires at least one argument"),
    ('VOLUME [""]', "VOLUME specified can not be an empty string"),
    ("COPY", "COPY requires at least two arguments, but only one was provided. "
             "Destination could not be determined"),
    ("ADD onlyone", "ADD requires at least two arguments, but only one was provided. "
                    "Destination could not be determined"),
    ('COPY ["onlyone"]', "COPY requires at least two arguments, but only one was provided. "
                         "Destination could not be determined"),
    ("FROM", "FROM requires either one or three arguments"),
    ("FROM a b", "FROM requires either one or three arguments"),
    ("FROM a to b", "FROM requires either one or three arguments"),
    ("FROM a AS 1st", 'invalid name for build stage: "1st", name can\'t start with a number '
                      "or contain symbols"),
    ("SHELL", "SHELL requires at least one argument"),
    ("SHELL []", "SHELL requires at least one argument"),
    ("SHELL /bin/bash -c", "SHELL requires the arguments to be in JSON form"),
    ("ENV A", "ENV must have two arguments"),
    ("ENV A=1 B", 'Syntax error - can\'t find = in "B". Must be of the form: name=value'),
    ("LABEL =x", "LABEL names can not be blank"),
    ("ARG =x", "ARG names can not be blank"),
    ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("ONBUILD FROM alpine", "FROM isn't allowed as an ONBUILD trigger"),
    ("ONBUILD maintainer me", "MAINTAINER isn't allowed as an ONBUILD trigger"),
    ('ONBUILD CMD ["a", 1]',
     "when using JSON array syntax, arrays must be comprised of strings only"),
    ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
    ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
    ("HEALTHCHECK CMD []", "Missing command after HEALTHCHECK CMD"),
    ("HEALTHCHECK RUN x", 'Unknown type "RUN" in HEALTHCHECK (try CMD)'),
    ("HEALTHCHECK --interval=5 CMD x", 'time: missing unit in duration "5"'),
    ("HEALTHCHECK --timeout=fast CMD x", 'time: invalid duration "fast"'),
    ("HEALTHCHECK --interval=1us CMD x", 'Interval "interval" cannot be less than 1ms'),
    ("HEALTHCHECK --retries=x CMD x", 'strconv.ParseInt: parsing "x": invalid syntax'),
    ("HEALTHCHECK --retries=-1 CMD x", "--retries cannot be negative (-1)"),
    ("HEALTHCHECK --bogus=1 CMD x", "unknown flag: --bogus"),
])
def test_instruction_errors_name_the_line(line, problem):
    assert error("FROM scratch\n\n" + line + "\n") == "Dockerfile:3: " + problem


def test_error_names_the_start_line_of_a_continued_instruction_and_the_file():
    assert error("FROM scratch\nCOPY \\\n  onlyone\n", "build/Dockerfile.dev") == (
        "build/Dockerfile.dev:2: COPY requires at least two arguments, but only one was "
        "provided. Destination could not be determined")


def test_instruction_before_from():
    assert error("ENV A=1\nFROM scratch\n") == "Dockerfile:1: no build stage in current context"


def test_empty_files():
    assert error("") == "Dockerfile:1: file with no instructions"
    assert error("# only\n# comments\n\n") == "Dockerfile:3: file with no instructions"
    assert error("ARG A=1\n").endswith(":1: dockerfile contains no stages to build")


def test_error_is_a_one_line_minirun_error_with_exit_code_1():
    with pytest.raises(MinirunError) as info:
        parse("FROM scratch\nRUNN x\n")
    assert info.value.exit_code == 1
    assert "\n" not in str(info.value)


def test_maintainer_is_accepted():
    assert one("MAINTAINER Jane <jane@example.com>").args == ["Jane <jane@example.com>"]


# --- stages and meta args ------------------------------------------------------------------------


def test_meta_args_before_first_from():
    df = parse("ARG VERSION=1\nARG BASE\nFROM alpine:$VERSION\nARG VERSION\nRUN x\n")
    assert [i.args for i in df.meta_args] == [["VERSION=1"], ["BASE"]]
    assert [i.cmd for i in df.instructions] == ["FROM", "ARG", "RUN"]


def test_stage():
    assert stage(one("FROM alpine", "")) == ("alpine", None)
    assert stage(one("FROM alpine as Build.1-x_y", "")) == ("alpine", "build.1-x_y")


# --- ONBUILD -------------------------------------------------------------------------------------


def test_onbuild_wraps_an_instruction():
    instr = one('onbuild  COPY --chown=1 ["a", "b"]')
    assert (instr.cmd, instr.args) == ("ONBUILD", ['COPY --chown=1 ["a", "b"]'])
    inner = parse_onbuild(instr)
    assert inner.cmd == "COPY" and inner.json and inner.args == ["a", "b"]
    assert inner.flags == {"chown": "1"}
    assert inner.line == instr.line


def test_onbuild_trigger_is_checked_when_unwrapped():
    instr = one("ONBUILD RUNN x")  # Docker accepts it until the child image builds
    with pytest.raises(DockerfileError) as info:
        parse_onbuild(instr)
    assert str(info.value) == "Dockerfile:2: unknown instruction: RUNN"


# --- HEALTHCHECK ---------------------------------------------------------------------------------


def test_healthcheck_none():
    assert healthcheck(one("HEALTHCHECK NONE")) == {"Test": ["NONE"]}
    assert healthcheck(one("HEALTHCHECK none")) == {"Test": ["NONE"]}


def test_healthcheck_shell_form_with_all_options():
    instr = one("HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=2s "
                "--start-interval=1.5s --retries=4 CMD curl -f http://localhost/ || exit 1")
    assert healthcheck(instr) == {
        "Test": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
        "Interval": 90_000_000_000,
        "Timeout": 500_000_000,
        "StartPeriod": 2_000_000_000,
        "StartInterval": 1_500_000_000,
        "Retries": 4,
    }


def test_healthcheck_exec_form_only_given_keys():
    assert healthcheck(one('HEALTHCHECK --retries=2 CMD ["/bin/check", "-v"]')) == {
        "Test": ["CMD", "/bin/check", "-v"], "Retries": 2}
    assert healthcheck(one("HEALTHCHECK cmd true")) == {"Test": ["CMD-SHELL", "true"]}
    # zero durations and zero retries are left out, as the image config omits them
    assert healthcheck(one("HEALTHCHECK --interval=0s --retries=0 CMD true")) == {
        "Test": ["CMD-SHELL", "true"]}


def test_healthcheck_of_another_instruction_is_none():
    assert healthcheck(one("RUN x")) is None


@pytest.mark.parametrize("text, ns", [
    ("30s", 30_000_000_000), ("1m30s", 90_000_000_000), ("500ms", 500_000_000),
    ("1h", 3_600_000_000_000), ("1.5s", 1_500_000_000), (".5s", 500_000_000),
    ("2us", 2_000), ("2\u00b5s", 2_000), ("10ns", 10), ("0", 0), ("-1s", -1_000_000_000),
    ("+2m", 120_000_000_000), ("1h2m3s4ms", 3_723_004_000_000),
])
def test_go_duration(text, ns):
    assert go_duration(text) == ns


@pytest.mark.parametrize("text", ["", "s", "5", "1x", "1.s.", "--1s", ".s"])
def test_go_duration_errors(text):
    with pytest.raises(ValueError):
        go_duration(text)


# --- COPY / ADD ----------------------------------------------------------------------------------


def test_split_copy():
    assert split_copy(one("COPY a b  c/ /dest/")) == (["a", "b", "c/"], "/dest/")
    assert split_copy(one('ADD ["with space", "/d"]')) == (["with space"], "/d")
    assert split_copy(one("COPY --from=build /out /app")) == (["/out"], "/app")


# --- ENV / LABEL / ARG ---------------------------------------------------------------------------


@pytest.mark.parametrize("line, env, pairs", [
    ('ENV A=1 B="two words"', None, [("A", "1"), ("B", "two words")]),
    ("ENV A 1 2 3", None, [("A", "1 2 3")]),
    ('ENV A "quoted  value" tail', None, [("A", "quoted  value tail")]),
    ("ENV A=a\\ b C='$x'", None, [("A", "a b"), ("C", "$x")]),
    ('LABEL "k"="v"', None, [("k", "v")]),
    ('LABEL a.b="x y" c=', None, [("a.b", "x y"), ("c", "")]),
    ("LABEL version=$V", {"V": "2"}, [("version", "2")]),
    ("ENV PATH=$PATH:/opt/bin", {"PATH": "/bin"}, [("PATH", "/bin:/opt/bin")]),
    ("ENV PATH=$PATH:/opt/bin", None, [("PATH", "$PATH:/opt/bin")]),  # no env: left as written
    ("ENV X=${UNSET:-d}", {}, [("X", "d")]),
    ("ENV X=\\$HOME", {"HOME": "/root"}, [("X", "$HOME")]),
    ("ARG X", None, [("X", None)]),
    ("ARG X=", None, [("X", "")]),
    ("ARG X=$Y", {"Y": "why"}, [("X", "why")]),
    ("ARG X=$Y", {}, [("X", "")]),
    ('ARG A=1 B C="3 4"', None, [("A", "1"), ("B", None), ("C", "3 4")]),
])
def test_key_values(line, env, pairs):
    assert key_values(one(line), env) == pairs


def test_key_values_with_backtick_escape():
    df = parse("# escape=`\nFROM scratch\nENV A=a` b P=c:\\dir\n")
    assert key_values(df.instructions[1], {}, df.escape) == [("A", "a b"), ("P", "c:\\dir")]


def test_key_values_expansion_error_names_the_line():
    with pytest.raises(DockerfileError) as info:
        key_values(one("ENV A=${B"), {})
    assert str(info.value).startswith('Dockerfile:2: failed to process "${B"')


# --- expansion (ShellLex) ------------------------------------------------------------------------

ENV = {"SET": "value", "EMPTY": "", "PWD": "/home", "A": "a", "SPACED": "x  y"}


@pytest.mark.parametrize("word, expected", [
    ("${SET:-d}", "value"), ("${EMPTY:-d}", "d"), ("${UNSET:-d}", "d"),
    ("${SET-d}", "value"), ("${EMPTY-d}", ""), ("${UNSET-d}", "d"),
    ("${SET:+x}", "x"), ("${EMPTY:+x}", ""), ("${UNSET:+x}", ""),
    ("${SET+x}", "x"), ("${EMPTY+x}", "x"), ("${UNSET+x}", ""),
    ("${SET?}", "value"), ("${EMPTY?}", ""),
    ("\\$A", "$A"), ("'$A'", "$A"), ('"$A"', "a"), ("${A}b", "ab"), ("$A/b", "a/b"),
    ("$Ab", ""), ("$UNSET", ""), ("${UNSET}", ""),
    ("he'll'o", "hello"), ("he\\'llo", "he'llo"), ('"a\\"b"', 'a"b'), ('"a\\b"', "a\\b"),
    ('"a\\$b"', "a$b"), ("'a\\b'", "a\\b"), ("abc\\", "abc"), ("abc\\\\", "abc\\"),
    ("a\\nb", "anb"), ("$", "$"), ("$.", "$."), ("he$1x", "hex"), ("$$", ""),
    ("${PWD}", "/home"), ("'${PWD}'", "${PWD}"), ('"${PWD}"', "/home"),
    ("${UNSET:-$PWD}", "/home"), ('${UNSET:-"a b"}', "a b"), ("${SET:+${PWD}x}", "/homex"),
    ("$SPACED", "x  y"), ('"$SPACED"', "x  y"),
    ("${PWD#/}", "home"), ("${PWD%me}", "/ho"), ("${PWD/home/work}", "/work"),
    ("${PWD##*/}", "home"), ("${A//a/bb}", "bb"),
])
def test_expand(word, expected):
    assert expand(word, ENV) == expected


@pytest.mark.parametrize("word, problem", [
    ("${A", "syntax error: missing '}'"),
    ("${A:-x", "syntax error: missing '}'"),
    ("${", "syntax error: missing '}'"),
    ("${}", "syntax error: bad substitution"),
    ("${:x}", "syntax error: bad substitution"),
    ("${A=x}", "unsupported modifier (=) in substitution"),
    ("${A:#x}", "unsupported modifier (:#) in substitution"),
    ("'abc", "unexpected end of statement while looking for matching single-quote"),
    ('"abc', "unexpected end of statement while looking for matching double-quote"),
    ("${UNSET?}", "UNSET: is not allowed to be unset"),
    ("${EMPTY:?must be set}", "EMPTY: must be set"),
])
def test_expand_errors(word, problem):
    with pytest.raises(DockerfileError) as info:
        expand(word, ENV)
    assert str(info.value).endswith(": " + problem)
    assert info.value.line is None
    located = info.value.at("Dockerfile", 9)
    assert str(located).startswith("Dockerfile:9: failed to process ")


def test_expand_with_backtick_escape():
    assert expand("c:\\dir`$A", ENV, "`") == "c:\\dir$A"
    assert expand('"`"q`""', ENV, "`") == '"q"'


@pytest.mark.parametrize("text, words", [
    ("80 443", ["80", "443"]),
    ("$PORTS", ["80", "443/udp"]),
    ('"$PORTS" 8080', ["80 443/udp", "8080"]),
    ("'a b' c", ["a b", "c"]),
    ("  a\tb  ", ["a", "b"]),
    ('a "" b', ["a", "b"]),
    ("x$EMPTY y", ["x", "y"]),
    ("a\\ b", ["a b"]),
])
def test_expand_words(text, words):
    assert expand_words(text, {"PORTS": "80 443/udp", "EMPTY": ""}) == words
