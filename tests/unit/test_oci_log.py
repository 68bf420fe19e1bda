"""minirun-oci's log lines (oci/log.py): errors always on stderr (and in --log FILE), debug
lines only under --debug, in FILE when --log is given, else on stderr; text or JSON."""

from __future__ import annotations

import json

import pytest

from minirun.oci import log


@pytest.fixture(autouse=True)
def reset():
    yield
    log.configure(False, None, None)


def test_debug_lines_need_debug(capsys):
    log.configure(False, None, None)
    log.debug("not shown")
    assert capsys.readouterr().err == ""
    log.configure(True, None, None)
    log.debug("linux.mountLabel ignored")
    assert capsys.readouterr().err == "minirun-oci: debug: linux.mountLabel ignored\n"


def test_with_a_log_file_debug_goes_only_there_errors_to_both(capsys, tmp_path):
    f = tmp_path / "log.json"
    log.configure(True, str(f), "json")
    log.debug("one")
    log.error("two")
    assert capsys.readouterr().err == "minirun-oci: two\n"
    entries = [json.loads(ln) for ln in f.read_text().splitlines()]
    assert [(e["level"], e["msg"]) for e in entries] == [("debug", "one"), ("error", "two")]
    assert all(e["time"].endswith("Z") for e in entries)


def test_text_format_quotes_the_message(tmp_path):
    f = tmp_path / "log"
    log.configure(True, str(f), "text")
    log.debug('label "x" ignored')
    line = f.read_text()
    assert line.startswith('time="') and line.endswith('level=debug msg="label \\"x\\" ignored"\n')


def test_an_unwritable_log_file_is_not_an_error(capsys, tmp_path):
    log.configure(True, str(tmp_path / "no-such-dir" / "log"), "text")
    log.error("still on stderr")
    assert capsys.readouterr().err == "minirun-oci: still on stderr\n"
