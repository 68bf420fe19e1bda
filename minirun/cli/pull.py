"""pull commands (being written)."""

from __future__ import annotations

from . import image, main  # noqa: F401
