"""The embedded source: each city's notification log, read directly and polled.

The position is the last notification id read, tracked like a Kafka offset
(source `log:<city>`, partition 0), in the same transaction as the read models.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

from projections.integration import to_integration_event
from projections.projector import Delivery, Projector


def log_source(city: str) -> str:
    return f"log:{city}"


def catch_up_log(projector: Projector, app: Application[UUID], city: str, page: int = 1000) -> int:
    """Apply everything recorded since the stored position; returns events applied."""
    source = log_source(city)
    applied = 0
    while True:
        after = projector.positions(source).get(0, (0, 0))[0]
        rows = app.recorder.select_notifications(start=after, limit=page, inclusive_of_start=False)
        if not rows:
            return applied
        deliveries = []
        for n in rows:
            event: Any = app.mapper.to_domain_event(n)
            deliveries.append(Delivery(0, n.id, to_integration_event(city, n.id, event), n.id))
        applied += projector.apply_batch(source, deliveries)


def follow_logs(
    projector: Projector,
    apps: Sequence[tuple[str, Application[UUID]]],
    stop: threading.Event,
    interval: float = 0.5,
) -> None:
    """Poll every city's log until `stop` is set.

    eventsourcing's push-style subscription does not cover SQLite, so polling is
    the one mechanism that works on both stores.
    """
    while not stop.is_set():
        for city, app in apps:
            catch_up_log(projector, app, city)
        stop.wait(interval)
