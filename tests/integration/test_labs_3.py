"""Lab 09 (docs/labs/09-break-it.md): the page cannot rot when the code moves, and its check
tells done from not done.

The page is parsed, not run (every step edits code in a copy): each "Line to disable:
`FILE:FUNCTION`" must name a file and function (or Class.method) that exist, and the python
block under it must be a line of that function, verbatim; the "Disabled:" form must be the
same line commented out (or `pass  # ...`) and still compile. Every test id the page names
must exist. scripts/labs/lab09.py's table must say what the page says. Then the check: it fails
without answers, fails on a wrong answer, passes with SOLUTION, and cleanup leaves nothing.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

from labs import lab09  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="lab 9 is done as root: its check reads "
                                "the checkout and /tmp as an attendee's root shell would")

PAGE = REPO / "docs" / "labs" / "09-break-it.md"
BREAK = re.compile(
    r"Line to disable: `(?P<file>[^`:]+):(?P<func>[\w.]+)`\n\n```python\n(?P<line>[^\n]*)\n```\n\n"
    r"Disabled:\n\n```python\n(?P<off>[^\n]*)\n```.*?Caught by: `(?P<test>[^`]+)`.*?"
    r"Answer key: `(?P<key>\w+)`", re.S)
TEST_ID = re.compile(r"tests/[\w/]+\.py::\w+")


def breaks() -> list[dict]:
    found = [m.groupdict() for m in BREAK.finditer(PAGE.read_text())]
    assert len(found) == 5, f"{PAGE}: expected 5 breaks, parsed {[b['key'] for b in found]}"
    return found


def function_node(tree: ast.AST, dotted: str):
    """The def named `f` or `Class.method` at module level, or None."""
    scope = tree.body
    node = None
    for part in dotted.split("."):
        node = next((n for n in scope if isinstance(n, (ast.FunctionDef, ast.ClassDef))
                     and n.name == part), None)
        if node is None:
            return None
        scope = node.body
    return node


@pytest.mark.parametrize("b", breaks(), ids=lambda b: b["key"])
def test_each_line_to_disable_is_in_the_named_function(b):
    path = REPO / b["file"]
    assert path.is_file(), f"{PAGE.name}: {b['file']} does not exist"
    src = path.read_text()
    fn = function_node(ast.parse(src), b["func"])
    assert fn is not None, f"{PAGE.name}: {b['file']} has no function {b['func']}"
    body = src.splitlines()[fn.lineno - 1:fn.end_lineno]
    assert b["line"] in body, (f"{PAGE.name}: the line to disable for {b['key']} is not in "
                               f"{b['file']}:{b['func']} (moved?): {b['line']!r}")
    # The disabled form: the same line, commented out, and the file still compiles with it.
    indent = b["line"][:len(b["line"]) - len(b["line"].lstrip())]
    code = b["line"].strip()
    assert b["off"] in (f"{indent}# {code}", f"{indent}pass  # {code}"), b["off"]
    lines = src.splitlines()
    lines[lines.index(b["line"])] = b["off"]
    compile("\n".join(lines) + "\n", str(path), "exec")


def test_every_test_id_the_page_names_exists():
    ids = sorted(set(TEST_ID.findall(PAGE.read_text())))
    assert len(ids) >= 5
    for tid in ids:
        rel, name = tid.split("::")
        path = REPO / rel
        assert path.is_file(), f"{PAGE.name} names {tid}: no file {rel}"
        assert re.search(rf"^def {name}\(", path.read_text(), re.M), \
            f"{PAGE.name} names {tid}: {rel} has no test {name}"


def test_the_check_knows_what_the_page_says():
    for b in breaks():
        rel, line, caught_by = lab09.BREAKS[b["key"]]
        assert (rel, line) == (b["file"], b["line"]), b["key"]
        assert b["test"] == caught_by[0], b["key"]
    page = PAGE.read_text()
    for _, _, caught_by in lab09.BREAKS.values():
        for tid in caught_by:
            assert tid in page, f"lab09.py accepts {tid}, which the page does not name"
    assert lab09.COPY in page and lab09.ANSWERS in page


def lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / "lab"), *args],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture
def no_answers():
    """The attendee's own answers file is kept aside and put back."""
    keep = Path(lab09.ANSWERS + ".test-keep")
    had = Path(lab09.ANSWERS).exists()
    if had:
        os.replace(lab09.ANSWERS, keep)
    yield
    if Path(lab09.ANSWERS).exists():
        os.unlink(lab09.ANSWERS)
    if had:
        os.replace(keep, lab09.ANSWERS)


@pytest.mark.skipif(os.path.exists(lab09.COPY), reason=f"{lab09.COPY} exists (an attendee's copy)")
def test_the_check_fails_then_passes(no_answers):
    r = lab("check", "9")
    assert r.returncode == 1 and "lab09-answers.txt is missing" in r.stdout + r.stderr, r
    Path(lab09.ANSWERS).write_text(
        lab09.SOLUTION.split("<<'EOF'\n")[1].split("EOF")[0].replace(
            "test_default_mount_points_match_runc", "test_default_mount_table"))
    problems = lab09.check()
    assert len(problems) == 1 and "`pivot_root:" in problems[0], problems
    subprocess.run(["bash", "-e", "-c", lab09.SOLUTION], check=True)
    assert lab09.check() == []
    r = lab("check", "9")
    assert r.returncode == 0 and "ok" in r.stdout, r
    lab09.cleanup()
    assert not Path(lab09.ANSWERS).exists()
