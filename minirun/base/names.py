"""Names and IDs: which a user may choose, and what an ID looks like.

Written without `re`: minirun-oci checks every container ID on its start path
(tests/unit/test_startup_budget.py).
"""

from __future__ import annotations

import os

HEX_DIGITS = "0123456789abcdef"


def valid_name(name: str) -> bool:
    """A container, volume or network name, by Docker's rule [a-zA-Z0-9][a-zA-Z0-9_.-]+
    (at least two characters, ASCII only)."""
    return len(name) >= 2 and name[0].isascii() and name[0].isalnum() and \
        all(c.isascii() and (c.isalnum() or c in "_.-") for c in name)


def valid_runtime_id(cid: str) -> bool:
    """A container ID as the OCI runtime takes it, by runc's rule ^[\\w+-.]+$ (ASCII), and
    neither "." nor "..", which would name the state directory or its parent."""
    return bool(cid) and cid not in (".", "..") and cid.isascii() and \
        all(c.isalnum() or c in "_+-." for c in cid)


def is_hex_id(text: str, length: int = 64) -> bool:
    """A full ID: `length` lowercase hex digits (a sha256 without "sha256:", a container ID)."""
    return len(text) == length and all(c in HEX_DIGITS for c in text)


def new_id() -> str:
    """A new 64-hex-digit ID, never all digits in its 12-character short form (Docker avoids
    those: a short ID must not read as a number)."""
    while True:
        cid = os.urandom(32).hex()
        if not cid[:12].isdigit():
            return cid
