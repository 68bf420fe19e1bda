"""The front end's usage errors: one line in Docker's words with where to look ("minirun:
unknown flag: --x (see 'minirun run --help')") and exit 125, never click's usage block and exit 2; --help and a bare `minirun` still exit 0.

Through click's CliRunner with --root under tmp_path (no root, nothing touched), and once
through the installed launcher, which is what a user runs.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from minirun.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def run(tmp_path, cli_runner):
    def invoke(*args: str):
        result = cli_runner.invoke(main, ["--root", str(tmp_path / "root"), "--runroot",
                                          str(tmp_path / "run"), *args], prog_name="minirun")
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    return invoke


def docker_shape(result, message: str, command: str) -> None:
    """Exit 125; on stderr the message after `minirun: `, then where the help is; no stdout."""
    assert result.exit_code == 125, result.output
    assert result.stderr.splitlines() == [f"minirun: {message.rstrip('.')} (see '{command} --help')"]
    assert result.stdout == ""


@pytest.mark.parametrize("args,message,command", [
    (["run", "--no-such-flag", "busybox"], "unknown flag: --no-such-flag", "minirun run"),
    (["run", "-z", "busybox"], "unknown shorthand flag: 'z' in -z", "minirun run"),
    (["--bogus", "ps"], "unknown flag: --bogus", "minirun"),
    (["image", "ls", "--bogus"], "unknown flag: --bogus", "minirun image ls"),
    (["volume", "ls", "--bogus"], "unknown flag: --bogus", "minirun volume ls"),
])
def test_unknown_flag(run, args, message, command):
    docker_shape(run(*args), message, command)


@pytest.mark.parametrize("args,message,command", [
    (["run"], '"minirun run" requires at least 1 argument.', "minirun run"),
    (["rmi"], '"minirun rmi" requires at least 1 argument.', "minirun rmi"),
    (["tag", "busybox"], '"minirun tag" requires exactly 2 arguments.', "minirun tag"),
    (["network", "create"], '"minirun network create" requires exactly 1 argument.',
     "minirun network create"),
])
def test_missing_argument(run, args, message, command):
    docker_shape(run(*args), message, command)


@pytest.mark.parametrize("args,message,command", [
    (["run", "-c", "abc", "busybox"],
     "invalid argument for \"-c, --cpu-shares\" flag: 'abc' is not a valid integer.",
     "minirun run"),
    (["save", "--format", "tar", "busybox"],
     "invalid argument for \"--format\" flag: 'tar' is not one of 'docker-archive', 'oci'.",
     "minirun save"),
    (["run", "--name"], "flag needs an argument: --name", "minirun run"),
    (["ps", "extra"], '"minirun ps" accepts no arguments.', "minirun ps"),
])
def test_bad_flag_value_or_argument(run, args, message, command):
    docker_shape(run(*args), message, command)


@pytest.mark.parametrize("args,message,command", [
    (["no-such-command"], "'no-such-command' is not a minirun command.", "minirun"),
    (["image", "no-such-command"], "'no-such-command' is not a minirun command.",
     "minirun image"),
])
def test_unknown_command(run, args, message, command):
    docker_shape(run(*args), message, command)


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["network", "-h"], [],
                                  ["network"]])
def test_help_and_a_bare_group_exit_0(run, args):
    # Docker prints the help for `docker` and `docker network` alone, and exits 0.
    result = run(*args)
    assert result.exit_code == 0 and result.stdout.startswith("Usage: minirun")
    assert result.stderr == ""


def test_the_launcher_exits_125_in_two_lines(tmp_path):
    # The launcher scripts/setup writes, when these tests run in that venv; else (another
    # venv: scripts/test-lower-bounds) the same main() in a process of this interpreter.
    venv = os.path.join(REPO, ".venv")
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        cmd = [os.path.join(venv, "bin", "minirun")]
    else:
        cmd = [sys.executable, "-c", "import sys; sys.argv[0] = 'minirun'; "
               "from minirun.cli import main; main()"]
    r = subprocess.run([*cmd, "--root", str(tmp_path), "run", "--no-such-flag", "busybox"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 125
    assert r.stderr.splitlines() == ["minirun: unknown flag: --no-such-flag "
                                     "(see 'minirun run --help')"]
