"""Go durations: time.ParseDuration and Duration.String, as Docker's flags and configs use them.

"1m30s", "500ms", "1.5h", "-2s", "0": HEALTHCHECK --interval, --health-timeout, runc's
`events --interval`. Durations are integer nanoseconds, as in Docker's JSON. Parsed by hand,
as Go does, without `re`: minirun-oci's `events` parses one on its start path, and errors
carry Go's messages word for word (`time: unknown unit "x" in duration "2x"`).
"""

from __future__ import annotations

SECOND = 10**9
UNITS = {"ns": 1, "us": 10**3, "\u00b5s": 10**3, "\u03bcs": 10**3, "ms": 10**6, "s": SECOND,
         "m": 60 * SECOND, "h": 3600 * SECOND}
_MAX = 2**63  # Go's int64: one more than the largest positive duration


def parse_duration(text: str) -> int:
    """Go's time.ParseDuration, in nanoseconds; ValueError with Go's message if `text` is not
    a duration. [-+]?([0-9]*(\\.[0-9]*)?[a-z\u00b5\u03bc]+)+ or "0"; a fraction is scaled as
    Go scales it (in floating point: 1.5h is exact, so is any fraction of a second)."""
    s, negative = text, False
    if s[:1] in ("-", "+"):
        negative, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"time: invalid duration {go_quote(text)}")
    total = 0
    while s:
        i = _digits_end(s, 0)
        whole, s = s[:i], s[i:]
        fraction, scale = 0, 1
        has_fraction = False
        if s[:1] == ".":
            j = _digits_end(s, 1)
            digits, s = s[1:j], s[j:]
            has_fraction = bool(digits)
            for c in digits:  # Go's leadingFraction: digits past int64's precision are dropped
                if fraction > (_MAX - 1) // 10:
                    break
                fraction, scale = fraction * 10 + int(c), scale * 10
        if not whole and not has_fraction:
            raise ValueError(f"time: invalid duration {go_quote(text)}")
        j = 0
        while j < len(s) and s[j] != "." and not ("0" <= s[j] <= "9"):
            j += 1
        unit, s = s[:j], s[j:]
        if not unit:
            raise ValueError(f"time: missing unit in duration {go_quote(text)}")
        if unit not in UNITS:
            raise ValueError(f"time: unknown unit {go_quote(unit)} in duration {go_quote(text)}")
        size = UNITS[unit]
        value = int(whole or 0)
        if value > _MAX // size:  # Go: v > 1<<63/unit overflows
            raise ValueError(f"time: invalid duration {go_quote(text)}")
        value *= size
        if fraction:
            value += int(float(fraction) * (size / scale))
        total += value
        if total > _MAX:
            raise ValueError(f"time: invalid duration {go_quote(text)}")
    if negative:
        return -total
    if total > _MAX - 1:
        raise ValueError(f"time: invalid duration {go_quote(text)}")
    return total


def format_duration(ns: int) -> str:
    """Go's Duration.String(): "1s", "1m30s", "1h0m0s", "500ms", "1.5\u00b5s", "0s"."""
    if ns == 0:
        return "0s"
    sign, u = ("-" if ns < 0 else ""), abs(ns)
    if u < SECOND:
        for unit, size in (("ms", 10**6), ("\u00b5s", 10**3), ("ns", 1)):
            if u >= size:
                return sign + _decimal(u, size) + unit
    h, rest = divmod(u, 3600 * SECOND)
    m, rest = divmod(rest, 60 * SECOND)
    text = _decimal(rest, SECOND) + "s"
    if h:
        return f"{sign}{h}h{m}m{text}"
    if m:
        return f"{sign}{m}m{text}"
    return sign + text


def go_quote(text: str) -> str:
    """Go's time.quote, how its errors quote the input: printable ASCII as is (\\ and " escaped),
    every other byte of the UTF-8 as \\xNN."""
    out = []
    for c in text:
        if " " <= c < "\x80":
            out.append("\\" + c if c in '"\\' else c)
        else:
            out.extend(f"\\x{b:02x}" for b in c.encode("utf-8", "surrogatepass"))
    return '"' + "".join(out) + '"'


def _digits_end(s: str, i: int) -> int:
    while i < len(s) and "0" <= s[i] <= "9":
        i += 1
    return i


def _decimal(n: int, size: int) -> str:
    whole, part = divmod(n, size)
    if not part:
        return str(whole)
    return f"{whole}.{str(part).rjust(len(str(size)) - 1, '0').rstrip('0')}"
