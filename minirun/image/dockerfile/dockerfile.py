"""The Dockerfile parser: directives, continuations, flags, exec/shell forms and variable expansion.

What Docker does, in the order it does it (moby/buildkit frontend/dockerfile/parser, .../shell and
.../instructions; the classic builder runs the same code):

  1. Parser directives (`# escape=``, `# syntax=...`, `# check=...`) count only at the very top:
     the first line that is not a known directive (an instruction, a plain comment, an unknown
     directive, even a blank line) ends them, and a directive given twice is an error.
  2. Lines are joined: the escape character at the end of a line (trailing blanks allowed)
     continues it; comment lines and blank lines inside a continuation are dropped (Docker warns
     about the blank ones and means to reject them one day; we accept them quietly).
  3. Each joined line is split into the instruction word, the `--name=value` flags in front of
     the arguments, and the arguments, which each instruction reads its own way:
     JSON array (exec form) or plain text (shell form) for RUN, CMD, ENTRYPOINT, SHELL, COPY, ADD,
     VOLUME and HEALTHCHECK CMD: text that is not valid JSON is silently shell form, but a valid
     array of anything other than strings is an error.
  4. Each instruction is checked as `docker build` checks it (argument counts, known flags,
     ONBUILD triggers, HEALTHCHECK durations) and an error names the file and line.

Variables are not expanded here: the builder does that per step, with the ARG and ENV values in
scope then, through `key_values` here and shellwords.py's `expand` and `expand_words`
(Docker's ShellLex).

`Instruction.args` holds the exec-form items, or `[the text as written]` for everything else; the
helpers (`fields`, `split_copy`, `key_values`, `healthcheck`, `stage`) read it the way Docker does.
Heredocs (`RUN <<EOF`, BuildKit only) are not supported.
"""

from __future__ import annotations

import json
import re

from ...base.durations import parse_duration as go_duration  # Go's time.ParseDuration
from ...record import dataclass, field
from .shellwords import GO_SPACE, DockerfileError, Lexer, go_quote

INSTRUCTIONS = frozenset({
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
})
DIRECTIVES = frozenset({"escape", "syntax", "check"})

# Instructions whose arguments may be a JSON array (Docker's parseMaybeJSON / ...ToList).
_JSON_FORMS = frozenset({"RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"})

# The flags each instruction accepts: "bool" (--link, --link=false), "str" (once, needs "="),
# "multi" (may repeat: RUN --mount twice). Instructions absent here accept none, except ARG,
# STOPSIGNAL and HEALTHCHECK NONE, whose flags Docker never checks (_UNCHECKED_FLAGS).
_FLAGS: dict[str, dict[str, str]] = {
    "ADD": {"chown": "str", "chmod": "str", "link": "bool", "keep-git-dir": "bool",
            "checksum": "str", "unpack": "bool", "exclude": "multi"},
    "COPY": {"chown": "str", "chmod": "str", "from": "str", "link": "bool", "parents": "bool",
             "exclude": "multi"},
    "FROM": {"platform": "str"},
    "RUN": {"mount": "multi", "network": "str", "security": "str"},
    "HEALTHCHECK": {"interval": "str", "timeout": "str", "start-period": "str",
                    "start-interval": "str", "retries": "str"},
}
_UNCHECKED_FLAGS = frozenset({"ARG", "STOPSIGNAL"})

_WHITESPACE = re.compile(r"[\t\v\f\r ]+")  # Docker's reWhitespace: splits words, not "\n"
_DIRECTIVE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*")
_STAGE_NAME = re.compile(r"[a-z][a-z0-9_.-]*")
_ONBUILD_PREFIX = re.compile(r"^\s*ONBUILD\s*", re.IGNORECASE)


@dataclass
class Instruction:
    """One instruction, continuations joined, arguments not yet expanded."""

    cmd: str  # upper case: "FROM", "RUN", ...
    args: list[str]  # exec form: the items; otherwise [the text as written] (or [] when empty)
    json: bool  # written in exec (JSON array) form
    flags: dict[str, str | list[str]]  # "--from=x" -> {"from": "x"}; a repeated flag: a list
    line: int  # 1-based line where the instruction starts
    original: str  # the whole instruction as one line, as Docker records it
    filename: str = "Dockerfile"  # for error messages

    def flag(self, name: str, default: str | None = None) -> str | None:
        """The flag's value (the last one if it was repeated), or `default`."""
        value = self.flags.get(name, default)
        return value[-1] if isinstance(value, list) else value

    def flag_list(self, name: str) -> list[str]:
        """Every value of a flag that may repeat (RUN --mount), in order."""
        value = self.flags.get(name)
        if value is None:
            return []
        return list(value) if isinstance(value, list) else [value]

    def error(self, problem: str) -> DockerfileError:
        """A DockerfileError at this instruction's line."""
        return DockerfileError(problem, self.filename, self.line)


@dataclass
class Dockerfile:
    """A parsed Dockerfile: the instructions from the first FROM on, and what came before it."""

    instructions: list[Instruction]  # from the first FROM to the end
    escape: str = "\\"  # "\\" or "`" (the `# escape=` directive)
    directives: dict[str, str] = field(default_factory=dict)  # every parser directive seen
    meta_args: list[Instruction] = field(default_factory=list)  # ARGs before the first FROM


# --- lines ---------------------------------------------------------------------------------------


class _Directives:
    """The parser-directive state: only lines at the very top can be directives."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.done = False
        self.values: dict[str, str] = {}
        self.set_escape("\\", 0)

    def set_escape(self, token: str, line: int) -> None:
        if token not in ("\\", "`"):
            raise DockerfileError(f"invalid escape token '{token}' does not match ` or \\",
                                  self.filename, line)
        self.escape = token
        e = re.escape(token)
        # The escape char ends a line to continue it, unless it is itself escaped; Docker's
        # regexp (no look-behind in Go) also leaves "foo \\\" (three) uncontinued.
        self.continuation = re.compile(rf"([^{e}]){e}[ \t]*\Z|^{e}[ \t]*\Z")

    def consider(self, text: str, line: int) -> None:
        """Record `text` if it is a directive; anything else ends the directives for good."""
        if self.done:
            return
        if not text.startswith("#"):
            self.done = True
            return
        match = _DIRECTIVE.fullmatch(text[1:].lstrip(GO_SPACE))
        name = match.group(1).lower() if match else ""
        if name not in DIRECTIVES:
            self.done = True  # a plain comment or an unknown directive: just a comment
            return
        if name in self.values:
            raise DockerfileError(f"only one {name} parser directive can be used",
                                  self.filename, line)
        self.values[name] = match.group(2)
        if name == "escape":
            self.set_escape(match.group(2), line)

    def trim_continuation(self, text: str) -> tuple[str, bool]:
        """(text without its continuation mark, whether the instruction goes on)."""
        if self.continuation.search(text):
            return self.continuation.sub(r"\1", text), True
        return text, False


def _is_comment(text: str) -> bool:
    return text.lstrip(GO_SPACE).startswith("#")


def _logical_lines(text: str, d: _Directives) -> list[tuple[int, str]]:
    """(start line, joined text) for each instruction, with directives recorded in `d`."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # a final newline does not start another line
    out: list[tuple[int, str]] = []
    i = 0
    while i < len(lines):
        raw = lines[i].rstrip("\r\n")
        if i == 0:
            raw = raw.removeprefix("\ufeff")
        i += 1
        start = i
        raw = raw.lstrip(GO_SPACE)
        d.consider(raw, start)
        body, more = d.trim_continuation("" if _is_comment(raw) else raw)
        if not more and body == "":
            continue  # blank or comment
        parts = [body]
        while more and i < len(lines):
            raw = lines[i].rstrip("\r\n")
            i += 1
            # Inside a continuation, comment lines vanish and blank lines are skipped; the
            # leading blanks of the other lines are kept, as Docker keeps them.
            if _is_comment(raw) or raw.lstrip(GO_SPACE) == "":
                continue
            body, more = d.trim_continuation(raw)
            parts.append(body)
        out.append((start, "".join(parts)))
    return out


# --- one instruction -----------------------------------------------------------------------------


def _split_flags(text: str) -> tuple[str, list[str]]:
    """Docker's extractBuilderFlags: (the rest, the leading "--words" unquoted and unescaped)."""
    words: list[str] = []
    word: list[str] = []
    phase, quote, blank_ok = "spaces", "", False
    pos, n = 0, len(text)
    while pos <= n:
        ch = text[pos] if pos < n else ""
        if phase == "spaces":
            if pos == n:
                break
            if ch in GO_SPACE:
                pos += 1
                continue
            if ch != "-" or pos + 1 == n or text[pos + 1] != "-":
                return text[pos:], words
            phase = "word"
        if pos == n:  # end of input inside a word
            w = "".join(word)
            if w != "--" and (blank_ok or w):
                words.append(w)
            break
        if phase == "word":
            if ch in GO_SPACE:
                w = "".join(word)
                if w == "--":
                    return text[pos:], words  # "--" ends the flags
                if blank_ok or w:
                    words.append(w)
                phase, word, blank_ok = "spaces", [], False
                pos += 1
                continue
            if ch in "'\"":
                phase, quote, blank_ok = "quote", ch, True
                pos += 1
                continue
        elif ch == quote:  # phase == "quote"
            phase = "word"
            pos += 1
            continue
        if ch == "\\":  # flags always escape with a backslash, whatever the escape directive says
            if pos + 1 == n:
                phase = "word"
                pos += 1
                continue
            pos += 1
            ch = text[pos]
        word.append(ch)
        pos += 1
    return "", words


def _parse_flags(cmd: str, words: list[str], line: int, filename: str,
                 check: bool = True) -> dict[str, str | list[str]]:
    """Docker's BFlags.Parse for `cmd`: unknown, repeated or valueless flags are errors."""
    known = _FLAGS.get(cmd, {})
    flags: dict[str, str | list[str]] = {}
    for word in words:
        name, eq, value = word[2:].partition("=")
        kind = known.get(name)
        if not check:
            kind = "multi"
            value = value if eq else "true"
        elif kind is None:
            raise DockerfileError(f"unknown flag: --{name}", filename, line)
        elif name in flags and kind != "multi":
            raise DockerfileError(f"duplicate flag specified: --{name}", filename, line)
        if kind == "bool":
            if eq and value == "":
                raise DockerfileError(f"missing a value on flag: --{name}", filename, line)
            if value.lower() not in ("", "true", "false"):
                raise DockerfileError(f"expecting boolean value for flag --{name}, not: {value}",
                                      filename, line)
            value = value.lower() or "true"
        elif not eq and check:
            raise DockerfileError(f"missing a value on flag: --{name}", filename, line)
        if name in flags:
            previous = flags[name]
            flags[name] = (previous if isinstance(previous, list) else [previous]) + [value]
        else:
            flags[name] = value
    return flags


class _NotStrings(ValueError):
    pass


def _parse_json(text: str) -> list[str] | None:
    """The items of a JSON array of strings, or None when `text` is not a JSON array at all."""
    text = text.lstrip(GO_SPACE)
    if not text.startswith("["):
        return None

    def reject(_: str) -> object:
        raise ValueError("not JSON")  # NaN, Infinity: Python extensions Go's decoder refuses

    def number(literal: str) -> float:
        value = float(literal)
        if value in (float("inf"), float("-inf")):
            raise ValueError("out of range")  # Go cannot decode it: not JSON, so shell form
        return value

    try:
        items = json.loads(text, parse_constant=reject, parse_float=number)
    except ValueError:
        return None
    if not isinstance(items, list):
        return None
    if not all(isinstance(item, str) for item in items):
        raise _NotStrings("when using JSON array syntax, arrays must be comprised of strings only")
    return items


def _arguments(cmd: str, rest: str) -> tuple[list[str], bool]:
    """(args, json) as the parser stores them for `cmd`."""
    if cmd in _JSON_FORMS:
        items = _parse_json(rest)
        if items is not None:
            return items, True
    if cmd == "HEALTHCHECK":
        parts = re.split(f"[{GO_SPACE}]", rest, maxsplit=1)
        typ, command = parts[0], (parts[1].lstrip(GO_SPACE) if len(parts) > 1 else "")
        if typ == "":
            return [], False
        items = _parse_json(command)
        if items is not None:
            return [typ, *items], True
        return ([typ, command] if command else [typ]), False
    return ([rest] if rest else []), False


def _instruction(text: str, line: int, filename: str) -> Instruction:
    """Split one joined line into an Instruction (parser-level checks only)."""
    stripped = text.strip(GO_SPACE)
    head = _WHITESPACE.split(stripped, maxsplit=1)
    word = head[0]
    cmd = word.upper()
    if cmd not in INSTRUCTIONS:
        raise DockerfileError(f"unknown instruction: {word}", filename, line)
    rest, flag_words = _split_flags(head[1]) if len(head) == 2 else ("", [])
    rest = rest.strip(GO_SPACE)
    try:
        if cmd == "ONBUILD":
            # The trigger is kept as text (Docker stores it so in the image config), minus the
            # ONBUILD word; only its JSON is checked now, the rest when a child image builds.
            args, is_json = ([_ONBUILD_PREFIX.sub("", text, count=1)] if rest else []), False
            if rest:
                _check_trigger_json(rest)
        else:
            args, is_json = _arguments(cmd, rest)
    except _NotStrings as err:
        raise DockerfileError(str(err), filename, line) from None
    instr = Instruction(cmd=cmd, args=args, json=is_json, flags={}, line=line, original=text,
                        filename=filename)
    instr.flags = _flag_words_checked(instr, flag_words)
    return instr


def _check_trigger_json(trigger: str) -> None:
    """Raise _NotStrings if an ONBUILD trigger's arguments are a JSON array of non-strings."""
    head = _WHITESPACE.split(trigger.strip(GO_SPACE), maxsplit=1)
    if len(head) == 2:
        rest, _ = _split_flags(head[1])
        _arguments(head[0].upper(), rest.strip(GO_SPACE))


def _flag_words_checked(instr: Instruction, words: list[str]) -> dict[str, str | list[str]]:
    cmd = instr.cmd
    unchecked = cmd in _UNCHECKED_FLAGS or (
        cmd == "HEALTHCHECK" and instr.args and instr.args[0].upper() == "NONE")
    return _parse_flags(cmd, words, instr.line, instr.filename, check=not unchecked)


def _check(instr: Instruction, escape: str) -> None:
    """Docker's instruction-level checks; raises DockerfileError at the instruction's line."""
    cmd, args = instr.cmd, instr.args
    if cmd in ("MAINTAINER", "WORKDIR", "USER", "STOPSIGNAL") and not args:
        raise instr.error(f"{cmd} requires exactly one argument")
    if cmd in ("ENV", "LABEL", "ARG", "ONBUILD", "HEALTHCHECK", "EXPOSE", "VOLUME") and not args:
        raise instr.error(f"{cmd} requires at least one argument")
    if cmd in ("ENV", "LABEL", "ARG"):
        _raw_pairs(instr, escape)
    elif cmd in ("COPY", "ADD"):
        split_copy(instr)
    elif cmd == "FROM":
        stage(instr)
    elif cmd == "ONBUILD":
        _check_trigger(instr)
    elif cmd == "HEALTHCHECK":
        healthcheck(instr)
    elif cmd == "SHELL":
        if not args:
            raise instr.error("SHELL requires at least one argument")
        if not instr.json:
            raise instr.error("SHELL requires the arguments to be in JSON form")
    elif cmd == "VOLUME":
        if any(v.strip(GO_SPACE) == "" for v in fields(instr)):
            raise instr.error("VOLUME specified can not be an empty string")


def _check_trigger(instr: Instruction) -> str:
    trigger = _WHITESPACE.split(instr.args[0].strip(GO_SPACE), maxsplit=1)[0].upper()
    if trigger == "ONBUILD":
        raise instr.error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise instr.error(f"{trigger} isn't allowed as an ONBUILD trigger")
    return trigger


def parse(text: str, filename: str = "Dockerfile") -> Dockerfile:
    """Parse a whole Dockerfile; raises DockerfileError naming `filename` and the line."""
    d = _Directives(filename)
    logical = _logical_lines(text, d)
    if not logical:
        raise DockerfileError("file with no instructions", filename, max(1, text.count("\n")))
    meta_args: list[Instruction] = []
    instructions: list[Instruction] = []
    for line, joined in logical:
        instr = _instruction(joined, line, filename)
        _check(instr, d.escape)
        if not instructions and instr.cmd != "FROM":
            if instr.cmd != "ARG":
                raise instr.error("no build stage in current context")
            meta_args.append(instr)
            continue
        instructions.append(instr)
    if not instructions:
        raise meta_args[-1].error("dockerfile contains no stages to build")
    return Dockerfile(instructions=instructions, escape=d.escape, directives=dict(d.values),
                      meta_args=meta_args)


def parse_onbuild(instr: Instruction) -> Instruction:
    """The instruction an ONBUILD wraps, checked in full, at the ONBUILD's line."""
    if instr.cmd != "ONBUILD" or not instr.args:
        raise instr.error("ONBUILD requires at least one argument")
    _check_trigger(instr)
    # Docker parses triggers afresh when the child image builds: with the default escape.
    inner = _instruction(instr.args[0], instr.line, instr.filename)
    _check(inner, "\\")
    return inner


# --- argument helpers for the builder ------------------------------------------------------------


def fields(instr: Instruction) -> list[str]:
    """The exec-form items, or the shell-form text split at blanks (Docker's parseMaybeJSONToList,
    as FROM, EXPOSE, VOLUME, COPY and ADD read their arguments). Expansion is the caller's."""
    if instr.json:
        return list(instr.args)
    return _WHITESPACE.split(instr.args[0]) if instr.args else []


def split_copy(instr: Instruction) -> tuple[list[str], str]:
    """COPY/ADD: (sources, destination), from the JSON array or the blank-separated text."""
    items = fields(instr)
    if len(items) < 2:
        raise instr.error(f"{instr.cmd} requires at least two arguments, but only one was "
                          "provided. Destination could not be determined")
    return items[:-1], items[-1]


def stage(instr: Instruction) -> tuple[str, str | None]:
    """FROM: (image, stage name lower-cased or None), from `FROM image [AS name]`."""
    items = fields(instr)
    if len(items) == 3 and items[1].lower() == "as":
        name = items[2].lower()
        if not _STAGE_NAME.fullmatch(name):
            raise instr.error(f"invalid name for build stage: {go_quote(items[2])}, name can't "
                              "start with a number or contain symbols")
        return items[0], name
    if len(items) != 1:
        raise instr.error("FROM requires either one or three arguments")
    return items[0], None


def _parse_words(rest: str, escape: str) -> list[str]:
    """Docker's parseWords: blank-separated words, quotes and escapes kept for ProcessWord.
    Its loop looks like _split_flags's (extractBuilderFlags) but means other things, as in
    Docker: quotes and escapes stay, the escape directive's character counts, "--" is a word."""
    words: list[str] = []
    word: list[str] = []
    phase, quote, blank_ok = "spaces", "", False
    pos, n = 0, len(rest)
    while pos <= n:
        ch = rest[pos] if pos < n else ""
        if phase == "spaces":
            if pos == n:
                break
            if ch in GO_SPACE:
                pos += 1
                continue
            phase = "word"
        if pos == n:
            if blank_ok or word:
                words.append("".join(word))
            break
        if phase == "word":
            if ch in GO_SPACE:
                if blank_ok or word:
                    words.append("".join(word))
                phase, word, blank_ok = "spaces", [], False
                pos += 1
                continue
            if ch in "'\"":
                phase, quote, blank_ok = "quote", ch, True
            if ch == escape:
                if pos + 1 == n:
                    pos += 1  # an escape at the very end is dropped
                    continue
                word.append(ch)  # kept with the char it escapes, even a quote
                pos += 1
                ch = rest[pos]
        else:  # in quotes
            if ch == quote:
                phase = "word"
            if ch == escape and quote != "'":  # nothing escapes inside single quotes
                if pos + 1 == n:
                    phase = "word"
                    pos += 1
                    continue
                word.append(ch)
                pos += 1
                ch = rest[pos]
        word.append(ch)
        pos += 1
    return words


def _raw_pairs(instr: Instruction, escape: str) -> list[tuple[str, str | None]]:
    """ENV/LABEL/ARG as written: (key, value) with quotes still in place."""
    rest = instr.args[0] if instr.args else ""
    words = _parse_words(rest, escape)
    if not words:
        raise instr.error(f"{instr.cmd} requires at least one argument")
    pairs: list[tuple[str, str | None]] = []
    if instr.cmd == "ARG":
        for word in words:
            key, eq, value = word.partition("=")
            if eq and key == "":
                raise instr.error("ARG names can not be blank")
            pairs.append((key, value if eq else None))
        return pairs
    if "=" not in words[0]:
        # The legacy form, `ENV KEY the value`: the first blank ends the key, the rest is the value.
        parts = _WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise instr.error(f"{instr.cmd} must have two arguments")
        return [(parts[0], parts[1])]
    for word in words:
        if "=" not in word:
            raise instr.error(f"Syntax error - can't find = in {go_quote(word)}. "
                              "Must be of the form: name=value")
        key, _, value = word.partition("=")
        if key == "":
            raise instr.error(f"{instr.cmd} names can not be blank")
        pairs.append((key, value))
    return pairs


def key_values(instr: Instruction, env: dict[str, str] | None = None,
               escape: str = "\\") -> list[tuple[str, str | None]]:
    """ENV, LABEL, ARG: the (key, value) pairs, quotes removed; ARG's value is None without "=".

    With `env`, keys and values are expanded as Docker expands them (ProcessWord); without it,
    `$VAR` references are left as written. `escape` is the Dockerfile's escape character.
    """
    lexer = Lexer(env or {}, escape, keep_unset=env is None)
    out: list[tuple[str, str | None]] = []
    for key, value in _raw_pairs(instr, escape):
        try:
            key = lexer.word(key)
            if value is not None:
                value = lexer.word(value)
        except DockerfileError as err:
            raise err.at(instr.filename, instr.line) from None
        out.append((key, value))
    return out


# --- HEALTHCHECK ---------------------------------------------------------------------------------

_MIN_INTERVAL = 1_000_000  # Docker's container.MinimumDuration: 1ms


def healthcheck(instr: Instruction) -> dict | None:
    """HEALTHCHECK as the image config's Healthcheck: {"Test": [...], "Interval": ns, ...}.

    Only non-zero settings appear (the config omits zeros). None if `instr` is not a HEALTHCHECK.
    """
    if instr.cmd != "HEALTHCHECK":
        return None
    if not instr.args:
        raise instr.error("HEALTHCHECK requires at least one argument")
    typ, rest = instr.args[0].upper(), instr.args[1:]
    if typ == "NONE":
        if rest:
            raise instr.error("HEALTHCHECK NONE takes no arguments")
        return {"Test": ["NONE"]}
    if typ != "CMD":
        raise instr.error(f"Unknown type {go_quote(typ)} in HEALTHCHECK (try CMD)")
    if not rest:
        raise instr.error("Missing command after HEALTHCHECK CMD")
    config: dict = {"Test": ["CMD", *rest] if instr.json else ["CMD-SHELL", " ".join(rest)]}
    for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                      ("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
        value = instr.flag(flag, "")
        if not value:
            continue
        try:
            ns = go_duration(value)
        except ValueError as err:
            raise instr.error(str(err)) from None
        if ns == 0:
            continue
        if ns < _MIN_INTERVAL:
            raise instr.error(f"Interval {go_quote(flag)} cannot be less than 1ms")
        config[key] = ns
    retries = instr.flag("retries", "")
    if retries:
        if not re.fullmatch(r"[+-]?[0-9]+", retries):
            raise instr.error(f"strconv.ParseInt: parsing {go_quote(retries)}: invalid syntax")
        n = int(retries)
        if not -(2**31) <= n < 2**31:
            raise instr.error(f"strconv.ParseInt: parsing {go_quote(retries)}: value out of range")
        if n < 0:
            raise instr.error(f"--retries cannot be negative ({n})")
        if n:
            config["Retries"] = n
    return config
