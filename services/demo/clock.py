"""Dates demo events on the scenario's own clock.

The demo plays four weeks in seconds; stamping its events with the scenario
clock lets the dashboards show that season day by day. Only `civfed demo` uses
this; real nodes keep eventsourcing's wall-clock timestamps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import eventsourcing.domain

START = dt.datetime(2026, 5, 4, 7, 0, tzinfo=dt.UTC)


class ScenarioClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now

    def day(self, n: int) -> dt.date:
        self.now = START + dt.timedelta(days=n)
        return self.now.date()


@contextmanager
def scenario_time(clock: Callable[[], dt.datetime]) -> Iterator[None]:
    original = eventsourcing.domain.datetime_now_with_tzinfo
    eventsourcing.domain.datetime_now_with_tzinfo = clock
    try:
        yield
    finally:
        eventsourcing.domain.datetime_now_with_tzinfo = original
