"""Shell completion (cli/completion.py) through click's protocol, as the shells drive it: the
launcher run with _MINIRUN_COMPLETE=bash_complete|zsh_complete|fish_complete and the words
typed, against a --root whose records the test writes (no root, nothing started)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

MINIRUN = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "minirun")


def _container(root: Path, n: int, name: str, status: str) -> None:
    d = root / "containers" / (f"{n:x}" * 64)[:64]
    d.mkdir(parents=True)
    (d / "container.json").write_text(json.dumps({"id": d.name, "name": name,
                                                  "state": {"status": status}}))


@pytest.fixture
def root(tmp_path) -> Path:
    r = tmp_path / "root"
    _container(r, 1, "web", "running")
    _container(r, 2, "worker", "exited")
    _container(r, 3, "wedged", "paused")
    (r / "image").mkdir()
    (r / "image" / "repositories.json").write_text(json.dumps({
        "docker.io/library/busybox:latest": "sha256:" + "a" * 64,
        "docker.io/me/tool:1": "sha256:" + "b" * 64,
        "127.0.0.1:5000/app:v2": "sha256:" + "c" * 64,
        "docker.io/library/busybox@sha256:" + "d" * 64: "sha256:" + "a" * 64}))
    (r / "networks").mkdir()
    (r / "networks" / "backend.json").write_text("{}")
    (r / "networks" / "backend.ipam.json").write_text("{}")
    for v in ("data", "cache"):
        (r / "volumes" / v).mkdir(parents=True)
        (r / "volumes" / v / "volume.json").write_text("{}")
    return r


def complete(root: Path, line: str, shell: str = "bash", root_flag: bool = False) -> list[str]:
    """The candidates for the last word of `line` (a trailing space: a new, empty word)."""
    words = line.split(" ")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINIRUN_")}
    if root_flag:
        words[1:1] = ["--root", str(root)]
    else:
        env["MINIRUN_ROOT"] = str(root)
    env["_MINIRUN_COMPLETE"] = f"{shell}_complete"
    env["COMP_WORDS"] = " ".join(words)
    env["COMP_CWORD"] = str(len(words) - 1)
    if shell == "fish":  # fish passes the command line up to the cursor and the current word
        env["COMP_WORDS"], env["COMP_CWORD"] = " ".join(words), words[-1]
    r = subprocess.run([MINIRUN], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    if shell == "bash":
        return [ln.split(",", 1)[1] for ln in r.stdout.splitlines() if ln]
    if shell == "zsh":  # type, value, help: three lines per item
        lines = r.stdout.splitlines()
        return [lines[i + 1] for i in range(0, len(lines), 3)]
    return [ln.split(",", 1)[1].split("\t")[0] for ln in r.stdout.splitlines() if ln]


def test_commands_and_flags(root):
    assert complete(root, "minirun sto") == ["stop"]
    assert "completion" in complete(root, "minirun comp")
    assert {"--network", "--net", "--restart"} <= set(complete(root, "minirun run --"))
    assert complete(root, "minirun network co") == ["connect"]


def test_container_names_by_state(root):
    assert complete(root, "minirun logs ") == ["web", "wedged", "worker"]
    assert complete(root, "minirun stop ") == ["web"]  # running ones
    assert complete(root, "minirun start ") == ["worker"]  # stopped ones
    assert complete(root, "minirun unpause ") == ["wedged"]
    assert complete(root, "minirun rm w") == ["web", "wedged", "worker"]
    assert complete(root, "minirun rm web wo") == ["worker"]  # nargs=-1: every word
    assert complete(root, "minirun container exec ") == ["web"]


def test_image_names(root):
    assert complete(root, "minirun run ") == ["127.0.0.1:5000/app:v2", "busybox:latest", "me/tool:1"]
    assert complete(root, "minirun rmi bu") == ["busybox:latest"]
    assert complete(root, "minirun image inspect m") == ["me/tool:1"]
    assert complete(root, "minirun inspect w") == ["web", "wedged", "worker"]  # containers too


def test_network_and_volume_names(root):
    assert complete(root, "minirun network rm ") == ["backend", "bridge", "host", "none"]
    assert complete(root, "minirun network connect b") == ["backend", "bridge"]
    assert complete(root, "minirun run --network ba") == ["backend"]
    assert complete(root, "minirun volume rm ") == ["cache", "data"]
    assert complete(root, "minirun run -v d") == ["data"]
    assert complete(root, "minirun network create ") == []  # a new name: nothing to offer


def test_root_flag_on_the_command_line(root):
    assert complete(root, "minirun stop ", root_flag=True) == ["web"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish(root, shell):
    assert complete(root, "minirun stop ", shell) == ["web"]
    assert "stop" in complete(root, "minirun st", shell)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_script(shell):
    r = subprocess.run([MINIRUN, "completion", shell], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and f"_MINIRUN_COMPLETE={shell}_complete" in r.stdout


def test_unknown_shell_is_one_line():
    r = subprocess.run([MINIRUN, "completion", "tcsh"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 125
    assert r.stderr.strip().splitlines() == [
        "minirun: invalid argument for SHELL: 'tcsh' is not one of 'bash', 'zsh', 'fish' "
        "(see 'minirun completion --help')"]


def test_normal_commands_do_not_load_completion(tmp_path):
    """The name callbacks are attached only when a shell asks: `ps` never imports
    click.shell_completion."""
    code = ("import sys; sys.argv = ['minirun', '--root', %r, '--runroot', %r, 'ps'];"
            "from minirun.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('click.shell_completion' in sys.modules)") % (str(tmp_path / "r"),
                                                               str(tmp_path / "rr"))
    py = str(Path(MINIRUN).parent / "python")
    r = subprocess.run([py, "-c", code], capture_output=True, text=True, timeout=30)
    assert r.stdout.strip().splitlines()[-1] == "False", r.stderr
