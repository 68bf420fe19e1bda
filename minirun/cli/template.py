"""A small Go-template renderer for --format and inspect -f, as the docker CLI reads them.

    render("{{.Repository}}:{{.Tag}}", row)              -> "alpine:latest"
    render("{{.State.Pid}}", inspected)                  -> "4242"   (dotted fields)
    render("{{json .Config.Labels}}", inspected)         -> '{"a":"b"}'
    Format("table {{.Repository}}\\t{{.Size}}", HEADERS).write(rows)  -> aligned, with a header

The subset: text and actions {{ ... }}; an action is a pipeline of one function and arguments,
or one value: `.`, `.A.B` (dict keys or attributes), "strings", numbers; a function call is
`name arg...`, and `x | name arg` passes x as the last argument, as Go does. Functions are
docker's (cli/templates): json, join, split, upper, lower, title, truncate, pad, println.
Not supported (a clear TemplateError, never a silent wrong answer): range, if, with, define,
variables, index. The `table` prefix, and the two-character escapes \\t and \\n in a format
typed on a shell, are the docker CLI's, not Go's: Format handles them.

Values print as Go's fmt does: lists as [a b], maps as map[k:v] (keys sorted), None as <nil>,
booleans as true/false; `json` prints as Go's encoding/json (compact, <>& escaped).
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

from ..errors import MinirunError

TABLE_MINWIDTH, TABLE_PADDING = 10, 3  # docker's tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)


class TemplateError(MinirunError):
    """A format template does not parse or names a field the object does not have."""

    exit_code = 125


_ACTION = re.compile(r"\{\{(-?)(.*?)(-?)\}\}", re.S)
_TOKEN = re.compile(r'\s*(?:("(?:[^"\\]|\\.)*")|(`[^`]*`)|(\|)|([^\s|"`]+))')
_UNSUPPORTED = {"range", "if", "else", "end", "with", "define", "template", "block", "index", "printf",
                "print", "len", "and", "or", "not", "eq", "ne"}


def go_json(value: Any) -> str:
    """encoding/json's output: compact, non-ASCII kept, and <, >, & escaped as \\u003c etc."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def go_str(value: Any) -> str:
    """How Go's text/template prints a value (fmt's %v)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_str(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def _title(s: str) -> str:
    return re.sub(r"(^|\s)(\S)", lambda m: m[1] + m[2].upper(), s)


def _truncate(s: str, n: int) -> str:
    return s[:int(n)]


def _pad(s: str, before: int, after: int) -> str:
    return " " * int(before) + s + " " * int(after)


def _join(items: Any, sep: str) -> str:
    return sep.join(go_str(i) for i in (items or []))


FUNCS = {
    "json": go_json,
    "join": _join,
    "split": lambda s, sep: str(s).split(sep),
    "upper": lambda s: go_str(s).upper(),
    "lower": lambda s: go_str(s).lower(),
    "title": lambda s: _title(go_str(s)),
    "truncate": lambda s, n: _truncate(go_str(s), n),
    "pad": lambda s, a, b: _pad(go_str(s), a, b),
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
}


class Template:
    """A parsed template: render(obj) any number of times."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._parts: list[str | list[list[tuple[str, Any]]]] = []
        pos = 0
        for m in _ACTION.finditer(text):
            literal = text[pos:m.start()]
            if m[1]:
                literal = literal.rstrip()
            self._parts.append(literal)
            self._parts.append(self._parse(m[2].strip()))
            pos = m.end()
            if m[3]:
                rest = text[pos:]
                pos += len(rest) - len(rest.lstrip())
        tail = text[pos:]
        if "{{" in tail:
            raise TemplateError(f"template: {text!r}: unclosed action (missing }}}})")
        self._parts.append(tail)

    def _parse(self, action: str) -> list[list[tuple[str, Any]]]:
        """An action -> its pipeline: commands, each a list of (kind, value) tokens."""
        if action.startswith("/*"):
            return []  # a comment
        commands: list[list[tuple[str, Any]]] = [[]]
        pos = 0
        while pos < len(action):
            m = _TOKEN.match(action, pos)
            if m is None or m.end() == pos:
                raise TemplateError(f"template: {self.text!r}: cannot parse {action!r}")
            pos = m.end()
            if m[1]:
                commands[-1].append(("const", json.loads(m[1])))
            elif m[2]:
                commands[-1].append(("const", m[2][1:-1]))
            elif m[3]:
                commands.append([])
            else:
                commands[-1].append(self._word(m[4], action))
        if any(not c for c in commands):
            raise TemplateError(f"template: {self.text!r}: empty command in {{{{{action}}}}}")
        return commands

    def _word(self, word: str, action: str) -> tuple[str, Any]:
        if word.startswith("."):
            if word == ".":
                return ("field", [])
            path = word[1:].split(".")
            if not all(re.fullmatch(r"\w+", p) for p in path):
                raise TemplateError(f"template: {self.text!r}: bad field {word!r}")
            return ("field", path)
        if re.fullmatch(r"-?\d+", word):
            return ("const", int(word))
        if word in ("true", "false"):
            return ("const", word == "true")
        if word in FUNCS:
            return ("func", word)
        if word in _UNSUPPORTED or word.startswith("$"):
            raise TemplateError(f"template: {word!r} is not supported by minirun's templates "
                                "(fields, json, join, split, upper, lower, title, truncate, pad, println)")
        raise TemplateError(f'template: {self.text!r}: function "{word}" not defined')

    def render(self, obj: Any) -> str:
        out = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
            elif part:
                value = self._pipeline(part, obj)
                out.append(value if isinstance(value, str) else go_str(value))
        return "".join(out)

    def _pipeline(self, commands: list[list[tuple[str, Any]]], obj: Any) -> Any:
        value: Any = _NOTHING
        for command in commands:
            value = self._command(command, obj, value)
        return value

    def _command(self, command: list[tuple[str, Any]], obj: Any, piped: Any) -> Any:
        kind, head = command[0]
        args = [self._value(k, v, obj) for k, v in command[1:]]
        if piped is not _NOTHING:
            args.append(piped)
        if kind != "func":
            if args:
                raise TemplateError(f"template: {self.text!r}: can't give an argument to a non-function")
            return self._value(kind, head, obj)
        try:
            return FUNCS[head](*args)
        except TypeError:
            raise TemplateError(f"template: {self.text!r}: wrong number of args for {head}") from None

    def _value(self, kind: str, value: Any, obj: Any) -> Any:
        if kind == "const":
            return value
        if kind == "func":
            return FUNCS[value]()
        return self._field(obj, value)

    def _field(self, obj: Any, path: list[str]) -> Any:
        if isinstance(obj, _Headers) and path:
            return obj[path[0]] if len(path) == 1 else path[-1].upper()
        for i, name in enumerate(path):
            if isinstance(obj, dict):
                if name not in obj:
                    raise TemplateError(f"template: {self.text!r}: can't evaluate field "
                                        f"{'.'.join(path[:i + 1])}")
                obj = obj[name]
            elif obj is not None and not name.startswith("_") and hasattr(obj, name):
                obj = getattr(obj, name)
            else:
                raise TemplateError(f"template: {self.text!r}: can't evaluate field "
                                    f"{'.'.join(path[:i + 1])}")
        return obj


_NOTHING = object()


def render(text: str, obj: Any) -> str:
    """Render one Go template against obj (no table prefix, no escape handling)."""
    return Template(text).render(obj)


def tabwrite(lines: Iterable[str], minwidth: int = TABLE_MINWIDTH, padding: int = TABLE_PADDING) -> str:
    """Align tab-separated cells as Go's tabwriter does for docker: each column as wide as its
    widest cell plus padding, at least minwidth; the last cell of a line is not padded."""
    rows = [line.split("\t") for line in lines]
    widths: list[int] = []
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            if i == len(widths):
                widths.append(0)
            widths[i] = max(widths[i], len(cell) + padding, minwidth)
    return "".join("".join(c.ljust(widths[i]) for i, c in enumerate(row[:-1])) + row[-1] + "\n"
                   for row in rows)


class Format:
    """A --format value as the docker CLI reads it: "table ..." (a header, aligned columns),
    "json" (one JSON object per line), or a plain template (one rendering per line).

    headers: field name -> column title (docker's per-command header map); a table's header
    row is the template rendered against it, so {{lower .Repository}} lowers the header too.
    """

    def __init__(self, text: str, headers: dict[str, str] | None = None, default_table: str = "") -> None:
        text = text.replace("\\t", "\t").replace("\\n", "\n")
        self.table = text == "table" or text.startswith("table ") or text.startswith("table\t")
        if self.table:
            text = text[len("table"):].lstrip(" ") or default_table
        elif text == "json":
            text = "{{json .}}"
        self.headers = headers or {}
        self.template = Template(text)

    def header(self) -> str:
        titles = _Headers(self.headers)
        return self.template.render(titles)

    def lines(self, rows: Iterable[Any]) -> list[str]:
        return [self.template.render(row) for row in rows]

    def write(self, rows: Iterable[Any]) -> str:
        """The whole output for rows, each line ending in a newline."""
        lines = self.lines(rows)
        if self.table:
            return tabwrite([self.header(), *lines])
        return "".join(line + "\n" for line in lines)


class _Headers(dict):
    """Header titles: a field without a title is shown as its name in capitals."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return dict.get(self, key, key.upper())
