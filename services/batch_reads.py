"""Many aggregates read in one round trip, for a group of commands.

A group of claims reads a wallet, a daily tally and a receipt per claim. Read one at a
time that is three queries per claim, and on PostgreSQL the queries, not the rules,
set the pace. Here the group's aggregates are read together, in one query on
PostgreSQL or SQLite (one per aggregate with any other recorder).

The writer keeps the aggregates it saved in memory (`HotAggregates`, its own, apart
from the repository's cache that queries read). A group takes each one it needs out
of it, and the query then brings only the events stored after that version (by
another process of the city, say), so nothing stored is ever missed; an aggregate not
held is rebuilt from all its events. Taken out, an aggregate belongs to that group
alone: a refused command or a failed save simply does not give it back, and the next
group rebuilds it from the store. Nothing is copied.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import Application, LRUCache
from eventsourcing.domain import Aggregate, CanMutateProtocol
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder

from aggregates.receipt import Receipt

# Wallets, tallies, the source registry: enough for a city's active wallets of a day.
HOT_AGGREGATES = 20_000


class HotAggregates:
    """Aggregates the writer saved, each held until a group takes it out."""

    def __init__(self, maxsize: int = HOT_AGGREGATES) -> None:
        self._held: LRUCache[UUID, Aggregate] = LRUCache(maxsize=maxsize)

    def take(self, aggregate_id: UUID) -> Aggregate | None:
        try:
            return self._held.get(aggregate_id, evict=True)
        except KeyError:
            return None

    def peek(self, aggregate_id: UUID) -> Aggregate | None:
        """The aggregate held, left held: only for what never changes (a redemption's wallet)."""
        try:
            return self._held.get(aggregate_id)
        except KeyError:
            return None

    def forget(self, aggregate_id: UUID) -> None:
        self.take(aggregate_id)

    def give_back(self, aggregates: Iterable[Aggregate | None]) -> None:
        """After a successful save: the saved state is what is held from now on. Receipts
        are left out: they are read again only when a key is retried."""
        for aggregate in aggregates:
            if aggregate is None or isinstance(aggregate, Receipt) or aggregate.pending_events:
                continue
            # An erased person's state was read while their key still opened it: rebuilt
            # from the store each time instead, it holds only the redaction markers.
            if getattr(aggregate, "erased", False) is not True:
                self._held.put(aggregate.id, aggregate)


def read_many(
    app: Application[UUID], ids: Iterable[UUID], hot: HotAggregates
) -> dict[UUID, Aggregate | None]:
    """Each id's aggregate as stored now, or None if it has no events."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    found = {aggregate_id: hot.take(aggregate_id) for aggregate_id in wanted}
    after = {i: (a.version if a is not None else 0) for i, a in found.items()}
    for aggregate_id, events in _newer_events(app, after).items():
        aggregate: Any = found[aggregate_id]
        for stored in events:
            domain_event = cast(CanMutateProtocol[Any], app.mapper.to_domain_event(stored))
            aggregate = domain_event.mutate(aggregate)
        found[aggregate_id] = aggregate
    return found


def _newer_events(app: Application[UUID], after: dict[UUID, int]) -> dict[UUID, list[StoredEvent]]:
    """Stored events of each id past the version given, in order."""
    recorder: Any = app.recorder
    out: dict[UUID, list[StoredEvent]] = {}
    # Subclasses too: the city's own PostgreSQL recorder (services/pg_events.py) is one.
    if isinstance(recorder, PostgresAggregateRecorder | SQLiteAggregateRecorder):
        select = _select_postgres if isinstance(recorder, PostgresAggregateRecorder) else _select_sqlite
        for e in select(recorder, after):
            out.setdefault(_uuid(e.originator_id), []).append(e)
        return out
    for aggregate_id, version in after.items():
        events = recorder.select_events(aggregate_id, gt=version or None)
        if events:
            out[aggregate_id] = list(events)
    return out


def _select_postgres(recorder: Any, after: dict[UUID, int]) -> list[StoredEvent]:
    from psycopg.sql import SQL, Identifier

    datastore = recorder.datastore
    id_type = datastore.originator_id_type
    statement = SQL(
        "SELECT e.originator_id, e.originator_version, e.topic, e.state "
        "FROM unnest(%s::{id_type}[], %s::bigint[]) AS w(id, v) "
        "JOIN {schema}.{table} e ON e.originator_id = w.id AND e.originator_version > w.v "
        "ORDER BY e.originator_id, e.originator_version"
    ).format(
        id_type=Identifier(id_type),
        schema=Identifier(datastore.schema),
        table=Identifier(recorder.events_table_name),
    )
    ids = [i if id_type == "uuid" else str(i) for i in after]
    with datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(statement, (ids, list(after.values())))
        return [
            StoredEvent(
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            for row in curs.fetchall()
        ]


def _select_sqlite(recorder: Any, after: dict[UUID, int]) -> list[StoredEvent]:
    found: list[StoredEvent] = []
    pairs = list(after.items())
    for start in range(0, len(pairs), 400):  # two parameters each, within SQLite's limit
        chunk = pairs[start : start + 400]
        wanted = ", ".join("(?, ?)" for _ in chunk)
        statement = (
            f"WITH w(id, v) AS (VALUES {wanted}) "
            "SELECT e.originator_id, e.originator_version, e.topic, e.state "
            f"FROM w JOIN {recorder.events_table_name} e "
            "ON e.originator_id = w.id AND e.originator_version > w.v "
            "ORDER BY e.originator_id, e.originator_version"
        )
        params = [p for aggregate_id, version in chunk for p in (aggregate_id.hex, version)]
        with recorder.datastore.transaction(commit=False) as c:
            c.execute(statement, params)
            found.extend(
                StoredEvent(
                    originator_id=recorder.convert_originator_id(row["originator_id"]),
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=row["state"],
                )
                for row in c.fetchall()
            )
    return found


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)
