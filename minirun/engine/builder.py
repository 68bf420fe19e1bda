"""`build`: a Dockerfile, step by step, into an image -- Docker's classic builder.

Each stage starts FROM an image (or `scratch`) and carries a config (Env, Cmd, WorkingDir ...)
and a list of layers. Each instruction is one step:

  metadata   ENV LABEL ARG CMD ENTRYPOINT EXPOSE USER VOLUME STOPSIGNAL SHELL HEALTHCHECK ONBUILD
             MAINTAINER: a new config, no layer ("#(nop)" in the history)
  RUN        a container made from the stage so far runs the command (engine.create/start,
             output streamed); its writable layer, committed (commit.py), is the new layer
  COPY ADD   the files, resolved in the context (or --from another stage or an image), copied
             into the stage's rootfs mounted on overlay; the upper directory is the new layer
  WORKDIR    a new config, and a layer only when the directory was missing

The cache: every step's key is sha256(parent config digest, the step as written after variable
expansion, the build args it sees, and for COPY/ADD a checksum of every source file's name,
mode, owner and content). A hit skips the step and reuses the config (and so the layers) it made
before: "Using cache". A miss makes every later step a miss too, since its parent changed --
which is why the order of a Dockerfile matters. Keys and the configs they lead to live in
<store>/build-cache.json; prune_unused() keeps what they name until `builder prune`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys

from ..base.atomicfile import write_atomic
from ..base.filelock import FileLock
from ..base.times import now
from ..errors import MinirunError
from ..image.dockerfile import dockerfile as df
from ..image.dockerfile import shellwords
from ..record import dataclass, field
from .build_context import all_paths, checksum, copy_into, glob_match, has_glob
from .lifecycle import MonitorHandle, RunOptions

DEFAULT_SHELL = ["/bin/sh", "-c"]
# ARGs every build knows without an ARG line (Docker's predefined proxy args).
PREDEFINED_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
                   "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")
# Instructions whose arguments go through variable expansion (Docker's list; RUN, CMD and
# ENTRYPOINT are left to the shell at run time).
EXPANDED = {"ADD", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME",
            "WORKDIR", "ONBUILD", "ARG"}


class BuildError(MinirunError):
    exit_code = 1  # `docker build` exits 1 when the build fails


@dataclass
class BuildOptions:
    context: str
    dockerfile: str | None = None  # -f; default CONTEXT/Dockerfile
    tags: list = field(default_factory=list)
    build_args: dict = field(default_factory=dict)
    no_cache: bool = False
    target: str | None = None
    pull: bool = False
    network: str = "default"
    quiet: bool = False
    labels: dict = field(default_factory=dict)


class Stage:
    """One FROM ... to the next FROM: the image being made."""

    def __init__(self, index: int, name: str, config: dict, parent: str, base) -> None:
        self.index, self.name = index, name
        self.config = config  # the full image config JSON (config, rootfs, history ...)
        self.id = parent  # the digest of `config` (or the base image ID): the cache's parent
        self.base = base  # the FROM image's record (its blobs are reused), None for scratch
        self.args: dict[str, str | None] = {}  # ARGs declared in this stage, with values
        self.cmd_set = False  # CMD given in this stage (ENTRYPOINT clears an inherited one)

    @property
    def cfg(self) -> dict:
        return self.config.setdefault("config", {})

    def env(self) -> dict[str, str]:
        out = {}
        for item in self.cfg.get("Env") or []:
            k, _, v = item.partition("=")
            out[k] = v
        return out

    def expansion_env(self) -> dict[str, str]:
        """What $VAR sees in an instruction: the stage's ENV, then its ARGs not shadowed."""
        env = {k: v for k, v in self.args.items() if v is not None}
        env.update(self.env())
        return env


class Cache:
    """The layer cache: step key -> the config digest that step produced."""

    def __init__(self, store) -> None:
        self.store = store
        self.path = os.path.join(store.root, "build-cache.json")

    def _load(self) -> dict:
        try:
            with open(self.path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def get(self, key: str) -> dict | None:
        """The cached config for `key`, if it and every layer it names are still stored."""
        digest = self._load().get(key)
        if not digest or not self.store.has_blob(digest):
            return None
        with self.store.open_blob(digest) as f:
            config = json.loads(f.read())
        if not all(self.store.has_layer(d) for d in config["rootfs"]["diff_ids"]):
            return None
        return config

    def put(self, key: str, digest: str) -> None:
        with FileLock(self.path + ".lock", mode=0o666):
            entries = self._load()
            entries[key] = digest
            write_atomic(self.path, json.dumps(entries), mode=0o666)


def config_digest(config: dict) -> tuple[bytes, str]:
    """The config as stored (image/assemble.write_image's serialization) and its digest."""
    data = json.dumps(config, indent=1).encode()
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


class Builder:
    """engine: where containers and images live (lifecycle.Engine); pull(ref, policy) ->
    ImageRecord: how a FROM image that is not here yet is fetched (the front end passes its
    pull with progress); out(text): each line of the build's output."""

    def __init__(self, engine, opts: BuildOptions, pull, out=None) -> None:
        self.opts, self.pull = opts, pull
        self.store = engine.images()
        self.engine = engine
        self.cache = Cache(self.store)
        self.say = out or (lambda text: (sys.stdout.write(text + "\n"), sys.stdout.flush()))
        if opts.quiet:
            self.say = lambda text: None
        self.stages: list[Stage] = []
        self.used_args: set[str] = set()
        self.step = 0
        self.total = 0
        self.context = os.path.abspath(opts.context)
        self.ignore = None
        self.meta: dict[str, str | None] = {}
        self.escape = "\\"
        self.fname = "Dockerfile"

    # -- the whole build ------------------------------------------------------------------------
    def build(self):
        # lazy: ~4.5 ms (dataclasses, tarfile); `commit` and `builder prune` load this module
        from ..image.assemble import write_image
        from ..image.dockerfile import dockerignore

        if not os.path.isdir(self.context):
            raise BuildError(f"unable to prepare context: path {self.opts.context!r} not found "
                             "(give a directory; URLs and stdin are not supported)")
        path = self.opts.dockerfile or os.path.join(self.context, "Dockerfile")
        if self.opts.dockerfile and not os.path.isabs(path) and not os.path.exists(path):
            path = os.path.join(self.context, path)
        try:
            with open(path) as f:
                text = f.read()
        except OSError as e:
            raise BuildError(f"cannot read the Dockerfile {path}: {e.strerror} (use -f to name "
                             "another)") from None
        self.fname = os.path.basename(path)
        parsed = df.parse(text, self.fname)
        self.escape = parsed.escape
        self.ignore = dockerignore.load(self.context)
        for instr in parsed.meta_args:
            for name, value in df.key_values(instr, self.meta_env(), self.escape):
                self.meta[name] = self.opts.build_args.get(name, value)
                if name in self.opts.build_args:
                    self.used_args.add(name)
        stages = self.split(parsed.instructions)
        self.total = sum(len(s) for s in stages)
        final = None
        with self.store.ingest():
            for index, instrs in enumerate(stages):
                stage = self.run_stage(index, instrs)
                self.stages.append(stage)
                final = stage
                if self.opts.target and stage.name == self.opts.target.lower():
                    break
            if self.opts.target and final.name != self.opts.target.lower():
                raise BuildError(f"failed to reach build target {self.opts.target} in "
                                 f"{self.fname}: no stage is named so")
            unused = sorted(set(self.opts.build_args) - self.used_args - set(PREDEFINED_ARGS))
            if unused:
                self.say(f"[Warning] One or more build-args {unused} were not consumed")
            if self.opts.labels:
                self.metadata(final, "LABEL " + " ".join(f"{k}={v}" for k, v in
                                                          self.opts.labels.items()),
                              lambda: final.cfg.setdefault("Labels", {}).update(self.opts.labels))
            tags = [self.tag_name(t) for t in self.opts.tags]
            record = write_image(self.store, final.config, tags, base=final.base)
        self.say(f"Successfully built {record.short_id}")
        for t in self.opts.tags:
            self.say(f"Successfully tagged {self.familiar(t)}")
        return record

    def meta_env(self) -> dict[str, str]:
        return {k: v for k, v in self.meta.items() if v is not None}

    def split(self, instrs: list) -> list[list]:
        stages: list[list] = []
        for instr in instrs:
            if instr.cmd == "FROM":
                stages.append([instr])
            elif not stages:
                raise BuildError(f"{self.fname}:{instr.line}: no FROM before {instr.cmd}: a "
                                 "Dockerfile starts with FROM (only ARG may come first)")
            else:
                stages[-1].append(instr)
        if not stages:
            raise BuildError(f"{self.fname}: the Dockerfile has no instructions (start with FROM)")
        return stages

    @staticmethod
    def tag_name(t: str) -> str:
        from ..image import reference  # lazy: ~2 ms (dataclasses), only a build with -t

        ref = reference.parse(t)
        if ref.digest:
            raise BuildError(f"invalid tag {t!r}: a tag cannot name a digest")
        return ref.name

    @staticmethod
    def familiar(t: str) -> str:
        from ..image import reference  # lazy: ~2 ms (dataclasses), only a build

        return reference.parse(t).familiar

    def show(self, instr) -> None:
        self.step += 1
        self.say(f"Step {self.step}/{self.total} : {instr.original}")

    # -- a stage ----------------------------------------------------------------------------------
    def run_stage(self, index: int, instrs: list) -> Stage:
        first = instrs[0]
        self.show(first)
        stage = self.from_(index, first)
        for instr in instrs[1:]:
            self.show(instr)
            self.instruction(stage, instr)
        return stage

    def from_(self, index: int, instr) -> Stage:
        from ..image.assemble import image_config  # lazy: see build()

        raw, name = df.stage(instr)
        name = name or ""
        image = shellwords.expand(raw, self.meta_env(), self.escape)  # only global ARGs reach FROM
        if not image:
            raise BuildError(f"{self.fname}:{instr.line}: FROM {raw}: the image name is empty "
                             "after expanding its variables (give the ARG a default)")
        for s in self.stages:
            if s.name and s.name == image.lower():
                stage = Stage(index, name, json.loads(json.dumps(s.config)), s.id, s.base)
                self.say(f" ---> {short(s.id)}")
                return stage
        if image.lower() == "scratch":
            config = image_config(self.store, None)
            self.say(" ---> (scratch)")
            return Stage(index, name, config, "scratch", None)
        record = self.resolve_image(image, instr, always=self.opts.pull)
        config = image_config(self.store, record)
        stage = Stage(index, name, config, record.id, record)
        self.say(f" ---> {record.short_id}")
        triggers = list(stage.cfg.get("OnBuild") or [])
        if triggers:
            # ONBUILD: the base image's deferred instructions run now, in this build.
            stage.cfg["OnBuild"] = None
            self.say(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}")
            for text in triggers:
                trig = df.parse_onbuild(df.Instruction("ONBUILD", [text], False, {}, instr.line,
                                                       "ONBUILD " + text, self.fname))
                self.instruction(stage, trig)
        return stage

    def resolve_image(self, image: str, instr, always: bool = False):
        try:
            return self.pull(image, "always" if always else "missing")
        except MinirunError as e:
            raise BuildError(f"{self.fname}:{instr.line}: FROM {image}: {e}") from None

    # -- one instruction ------------------------------------------------------------------------
    def instruction(self, stage: Stage, instr) -> None:
        cmd = instr.cmd
        handler = getattr(self, "do_" + cmd.lower(), None)
        if handler is None:
            raise BuildError(f"{self.fname}:{instr.line}: {cmd} is not supported by minirun build")
        try:
            handler(stage, instr)
        except df.DockerfileError:
            raise
        except BuildError:
            raise
        except MinirunError as e:
            raise BuildError(f"{self.fname}:{instr.line}: {cmd}: {e}") from None

    def expand(self, stage: Stage, word: str) -> str:
        return shellwords.expand(word, stage.expansion_env(), self.escape)

    def metadata(self, stage: Stage, text: str, change) -> None:
        """A config-only step: history says `#(nop)`, no layer."""
        self.commit_step(stage, "/bin/sh -c #(nop)  " + text, text, lambda: (change(), None)[1])

    def commit_step(self, stage: Stage, created_by: str, key_text: str, do, extra: str = "") -> None:
        """Run step `do` (it changes stage.config and returns a new diff_id or None) unless the
        cache has it; record the history entry and the new config."""
        key = "sha256:" + hashlib.sha256(json.dumps([stage.id, key_text, extra]).encode()).hexdigest()
        if not self.opts.no_cache:
            hit = self.cache.get(key)
            if hit is not None:
                stage.config = hit
                stage.id = config_digest(hit)[1]
                self.say(" ---> Using cache")
                self.say(f" ---> {short(stage.id)}")
                return
        layer = do()
        stamp = now(6)  # image times in microseconds, as minirun's images have them
        entry = {"created": stamp, "created_by": created_by}
        if layer is None:
            entry["empty_layer"] = True
        else:
            stage.config["rootfs"]["diff_ids"] = list(stage.config["rootfs"]["diff_ids"]) + [layer]
        stage.config["created"] = stamp
        stage.config["history"] = list(stage.config.get("history") or []) + [entry]
        data, digest = config_digest(stage.config)
        self.store.put_blob(data, digest)
        self.cache.put(key, digest)
        stage.id = digest
        self.say(f" ---> {short(digest)}")

    # metadata instructions
    def do_env(self, stage: Stage, instr) -> None:
        pairs = df.key_values(instr, stage.expansion_env(), self.escape)

        def change() -> None:
            env = stage.env()
            for k, v in pairs:
                env[k] = v
            stage.cfg["Env"] = [f"{k}={v}" for k, v in env.items()]
        self.metadata(stage, "ENV " + " ".join(f'{k}={v}' for k, v in pairs), change)

    def do_label(self, stage: Stage, instr) -> None:
        pairs = df.key_values(instr, stage.expansion_env(), self.escape)
        self.metadata(stage, "LABEL " + " ".join(f'{k}={v}' for k, v in pairs),
                      lambda: stage.cfg.__setitem__("Labels", {**(stage.cfg.get("Labels") or {}),
                                                               **dict(pairs)}))

    def do_maintainer(self, stage: Stage, instr) -> None:
        who = " ".join(instr.args)
        self.metadata(stage, "MAINTAINER " + who, lambda: stage.config.__setitem__("author", who))

    def do_arg(self, stage: Stage, instr) -> None:
        for name, default in df.key_values(instr, stage.expansion_env(), self.escape):
            if name in self.opts.build_args:
                value = self.opts.build_args[name]
                self.used_args.add(name)
            elif default is not None:
                value = default
            else:
                value = self.meta.get(name)  # a global ARG, declared again in this stage
            stage.args[name] = value
            shown = f"{name}={default}" if default is not None else name
            self.metadata(stage, "ARG " + shown, lambda: None)

    def do_cmd(self, stage: Stage, instr) -> None:
        value = self.command_form(stage, instr)
        stage.cmd_set = True
        self.metadata(stage, "CMD " + go_list(value), lambda: stage.cfg.__setitem__("Cmd", value))

    def do_entrypoint(self, stage: Stage, instr) -> None:
        value = self.command_form(stage, instr)

        def change() -> None:
            stage.cfg["Entrypoint"] = value
            if not stage.cmd_set:
                stage.cfg["Cmd"] = None  # an inherited CMD does not survive a new ENTRYPOINT
        self.metadata(stage, "ENTRYPOINT " + go_list(value), change)

    def command_form(self, stage: Stage, instr) -> list[str] | None:
        if instr.json:
            return list(instr.args) or None
        text = " ".join(instr.args)
        return [*(stage.cfg.get("Shell") or DEFAULT_SHELL), text] if text else None

    def do_shell(self, stage: Stage, instr) -> None:
        if not instr.json or not instr.args:
            raise BuildError(f"{self.fname}:{instr.line}: SHELL requires the arguments to be in "
                             "JSON form, e.g. SHELL [\"/bin/sh\", \"-c\"]")
        value = list(instr.args)
        self.metadata(stage, "SHELL " + go_list(value), lambda: stage.cfg.__setitem__("Shell", value))

    def do_expose(self, stage: Stage, instr) -> None:
        ports = []
        for word in shellwords.expand_words(" ".join(instr.args), stage.expansion_env(), self.escape):
            port, _, proto = word.partition("/")
            proto = (proto or "tcp").lower()
            lo, _, hi = port.partition("-")
            if not lo.isdigit() or (hi and not hi.isdigit()) or proto not in ("tcp", "udp", "sctp"):
                raise BuildError(f"{self.fname}:{instr.line}: EXPOSE {word}: not a port "
                                 "(80, 80/udp, 8000-8010)")
            for p in range(int(lo), int(hi or lo) + 1):
                ports.append(f"{p}/{proto}")

        def change() -> None:
            stage.cfg["ExposedPorts"] = {**(stage.cfg.get("ExposedPorts") or {}),
                                         **{p: {} for p in ports}}
        self.metadata(stage, "EXPOSE " + " ".join(ports), change)

    def do_user(self, stage: Stage, instr) -> None:
        user = self.expand(stage, " ".join(instr.args)).strip()
        self.metadata(stage, "USER " + user, lambda: stage.cfg.__setitem__("User", user))

    def do_volume(self, stage: Stage, instr) -> None:
        if instr.json:
            vols = [self.expand(stage, v) for v in instr.args]
        else:
            vols = shellwords.expand_words(" ".join(instr.args), stage.expansion_env(), self.escape)
        if not vols or any(not v for v in vols):
            raise BuildError(f"{self.fname}:{instr.line}: VOLUME specified can not be an empty string")

        def change() -> None:
            stage.cfg["Volumes"] = {**(stage.cfg.get("Volumes") or {}), **{v: {} for v in vols}}
        self.metadata(stage, "VOLUME " + go_list(vols), change)

    def do_stopsignal(self, stage: Stage, instr) -> None:
        sig = self.expand(stage, " ".join(instr.args)).strip()
        self.metadata(stage, "STOPSIGNAL " + sig, lambda: stage.cfg.__setitem__("StopSignal", sig))

    def do_healthcheck(self, stage: Stage, instr) -> None:
        hc = df.healthcheck(instr)
        self.metadata(stage, instr.original, lambda: stage.cfg.__setitem__("Healthcheck", hc))

    def do_onbuild(self, stage: Stage, instr) -> None:
        text = self.expand(stage, instr.args[0]) if instr.args else ""
        df.parse_onbuild(instr)  # refuses ONBUILD ONBUILD / FROM / MAINTAINER, naming the line

        def change() -> None:
            stage.cfg["OnBuild"] = list(stage.cfg.get("OnBuild") or []) + [text]
        self.metadata(stage, "ONBUILD " + text, change)

    def do_workdir(self, stage: Stage, instr) -> None:
        path = self.expand(stage, " ".join(instr.args)).strip()
        if not path.startswith("/"):
            path = os.path.join(stage.cfg.get("WorkingDir") or "/", path)
        path = os.path.normpath(path)

        def do():
            stage.cfg["WorkingDir"] = path

            def mkdir(root: str) -> None:
                # made relative to fds inside the step's rootfs (kernel/resolve.py), never by a
                # path string an image's symlink could point at the host (CVE-2024-45310)
                from .build_context import make_dirs

                os.close(make_dirs(root, path))
            return self.filesystem_step(stage, mkdir)
        self.commit_step(stage, "/bin/sh -c #(nop) WORKDIR " + path, "WORKDIR " + path, do)

    # RUN
    def do_run(self, stage: Stage, instr) -> None:
        if instr.flags:
            bad = ", ".join(f"--{k}" for k in instr.flags)
            raise BuildError(f"{self.fname}:{instr.line}: RUN {bad}: BuildKit options are not "
                             "supported by the classic builder")
        args = list(instr.args) if instr.json else \
            [*(stage.cfg.get("Shell") or DEFAULT_SHELL), " ".join(instr.args)]
        env = stage.env()
        build_env = {k: v for k, v in stage.args.items() if v is not None and k not in env}
        shown = " ".join(args)
        created_by = (f"|{len(build_env)} " + " ".join(f"{k}={v}" for k, v in sorted(build_env.items()))
                      + " " + shown) if build_env else shown
        self.commit_step(stage, created_by, "RUN " + created_by,
                         lambda: self.run_container(stage, args, build_env, created_by))

    def run_container(self, stage: Stage, args: list[str], build_env: dict, created_by: str):
        # lazy: only RUN makes a container (assemble ~4.5 ms: see build())
        from ..image.assemble import add_layer_from_dir, write_image
        from . import attach
        from .commit import runtime_stubs

        eng = self.engine
        rec = write_image(self.store, stage.config, [], base=stage.base)  # a step image
        network = {"default": "bridge"}.get(self.opts.network, self.opts.network)
        opts = RunOptions(image=rec.id, command=args, entrypoint="", network=network,
                          env=[f"{k}={v}" for k, v in build_env.items()])
        c = None
        try:
            c = eng.create(opts, rec)
            self.say(f" ---> Running in {c.short_id}")
            monitor = MonitorHandle(eng)
            eng.start(c, attach=True, monitor=monitor, prepared=True)
            sock = attach.connect(eng.cdir(c.id))
            try:
                code = self.relay(sock)
            finally:
                sock.close()
            if code is None:
                eng.wait_exit(eng.containers.load(c.id), None)
                code = eng.containers.load(c.id).state.exit_code
            if code != 0:
                raise BuildError(f"The command '{created_by}' returned a non-zero code: {code}")
            upper = os.path.join(eng.cdir(c.id), "upper")
            layer = add_layer_from_dir(self.store, upper, runtime_stubs(upper))
            self.say(f"Removing intermediate container {c.short_id}")
            return layer[0] if layer else None
        finally:
            if c is not None:
                eng.remove(eng.containers.load(c.id), force=True, volumes=True)
            if not rec.repo_tags and (stage.base is None or rec.id != stage.base.id):
                self.store.delete_image(rec.id)

    def relay(self, sock) -> int | None:
        """Start the step's container, attached, and show its output until it exits: its
        exit code (None if its monitor went first). The CLI's way: on our own stdout and
        stderr, or nowhere with -q. (The API service overrides this: it is threaded, and
        its output goes into the build's stream.)"""
        from . import attach

        saved = None
        if self.opts.quiet:  # -q: the steps' output goes nowhere
            saved = (os.dup(1), os.dup(2))
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            os.close(null)
        try:
            return attach.session(sock, tty=False, stdin=False, start=True)
        finally:
            if saved:
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                os.close(saved[0])
                os.close(saved[1])

    # COPY and ADD
    def do_copy(self, stage: Stage, instr) -> None:
        self.copy(stage, instr, add=False)

    def do_add(self, stage: Stage, instr) -> None:
        self.copy(stage, instr, add=True)

    def copy(self, stage: Stage, instr, add: bool) -> None:
        from ..image.dockerfile.dockerignore import Matcher  # lazy: only COPY and ADD

        srcs, dest = df.split_copy(instr)
        srcs = [self.expand(stage, s) for s in srcs]
        dest = self.expand(stage, dest)
        flags = instr.flags
        known = {"from", "chown", "chmod", "link"} | ({"checksum"} if add else set())
        for k in flags:
            if k not in known:
                raise BuildError(f"{self.fname}:{instr.line}: {instr.cmd} --{k}: unknown flag")
        src_from = flags.get("from")
        if add and src_from:
            raise BuildError(f"{self.fname}:{instr.line}: ADD --from is not supported: use COPY --from")
        chown = self.expand(stage, flags["chown"]) if flags.get("chown") else None
        chmod = flags.get("chmod")
        mode = None
        if chmod:
            try:
                mode = int(chmod, 8)
            except ValueError:
                raise BuildError(f"{self.fname}:{instr.line}: --chmod={chmod}: not an octal "
                                 "mode") from None
        if not dest.startswith("/"):
            dest = os.path.join(stage.cfg.get("WorkingDir") or "/", dest) + (
                "/" if dest.endswith("/") or dest in (".", "./") else "")
        urls = [s for s in srcs if add and s.startswith(("http://", "https://"))]
        source_root, cleanup = self.copy_source(stage, src_from, instr)
        try:
            matcher = self.ignore if src_from is None else Matcher([])
            files = self.expand_sources(source_root, [s for s in srcs if s not in urls], matcher,
                                        instr, from_context=src_from is None)
            downloads = [self.download(u, instr) for u in urls]
            want = flags.get("checksum")
            if want and (len(downloads) != 1 or files):
                raise BuildError(f"{self.fname}:{instr.line}: ADD --checksum needs exactly one "
                                 "URL source")
            if want and "sha256:" + downloads[0][1] != want:
                raise BuildError(f"{self.fname}:{instr.line}: ADD {urls[0]}: checksum mismatch: "
                                 f"got sha256:{downloads[0][1]}, --checksum says {want}")
            if (len(files) + len(downloads) > 1 or any(has_glob(s) for s in srcs)) and \
                    not dest.endswith("/"):
                if len(files) + len(downloads) > 1:
                    raise BuildError(f"{self.fname}:{instr.line}: When using {instr.cmd} with more "
                                     "than one source file, the destination must be a directory "
                                     "and end with a /")
            digest = checksum(source_root, files, matcher) + "".join(d[1] for d in downloads)
            kind = "dir" if len(files) == 1 and os.path.isdir(os.path.join(source_root, files[0][0])) \
                else "file"
            what = f"{kind}:{hashlib.sha256(digest.encode()).hexdigest()}"
            created_by = f"/bin/sh -c #(nop) {instr.cmd} {what} in {dest} "
            key = " ".join([instr.cmd, f"chown={chown}", f"chmod={chmod}", what, dest,
                            f"from={src_from}"])

            def do():
                def place(root: str) -> None:
                    uid = gid = 0
                    if chown:
                        from .users import resolve  # lazy: only COPY --chown

                        u = resolve(root, chown)
                        uid, gid = u.uid, u.gid
                    for rel, top in files:
                        # --from: the source is another rootfs, read by fds inside it
                        copy_into(os.path.join(source_root, rel), top, root, dest, uid, gid,
                                  mode, extract=add, single=len(files) + len(downloads) == 1,
                                  matcher=matcher, src_rel=rel,
                                  src_root=source_root if src_from is not None else None)
                    for path, _, name in downloads:
                        copy_into(path, name, root, dest, uid, gid, mode, extract=False,
                                  single=len(files) + len(downloads) == 1, matcher=Matcher([]),
                                  src_rel=name)
                return self.filesystem_step(stage, place)
            self.commit_step(stage, created_by, key, do)
        finally:
            cleanup()

    def copy_source(self, stage: Stage, src_from, instr):
        """Where COPY's sources are: the context, another stage's rootfs or an image's (both
        mounted read-only for the step)."""
        if src_from is None:
            return self.context, lambda: None
        src_from = self.expand(stage, src_from)
        config = None
        for s in self.stages:
            if s.name == src_from.lower() or str(s.index) == src_from:
                config = s.config
        if config is None:
            if src_from.isdigit():
                raise BuildError(f"{self.fname}:{instr.line}: COPY --from={src_from}: no stage "
                                 "with that index before this one")
            from ..image.assemble import image_config  # lazy: see build()

            config = image_config(self.store, self.resolve_image(src_from, instr))
        return self.mount_readonly(config["rootfs"]["diff_ids"])

    def mount_readonly(self, diff_ids: list[str]):
        """The rootfs of these layers, mounted read-only in the store's tmp (overlay without an
        upper directory is read-only by construction)."""
        from ..image.overlay import mount_in
        from ..kernel import libc

        # flock()ed: a Store opened meanwhile (another command, an API request) clears tmp/
        where, held = self.store.private_dir("build-from-")
        names = [self.store.layer_name(d) for d in diff_ids]
        if not names:  # scratch: nothing

            def drop() -> None:
                shutil.rmtree(where, ignore_errors=True)
                os.close(held)
            return where, drop
        if len(names) == 1:
            lower_opts = "lowerdir=" + names[0] + ":" + names[0]  # overlay wants two lowers
        else:
            lower_opts = "lowerdir=" + ":".join(reversed(names))
        try:
            mount_in(self.store.layers_dir, where, lower_opts, libc.MS_RDONLY,
                     "COPY --from: the source stage's files, read-only")
        except BaseException:
            os.rmdir(where)
            os.close(held)
            raise

        def cleanup() -> None:
            libc.umount2(where, libc.MNT_DETACH, "COPY --from is done with it")
            os.rmdir(where)
            os.close(held)
        return where, cleanup

    def expand_sources(self, root: str, srcs: list[str], matcher, instr, from_context: bool):
        """Sources -> [(relative path, name to use at the destination)], Docker's rules: globs
        match context paths, a source may not leave the context, and nothing excluded by
        .dockerignore is seen. A path is looked up with openat2 RESOLVE_IN_ROOT at the context
        (or source stage): its symlinks are followed inside it, never out (CVE-2018-15664)."""
        from ..kernel import resolve

        out: list[tuple[str, str]] = []
        for s in srcs:
            clean = os.path.normpath("/" + s).lstrip("/")
            if has_glob(s):
                found = sorted(p for p in all_paths(root, matcher) if glob_match(clean, p))
                if not found:
                    raise BuildError(f"{self.fname}:{instr.line}: {instr.cmd} failed: no source "
                                     f"files were specified by {s!r}")
                out += [(p, os.path.basename(p)) for p in found]
                continue
            rel, found = "", True
            if clean:
                try:
                    fd = resolve.open_in(root, clean, os.O_PATH)
                except OSError:  # missing, dangling, looping, or no directory on the way
                    rel, found = clean, False
                else:
                    try:  # where the kernel found it, as a path relative to the root
                        rel = os.path.relpath(resolve.where(fd), os.path.realpath(root))
                    finally:
                        os.close(fd)
                    rel = "" if rel == "." else rel
            if not found or rel == ".." or rel.startswith("../") or (rel and matcher.excluded(rel)):
                where = "build context" if from_context else "source stage"
                raise BuildError(f"{self.fname}:{instr.line}: {instr.cmd} failed: file not "
                                 f"found in {where} or excluded by .dockerignore: stat {s}: "
                                 "file does not exist")
            out.append((rel, os.path.basename(rel) if rel else ""))
        return out

    def download(self, url: str, instr) -> tuple[str, str, str]:
        """ADD URL: fetched into the store's tmp; (path, checksum, file name)."""
        import tempfile
        import urllib.request

        name = os.path.basename(url.split("?", 1)[0].rstrip("/")) or "index.html"
        fd, path = tempfile.mkstemp(prefix="build-add-", dir=self.store.tmp_dir)
        try:
            with urllib.request.urlopen(url, timeout=30) as r, os.fdopen(fd, "wb") as f:
                shutil.copyfileobj(r, f)
        except (OSError, ValueError) as e:
            os.unlink(path)
            raise BuildError(f"{self.fname}:{instr.line}: ADD {url}: cannot download it: "
                             f"{getattr(e, 'reason', e)} (this host may be offline: put the file "
                             "in the context and COPY it)") from None
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        os.chmod(path, 0o600)  # Docker: downloaded files get 0600
        return path, digest, name

    def filesystem_step(self, stage: Stage, change) -> str | None:
        """Mount the stage's rootfs on overlay with a fresh upper directory, let `change(root)`
        work in it as root, and turn what it changed into a layer (None if nothing)."""
        from ..image.assemble import add_layer_from_dir
        from ..image.overlay import mount_in
        from ..kernel import libc

        # flock()ed, as build-from- above: nobody's clean_tmp() may take it mid-step
        work, held = self.store.private_dir("build-step-")
        try:
            upper, ovl, merged = (os.path.join(work, n) for n in ("upper", "work", "merged"))
            empty = os.path.join(work, "empty")
            for d in (upper, ovl, merged, empty):
                os.mkdir(d, 0o755)
            names = [self.store.layer_name(d) for d in stage.config["rootfs"]["diff_ids"]]
            lowers = ":".join(reversed(names)) if names else empty
            mount_in(self.store.layers_dir, merged,
                     f"lowerdir={lowers},upperdir={upper},workdir={ovl}", 0,
                     "the stage so far, with a fresh writable layer for this step")
            try:
                change(merged)
            finally:
                libc.umount2(merged, libc.MNT_DETACH, "the step's files are in upper now")
            layer = add_layer_from_dir(self.store, upper)
            return layer[0] if layer else None
        finally:
            shutil.rmtree(work, ignore_errors=True)
            os.close(held)


# --- helpers ----------------------------------------------------------------------------------


def short(digest: str) -> str:
    return digest.partition(":")[2][:12] if ":" in digest else digest[:12]


def go_list(items) -> str:
    """How Docker's history prints a []string: ["a" "b"]."""
    if items is None:
        return "[]"
    return "[" + " ".join(json.dumps(x) for x in items) + "]"
