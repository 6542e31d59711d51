"""The time a city node's commands see.

Production nodes use the wall clock. `OffsetClock` is for tests and demos that must move
the time of running nodes (CIVFED_CLOCK_OFFSET_FILE): a hold lapses when the test says so,
not after a wait.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class OffsetClock:
    """Wall time plus an offset in seconds read from a file on every call; a missing or
    empty file is no offset. Whoever writes the file moves every node that reads it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def offset(self) -> float:
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            return 0.0
        return float(text) if text else 0.0

    def __call__(self) -> dt.datetime:
        return utcnow() + dt.timedelta(seconds=self.offset())


class MovableClock:
    """Wall time plus an offset held in memory: for nodes run in the same process as the
    test that moves their time (set `offset`)."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return utcnow() + self.offset
