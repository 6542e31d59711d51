"""The embedded source: each city's notification log, read directly.

The position is the last notification id read, tracked like a Kafka offset
(source `log:<city>`, partition 0), in the same transaction as the read models.
Following wakes on PostgreSQL's LISTEN/NOTIFY; SQLite logs are polled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from projections.integration import CityLog, integration_events
from projections.pg_notify import NotifyListener, listens
from projections.projector import Delivery, Projector


def log_source(city: str) -> str:
    return f"log:{city}"


# Notifications read per transaction: large enough that a rebuild is a few thousand commits.
PAGE = 10_000


def catch_up_log(projector: Projector, app: CityLog, city: str, page: int = PAGE) -> int:
    """Apply everything recorded since the stored position; returns events applied."""
    source = log_source(city)
    applied = 0
    while True:
        after = projector.positions(source).get(0, (0, 0))[0]
        rows = app.recorder.select_notifications(start=after, limit=page, inclusive_of_start=False)
        if not rows:
            return applied
        events = integration_events(city, rows, app)
        applied += projector.apply_batch(
            source, [Delivery(0, n.id, event, n.id) for n, event in zip(rows, events, strict=True)]
        )


def follow_logs(
    projector: Projector,
    apps: Sequence[tuple[str, CityLog]],
    stop: threading.Event,
    interval: float = 0.5,
    fallback: float = 30.0,
) -> None:
    """Follow every city's log until `stop` is set.

    With only PostgreSQL stores the follower sleeps until a store notifies it
    (or `fallback` seconds pass, in case a notification was lost); any SQLite
    store is polled every `interval` seconds.
    """
    wake = threading.Event()
    listeners = [NotifyListener(app, wake, stop) for _, app in apps if listens(app)]
    pause = interval if len(listeners) < len(apps) else fallback
    try:
        while not stop.is_set():
            wake.clear()  # before reading: a write during the read wakes the next round
            for city, app in apps:
                catch_up_log(projector, app, city)
            _sleep(wake, stop, pause)
    finally:
        wake.set()
        for listener in listeners:
            listener.join()


def _sleep(wake: threading.Event, stop: threading.Event, seconds: float) -> None:
    """Until a store notifies, `stop` is set, or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while not stop.is_set() and not wake.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        wake.wait(min(left, 0.2))
