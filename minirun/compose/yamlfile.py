"""Compose files as YAML: read with the line of every key, so that an error can say where.

Compose's Go parser reads YAML 1.2 (only true/false are booleans, `22:22` is a string), refuses
a key given twice in one mapping, and bounds alias expansion. `read_yaml` does the same and
returns each document with a `Source`: the file's name as shown and the line of every key
path, which `error_at` puts in front of a message: `compose.yaml:12: services.web.ports[0]: ...`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import yaml

from minirun.errors import InvalidArgument

KeyPath = tuple[str | int, ...]  # services.web.ports[0] is ("services", "web", "ports", 0)

# Compose refuses an alias expansion that grows past a bound ("billion laughs").
MAX_NODES = 200_000


class _YamlLoader(yaml.SafeLoader):
    """YAML 1.2's core schema, as Compose's Go parser reads files: only true/false are booleans
    (`yes`, `on` stay strings), `22:22` is a string, not a base-60 integer, and dates are
    strings. PyYAML's SafeLoader implements YAML 1.1, where all three differ. A mapping key is
    always the text written (`80:`, `true:` and `NULL:` are the strings "80", "true", "NULL")."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        self.flatten_mapping(node)               # resolve `<<: *anchor` merge keys
        mapping = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a string", key_node.start_mark)
            mapping[key_node.value] = self.construct_object(value_node, deep=deep)
        return mapping


_YAML11_TAGS = {"tag:yaml.org,2002:" + t for t in ("bool", "int", "float", "timestamp", "value")}
_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _YAML11_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"))
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*|[0-9]+)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789."))


@dataclass
class Source:
    """One YAML document: the name errors show and the 1-based line of each key path."""

    display: str
    lines: dict[KeyPath, int]

    def at(self, path: KeyPath) -> str:
        """"FILE:LINE" of the deepest part of `path` that the file has, or "FILE"."""
        for n in range(len(path), 0, -1):
            if path[:n] in self.lines:
                return f"{self.display}:{self.lines[path[:n]]}"
        return self.display


def _check_duplicate_keys(node: yaml.Node, display: str, seen: set[int]) -> None:
    """A key twice in one mapping is an error, as in Compose's parser (PyYAML keeps the last)."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: dict[str, int] = {}
        for key, value in node.value:
            if key.tag != "tag:yaml.org,2002:merge" and isinstance(key, yaml.ScalarNode):
                if key.value in lines:
                    raise InvalidArgument(
                        f"{display}:{key.start_mark.line + 1}: mapping key {key.value!r} already "
                        f"defined at line {lines[key.value]} (remove one of them)")
                lines[key.value] = key.start_mark.line + 1
            _check_duplicate_keys(value, display, seen)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicate_keys(item, display, seen)


def _record_lines(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], budget: list[int]) -> None:
    """The line of every key (and sequence item) under `node`. Runs after construction, when
    PyYAML has flattened `<<` merge keys into the mappings."""
    budget[0] -= 1
    if budget[0] < 0:
        raise InvalidArgument(f"the document expands to more than {MAX_NODES} nodes "
                              "(aliases): simplify its anchors")
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            key_path = path + (key.value if isinstance(key, yaml.ScalarNode) else "?",)
            lines[key_path] = key.start_mark.line + 1
            _record_lines(value, key_path, lines, budget)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            _record_lines(item, path + (i,), lines, budget)


def read_yaml(path: str, display: str) -> list[tuple[object, Source]]:
    """The documents of a YAML file, each with its lines."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as err:
        raise InvalidArgument(f"{display}: {err.strerror} (check the -f path)") from None
    loader = _YamlLoader(text)
    documents = []
    try:
        while loader.check_node():
            node = loader.get_node()
            _check_duplicate_keys(node, display, set())
            data = loader.construct_document(node)
            lines: dict[KeyPath, int] = {}
            _record_lines(node, (), lines, [MAX_NODES])
            documents.append((data, Source(display, lines)))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{display}:{mark.line + 1}" if mark else display
        raise InvalidArgument(f"{where}: invalid YAML: {err.problem or err.context}") from None
    except yaml.YAMLError as err:
        raise InvalidArgument(f"{display}: invalid YAML: {err}") from None
    finally:
        loader.dispose()
    return documents


def dotted(path: KeyPath) -> str:
    """("services", "web", "ports", 0) -> "services.web.ports[0]"."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def shown(value: object) -> str:
    return json.dumps(value) if isinstance(value, (str, int, float, bool)) or value is None \
        else type(value).__name__


def error_at(where: str, path: KeyPath, problem: str, kind: type = InvalidArgument) -> Exception:
    return kind(f"{where}: {dotted(path)}: {problem}" if path else f"{where}: {problem}")


# --- the Compose keys and their types -----------------------------------------------------------
