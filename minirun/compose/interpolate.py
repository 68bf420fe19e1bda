"""Variable interpolation in Compose files: `${VAR}`, `${VAR:-default}` and their kin.

The rules are Compose's (https://docs.docker.com/reference/compose-file/interpolation/, as
compose-go's template package implements them):

    $VAR, ${VAR}     the value, or "" when unset (Compose warns: we record the name)
    ${VAR:-word}     word when VAR is unset or empty       ${VAR-word}  word when VAR is unset
    ${VAR:+word}     word when VAR is set and not empty    ${VAR+word}  word when VAR is set
    ${VAR:?message}  an error when VAR is unset or empty   ${VAR?message} an error when unset
    $$               a literal $

`word` and `message` are interpolated in turn, so defaults nest: `${A:-${B:-c}}`. A name is
`[A-Za-z_][A-Za-z0-9_]*`; a `$` followed by anything else is kept as it is (`$1`, `a$`), but
`${` must open a valid expression and be closed, or the template is invalid.

Only values are interpolated, never mapping keys (Compose's rule). `interpolate` walks a loaded
YAML tree and names the key path of a failing value; the loader turns that into file:line.
"""

from __future__ import annotations

from collections.abc import Mapping

from minirun.errors import InvalidArgument

# The operators after a braced name, longest first so that ":-" is not read as ":" then "-".
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")

Path = tuple[str | int, ...]


class InterpolationError(InvalidArgument):
    """A template is invalid or a required variable is missing; `path` is the key path of the
    value (filled in by `interpolate`), `message` the problem alone."""

    def __init__(self, message: str, path: Path = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def _is_name_start(char: str) -> bool:
    return char == "_" or ("a" <= char.lower() <= "z")


def _is_name_char(char: str) -> bool:
    return _is_name_start(char) or char.isdigit()


def _closing_brace(text: str, start: int) -> int:
    """The index of the `}` closing the `${` whose body starts at `start`, or -1. Braces
    nest: `${A:-${B}}` closes at the last one (compose-go counts every `{` and `}`)."""
    depth = 1
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


class _Substitution:
    """One pass over one string: `lookup` gives the variables, `unset` collects the names of
    variables read while unset (Compose warns "The X variable is not set")."""

    def __init__(self, lookup: Mapping[str, str], unset: set[str] | None) -> None:
        self.lookup = lookup
        self.unset = unset

    def value(self, name: str) -> str:
        if name in self.lookup:
            return self.lookup[name]
        if self.unset is not None:
            self.unset.add(name)
        return ""

    def run(self, template: str) -> str:
        out: list[str] = []
        i = 0
        while i < len(template):
            char = template[i]
            if char != "$" or i + 1 == len(template):
                out.append(char)
                i += 1
                continue
            nxt = template[i + 1]
            if nxt == "$":                       # $$: an escaped, literal $
                out.append("$")
                i += 2
            elif nxt == "{":
                end = _closing_brace(template, i + 2)
                if end < 0:
                    raise InterpolationError(f"invalid interpolation format in {template!r}: "
                                             "a ${ is not closed (write $$ for a literal $)")
                out.append(self.braced(template[i + 2:end], template))
                i = end + 1
            elif _is_name_start(nxt):            # $NAME
                j = i + 1
                while j < len(template) and _is_name_char(template[j]):
                    j += 1
                out.append(self.value(template[i + 1:j]))
                i = j
            else:                                # $1, $-, ...: not a variable, kept as is
                out.append(char)
                i += 1
        return "".join(out)

    def braced(self, body: str, template: str) -> str:
        """The value of `${body}`."""
        j = 0
        while j < len(body) and _is_name_char(body[j]):
            j += 1
        name, rest = body[:j], body[j:]
        if not name or not _is_name_start(name[0]):
            raise InterpolationError(f"invalid interpolation format in {template!r}: "
                                     f"${{{body}}} does not start with a variable name")
        if not rest:
            return self.value(name)
        operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
        if operator is None:
            raise InterpolationError(f"invalid interpolation format in {template!r}: "
                                     f"unknown operator after {name} in ${{{body}}}")
        word = rest[len(operator):]
        is_set = name in self.lookup
        value = self.lookup.get(name, "")
        present = is_set and (value != "" or ":" not in operator)
        if operator.endswith("-"):
            return value if present else self.run(word)
        if operator.endswith("+"):
            return self.run(word) if present else value
        if not present:                          # "?" and ":?"
            reason = self.run(word)
            message = f"required variable {name} is missing a value"
            raise InterpolationError(f"{message}: {reason}" if reason else message)
        return value


def substitute(template: str, lookup: Mapping[str, str], unset: set[str] | None = None) -> str:
    """`template` with its variables replaced from `lookup`; `unset` (when given) receives the
    names read while unset. Raises InterpolationError."""
    if "$" not in template:
        return template
    return _Substitution(lookup, unset).run(template)


def interpolate(value: object, lookup: Mapping[str, str], unset: set[str] | None = None,
                path: Path = ()) -> object:
    """A copy of a loaded YAML tree with every string value interpolated (keys are left alone).
    An error carries the key path of the value, e.g. ("services", "web", "ports", 0)."""
    if isinstance(value, str):
        try:
            return substitute(value, lookup, unset)
        except InterpolationError as err:
            raise InterpolationError(err.message, path) from None
    if isinstance(value, dict):
        return {k: interpolate(v, lookup, unset, path + (k,)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, lookup, unset, path + (i,)) for i, v in enumerate(value)]
    return value
