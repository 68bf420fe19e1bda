"""engine.health: Go durations, the --health-* flags merged with the image's HEALTHCHECK, the
schedule and Docker's state machine (start period, retries, streak, a log of 5)."""

from __future__ import annotations

import pytest

from minirun.engine import health
from minirun.engine.health import SECOND
from minirun.errors import MinirunError


# -- durations -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, ns", [
    ("30s", 30 * SECOND), ("1m", 60 * SECOND), ("500ms", SECOND // 2), ("1m30s", 90 * SECOND),
    ("1.5h", 5400 * SECOND), ("4.5s", 4500 * 10**6), (".5s", SECOND // 2), ("1us", 1000),
    ("1µs", 1000), ("7ns", 7), ("0", 0), ("-2s", -2 * SECOND), ("+1s", SECOND),
    ("1h2m3s", 3723 * SECOND), ("0s", 0),
])
def test_parse_duration_reads_go_syntax(text, ns):
    assert health.parse_duration(text) == ns


@pytest.mark.parametrize("text, message", [
    ("", 'time: invalid duration ""'), ("abc", 'time: invalid duration "abc"'),
    ("10", 'time: missing unit in duration "10"'),
    ("2x", 'time: unknown unit "x" in duration "2x"'),
    (".s", 'time: invalid duration ".s"'), ("1s-", 'time: unknown unit "s-" in duration "1s-"'),
    ("1s2", 'time: missing unit in duration "1s2"'),
    ("30 s", 'time: unknown unit " s" in duration "30 s"'),
])
def test_parse_duration_refuses_what_go_refuses(text, message):
    with pytest.raises(ValueError) as e:
        health.parse_duration(text)
    assert str(e.value) == message


@pytest.mark.parametrize("ns, text", [
    (30 * SECOND, "30s"), (90 * SECOND, "1m30s"), (3600 * SECOND, "1h0m0s"), (SECOND // 2, "500ms"),
    (1500, "1.5µs"), (7, "7ns"), (0, "0s"), (4500 * 10**6, "4.5s"), (-SECOND, "-1s"),
])
def test_format_duration_is_gos_string(ns, text):
    assert health.format_duration(ns) == text


# -- flags and the image ---------------------------------------------------------------------------


def test_no_flags_no_healthcheck():
    assert health.from_flags() is None


def test_flags_set_only_the_fields_given():
    assert health.from_flags(cmd="test -f /tmp/ok", interval="1s", retries=2) == {
        "Test": ["CMD-SHELL", "test -f /tmp/ok"], "Interval": SECOND, "Retries": 2}
    assert health.from_flags(timeout="2s", start_period="5s", start_interval="500ms") == {
        "Timeout": 2 * SECOND, "StartPeriod": 5 * SECOND, "StartInterval": SECOND // 2}


def test_no_healthcheck_is_test_none_and_conflicts_with_health_flags():
    assert health.from_flags(none=True) == {"Test": ["NONE"]}
    for kw in ({"cmd": "true"}, {"interval": "1s"}, {"retries": 1}, {"start_interval": "1s"}):
        with pytest.raises(MinirunError, match=r"^--no-healthcheck conflicts with --health-\* "
                                                r"options$"):
            health.from_flags(none=True, **kw)


def test_bad_flag_values_are_one_line_errors():
    with pytest.raises(MinirunError) as e:
        health.from_flags(interval="soon")
    assert str(e.value) == ('invalid argument "soon" for "--health-interval" flag: time: invalid '
                            'duration "soon"')
    with pytest.raises(MinirunError, match="^--health-timeout cannot be negative$"):
        health.from_flags(cmd="true", timeout="-1s")
    with pytest.raises(MinirunError, match="^--health-retries cannot be negative$"):
        health.from_flags(cmd="true", retries=-1)


IMAGE = {"Test": ["CMD", "/bin/check", "--quick"], "Interval": 10 * SECOND,
         "Timeout": 3 * SECOND, "StartPeriod": 0, "Retries": 5}


def test_merge_takes_the_image_check_when_no_flag_is_given():
    assert health.merge(None, IMAGE) == {"Test": ["CMD", "/bin/check", "--quick"],
                                         "Interval": 10 * SECOND, "Timeout": 3 * SECOND,
                                         "Retries": 5}
    assert health.merge(None, None) is None


def test_merge_flags_override_field_by_field():
    user = health.from_flags(interval="1s")
    assert health.merge(user, IMAGE) == {"Test": ["CMD", "/bin/check", "--quick"],
                                         "Interval": SECOND, "Timeout": 3 * SECOND, "Retries": 5}
    user = health.from_flags(cmd="curl -f localhost", retries=1)
    assert health.merge(user, IMAGE) == {"Test": ["CMD-SHELL", "curl -f localhost"],
                                         "Interval": 10 * SECOND, "Timeout": 3 * SECOND,
                                         "Retries": 1}


def test_merge_no_healthcheck_disables_the_image_check_and_keeps_its_timings():
    hc = health.merge(health.from_flags(none=True), IMAGE)
    assert hc["Test"] == ["NONE"] and hc["Interval"] == 10 * SECOND  # as dockerd merges it
    assert health.probe_argv(hc) is None


def test_merge_applies_dockerds_minimum_of_1ms():
    with pytest.raises(MinirunError, match="^Interval in Healthcheck cannot be less than 1ms$"):
        health.merge(health.from_flags(interval="500us"), None)
    with pytest.raises(MinirunError, match="^Retries in Healthcheck cannot be negative$"):
        health.merge(None, {"Test": ["CMD", "true"], "Retries": -1})


def test_probe_argv_per_test_type():
    assert health.probe_argv({"Test": ["CMD-SHELL", "exit 1"]}) == ["/bin/sh", "-c", "exit 1"]
    assert health.probe_argv({"Test": ["CMD-SHELL", "x"]}, ["/bin/bash", "-ec"]) == \
        ["/bin/bash", "-ec", "x"]  # the image's SHELL
    assert health.probe_argv({"Test": ["CMD", "/bin/check", "-q"]}) == ["/bin/check", "-q"]
    for hc in (None, {}, {"Test": []}, {"Test": ["NONE"]}, {"Test": ["CMD"]},
               {"Test": ["HTTP", "x"]}, {"Interval": SECOND}):
        assert health.probe_argv(hc) is None


def test_settings_fill_in_dockers_defaults():
    s = health.Settings({"Test": ["CMD", "true"]})
    assert (s.interval, s.timeout, s.start_period, s.start_interval, s.retries) == \
        (30.0, 30.0, 0.0, 5.0, 3)
    assert s.timeout_text == "30s"
    s = health.Settings({"Interval": SECOND, "Timeout": SECOND // 2, "Retries": 2})
    assert (s.interval, s.timeout, s.retries, s.timeout_text) == (1.0, 0.5, 2, "500ms")


# -- the state machine -----------------------------------------------------------------------------


def result(code: int, n: int = 0) -> dict:
    return {"Start": f"t{n}", "End": f"t{n}", "ExitCode": code, "Output": f"out {n}"}


def test_starting_then_one_success_is_healthy():
    h = health.fresh(None)
    assert h == {"Status": "starting", "FailingStreak": 0, "Log": []}
    health.record(h, result(0), 3, in_start_period=False)
    assert h["Status"] == "healthy" and h["FailingStreak"] == 0


def test_retries_failures_in_a_row_make_it_unhealthy_and_a_success_resets_the_streak():
    h = health.fresh(None)
    health.record(h, result(1, 1), 2, False)
    assert (h["Status"], h["FailingStreak"]) == ("starting", 1)
    health.record(h, result(1, 2), 2, False)
    assert (h["Status"], h["FailingStreak"]) == ("unhealthy", 2)
    health.record(h, result(7, 3), 2, False)
    assert (h["Status"], h["FailingStreak"]) == ("unhealthy", 3)
    health.record(h, result(0, 4), 2, False)
    assert (h["Status"], h["FailingStreak"]) == ("healthy", 0)
    health.record(h, result(1, 5), 2, False)
    assert (h["Status"], h["FailingStreak"]) == ("healthy", 1)  # one failure is not enough


def test_a_timeout_or_error_counts_as_a_failure():
    h = health.fresh(None)
    health.record(h, result(-1), 1, False)
    assert h["Status"] == "unhealthy"


def test_failures_in_the_start_period_are_logged_but_not_counted():
    h = health.fresh(None)
    for i in range(4):
        health.record(h, result(1, i), 1, in_start_period=True)
    assert (h["Status"], h["FailingStreak"], len(h["Log"])) == ("starting", 0, 4)
    health.record(h, result(1, 9), 1, in_start_period=False)
    assert h["Status"] == "unhealthy"


def test_a_success_in_the_start_period_ends_the_grace():
    h = health.fresh(None)
    health.record(h, result(0), 1, in_start_period=True)
    assert h["Status"] == "healthy"
    health.record(h, result(1), 1, in_start_period=True)  # healthy: failures count now
    assert (h["Status"], h["FailingStreak"]) == ("unhealthy", 1)


def test_the_log_keeps_the_last_five_oldest_first():
    h = health.fresh(None)
    for i in range(8):
        health.record(h, result(i % 2, i), 3, False)
    assert [r["Output"] for r in h["Log"]] == [f"out {i}" for i in range(3, 8)]
    assert set(h["Log"][0]) == {"Start", "End", "ExitCode", "Output"}


def test_a_restart_is_starting_again_with_no_streak_and_the_log_kept():
    h = health.fresh(None)
    for i in range(3):
        health.record(h, result(1, i), 3, False)
    assert h["Status"] == "unhealthy"
    h2 = health.fresh(h)
    assert (h2["Status"], h2["FailingStreak"], len(h2["Log"])) == ("starting", 0, 3)


def test_describe_is_what_ps_shows():
    assert health.describe({"Status": "starting"}) == "health: starting"
    assert health.describe({"Status": "healthy"}) == "healthy"
    assert health.describe({"Status": "unhealthy"}) == "unhealthy"


# -- the schedule ----------------------------------------------------------------------------------


def test_next_delay_uses_the_start_interval_only_while_starting_in_the_start_period():
    s = health.Settings({"Interval": 10 * SECOND, "StartPeriod": 60 * SECOND,
                         "StartInterval": 2 * SECOND})
    assert health.next_delay(s, 0.0, "starting") == 2.0
    assert health.next_delay(s, 30.0, "starting") == 2.0
    assert health.next_delay(s, 30.0, "healthy") == 10.0
    assert health.next_delay(s, 61.0, "starting") == 10.0
    plain = health.Settings({"Interval": SECOND})
    assert health.next_delay(plain, 0.0, "starting") == 1.0  # no start period: the interval


def test_probe_schedules_the_first_check_and_the_next_after_each_end():
    p = health.Probe({"Interval": 3 * SECOND}, ["true"], health.fresh(None), "/run", "c" * 64,
                     "/nowhere", {}, started=100.0)
    assert p.due == 103.0 and not p.busy
    assert p.wait(101.0) == 2.0 and p.wait(104.0) == 0.0
    p.postpone(110.0)
    assert p.due == 113.0
    sp = health.Probe({"Interval": 30 * SECOND, "StartPeriod": 60 * SECOND}, ["true"],
                      health.fresh(None), "/run", "c" * 64, "/nowhere", {}, started=0.0)
    assert sp.due == 5.0  # Docker's default start interval during the start period
