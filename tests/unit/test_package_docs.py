"""Every package's docstring lists its modules (issue 13: a reader opens __init__.py and finds
what each module of the package owns, one line each). A module added without its line fails
here, naming the package and the module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGES = sorted(p.parent for p in (Path(__file__).resolve().parents[2] / "minirun")
                  .rglob("__init__.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_the_package_docstring_lists_every_module(package: Path):
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
    members = [p.name for p in package.glob("*.py") if p.name != "__init__.py"]
    members += [d.name + "/" for d in package.iterdir() if (d / "__init__.py").exists()]
    missing = sorted(m for m in members if m not in doc)  # as `name.py` or `name/`
    assert not missing, f"{package}/__init__.py: its docstring does not list {missing}"
