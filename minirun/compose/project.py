"""A loaded project, made real on the engine: Compose's `up`, `down` and the verbs between.

The model (loader.py) says what should exist; the engine says what does, found by the labels
naming.py puts on everything. `up` converges the two, service by service in depends_on order:

  1. networks and volumes the file declares (external ones must exist already);
  2. images: pulled or built as pull_policy and --build say;
  3. per service, its containers: those whose config-hash label (or image) no longer matches
     are recreated, missing replicas are created, extra ones removed (highest numbers first);
  4. started in order, each service once what it depends on is started, healthy or completed,
     as its depends_on condition asks.

`down` stops (in reverse order, services that do not depend on each other at once) and removes
the containers, then the networks, and the volumes only with -v. Every engine call goes
through minirun/engine/api: the same records, locks and errors as `minirun run`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..engine.api import containers as api
from ..engine.api import images as images_api, networks as networks_api
from ..engine.api import volumes as volumes_api
from ..base.names import is_hex_id
from ..engine.lifecycle import Engine, MonitorHandle
from ..errors import Conflict, InvalidArgument, MinirunError, NotFound
from ..image.auth import default_path as auth_path
from . import convert, loader, naming

POLL = 0.05  # seconds between looks at a dependency's health or exit (a blocking wait elsewhere)


class ComposeError(MinirunError):
    """A project that cannot be brought to the state asked for (a dependency failed ...)."""

    exit_code = 1


@dataclass
class Events:
    """Progress lines as Compose prints them without a terminal: ` Container p-web-1  Started`.
    `emit` receives each line (stderr in the CLI); tests collect them."""

    emit: Callable[[str], None]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, kind: str, name: str, status: str) -> None:
        with self.lock:
            self.emit(f" {kind} {name}  {status}")


@dataclass
class UpOptions:
    detach: bool = False
    build: bool = False
    no_build: bool = False
    pull: str = ""  # always | missing | never | "" (each service's pull_policy)
    force_recreate: bool = False
    no_recreate: bool = False
    remove_orphans: bool = False
    scale: dict[str, int] = field(default_factory=dict)
    wait: bool = False
    wait_timeout: float | None = None
    no_deps: bool = False
    no_start: bool = False
    timeout: int | None = None


class Compose:
    """One project on one engine."""

    def __init__(self, eng: Engine, project: loader.Project, events: Events,
                 log: Callable[[str], None] = lambda text: None) -> None:
        self.eng, self.project, self.events, self.log = eng, project, events, log
        self.name = project.name
        self.model = project.model
        self.services: dict = self.model.get("services") or {}

    # -- what exists ------------------------------------------------------------------------------
    def containers(self, service: str | None = None, *, oneoff: bool | None = False,
                   running_only: bool = False) -> list[dict]:
        """The project's containers (Docker's list rows), by service then number."""
        rows = api.list_(self.eng, all=not running_only,
                         filters=naming.project_filter(self.name, service, oneoff))
        return sorted(rows, key=lambda r: (r["Labels"].get(naming.SERVICE, ""),
                                           int(r["Labels"].get(naming.NUMBER) or 0)))

    def selected(self, names: Iterable[str] = (), with_deps: bool = True) -> list[str]:
        """Services named (all when none), with what they depend on, in start order."""
        names = list(names)
        for n in names:
            if n not in self.services:
                if n in self.project.disabled:
                    self._enable(n)
                else:
                    raise NotFound(f"no such service: {n}")
        order = loader.service_order(self.model)
        if not names:
            return order
        wanted = set(names)
        if with_deps:
            todo = list(names)
            while todo:
                for dep in (self.services[todo.pop()].get("depends_on") or {}):
                    if dep not in wanted and dep in self.services:
                        wanted.add(dep)
                        todo.append(dep)
        return [s for s in order if s in wanted]

    def _enable(self, name: str) -> None:
        """A service left out by its profiles but named on the command line runs (Compose)."""
        self.services[name] = self.project.disabled.pop(name)

    # -- networks and volumes ---------------------------------------------------------------------
    def ensure_networks(self, services: list[str]) -> None:
        used = set()
        for s in services:
            if not self.services[s].get("network_mode"):
                used.update((self.services[s].get("networks") or {"default": None}).keys())
        existing = {n["Name"]: n for n in networks_api.list_(self.eng)}
        for key in sorted(used):
            spec = (self.model.get("networks") or {}).get(key) or {"name": f"{self.name}_{key}"}
            name = spec.get("name") or key
            if spec.get("external"):
                if name not in existing:
                    raise NotFound(f"network {name} declared as external, but could not be "
                                   f"found: create it first (minirun network create {name})")
                continue
            if name in existing:
                have = existing[name].get("Labels") or {}
                if have.get(naming.PROJECT) not in (None, self.name):
                    self.log(f"WARN a network with name {name} exists but was not created for "
                             f"project \"{self.name}\". Set `external: true` to use an existing "
                             "network")
                continue
            # ipam.config: a pool per address family (enable_ipv6: dual-stack), by the subnet.
            pools = {("6" if ":" in (p.get("subnet") or p.get("gateway") or "") else "4"): p
                     for p in (spec.get("ipam") or {}).get("config") or []}
            ipam, ipam6 = pools.get("4") or {}, pools.get("6") or {}
            labels = {**(spec.get("labels") or {}), naming.PROJECT: self.name,
                      naming.NETWORK: key, naming.VERSION: naming.COMPOSE_VERSION}
            self.events("Network", name, "Creating")
            networks_api.create(self.eng, name, driver=spec.get("driver") or "bridge",
                                subnet=ipam.get("subnet"),
                                gateway=ipam.get("gateway"), internal=bool(spec.get("internal")),
                                labels=labels, ip_range=ipam.get("ip_range"),
                                aux_addresses={**(ipam.get("aux_addresses") or {}),
                                               **(ipam6.get("aux_addresses") or {})} or None,
                                ipv6=bool(spec.get("enable_ipv6")), subnet6=ipam6.get("subnet"),
                                gateway6=ipam6.get("gateway"),
                                options={k: str(v) for k, v in
                                         (spec.get("driver_opts") or {}).items()})
            self.events("Network", name, "Created")

    def ensure_volumes(self, services: list[str]) -> None:
        used = set()
        for s in services:
            for v in self.services[s].get("volumes") or []:
                if v["type"] == "volume" and v.get("source"):
                    used.add(v["source"])
        existing = {v["Name"] for v in volumes_api.list_(self.eng)["Volumes"]}
        for key in sorted(used):
            spec = (self.model.get("volumes") or {}).get(key) or {}
            name = spec.get("name") or key
            if spec.get("external"):
                if name not in existing:
                    raise NotFound(f"external volume \"{name}\" not found: create it first "
                                   f"(minirun volume create {name})")
                continue
            if name in existing:
                continue
            labels = {**(spec.get("labels") or {}), naming.PROJECT: self.name,
                      naming.VOLUME: key, naming.VERSION: naming.COMPOSE_VERSION}
            self.events("Volume", name, "Creating")
            volumes_api.create(self.eng, name, labels=labels)
            self.events("Volume", name, "Created")

    # -- images -----------------------------------------------------------------------------------
    def image_ref(self, service: str) -> str:
        return self.services[service].get("image") or naming.image_name(self.name, service)

    def ensure_images(self, services: list[str], build: bool = False, no_build: bool = False,
                      pull: str = "") -> dict[str, str]:
        """Each service's image ID, pulled or built as its policy says."""
        ids = {}
        for s in services:
            svc = self.services[s]
            ref = self.image_ref(s)
            policy = pull or svc.get("pull_policy") or "missing"
            has_build = "build" in svc
            if has_build and (build or policy == "build") and not no_build:
                ids[s] = self.build(s)
                continue
            if policy == "always" and svc.get("image"):
                ids[s] = self._pull(ref)
                continue
            try:
                ids[s] = images_api.get(self.eng.images(), ref).id
                continue
            except NotFound:
                pass
            if has_build and not no_build:
                ids[s] = self.build(s)
            elif policy == "never":
                raise NotFound(f"service {s}: no such image: {ref} (pull_policy never: pull it "
                               "first)")
            else:
                ids[s] = self._pull(ref)
        return ids

    def _pull(self, ref: str) -> str:
        from ..engine.api import distribution  # lazily: the registry client, ~21 ms of imports

        self.events("Image", ref, "Pulling")
        record = distribution.pull(self.eng.images(), ref, auth_file=auth_path(self.eng.root))
        self.events("Image", ref, "Pulled")
        return record.id

    def build(self, service: str, no_cache: bool = False, pull: bool = False,
              out: Callable[[str], None] | None = None) -> str:
        from ..engine.api import build as build_api  # (only services with build:)

        spec = self.services[service].get("build") or {}
        if "build" not in self.services[service]:
            raise InvalidArgument(f"service {service} has no build section")
        ref = self.image_ref(service)
        self.events("Image", ref, "Building")

        def progress(message: dict) -> None:
            if out and message.get("stream"):
                out(message["stream"])

        done = build_api.build(
            self.eng, spec["context"], dockerfile=os.path.join(spec["context"], spec.get(
                "dockerfile") or "Dockerfile"), tags=[ref], build_args={
                k: "" if v is None else str(v) for k, v in (spec.get("args") or {}).items()},
            no_cache=no_cache or bool(spec.get("no_cache")), target=spec.get("target"),
            pull_always=pull or bool(spec.get("pull")), network=spec.get("network") or "default",
            labels=spec.get("labels") or {}, pull=lambda r, policy="missing": self._pull_base(r, policy),
            progress=progress)
        self.events("Image", ref, "Built")
        return done["Id"]

    def _pull_base(self, ref: str, policy: str):
        from ..engine.api import distribution  # lazily: the registry client, ~21 ms of imports

        store = self.eng.images()
        if policy != "always":
            try:
                return images_api.get(store, ref)
            except NotFound:
                if policy == "never":
                    raise
        return distribution.pull(store, ref, auth_file=auth_path(self.eng.root))

    # -- up ---------------------------------------------------------------------------------------
    def up(self, names: Iterable[str] = (), o: UpOptions | None = None) -> list[str]:
        """Converge, then start. Returns the names of the containers of the services asked for
        (what an attached `up` follows)."""
        o = o or UpOptions()
        names = list(names)
        services = self.selected(names, with_deps=not o.no_deps)
        for s, n in o.scale.items():
            if s not in self.services:
                raise NotFound(f"no such service: {s} (in --scale {s}={n})")
        for s in services:
            for w in convert.check_keys(s, self.services[s]):
                self.log(f"WARN {w}")
        self._orphans(o.remove_orphans, o.timeout)
        self.ensure_networks(services)
        self.ensure_volumes(services)
        image_ids = self.ensure_images(services, o.build, o.no_build, o.pull)
        started: dict[str, list[str]] = {}

        def bring_up(s: str) -> None:
            self._wait_dependencies(s, services, o)
            want = o.scale.get(s, convert.replicas(s, self.services[s]))
            started[s] = self._converge(s, want, image_ids[s], o)

        # Services that do not depend on each other come up at the same time, as Compose
        # brings them up: one wave per depth of the depends_on graph (the engine takes its
        # locks per record, name and network, so two creates in two threads are safe).
        waves: dict[int, list[str]] = {}
        for s in services:
            waves.setdefault(self._depth(s), []).append(s)
        for depth in sorted(waves):
            failed = self._at_once(waves[depth], bring_up)
            if failed:
                raise failed[0]  # what depends on this wave must not start
        if o.wait:
            self.wait_ready(services, o.wait_timeout)
        shown = names or services
        return [c for s in shown for c in started.get(s, [])]

    def _orphans(self, remove: bool, timeout: int | None) -> None:
        orphans = [r for r in self.containers()
                   if r["Labels"].get(naming.SERVICE) not in self.services
                   and r["Labels"].get(naming.SERVICE) not in self.project.disabled]
        if not orphans:
            return
        names = [r["Names"][0].lstrip("/") for r in orphans]
        if not remove:
            self.log(f"WARN Found orphan containers ({names}) for this project. If you removed "
                     "or renamed this service in your compose file, you can run this command "
                     "with the --remove-orphans flag to clean it up.")
            return
        for name in names:
            self._remove(name, stop=True, timeout=timeout)

    def _converge(self, s: str, want: int, image_id: str, o: UpOptions) -> list[str]:
        """Make service `s` have `want` containers of its current configuration; start them
        (unless --no-start). Returns their names."""
        config_hash = loader.config_hash(self.services[s])
        rows = self.containers(s)
        for row in rows[want:][::-1]:  # scale down: the highest numbers go first
            self._remove(row["Names"][0].lstrip("/"), stop=True, timeout=o.timeout)
        rows = rows[:want]
        names = []
        taken = {int(r["Labels"].get(naming.NUMBER) or 0) for r in rows}
        for row in rows:
            name = row["Names"][0].lstrip("/")
            labels = row["Labels"]
            stale = labels.get(naming.CONFIG_HASH) != config_hash or \
                labels.get(naming.IMAGE, image_id) != image_id
            if o.force_recreate or (stale and not o.no_recreate):
                number = int(labels.get(naming.NUMBER) or 1)
                self.events("Container", name, "Recreate")
                keep = self._anonymous_volumes(name)
                self._remove(name, stop=True, timeout=o.timeout, quiet=True, volumes=False)
                name = self._create(s, number, image_id, config_hash, anonymous_volumes=keep)
                self.events("Container", name, "Recreated")
            else:
                self.events("Container", name, "Running" if row["State"] == "running" else
                            "Created")
            names.append(name)
        number = 1
        while len(names) < want:
            while number in taken:
                number += 1
            taken.add(number)
            names.append(self._create(s, number, image_id, config_hash, announce=True))
        if not o.no_start:
            for name in names:
                self._start(name)
        return names

    def _anonymous_volumes(self, name: str) -> dict[str, str]:
        """A container's anonymous volumes (their names are 64 hex digits), by target."""
        return {m["Destination"]: m["Name"] for m in api.inspect(self.eng, name)["Mounts"]
                if m["Type"] == "volume" and is_hex_id(m.get("Name") or "")}

    def _create(self, s: str, number: int, image_id: str, config_hash: str, *,
                announce: bool = False, oneoff: bool = False, container_name: str | None = None,
                overrides: Callable[[convert.Plan], None] | None = None,
                anonymous_volumes: dict[str, str] | None = None,
                use_aliases: bool = False) -> str:
        svc = self.services[s]
        shared = None
        mode = svc.get("network_mode") or ""
        if mode.startswith("service:"):
            other = self.containers(mode.split(":", 1)[1])
            shared = other[0]["Names"][0].lstrip("/") if other else None
        plan = convert.plan(self.name, self.model, s, number, self.image_ref(s),
                            config_hash=config_hash, image_id=image_id, oneoff=oneoff,
                            container_name=container_name, labels={
                                naming.WORKING_DIR: self.project.working_dir,
                                naming.CONFIG_FILES: ",".join(self.project.config_files),
                                naming.DEPENDS_ON: ",".join(
                                    f"{d}:{c['condition']}:{str(c.get('restart', False)).lower()}"
                                    for d, c in (svc.get("depends_on") or {}).items())},
                            network_mode_container=shared, anonymous_volumes=anonymous_volumes,
                            use_aliases=use_aliases)
        if overrides:
            overrides(plan)
        for w in plan.warnings:
            self.log(f"WARN {w}")
        for d in plan.bind_dirs:
            os.makedirs(d, exist_ok=True)  # create_host_path: Compose makes a missing source
        name = plan.options.name
        if announce:
            self.events("Container", name, "Creating")
        record = images_api.get(self.eng.images(), image_id)
        try:
            cid = api.create(self.eng, plan.options, record)["Id"]
        except MinirunError as e:
            raise _about(e, f"service {s}: container {name}") from None
        try:
            for net, aliases, ip, ip6 in plan.networks:
                networks_api.connect(self.eng, net, cid, ip, aliases, ip6)
        except BaseException:
            api.remove(self.eng, cid, force=True, volumes=True)
            raise
        if announce:
            self.events("Container", name, "Created")
        return name

    def _start(self, name: str) -> None:
        row = api.inspect(self.eng, name)
        if row["State"]["Running"]:
            return
        self.events("Container", name, "Starting")
        try:
            api.start(self.eng, name, monitor=MonitorHandle(self.eng))
        except MinirunError as e:  # a host port taken meanwhile, a command not found ...
            service = (row["Config"].get("Labels") or {}).get(naming.SERVICE, "?")
            raise _about(e, f"service {service}: container {name}") from None
        self.events("Container", name, "Started")

    def _wait_dependencies(self, s: str, services: list[str], o: UpOptions) -> None:
        """Block until every dependency of `s` meets its condition (Compose: a dependency that
        fails stops the `up` with an error naming it)."""
        for dep, cond in (self.services[s].get("depends_on") or {}).items():
            if dep not in self.services:
                continue  # an optional (required: false) dependency that is not in the model
            condition = cond.get("condition", "service_started")
            for row in self.containers(dep):
                name = row["Names"][0].lstrip("/")
                if condition == "service_healthy":
                    self._await(name, "Healthy", o.wait_timeout)
                elif condition == "service_completed_successfully":
                    self._await(name, "Exited", o.wait_timeout)

    def _await(self, name: str, goal: str, timeout: float | None) -> None:
        """Wait for container `name` to become healthy ("Healthy") or to exit 0 ("Exited")."""
        self.events("Container", name, "Waiting")
        deadline = time.monotonic() + (timeout if timeout is not None else 300)
        while True:
            state = api.inspect(self.eng, name)["State"]
            if goal == "Healthy":
                health = (state.get("Health") or {}).get("Status")
                if health is None:
                    raise ComposeError(f"container {name} has no healthcheck configured "
                                       "(service_healthy needs one)")
                if health == "healthy":
                    break
                if health == "unhealthy":
                    self.events("Container", name, "Error")
                    raise ComposeError(f"dependency failed to start: container {name} is "
                                       "unhealthy")
                if not state["Running"]:
                    raise ComposeError(f"dependency failed to start: container {name} exited "
                                       f"({state['ExitCode']})")
            else:
                if not state["Running"] and state["Status"] in ("exited", "dead"):
                    if state["ExitCode"] != 0:
                        raise ComposeError(f"service \"{name}\" didn't complete successfully: "
                                           f"exit {state['ExitCode']}")
                    break
            if time.monotonic() > deadline:
                raise ComposeError(f"container {name} did not become {goal.lower()} in "
                                   f"{timeout if timeout is not None else 300:g} s")
            time.sleep(POLL)
        self.events("Container", name, goal)

    def wait_ready(self, services: list[str], timeout: float | None) -> None:
        """--wait: every container running, and healthy where it has a healthcheck."""
        for s in services:
            for row in self.containers(s):
                name = row["Names"][0].lstrip("/")
                state = api.inspect(self.eng, name)["State"]
                if state.get("Health"):
                    self._await(name, "Healthy", timeout)
                elif not state["Running"]:
                    raise ComposeError(f"container {name} exited ({state['ExitCode']})")

    # -- down and the lifecycle verbs -------------------------------------------------------------
    def down(self, volumes: bool = False, rmi: str = "", remove_orphans: bool = False,
             timeout: int | None = None) -> None:
        rows = self.containers(oneoff=None)
        known = set(self.services) | set(self.project.disabled)
        if not self.project.config_files:  # known by name only (`-p NAME down`): all of it
            remove_orphans = True
        if not remove_orphans:
            orphans = [r for r in rows if r["Labels"].get(naming.SERVICE) not in known]
            rows = [r for r in rows if r not in orphans]
            if orphans:
                self.log("WARN Found orphan containers ("
                         f"{[r['Names'][0].lstrip('/') for r in orphans]}) for this project. "
                         "If you removed or renamed this service in your compose file, you can "
                         "run this command with the --remove-orphans flag to clean it up.")
        # Anonymous volumes go only with -v too (Compose's down; `rm -v` for one container).
        self._in_reverse_order(rows, lambda name: self._remove(name, stop=True, timeout=timeout,
                                                                 volumes=volumes))
        networks = sorted((self.model.get("networks") or {}).items())
        if not self.project.config_files:
            networks = [(n["Name"], {"name": n["Name"]}) for n in networks_api.list_(
                self.eng, {"label": [f"{naming.PROJECT}={self.name}"]})]
        for key, spec in networks:
            name = spec.get("name") or key
            if spec.get("external"):
                continue
            try:
                net = networks_api.inspect(self.eng, name)
            except NotFound:
                continue
            if (net.get("Labels") or {}).get(naming.PROJECT) != self.name:
                continue
            self.events("Network", name, "Removing")
            networks_api.remove(self.eng, name)
            self.events("Network", name, "Removed")
        if volumes:
            for v in volumes_api.list_(self.eng, {"label": [f"{naming.PROJECT}={self.name}"]})[
                    "Volumes"]:
                self.events("Volume", v["Name"], "Removing")
                volumes_api.remove(self.eng, v["Name"])
                self.events("Volume", v["Name"], "Removed")
        if rmi:
            for s in sorted(self.services):
                svc = self.services[s]
                if rmi == "local" and svc.get("image"):
                    continue  # local: only images without a custom name (built for the project)
                ref = self.image_ref(s)
                try:
                    images_api.remove(self.eng.images(), ref)
                except NotFound:
                    continue
                except Conflict as e:
                    self.log(f"WARN image {ref}: {e}")
                    continue
                self.events("Image", ref, "Removed")

    @staticmethod
    def _at_once(items: list[str], act: Callable[[str], None]) -> list[MinirunError]:
        """act(item) for every item, in threads (each runs to its end); the errors."""
        errors: list[MinirunError] = []
        with ThreadPoolExecutor(max_workers=8) as pool:
            for f in [pool.submit(act, item) for item in items]:
                try:
                    f.result()
                except MinirunError as e:
                    errors.append(e)
        return errors

    def _in_reverse_order(self, rows: list[dict], act: Callable[[str], None]) -> None:
        """Run `act` on each container, dependents before what they depend on; containers
        of services that do not depend on each other at once (Compose stops in parallel)."""
        waves: dict[int, list[str]] = {}
        for r in rows:
            s = r["Labels"].get(naming.SERVICE, "")
            level = self._depth(s)
            waves.setdefault(level, []).append(r["Names"][0].lstrip("/"))
        errors = []
        for level in sorted(waves, reverse=True):
            errors += self._at_once(waves[level], act)
        if errors:
            raise errors[0]

    def _depth(self, s: str, seen: frozenset = frozenset()) -> int:
        """How deep `s` sits in the depends_on graph (0: depends on nothing)."""
        deps = [d for d in (self.services.get(s) or {}).get("depends_on") or {}
                if d in self.services and d not in seen]
        return 1 + max((self._depth(d, seen | {s}) for d in deps), default=-1)

    def _remove(self, name: str, stop: bool, timeout: int | None, quiet: bool = False,
                volumes: bool = True) -> None:
        state = api.inspect(self.eng, name)["State"]
        if stop and (state["Running"] or state["Paused"]):
            if not quiet:
                self.events("Container", name, "Stopping")
            api.stop(self.eng, name, timeout)
            if not quiet:
                self.events("Container", name, "Stopped")
        if not quiet:
            self.events("Container", name, "Removing")
        api.remove(self.eng, name, force=True, volumes=volumes)
        if not quiet:
            self.events("Container", name, "Removed")

    def names(self, services: Iterable[str] = (), running_only: bool = False,
              oneoff: bool | None = False) -> list[str]:
        services = list(services)
        for s in services:
            if s not in self.services and s not in self.project.disabled and \
                    self.project.config_files:
                raise NotFound(f"no such service: {s}")
        rows = self.containers(oneoff=oneoff, running_only=running_only)
        return [r["Names"][0].lstrip("/") for r in rows
                if not services or r["Labels"].get(naming.SERVICE) in services]

    def stop(self, services: Iterable[str] = (), timeout: int | None = None) -> None:
        rows = [api.inspect(self.eng, n) for n in self.names(services, running_only=True)]
        rows = [{"Names": ["/" + r["Name"].lstrip("/")], "Labels": r["Config"]["Labels"] or {}}
                for r in rows]

        def stop_one(name: str) -> None:
            self.events("Container", name, "Stopping")
            api.stop(self.eng, name, timeout)
            self.events("Container", name, "Stopped")

        self._in_reverse_order(rows, stop_one)

    def start(self, services: Iterable[str] = ()) -> None:
        services = list(services)
        for s in self.selected(services, with_deps=False):
            self._wait_dependencies(s, [], UpOptions())
            for name in self.names([s]):
                self._start(name)

    def restart(self, services: Iterable[str] = (), timeout: int | None = None) -> None:
        for name in self.names(services):
            self.events("Container", name, "Restarting")
            api.restart(self.eng, name, timeout)
            self.events("Container", name, "Started")

    def each(self, verb: str, services: Iterable[str] = (), **kw) -> None:
        """kill, pause, unpause on every (running) container of the services."""
        act = {"kill": (api.kill, "Killing", "Killed"),
               "pause": (api.pause, "Pausing", "Paused"),
               "unpause": (api.unpause, "Unpausing", "Unpaused")}[verb]
        for name in self.names(services, running_only=True):
            self.events("Container", name, act[1])
            act[0](self.eng, name, **kw)
            self.events("Container", name, act[2])

    def rm(self, services: Iterable[str] = (), stop: bool = False, volumes: bool = False) -> list[str]:
        removed = []
        for name in self.names(services):
            state = api.inspect(self.eng, name)["State"]
            if state["Running"] and not stop:
                continue  # Compose's rm leaves running containers unless -s
            if state["Running"]:
                api.stop(self.eng, name)
            self.events("Container", name, "Removing")
            api.remove(self.eng, name, force=True, volumes=volumes)
            self.events("Container", name, "Removed")
            removed.append(name)
        return removed

    def container_of(self, service: str, index: int = 1) -> str:
        """`exec --index`: the index-th container of a service (Compose counts from 1)."""
        if service not in self.services:
            raise NotFound(f"no such service: {service}")
        rows = [r for r in self.containers(service) if r["State"] == "running"]
        for r in rows:
            if int(r["Labels"].get(naming.NUMBER) or 0) == index:
                return r["Names"][0].lstrip("/")
        raise ComposeError(f"service \"{service}\" is not running container #{index}")

    def run_container(self, service: str, command: list[str] | None, *, name: str | None = None,
                      entrypoint: list[str] | None = None, env: list[str] = (),
                      user: str | None = None, workdir: str | None = None, tty: bool = False,
                      interactive: bool = False, rm: bool = False, no_deps: bool = False,
                      publish: list[str] = (), service_ports: bool = False,
                      volumes: list[str] = (), labels: dict | None = None,
                      build: bool = False, pull: str = "", use_aliases: bool = False) -> str:
        """`compose run`: dependencies up, then a one-off container of `service` (created, not
        started: the CLI attaches and starts it). Returns its name."""
        if service not in self.services:
            if service in self.project.disabled:
                self._enable(service)
            else:
                raise NotFound(f"no such service: {service}")
        deps = [s for s in self.selected([service]) if s != service]
        if deps and not no_deps:
            self.up(deps, UpOptions(detach=True))
        self.ensure_networks([service])
        self.ensure_volumes([service])
        image_id = self.ensure_images([service], build=build, pull=pull)[service]

        def adjust(plan: convert.Plan) -> None:
            o = plan.options
            if command:
                o.command = list(command)
            if entrypoint is not None:
                o.entrypoint = list(entrypoint)
            o.env += list(env)
            if user is not None:
                o.user = user
            if workdir:
                o.workdir = workdir
            o.tty, o.interactive, o.auto_remove = tty, interactive, rm
            svc_ports = [convert._port(p) for p in self.services[service].get("ports") or []]
            o.publish = list(publish) + (svc_ports if service_ports else [])
            o.volumes += list(volumes)
            o.labels.update(labels or {})

        cname = name or naming.oneoff_name(self.name, service)
        return self._create(service, 1, image_id, loader.config_hash(self.services[service]),
                            oneoff=True, container_name=cname, overrides=adjust,
                            use_aliases=use_aliases)


def _about(e: MinirunError, where: str) -> MinirunError:
    """The same error (its type, so its exit code), naming the service and container first."""
    try:
        out = type(e)(f"{where}: {e}")
    except TypeError:  # an error class with other constructor arguments
        out = ComposeError(f"{where}: {e}")
    if hasattr(e, "command_code"):
        out.command_code = e.command_code
    return out


def list_projects(eng: Engine, all: bool = False) -> list[dict]:  # noqa: A002 - compose's flag
    """`compose ls`: every project with a container here, its status and config files."""
    projects: dict[str, dict] = {}
    for row in api.list_(eng, all=True, filters={"label": [naming.PROJECT]}):
        labels = row["Labels"]
        p = projects.setdefault(labels[naming.PROJECT], {"states": {}, "files": ""})
        p["states"][row["State"]] = p["states"].get(row["State"], 0) + 1
        p["files"] = p["files"] or labels.get(naming.CONFIG_FILES, "")
    out = []
    for name in sorted(projects):
        states = projects[name]["states"]
        if not all and "running" not in states:
            continue
        status = ", ".join(f"{state}({n})" for state, n in sorted(states.items()))
        out.append({"Name": name, "Status": status, "ConfigFiles": projects[name]["files"]})
    return out
