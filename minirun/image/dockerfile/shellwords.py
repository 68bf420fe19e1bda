"""Docker's shell-word lexer (BuildKit's shell.Lex): quotes, escapes and $ expansions.

The builder expands a Dockerfile's words per step, with the ARG and ENV values in scope then:

    expand(word, env, escape)        ProcessWord: ${VAR:-w}, ${VAR#p}, ${VAR/p/r}, quotes removed
    expand_words(text, env, escape)  ProcessWords: the same, then split at blanks outside quotes
    Lexer(env, escape, keep_unset)   one pass over a word (key_values keeps unset $VARs as written)

Errors are DockerfileError without a line (the parser's error: dockerfile.py imports it from
here); the builder locates them with `err.at(filename, line)`.
"""

from __future__ import annotations

import json
import re

from ...errors import MinirunError

# Go's unicode.IsSpace for the characters that matter in a Dockerfile.
GO_SPACE = "\t\n\v\f\r \x85\xa0"


class DockerfileError(MinirunError):
    """A Dockerfile is malformed; the message starts with "<file>:<line>: " when the line is known.

    Expansion errors (`expand`, `expand_words`) have no line: the builder knows the instruction
    and re-raises with `err.at(filename, line)`.
    """

    exit_code = 1  # docker build exits 1 on a Dockerfile error

    def __init__(self, problem: str, filename: str | None = None, line: int | None = None) -> None:
        where = f"{filename or 'Dockerfile'}:{line}: " if line is not None else ""
        super().__init__(where + problem)
        self.problem = problem
        self.filename = filename
        self.line = line

    def at(self, filename: str, line: int) -> DockerfileError:
        """The same problem, located at `filename:line`."""
        return DockerfileError(self.problem, filename, line)


def expand(word: str, env: dict[str, str], escape: str = "\\") -> str:
    """Docker's ProcessWord: expand $VAR, ${VAR}, ${VAR:-w}, ${VAR-w}, ${VAR:+w}, ${VAR+w},
    ${VAR?w}, ${VAR#p}, ${VAR%p}, ${VAR/p/r}; remove quotes and escapes. Unset variables are "".
    Raises DockerfileError (without a line) on a malformed word."""
    return Lexer(env, escape).word(word)


def expand_words(text: str, env: dict[str, str], escape: str = "\\") -> list[str]:
    """Docker's ProcessWords: expand, then split into words at blanks outside quotes
    (blanks inside an expanded value split too, as in `EXPOSE $PORTS`)."""
    return Lexer(env, escape).words(text)


class Words:
    """Word splitting alongside expansion: quoted text never splits, expanded text does."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.buf = ""
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch in GO_SPACE:
            if self.in_word and self.buf:
                self.words.append(self.buf)
                self.buf, self.in_word = "", False
        else:
            self.add_raw(ch)

    def add_raw(self, text: str) -> None:
        self.buf += text
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def result(self) -> list[str]:
        if self.buf:  # an empty quoted word ("") is dropped, as Docker drops it
            self.words.append(self.buf)
        self.buf, self.in_word = "", False
        return self.words


class Lexer:
    """One pass over a word: quotes, escapes and $ expansions, as BuildKit's shell.Lex does."""

    def __init__(self, env: dict[str, str], escape: str, keep_unset: bool = False) -> None:
        self.env = env
        self.escape = escape
        self.keep_unset = keep_unset  # Docker's SkipUnsetEnv: leave "$X" when X is unset
        self.raw_escapes = False  # keep escapes in the text: ${VAR#pattern} reads them itself
        self.text = ""
        self.pos = 0

    def word(self, text: str) -> str:
        return self._run(text)[0]

    def words(self, text: str) -> list[str]:
        return self._run(text)[1]

    def _run(self, text: str) -> tuple[str, list[str]]:
        self.text, self.pos = text, 0
        try:
            return self._until("", raw_escapes=False)
        except ValueError as err:
            raise DockerfileError(f"failed to process {go_quote(text)}: {err}") from None

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _next(self) -> str:
        ch = self._peek()
        self.pos += len(ch)
        return ch

    def _until(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        """Process up to the unquoted `stop` char ("" = the end): (text, words)."""
        outer, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self._scan(stop, raw_escapes)
        finally:
            self.raw_escapes = outer

    def _scan(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        result: list[str] = []
        words = Words()
        while self._peek():
            ch = self._peek()
            if stop and ch == stop:
                self._next()
                return "".join(result), words.result()
            if ch == "$":
                value = self._dollar()
                result.append(value)
                words.add_string(value)  # expanded text splits into words
            elif ch in "'\"":
                value = self._single_quote() if ch == "'" else self._double_quote()
                result.append(value)
                words.add_raw(value)  # quoted text never splits
            else:
                ch = self._next()
                if ch == self.escape:
                    if raw_escapes:
                        words.add_raw(ch)
                        result.append(ch)
                    ch = self._next()
                    if not ch:
                        break  # an escape at the very end is dropped
                    words.add_raw(ch)
                else:
                    words.add_char(ch)
                result.append(ch)
        if stop:
            raise ValueError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.result()

    def _single_quote(self) -> str:
        self._next()
        out: list[str] = []
        while True:
            ch = self._next()
            if not ch:
                raise ValueError("unexpected end of statement while looking for matching "
                                 "single-quote")
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def _double_quote(self) -> str:
        self._next()
        out: list[str] = []
        while True:
            ch = self._peek()
            if not ch:
                raise ValueError("unexpected end of statement while looking for matching "
                                 "double-quote")
            if ch == '"':
                self._next()
                return "".join(out)
            if ch == "$":
                out.append(self._dollar())
                continue
            ch = self._next()
            if ch == self.escape:
                if self.raw_escapes:
                    out.append(ch)
                following = self._peek()
                if not following:
                    continue  # a trailing escape is dropped
                if following in ('"', "$", self.escape):
                    ch = self._next()  # only these are escaped inside double quotes
            out.append(ch)

    def _dollar(self) -> str:
        self._next()
        if self._peek() != "{":
            name = self._name()
            if name == "":
                return "$"
            value = self.env.get(name)
            if value is None:
                return "$" + name if self.keep_unset else ""
            return value
        self._next()
        if self._peek() == "":
            raise ValueError("syntax error: missing '}'")
        if self._peek() in "{}:":
            raise ValueError("syntax error: bad substitution")
        name = self._name()
        ch = self._next()
        if ch == "":
            raise ValueError("syntax error: missing '}'")
        value = self.env.get(name)
        if ch == "}":
            if value is None:
                return "${" + name + "}" if self.keep_unset else ""
            return value
        if ch == "/":
            return self._replace(name, value)
        modifier, null_is_unset = ch, False
        if ch == ":":
            null_is_unset = True
            modifier = self._next()
            if modifier == "":
                raise ValueError("syntax error: missing '}'")
        if modifier not in ("+", "-", "?", "#", "%"):
            raise ValueError(f"unsupported modifier ({ch if ch != ':' else ':' + modifier}) "
                             "in substitution")
        raw = modifier in "#%"
        if null_is_unset and raw:
            raise ValueError(f"unsupported modifier (:{modifier}) in substitution")
        try:
            word, _ = self._until("}", raw_escapes=raw)
        except ValueError:
            if self._peek() == "":
                raise ValueError("syntax error: missing '}'") from None
            raise
        if value is None and self.keep_unset:
            return "${" + name + (":" if null_is_unset else "") + modifier + word + "}"
        empty = value is None or (null_is_unset and value == "")
        if modifier == "-":
            return word if empty else value
        if modifier == "+":
            return "" if empty else word
        if modifier == "?":
            if value is None:
                raise ValueError(f"{name}: {word or 'is not allowed to be unset'}")
            if empty:
                raise ValueError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        greedy = word[:1] == modifier  # ## and %% remove the longest match
        if greedy:
            word = word[1:]
        if modifier == "#":
            return _trim_prefix(word, value or "", greedy)
        return _trim_suffix(word, value or "", greedy)

    def _replace(self, name: str, value: str | None) -> str:
        replace_all = self._peek() == "/"
        if replace_all:
            self._next()
        try:
            pattern, _ = self._until("/", raw_escapes=True)
        except ValueError:
            if self._peek() == "":
                raise ValueError("syntax error: missing '/' in ${}") from None
            raise
        try:
            replacement, _ = self._until("}", raw_escapes=True)
        except ValueError:
            if self._peek() == "":
                raise ValueError("syntax error: missing '}'") from None
            raise
        if value is None and self.keep_unset:
            return "${" + name + "/" + pattern + "/" + replacement + "}"
        value = value or ""
        regex = _shell_pattern(pattern, greedy=True, anchored=False)
        if replace_all:
            return regex.sub(lambda _: replacement, value)
        match = regex.search(value)
        if match:
            value = value[:match.start()] + replacement + value[match.end():]
        return value

    def _name(self) -> str:
        """A variable name: letters, digits and _, or all digits ($1), or one special ($?)."""
        ch = self._peek()
        if ch.isdecimal():
            start = self.pos
            while self._peek().isdecimal():
                self._next()
            return self.text[start:self.pos]
        if ch and ch in "@*#?-$!0":
            return self._next()
        start = self.pos
        while self._peek() and (self._peek().isalpha() or self._peek().isdecimal()
                                or self._peek() == "_"):
            self._next()
        return self.text[start:self.pos]


def _shell_pattern(pattern: str, greedy: bool, anchored: bool) -> re.Pattern:
    """A ${VAR#pattern} glob as a regex: * and ? only (no brackets), \\ escapes * ? \\."""
    out = ["^"] if anchored else []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(".*" if greedy else ".*?")
            continue
        if ch == "?":
            out.append(".")
            continue
        if ch == "\\":
            following = pattern[i:i + 1]
            if following in ("}", "/"):
                continue  # escaped only to get past ${...}'s own syntax
            if following not in ("*", "?", "\\"):
                raise ValueError(f"invalid pattern ({pattern}) in substitution: "
                                 f"invalid escape '\\{following}'")
            out.append(re.escape(following))
            i += 1
            continue
        out.append(re.escape(ch))
    return re.compile("".join(out))


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    match = _shell_pattern(pattern, greedy, anchored=True).match(value)
    return value[match.end():] if match else value


def _reverse_pattern(pattern: str) -> str:
    """Reverse a pattern, keeping each escape in front of the char it escapes."""
    tokens, i = [], 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            tokens.append(pattern[i:i + 2])
            i += 2
        else:
            tokens.append(pattern[i])
            i += 1
    return "".join(reversed(tokens))


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # A regex finds the leftmost match, not the shortest rightmost one: reverse both sides.
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]


def go_quote(text: str) -> str:
    """Go's %q for the plain strings that appear in messages."""
    return json.dumps(text, ensure_ascii=False)
