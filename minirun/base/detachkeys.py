"""The key sequence that detaches an attached terminal: `--detach-keys`, Docker's default
ctrl-p,ctrl-q.

Docker's syntax (moby/term ToBytes): keys separated by commas, each either one character
(`a`, `,` is not possible) or `ctrl-X` with X one of a-z @ [ \\ ] ^ _ (ctrl-a is byte 1,
ctrl-@ byte 0, ctrl-[ is ESC ...). The attached client watches its stdin for the sequence:
bytes that start it are held back until the sequence completes (detach: the container runs
on) or breaks (they go to the container after all), as Docker's escape proxy does.
"""

from __future__ import annotations

DEFAULT = b"\x10\x11"  # ctrl-p ctrl-q
_CTRL = "abcdefghijklmnopqrstuvwxyz"
_CTRL_PUNCT = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


class DetachKeysError(ValueError):
    """A --detach-keys value Docker would refuse."""


def parse(text: str | None) -> bytes:
    """--detach-keys "ctrl-p,ctrl-q" -> b"\\x10\\x11" ("" or None: the default)."""
    if not text:
        return DEFAULT
    out = bytearray()
    for key in text.split(","):
        k = key.strip()
        low = k.lower()
        if len(k) == 1:
            out.append(ord(k))
        elif low.startswith("ctrl-") and len(low) == 6 and low[5] in _CTRL:
            out.append(_CTRL.index(low[5]) + 1)
        elif low.startswith("ctrl-") and len(low) == 6 and low[5] in _CTRL_PUNCT:
            out.append(_CTRL_PUNCT[low[5]])
        else:
            raise DetachKeysError(f"Invalid detach keys ({text}) provided: Unknown character: "
                                  f"'{k}' (use ctrl-X, X a-z @ [ \\ ] ^ _, or one character, "
                                  "comma separated)")
    return bytes(out)


class Matcher:
    """Watches typed bytes for the sequence. feed() returns (what to send on, detached)."""

    def __init__(self, keys: bytes = DEFAULT) -> None:
        self.keys = keys
        self.held = b""  # a prefix of the sequence, typed so far

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        out = bytearray()
        for b in data:
            self.held += bytes((b,))
            if self.keys.startswith(self.held):
                if self.held == self.keys:
                    self.held = b""
                    return bytes(out), True
                continue
            # The sequence broke: the first held byte goes on; the rest may start it again.
            pending, self.held = self.held, b""
            out.append(pending[0])
            rest, done = self.feed(pending[1:])
            out += rest
            if done:
                return bytes(out), True
        return bytes(out), False
