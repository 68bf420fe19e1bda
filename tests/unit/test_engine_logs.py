"""engine.logs: json-file logs, written a line per record, read with --tail/--since, followed."""

from __future__ import annotations

import json
import time

import pytest

from minirun.engine import logs


def rec(text: str, stream: str = "stdout", t: str = "2026-12-02T10:00:00.000000000Z") -> str:
    return json.dumps({"log": text, "stream": stream, "time": t}) + "\n"


def test_writer_splits_output_into_one_record_per_line(tmp_path):
    p = str(tmp_path / "log")
    w = logs.Writer(p)
    w.write("stdout", b"one\ntwo\n")
    w.close()
    recs = logs.read(p)
    assert [(r["log"], r["stream"]) for r in recs] == [("one\n", "stdout"), ("two\n", "stdout")]
    assert all(r["time"].endswith("Z") for r in recs)


def test_a_partial_line_waits_for_its_newline(tmp_path):
    p = str(tmp_path / "log")
    w = logs.Writer(p)
    w.write("stdout", b"hel")
    assert logs.read(p) == []
    w.write("stdout", b"lo\nwor")
    assert [r["log"] for r in logs.read(p)] == ["hello\n"]
    w.flush()
    assert [r["log"] for r in logs.read(p)] == ["hello\n", "wor"]
    w.close()


def test_stdout_and_stderr_are_tagged_and_buffered_separately(tmp_path):
    p = str(tmp_path / "log")
    w = logs.Writer(p)
    w.write("stdout", b"out-")
    w.write("stderr", b"err\n")
    w.write("stdout", b"line\n")
    w.close()
    assert [(r["stream"], r["log"]) for r in logs.read(p)] == [("stderr", "err\n"),
                                                               ("stdout", "out-line\n")]


def test_a_very_long_line_is_cut_at_16k(tmp_path):
    p = str(tmp_path / "log")
    w = logs.Writer(p)
    w.write("stdout", b"x" * logs.MAX_PARTIAL)
    assert [len(r["log"]) for r in logs.read(p)] == [logs.MAX_PARTIAL]
    w.close()


def test_read_of_a_missing_file_is_empty_and_bad_lines_are_skipped(tmp_path):
    assert logs.read(str(tmp_path / "none")) == []
    p = tmp_path / "log"
    p.write_text(rec("a\n") + "garbage\n" + rec("b\n"))
    assert [r["log"] for r in logs.read(str(p))] == ["a\n", "b\n"]


def test_tail_keeps_the_last_n_records(tmp_path):
    p = tmp_path / "log"
    p.write_text("".join(rec(f"{i}\n") for i in range(5)))
    assert [r["log"] for r in logs.read(str(p), tail=2)] == ["3\n", "4\n"]
    assert logs.read(str(p), tail=0) == []
    assert len(logs.read(str(p), tail=-1)) == 5
    assert len(logs.read(str(p), tail=10)) == 5


def test_since_drops_older_records(tmp_path):
    p = tmp_path / "log"
    p.write_text(rec("old\n", t="2026-12-02T09:00:00.000000000Z")
                 + rec("new\n", t="2026-12-02T11:00:00.000000000Z"))
    since = logs.parse_since("2026-12-02T10:00:00")
    assert [r["log"] for r in logs.read(str(p), since=since)] == ["new\n"]


def test_since_with_a_z_suffix_keeps_records_later_in_that_second(tmp_path):
    p = tmp_path / "log"
    p.write_text(rec("later\n", t="2026-12-02T10:00:00.500000000Z"))
    since = logs.parse_since("2026-12-02T10:00:00Z")
    assert [r["log"] for r in logs.read(str(p), since=since)] == ["later\n"]


def test_parse_since_accepts_durations_timestamps_and_times():
    assert logs.parse_since("1700000000") == "2023-11-14T22:13:20.000000000Z"
    assert logs.parse_since("1700000000.5") == "2023-11-14T22:13:20.500000000Z"
    assert logs.parse_since("2026-12-02T10:00:00") == "2026-12-02T10:00:00"
    assert logs.parse_since("2026-12-02") == "2026-12-02"
    ten_min_ago = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() - 600))
    assert logs.parse_since("10m")[:16] == ten_min_ago
    an_hour_half_ago = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() - 5400))
    assert logs.parse_since("1h30m")[:16] == an_hour_half_ago


@pytest.mark.parametrize("text", ["yesterday", "10x", "", "2026/12/02"])
def test_parse_since_rejects_other_text(text):
    with pytest.raises(ValueError, match="invalid --since"):
        logs.parse_since(text)


def appender(path, chunks):
    """An alive() that appends the next chunk each time it is asked, then says "exited"."""
    pending = list(chunks)

    def alive():
        if not pending:
            return False
        with open(path, "a") as f:
            f.write(pending.pop(0))
        return True

    return alive


def test_follow_yields_records_appended_later_and_stops_when_not_alive(tmp_path):
    p = tmp_path / "log"
    p.write_text(rec("before\n"))
    two = rec("two\n")
    alive = appender(p, [rec("one\n") + two[:10], two[10:]])  # a record split across writes
    got = [r["log"] for r in logs.follow(str(p), p.stat().st_size, alive)]
    assert got == ["one\n", "two\n"]


def test_follow_from_offset_zero_yields_what_is_already_there(tmp_path):
    p = tmp_path / "log"
    p.write_text(rec("a\n") + rec("b\n"))
    assert [r["log"] for r in logs.follow(str(p), 0, lambda: False)] == ["a\n", "b\n"]


def test_follow_yields_records_written_just_before_the_container_exits(tmp_path):
    p = tmp_path / "log"
    p.write_text("")

    said = []

    def alive():  # the container writes its last line, then is gone
        if not said:
            with open(p, "a") as f:
                f.write(rec("last words\n"))
            said.append(1)
        return False

    assert [r["log"] for r in logs.follow(str(p), 0, alive)] == ["last words\n"]


def test_log_lines_are_split_and_partials_held(tmp_path):
    path = str(tmp_path / "log")
    w = logs.Writer(path)
    w.write("stdout", b"a\nb")
    w.write("stderr", b"err\n")
    w.write("stdout", b"c\n")
    w.close()
    recs = logs.read(path)
    assert [(r["stream"], r["log"]) for r in recs] == [("stdout", "a\n"), ("stderr", "err\n"),
                                                       ("stdout", "bc\n")]
    assert [r["log"] for r in logs.read(path, tail=1)] == ["bc\n"]
    assert logs.read(path, since="9999") == []


def test_since_accepts_durations_timestamps_and_times():
    assert logs.parse_since("10m") < logs.parse_since("1s")
    assert logs.parse_since("0").startswith("1970-01-01T00:00:00")
    assert logs.parse_since("2026-01-02T03:04:05Z") == "2026-01-02T03:04:05"  # UTC, compared as text
    with pytest.raises(ValueError):
        logs.parse_since("yesterday")


def test_follow_yields_what_comes_later_and_stops(tmp_path):
    path = str(tmp_path / "log")
    w = logs.Writer(path)
    w.write("stdout", b"first\n")
    calls = []

    def alive():
        calls.append(1)
        if len(calls) == 1:
            w.write("stdout", b"second\n")
            return True
        return False

    assert [r["log"] for r in logs.follow(path, 0, alive)] == ["first\n", "second\n"]
