"""Loading a Compose project: files -> one canonical model, as `docker compose config` shows it.

The steps, in the order Compose takes them (compose-go's loader):

1. find the files: the ones given, else COMPOSE_FILE, else compose.yaml (or compose.yml,
   docker-compose.yaml, docker-compose.yml) in the working directory or the nearest parent
   that has one, plus its override file (compose.override.yaml ...) beside it;
2. the environment: the process environment over `.env` (or the --env-file files), read from
   the working directory, and again from the project directory once the files are known;
3. the project name: the argument, else COMPOSE_PROJECT_NAME, else `name:`, else the project
   directory's name, normalised (lowercase, [a-z0-9_-], starting with a letter or digit);
4. each file: YAML (yamlfile.py: 1.2, as Compose's Go parser reads it, with the line of every
   key kept for errors), interpolated (interpolate.py), checked against the Compose keys and
   brought to canonical form (normalise.py): long syntax for ports and volumes, mappings for
   environment and labels, absolute paths;
5. the files merged in order (merge.py), then what needs the whole model: defaults (build
   context, the default network), env_file read into environment, resource names, profiles;
6. the checks that need the whole model: every service has an image or a build, every
   depends_on, network, volume, secret and config it names exists, no dependency cycle.

Every error is one InvalidArgument line, `FILE:LINE: key.path: problem (the fix)`. Keys
minirun's engine does not implement are kept in the model: the engine decides about them.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import re
from dataclasses import dataclass, field

import yaml

from minirun.compose import envfile
from minirun.compose.interpolate import InterpolationError, interpolate
from minirun.compose.merge import merge_all
from minirun.compose.normalise import RESOURCES, FileNormaliser
from minirun.compose.yamlfile import KeyPath, Source, error_at, read_yaml
from minirun.errors import InvalidArgument


# Discovery, in order of preference (compose-go's DefaultFileNames), and the override files
# merged over them: the same family first (compose.* with compose.override.*).
FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
OVERRIDE_NAMES = {"compose": ("compose.override.yaml", "compose.override.yml"),
                  "docker-compose": ("docker-compose.override.yaml", "docker-compose.override.yml")}

TOP_LEVEL_ORDER = ("name", "services", "networks", "volumes", "secrets", "configs", "models")
PROJECT_NAME_RULE = ("must consist only of lowercase alphanumeric characters, hyphens, and "
                     "underscores as well as start with a letter or number")


class NoFiles(InvalidArgument):
    """No compose file given or found (a command that can work from labels alone, `down -p
    NAME`, goes on without one: `without_files`)."""


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
            raise NoFiles(f"no configuration file provided: no {FILE_NAMES[0]} found in "
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


def _project_name(explicit: str | None, documents: list[tuple[object, Source]],
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
                raise error_at(source.at(("name",)), ("name",), err.message) from None
    name = normalize_project_name(from_file) or normalize_project_name(os.path.basename(project_dir))
    if not name:
        raise InvalidArgument(f"the project name from {project_dir!r} is empty once normalised: "
                              f"{PROJECT_NAME_RULE} (set name: or use -p NAME)")
    return name


# --- the merged model: defaults, env files, names, profiles --------------------------------------

class _Finisher:
    """What needs every file merged: defaults, env_file, resource names, then the checks."""

    def __init__(self, sources: list[Source], project_dir: str, name: str,
                 environment: dict[str, str], warnings: list[str]) -> None:
        self.sources = sources
        self.project_dir = project_dir
        self.name = name
        self.environment = environment
        self.warnings = warnings

    def fail(self, path: KeyPath, problem: str) -> Exception:
        """After merging, the line is that of the last file that set the key (or its nearest
        parent): good enough to find it, though a merged list's index may differ by file."""
        for n in range(len(path), 0, -1):
            for source in reversed(self.sources):
                if path[:n] in source.lines:
                    return error_at(f"{source.display}:{source.lines[path[:n]]}", path, problem)
        return error_at(self.sources[0].display if self.sources else "compose", path, problem)

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
            path: KeyPath = ("services", name)
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
        documents.extend((data, source) for data, source in read_yaml(path, display)
                         if data is not None)
    name = _project_name(project_name, documents, environment, project_dir)
    environment["COMPOSE_PROJECT_NAME"] = name   # files may use ${COMPOSE_PROJECT_NAME}

    models, unset = [], set()
    for data, source in documents:
        try:
            data = interpolate(data, environment, unset)
        except InterpolationError as err:
            raise error_at(source.at(err.path), err.path, err.message) from None
        models.append(FileNormaliser(source, project_dir, environment, warnings).model(data))
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
    for kind in RESOURCES:
        resources = networks if kind == "networks" else merged.get(kind)
        if resources:
            model[kind] = finisher.resources(kind, resources)
    if "models" in merged:
        model["models"] = merged["models"]
    finisher.check(model, services, everything)
    return Project(name=name, working_dir=project_dir, config_files=paths, model=model,
                   environment=environment, disabled=disabled, warnings=warnings)


def without_files(project_name: str, cwd: str | None = None) -> Project:
    """A project known by name only: `docker compose -p NAME down` (or ps, logs, stop ...)
    with no file finds the project's objects by their labels."""
    name = normalize_project_name(project_name)
    return Project(name=name, working_dir=os.path.abspath(cwd or os.getcwd()), config_files=[],
                   model={"name": name, "services": {}}, environment={}, disabled={})


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
