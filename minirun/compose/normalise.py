"""One Compose file's model brought to canonical form: what `docker compose config` prints.

Per file, so that an error names the right file and line: short syntax becomes long
(`"8080:80"` -> {target: 80, published: "8080", protocol: tcp}), lists become mappings
(environment, labels), relative paths absolute against the project directory, strings that
stand for numbers or booleans (interpolation makes strings) their values, and every key is
checked against Compose's schema, with its type. What needs all the files (defaults,
references between services) is loader.py's `_Finisher`, after merge.py.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import posixpath
import re
import shlex

from minirun.base.durations import parse_duration
from minirun.base.units import parse_bytes
from minirun.compose.yamlfile import KeyPath, Source, error_at, shown
from minirun.errors import InvalidArgument, Unsupported

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


class FileNormaliser:
    """One document's model in canonical form. Per file, so that an error names the right
    file and line; what needs all files (defaults, references) waits for `_Finisher`."""

    def __init__(self, source: Source, project_dir: str, environment: dict[str, str],
                 warnings: list[str]) -> None:
        self.source = source
        self.project_dir = project_dir
        self.environment = environment
        self.warnings = warnings

    def fail(self, path: KeyPath, problem: str, kind: type = InvalidArgument) -> Exception:
        return error_at(self.source.at(path), path, problem, kind)

    # --- scalar types; a string may stand for a number or a boolean (interpolation makes
    # strings, and the Compose schema accepts them for the same reason)

    def string(self, path: KeyPath, value: object) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)):
            raise self.fail(path, f"{shown(value)} must be a string (quote it: \"{value}\")")
        raise self.fail(path, f"must be a string, not a {type(value).__name__}")

    def boolean(self, path: KeyPath, value: object) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise self.fail(path, f"{shown(value)} must be true or false")

    def integer(self, path: KeyPath, value: object) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"[-+]?[0-9]+", value.strip()):
            return int(value)
        raise self.fail(path, f"{shown(value)} must be an integer")

    def number(self, path: KeyPath, value: object) -> int | float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise self.fail(path, f"{shown(value)} must be a number")

    def size(self, path: KeyPath, value: object) -> int | str:
        """A byte size: an integer, or a string with a unit ("512m"), kept as written."""
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                parse_bytes(value)
                return value
            except ValueError:
                pass
        raise self.fail(path, f"{shown(value)} is not a size (use bytes or a unit: 512m, 1g)")

    def duration(self, path: KeyPath, value: object) -> str:
        """A Go duration ("10s", "1m30s"), kept as the string given."""
        text = self.string(path, value)
        try:
            parse_duration(text)
        except ValueError:
            raise self.fail(path, f"{shown(text)} is not a duration (use e.g. 10s, 1m30s)") from None
        return text

    def anything(self, path: KeyPath, value: object) -> object:
        return value

    # --- collections

    def mapping(self, path: KeyPath, value: object) -> dict:
        """A mapping kept as given, without its `x-` extension keys."""
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping, not a {type(value).__name__}")
        return {k: v for k, v in value.items() if not k.startswith("x-")}

    def strings(self, path: KeyPath, value: object) -> list[str]:
        """A list of strings (a number in it is written as a string)."""
        if not isinstance(value, list):
            raise self.fail(path, f"must be a list, not a {type(value).__name__}")
        out = []
        for i, item in enumerate(value):
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                item = str(item)
            out.append(self.string(path + (i,), item))
        return out

    def string_or_list(self, path: KeyPath, value: object) -> list[str]:
        return [value] if isinstance(value, str) else self.strings(path, value)

    def scalar_text(self, path: KeyPath, value: object) -> str:
        """A mapping value as text: numbers and booleans as Compose writes them."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float, str)):
            return str(value)
        raise self.fail(path, f"must be a string, number or boolean, not a {type(value).__name__}")

    def key_values(self, path: KeyPath, value: object, bare: object = "") -> dict:
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
                    raise self.fail(path + (i,), f"{shown(item)} has no key (use KEY=VALUE)")
                out[key] = val if sep else bare
            return out
        raise self.fail(path, f"must be a mapping or a list of KEY=VALUE, not a {type(value).__name__}")

    def environment_map(self, path: KeyPath, value: object) -> dict:
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
            elif key in RESOURCES:
                out[key] = {n: self.resource(key, n, r) for n, r in self.named(path, value).items()}
            elif key == "models":
                out[key] = self.mapping(path, value) if value is not None else {}
            elif key == "include":
                raise self.fail(path, "include is not supported by minirun yet (merge the files "
                                "with -f instead)", Unsupported)
            else:
                raise self.fail(path, f"{key} is not a Compose top-level key{_close_match(key, TOP_LEVEL)}")
        return out

    def named(self, path: KeyPath, value: object) -> dict:
        """services:, networks: ...: a mapping of names (None for `services:` left empty)."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping of names, not a {type(value).__name__}")
        return {k: v for k, v in value.items() if not k.startswith("x-")}

    def service(self, name: str, raw: object) -> dict:
        path: KeyPath = ("services", name)
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

    def command(self, path: KeyPath, value: object) -> list[str]:
        """A string is split with shell-word rules (compose-go's shlex); a list is kept."""
        if isinstance(value, str):
            try:
                return shlex.split(value)
            except ValueError as err:
                raise self.fail(path, f"{shown(value)}: {err} (check the quotes)") from None
        return self.strings(path, value)

    def build(self, path: KeyPath, value: object) -> dict:
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

    def checked_keys(self, path: KeyPath, value: object, known: tuple[str, ...], what: str) -> dict:
        """A mapping whose keys must be among `known` (Compose's schema: no other property)."""
        mapping = self.mapping(path, value)
        for key in mapping:
            if key not in known:
                raise self.fail(path + (key,), f"{key} is not a Compose {what} key (additional "
                                f"property {key} is not allowed){_close_match(key, known)}")
        return mapping

    def env_file(self, path: KeyPath, value: object) -> list[dict]:
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
                raise self.fail(path + (i, "format"), f"{shown(entry['format'])} is not supported "
                                "(minirun reads the default .env format)", Unsupported)
            out.append({"path": self.host_path(self.string(path + (i, "path"), entry["path"])),
                        "required": self.boolean(path + (i, "required"), entry.get("required", True))})
        return out

    def ports(self, path: KeyPath, value: object) -> list[dict]:
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

    def port_short(self, path: KeyPath, spec: str) -> list[dict]:
        """`[HOST_IP:][HOST[-HOST]:]CONTAINER[-CONTAINER][/PROTO]`, one entry per container port
        of a range (Docker's nat.ParsePortSpec). A host range with one container port stays one
        entry: Docker picks a free host port in that range."""
        def bad(reason: str = "") -> Exception:
            return self.fail(path, f"{shown(spec)} is not a valid port mapping{reason} "
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

    def port_long(self, path: KeyPath, value: dict) -> dict:
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
            raise self.fail(path + ("published",), f"{shown(published)} is not a port or a range")
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

    def expose(self, path: KeyPath, value: object) -> list[str]:
        ports = self.strings(path, value)
        for i, port in enumerate(ports):
            if not re.fullmatch(r"[0-9]+(-[0-9]+)?(/[a-zA-Z]+)?", port):
                raise self.fail(path + (i,), f"{shown(port)} is not a port (use PORT[/PROTOCOL])")
        return ports

    def volumes(self, path: KeyPath, value: object) -> list[dict]:
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

    def volume_short(self, path: KeyPath, spec: str) -> dict:
        """`SOURCE:TARGET[:MODE]` or `TARGET` (compose-go's format.ParseVolume): a source that
        starts with `.`, `/` or `~` is a bind mount, anything else names a volume."""
        def bad(reason: str) -> Exception:
            return self.fail(path, f"{shown(spec)} is not a valid volume spec: {reason} "
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

    def volume_long(self, path: KeyPath, value: dict) -> dict:
        volume = self.checked_keys(path, value, ("type", "source", "target", "read_only",
                                                 "consistency", "bind", "volume", "tmpfs", "image"),
                                   "volume")
        kind = self.string(path + ("type",), volume.get("type", ""))
        if kind not in _VOLUME_TYPES:
            raise self.fail(path + ("type",), f"{shown(kind)} is not a mount type "
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

    def networks(self, path: KeyPath, value: object) -> dict:
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

    def depends_on(self, path: KeyPath, value: object) -> dict:
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
                raise self.fail(path + (name, "condition"), f"{shown(condition)} is not a "
                                f"condition (use {', '.join(_DEPENDS_CONDITIONS)})")
            out[name] = {"condition": condition,
                         "required": self.boolean(path + (name, "required"), config.get("required", True)),
                         "restart": self.boolean(path + (name, "restart"), config.get("restart", False))}
        return out

    def healthcheck(self, path: KeyPath, value: object) -> dict:
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

    def ulimits(self, path: KeyPath, value: object) -> dict:
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

    def extra_hosts(self, path: KeyPath, value: object) -> list[str]:
        """A list of `host=ip` or `host:ip` as given; the mapping form becomes `host=ip`."""
        if isinstance(value, dict):
            out = []
            for host, address in value.items():
                addresses = address if isinstance(address, list) else [address]
                out.extend(f"{host}={self.scalar_text(path + (host,), a)}" for a in addresses)
            return out
        return self.strings(path, value)

    def mounts(self, path: KeyPath, value: object) -> list[dict]:
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
                    raise self.fail(path + (i, "mode"), f"{shown(mount['mode'])} is not an octal mode")
                mount["mode"] = int(mount["mode"], 8)
            elif "mode" in mount:
                mount["mode"] = self.integer(path + (i, "mode"), mount["mode"])
            out.append(mount)
        return out

    def deploy(self, path: KeyPath, value: object) -> dict:
        deploy = self.mapping(path, value)
        if "labels" in deploy:
            deploy["labels"] = self.key_values(path + ("labels",), deploy["labels"])
        if "replicas" in deploy:
            deploy["replicas"] = self.integer(path + ("replicas",), deploy["replicas"])
        return deploy

    def logging(self, path: KeyPath, value: object) -> dict:
        logging = self.checked_keys(path, value, ("driver", "options"), "logging")
        if "driver" in logging:
            logging["driver"] = self.string(path + ("driver",), logging["driver"])
        if logging.get("options") is not None:
            logging["options"] = self.key_values(path + ("options",), logging["options"])
        return logging

    def pull_policy(self, path: KeyPath, value: object) -> str:
        policy = self.string(path, value)
        return "missing" if policy == "if_not_present" else policy   # Compose's own renaming

    # --- top-level networks, volumes, secrets, configs

    def resource(self, kind: str, name: str, raw: object) -> dict:
        path: KeyPath = (kind, name)
        resource = self.checked_keys(path, raw if raw is not None else {}, RESOURCES[kind],
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

    def ipam(self, path: KeyPath, value: object) -> dict:
        ipam = self.checked_keys(path, value, ("driver", "config", "options"), "ipam")
        if "config" in ipam:
            pools = ipam["config"]
            if not isinstance(pools, list):
                raise self.fail(path + ("config",), f"must be a list, not a {type(pools).__name__}")
            ipam["config"] = [self.checked_keys(path + ("config", i), pool, (
                "subnet", "ip_range", "gateway", "aux_addresses"), "ipam pool")
                for i, pool in enumerate(pools)]
        return ipam


_S = FileNormaliser
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
RESOURCES = {
    "networks": ("name", "driver", "driver_opts", "ipam", "external", "internal", "enable_ipv4",
                 "enable_ipv6", "attachable", "labels"),
    "volumes": ("name", "driver", "driver_opts", "external", "labels"),
    "secrets": ("name", "environment", "file", "external", "labels", "driver", "driver_opts",
                "template_driver"),
    "configs": ("name", "content", "environment", "file", "external", "labels", "template_driver"),
}
TOP_LEVEL = ("version", "name", "include", "services", "models", *RESOURCES)
