"""Reads a city's notification log in order, as domain events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.utils import get_topic


def read_events(
    app: Application[UUID],
    after: int = 0,
    page: int = 1000,
    topics: tuple[str, ...] = (),
    stop: int | None = None,
) -> Iterator[tuple[int, DomainEventProtocol[Any]]]:
    """Yield (notification id, event) for every event recorded after `after` (up to `stop`);
    with `topics`, only events of those topics: the store filters, nothing else is decoded."""
    while True:
        notifications = app.recorder.select_notifications(
            start=after, limit=page, stop=stop, topics=topics, inclusive_of_start=False
        )
        for notification in notifications:
            yield notification.id, app.mapper.to_domain_event(notification)
        if len(notifications) < page:
            return
        after = notifications[-1].id


def topics_of(*aggregates: type[Aggregate]) -> tuple[str, ...]:
    """The stored topics of every event class of `aggregates` (to pass as `topics`)."""
    return tuple(
        get_topic(kind)
        for aggregate in aggregates
        for kind in vars(aggregate).values()
        if isinstance(kind, type) and issubclass(kind, aggregate.Event)
    )


def follow(
    app: Application[UUID], after: int, topics: tuple[str, ...]
) -> tuple[int, Iterator[tuple[int, DomainEventProtocol[Any]]]]:
    """What a reader that follows only `topics` reads next: the log's last notification id
    now, and the events of those topics up to it. The reader then moves its position to that
    id, so the events of other topics in between are never read again (inserts are
    serialised, so nothing is committed later below an id already visible)."""
    upto = app.recorder.max_notification_id() or 0
    return max(after, upto), read_events(app, after=after, topics=topics, stop=upto)


def event_type(event: DomainEventProtocol[Any]) -> str:
    """'Wallet.Credited' from the event's class qualname."""
    return type(event).__qualname__
