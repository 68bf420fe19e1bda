"""Times as Docker prints them: RFC 3339 in UTC, with nanoseconds ("2026-12-02T20:31:34.123456789Z").

`now()` is what records, logs, state.json and image configs stamp; `format_time` formats a
Unix time the same way; `parse_time` reads one back (any offset, any number of fractional
digits), as Go's time.Parse(time.RFC3339Nano) does. Written with `time` alone, by hand: the
monitor and minirun-oci stamp times on their start path, where datetime and re are kept out
(tests/unit/test_startup_budget.py).
"""

from __future__ import annotations

import time

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time: Docker's "never"


def format_time(seconds: float, digits: int = 9) -> str:
    """A Unix time as RFC 3339 UTC with `digits` fractional digits (9: Docker's RFC3339Nano
    with its zeros kept; 6: Python's %f, as image configs written by minirun have them)."""
    whole = int(seconds // 1)
    return _format(whole, int((seconds - whole) * 1e9), digits)


def now(digits: int = 9) -> str:
    """The current time as RFC 3339 UTC (see format_time), from the nanosecond clock."""
    t = time.time_ns()
    return _format(t // 10**9, t % 10**9, digits)


def _format(seconds: int, nanos: int, digits: int) -> str:
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if digits:
        text += "." + f"{nanos:09d}"[:digits]
    return text + "Z"


def parse_time(text: str) -> float:
    """An RFC 3339 time ("2026-12-02T20:31:34.5Z", "...+02:00") as a Unix time; ValueError if
    it is not one. Fractions beyond microseconds are kept as far as a float holds them."""
    if len(text) < 20 or text[4] != "-" or text[7] != "-" or text[10] not in "Tt" \
            or text[13] != ":" or text[16] != ":":
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    try:
        fields = [int(text[a:b]) for a, b in ((0, 4), (5, 7), (8, 10), (11, 13), (14, 16), (17, 19))]
        rest, fraction = text[19:], 0.0
        if rest[:1] == ".":
            end = 1
            while end < len(rest) and rest[end].isdigit():
                end += 1
            fraction, rest = float("0" + rest[:end]), rest[end:]
        if rest in ("Z", "z"):
            offset = 0
        elif len(rest) == 6 and rest[0] in "+-" and rest[3] == ":":
            offset = (int(rest[1:3]) * 3600 + int(rest[4:6]) * 60) * (-1 if rest[0] == "-" else 1)
        else:
            raise ValueError(text)
    except ValueError:
        raise ValueError(f"not an RFC 3339 time: {text!r}") from None
    year, month, day, hour, minute, second = fields
    return _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second \
        - offset + fraction


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm: no
    calendar or datetime import, and right for year 1 as for 9999)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468
