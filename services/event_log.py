"""Reads a city's notification log in order, as domain events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import DomainEventProtocol


def read_events(
    app: Application[UUID], after: int = 0, page: int = 1000
) -> Iterator[tuple[int, DomainEventProtocol[Any]]]:
    """Yield (notification id, event) for every event recorded after `after`."""
    while True:
        notifications = app.recorder.select_notifications(start=after, limit=page, inclusive_of_start=False)
        for notification in notifications:
            yield notification.id, app.mapper.to_domain_event(notification)
        if len(notifications) < page:
            return
        after = notifications[-1].id


def event_type(event: DomainEventProtocol[Any]) -> str:
    """'Wallet.Credited' from the event's class qualname."""
    return type(event).__qualname__
