"""Man pages generated from the command definitions (minirun/cli/manpage.py, scripts/gen-man):
one for every command and group, in groff that man-db renders without a warning."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import click
import pytest

from minirun.cli import main
from minirun.cli.manpage import escape, pages

REPO = Path(__file__).resolve().parents[2]


def every_command(group: click.Group, path: list[str]) -> list[str]:
    ctx = click.Context(group)
    out = ["-".join(path)]
    for name in group.list_commands(ctx):
        sub = group.get_command(ctx, name)
        if isinstance(sub, click.Group):
            out += every_command(sub, [*path, name])
        elif not sub.hidden:
            out.append("-".join([*path, name]))
    return out


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("man") / "man1"
    subprocess.run([str(REPO / "scripts" / "gen-man"), str(out)], check=True, capture_output=True)
    return out


def test_every_command_has_a_page(generated):
    want = {f"{name}.1" for name in every_command(main, ["minirun"])}
    assert {"minirun.1", "minirun-run.1", "minirun-network-ls.1", "minirun-completion.1",
            "minirun-system-boot.1", "minirun-compose-up.1"} <= want
    assert {p.name for p in generated.iterdir()} == want


def test_page_sections():
    text = pages(main)["minirun-run.1"]
    assert text.startswith('.TH "MINIRUN-RUN" 1 ')
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SEE ALSO"):
        assert f"\n.SH {section}\n" in text
    assert "\nminirun\\-run \\- " in text
    assert "\\fB\\-d\\fR, \\fB\\-\\-detach\\fR" in text
    assert "\\fBminirun\\fR(1)" in text  # SEE ALSO the parent
    top = pages(main)["minirun.1"]
    assert ".SH COMMANDS" in top and "\\fBminirun\\-run\\fR(1)" in top


def test_escape():
    assert escape(".dot\n'quote\na-b\\c") == "\\&.dot\n\\&'quote\na\\-b\\ec"


def test_man_renders_every_page(generated):
    if not shutil.which("man"):
        pytest.skip("man-db not installed (apt-get install man-db; scripts/setup does it)")
    for page in sorted(generated.iterdir()):
        r = subprocess.run(["man", "-l", "--warnings", str(page)], capture_output=True, text=True,
                           env={"MANWIDTH": "100", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                           timeout=30)
        assert r.returncode == 0 and not r.stderr.strip(), (page.name, r.stderr)
        assert page.stem.upper() in r.stdout and "NAME" in r.stdout
    r = subprocess.run(["man", "-l", str(generated / "minirun-run.1")], capture_output=True,
                       text=True, env={"MANWIDTH": "100", "PATH": "/usr/bin:/bin"}, timeout=30)
    assert "--detach" in r.stdout.replace("‐", "-")
