"""run/create's process, logging and sharing flags, without root: the logging driver's checks
(engine/logconfig.py), json-file rotation and reading across the rotated files (engine/logs.py),
--detach-keys (base/detachkeys.py), and the Docker flags minirun refuses in one line
(cli/runflags.py) through click's CliRunner, before anything is made."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from minirun.cli import main
from minirun.cli import runflags
from minirun.base import detachkeys
from minirun.engine import logconfig, logs


# --- logging driver ----------------------------------------------------------------------------


def test_log_config_is_dockers_shape_and_defaults_to_json_file():
    assert logconfig.parse("", []) == {"Type": "json-file", "Config": {}}
    assert logconfig.parse("json-file", ["max-size=100k", "max-file=3"]) == {
        "Type": "json-file", "Config": {"max-size": "100k", "max-file": "3"}}
    assert logconfig.parse("none", []) == {"Type": "none", "Config": {}}
    assert logconfig.parse("local", {"max-size": "1m"})["Config"] == {"max-size": "1m"}


def test_sizes_are_go_units_decimal_and_local_has_dockers_limits():
    assert logconfig.human_size("100k") == 100_000
    assert logconfig.human_size("1.5m") == 1_500_000
    assert logconfig.human_size("20MB") == 20_000_000
    assert logconfig.limits({"Type": "json-file", "Config": {}}) == (0, 1)  # no limit
    assert logconfig.limits(None) == (0, 1)
    assert logconfig.limits({"Type": "local", "Config": {}}) == (20 * 1024 * 1024, 5)
    assert logconfig.limits({"Type": "none"}) is None


@pytest.mark.parametrize("driver,opts,message", [
    ("syslog", [], "logging driver 'syslog' is not supported by minirun"),
    ("json-file", ["max-file=0"], "max-file cannot be less than 1"),
    ("json-file", ["max-size=0"], "max-size must be a positive number"),
    ("json-file", ["max-size=lots"], "invalid size: 'lots'"),
    ("json-file", ["bogus=1"], "unknown log opt 'bogus' for json-file log driver"),
    ("none", ["max-size=1m"], "unknown log opt 'max-size' for none log driver"),
    ("json-file", ["compress=true"], "compress cannot be true when max-file is less than 2"),
    ("json-file", ["max-size"], "invalid log opt 'max-size': use KEY=VALUE"),
])
def test_bad_log_options_fail_with_dockers_words(driver, opts, message):
    with pytest.raises(logconfig.LogConfigError) as e:
        logconfig.parse(driver, opts)
    assert message in str(e.value)


# --- rotation -----------------------------------------------------------------------------------


def test_writer_rotates_at_max_size_keeping_max_file_files(tmp_path):
    p = str(tmp_path / "c-json.log")
    w = logs.Writer(p, max_size=2000, max_file=3)
    for i in range(500):
        w.write("stdout", f"line {i:04d} {'x' * 30}\n".encode())
    w.close()
    names = sorted(os.listdir(tmp_path))
    assert names == ["c-json.log", "c-json.log.1", "c-json.log.2"]
    for n in names:
        size = os.path.getsize(tmp_path / n)
        assert size <= 2000 + 200  # max-size, passed by one record at most
    texts = [r["log"] for r in logs.read(p)]
    numbers = [int(t.split()[1]) for t in texts]
    assert numbers == list(range(numbers[0], 500))  # the newest lines, in order, none lost
    assert numbers[0] > 0  # the oldest went
    assert [r["log"] for r in logs.read(p, tail=2)] == [texts[-2], texts[-1]]


def test_one_file_is_emptied_in_place_and_no_limit_never_rotates(tmp_path):
    p = str(tmp_path / "one")
    w = logs.Writer(p, max_size=500, max_file=1)
    for i in range(100):
        w.write("stdout", f"{i}\n".encode())
    w.close()
    assert os.listdir(tmp_path) == ["one"] and os.path.getsize(p) <= 600
    q = str(tmp_path / "all")
    w = logs.Writer(q)
    w.write("stdout", b"x\n" * 5000)
    w.close()
    assert len(logs.read(q)) == 5000 and not os.path.exists(q + ".1")


def test_a_follower_goes_on_across_a_rotation(tmp_path):
    p = str(tmp_path / "f")
    w = logs.Writer(p, max_size=300, max_file=4)
    w.write("stdout", b"first\n")
    done = threading.Event()
    got: list[str] = []

    def follow():
        for r in logs.follow(p, 0, lambda: not done.is_set()):
            got.append(r["log"])

    t = threading.Thread(target=follow)
    t.start()
    for i in range(20):
        w.write("stdout", f"n{i} {'y' * 20}\n".encode())
        time.sleep(0.02)
    w.close()
    time.sleep(0.2)
    done.set()
    t.join(5)
    assert got[0] == "first\n"
    assert [g.split()[0] for g in got[1:]] == [f"n{i}" for i in range(20)]


# --- detach keys -------------------------------------------------------------------------------


def test_detach_keys_parse_as_dockers():
    assert detachkeys.parse("") == b"\x10\x11"
    assert detachkeys.parse("ctrl-x,ctrl-y") == b"\x18\x19"
    assert detachkeys.parse("ctrl-@,a,ctrl-[") == b"\x00a\x1b"
    with pytest.raises(detachkeys.DetachKeysError, match="Invalid detach keys"):
        detachkeys.parse("ctrl-1")
    with pytest.raises(detachkeys.DetachKeysError):
        detachkeys.parse("alt-x")


def test_the_matcher_holds_a_prefix_and_lets_a_broken_one_through():
    m = detachkeys.Matcher(b"\x18\x19")
    assert m.feed(b"ab\x18") == (b"ab", False)  # ctrl-x held
    assert m.feed(b"c") == (b"\x18c", False)  # not followed by ctrl-y: sent after all
    assert m.feed(b"q\x18\x19rest") == (b"q", True)
    m = detachkeys.Matcher(b"\x10\x10\x11")
    assert m.feed(b"\x10\x10\x10\x11") == (b"\x10", True)


# --- the CLI's refusals and checks (nothing is made) ---------------------------------------------


@pytest.fixture
def run(tmp_path, cli_runner):
    def invoke(*args: str):
        return cli_runner.invoke(main, ["--root", str(tmp_path / "root"), "--runroot",
                                        str(tmp_path / "run"), *args], prog_name="minirun")

    return invoke


@pytest.mark.parametrize("args,flag", [
    (["--gpus", "all"], "--gpus"), (["--runtime", "runc"], "--runtime"),
    (["--link", "db:db"], "--link"), (["--storage-opt", "size=1g"], "--storage-opt"),
    (["--kernel-memory", "10m"], "--kernel-memory"), (["--cpu-count", "2"], "--cpu-count"),
    (["--cpu-rt-runtime", "100"], "--cpu-rt-runtime"), (["--isolation", "hyperv"], "--isolation"),
    (["--volume-driver", "nfs"], "--volume-driver"), (["--use-api-socket"], "--use-api-socket"),
    (["--annotation", "a=b"], "--annotation"), (["--dns-option", "ndots:2"], "--dns-option"),
    (["--memory-swappiness", "10"], "--memory-swappiness"),
])
@pytest.mark.parametrize("verb", ["run", "create"])
def test_unsupported_flags_are_one_line_naming_the_flag(run, verb, args, flag):
    r = run(verb, *args, "busybox", "true")
    assert r.exit_code == 125, r.output
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"minirun: {flag} ") and \
        "not supported by minirun" in lines[0] and "no such option" not in lines[0]


@pytest.mark.parametrize("args,message", [
    (["-d", "-a", "stdout"], "Conflicting options: -a and -d"),
    (["-a", "stdfoo"], "valid streams are STDIN, STDOUT and STDERR"),
    (["--detach-keys", "ctrl-%"], "Invalid detach keys (ctrl-%) provided"),
])
def test_attach_and_detach_key_values_are_checked_first(run, args, message):
    r = run("run", *args, "busybox", "true")
    assert r.exit_code == 125 and message in r.stderr and len(r.stderr.splitlines()) == 1


def test_an_existing_cidfile_is_refused_and_left_alone(run, tmp_path):
    cid = tmp_path / "cid"
    cid.write_text("other")
    r = run("create", "--cidfile", str(cid), "busybox", "true")
    assert r.exit_code == 125
    assert r.stderr.strip() == ("minirun: container ID file found, make sure the other "
                                f"container isn't running or delete {cid}")
    assert cid.read_text() == "other"


def test_a_cidfile_goes_when_the_create_fails(run, tmp_path):
    cid = tmp_path / "cid2"
    r = run("create", "--cidfile", str(cid), "--pull", "never", "no-such-image")
    assert r.exit_code == 125 and not cid.exists()


def test_label_files_take_k_v_lines_and_skip_comments(tmp_path):
    f = tmp_path / "labels"
    f.write_text("# a comment\n\na=1\n  b=two words  \nc\n")
    assert runflags.read_label_files((str(f),)) == ["a=1", "b=two words", "c"]
    with pytest.raises(Exception, match="open .*nope"):
        runflags.read_label_files((str(tmp_path / "nope"),))


def test_compose_logging_group_add_and_mac_become_run_options(tmp_path):
    import textwrap

    from minirun.compose import convert, loader

    (tmp_path / "compose.yaml").write_text(textwrap.dedent("""
        services:
          web:
            image: busybox
            logging: {driver: json-file, options: {max-size: 10m, max-file: 3}}
            group_add: [daemon, 4242]
            mac_address: "02:00:00:00:00:09"
        """))
    p = loader.load(cwd=str(tmp_path), environ={})
    o = convert.plan(p.name, p.model, "web", 1, "busybox").options
    assert (o.log_driver, o.log_opts) == ("json-file", {"max-size": "10m", "max-file": "3"})
    assert o.group_add == ["daemon", "4242"] and o.mac_address == "02:00:00:00:00:09"
