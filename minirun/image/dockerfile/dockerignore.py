""".dockerignore: which files of the build context the builder never sees.

Docker's rules (moby/patternmatcher and its ignorefile reader, as `docker build` uses them):

- A line starting with "#" (in the first column) is a comment; other lines are trimmed, blank
  ones skipped, and each pattern is cleaned like Go's filepath.Clean with a leading "/" dropped,
  so "/build", "./build" and "build/" are all "build".
- "!" in front re-includes. Patterns are read in order and the last one that matches decides.
- `*` and `?` never cross "/", `[a-z]` and `[^a-z]` are character classes, `\\` escapes, and
  `**` is any number of directories, none included ("**/*.tmp" also matches "x.tmp").
- A pattern that matches a directory matches everything below it: "build" excludes
  "build/out/a.o" because it matches the parent "build".

The walker skips an excluded directory unless a "!" pattern could re-include something inside
it. Like Docker's, that test is a plain prefix test on the "!" pattern's text ("!build/keep"
keeps "build" open, "!**/keep" does not), so a wildcard exception does not reopen a directory
that a plainer pattern excluded.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator

from ...errors import MinirunError

IGNORE_FILE = ".dockerignore"

# Characters a regex gives meaning to but a filepath.Match pattern does not.
_REGEX_ONLY = set(".+()|{}$")
# Escapes that mean a class in Go's regexp and the same class in Python's.
_CLASS_ESCAPES = set("dDsSwWbBA")


class DockerignoreError(MinirunError):
    """A .dockerignore pattern cannot be used; names the pattern."""


def clean(path: str) -> str:
    """Go's path.Clean: one "/" between names, no "." names, ".." resolved where it can be."""
    if path == "":
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for name in path.split("/"):
        if name in ("", "."):
            continue
        if name == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(name)
    joined = "/".join(parts)
    if rooted:
        return "/" + joined
    return joined or "."


def _check_syntax(pattern: str) -> None:
    """Raise ValueError where Go's filepath.Match would return ErrBadPattern."""
    i, n = 0, len(pattern)

    def escaped_char(j: int) -> int:
        # One class member: a char, or "\" and the char it escapes; "-" and "]" need escaping.
        if j >= n or pattern[j] in "-]":
            raise ValueError
        if pattern[j] == "\\":
            j += 1
            if j >= n:
                raise ValueError
        return j + 1

    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n:
                raise ValueError
            i += 2
        elif ch == "[":
            i += 1
            if i < n and pattern[i] == "^":
                i += 1
            ranges = 0
            while True:
                if i < n and pattern[i] == "]" and ranges > 0:
                    i += 1
                    break
                i = escaped_char(i)
                if i < n and pattern[i] == "-":
                    i = escaped_char(i + 1)
                ranges += 1
        else:
            i += 1


class _Pattern:
    """One cleaned pattern, compiled the way patternmatcher compiles it."""

    def __init__(self, text: str, exclusion: bool) -> None:
        self.text = text
        self.exclusion = exclusion
        self.kind, self.regex = self._compile(text)

    @staticmethod
    def _compile(text: str) -> tuple[str, re.Pattern | None]:
        # Plain text compares as a string; "x/**" is a prefix and "**/x" a suffix test;
        # anything else is a regex.
        out: list[str] = []
        kind = "exact"
        i, n = 0, len(text)
        first = True
        while i < n:
            ch = text[i]
            i += 1
            if ch == "*":
                if i < n and text[i] == "*":
                    i += 1
                    if i < n and text[i] == "/":
                        i += 1  # "**/" is "**"
                    if i == n:
                        # A trailing "**" accepts everything, as in .gitignore.
                        if kind == "exact":
                            kind = "prefix"
                        else:
                            out.append(".*")
                            kind = "regex"
                    else:
                        out.append("(?:.*/)?")  # any number of directories, even none
                        kind = "regex"
                    if first:
                        kind = "suffix"
                else:
                    out.append("[^/]*")
                    kind = "regex"
            elif ch == "?":
                out.append("[^/]")
                kind = "regex"
            elif ch in _REGEX_ONLY:
                out.append("\\" + ch)
            elif ch == "\\":
                if i < n:
                    following = text[i]
                    i += 1
                    kind = "regex"
                    # Go's regexp reads "\d" as a class and "\z" as the end; keep those
                    # meanings, quote everything else.
                    if following in _CLASS_ESCAPES:
                        out.append("\\" + following)
                    elif following == "z":
                        out.append(r"\Z")
                    elif following.isalnum():
                        raise ValueError(f"bad escape \\{following}")
                    else:
                        out.append(re.escape(following))
                else:
                    out.append(r"\\")
            elif ch in "[]":
                out.append(ch)
                kind = "regex"
            else:
                out.append(ch)  # as Go does: even "^" keeps its regex meaning
            first = False
        if kind != "regex":
            return kind, None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "[[" is a literal "[" to Go; Python only warns
            return kind, re.compile("".join(out))

    def match(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            if path.endswith(suffix):
                return True
            return suffix.startswith("/") and path == suffix[1:]  # "**/foo" matches "foo"
        return self.regex.fullmatch(path) is not None


def read_patterns(lines: list[str]) -> list[str]:
    """The patterns of a .dockerignore, as Docker's reader normalizes them."""
    out: list[str] = []
    for number, line in enumerate(lines):
        if number == 0:
            line = line.removeprefix("\ufeff")
        if line.startswith("#"):
            continue  # only in the first column: " # x" is a pattern
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = clean(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]  # "/foo" is the context's foo
        out.append("!" + line if invert else line)
    return out


class Matcher:
    """Docker's .dockerignore matching: the last matching pattern wins, parents count."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns: list[_Pattern] = []
        for text in read_patterns(patterns):
            text = clean(text.strip())
            exclusion = text.startswith("!")
            if exclusion:
                if len(text) == 1:
                    raise DockerignoreError(f'{IGNORE_FILE}: illegal exclusion pattern: "!"')
                text = text[1:]
            try:
                _check_syntax(text)
                self.patterns.append(_Pattern(text, exclusion))
            except (ValueError, re.error):
                raise DockerignoreError(
                    f'{IGNORE_FILE}: syntax error in pattern "{text}"') from None
        self.exclusions = [p for p in self.patterns if p.exclusion]

    def excluded(self, path: str) -> bool:
        """Whether `path` (relative to the context, "/"-separated) is left out of the build."""
        path = clean(path).lstrip("/")
        if path in ("", "."):
            return False  # the context itself is never excluded
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        parents = parent.split("/") if parent else []
        matched = False
        for pattern in self.patterns:
            # An exclusion only matters once something matched, an inclusion only before.
            if pattern.exclusion != matched:
                continue
            hit = pattern.match(path) or any(
                pattern.match("/".join(parents[:i + 1])) for i in range(len(parents)))
            if hit:
                matched = not pattern.exclusion
        return matched

    def could_include_under(self, dirpath: str) -> bool:
        """False when nothing below `dirpath` can be in the build, so a walker may skip it.

        Docker's test: an excluded directory stays open only if some "!" pattern's text starts
        with "dirpath/".
        """
        dirpath = clean(dirpath).lstrip("/")
        if not self.excluded(dirpath):
            return True
        prefix = dirpath + "/"
        return any((p.text + "/").startswith(prefix) for p in self.exclusions)


def load(context_dir: str) -> Matcher:
    """The matcher for CONTEXT/.dockerignore; one that matches nothing if there is none."""
    path = os.path.join(context_dir, IGNORE_FILE)
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except FileNotFoundError:
        return Matcher([])
    except OSError as err:
        raise DockerignoreError(f"{path}: {err.strerror}") from None
    # Go's line scanner drops the "\r" of a CRLF ending; trimming does the rest.
    return Matcher([line.removesuffix("\r") for line in text.split("\n")])


def walk(context_dir: str, matcher: Matcher) -> Iterator[str]:
    """Every path in the context the build may see, relative and "/"-separated.

    Files, directories and symlinks (never followed), each directory's entries in name order
    and a directory before its contents. An excluded directory is not listed, but its
    re-included contents are, so a parent may be missing for them.
    """

    def entries(directory: str, rel: str) -> Iterator[str]:
        try:
            with os.scandir(directory) as it:
                items = sorted(it, key=lambda e: e.name)
        except OSError as err:
            raise MinirunError(f"build context {directory}: {err.strerror}") from None
        for entry in items:
            path = f"{rel}/{entry.name}" if rel else entry.name
            is_dir = entry.is_dir(follow_symlinks=False)
            if not matcher.excluded(path):
                yield path
            elif not (is_dir and matcher.could_include_under(path)):
                continue
            if is_dir:
                yield from entries(entry.path, path)

    yield from entries(context_dir, "")
