"""minirun-oci's command line: runc-compatible flag parsing, signals, errors as one line."""

from __future__ import annotations

import json
import os
import signal

import pytest

from oneline import one_line_error
from minirun import __version__
from minirun.oci import cli, spec

EXEC = cli.COMMANDS["exec"]


def test_flag_with_separate_value():
    assert cli.parse_flags(["--root", "/r", "state", "x"], cli.GLOBAL) == ({"root": "/r"}, ["state", "x"])


def test_flag_with_equals_value():
    assert cli.parse_flags(["--root=/r=x"], cli.GLOBAL) == ({"root": "/r=x"}, [])


def test_single_dash_long_flag():
    assert cli.parse_flags(["-root", "/r", "-debug"], cli.GLOBAL) == ({"root": "/r", "debug": True}, [])


def test_short_aliases_map_to_canonical_names():
    assert cli.parse_flags(["-d", "-t", "-u", "1:2"], EXEC)[0] == {"detach": True, "tty": True,
                                                                     "user": "1:2"}
    assert cli.parse_flags(["-b", "/bundle"], cli.COMMANDS["create"])[0] == {"bundle": "/bundle"}


def test_repeatable_flags_collect_values():
    opts, _ = cli.parse_flags(["--env", "A=1", "-e", "B=2", "--env=C=3", "--cap", "CAP_KILL"], EXEC)
    assert opts == {"env": ["A=1", "B=2", "C=3"], "cap": ["CAP_KILL"]}


def test_boolean_flag_with_explicit_value():
    opts, _ = cli.parse_flags(["--detach=false", "--tty=true"], EXEC)
    assert opts == {"detach": False, "tty": True}


def test_parsing_stops_at_first_positional():
    opts, rest = cli.parse_flags(["--tty", "ctr", "ls", "--env", "-la"], EXEC)
    assert opts == {"tty": True} and rest == ["ctr", "ls", "--env", "-la"]


def test_double_dash_ends_flags():
    assert cli.parse_flags(["--tty", "--", "--env"], EXEC) == ({"tty": True}, ["--env"])


def test_lone_dash_is_positional():
    assert cli.parse_flags(["-", "x"], EXEC) == ({}, ["-", "x"])


def test_flags_after_positionals_when_not_stopping():
    opts, rest = cli.parse_flags(["ctr", "--force"], cli.COMMANDS["delete"], stop_at_positional=False)
    assert opts == {"force": True}


@pytest.mark.parametrize("argv", [["--bogus"], ["--bogus=1"], ["-x"], ["--tty", "--nope", "c"]])
def test_unknown_flag_is_a_usage_error(argv):
    with pytest.raises(cli.UsageError, match="unknown option"):
        cli.parse_flags(argv, EXEC)


def test_missing_value_is_a_usage_error():
    with pytest.raises(cli.UsageError, match="needs a value"):
        cli.parse_flags(["--cwd"], EXEC)


@pytest.mark.parametrize("text, value", [
    ("KILL", signal.SIGKILL), ("SIGKILL", signal.SIGKILL), ("kill", signal.SIGKILL),
    ("sigterm", signal.SIGTERM), ("9", 9), ("15", 15), ("HUP", signal.SIGHUP),
    ("RTMIN", signal.SIGRTMIN), ("RTMIN+1", signal.SIGRTMIN + 1), ("SIGRTMIN+3", signal.SIGRTMIN + 3),
    ("RTMAX-2", signal.SIGRTMAX - 2), ("rtmax", signal.SIGRTMAX),
])
def test_parse_signal(text, value):
    assert cli.parse_signal(text) == value


@pytest.mark.parametrize("text", ["BOGUS", "SIG_DFL", "SIG_IGN", "", "-9", "RTMIN+x", "RTMAX-"])
def test_parse_signal_rejects(text):
    with pytest.raises(cli.UsageError, match="unknown signal"):
        cli.parse_signal(text)


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    out = capsys.readouterr().out
    assert f"minirun-oci version {__version__}" in out and "spec: 1." in out


def test_help(capsys):
    assert cli.main(["--help"]) == 0
    assert "usage: minirun-oci" in capsys.readouterr().out


def test_no_command_prints_usage_and_fails(capsys):
    assert cli.main([]) == 1
    assert "usage:" in capsys.readouterr().out


def test_unknown_command_is_one_line(capsys, tmp_path):
    assert cli.main(["--root", str(tmp_path), "frobnicate"]) == 1
    assert "unknown command 'frobnicate'" in one_line_error(capsys.readouterr().err, "minirun-oci: ")


def test_unknown_global_flag_is_one_line(capsys):
    assert cli.main(["--frob", "state", "x"]) == 1
    assert "unknown option --frob" in one_line_error(capsys.readouterr().err, "minirun-oci: ")


def test_unknown_command_flag_is_one_line(capsys, tmp_path):
    assert cli.main(["--root", str(tmp_path), "delete", "--frob", "x"]) == 1
    assert "unknown option --frob" in one_line_error(capsys.readouterr().err, "minirun-oci: ")


def test_state_of_missing_container(capsys, tmp_path):
    assert cli.main(["--root", str(tmp_path), "state", "nosuch"]) == 1
    assert "container nosuch does not exist" in one_line_error(capsys.readouterr().err, "minirun-oci: ")


def test_missing_container_id(capsys, tmp_path):
    assert cli.main(["--root", str(tmp_path), "start"]) == 1
    assert "missing the container ID" in one_line_error(capsys.readouterr().err, "minirun-oci: ")


def test_invalid_container_id(capsys, tmp_path):
    assert cli.main(["--root", str(tmp_path), "state", "../x"]) == 1
    assert "invalid container ID" in one_line_error(capsys.readouterr().err, "minirun-oci: ")


def test_kill_with_bad_signal_is_one_line(capsys, tmp_path):
    assert cli.main(["--root", str(tmp_path), "kill", "c1", "RTMIN+x"]) == 1
    assert "unknown signal" in one_line_error(capsys.readouterr().err, "minirun-oci: ")


def test_bad_preserve_fds_is_one_line(capsys, tmp_path):
    assert cli.main(["--root", str(tmp_path), "create", "--preserve-fds", "two", "c1"]) == 1
    assert "--preserve-fds two" in one_line_error(capsys.readouterr().err, "minirun-oci: ")


def test_state_of_saved_container_prints_oci_json(capsys, tmp_path):
    from minirun.oci import state as st

    s = st.State(id="c1", pid=2**31 - 1, pid_start=1, bundle="/b", rootfs="/b/rootfs",
                 created="t", root_dir=str(tmp_path))
    os.makedirs(s.dir)
    s.save()
    assert cli.main(["--root", str(tmp_path), "state", "c1"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "stopped"


def test_list_of_empty_root(capsys, tmp_path):
    assert cli.main(["--root", str(tmp_path), "list", "-q"]) == 0
    assert capsys.readouterr().out == ""
    assert cli.main(["--root", str(tmp_path), "list", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_log_file_gets_the_error(capsys, tmp_path, fmt):
    log = tmp_path / "log"
    argv = ["--root", str(tmp_path), "--log", str(log), "--log-format", fmt, "state", "nosuch"]
    assert cli.main(argv) == 1
    capsys.readouterr()
    (line,) = log.read_text().splitlines()
    if fmt == "json":
        entry = json.loads(line)
        assert entry["level"] == "error" and "does not exist" in entry["msg"] and entry["time"]
    else:
        assert "level=error" in line and "does not exist" in line


def test_spec_writes_a_config_that_parses_and_refuses_to_overwrite(capsys, tmp_path):
    assert cli.main(["spec", "--bundle", str(tmp_path)]) == 0
    (tmp_path / "rootfs").mkdir()
    s = spec.load(str(tmp_path))
    assert s.process.args == ["sh"] and s.linux.ns("network") is not None
    before = (tmp_path / "config.json").read_text()
    assert cli.main(["spec", "-b", str(tmp_path)]) == 1
    assert "exists" in one_line_error(capsys.readouterr().err, "minirun-oci: ")
    assert (tmp_path / "config.json").read_text() == before


def test_spec_rootless(tmp_path):
    assert cli.main(["spec", "--rootless", "--bundle", str(tmp_path)]) == 0
    (tmp_path / "rootfs").mkdir()
    s = spec.load(str(tmp_path))
    assert s.linux.ns("user") is not None and s.linux.ns("network") is None


def test_features_is_json(capsys):
    assert cli.main(["features"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ociVersionMin"] == "1.0.0" and "prestart" in out["hooks"]
    assert "mount" in out["linux"]["namespaces"] and "rbind" in out["mountOptions"]
