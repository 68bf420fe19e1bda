"""Docker's go-units: the sizes and durations every front end and the engine print.

`human_size` and `human_duration` are go-units' HumanSizeWithPrecision and HumanDuration (what
`docker images` and `docker ps` show), `binary_size` its BytesSize (`docker stats`' memory);
`parse_bytes` reads what `run -m 512m` and `minirun-oci update --memory 1g` take.
"""

from __future__ import annotations

_DECIMAL_UNITS = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]


def _go_g(value: float, precision: int) -> str:
    """Go's %.*g: like C's, but exponents have at least two digits (also in Python)."""
    return "%.*g" % (precision, value)


def human_size(size: float, precision: int = 4) -> str:
    """go-units HumanSizeWithPrecision: decimal units (1 kB = 1000 B), `precision` significant
    digits: 4260000 -> "4.26MB" (precision 3, as `docker images` shows it), 1234 -> "1.234kB"."""
    size = float(size)
    i = 0
    while size >= 1000.0 and i < len(_DECIMAL_UNITS) - 1:
        size /= 1000.0
        i += 1
    return _go_g(size, precision) + _DECIMAL_UNITS[i]


def human_duration(seconds: float) -> str:
    """go-units HumanDuration, what "CREATED ... ago" shows."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


_BINARY_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"]


def binary_size(n: float) -> str:
    """go-units BytesSize: 1024-based, as docker stats shows memory ("1.5MiB")."""
    i = 0
    while n >= 1024 and i < len(_BINARY_UNITS) - 1:
        n /= 1024
        i += 1
    return f"{n:.4g}{_BINARY_UNITS[i]}"


def parse_bytes(text: str) -> int:
    """'512m', '1g', '65536', '-1' -> bytes (Docker's RAMInBytes: k, m, g, t, binary).
    ValueError names the text; each caller makes it its own error (the CLI's exit 125, the
    runtime's exit 1)."""
    t = text.strip().lower().rstrip("b")
    if t in ("-1", "max"):
        return -1
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}.get(t[-1:], 1)
    if mult != 1:
        t = t[:-1]
    try:
        return int(float(t) * mult)
    except ValueError:
        raise ValueError(f"{text!r} is not a size (use a number with k, m, g or t)") from None
