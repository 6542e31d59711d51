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


@contextmanager
def scenario_time(clock: Callable[[], dt.datetime]) -> Iterator[None]:
    original = eventsourcing.domain.datetime_now_with_tzinfo
    eventsourcing.domain.datetime_now_with_tzinfo = clock
    try:
        yield
    finally:
        eventsourcing.domain.datetime_now_with_tzinfo = original
