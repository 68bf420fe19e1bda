"""The command table (cli/registry.py) and the lazy groups built on it (cli/__init__.py).

`--help` and command-name completion read the table, not the commands, and a command's module
is imported only when it runs. So the table must say what the commands say (their short help,
hidden or not, the module that defines them) and name every command: checked here against the
commands themselves, all imported. And an everyday command must stay lean: `minirun ps`,
`--help` and `version` run through the launcher, with -X importtime telling which of the
command modules they imported.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import click
import pytest

from minirun.cli import Group, load_all, main
from minirun.cli.registry import COMMANDS

LAUNCHER = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "minirun"


def _groups() -> dict[str, click.Group]:
    """Every group with a table, by its table name, after every command module is imported."""
    load_all()
    ctx = click.Context(main)
    out: dict[str, click.Group] = {"main": main}
    for name in COMMANDS["main"]:
        cmd = main.get_command(ctx, name)
        if isinstance(cmd, Group) and cmd.table:
            out[name] = cmd
    return out


def test_every_group_has_its_table() -> None:
    assert set(_groups()) == set(COMMANDS)


@pytest.mark.parametrize("group", list(COMMANDS))
def test_table_names_every_command(group: str) -> None:
    """Nothing registered that the table does not list (--help would not show it), and nothing
    listed that no module registers."""
    assert set(_groups()[group].commands) == set(COMMANDS[group])


@pytest.mark.parametrize("group", list(COMMANDS))
def test_table_matches_the_commands(group: str) -> None:
    """Each entry's module, short help (at the limits --help and completion cut it to) and
    hiddenness are the command's own."""
    real = _groups()[group]
    for name, entry in COMMANDS[group].items():
        cmd = real.commands[name]
        module, text, hidden = entry[0], entry[1], len(entry) > 2
        where = f"{group} {name}: fix cli/registry.py"
        defined_in = (cmd.callback.__module__ if cmd.callback else "") if not isinstance(
            cmd, click.Group) or name not in ("image", "container") else "minirun.cli"
        if name != "compose":
            want = "minirun.cli" if module == "." else f"minirun.cli.{module}"
            assert defined_in == want, where
        assert cmd.hidden == hidden, where
        for limit in (30, 45, 70, 10_000):
            fake = click.Command(None, help=text)
            assert fake.get_short_help_str(limit) == cmd.get_short_help_str(limit), where


def test_help_lists_what_click_would() -> None:
    """The table's --help is click's own (the same rows, the same cut), command by command."""
    groups = _groups()
    for name, group in groups.items():
        ctx = click.Context(group, info_name=name)
        ours = click.HelpFormatter(width=100)
        group.format_commands(ctx, ours)
        clicks = click.HelpFormatter(width=100)
        click.Group.format_commands(group, ctx, clicks)
        assert ours.getvalue() == clicks.getvalue(), name


def _imported(tmp_path: Path, *argv: str) -> set[str]:
    """Every module a launcher run of `minirun ARGV` imports (-X importtime)."""
    python = LAUNCHER.parent / "python3"
    r = subprocess.run(
        [str(python), "-IS", "-X", "importtime", str(LAUNCHER), "--root", str(tmp_path / "root"),
         "--runroot", str(tmp_path / "run"), *argv],
        capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip() for line in r.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def _cli_modules(tmp_path: Path, *argv: str) -> set[str]:
    """The minirun.cli modules a launcher run of `minirun ARGV` imports."""
    return {n for n in _imported(tmp_path, *argv)
            if n == "minirun.cli" or n.startswith("minirun.cli.")}


@pytest.mark.parametrize(("argv", "wanted"), [
    (("ps",), {"listing", "render"}),
    (("ps", "-a"), {"listing", "render"}),
    (("--help",), set()),
    (("version",), {"system"}),
    (("volume", "ls"), {"volumes", "render"}),
])
def test_a_command_imports_only_its_module(tmp_path: Path, argv: tuple[str, ...],
                                           wanted: set[str]) -> None:
    """`minirun ps` imports cli/listing.py (and render.py, which it uses), none of the other
    command modules: each costs start-up (containers.py with pull: ~8 ms)."""
    loaded = _cli_modules(tmp_path, *argv)
    want = {"minirun.cli", "minirun.cli.registry", *(f"minirun.cli.{m}" for m in wanted)}
    assert loaded == want, f"minirun {' '.join(argv)} imports {sorted(loaded - want)}"


# What a listing must not import: the create/start machinery (engine/bundle.py and what it
# brings, health, signal: ~4 ms), the image store's writers (hashlib ~2 ms, shutil ~1.5,
# tempfile ~0.8), network/bridge.py with socket (~2 ms), ipaddress (~1 ms), and for a default
# table the template engine and json (~2 ms: cli/render.table makes it directly).
HEAVY = {"minirun.engine.bundle", "minirun.engine.health", "minirun.network.bridge",
         "minirun.kernel.libc", "hashlib", "shutil", "tempfile", "socket", "signal", "ipaddress",
         "minirun.base.gotemplate", "json"}


@pytest.mark.parametrize(("argv", "allowed"), [
    (("ps", "-a"), set()),
    (("images",), {"json"}),  # (the image records are read with it)
    (("inspect", "c1"), {"json"}),  # (its output)
    (("logs", "c1"), set()),
    (("network", "ls"), set()),
    (("volume", "ls"), set()),
])
def test_a_listing_imports_nothing_heavy(tmp_path: Path, argv: tuple[str, ...],
                                         allowed: set[str]) -> None:
    """`images`, `inspect`, `logs`, `network ls` read records: none of the modules that
    create, start, pull or plug a container (each costs start-up of every such command). The
    container c1 is a record written by hand, as `create` leaves it: inspect and logs find it
    without this test creating one (no image, no bundle)."""
    from minirun.engine.records import Container, Containers

    root = tmp_path / "root"
    (root / "containers" / ("c1" + "0" * 62)).mkdir(parents=True)
    Containers(str(root)).save(Container(id="c1" + "0" * 62, name="c1", image="busybox",
                                         image_id="sha256:" + "0" * 64,
                                         created="2024-01-01T00:00:00Z"))
    if argv[0] == "network":  # a new root's first use makes the default network (hashlib)
        _imported(tmp_path, *argv)
    heavy = (_imported(tmp_path, *argv) & HEAVY) - allowed
    assert not heavy, f"minirun {' '.join(argv)} imports {sorted(heavy)}"
