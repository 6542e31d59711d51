"""The event path under failure: broker away, duplicates, a projection killed mid-batch, a reset topic."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaProducer

from projections.balances import balances
from projections.integration import to_integration_event
from projections.kafka_source import KafkaSource, OffsetBeyondLog
from projections.log_source import catch_up_log
from projections.projector import Projector
from projections.store import Store
from services.city import CityApplication
from services.relay import Relay
from tests.kafka.activity import balances_from_app, exact_by_key, season
from tests.kafka.conftest import Broker, snapshot, start_broker, stop_broker

ROOT = Path(__file__).resolve().parents[2]


def project(bootstrap: str, store: Store) -> int:
    source = KafkaSource(bootstrap, ["bologna"], Projector(store))
    try:
        return source.catch_up()
    finally:
        source.close()


def first_public_after(app: CityApplication, after: int) -> int:
    """The notification id of the first event after `after` that the stream publishes."""
    for n in app.recorder.select_notifications(start=after, limit=100_000, inclusive_of_start=False):
        if to_integration_event("bologna", n.id, app.mapper.to_domain_event(n), app.pseudonym) is not None:
            return n.id
    raise AssertionError(f"no public event after {after}")


def relay_all(relay: Relay, app: CityApplication) -> None:
    """Publish until the relay's durable position reaches the end of the log."""
    end = app.recorder.max_notification_id()
    for _ in range(50):
        if relay.position == end:
            return
        relay.publish_once(limit=100_000)
    raise AssertionError(f"relay stuck at {relay.position} of {end}")


def test_broker_unreachable_mid_stream_loses_nothing(
    broker: Broker, bologna: CityApplication, read_store: Store, fresh_store: Store
) -> None:
    relay = Relay(bologna, "bologna", broker.bootstrap, read_store, timeout_ms=1500)
    first = season(bologna, "before")
    relay_all(relay, bologna)
    published_before = relay.position

    broker.pause()
    try:
        # Commands never wait on Kafka: they succeed while the broker is away.
        during = season(bologna, "during")
        assert relay.publish_once(limit=100_000) == 0
        # Nothing public recorded without an acknowledgement: the position may pass internal
        # events (they are never sent), never the first public one.
        assert published_before <= relay.position < first_public_after(bologna, published_before)
    finally:
        broker.resume()
    relay_all(relay, bologna)
    relay.close()

    project(broker.bootstrap, read_store)
    with read_store.transaction() as tx:
        assert balances(tx, "bologna") == balances_from_app(bologna, first + during)
    project(broker.bootstrap, fresh_store)  # a rebuild from offset zero
    assert snapshot(read_store) == snapshot(fresh_store)


def test_stored_offset_beyond_a_reset_topic_stops_with_a_clear_error(
    broker: Broker, bologna: CityApplication, read_store: Store
) -> None:
    season(bologna, "reset")
    # As many partitions as the replacement broker auto-creates below, so the
    # projection finds every partition it read and meets the offset check.
    relay = Relay(bologna, "bologna", broker.bootstrap, read_store, partitions=3, timeout_ms=1500)
    relay_all(relay, bologna)
    relay.close()
    project(broker.bootstrap, read_store)

    replacement = start_broker()  # the topic starts again from offset zero, with one event
    try:
        producer = KafkaProducer(bootstrap_servers=replacement.bootstrap, acks="all")
        producer.send("civfed.bologna.events", b"not yet a civfed event").get(10)
        producer.close()
        before = snapshot(read_store)
        with pytest.raises(OffsetBeyondLog, match="beyond the end of the log"):
            KafkaSource(replacement.bootstrap, ["bologna"], Projector(read_store))
        assert snapshot(read_store) == before
    finally:
        stop_broker(replacement)


def test_duplicated_deliveries_never_double_a_count(
    broker: Broker, bologna: CityApplication, read_store: Store, fresh_store: Store
) -> None:
    wallets = season(bologna, "dup")
    relay = Relay(bologna, "bologna", broker.bootstrap, read_store, timeout_ms=3000)
    relay_all(relay, bologna)
    with read_store.transaction() as tx:
        tx.execute("UPDATE relay_positions SET notification_id = 0")  # as if the ack was never recorded
    relay_all(relay, bologna)  # every event is now on the topic twice
    relay.close()

    applied = project(broker.bootstrap, read_store)
    with read_store.transaction() as tx:
        assert balances(tx, "bologna") == balances_from_app(bologna, wallets)
        # Six people spent 1 token each at the one "food" shop, whichever partition came first.
        spent = exact_by_key(tx, "bologna", "spent_by_category")
    assert spent == {"food": (6, 6)}
    # A clean single delivery from the notification log agrees row for row, and
    # applied exactly as many events as the doubled topic did.
    assert catch_up_log(Projector(fresh_store), bologna, "bologna") == applied
    assert snapshot(read_store) == snapshot(fresh_store)


def test_projection_killed_mid_batch_resumes_exactly_once(
    broker: Broker, bologna: CityApplication, read_store: Store, fresh_store: Store
) -> None:
    season(bologna, "kill", people=15, days=4)
    relay = Relay(bologna, "bologna", broker.bootstrap, read_store, timeout_ms=3000)
    relay_all(relay, bologna)
    relay.close()

    # A separate process projects and is SIGKILLed after 40 events of its first
    # batch have changed rows inside the open transaction.
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    script = ROOT / "tests" / "kafka" / "killed_projector.py"
    args = [sys.executable, str(script), broker.bootstrap, read_store.url, read_store.schema, "40"]
    done = subprocess.run(args, env=env, cwd=ROOT, timeout=120, capture_output=True)
    assert done.returncode == -9, done.stderr.decode()[-2000:]

    with read_store.transaction() as tx:
        positions = tx.all("SELECT position FROM rm_positions")
        rows = tx.one("SELECT COUNT(*) FROM rm_balances")
    assert positions == [] and rows == (0,)  # the whole batch rolled back, positions too

    project(broker.bootstrap, read_store)  # the restarted projection
    project(broker.bootstrap, fresh_store)
    assert snapshot(read_store) == snapshot(fresh_store)


def test_relay_started_while_broker_down_catches_up(
    broker: Broker, bologna: CityApplication, read_store: Store
) -> None:
    wallets = season(bologna, "late")
    broker.pause()
    try:
        relay = Relay(bologna, "bologna", broker.bootstrap, read_store, timeout_ms=1500)
        assert relay.publish_once(limit=100_000) == 0
        assert relay.position == 0
    finally:
        broker.resume()
    relay_all(relay, bologna)
    relay.close()
    project(broker.bootstrap, read_store)
    with read_store.transaction() as tx:
        assert balances(tx, "bologna") == balances_from_app(bologna, wallets)
