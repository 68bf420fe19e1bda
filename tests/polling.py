"""Waiting on a condition, never on the clock.

A test that waits polls for what it waits for, with a deadline that only decides when to give
up (a slow machine takes longer; it does not fail). Speed is measured in bench/, not here.
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def poll(pred: Callable[[], T], timeout: float = 10.0, every: float = 0.01) -> T:
    """pred() until it is truthy or the timeout passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(every)
