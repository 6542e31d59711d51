"""A city's events on PostgreSQL, written as plain arrays (services/pg_events.py): stored
byte for byte as eventsourcing's own insert stores them, in order, and a second receipt
for the same key still refused by the store."""

from __future__ import annotations

import random
import uuid
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder

from services import batch_reads
from services.city import CityApplication
from services.pg_events import ArraysApplicationRecorder
from services.settings.cities import load_city, load_settings

pytestmark = pytest.mark.postgres


def city_app(pg_env: dict[str, str]) -> CityApplication:
    env = {**load_settings({}).eventsourcing_env("vienna"), **pg_env, "POSTGRES_PASSWORD": ""}
    return CityApplication(load_city("vienna"), env)


def test_events_are_stored_as_given_in_order_and_read_back(pg_env: dict[str, str]) -> None:
    app = city_app(pg_env)
    try:
        assert isinstance(app.recorder, ArraysApplicationRecorder)
        rnd = random.Random(1)
        # States with every byte value, quotes, backslashes and braces: nothing is escaped away.
        events = [
            StoredEvent(
                uuid.uuid4(), v, f"tests:Thing.Happened{v}", bytes(rnd.randrange(256) for _ in range(n))
            )
            for v, n in ((1, 0), (2, 1), (3, 700), (4, 5000))
        ] + [StoredEvent(uuid.uuid4(), 1, 'a "topic", {x}\\y', b'\\x00"{},\\')]
        before = app.recorder.max_notification_id() or 0
        # Readers that follow the log are woken as before.
        recorder: Any = app.recorder
        listener = psycopg.connect(
            dbname=pg_env["POSTGRES_DBNAME"],
            host=pg_env["POSTGRES_HOST"],
            user=pg_env["POSTGRES_USER"],
            autocommit=True,
        )
        listener.execute(f'LISTEN "{recorder.channel_name}"')
        ids = app.recorder.insert_events(events)
        assert [n.channel for n in listener.notifies(timeout=10, stop_after=1)] == [recorder.channel_name]
        listener.close()
        assert ids == list(range(before + 1, before + 1 + len(events)))
        for e in events:
            assert app.recorder.select_events(e.originator_id) == [e]
        listed = app.recorder.select_notifications(before + 1, len(events))
        assert [(n.originator_id, n.originator_version, n.topic, n.state) for n in listed] == [
            (e.originator_id, e.originator_version, e.topic, e.state) for e in events
        ]
        # The same event again, alone or among new ones: refused, and nothing of the batch kept.
        fresh = StoredEvent(uuid.uuid4(), 1, "tests:Thing.Happened", b"{}")
        with pytest.raises(IntegrityError):
            app.recorder.insert_events([fresh, events[2]])
        assert app.recorder.select_events(fresh.originator_id) == []
        assert app.recorder.max_notification_id() == ids[-1]
    finally:
        app.close()


def test_a_city_reads_what_eventsourcings_own_insert_wrote(pg_env: dict[str, str]) -> None:
    app = city_app(pg_env)
    try:
        consent = app.city.config.consent_versions[-1]
        opened = app.execute_group([app.open_wallet(f"w{i}", "resident", consent) for i in range(3)])
        ids = [uuid.UUID(r["wallet_id"]) for r in opened]  # type: ignore[index]
        # The plain recorder, on the same tables, writes the awards.
        plain = PostgresApplicationRecorder(
            app.recorder.datastore, events_table_name=app.recorder.events_table_name
        )  # type: ignore[attr-defined]
        assert type(plain) is not type(app.recorder)
        today = app.clock().date().isoformat()
        trips = [
            app.record_activity(
                f"t{i}", ids[i % 3], "trip", {"mode": "bike", "distance_m": 120_000 + i, "date": today}
            )
            for i in range(6)
        ]
        fast = app.recorder
        app.recorder = app.events.recorder = plain  # type: ignore[misc]
        try:
            first = app.execute_group(trips[:3])
        finally:
            app.recorder = app.events.recorder = fast  # type: ignore[misc]
        second = app.execute_group(trips[3:])
        again = app.execute_group(trips)
        assert again == first + second
        assert all(isinstance(r, dict) and r["amount"] > 0 for r in again), again
        fresh = city_app(pg_env)
        try:
            assert [fresh.wallet(i).balance for i in ids] == [app.wallet(i).balance for i in ids]
            assert sum(fresh.wallet(i).balance for i in ids) > 0
        finally:
            fresh.close()
    finally:
        app.close()


def test_a_group_reads_its_aggregates_in_one_query_not_one_each(
    pg_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = city_app(pg_env)
    try:
        consent = app.city.config.consent_versions[-1]
        opened = app.execute_group([app.open_wallet(f"w{i}", "resident", consent) for i in range(3)])
        ids = [uuid.UUID(r["wallet_id"]) for r in opened]  # type: ignore[index]

        def one_at_a_time(*args: object, **kwargs: object) -> None:
            raise AssertionError("read one aggregate at a time")

        monkeypatch.setattr(app.recorder, "select_events", one_at_a_time)
        found = batch_reads.read_many(app, [*ids, uuid.uuid4()], batch_reads.HotAggregates())
        assert [found[i].id for i in ids] == ids  # type: ignore[union-attr]
        assert list(found.values())[-1] is None
    finally:
        app.close()
