"""Env files: the project's `.env` (or `--env-file`) and a service's `env_file:` entries.

The format is Compose's (https://docs.docker.com/compose/how-tos/environment-variables/
variable-interpolation/#env-file-syntax, compose-go's dotenv parser):

    # a comment                 blank lines and comment lines are skipped
    KEY=value                   unquoted: up to the end of the line, trailing blanks and an
    KEY=value # comment           inline comment (" #") dropped; $VAR interpolated
    export KEY=value            "export " is ignored (files meant for `source` work as they are)
    KEY="a\\nb $VAR"            double quotes: may span lines, escapes (\\n \\t \\" \\\\ \\$ ...)
                                  expanded, then $VAR interpolated
    KEY='a\\nb $VAR'            single quotes: literal (only \\' is unescaped)
    KEY                         alone: the value of KEY in the lookup environment, if any
    KEY: value                  the YAML-like form compose-go also accepts

Interpolation inside a file sees the lookup environment first (the process environment: it
wins, as in Compose), then the keys defined earlier in the same file.
"""

from __future__ import annotations

from collections.abc import Mapping

from minirun.compose.interpolate import InterpolationError, substitute
from minirun.errors import InvalidArgument

# Characters a key may hold besides letters and digits (compose-go: [A-Za-z0-9_.-] and [ ]).
_KEY_PUNCTUATION = "_.-[]"
# The escapes a double-quoted value expands; \$ stays a literal $ (written $$ for interpolation).
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            '"': '"', "\\": "\\", "$": "$$"}
_BLANKS = " \t\v\f\r"


class _Parser:
    def __init__(self, text: str, source: str, lookup: Mapping[str, str]) -> None:
        self.text = text.lstrip("\ufeff")        # a UTF-8 byte order mark is not part of a key
        self.source = source
        self.lookup = lookup
        self.pos = 0
        self.values: dict[str, str] = {}

    def error(self, problem: str) -> InvalidArgument:
        line = self.text.count("\n", 0, self.pos) + 1
        return InvalidArgument(f"{self.source}:{line}: {problem}")

    def parse(self) -> dict[str, str]:
        while self.skip_to_statement():
            key, has_value = self.key()
            if has_value:
                self.values[key] = self.value()
            elif key in self.lookup:
                self.values[key] = self.lookup[key]
        return self.values

    def skip_to_statement(self) -> bool:
        """Skip blanks, newlines and comment lines; False at the end of the text."""
        text = self.text
        while self.pos < len(text):
            if text[self.pos].isspace():
                self.pos += 1
            elif text[self.pos] == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            else:
                return True
        return False

    def key(self) -> tuple[str, bool]:
        """The key at pos and whether a value follows (`=` or `:`) or it stands alone."""
        text = self.text
        if text.startswith("export", self.pos) and text[self.pos + 6:self.pos + 7] in (" ", "\t"):
            self.pos += 6
            while self.pos < len(text) and text[self.pos] in _BLANKS:
                self.pos += 1
        start = self.pos
        while self.pos < len(text) and text[self.pos] not in "=:\n":
            char = text[self.pos]
            if not (char.isalnum() or char in _KEY_PUNCTUATION or char in _BLANKS):
                line_end = text.find("\n", start)
                raise self.error(f"unexpected character {char!r} in variable name "
                                 f"{text[start:None if line_end < 0 else line_end]!r}")
            self.pos += 1
        key = text[start:self.pos].rstrip()
        if any(c in key for c in _BLANKS):
            raise self.error(f"key {key!r} cannot contain a space")
        has_value = self.pos < len(text) and text[self.pos] in "=:"
        self.pos += 1
        return key, has_value

    def value(self) -> str:
        text = self.text
        while self.pos < len(text) and text[self.pos] in _BLANKS:
            self.pos += 1
        if self.pos < len(text) and text[self.pos] in "'\"":
            return self.quoted(text[self.pos])
        end = text.find("\n", self.pos)
        end = len(text) if end < 0 else end
        raw = text[self.pos:end]
        self.pos = end
        raw = raw.split(" #", 1)[0].rstrip()     # an inline comment needs a blank before it
        return self.expand(raw)

    def quoted(self, quote: str) -> str:
        text, start = self.text, self.pos
        chars: list[str] = []
        i = start + 1
        while i < len(text):
            char = text[i]
            if char == "\\" and i + 1 < len(text):
                following = text[i + 1]
                if following == quote:
                    chars.append(quote)
                elif quote == '"' and following in _ESCAPES:
                    chars.append(_ESCAPES[following])
                else:
                    chars.append(char + following)
                i += 2
                continue
            if char == quote:
                self.pos = i + 1
                value = "".join(chars)
                return self.expand(value) if quote == '"' else value
            chars.append(char)
            i += 1
        line_end = text.find("\n", start)
        raise self.error(f"unterminated quoted value {text[start:None if line_end < 0 else line_end]}")

    def expand(self, value: str) -> str:
        lookup = {**self.values, **self.lookup}  # the environment first, as compose-go does
        try:
            return substitute(value, lookup)
        except InterpolationError as err:
            raise self.error(err.message) from None


def parse(text: str, lookup: Mapping[str, str] | None = None, source: str = "env file") -> dict[str, str]:
    """The variables an env file's `text` defines, in order. `lookup` resolves `KEY` alone and
    `$VAR` references; `source` names the file in errors ("SOURCE:LINE: problem")."""
    return _Parser(text, source, lookup or {}).parse()


def read(path: str, lookup: Mapping[str, str] | None = None, source: str | None = None) -> dict[str, str]:
    """`parse` of the file at `path`; a missing or unreadable file is an InvalidArgument."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as err:
        raise InvalidArgument(f"env file {path}: {err.strerror}") from None
    return parse(text, lookup, source or path)
