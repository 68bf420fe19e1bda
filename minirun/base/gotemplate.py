"""Go's text/template for --format and inspect -f, as the docker CLI runs it.

    render("{{.Repository}}:{{.Tag}}", row)                          -> "alpine:latest"
    render('{{(index .NetworkSettings.Networks "mynet").IPAddress}}', inspected)
    render("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}", inspected)
    Format("table {{.Repository}}\\t{{.Size}}", HEADERS).write(rows)  -> aligned, with a header

Why a parser of our own, with Go's grammar rather than a looser one: users paste what Docker's
documentation and Stack Overflow show, and a template that works with docker must give the same
text here, and a template that fails must fail with the message docker prints (`template: :1:2:
executing "" at <.Foo>: map has no entry for key "Foo"`), so that the error points at the column.

What is Go's: text and actions with `{{-`/`-}}` trimming and `{{/* comments */}}`; pipelines of
commands joined by `|` (the value passed as the last argument); operands `.`, `.A.B`, `$`,
`$x.A`, constants, parenthesised pipelines with fields after them (`(index .M "k").F`);
`{{$x := ...}}` and `{{$x = ...}}`; `if`/`else if`/`else`, `range` (with `$i, $e :=`, `else`),
`with` (with `else`), `end`; the builtins and, or, not, len, index, slice, print, printf,
println, eq, ne, lt, le, gt, ge, html, js, urlquery. Docker's functions (cli/templates): json,
split, join, title, lower, upper, pad, truncate; in a table's header row all but pad return their
first argument unchanged, as docker's HeaderFunctions do. `define`, `template`, `block` are refused.

Values print as Go's fmt does: lists as [a b], maps as map[k:v] (keys sorted), None as <nil>,
a missing map key as <no value>. The `table` and `json` formats and the shell escapes \\t and \\n
are the docker CLI's, not Go's: Format handles them.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Iterable

from ..errors import MinirunError
# minirun.record's dataclass, not the standard one: each standard @dataclass execs generated
# code (~0.3 ms a class, ~3.5 ms for this module's), and every `ps` and `images` imports it.
from ..record import dataclass, field

from .table import TABLE_MINWIDTH, TABLE_PADDING, tabwrite  # noqa: F401 (re-exported)


class TemplateError(MinirunError):
    """A format template does not parse (Go's parse error) or fails on an object (an execution
    error naming the position and the node). The message is Go's; `wording` adds the prefix the
    docker command prints ("template parsing error: "), and the exit status is docker's: 64 for
    a template an inspect-like command cannot parse, 1 otherwise."""

    exit_code = 1
    docker_status = True  # the CLI's Group keeps exit_code as it is (1 is not made 125)

    def __init__(self, go_message: str, parse: bool = False) -> None:
        super().__init__(go_message)
        self.go_message, self.parse = go_message, parse

    def worded(self, wording: "Wording") -> "TemplateError":
        prefix = wording.parse_prefix if self.parse else wording.exec_prefix
        e = TemplateError(self.go_message, self.parse)
        e.args = (prefix + self.go_message,)
        e.exit_code = wording.parse_exit if self.parse else 1
        return e


@dataclass
class Wording:
    """How one docker command words a template error, and the exit status of a parse error."""

    parse_prefix: str = "template parsing error: "
    exec_prefix: str = "template parsing error: "
    parse_exit: int = 1


INSPECT_WORDING = Wording(parse_exit=64)                      # inspect, info, version
LIST_WORDING = Wording()                                      # images, volume ls, network ls, df
PS_WORDING = Wording("failed to parse template: ", "failed to execute template: ")
PLAIN_WORDING = Wording("template parsing error: ", "", 64)   # info: Go's execution error alone


class _NoValue:
    """What a missing map key evaluates to (Go's invalid reflect.Value): prints <no value>."""

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE = _NoValue()


class Row(dict):
    """A listing's row (docker's formatter contexts): `{{json .}}` of it is json.Marshal's,
    with <, > and & escaped, where `{{json .Field}}` is not (docker's json func)."""


def _json_default(value: Any) -> Any:
    if value is NO_VALUE:
        return None
    raise TypeError(f"{type(value).__name__} is not JSON")


def go_json(value: Any) -> str:
    """docker's json function: encoding/json without HTML escaping, compact, non-ASCII kept;
    a listing's row (Row) escapes <, >, & as json.Marshal does in its MarshalJSON."""
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if not callable(v)}  # a row's methods
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _row_json(value: Row) -> str:
    text = go_json(dict(value))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def go_str(value: Any) -> str:
    """How Go's text/template prints a value (fmt's %v)."""
    if value is None:
        return "<nil>"
    if value is NO_VALUE:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_str(value[k])}" for k in sorted(value)
                                 if not callable(value[k])) + "]"
    return str(value)


class _Byte(int):
    """A byte of a string (index "abc" 1): Go's uint8."""


def go_type(value: Any) -> str:
    """The Go type a value would have, for error messages (string, int, []interface {} ...)."""
    if isinstance(value, _Byte):
        return "uint8"
    if value is None:
        return "interface {}"
    for t, name in ((bool, "bool"), (int, "int"), (float, "float64"), (str, "string")):
        if isinstance(value, t):
            return name
    if isinstance(value, (list, tuple)):
        return "[]string" if value and all(isinstance(v, str) for v in value) else "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return type(value).__name__


def _quote_plus(text: str) -> str:
    import urllib.parse  # here: ~1.6 ms (it brings ipaddress), for a function nobody calls

    return urllib.parse.quote_plus(text)


class _CallError(Exception):
    """A function's own failure: Go prints `error calling NAME: MESSAGE`."""


# -- functions -----------------------------------------------------------------------------------

def _title(s: str) -> str:
    # strings.Title: a letter after anything that is not a letter, digit, _ or ' starts a word
    return re.sub(r"(^|[^\w'])([^\W_])", lambda m: m[1] + m[2].upper(), s)


def _pad(s: Any, before: int, after: int) -> str:
    s = go_str(s)
    return s if s == "" else " " * int(before) + s + " " * int(after)


def _split(s: Any, sep: str) -> list[str]:
    s = go_str(s)
    if sep == "":
        return list(s)
    return s.split(sep)


def _join(items: Any, sep: str) -> str:
    if not isinstance(items, (list, tuple)) and items is not None:
        raise _CallError(f"wrong type for value; expected []string; got {go_type(items)}")
    return sep.join(go_str(i) for i in (items or []))


def _index(v: Any, *keys: Any) -> Any:
    for k in keys:
        if isinstance(v, dict):
            v = v.get(k, "")  # Go: the zero value of a missing key (docker's maps hold strings)
        elif isinstance(v, (list, tuple, str)) and isinstance(k, int) and not isinstance(k, bool):
            if not 0 <= k < len(v):
                raise _CallError(f"error calling index: index out of range: {k}")
            v = v[k] if not isinstance(v, str) else _Byte(v.encode()[k])
        elif v is None or v is NO_VALUE:
            raise _CallError("index of untyped nil")
        else:
            raise _CallError(f"can't index item of type {go_type(v)}")
    return v


def _slice(v: Any, *idx: int) -> Any:
    if not isinstance(v, (list, tuple, str)):
        raise _CallError(f"can't slice item of type {go_type(v)}")
    return v[slice(*idx)] if len(idx) > 1 else v[idx[0]:] if idx else v


def _len(v: Any) -> int:
    if isinstance(v, (list, tuple, str, dict)):
        return len(v.encode() if isinstance(v, str) else v)
    raise _CallError(f"len of type {go_type(v)}")


def _printf(fmt: str, *args: Any) -> str:
    """fmt.Sprintf's common verbs: %v %s %d %q %t %f %x ... (Go's values, Python's padding)."""
    it = iter(args)

    def verb(m: re.Match) -> str:
        flags, v = m[1], m[2]
        if v == "%":
            return "%"
        x = next(it, NO_VALUE)
        if x is NO_VALUE:
            return f"%!{v}(MISSING)"
        if v in "vs":
            return ("%" + flags + "s") % go_str(x)
        if v == "q":
            return ("%" + flags + "s") % json.dumps(go_str(x), ensure_ascii=False)
        if v == "t":
            return go_str(x)
        try:
            return ("%" + flags + v) % x
        except (TypeError, ValueError):
            return f"%!{v}({go_type(x)}={go_str(x)})"

    return re.sub(r"%([-+ 0#]*\d*(?:\.\d+)?)([vsdqtfxXoegbc%])", verb, fmt)


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if v is None:
        return "nil"
    raise _CallError("invalid type for comparison")


def _eq(a: Any, *rest: Any) -> bool:
    if not rest:
        raise _CallError("missing argument for comparison")
    for b in rest:
        if a is None or b is None or isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
            if a == b:
                return True
            continue
        if _kind(a) != _kind(b):
            raise _CallError("incompatible types for comparison")
        if a == b:
            return True
    return False


def _ordered(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        ka, kb = _kind(a), _kind(b)
        if ka in ("bool", "nil") or kb in ("bool", "nil"):
            raise _CallError("invalid type for comparison")
        if ka != kb:
            raise _CallError("incompatible types for comparison")
        return op(a, b)
    return compare


def _js(s: Any) -> str:
    out = []
    for ch in go_str(s):
        if ch in "\\'\"<>&=" or ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04X}" if ch in "<>&=" or ord(ch) < 0x20 else "\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _html(*a: Any) -> str:
    s = "".join(go_str(x) for x in a)
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&#34;").replace("'", "&#39;").replace("\x00", "\ufffd"))


@dataclass
class Func:
    """A template function and how many arguments it takes (max None: variadic)."""

    fn: Callable[..., Any]
    min: int
    max: int | None


FUNCS: dict[str, Func] = {
    # docker's (cli/templates/templates.go)
    "json": Func(lambda v: _row_json(v) if isinstance(v, Row) else go_json(v), 1, 1),
    "split": Func(_split, 2, 2),
    "join": Func(_join, 2, 2),
    "title": Func(lambda s: _title(go_str(s)), 1, 1),
    "lower": Func(lambda s: go_str(s).lower(), 1, 1),
    "upper": Func(lambda s: go_str(s).upper(), 1, 1),
    "pad": Func(_pad, 3, 3),
    "truncate": Func(lambda s, n: go_str(s)[:int(n)], 2, 2),
    # Go's builtins (and/or are evaluated lazily in _call)
    "and": Func(None, 1, None), "or": Func(None, 1, None),  # type: ignore[arg-type]
    "not": Func(lambda v: not _truth(v), 1, 1),
    "len": Func(_len, 1, 1),
    "index": Func(_index, 1, None),
    "slice": Func(_slice, 1, None),
    "print": Func(lambda *a: "".join(go_str(x) for x in a), 0, None),
    "printf": Func(_printf, 1, None),
    "println": Func(lambda *a: " ".join(go_str(x) for x in a) + "\n", 0, None),
    "eq": Func(_eq, 1, None),
    "ne": Func(lambda a, b: not _eq(a, b), 2, 2),
    "lt": Func(_ordered(lambda a, b: a < b), 2, 2),
    "le": Func(_ordered(lambda a, b: a <= b), 2, 2),
    "gt": Func(_ordered(lambda a, b: a > b), 2, 2),
    "ge": Func(_ordered(lambda a, b: a >= b), 2, 2),
    "html": Func(_html, 0, None),
    "js": Func(lambda *a: _js("".join(go_str(x) for x in a)), 0, None),
    "urlquery": Func(lambda *a: _quote_plus("".join(go_str(x) for x in a)), 0, None),
}
# docker's HeaderFunctions: in a table's header row these give back their first argument (pad
# is not among them: it keeps the header aligned with its column)
HEADER_IDENTITY = ("json", "split", "join", "title", "lower", "upper", "truncate")


def _truth(v: Any) -> bool:
    """Go's truth: false, 0, nil and empty strings, lists and maps are false."""
    return not (v is None or v is NO_VALUE or v is False
                or (isinstance(v, (int, float)) and not isinstance(v, bool) and v == 0)
                or (isinstance(v, (str, list, tuple, dict)) and len(v) == 0))


# -- the tree ------------------------------------------------------------------------------------

@dataclass
class Node:
    pos: int

    def __str__(self) -> str:  # Go's Node.String(), for "at <...>" in errors
        return ""


@dataclass
class FieldN(Node):
    names: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "".join("." + n for n in self.names) or "."


@dataclass
class VarN(Node):
    name: str = "$"
    names: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return self.name + "".join("." + n for n in self.names)


@dataclass
class ConstN(Node):
    value: Any = None
    text: str = ""

    def __str__(self) -> str:
        return self.text


@dataclass
class IdentN(Node):
    name: str = ""

    def __str__(self) -> str:
        return self.name


@dataclass
class ChainN(Node):
    node: Node = None  # type: ignore[assignment]
    names: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        inner = f"({self.node})" if isinstance(self.node, PipeN) else str(self.node)
        return inner + "".join("." + n for n in self.names)


@dataclass
class CmdN(Node):
    args: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, PipeN) else str(a) for a in self.args)


@dataclass
class PipeN(Node):
    decl: list[str] = field(default_factory=list)
    assign: bool = False
    cmds: list[CmdN] = field(default_factory=list)

    def __str__(self) -> str:
        head = (", ".join(self.decl) + (" = " if self.assign else " := ")) if self.decl else ""
        return head + " | ".join(str(c) for c in self.cmds)


@dataclass
class BlockN(Node):
    kind: str = ""
    pipe: PipeN = None  # type: ignore[assignment]
    body: list = field(default_factory=list)
    else_body: list | None = None


_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\]|\\.)+')
  | (?P<punct>:=|=|\||\(|\)|,)
  | (?P<field>\.[A-Za-z_][\w]*)
  | (?P<dot>\.)
  | (?P<var>\$[\w]*)
  | (?P<num>[-+]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*)?\.?\d[\d_]*(?:[eE][-+]?\d+)?))
  | (?P<ident>[A-Za-z_]\w*)
""", re.X)
_KEYWORDS = {"if", "range", "with", "else", "end", "define", "template", "block", "break",
             "continue", "nil", "true", "false"}


class _Tok:
    __slots__ = ("kind", "text", "pos", "spaced")

    def __init__(self, kind: str, text: str, pos: int, spaced: bool) -> None:
        self.kind, self.text, self.pos, self.spaced = kind, text, pos, spaced


class Template:
    """A parsed template: render(obj) any number of times.

    name: the template's name in messages (docker's is "", `version`'s is "version").
    """

    def __init__(self, text: str, name: str = "") -> None:
        self.text, self.name = text, name
        self._root = self._parse_text()

    # -- errors ----------------------------------------------------------------------------------
    def _line(self, pos: int) -> int:
        return 1 + self.text.count("\n", 0, pos)

    def _parse_error(self, pos: int, message: str) -> TemplateError:
        return TemplateError(f"template: {self.name}:{self._line(pos)}: {message}", parse=True)

    def _exec_error(self, node: Node, message: str) -> TemplateError:
        pos = node.pos
        nl = self.text.rfind("\n", 0, pos)
        col = pos if nl < 0 else pos - nl - 1
        return TemplateError(f'template: {self.name}:{self._line(pos)}:{col}: executing '
                             f'"{self.name}" at <{node}>: {message}')

    # -- lexing and parsing ----------------------------------------------------------------------
    def _parse_text(self) -> list:
        text = self.text
        root: list = []
        stack: list[tuple[list, BlockN | None]] = [(root, None)]
        pos = 0
        while True:
            start = text.find("{{", pos)
            if start < 0:
                if text[pos:]:
                    stack[-1][0].append(text[pos:])
                break
            literal = text[pos:start]
            inner = start + 2
            if text.startswith("- ", inner) or text.startswith("-\t", inner) or \
                    text.startswith("-\n", inner):
                literal, inner = literal.rstrip(" \t\r\n"), inner + 1
            if literal:
                stack[-1][0].append(literal)
            if text.startswith("/*", inner) or text.startswith(" /*", inner):
                end = text.find("*/", inner)
                close = text.find("}}", end + 2) if end >= 0 else -1
                if end < 0 or close < 0 or text[end + 2:close].strip(" -") != "":
                    raise self._parse_error(start, "unclosed comment")
                trim_right = text[end + 2:close].strip() == "-"
                pos = close + 2
                if trim_right:
                    pos += len(text[pos:]) - len(text[pos:].lstrip(" \t\r\n"))
                continue
            toks, end, trim_right = self._lex_action(inner, start)
            pos = end
            if trim_right:
                pos += len(text[pos:]) - len(text[pos:].lstrip(" \t\r\n"))
            self._action(toks, start, stack)
        if len(stack) > 1:
            raise self._parse_error(len(text), "unexpected EOF")
        return root

    def _lex_action(self, pos: int, start: int) -> tuple[list[_Tok], int, bool]:
        """The tokens of one action from pos, and where the text goes on after its }}."""
        text, toks, spaced, depth = self.text, [], False, 0
        while True:
            if text.startswith("}}", pos):
                return toks, pos + 2, False
            if text.startswith(" -}}", pos) or text.startswith("\t-}}", pos) or \
                    text.startswith("\n-}}", pos):
                return toks, pos + 4, True
            if pos >= len(text):
                raise self._parse_error(start, "unclosed action")
            m = _TOKEN.match(text, pos)
            if m is None:
                ch = text[pos]
                raise self._parse_error(pos, f"bad character U+{ord(ch):04X} '{ch}'")
            kind = m.lastgroup or ""
            if kind == "space":
                spaced = True
            else:
                if kind == "punct" and m[0] == "(":
                    depth += 1
                elif kind == "punct" and m[0] == ")":
                    depth -= 1
                    if depth < 0:
                        raise self._parse_error(pos, "unexpected right paren")
                toks.append(_Tok(kind, m[0], pos, spaced))
                spaced = False
            pos = m.end()

    def _action(self, toks: list[_Tok], start: int, stack: list) -> None:
        body, block = stack[-1]
        if not toks:
            raise self._parse_error(start, "missing value for command")
        head = toks[0]
        word = head.text if head.kind == "ident" else ""
        if word in ("if", "range", "with"):
            rest = toks[1:]
            if not rest:
                raise self._parse_error(start, f"missing value for {word}")
            b = BlockN(rest[0].pos, word, self._pipeline(rest, start, decl_ok=True,
                                                         range_vars=word == "range"))
            body.append(b)
            stack.append((b.body, b))
        elif word == "else":
            if block is None or block.else_body is not None:
                raise self._parse_error(start, "unexpected {{else}}")
            rest = toks[1:]
            if rest and rest[0].kind == "ident" and rest[0].text in ("if", "with") and \
                    rest[0].text == block.kind:
                # {{else if x}}: Go's {{else}}{{if x}}...{{end}}, the two sharing one {{end}}
                if not rest[1:]:
                    raise self._parse_error(start, f"missing value for {block.kind}")
                inner = BlockN(rest[1].pos, block.kind, self._pipeline(rest[1:], start, decl_ok=True))
                block.else_body = [inner]
                stack[-1] = (inner.body, inner)
            elif rest:
                raise self._parse_error(start, f"unexpected {rest[0].text!r} in else")
            else:
                block.else_body = []
                stack[-1] = (block.else_body, block)
        elif word == "end":
            if block is None:
                raise self._parse_error(start, "unexpected {{end}}")
            if len(toks) > 1:
                raise self._parse_error(start, f"unexpected {toks[1].text!r} in end")
            stack.pop()
        elif word in ("define", "template", "block", "break", "continue"):
            raise self._parse_error(start, f"{{{{{word}}}}} is not supported by minirun's templates")
        else:
            body.append(self._pipeline(toks, start, decl_ok=True))

    def _pipeline(self, toks: list[_Tok], start: int, decl_ok: bool = False,
                  range_vars: bool = False) -> PipeN:
        pipe = PipeN(toks[0].pos if toks else start)
        i = 0
        if decl_ok and toks and toks[0].kind == "var":
            # $x := ..., $x = ..., or range's $i, $e := ...
            names, j = [toks[0].text], 1
            if range_vars and j + 1 < len(toks) and toks[j].text == "," and toks[j + 1].kind == "var":
                names.append(toks[j + 1].text)
                j += 2
            if j < len(toks) and toks[j].kind == "punct" and toks[j].text in (":=", "="):
                pipe.decl, pipe.assign = names, toks[j].text == "="
                if pipe.assign and names[0] not in self._declared:
                    raise self._parse_error(start, f'undefined variable "{names[0]}"')
                i = j + 1
        cmds, i = self._commands(toks, i, start)
        if i != len(toks):
            raise self._parse_error(start, f"unexpected {toks[i].text!r} in operand")
        if not cmds:
            raise self._parse_error(start, "missing value for command")
        pipe.cmds = cmds
        for name in pipe.decl:
            self._declared.add(name)
        return pipe

    @property
    def _declared(self) -> set:
        if not hasattr(self, "_vars"):
            self._vars: set[str] = {"$"}
        return self._vars

    def _commands(self, toks: list[_Tok], i: int, start: int) -> tuple[list[CmdN], int]:
        cmds: list[CmdN] = []
        cmd: CmdN | None = None
        while i < len(toks):
            t = toks[i]
            if t.kind == "punct" and t.text == ")":
                break
            if t.kind == "punct" and t.text == "|":
                if cmd is None or not cmd.args:
                    raise self._parse_error(start, "missing command")
                cmd = None
                i += 1
                continue
            if t.kind == "punct" and t.text not in ("(",):
                raise self._parse_error(start, f"unexpected {t.text!r} in operand")
            if cmd is None:
                cmd = CmdN(t.pos)
                cmds.append(cmd)
            node, i = self._operand(toks, i, start)
            cmd.args.append(node)
        if i > 0 and toks[i - 1].kind == "punct" and toks[i - 1].text == "|":
            raise self._parse_error(start, "missing command")
        return cmds, i

    def _operand(self, toks: list[_Tok], i: int, start: int) -> tuple[Node, int]:
        t = toks[i]
        node: Node
        if t.kind == "punct" and t.text == "(":
            inner = PipeN(t.pos)
            inner.cmds, j = self._commands(toks, i + 1, start)
            if j >= len(toks) or toks[j].text != ")":
                raise self._parse_error(start, "unclosed left paren")
            if not inner.cmds:
                raise self._parse_error(start, "missing command")
            node, i = inner, j + 1
        elif t.kind == "field":
            node, i = FieldN(t.pos, [t.text[1:]]), i + 1
        elif t.kind == "dot":
            node, i = FieldN(t.pos, []), i + 1
        elif t.kind == "var":
            if t.text not in self._declared:
                raise self._parse_error(start, f'undefined variable "{t.text}"')
            node, i = VarN(t.pos, t.text, []), i + 1
        elif t.kind in ("str", "raw", "char", "num"):
            node, i = ConstN(t.pos, self._constant(t, start), t.text), i + 1
        elif t.kind == "ident":
            if t.text in ("true", "false"):
                node = ConstN(t.pos, t.text == "true", t.text)
            elif t.text == "nil":
                node = ConstN(t.pos, None, "nil")
            elif t.text in _KEYWORDS:
                raise self._parse_error(start, f"unexpected <{t.text}> in command")
            elif t.text not in FUNCS:
                raise self._parse_error(start, f'function "{t.text}" not defined')
            else:
                node = IdentN(t.pos, t.text)
            i += 1
        else:
            raise self._parse_error(start, f"unexpected {t.text!r} in operand")
        # fields right after an operand, with no space between: .A.B, $x.A, (pipeline).A
        chain: list[_Tok] = []
        while i < len(toks) and toks[i].kind == "field" and not toks[i].spaced:
            chain.append(toks[i])
            i += 1
        if chain:
            names = [c.text[1:] for c in chain]
            if isinstance(node, FieldN) and node.names:
                node = FieldN(chain[0].pos, node.names + names)  # Go: the chain's position
            elif isinstance(node, VarN):
                node = VarN(chain[0].pos, node.name, names)
            elif isinstance(node, (ConstN, IdentN)) or (isinstance(node, FieldN) and not node.names):
                raise self._parse_error(start, f"unexpected . after term {str(node)!r}")
            else:
                node = ChainN(chain[0].pos, node, names)
        return node, i

    def _constant(self, t: _Tok, start: int) -> Any:
        s = t.text
        try:
            if t.kind == "raw":
                return s[1:-1]
            if t.kind == "str":
                try:
                    return json.loads(s)
                except ValueError:
                    return s[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
            if t.kind == "char":
                body = s[1:-1]
                return ord(body.encode().decode("unicode_escape") if body.startswith("\\") else body)
            clean = s.replace("_", "")
            if re.fullmatch(r"[-+]?0[xXbBoO].*", clean):
                return int(clean, 0)
            if re.fullmatch(r"[-+]?\d+", clean):
                return int(clean)
            return float(clean)
        except (ValueError, UnicodeError):
            raise self._parse_error(start, f"bad number syntax: {s!r}") from None

    # -- rendering -------------------------------------------------------------------------------
    def render(self, obj: Any, *, missing_key: str = "default", type_name: str | None = None,
               header: bool = False) -> str:
        """The template applied to obj.

        missing_key: "default" (a missing map key is <no value>, Go's default) or "error" (`map
        has no entry for key`: docker inspect's raw-JSON fallback); type_name: the Go type of
        obj, for `can't evaluate field X in type T` when obj lacks a field (docker's listing
        contexts and typed inspect structs); header: docker's header row, its functions giving
        back their first argument."""
        st = _State(obj, missing_key, type_name, header)
        out: list[str] = []
        self._run(self._root, obj, [("$", obj)], out, st)
        return "".join(out)

    def _run(self, nodes: list, dot: Any, env: list, out: list[str], st: "_State") -> None:
        mark = len(env)
        for node in nodes:
            if isinstance(node, str):
                out.append(node)
            elif isinstance(node, BlockN):
                self._block(node, dot, env, out, st)
            else:
                value = self._pipe(node, dot, env, st)
                if not node.decl:
                    out.append(value if isinstance(value, str) else go_str(value))
        del env[mark:]

    def _block(self, b: BlockN, dot: Any, env: list, out: list[str], st: "_State") -> None:
        mark = len(env)
        if b.kind == "range":
            value = self._pipe(b.pipe, dot, env, st, declare=False)
            if isinstance(value, dict):
                items = [(k, value[k]) for k in sorted(value)]
            elif isinstance(value, (list, tuple)):
                items = list(enumerate(value))
            elif isinstance(value, int) and not isinstance(value, bool):
                items = [(i, i) for i in range(value)]
            elif value is None or value is NO_VALUE:
                items = []
            else:
                raise self._exec_error(b.pipe.cmds[-1].args[-1] if len(b.pipe.cmds[-1].args) == 1
                                       else b.pipe.cmds[-1], f"range can't iterate over {go_str(value)}")
            for key, elem in items:
                if len(b.pipe.decl) == 1:
                    env.append((b.pipe.decl[0], elem))
                elif len(b.pipe.decl) == 2:
                    env.extend([(b.pipe.decl[0], key), (b.pipe.decl[1], elem)])
                self._run(b.body, elem, env, out, st)
                del env[mark:]
            if not items and b.else_body is not None:
                self._run(b.else_body, dot, env, out, st)
            return
        value = self._pipe(b.pipe, dot, env, st)
        if _truth(value):
            self._run(b.body, value if b.kind == "with" else dot, env, out, st)
        elif b.else_body is not None:
            self._run(b.else_body, dot, env, out, st)
        del env[mark:]

    def _pipe(self, pipe: PipeN, dot: Any, env: list, st: "_State", declare: bool = True) -> Any:
        value: Any = _NOTHING
        for cmd in pipe.cmds:
            value = self._command(cmd, dot, env, value, st)
        if declare and pipe.decl:
            if pipe.assign:
                for i in range(len(env) - 1, -1, -1):
                    if env[i][0] == pipe.decl[0]:
                        env[i] = (pipe.decl[0], value)
                        break
            else:
                env.append((pipe.decl[0], value))
        return value

    def _command(self, cmd: CmdN, dot: Any, env: list, piped: Any, st: "_State") -> Any:
        first = cmd.args[0]
        if isinstance(first, IdentN):
            return self._call(first, cmd, dot, env, piped, st)
        if isinstance(first, (FieldN, VarN, ChainN)) and (len(cmd.args) > 1 or piped is not _NOTHING):
            # a method of a listing's row (docker's {{.Label "com.example"}})
            target = self._eval(first, dot, env, st)
            if callable(target) or st.header:
                args = [self._eval(a, dot, env, st) for a in cmd.args[1:]]
                if piped is not _NOTHING:
                    args.append(piped)
                if st.header:
                    return args[0] if args else ""
                return target(*args)
            raise self._exec_error(first, f"can't give argument to non-function {first}")
        if len(cmd.args) > 1 or piped is not _NOTHING:
            raise self._exec_error(first, f"can't give argument to non-function {first}")
        value = self._eval(first, dot, env, st)
        if callable(value) and isinstance(first, (FieldN, VarN, ChainN)):
            return "" if not st.header else str(first).rsplit(".", 1)[-1]
        return value

    def _call(self, ident: IdentN, cmd: CmdN, dot: Any, env: list, piped: Any, st: "_State") -> Any:
        f = FUNCS[ident.name]
        n = len(cmd.args) - 1 + (piped is not _NOTHING)
        if f.max is None and n < f.min:
            raise self._exec_error(ident, f"wrong number of args for {ident.name}: want at least "
                                          f"{f.min} got {n}")
        if f.max is not None and n != f.min:
            raise self._exec_error(ident, f"wrong number of args for {ident.name}: want {f.min} "
                                          f"got {n}")
        if ident.name in ("and", "or"):
            # Go 1.18: and/or stop at the first argument that decides
            value: Any = None
            for a in cmd.args[1:]:
                value = self._eval(a, dot, env, st)
                if _truth(value) != (ident.name == "and"):
                    return value
            return piped if piped is not _NOTHING else value
        args = [self._eval(a, dot, env, st) for a in cmd.args[1:]]
        if piped is not _NOTHING:
            args.append(piped)
        if st.header and ident.name in HEADER_IDENTITY:
            return args[0]
        try:
            return f.fn(*args)
        except _CallError as e:
            raise self._exec_error(cmd, f"error calling {ident.name}: {e}") from None
        except (TypeError, ValueError) as e:
            raise self._exec_error(cmd, f"error calling {ident.name}: {e}") from None

    def _eval(self, node: Node, dot: Any, env: list, st: "_State") -> Any:
        if isinstance(node, ConstN):
            return node.value
        if isinstance(node, FieldN):
            return self._fields(node, dot, node.names, st)
        if isinstance(node, VarN):
            for name, value in reversed(env):
                if name == node.name:
                    return self._fields(node, value, node.names, st)
            raise self._exec_error(node, f"undefined variable: {node.name}")
        if isinstance(node, PipeN):
            return self._pipe(node, dot, env, st)
        if isinstance(node, ChainN):
            return self._fields(node, self._eval(node.node, dot, env, st), node.names, st)
        if isinstance(node, IdentN):
            return self._call(node, CmdN(node.pos, [node]), dot, env, _NOTHING, st)
        raise self._exec_error(node, "cannot evaluate")

    def _fields(self, node: Node, obj: Any, names: list[str], st: "_State") -> Any:
        for name in names:
            if st.header and isinstance(obj, _Headers):
                return obj[name]
            if isinstance(obj, dict):
                if name in obj:
                    obj = obj[name]
                elif obj is st.root and st.type_name:
                    raise self._exec_error(node, f"can't evaluate field {name} in type {st.type_name}")
                elif st.missing_key == "error":
                    raise self._exec_error(node, f'map has no entry for key "{name}"')
                else:
                    obj = NO_VALUE
            elif obj is None or obj is NO_VALUE:
                raise self._exec_error(node, f"nil pointer evaluating interface {{}}.{name}")
            elif isinstance(obj, (str, int, float, bool, list, tuple)):
                raise self._exec_error(node, f"can't evaluate field {name} in type {go_type(obj)}")
            elif not name.startswith("_") and hasattr(obj, name):
                obj = getattr(obj, name)
            else:
                raise self._exec_error(node, f"can't evaluate field {name} in type "
                                             f"{st.type_name if obj is st.root and st.type_name else type(obj).__name__}")
        return obj


@dataclass
class _State:
    root: Any
    missing_key: str
    type_name: str | None
    header: bool


_NOTHING = object()


def inspect_output(rows: list, fmt: str = "", *, missing_key: str = "error",
                   type_name: str | None = None, wording: Wording = INSPECT_WORDING) -> str:
    """What an `inspect` prints: the objects as JSON (indent 4), or the template rendered once
    per object. Docker's inspect falls back to the raw JSON with missingkey=error (containers,
    networks, images: `map has no entry for key "Foo"`); volume inspect has no fallback: give
    its type_name."""
    if not fmt:
        return json.dumps(rows, indent=4) + "\n"
    try:
        t = Template(fmt)
        return "".join(t.render(r, missing_key=missing_key, type_name=type_name) + "\n"
                       for r in rows)
    except TemplateError as e:
        raise e.worded(wording) from None


def render(text: str, obj: Any, **options: Any) -> str:
    """Render one Go template against obj (no table prefix, no escape handling)."""
    return Template(text).render(obj, **options)


class Format:
    """A --format value as the docker CLI reads it: "table ..." (a header, aligned columns),
    "json" (one JSON object per line), or a plain template (one rendering per line).

    headers: field name -> column title (docker's per-command header map); a table's header
    row is the template rendered against it with docker's header functions (upper, json, pad
    ... give back their argument). type_name: the Go type of a row, for docker's `can't
    evaluate field X in type T`; wording: how the command words a template error.
    """

    def __init__(self, text: str, headers: dict[str, str] | None = None, default_table: str = "",
                 *, type_name: str | None = None, wording: Wording = LIST_WORDING,
                 name: str = "") -> None:
        text = text.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
        self.table = text == "table" or text.startswith("table ") or text.startswith("table\t")
        if self.table:
            text = text[len("table"):].strip(" ") or default_table
        elif text == "json":
            text = "{{json .}}"
        self.headers = headers or {}
        self.type_name, self.wording = type_name, wording
        try:
            self.template = Template(text, name)
        except TemplateError as e:
            raise e.worded(wording) from None

    def header(self) -> str:
        return self._render(_Headers(self.headers), header=True)

    def _render(self, row: Any, header: bool = False) -> str:
        try:
            return self.template.render(row, type_name=self.type_name, header=header)
        except TemplateError as e:
            raise e.worded(self.wording) from None

    def lines(self, rows: Iterable[Any]) -> list[str]:
        return [self._render(Row(row) if type(row) is dict else row) for row in rows]

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
