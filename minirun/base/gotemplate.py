"""A small Go-template renderer for --format and inspect -f, as the docker CLI reads them.

    render("{{.Repository}}:{{.Tag}}", row)              -> "alpine:latest"
    render("{{.State.Pid}}", inspected)                  -> "4242"   (dotted fields)
    render("{{json .Config.Labels}}", inspected)         -> '{"a":"b"}'
    render("{{range .Mounts}}{{.Destination}} {{end}}", inspected)
    render('{{index .Config.Labels "a"}}', inspected)
    Format("table {{.Repository}}\\t{{.Size}}", HEADERS).write(rows)  -> aligned, with a header

The subset, parsed once into a small tree (text, actions, and range/if/with blocks):
  * values: `.` and `.A.B` (dict keys or attributes), `$` (the top object) and variables
    `$x`, `$x.A`, "strings", `raw strings`, numbers, true/false, (parenthesised pipelines);
  * a pipeline is commands joined by `|`, each `function arg...` or one value; `x | f a` passes
    x as the last argument, as Go does; `{{$x := pipeline}}` declares a variable;
  * `{{range PIPELINE}}`, `{{range $i, $e := PIPELINE}}` (lists in order, maps by sorted key),
    `{{if}} {{else if}} {{else}}`, `{{with}} {{else}}`, each closed by `{{end}}`;
  * functions: docker's (cli/templates) json, join, split, upper, lower, title, truncate, pad,
    println, and Go's index, len, eq, ne, lt, le, gt, ge, not, and, or, print, printf;
  * `{{- ` and ` -}}` trim the text around an action; `{{/* comments */}}`.
The `table` prefix, and the two-character escapes \\t and \\n in a format typed on a shell, are
the docker CLI's, not Go's: Format handles them. Anything else (define, template, block) is a
clear TemplateError, never a silent wrong answer.

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
_TOKEN = re.compile(r'\s*(?:("(?:[^"\\]|\\.)*")|(`[^`]*`)|(\||\(|\)|:=|,)|([^\s|"`(),]+))')
_UNSUPPORTED = {"define", "template", "block", "break", "continue"}


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


def _truth(v: Any) -> bool:
    """Go's truth: false, 0, nil and empty strings, lists and maps are false."""
    return not (v is None or v is False or (isinstance(v, (int, float)) and v == 0)
                or (isinstance(v, (str, list, tuple, dict)) and len(v) == 0))


def _index(v: Any, *keys: Any) -> Any:
    for k in keys:
        try:
            v = v[k]
        except (KeyError, IndexError, TypeError):
            if isinstance(v, dict):
                return ""  # Go: the zero value of a missing key (docker's maps hold strings)
            raise TemplateError(f"index: cannot index {go_str(v)!r} with {k!r}") from None
    return v


def _printf(fmt: str, *args: Any) -> str:
    # Go's verbs mapped to Python's: %v and %s print as fmt does, %q quotes, %t is a bool.
    out, it = [], iter(args)

    def verb(m: re.Match) -> str:
        v = m[2]
        if v == "%":
            return "%"
        x = next(it, "")
        if v in "vs":
            return go_str(x)
        if v == "q":
            return json.dumps(go_str(x))
        if v == "t":
            return go_str(bool(x))
        return ("%" + m[1] + v) % x

    out.append(re.sub(r"%([-+ 0#]?\d*(?:\.\d+)?)([vsdqtfxXoeg%])", verb, fmt))
    return "".join(out)


def _cmp(op):
    def f(a: Any, *rest: Any) -> bool:
        return any(op(a, b) for b in rest) if op is _eq else op(a, rest[0])
    return f


def _eq(a: Any, b: Any) -> bool:
    return a == b


def _and(*xs: Any) -> Any:
    for x in xs:
        if not _truth(x):
            return x
    return xs[-1]


def _or(*xs: Any) -> Any:
    for x in xs:
        if _truth(x):
            return x
    return xs[-1]


FUNCS.update({
    "index": _index, "len": lambda v: len(v) if v is not None else 0,
    "eq": _cmp(_eq), "ne": _cmp(lambda a, b: a != b), "lt": _cmp(lambda a, b: a < b),
    "le": _cmp(lambda a, b: a <= b), "gt": _cmp(lambda a, b: a > b),
    "ge": _cmp(lambda a, b: a >= b), "not": lambda v: not _truth(v), "and": _and, "or": _or,
    "print": lambda *a: "".join(go_str(x) for x in a), "printf": _printf,
})


class _Block:
    """range / if / with: branches of (pipeline, body), an else body, and range's variables."""

    def __init__(self, kind: str, pipe, variables: list[str]) -> None:
        self.kind, self.variables = kind, variables
        self.branches: list[tuple[Any, list]] = [(pipe, [])]
        self.else_body: list | None = None

    @property
    def body(self) -> list:
        return self.else_body if self.else_body is not None else self.branches[-1][1]


class Template:
    """A parsed template: render(obj) any number of times."""

    def __init__(self, text: str) -> None:
        self.text = text
        root: list = []
        stack: list[tuple[list, _Block | None]] = [(root, None)]
        pos = 0
        for m in _ACTION.finditer(text):
            literal = text[pos:m.start()]
            if m[1]:
                literal = literal.rstrip()
            if literal:
                stack[-1][0].append(literal)
            pos = m.end()
            if m[3]:
                rest = text[pos:]
                pos += len(rest) - len(rest.lstrip())
            self._action(m[2].strip(), stack)
        tail = text[pos:]
        if "{{" in tail:
            raise TemplateError(f"template: {text!r}: unclosed action (missing }}}})")
        if tail:
            stack[-1][0].append(tail)
        if len(stack) > 1:
            raise TemplateError(f"template: {text!r}: unexpected EOF: {{{{{stack[-1][1].kind}}}}} "
                                "has no {{end}}")
        self._root = root

    # -- parsing -----------------------------------------------------------------------------
    def _action(self, action: str, stack: list) -> None:
        body, block = stack[-1]
        if action.startswith("/*"):
            return  # a comment
        word, _, rest = action.partition(" ")
        rest = rest.strip()
        if word in ("range", "if", "with"):
            variables: list[str] = []
            if word == "range" and ":=" in rest:
                names, _, rest = rest.partition(":=")
                variables = [n.strip() for n in names.split(",")]
                if not all(re.fullmatch(r"\$\w+", n) for n in variables) or len(variables) > 2:
                    raise TemplateError(f"template: {self.text!r}: bad range variables {names!r}")
            if not rest:
                raise TemplateError(f"template: {self.text!r}: missing value for {word}")
            b = _Block(word, self._parse(rest), variables)
            body.append(b)
            stack.append((b.branches[0][1], b))
        elif word == "else":
            if block is None or block.else_body is not None:
                raise TemplateError(f"template: {self.text!r}: unexpected {{{{else}}}}")
            if rest.startswith("if ") and block.kind == "if":
                block.branches.append((self._parse(rest[3:].strip()), []))
            elif rest:
                raise TemplateError(f"template: {self.text!r}: unexpected {{{{else {rest}}}}}")
            else:
                block.else_body = []
            stack[-1] = (block.body, block)
        elif word == "end":
            if block is None or rest:
                raise TemplateError(f"template: {self.text!r}: unexpected {{{{end}}}}")
            stack.pop()
        elif word in _UNSUPPORTED:
            raise TemplateError(f"template: {word!r} is not supported by minirun's templates")
        else:
            body.append(self._parse(action))

    def _tokens(self, action: str) -> list[tuple[str, Any]]:
        out, pos = [], 0
        while pos < len(action):
            if action[pos:].strip() == "":
                break
            m = _TOKEN.match(action, pos)
            if m is None or m.end() == pos:
                raise TemplateError(f"template: {self.text!r}: cannot parse {action!r}")
            pos = m.end()
            if m[1]:
                out.append(("const", json.loads(m[1])))
            elif m[2]:
                out.append(("const", m[2][1:-1]))
            elif m[3]:
                out.append(("punct", m[3]))
            else:
                out.append(self._word(m[4]))
        return out

    def _parse(self, action: str):
        """An action -> ("decl", name, pipeline) or a pipeline: a list of commands, each a
        list of operands, an operand ("const"|"field"|"var"|"func", value) or ("pipe", pipeline)."""
        toks = self._tokens(action)
        if len(toks) >= 2 and toks[0][0] == "var" and toks[1] == ("punct", ":="):
            return ("decl", toks[0][1][0], self._pipeline_of(toks[2:], action))
        return self._pipeline_of(toks, action)

    def _pipeline_of(self, toks: list, action: str) -> list:
        pipeline, pos = self._read_pipeline(toks, 0, action)
        if pos != len(toks):
            raise TemplateError(f"template: {self.text!r}: unexpected {toks[pos][1]!r} in "
                                f"{{{{{action}}}}}")
        return pipeline

    def _read_pipeline(self, toks: list, pos: int, action: str) -> tuple[list, int]:
        commands: list[list] = [[]]
        while pos < len(toks):
            kind, value = toks[pos]
            if (kind, value) == ("punct", "|"):
                commands.append([])
            elif (kind, value) == ("punct", "("):
                sub, pos = self._read_pipeline(toks, pos + 1, action)
                if pos >= len(toks) or toks[pos] != ("punct", ")"):
                    raise TemplateError(f"template: {self.text!r}: unclosed ( in {{{{{action}}}}}")
                commands[-1].append(("pipe", sub))
            elif (kind, value) == ("punct", ")"):
                break
            elif kind == "punct":
                raise TemplateError(f"template: {self.text!r}: unexpected {value!r}")
            else:
                commands[-1].append((kind, value))
            pos += 1
        if any(not c for c in commands):
            raise TemplateError(f"template: {self.text!r}: empty command in {{{{{action}}}}}")
        return commands, pos

    def _word(self, word: str) -> tuple[str, Any]:
        if word.startswith("."):
            if word == ".":
                return ("field", [])
            path = word[1:].split(".")
            if not all(re.fullmatch(r"\w+", p) for p in path):
                raise TemplateError(f"template: {self.text!r}: bad field {word!r}")
            return ("field", path)
        if word.startswith("$"):
            name, *path = word.split(".")
            if not re.fullmatch(r"\$\w*", name) or not all(re.fullmatch(r"\w+", p) for p in path):
                raise TemplateError(f"template: {self.text!r}: bad variable {word!r}")
            return ("var", [name, *path])
        if re.fullmatch(r"-?\d+", word):
            return ("const", int(word))
        if re.fullmatch(r"-?\d+\.\d*", word):
            return ("const", float(word))
        if word in ("true", "false"):
            return ("const", word == "true")
        if word in ("nil",):
            return ("const", None)
        if word in FUNCS:
            return ("func", word)
        if word in _UNSUPPORTED or word in ("range", "if", "with", "else", "end"):
            raise TemplateError(f"template: {word!r} is not supported here by minirun's templates")
        raise TemplateError(f'template: {self.text!r}: function "{word}" not defined')

    # -- rendering ---------------------------------------------------------------------------
    def render(self, obj: Any) -> str:
        out: list[str] = []
        self._run(self._root, obj, {"$": obj}, out)
        return "".join(out)

    def _run(self, nodes: list, dot: Any, env: dict, out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, str):
                out.append(node)
            elif isinstance(node, _Block):
                self._block(node, dot, env, out)
            elif isinstance(node, tuple) and node[0] == "decl":
                env[node[1]] = self._pipeline(node[2], dot, env)
            else:
                value = self._pipeline(node, dot, env)
                out.append(value if isinstance(value, str) else go_str(value))

    def _block(self, b: _Block, dot: Any, env: dict, out: list[str]) -> None:
        if b.kind == "range":
            pipe, body = b.branches[0]
            value = self._pipeline(pipe, dot, env)
            items: list[tuple[Any, Any]]
            if isinstance(value, dict):
                items = [(k, value[k]) for k in sorted(value)]
            elif isinstance(value, (list, tuple)):
                items = list(enumerate(value))
            elif isinstance(value, int) and not isinstance(value, bool):
                items = [(i, i) for i in range(value)]
            elif value is None:
                items = []
            else:
                raise TemplateError(f"template: {self.text!r}: range can't iterate over "
                                    f"{go_str(value)}")
            if not items:
                if b.else_body is not None:
                    self._run(b.else_body, dot, env, out)
                return
            for key, elem in items:
                inner = dict(env)
                if len(b.variables) == 1:
                    inner[b.variables[0]] = elem
                elif len(b.variables) == 2:
                    inner[b.variables[0]], inner[b.variables[1]] = key, elem
                self._run(body, elem, inner, out)
            return
        for pipe, body in b.branches:
            value = self._pipeline(pipe, dot, env)
            if _truth(value):
                self._run(body, value if b.kind == "with" else dot, dict(env), out)
                return
        if b.else_body is not None:
            self._run(b.else_body, dot, dict(env), out)

    def _pipeline(self, commands: list, dot: Any, env: dict) -> Any:
        value: Any = _NOTHING
        for command in commands:
            value = self._command(command, dot, env, value)
        return value

    def _command(self, command: list, dot: Any, env: dict, piped: Any) -> Any:
        kind, head = command[0]
        args = [self._value(k, v, dot, env) for k, v in command[1:]]
        if piped is not _NOTHING:
            args.append(piped)
        if kind != "func":
            if args:
                raise TemplateError(f"template: {self.text!r}: can't give an argument to a non-function")
            return self._value(kind, head, dot, env)
        try:
            return FUNCS[head](*args)
        except TypeError:
            raise TemplateError(f"template: {self.text!r}: wrong number of args for {head}") from None

    def _value(self, kind: str, value: Any, dot: Any, env: dict) -> Any:
        if kind == "const":
            return value
        if kind == "func":
            return FUNCS[value]()
        if kind == "pipe":
            return self._pipeline(value, dot, env)
        if kind == "var":
            name, *path = value
            if name not in env:
                raise TemplateError(f"template: {self.text!r}: undefined variable {name}")
            return self._field(env[name], path)
        return self._field(dot, value)

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


def inspect_output(rows: list, fmt: str = "") -> str:
    """What an `inspect` prints: the objects as JSON (indent 4), or the template rendered once
    per object (with the shell escapes \\t and \\n expanded)."""
    if not fmt:
        return json.dumps(rows, indent=4) + "\n"
    t = Template(fmt.replace("\\t", "\t").replace("\\n", "\n"))
    return "".join(t.render(r) + "\n" for r in rows)


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
