"""The embedded source: each city's notification log, read directly.

The position is the last notification id read, tracked like a Kafka offset
(source `log:<city>`, partition 0), in the same transaction as the read models.
Following wakes on PostgreSQL's LISTEN/NOTIFY; SQLite logs are polled.
"""

from __future__ import annotations

import contextlib
import functools
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import InterfaceError, Notification, OperationalError
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from civfed.v1 import events_pb2
from projections.integration import PUBLIC_FIELDS, CityLog, integration_events, is_public
from projections.pg_notify import NotifyListener, listens
from projections.projector import Delivery, Projector


def log_source(city: str) -> str:
    return f"log:{city}"


# Notifications read per transaction: a rebuild of ten million is four hundred commits, each
# read model writes a key once per page, and a page of decoded events stays well under 100 MB.
PAGE = 25_000


def catch_up_log(projector: Projector, app: CityLog, city: str, page: int = PAGE) -> int:
    """Apply everything recorded since the stored position; returns events applied.

    Each page is applied in one transaction with its position (Projector.apply_batch). While
    one page is applied, the next is read and turned into public events in another thread
    (a long catch-up, such as a rebuild, waits on the read models' database about as long
    as it decodes); a batch already reflected in the position is skipped as ever."""
    source = log_source(city)
    applied = 0
    for rows, events in _pages(app, city, projector.positions(source).get(0, (0, 0))[0], page):
        applied += projector.apply_batch(
            source, [Delivery(0, n.id, event, n.id) for n, event in zip(rows, events, strict=True)]
        )
    return applied


Page = tuple[Sequence[Any], list[events_pb2.Event | None]]


def _read(app: CityLog, city: str, after: int, page: int) -> Page:
    rows = _select(app.recorder, after, page)
    return rows, integration_events(city, rows, app) if rows else []


def _select(recorder: Any, after: int, page: int) -> Sequence[Notification]:
    """Up to `page` notifications after id `after`, in order. From PostgreSQL, without the
    events known to stay internal (receipts, a fund's draws: more than half of a city's
    log, and its largest rows), which the store then neither sends nor are decoded here.
    What is left out only advances the position, so a page that skips them ends at the
    last event it kept: the next read starts there, as it would have."""
    if not isinstance(recorder, PostgresApplicationRecorder):
        rows: Sequence[Notification] = recorder.select_notifications(
            start=after, limit=page, inclusive_of_start=False
        )
        return rows
    kept: list[Notification] = _select_kept(recorder, after, page)  # `retry` drops the type
    return kept


@retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the recorder's own reads
def _select_kept(recorder: PostgresApplicationRecorder, after: int, page: int) -> list[Notification]:
    statement = SQL(
        "SELECT notification_id, originator_id, originator_version, topic, state FROM {}.{} "
        "WHERE notification_id > %s AND topic <> ALL(%s) ORDER BY notification_id LIMIT %s"
    ).format(Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))
    with recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(statement, (after, internal_topics(), page), prepare=True)
        return [
            Notification(id=nid, originator_id=oid, originator_version=v, topic=topic, state=bytes(state))
            for nid, oid, v, topic, state in cur.fetchall()
        ]


@functools.cache
def internal_topics() -> list[str]:
    """The topics of every event class loaded here that never becomes a public event, found
    once (every page's query sends them). A topic missing from it is only read and left out
    later (`is_public`), never lost."""
    found: set[str] = set()
    classes: list[type] = [DomainEvent]
    while classes:
        cls = classes.pop()
        classes.extend(cls.__subclasses__())
        if cls.__qualname__ in PUBLIC_FIELDS or not cls.__module__.startswith(("aggregates.", "services.")):
            continue
        topic = f"{cls.__module__}:{cls.__qualname__}"  # what eventsourcing records
        with contextlib.suppress(Exception):  # a class no topic resolves to: kept, to be safe
            if not is_public(topic):
                found.add(topic)
    return sorted(found)


def _pages(app: CityLog, city: str, after: int, page: int) -> Iterator[Page]:
    """Every page after notification id `after`, in order: the first read here, and if it was
    full, the rest read ahead by a thread, at most two pages ahead."""
    rows, events = _read(app, city, after, page)
    if not rows:
        return
    if len(rows) < page:
        yield rows, events
        return
    ahead: queue.Queue[Page | BaseException] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def read(after: int) -> None:
        try:
            while not stop.is_set():
                got = _read(app, city, after, page)
                ahead.put(got)
                if len(got[0]) < page:
                    return
                after = got[0][-1].id
        except BaseException as exc:  # handed to the applying thread, which raises it
            ahead.put(exc)

    reader = threading.Thread(target=read, args=(rows[-1].id,), name=f"log-reader-{city}", daemon=True)
    reader.start()
    try:
        yield rows, events
        while True:
            got = ahead.get()
            if isinstance(got, BaseException):
                raise got
            if got[0]:
                yield got
            if len(got[0]) < page:
                return
    finally:
        stop.set()
        while reader.is_alive():  # a reader blocked on a full queue sees `stop` once it puts
            with contextlib.suppress(queue.Empty):
                ahead.get(timeout=0.05)
        reader.join()


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
