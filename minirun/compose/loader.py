"""Loading a Compose project: files -> one canonical model, as `docker compose config` shows it.

The steps, in the order Compose takes them (compose-go's loader):

1. find the files: the ones given, else COMPOSE_FILE, else compose.yaml (or compose.yml,
   docker-compose.yaml, docker-compose.yml) in the working directory or the nearest parent
   that has one, plus its override file (compose.override.yaml ...) beside it;
2. the environment: the process environment over `.env` (or the --env-file files), read from
   the working directory, and again from the project directory once the files are known;
3. the project name: the argument, else COMPOSE_PROJECT_NAME, else `name:`, else the project
   directory's name, normalised (lowercase, [a-z0-9_-], starting with a letter or digit);
4. each file: YAML (1.2, as Compose's Go parser reads it, with the line of every key kept for
   errors), interpolated, checked against the Compose keys and brought to canonical form:
   long syntax for ports and volumes, mappings for environment and labels, absolute paths;
5. the files merged in order (merge.py), then what needs the whole model: defaults (build
   context, the default network), env_file read into environment, resource names, profiles;
6. the checks that need the whole model: every service has an image or a build, every
   depends_on, network, volume, secret and config it names exists, no dependency cycle.

Every error is one InvalidArgument line, `FILE:LINE: key.path: problem (the fix)`. Keys
minirun's engine does not implement are kept in the model: the engine decides about them.
"""

from __future__ import annotations

import difflib
import hashlib
import heapq
import ipaddress
import json
import os
import posixpath
import re
import shlex
from dataclasses import dataclass, field

import yaml

from minirun.base.durations import parse_duration
from minirun.base.units import parse_bytes
from minirun.compose import envfile
from minirun.compose.interpolate import InterpolationError, interpolate
from minirun.compose.merge import merge_all
from minirun.errors import InvalidArgument, Unsupported

Path = tuple[str | int, ...]

# Discovery, in order of preference (compose-go's DefaultFileNames), and the override files
# merged over them: the same family first (compose.* with compose.override.*).
FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
OVERRIDE_NAMES = {"compose": ("compose.override.yaml", "compose.override.yml"),
                  "docker-compose": ("docker-compose.override.yaml", "docker-compose.override.yml")}

TOP_LEVEL_ORDER = ("name", "services", "networks", "volumes", "secrets", "configs", "models")
PROJECT_NAME_RULE = ("must consist only of lowercase alphanumeric characters, hyphens, and "
                     "underscores as well as start with a letter or number")
# Compose refuses an alias expansion that grows past a bound ("billion laughs").
MAX_NODES = 200_000


@dataclass
class Project:
    """A loaded project: its name, directory, files and the canonical model."""

    name: str                    # normalised project name
    working_dir: str             # absolute project directory
    config_files: list[str]      # absolute paths of the files read, in order
    model: dict                  # the canonical model: plain dicts, lists, str, int, bool, None
    environment: dict[str, str]  # the interpolation environment: the process's over .env
    disabled: dict               # services left out by profiles: name -> their canonical dict
    warnings: list[str] = field(default_factory=list)  # what Compose would warn about


# --- YAML, with the line of every key ---------------------------------------------------------

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
class _Source:
    """One YAML document: the name errors show and the 1-based line of each key path."""

    display: str
    lines: dict[Path, int]

    def at(self, path: Path) -> str:
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


def _record_lines(node: yaml.Node, path: Path, lines: dict[Path, int], budget: list[int]) -> None:
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


def _read_yaml(path: str, display: str) -> list[tuple[object, _Source]]:
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
            lines: dict[Path, int] = {}
            _record_lines(node, (), lines, [MAX_NODES])
            documents.append((data, _Source(display, lines)))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{display}:{mark.line + 1}" if mark else display
        raise InvalidArgument(f"{where}: invalid YAML: {err.problem or err.context}") from None
    except yaml.YAMLError as err:
        raise InvalidArgument(f"{display}: invalid YAML: {err}") from None
    finally:
        loader.dispose()
    return documents


def _dotted(path: Path) -> str:
    """("services", "web", "ports", 0) -> "services.web.ports[0]"."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _shown(value: object) -> str:
    return json.dumps(value) if isinstance(value, (str, int, float, bool)) or value is None \
        else type(value).__name__


def _problem(where: str, path: Path, problem: str, kind: type = InvalidArgument) -> Exception:
    return kind(f"{where}: {_dotted(path)}: {problem}" if path else f"{where}: {problem}")


# --- the Compose keys and their types -----------------------------------------------------------

_TRUE = {"true", "yes", "y", "on"}
_FALSE = {"false", "no", "n", "off"}
_REMOTE_CONTEXT = ("https://", "http://", "git://", "ssh://", "github.com/", "git@")
_DEPENDS_CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
_PORT_PROTOCOLS = ("tcp", "udp", "sctp")
_VOLUME_TYPES = ("bind", "volume", "tmpfs", "cluster", "npipe", "image")
_PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
# Docker Desktop's consistency flags: accepted and meaningless on Linux (Compose ignores them).
_CONSISTENCY = ("cached", "delegated", "consistent")
_SERVICE_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")


def _close_match(key: str, known) -> str:
    match = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {match[0]}?)" if match else ""


class _FileNormaliser:
    """One document's model in canonical form. Per file, so that an error names the right
    file and line; what needs all files (defaults, references) waits for `_Finisher`."""

    def __init__(self, source: _Source, project_dir: str, environment: dict[str, str],
                 warnings: list[str]) -> None:
        self.source = source
        self.project_dir = project_dir
        self.environment = environment
        self.warnings = warnings

    def fail(self, path: Path, problem: str, kind: type = InvalidArgument) -> Exception:
        return _problem(self.source.at(path), path, problem, kind)

    # --- scalar types; a string may stand for a number or a boolean (interpolation makes
    # strings, and the Compose schema accepts them for the same reason)

    def string(self, path: Path, value: object) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)):
            raise self.fail(path, f"{_shown(value)} must be a string (quote it: \"{value}\")")
        raise self.fail(path, f"must be a string, not a {type(value).__name__}")

    def boolean(self, path: Path, value: object) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise self.fail(path, f"{_shown(value)} must be true or false")

    def integer(self, path: Path, value: object) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"[-+]?[0-9]+", value.strip()):
            return int(value)
        raise self.fail(path, f"{_shown(value)} must be an integer")

    def number(self, path: Path, value: object) -> int | float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise self.fail(path, f"{_shown(value)} must be a number")

    def size(self, path: Path, value: object) -> int | str:
        """A byte size: an integer, or a string with a unit ("512m"), kept as written."""
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                parse_bytes(value)
                return value
            except ValueError:
                pass
        raise self.fail(path, f"{_shown(value)} is not a size (use bytes or a unit: 512m, 1g)")

    def duration(self, path: Path, value: object) -> str:
        """A Go duration ("10s", "1m30s"), kept as the string given."""
        text = self.string(path, value)
        try:
            parse_duration(text)
        except ValueError:
            raise self.fail(path, f"{_shown(text)} is not a duration (use e.g. 10s, 1m30s)") from None
        return text

    def anything(self, path: Path, value: object) -> object:
        return value

    # --- collections

    def mapping(self, path: Path, value: object) -> dict:
        """A mapping kept as given, without its `x-` extension keys."""
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping, not a {type(value).__name__}")
        return {k: v for k, v in value.items() if not k.startswith("x-")}

    def strings(self, path: Path, value: object) -> list[str]:
        """A list of strings (a number in it is written as a string)."""
        if not isinstance(value, list):
            raise self.fail(path, f"must be a list, not a {type(value).__name__}")
        out = []
        for i, item in enumerate(value):
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                item = str(item)
            out.append(self.string(path + (i,), item))
        return out

    def string_or_list(self, path: Path, value: object) -> list[str]:
        return [value] if isinstance(value, str) else self.strings(path, value)

    def scalar_text(self, path: Path, value: object) -> str:
        """A mapping value as text: numbers and booleans as Compose writes them."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float, str)):
            return str(value)
        raise self.fail(path, f"must be a string, number or boolean, not a {type(value).__name__}")

    def key_values(self, path: Path, value: object, bare: object = "") -> dict:
        """A mapping from `KEY: VAL` or a list of `KEY=VAL`; `bare` is the value of `KEY` alone
        (None in environment: it is resolved from the environment later)."""
        if isinstance(value, dict):
            return {k: bare if v is None else self.scalar_text(path + (k,), v)
                    for k, v in value.items()}
        if isinstance(value, list):
            out: dict = {}
            for i, item in enumerate(value):
                key, sep, val = self.string(path + (i,), item).partition("=")
                if not key:
                    raise self.fail(path + (i,), f"{_shown(item)} has no key (use KEY=VALUE)")
                out[key] = val if sep else bare
            return out
        raise self.fail(path, f"must be a mapping or a list of KEY=VALUE, not a {type(value).__name__}")

    def environment_map(self, path: Path, value: object) -> dict:
        return self.key_values(path, value, bare=None)

    # --- paths

    def host_path(self, text: str) -> str:
        """A host path: `~` is the user's home, a relative path is under the project directory
        (every file's paths are relative to the project directory, as Compose documents)."""
        if text == "~" or text.startswith("~/"):
            home = self.environment.get("HOME") or os.path.expanduser("~")
            text = home + text[1:]
        return os.path.normpath(os.path.join(self.project_dir, text))

    # --- the model

    def model(self, raw: object) -> dict:
        if not isinstance(raw, dict):
            raise InvalidArgument(f"{self.source.display}: the top level must be a mapping "
                                  f"(services:, networks:, ...), not a {type(raw).__name__}")
        out: dict = {}
        for key, value in raw.items():
            path = (key,)
            if key.startswith("x-"):
                continue                     # extension fields: for YAML anchors, not for us
            if key == "version":
                self.warnings.append(f"{self.source.at(path)}: the attribute `version` is "
                                     "obsolete, it will be ignored, please remove it")
            elif key == "name":
                out["name"] = self.string(path, value)
            elif key == "services":
                out["services"] = {n: self.service(n, s) for n, s in self.named(path, value).items()}
            elif key in _RESOURCES:
                out[key] = {n: self.resource(key, n, r) for n, r in self.named(path, value).items()}
            elif key == "models":
                out[key] = self.mapping(path, value) if value is not None else {}
            elif key == "include":
                raise self.fail(path, "include is not supported by minirun yet (merge the files "
                                "with -f instead)", Unsupported)
            else:
                raise self.fail(path, f"{key} is not a Compose top-level key{_close_match(key, _TOP_LEVEL)}")
        return out

    def named(self, path: Path, value: object) -> dict:
        """services:, networks: ...: a mapping of names (None for `services:` left empty)."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping of names, not a {type(value).__name__}")
        return {k: v for k, v in value.items() if not k.startswith("x-")}

    def service(self, name: str, raw: object) -> dict:
        path: Path = ("services", name)
        if not _SERVICE_NAME.match(name):
            raise self.fail(path, f"{name!r} is not a valid service name (use letters, digits, "
                            "'.', '_' and '-')")
        if raw is None:
            return {}                        # `web:` alone, in an override file
        if not isinstance(raw, dict):
            raise self.fail(path, f"must be a mapping, not a {type(raw).__name__}")
        out: dict = {}
        for key, value in raw.items():
            if key.startswith("x-"):
                continue
            if key == "extends":
                raise self.fail(path + (key,), "extends is not supported by minirun yet (copy the "
                                "base service's keys, or use a YAML anchor)", Unsupported)
            normalise = _SERVICE_KEYS.get(key)
            if normalise is None:
                raise self.fail(path + (key,), f"{key} is not a Compose service key (additional "
                                f"property {key} is not allowed){_close_match(key, _SERVICE_KEYS)}")
            if value is None and key != "pid":
                continue                     # null: "not set" (and leaves an earlier file's value)
            out[key] = normalise(self, path + (key,), value)
        return out

    # --- service keys with a canonical form of their own

    def command(self, path: Path, value: object) -> list[str]:
        """A string is split with shell-word rules (compose-go's shlex); a list is kept."""
        if isinstance(value, str):
            try:
                return shlex.split(value)
            except ValueError as err:
                raise self.fail(path, f"{_shown(value)}: {err} (check the quotes)") from None
        return self.strings(path, value)

    def build(self, path: Path, value: object) -> dict:
        if isinstance(value, str):
            value = {"context": value}
        build = self.checked_keys(path, value, _BUILD_KEYS, "build")
        if "context" in build:
            context = self.string(path + ("context",), build["context"])
            remote = "://" in context or context.startswith(_REMOTE_CONTEXT)
            build["context"] = context if remote else self.host_path(context)
        for key in ("dockerfile", "dockerfile_inline", "target", "network"):
            if key in build:
                build[key] = self.string(path + (key,), build[key])
        if "args" in build:
            args = self.key_values(path + ("args",), build["args"], bare=None)
            # `ARG` alone takes the environment's value, and is dropped when it has none.
            build["args"] = {k: v if v is not None else self.environment[k] for k, v in args.items()
                             if v is not None or k in self.environment}
        if "labels" in build:
            build["labels"] = self.key_values(path + ("labels",), build["labels"])
        for key in ("cache_from", "cache_to", "tags", "platforms"):
            if key in build:
                build[key] = self.strings(path + (key,), build[key])
        if "extra_hosts" in build:
            build["extra_hosts"] = self.extra_hosts(path + ("extra_hosts",), build["extra_hosts"])
        return build

    def checked_keys(self, path: Path, value: object, known: tuple[str, ...], what: str) -> dict:
        """A mapping whose keys must be among `known` (Compose's schema: no other property)."""
        mapping = self.mapping(path, value)
        for key in mapping:
            if key not in known:
                raise self.fail(path + (key,), f"{key} is not a Compose {what} key (additional "
                                f"property {key} is not allowed){_close_match(key, known)}")
        return mapping

    def env_file(self, path: Path, value: object) -> list[dict]:
        """[{"path": ABS, "required": bool}]; read into environment once the files are merged."""
        entries = [value] if isinstance(value, str) else value
        if not isinstance(entries, list):
            raise self.fail(path, f"must be a path or a list, not a {type(value).__name__}")
        out = []
        for i, entry in enumerate(entries):
            if isinstance(entry, str):
                entry = {"path": entry}
            entry = self.checked_keys(path + (i,), entry, ("path", "required", "format"), "env_file")
            if "path" not in entry:
                raise self.fail(path + (i,), "has no path (add path: FILE)")
            if entry.get("format") not in (None, "", "dotenv"):
                raise self.fail(path + (i, "format"), f"{_shown(entry['format'])} is not supported "
                                "(minirun reads the default .env format)", Unsupported)
            out.append({"path": self.host_path(self.string(path + (i, "path"), entry["path"])),
                        "required": self.boolean(path + (i, "required"), entry.get("required", True))})
        return out

    def ports(self, path: Path, value: object) -> list[dict]:
        if not isinstance(value, list):
            raise self.fail(path, f"must be a list, not a {type(value).__name__}")
        out: list[dict] = []
        for i, entry in enumerate(value):
            if isinstance(entry, dict):
                out.append(self.port_long(path + (i,), entry))
            elif isinstance(entry, (int, str)) and not isinstance(entry, bool):
                out.extend(self.port_short(path + (i,), str(entry)))
            else:
                raise self.fail(path + (i,), f"must be a port mapping string, not a {type(entry).__name__}")
        return out

    def port_short(self, path: Path, spec: str) -> list[dict]:
        """`[HOST_IP:][HOST[-HOST]:]CONTAINER[-CONTAINER][/PROTO]`, one entry per container port
        of a range (Docker's nat.ParsePortSpec). A host range with one container port stays one
        entry: Docker picks a free host port in that range."""
        def bad(reason: str = "") -> Exception:
            return self.fail(path, f"{_shown(spec)} is not a valid port mapping{reason} "
                             "(use [HOST_IP:][HOST:]CONTAINER[/PROTOCOL])")

        rest, _, protocol = spec.partition("/")
        protocol = protocol.lower() or "tcp"
        if protocol not in _PORT_PROTOCOLS:
            raise bad(f": protocol {protocol!r} is not tcp, udp or sctp")
        parts = rest.rsplit(":", 2)              # an IPv6 host IP keeps its own colons
        container = parts[-1]
        host = parts[-2] if len(parts) > 1 else ""
        host_ip = parts[0].strip("[]") if len(parts) == 3 else ""
        if host_ip:
            try:
                ipaddress.ip_address(host_ip)
            except ValueError:
                raise bad(f": {host_ip!r} is not an IP address") from None
        first, last = self.port_range(container, 1, bad)
        if host:
            host_first, host_last = self.port_range(host, 0, bad)
        if host and last - first != host_last - host_first and last != first:
            raise bad(": the host and container ranges differ in length")
        entries = []
        for n, target in enumerate(range(first, last + 1)):
            if not host:
                published = ""
            elif last == first:
                published = host                 # a single port, or a host range to pick from
            else:
                published = str(host_first + n)
            entry = {"mode": "ingress"}
            if host_ip:
                entry["host_ip"] = host_ip
            entry.update({"target": target, "published": published, "protocol": protocol})
            entries.append(entry)
        return entries

    @staticmethod
    def port_range(text: str, lowest: int, bad) -> tuple[int, int]:
        start, _, end = text.partition("-")
        if not start.isdigit() or (end and not end.isdigit()):
            raise bad()
        first, last = int(start), int(end or start)
        if not (lowest <= first <= last <= 65535):
            raise bad(f": {text} is out of range")
        return first, last

    def port_long(self, path: Path, value: dict) -> dict:
        port = self.checked_keys(path, value, ("name", "mode", "host_ip", "target", "published",
                                               "protocol", "app_protocol"), "port")
        if "target" not in port:
            raise self.fail(path, "has no target (add target: CONTAINER_PORT)")
        target = self.integer(path + ("target",), port["target"])
        if not 1 <= target <= 65535:
            raise self.fail(path + ("target",), f"{target} is not a port number (1-65535)")
        protocol = self.string(path + ("protocol",), port.get("protocol", "tcp")).lower()
        if protocol not in _PORT_PROTOCOLS:
            raise self.fail(path + ("protocol",), f"{protocol!r} is not tcp, udp or sctp")
        published = port.get("published", "")
        if isinstance(published, int) and not isinstance(published, bool):
            published = str(published)
        published = self.string(path + ("published",), published)
        if published and not re.fullmatch(r"[0-9]+(-[0-9]+)?", published):
            raise self.fail(path + ("published",), f"{_shown(published)} is not a port or a range")
        out: dict = {}
        if "name" in port:
            out["name"] = self.string(path + ("name",), port["name"])
        out["mode"] = self.string(path + ("mode",), port.get("mode", "ingress"))
        if port.get("host_ip"):
            out["host_ip"] = self.string(path + ("host_ip",), port["host_ip"])
        out.update({"target": target, "published": published, "protocol": protocol})
        if "app_protocol" in port:
            out["app_protocol"] = self.string(path + ("app_protocol",), port["app_protocol"])
        return out

    def expose(self, path: Path, value: object) -> list[str]:
        ports = self.strings(path, value)
        for i, port in enumerate(ports):
            if not re.fullmatch(r"[0-9]+(-[0-9]+)?(/[a-zA-Z]+)?", port):
                raise self.fail(path + (i,), f"{_shown(port)} is not a port (use PORT[/PROTOCOL])")
        return ports

    def volumes(self, path: Path, value: object) -> list[dict]:
        if not isinstance(value, list):
            raise self.fail(path, f"must be a list, not a {type(value).__name__}")
        out = []
        for i, entry in enumerate(value):
            if isinstance(entry, str):
                out.append(self.volume_short(path + (i,), entry))
            elif isinstance(entry, dict):
                out.append(self.volume_long(path + (i,), entry))
            else:
                raise self.fail(path + (i,), f"must be a string or a mapping, not a {type(entry).__name__}")
        return out

    def volume_short(self, path: Path, spec: str) -> dict:
        """`SOURCE:TARGET[:MODE]` or `TARGET` (compose-go's format.ParseVolume): a source that
        starts with `.`, `/` or `~` is a bind mount, anything else names a volume."""
        def bad(reason: str) -> Exception:
            return self.fail(path, f"{_shown(spec)} is not a valid volume spec: {reason} "
                             "(use [SOURCE:]TARGET[:ro|rw])")

        parts = spec.split(":")
        if len(parts) > 3:
            raise bad("too many colons")
        if any(p == "" for p in parts):
            raise bad("empty section between colons")
        source, target = (parts[0], parts[1]) if len(parts) > 1 else ("", parts[0])
        if not target.startswith("/"):
            raise bad(f"the container path {target!r} is not absolute")
        volume: dict = {"type": "volume"}
        read_only, bind, options = False, {}, {}
        for option in parts[2].split(",") if len(parts) == 3 else ():
            if option in ("ro", "rw"):
                read_only = option == "ro"
            elif option == "nocopy":
                options["nocopy"] = True
            elif option in ("z", "Z"):
                bind["selinux"] = option
            elif option in _PROPAGATIONS:
                bind["propagation"] = option
            elif option not in _CONSISTENCY:
                raise bad(f"unknown mode {option!r}")
        if source[:1] in (".", "/", "~"):
            # The short syntax creates a missing host path, for docker-compose v1's sake.
            volume = {"type": "bind", "source": self.host_path(source)}
            bind = {"create_host_path": True, **bind}
        elif source:
            volume["source"] = source
        volume["target"] = posixpath.normpath(target)
        if read_only:
            volume["read_only"] = True
        if volume["type"] == "bind":
            volume["bind"] = bind
        else:
            volume["volume"] = options
        return volume

    def volume_long(self, path: Path, value: dict) -> dict:
        volume = self.checked_keys(path, value, ("type", "source", "target", "read_only",
                                                 "consistency", "bind", "volume", "tmpfs", "image"),
                                   "volume")
        kind = self.string(path + ("type",), volume.get("type", ""))
        if kind not in _VOLUME_TYPES:
            raise self.fail(path + ("type",), f"{_shown(kind)} is not a mount type "
                            "(use bind, volume or tmpfs)")
        if "target" not in volume:
            raise self.fail(path, "has no target (add target: CONTAINER_PATH)")
        target = self.string(path + ("target",), volume["target"])
        if not target.startswith("/"):
            raise self.fail(path + ("target",), f"the container path {target!r} is not absolute")
        out: dict = {"type": kind}
        if "source" in volume:
            source = self.string(path + ("source",), volume["source"])
            out["source"] = self.host_path(source) if kind == "bind" else source
        elif kind == "bind":
            raise self.fail(path, "a bind mount needs a source (add source: HOST_PATH)")
        out["target"] = posixpath.normpath(target)
        if "read_only" in volume and self.boolean(path + ("read_only",), volume["read_only"]):
            out["read_only"] = True
        if "consistency" in volume:
            out["consistency"] = self.string(path + ("consistency",), volume["consistency"])
        if "bind" in volume:
            bind = self.checked_keys(path + ("bind",), volume["bind"] or {}, (
                "propagation", "create_host_path", "recursive", "selinux"), "bind mount")
            bind["create_host_path"] = self.boolean(path + ("bind", "create_host_path"),
                                                    bind.get("create_host_path", True))
            out["bind"] = bind
        if "volume" in volume:
            options = self.checked_keys(path + ("volume",), volume["volume"] or {},
                                        ("labels", "nocopy", "subpath"), "volume mount")
            if "nocopy" in options:
                options["nocopy"] = self.boolean(path + ("volume", "nocopy"), options["nocopy"])
            if "labels" in options:
                options["labels"] = self.key_values(path + ("volume", "labels"), options["labels"])
            out["volume"] = options
        elif kind == "volume":
            out["volume"] = {}
        if "tmpfs" in volume:
            tmpfs = self.checked_keys(path + ("tmpfs",), volume["tmpfs"] or {}, ("size", "mode"),
                                      "tmpfs mount")
            if "size" in tmpfs:
                size = self.size(path + ("tmpfs", "size"), tmpfs["size"])
                tmpfs["size"] = parse_bytes(size) if isinstance(size, str) else size
            if "mode" in tmpfs:
                tmpfs["mode"] = self.integer(path + ("tmpfs", "mode"), tmpfs["mode"])
            out["tmpfs"] = tmpfs
        if "image" in volume:
            out["image"] = self.mapping(path + ("image",), volume["image"])
        return out

    def networks(self, path: Path, value: object) -> dict:
        """{name: None or {"aliases": [...], "ipv4_address": ...}}, from a list or a mapping."""
        if isinstance(value, list):
            return {name: None for name in self.strings(path, value)}
        out = {}
        for name, config in self.mapping(path, value).items():
            if config is None:
                out[name] = None
                continue
            config = self.checked_keys(path + (name,), config, (
                "aliases", "interface_name", "ipv4_address", "ipv6_address", "link_local_ips",
                "mac_address", "driver_opts", "priority", "gw_priority"), "service network")
            for key in ("aliases", "link_local_ips"):
                if key in config:
                    config[key] = self.strings(path + (name, key), config[key])
            for key in ("ipv4_address", "ipv6_address", "mac_address", "interface_name"):
                if key in config:
                    config[key] = self.string(path + (name, key), config[key])
            out[name] = config
        return out

    def depends_on(self, path: Path, value: object) -> dict:
        """{name: {"condition", "required", "restart"}}; the list form waits for the start."""
        if isinstance(value, list):
            return {name: {"condition": "service_started", "required": True, "restart": False}
                    for name in self.strings(path, value)}
        out = {}
        for name, config in self.mapping(path, value).items():
            config = self.checked_keys(path + (name,), config or {},
                                       ("condition", "required", "restart"), "depends_on")
            condition = self.string(path + (name, "condition"),
                                    config.get("condition", "service_started"))
            if condition not in _DEPENDS_CONDITIONS:
                raise self.fail(path + (name, "condition"), f"{_shown(condition)} is not a "
                                f"condition (use {', '.join(_DEPENDS_CONDITIONS)})")
            out[name] = {"condition": condition,
                         "required": self.boolean(path + (name, "required"), config.get("required", True)),
                         "restart": self.boolean(path + (name, "restart"), config.get("restart", False))}
        return out

    def healthcheck(self, path: Path, value: object) -> dict:
        check = self.checked_keys(path, value, ("disable", "interval", "retries", "test", "timeout",
                                                "start_period", "start_interval"), "healthcheck")
        if "test" in check:
            test = check["test"]
            # A string is a shell command (Dockerfile's HEALTHCHECK CMD string form).
            check["test"] = (["CMD-SHELL", test] if isinstance(test, str)
                             else self.strings(path + ("test",), test))
        for key in ("interval", "timeout", "start_period", "start_interval"):
            if key in check:
                check[key] = self.duration(path + (key,), check[key])
        if "retries" in check:
            check["retries"] = self.integer(path + ("retries",), check["retries"])
        if "disable" in check:
            check["disable"] = self.boolean(path + ("disable",), check["disable"])
        return check

    def ulimits(self, path: Path, value: object) -> dict:
        """{name: {"soft": n, "hard": n}}; a single number sets both."""
        out = {}
        for name, limit in self.mapping(path, value).items():
            if isinstance(limit, dict):
                limit = self.checked_keys(path + (name,), limit, ("soft", "hard"), "ulimit")
                if "soft" not in limit or "hard" not in limit:
                    raise self.fail(path + (name,), "needs both soft and hard (or one number)")
                out[name] = {"soft": self.integer(path + (name, "soft"), limit["soft"]),
                             "hard": self.integer(path + (name, "hard"), limit["hard"])}
            else:
                n = self.integer(path + (name,), limit)
                out[name] = {"soft": n, "hard": n}
        return out

    def extra_hosts(self, path: Path, value: object) -> list[str]:
        """A list of `host=ip` or `host:ip` as given; the mapping form becomes `host=ip`."""
        if isinstance(value, dict):
            out = []
            for host, address in value.items():
                addresses = address if isinstance(address, list) else [address]
                out.extend(f"{host}={self.scalar_text(path + (host,), a)}" for a in addresses)
            return out
        return self.strings(path, value)

    def mounts(self, path: Path, value: object) -> list[dict]:
        """secrets: and configs: of a service: a name is {"source": name}; the long form is
        kept (source, target, uid, gid, mode)."""
        if not isinstance(value, list):
            raise self.fail(path, f"must be a list, not a {type(value).__name__}")
        out = []
        for i, entry in enumerate(value):
            if isinstance(entry, str):
                out.append({"source": entry})
                continue
            mount = self.checked_keys(path + (i,), entry, ("source", "target", "uid", "gid", "mode"),
                                      path[-1][:-1])
            if "source" not in mount:
                raise self.fail(path + (i,), "has no source (add source: NAME)")
            for key in ("source", "target", "uid", "gid"):
                if key in mount:
                    mount[key] = self.string(path + (i, key), mount[key])
            if isinstance(mount.get("mode"), str):       # a string is octal ("0440"), as in Compose
                if not re.fullmatch(r"[0-7]+", mount["mode"]):
                    raise self.fail(path + (i, "mode"), f"{_shown(mount['mode'])} is not an octal mode")
                mount["mode"] = int(mount["mode"], 8)
            elif "mode" in mount:
                mount["mode"] = self.integer(path + (i, "mode"), mount["mode"])
            out.append(mount)
        return out

    def deploy(self, path: Path, value: object) -> dict:
        deploy = self.mapping(path, value)
        if "labels" in deploy:
            deploy["labels"] = self.key_values(path + ("labels",), deploy["labels"])
        if "replicas" in deploy:
            deploy["replicas"] = self.integer(path + ("replicas",), deploy["replicas"])
        return deploy

    def logging(self, path: Path, value: object) -> dict:
        logging = self.checked_keys(path, value, ("driver", "options"), "logging")
        if "driver" in logging:
            logging["driver"] = self.string(path + ("driver",), logging["driver"])
        if logging.get("options") is not None:
            logging["options"] = self.key_values(path + ("options",), logging["options"])
        return logging

    def pull_policy(self, path: Path, value: object) -> str:
        policy = self.string(path, value)
        return "missing" if policy == "if_not_present" else policy   # Compose's own renaming

    # --- top-level networks, volumes, secrets, configs

    def resource(self, kind: str, name: str, raw: object) -> dict:
        path: Path = (kind, name)
        resource = self.checked_keys(path, raw if raw is not None else {}, _RESOURCES[kind],
                                     kind[:-1])
        if "external" in resource:
            external = resource["external"]
            if isinstance(external, dict):       # the deprecated external: {name: N}
                if "name" in external and "name" not in resource:
                    resource["name"] = self.string(path + ("external", "name"), external["name"])
                external = True
            resource["external"] = self.boolean(path + ("external",), external)
            if resource["external"] and kind in ("secrets", "configs"):
                raise self.fail(path + ("external",), f"external {kind} are not supported "
                                "(minirun has no swarm: use file, environment or content)", Unsupported)
        for key in ("name", "driver", "file", "environment", "content", "template_driver"):
            if key in resource:
                resource[key] = self.string(path + (key,), resource[key])
        if "labels" in resource:
            resource["labels"] = self.key_values(path + ("labels",), resource["labels"])
        if "driver_opts" in resource:
            resource["driver_opts"] = self.key_values(path + ("driver_opts",), resource["driver_opts"])
        for key in ("internal", "attachable", "enable_ipv4", "enable_ipv6"):
            if key in resource:
                resource[key] = self.boolean(path + (key,), resource[key])
        if "ipam" in resource:
            resource["ipam"] = self.ipam(path + ("ipam",), resource["ipam"])
        if "file" in resource:
            resource["file"] = self.host_path(resource["file"])
        return resource

    def ipam(self, path: Path, value: object) -> dict:
        ipam = self.checked_keys(path, value, ("driver", "config", "options"), "ipam")
        if "config" in ipam:
            pools = ipam["config"]
            if not isinstance(pools, list):
                raise self.fail(path + ("config",), f"must be a list, not a {type(pools).__name__}")
            ipam["config"] = [self.checked_keys(path + ("config", i), pool, (
                "subnet", "ip_range", "gateway", "aux_addresses"), "ipam pool")
                for i, pool in enumerate(pools)]
        return ipam


_S = _FileNormaliser
# Every key of a Compose service (the compose-spec schema) and how it is normalised.
_SERVICE_KEYS = {
    "annotations": _S.key_values, "attach": _S.boolean, "blkio_config": _S.mapping,
    "build": _S.build, "cap_add": _S.strings, "cap_drop": _S.strings, "cgroup": _S.string,
    "cgroup_parent": _S.string, "command": _S.command, "configs": _S.mounts,
    "container_name": _S.string, "cpu_count": _S.integer, "cpu_percent": _S.number,
    "cpu_period": _S.anything, "cpu_quota": _S.anything, "cpu_rt_period": _S.anything,
    "cpu_rt_runtime": _S.anything, "cpu_shares": _S.integer, "cpus": _S.number,
    "cpuset": _S.string, "credential_spec": _S.mapping, "depends_on": _S.depends_on,
    "deploy": _S.deploy, "develop": _S.mapping, "device_cgroup_rules": _S.strings,
    "devices": _S.anything, "dns": _S.string_or_list, "dns_opt": _S.strings,
    "dns_search": _S.string_or_list, "domainname": _S.string, "entrypoint": _S.command,
    "env_file": _S.env_file, "environment": _S.environment_map, "expose": _S.expose,
    "external_links": _S.strings, "extra_hosts": _S.extra_hosts, "gpus": _S.anything,
    "group_add": _S.strings, "healthcheck": _S.healthcheck, "hostname": _S.string,
    "image": _S.string, "init": _S.boolean, "ipc": _S.string, "isolation": _S.string,
    "label_file": _S.anything, "labels": _S.key_values, "links": _S.strings,
    "logging": _S.logging, "mac_address": _S.string, "mem_limit": _S.size,
    "mem_reservation": _S.size, "mem_swappiness": _S.integer, "memswap_limit": _S.size,
    "models": _S.anything, "network_mode": _S.string, "networks": _S.networks,
    "oom_kill_disable": _S.boolean, "oom_score_adj": _S.integer, "pid": _S.anything,
    "pids_limit": _S.integer, "platform": _S.string, "ports": _S.ports,
    "post_start": _S.anything, "pre_start": _S.anything, "pre_stop": _S.anything,
    "privileged": _S.boolean, "profiles": _S.strings, "provider": _S.mapping,
    "pull_policy": _S.pull_policy, "pull_refresh_after": _S.string, "read_only": _S.boolean,
    "restart": _S.string, "runtime": _S.string, "scale": _S.integer, "secrets": _S.mounts,
    "security_opt": _S.strings, "shm_size": _S.size, "stdin_open": _S.boolean,
    "stop_grace_period": _S.duration, "stop_signal": _S.string, "storage_opt": _S.mapping,
    "sysctls": _S.key_values, "tmpfs": _S.string_or_list, "tty": _S.boolean,
    "ulimits": _S.ulimits, "use_api_socket": _S.boolean, "user": _S.string,
    "userns_mode": _S.string, "uts": _S.string, "volumes": _S.volumes,
    "volumes_from": _S.strings, "working_dir": _S.string,
}
_BUILD_KEYS = ("context", "dockerfile", "dockerfile_inline", "entitlements", "args", "ssh",
               "labels", "cache_from", "cache_to", "no_cache", "additional_contexts", "network",
               "provenance", "sbom", "pull", "target", "shm_size", "extra_hosts", "isolation",
               "privileged", "secrets", "tags", "ulimits", "platforms")
_RESOURCES = {
    "networks": ("name", "driver", "driver_opts", "ipam", "external", "internal", "enable_ipv4",
                 "enable_ipv6", "attachable", "labels"),
    "volumes": ("name", "driver", "driver_opts", "external", "labels"),
    "secrets": ("name", "environment", "file", "external", "labels", "driver", "driver_opts",
                "template_driver"),
    "configs": ("name", "content", "environment", "file", "external", "labels", "template_driver"),
}
_TOP_LEVEL = ("version", "name", "include", "services", "models", *_RESOURCES)


# --- files, environment, name -------------------------------------------------------------------

def _find_files(cwd: str, warnings: list[str]) -> list[str]:
    """compose.yaml (and its override) in `cwd` or the nearest parent that has one."""
    directory = cwd
    while True:
        found = [os.path.join(directory, n) for n in FILE_NAMES
                 if os.path.isfile(os.path.join(directory, n))]
        if found:
            if len(found) > 1:
                warnings.append(f"Found multiple config files with supported names: "
                                f"{', '.join(found)}; using {found[0]}")
            family = "docker-compose" if os.path.basename(found[0]).startswith("docker-") else "compose"
            other = "compose" if family == "docker-compose" else "docker-compose"
            overrides = [os.path.join(directory, n) for n in OVERRIDE_NAMES[family] + OVERRIDE_NAMES[other]
                         if os.path.isfile(os.path.join(directory, n))]
            if len(overrides) > 1:
                warnings.append(f"Found multiple override files with supported names: "
                                f"{', '.join(overrides)}; using {overrides[0]}")
            return found[:1] + overrides[:1]
        parent = os.path.dirname(directory)
        if parent == directory:
            raise InvalidArgument(f"no configuration file provided: no {FILE_NAMES[0]} found in "
                                  f"{cwd} or its parents (use -f FILE)")
        directory = parent


def _dotenv(env_files: list[str] | None, directory: str, environ: dict[str, str]) -> dict[str, str]:
    """The variables of --env-file files (all must exist), else of DIRECTORY/.env if any."""
    if env_files is None:
        default = os.path.join(directory, ".env")
        env_files = [default] if os.path.isfile(default) else []
    values: dict[str, str] = {}
    for path in env_files:
        if os.path.isdir(path):
            raise InvalidArgument(f"env file {path} is a directory (give a file)")
        values.update(envfile.read(path, {**values, **environ}))
    return values


def normalize_project_name(name: str) -> str:
    """Compose's normalisation: lowercase, only [a-z0-9_-], no leading '_' or '-'."""
    return re.sub(r"[^a-z0-9_-]", "", name.lower()).lstrip("_-")


def _project_name(explicit: str | None, documents: list[tuple[object, _Source]],
                  environment: dict[str, str], project_dir: str) -> str:
    """The argument or COMPOSE_PROJECT_NAME must already be valid; `name:` (interpolated, the
    last file's wins) and the directory's name are normalised."""
    explicit = explicit or environment.get("COMPOSE_PROJECT_NAME")
    if explicit:
        if normalize_project_name(explicit) != explicit:
            raise InvalidArgument(f"invalid project name {explicit!r}: {PROJECT_NAME_RULE}")
        return explicit
    from_file = ""
    for data, source in documents:
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            try:
                from_file = str(interpolate(data["name"], environment))
            except InterpolationError as err:
                raise _problem(source.at(("name",)), ("name",), err.message) from None
    name = normalize_project_name(from_file) or normalize_project_name(os.path.basename(project_dir))
    if not name:
        raise InvalidArgument(f"the project name from {project_dir!r} is empty once normalised: "
                              f"{PROJECT_NAME_RULE} (set name: or use -p NAME)")
    return name


# --- the merged model: defaults, env files, names, profiles --------------------------------------

class _Finisher:
    """What needs every file merged: defaults, env_file, resource names, then the checks."""

    def __init__(self, sources: list[_Source], project_dir: str, name: str,
                 environment: dict[str, str], warnings: list[str]) -> None:
        self.sources = sources
        self.project_dir = project_dir
        self.name = name
        self.environment = environment
        self.warnings = warnings

    def fail(self, path: Path, problem: str) -> Exception:
        """After merging, the line is that of the last file that set the key (or its nearest
        parent): good enough to find it, though a merged list's index may differ by file."""
        for n in range(len(path), 0, -1):
            for source in reversed(self.sources):
                if path[:n] in source.lines:
                    return _problem(f"{source.display}:{source.lines[path[:n]]}", path, problem)
        return _problem(self.sources[0].display if self.sources else "compose", path, problem)

    def service(self, name: str, service: dict, enabled: bool) -> dict:
        if "build" in service:
            build = service["build"]
            build.setdefault("context", self.project_dir)
            if "dockerfile_inline" not in build:
                build.setdefault("dockerfile", "Dockerfile")
        environment = {k: self.environment.get(k) if v is None else v
                       for k, v in service.get("environment", {}).items()}
        if "env_file" in service:
            from_files = self.env_files(name, service.pop("env_file"), environment, enabled)
            # environment: wins over env_file:, except where it only names a variable unset here
            environment = {**from_files, **{k: v for k, v in environment.items()
                                            if v is not None or k not in from_files}}
        if environment or "environment" in service:
            service["environment"] = dict(sorted(environment.items()))  # as Go prints a map
        if not service.get("networks") and "network_mode" not in service:
            service["networks"] = {"default": None}   # also for `networks:` left empty
        elif "networks" in service and "network_mode" in service:
            raise self.fail(("services", name, "network_mode"), "network_mode and networks are "
                            "mutually exclusive (remove one)")
        self.implicit_dependencies(service)
        return dict(sorted(service.items()))

    def env_files(self, name: str, entries: list[dict], environment: dict, enabled: bool) -> dict:
        values: dict[str, str] = {}
        for i, entry in enumerate(entries):
            if not os.path.isfile(entry["path"]):
                if entry["required"] and enabled:
                    raise self.fail(("services", name, "env_file", i), f"env file {entry['path']} "
                                    "not found (create it, or set required: false)")
                if entry["required"]:
                    self.warnings.append(f"service {name} (disabled): env file {entry['path']} not found")
                continue
            # Compose's lookup order in a service env file: the project environment, then the
            # service's own environment, then the file's earlier lines.
            lookup = {**{k: v for k, v in environment.items() if v is not None}, **self.environment}
            values.update(envfile.read(entry["path"], {**values, **lookup}))
        return values

    @staticmethod
    def implicit_dependencies(service: dict) -> None:
        """network_mode: service:X, links and volumes_from make the service depend on X
        (compose-go's Normalize), unless depends_on already names X."""
        added: dict[str, bool] = {}
        mode = service.get("network_mode", "")
        for key in ("ipc", "pid", "uts", "cgroup"):
            if isinstance(service.get(key), str) and service[key].startswith("service:"):
                added.setdefault(service[key][len("service:"):], True)
        if mode.startswith("service:"):
            added.setdefault(mode[len("service:"):], True)
        for link in service.get("links", []):
            added.setdefault(link.split(":")[0], True)
        for source in service.get("volumes_from", []):
            if not source.startswith("container:"):
                added.setdefault(source.split(":")[0], False)
        if added:
            depends = service.setdefault("depends_on", {})
            for dependency, restart in added.items():
                depends.setdefault(dependency, {"condition": "service_started", "required": True,
                                                "restart": restart})

    def resources(self, kind: str, resources: dict) -> dict:
        """Each resource named `<project>_<key>`, unless it has a name or is external."""
        out = {}
        for key, resource in resources.items():
            resource = dict(resource)
            if "name" not in resource:
                resource["name"] = key if resource.get("external") else f"{self.name}_{key}"
            if kind in ("secrets", "configs") and not resource.keys() & {"file", "environment", "content"}:
                raise self.fail((kind, key), f"has no source (add file:, environment:"
                                f"{' or content:' if kind == 'configs' else ''})")
            out[key] = dict(sorted(resource.items(), key=lambda kv: kv[0] != "name"))
        return out

    def check(self, model: dict, enabled: dict, everything: dict) -> None:
        """References and dependencies of the enabled services."""
        for name, service in enabled.items():
            path: Path = ("services", name)
            if "image" not in service and "build" not in service:
                raise self.fail(path, "has neither an image nor a build context (add image: NAME "
                                "or build: DIR)")
            for dependency in service.get("depends_on", {}):
                if dependency not in everything:
                    raise self.fail(path + ("depends_on", dependency), f"service {dependency!r} "
                                    "is not defined (define it under services:, or remove it)")
            for network in service.get("networks") or {}:
                if network not in model.get("networks", {}):
                    raise self.fail(path + ("networks", network), f"network {network!r} is not "
                                    "declared under the top-level networks: key (declare it)")
            for volume in service.get("volumes", []):
                if volume["type"] == "volume" and volume.get("source") \
                        and volume["source"] not in model.get("volumes", {}):
                    raise self.fail(path + ("volumes",), f"volume {volume['source']!r} is not "
                                    "declared under the top-level volumes: key (declare it)")
            for kind in ("secrets", "configs"):
                for mount in service.get(kind, []):
                    if mount["source"] not in model.get(kind, {}):
                        raise self.fail(path + (kind,), f"{kind[:-1]} {mount['source']!r} is not "
                                        f"declared under the top-level {kind}: key (declare it)")
        cycle = _find_cycle(everything)
        if cycle:
            raise self.fail(("services", cycle[0], "depends_on"),
                            f"dependency cycle {' -> '.join(cycle)} (remove one of these depends_on)")


def _find_cycle(services: dict) -> list[str]:
    """A depends_on cycle as [a, b, a], or []; services in name order, for a stable answer."""
    state: dict[str, int] = {}                   # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(name: str) -> list[str]:
        state[name] = 1
        stack.append(name)
        for dependency in sorted(services[name].get("depends_on", {})):
            if dependency not in services:
                continue
            if state.get(dependency) == 1:
                return stack[stack.index(dependency):] + [dependency]
            if dependency not in state:
                found = visit(dependency)
                if found:
                    return found
        stack.pop()
        state[name] = 2
        return []

    for name in sorted(services):
        if name not in state:
            found = visit(name)
            if found:
                return found
    return []


def _active_profiles(profiles: list[str] | None, environment: dict[str, str]) -> set[str]:
    if profiles is None:
        profiles = environment.get("COMPOSE_PROFILES", "").split(",")
    return {p.strip() for p in profiles if p.strip()}


def _enabled(service: dict, active: set[str]) -> bool:
    """A service without profiles is always on; one with profiles needs one of them active."""
    wanted = service.get("profiles")
    return not wanted or "*" in active or bool(active & set(wanted))


# --- load -------------------------------------------------------------------------------------

def _locate(files: list[str] | None, project_directory: str | None, env_files: list[str] | None,
            environ: dict[str, str], cwd: str, warnings: list[str]) -> tuple[list[str], str, dict]:
    """The files to read, the project directory and the environment (the process's over the
    env files). The working directory's .env may name the files (COMPOSE_FILE); the project
    directory's is read once the files say where the project is, as docker compose does."""
    first_dir = (os.path.join(cwd, project_directory) if project_directory
                 else os.path.dirname(os.path.join(cwd, files[0])) if files else cwd)
    environment = {**_dotenv(env_files, first_dir, environ), **environ}
    if not files and environment.get("COMPOSE_FILE"):
        files = [f for f in environment["COMPOSE_FILE"].split(":") if f]
    # No -f: the files are looked for from --project-directory when given (Compose's working
    # directory), else from the current one.
    paths = ([os.path.abspath(os.path.join(cwd, f)) for f in files] if files
             else _find_files(first_dir if project_directory else cwd, warnings))
    project_dir = os.path.abspath(os.path.join(cwd, project_directory) if project_directory
                                  else os.path.dirname(paths[0]))
    if project_dir != os.path.abspath(first_dir):
        environment = {**_dotenv(env_files, project_dir, environ), **environ}
    return paths, project_dir, environment


def load(files: list[str] | None = None, *, project_name: str | None = None,
         project_directory: str | None = None, env_files: list[str] | None = None,
         profiles: list[str] | None = None, environ: dict[str, str] | None = None,
         cwd: str | None = None) -> Project:
    """Load a Compose project (the steps are in the module docstring). `environ` defaults to
    os.environ, `cwd` to the current directory; relative paths in the arguments are relative
    to `cwd`. Raises InvalidArgument (Unsupported for include, extends, external secrets)."""
    cwd = os.path.abspath(cwd or os.getcwd())
    environ = dict(os.environ if environ is None else environ)
    warnings: list[str] = []
    if env_files is not None:
        env_files = [os.path.join(cwd, f) for f in env_files]
    paths, project_dir, environment = _locate(files, project_directory, env_files, environ, cwd,
                                              warnings)

    documents = []
    for path in paths:
        display = os.path.relpath(path, cwd) if path.startswith(cwd + os.sep) else path
        documents.extend((data, source) for data, source in _read_yaml(path, display)
                         if data is not None)
    name = _project_name(project_name, documents, environment, project_dir)
    environment["COMPOSE_PROJECT_NAME"] = name   # files may use ${COMPOSE_PROJECT_NAME}

    models, unset = [], set()
    for data, source in documents:
        try:
            data = interpolate(data, environment, unset)
        except InterpolationError as err:
            raise _problem(source.at(err.path), err.path, err.message) from None
        models.append(_FileNormaliser(source, project_dir, environment, warnings).model(data))
    for variable in sorted(unset):
        warnings.append(f'The "{variable}" variable is not set. Defaulting to a blank string.')
    merged = merge_all(models)

    sources = [source for _, source in documents]
    finisher = _Finisher(sources, project_dir, name, environment, warnings)
    if not merged.get("services"):
        raise finisher.fail(("services",), "no service is defined (a Compose file needs at "
                            "least one, under services:)")
    active = _active_profiles(profiles, environment)
    services, disabled = {}, {}
    for service_name in sorted(merged["services"]):
        service = merged["services"][service_name]
        on = _enabled(service, active)
        (services if on else disabled)[service_name] = finisher.service(service_name, service, on)

    model: dict = {"name": name, "services": services}
    everything = {**services, **disabled}
    networks = dict(merged.get("networks", {}))
    if any("default" in (s.get("networks") or {}) for s in everything.values()):
        networks.setdefault("default", {})
    for kind in _RESOURCES:
        resources = networks if kind == "networks" else merged.get(kind)
        if resources:
            model[kind] = finisher.resources(kind, resources)
    if "models" in merged:
        model["models"] = merged["models"]
    finisher.check(model, services, everything)
    return Project(name=name, working_dir=project_dir, config_files=paths, model=model,
                   environment=environment, disabled=disabled, warnings=warnings)


# --- what the front end does with a model --------------------------------------------------------

def config_hash(service: dict) -> str:
    """The sha256 (hex) of a service's canonical JSON (sorted keys, no blanks), without `scale`
    and `deploy.replicas`: as in Compose's com.docker.compose.config-hash label, scaling a
    service does not make its containers out of date. Anything else that changes does."""
    service = {k: v for k, v in service.items() if k != "scale"}
    if isinstance(service.get("deploy"), dict):
        service["deploy"] = {k: v for k, v in service["deploy"].items() if k != "replicas"}
    text = json.dumps(service, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def dump(project: Project, fmt: str = "yaml") -> str:
    """`docker compose config`: the model as YAML (the default) or JSON, top-level keys in
    Compose's order (name, services, networks, volumes, secrets, configs), services by name."""
    model = {k: project.model[k] for k in TOP_LEVEL_ORDER if k in project.model}
    model["services"] = dict(sorted(model["services"].items()))
    if fmt == "json":
        return json.dumps(model, indent=2) + "\n"
    if fmt == "yaml":
        return yaml.safe_dump(model, sort_keys=False, default_flow_style=False, allow_unicode=True)
    raise InvalidArgument(f"unknown format {fmt!r} (use yaml or json)")


def service_order(model: dict) -> list[str]:
    """The services in start order: each after the ones it depends on, ties by name (a
    dependency outside the model, such as a disabled service, is ignored)."""
    services = model["services"]
    waiting = {name: {d for d in s.get("depends_on", {}) if d in services and d != name}
               for name, s in services.items()}
    ready = [name for name, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    order = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for other, deps in waiting.items():
            if name in deps:
                deps.discard(name)
                if not deps:
                    heapq.heappush(ready, other)
    if len(order) != len(services):
        cycle = _find_cycle(services)
        raise InvalidArgument(f"dependency cycle {' -> '.join(cycle)} (remove one of these depends_on)")
    return order
