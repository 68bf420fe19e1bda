"""The layers of minirun, checked: imports point down, never up, never sideways, no cycles.

Layers, top down (docs/architecture.md, "How the layers are checked"):

    front ends   cli, compose, api       parse, render, call the engine
    engine       engine                  records, names, bundles, the monitor
    services     image, network, oci     each on its own: none imports another
    kernel       kernel                  system calls, behind kernel/libc.py
    base         base/, errors, trace, fastjson, record, the package itself

Every module under minirun/ is read with `ast` (no import is executed, so this is fast and
needs no root): top-level imports and the ones inside functions, classes, `try` and
`if TYPE_CHECKING:` blocks alike, because a function-level import is still a dependency, just
one no reader sees. A lower layer importing a higher one fails, as does an import between two
packages on the same level (except inside base) and an import cycle between packages.

Imports that break the rule today are listed in KNOWN_VIOLATIONS, each with what will fix it.
The list can only shrink: an entry that no longer occurs fails the test too, so whoever fixes
one removes it here in the same commit.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "minirun"

# Top-level unit of minirun (a package, or a module beside errors.py) -> its layer.
# A new top-level package or module must be added here (the test says so); "compose", "api"
# and "base" are registered ahead of time (issue 13 and the two after it).
FRONT, ENGINE, SERVICES, KERNEL, BASE = "front end", "engine", "services", "kernel", "base"
LAYERS: dict[str, str] = {
    "cli": FRONT, "compose": FRONT, "api": FRONT,
    "engine": ENGINE,
    "image": SERVICES, "network": SERVICES, "oci": SERVICES,
    "kernel": KERNEL,
    "base": BASE, "errors": BASE, "trace": BASE, "fastjson": BASE, "record": BASE,
    "__init__": BASE,  # minirun/__init__.py (`from .. import __version__`)
}
RANK: dict[str, int] = {FRONT: 4, ENGINE: 3, SERVICES: 2, KERNEL: 1, BASE: 0}

# Same-level imports that are allowed, as (importer, imported) units. None today, on purpose:
#  - image may not import oci: an image config is turned into an OCI spec by the engine
#    (engine/bundle.py), so the image code never needs the runtime's types;
#  - oci may not import image or network: the runtime gets a bundle and knows nothing about
#    images, names or networks (and every minirun-oci call must stay small);
#  - network may not import image or oci: it wires up a PID's network namespace, whatever runs
#    in it; records and locks it shares with the engine belong in base;
#  - the front ends do not import each other: each is a thin layer over the engine. Two
#    exceptions, both the `minirun` command starting another front end: it mounts compose's
#    own click group as `minirun compose` (cli/__init__.py, on first use), handing it
#    minirun's Group and Command classes, and `minirun system service` starts api/server.py.
# The base modules may import each other freely (they are one layer split into small files).
SIBLINGS_ALLOWED: set[tuple[str, str]] = {("cli", "compose"), ("cli", "api")}

# (importing module, imported module) pairs that break the layering today. Keyed by module
# rather than line, so that edits elsewhere in the file do not invalidate an entry.
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()
# None left: network/networks.py takes its locks, writes, names and times from minirun.base,
# kernel/rootfs.py its Device from kernel/devices.py (issue 13, "A base layer").


@dataclass(frozen=True)
class Import:
    """One import statement's edge: where it is, and the minirun module it reaches."""

    path: Path  # the importing file
    line: int
    source: str  # dotted name of the importing module
    target: str  # dotted name of the imported minirun module (or the package, for a name)

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def module_name(path: Path) -> str:
    """minirun/oci/spec.py -> minirun.oci.spec; minirun/oci/__init__.py -> minirun.oci."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    """Every module under minirun/, by dotted name."""
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))
            if "__pycache__" not in p.parts}


def unit_of(module: str) -> str:
    """The top-level unit a dotted minirun module belongs to: minirun.oci.spec -> oci."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path, modules: dict[str, Path], text: str | None = None) -> list[Import]:
    """Every import of a minirun module in one file, wherever it sits in the file.

    `text` stands in for the file's contents (the self-test parses made-up code)."""
    source = module_name(path)
    # The package a relative import starts from: the module's own for __init__.py.
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    text = path.read_text() if text is None else text
    out: list[Import] = []
    for node in ast.walk(ast.parse(text, str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - (node.level - 1)])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            # `from . import spec` imports the module minirun.oci.spec; `from .. import
            # __version__` imports a name from the package minirun.
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if sub in modules else base)
        for t in dict.fromkeys(targets):  # `from .x import a, b`: one edge, not two
            if t == "minirun" or t.startswith("minirun."):
                out.append(Import(path, node.lineno, source, t))
    return sorted(out, key=lambda i: (i.line, i.target))  # ast.walk is breadth-first


def all_imports() -> list[Import]:
    """Every minirun import in minirun/, in file order then line order."""
    modules = all_modules()
    return [imp for p in modules.values() for imp in imports_of(p, modules)]


def violation(imp: Import) -> str | None:
    """The one-line complaint about an import, or None if the layering allows it."""
    src, dst = unit_of(imp.source), unit_of(imp.target)
    if src == dst:
        return None  # within one package: free (no rule on cycles inside a package)
    s_layer, d_layer = LAYERS[src], LAYERS[dst]
    if RANK[d_layer] > RANK[s_layer]:
        return f"{imp.where} imports {imp.target} ({dst} is above {src})"
    if RANK[d_layer] == RANK[s_layer] and s_layer != BASE and (src, dst) not in SIBLINGS_ALLOWED:
        return (f"{imp.where} imports {imp.target} ({src} and {dst} are on the same level, "
                f"{s_layer}: one may not import the other)")
    return None


def test_every_unit_has_a_layer() -> None:
    """A new top-level package or module must be placed in a layer before it is used."""
    units = {unit_of(m) for m in all_modules()}
    unknown = sorted(units - set(LAYERS))
    assert not unknown, "\n".join(
        f"minirun/{u} has no layer: add \"{u}\" to LAYERS in tests/unit/test_layering.py "
        f"(one of: {FRONT}, {ENGINE}, {SERVICES}, {KERNEL}, {BASE})" for u in unknown)


def test_imports_point_down() -> None:
    """No import from a lower layer to a higher one, or between siblings, beyond the known."""
    imps = all_imports()
    units = set(LAYERS)
    # An unknown unit is reported by test_every_unit_has_a_layer; skip it here.
    imps = [i for i in imps if unit_of(i.source) in units and unit_of(i.target) in units]
    new = [msg for i in imps if (msg := violation(i)) and (i.source, i.target)
           not in KNOWN_VIOLATIONS]
    assert not new, "imports against the layering:\n" + "\n".join(new)


# What a front end may import from below: it parses and renders, and asks the engine API for
# everything else (DESIGN.md: "they never call the kernel directly"). Module prefixes, each
# with why it is not the engine API.
FRONT_END_MAY_IMPORT: dict[str, str] = {
    "minirun.engine.api": "the engine API itself",
    "minirun.engine.lifecycle": "the Engine handle the API functions take, RunOptions and the "
                                "monitor started ahead of time (run's start-up)",
    "minirun.engine.health": "parsing the --health-* flags into the HEALTHCHECK config",
    "minirun.engine": "the engine package (its docstring; `from ..engine import health`)",
    "minirun.image.store": "the image Store handle the image API functions take",
    "minirun.image.auth": "where credentials live (--config), a path to hand to the API",
    "minirun.image.reference": "Docker's reference grammar, to parse and show a name",
    "minirun.base": "the base layer", "minirun.errors": "the typed errors it maps",
    "minirun.trace": "--trace", "minirun": "__version__",
}


def test_front_ends_only_parse_render_and_call_the_engine_api() -> None:
    """A front end's imports from below are the engine API and the few handles it takes."""
    bad = []
    for imp in all_imports():
        if LAYERS.get(unit_of(imp.source)) != FRONT or LAYERS.get(unit_of(imp.target)) == FRONT:
            continue
        if not any(imp.target == p or imp.target.startswith(p + ".")
                   for p in FRONT_END_MAY_IMPORT if p != "minirun") and imp.target != "minirun":
            bad.append(f"{imp.where} imports {imp.target}: a front end asks the engine API "
                       "(minirun/engine/api/) instead, or add it to FRONT_END_MAY_IMPORT with why")
    assert not bad, "\n".join(bad)


def test_known_violations_still_occur() -> None:
    """KNOWN_VIOLATIONS only shrinks: a fixed violation must be taken off the list."""
    seen = {(i.source, i.target) for i in all_imports()}
    gone = sorted(KNOWN_VIOLATIONS - seen)
    assert not gone, "\n".join(
        f"{s} no longer imports {t}: remove it from KNOWN_VIOLATIONS in "
        "tests/unit/test_layering.py" for s, t in gone)


def test_no_cycle_between_packages() -> None:
    """The package graph (base collapsed into one node) is acyclic, known violations aside.

    With a strict order of layers a cycle needs an upward or sideways edge, which the test
    above reports already; this one names the whole loop, and still holds if someone adds a
    pair to SIBLINGS_ALLOWED in both directions."""
    def node(module: str) -> str:
        u = unit_of(module)
        return BASE if LAYERS.get(u) == BASE else u

    edges: dict[str, dict[str, Import]] = defaultdict(dict)
    for i in all_imports():
        a, b = node(i.source), node(i.target)
        if a != b and (i.source, i.target) not in KNOWN_VIOLATIONS:
            edges[a].setdefault(b, i)  # one example import per edge, for the message
    cycles: list[str] = []
    done: set[str] = set()

    def visit(n: str, path: list[str]) -> None:
        # Depth-first search; a node on the current path reached again closes a cycle.
        if n in path:
            loop = path[path.index(n):] + [n]
            steps = [edges[a][b].where for a, b in zip(loop, loop[1:])]
            cycles.append(" -> ".join(loop) + f"  ({', '.join(steps)})")
            return
        if n in done:
            return
        for m in sorted(edges[n]):
            visit(m, path + [n])
        done.add(n)

    for n in sorted(list(edges)):
        visit(n, [])
    assert not cycles, "import cycles between packages:\n" + "\n".join(cycles)


def test_the_checker_resolves_every_form_of_import() -> None:
    """Relative and absolute, top level and nested: each reaches the right module and line."""
    code = (
        "from __future__ import annotations\n"                # 1: not minirun
        "import os\n"                                          # 2: not minirun
        "from .. import __version__, trace\n"                  # 3: the package; a module
        "from . import spec\n"                                  # 4: a sibling module
        "from .state import load\n"                             # 5: a name from a module
        "TYPE_CHECKING = False\n"
        "if TYPE_CHECKING:\n"
        "    from ..engine import records\n"                    # 8: hidden, still counted
        "def f():\n"
        "    import minirun.kernel.cgroups.v2 as v2\n"          # 10: absolute, in a function
        "    from ...minirun import errors\n"                   # 11: (outside: not minirun)
        "class C:\n"
        "    def g(self):\n"
        "        try:\n"
        "            from ..kernel.cgroups import v1, Cgroup\n"  # 15: a module, a name
        "        except ImportError:\n"
        "            pass\n")
    got = [(i.line, i.target) for i in
           imports_of(PACKAGE / "oci" / "made_up.py", all_modules(), code)]
    assert got == [(3, "minirun"), (3, "minirun.trace"), (4, "minirun.oci.spec"),
                   (5, "minirun.oci.state"), (8, "minirun.engine.records"),
                   (10, "minirun.kernel.cgroups.v2"), (15, "minirun.kernel.cgroups"),
                   (15, "minirun.kernel.cgroups.v1")], got
    # An __init__.py's relative imports start from its own package.
    got = [i.target for i in imports_of(PACKAGE / "oci" / "__init__.py", all_modules(),
                                        "from . import spec\nfrom .. import errors\n")]
    assert got == ["minirun.oci.spec", "minirun.errors"], got
    # And the messages read as the test promises.
    imp = Import(PACKAGE / "kernel" / "rootfs.py", 123, "minirun.kernel.rootfs",
                 "minirun.oci.spec")
    assert violation(imp) == ("minirun/kernel/rootfs.py:123 imports minirun.oci.spec "
                              "(oci is above kernel)")
    imp = Import(PACKAGE / "image" / "store.py", 7, "minirun.image.store", "minirun.oci.spec")
    assert violation(imp) == ("minirun/image/store.py:7 imports minirun.oci.spec (image and "
                              "oci are on the same level, services: one may not import the "
                              "other)")
    imp = Import(PACKAGE / "trace.py", 7, "minirun.trace", "minirun.errors")
    assert violation(imp) is None  # base modules may import each other


# -- function-level imports say why ------------------------------------------------------------
# Issue 13: an import goes at the top of its module, unless the start-up budget (or an optional
# dependency, or a cycle) needs it inside a function; then a short comment says so, e.g.
#     from ..kernel import cgroups  # lazy: only create and the cgroup verbs (~0.7 ms)


def uncommented_imports(path: Path, text: str | None = None) -> list[int]:
    """The lines of the function-level imports in one file that no comment explains.

    An import is explained by a `#` comment on one of its own lines, or in the run of import,
    comment and blank lines directly above it (one comment may cover a group of imports), or on
    the line that closes that run (the `if` or statement the import sits under, when its own
    comment says why), or by a docstring closing right above the run (a function whose
    docstring says why). `text` stands in for the file's contents (the self-test)."""
    text = path.read_text() if text is None else text
    lines = text.splitlines()
    tree = ast.parse(text, str(path))
    import_lines: set[int] = set()  # every line of every import statement (continuations too)
    docstring_ends: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            import_lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
        elif isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                docstring_ends.add(first.end_lineno or first.lineno)
    comments = {tok.start[0] for tok in tokenize.generate_tokens(io.StringIO(text).readline)
                if tok.type == tokenize.COMMENT}  # not a `#` inside a string

    def explained(node: ast.stmt) -> bool:
        if comments & set(range(node.lineno, (node.end_lineno or node.lineno) + 1)):
            return True
        n = node.lineno - 1
        while n >= 1 and (n in import_lines or not lines[n - 1].strip()
                          or lines[n - 1].lstrip().startswith("#")):
            if n in comments:
                return True
            n -= 1
        return n in comments or n in docstring_ends

    found: list[int] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if in_function and isinstance(child, (ast.Import, ast.ImportFrom)) \
                    and not explained(child):
                found.append(child.lineno)
            visit(child, in_function or isinstance(child, (ast.FunctionDef,
                                                           ast.AsyncFunctionDef)))

    visit(tree, False)
    return sorted(found)


def test_function_level_imports_say_why() -> None:
    """Every import inside a function has a comment saying why it is not at the top."""
    bad = [f"{p.relative_to(REPO)}:{line}" for p in all_modules().values()
           for line in uncommented_imports(p)]
    assert not bad, (
        "function-level imports without a comment (issue 13): move each to the top of its "
        "module, or, if the start-up budget, an optional dependency or a cycle needs it "
        "there, say so in a short comment on the line or just above it (`# lazy: ...`):\n"
        + "\n".join(bad))


def test_the_import_comment_rule_reads_as_documented() -> None:
    """Which function-level imports count as explained, on made-up code."""
    code = (
        "import os\n"                                        # 1: top level: no rule
        "def a():\n"
        "    import json\n"                                   # 3: no comment: reported
        "def b():\n"
        "    import json  # lazy: ~1 ms\n"                    # 5: on its line
        "def c():\n"
        "    # lazy: only c needs them\n"
        "    import json\n"                                   # 8: comment above
        "\n"
        "    from . import (spec,\n"
        "                   state)\n"                         # 10-11: the run covers it
        "def d():\n"
        "    from . import (spec,\n"
        "                   state)  # lazy: on its last line\n"  # 13
        "def e():\n"
        "    \"\"\"Imports json lazily: only e needs it.\"\"\"\n"
        "    import json\n"                                   # 17: docstring right above
        "def f(x):\n"
        "    if x:  # only with x: json, lazily\n"
        "        import json\n"                               # 20: the `if` says why
        "    y = 1\n"
        "    import json\n"                                   # 22: reported
        "    s = '''\n"
        "    # not a comment'''\n"
        "    import json\n"                                   # 25: reported
        "class C:\n"
        "    import json\n"                                   # 27: class level: no rule
        "    def g(self):\n"
        "        try:\n"
        "            import yaml\n"                           # 30: reported
        "        except ImportError:\n"
        "            pass\n")
    assert uncommented_imports(PACKAGE / "made_up.py", code) == [3, 22, 25, 30]
