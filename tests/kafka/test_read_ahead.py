"""The Kafka source reads ahead (in a reader process, or a thread) while a batch is applied.
A batch that fails to apply must not let the batches read after it take effect: the next
poll reads again from the offsets stored with the read models, so every event still counts
exactly once."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from projections import kafka_reader
from projections.balances import balances
from projections.integration import topic_for
from projections.kafka_source import KafkaSource
from projections.projector import Delivery, Projector
from projections.store import Store
from services.city import CityApplication
from services.relay import Relay
from tests.kafka.activity import balances_from_app, season
from tests.kafka.conftest import Broker, snapshot
from tests.kafka.test_failures import project, relay_all


def readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "kafka-reader"]


@pytest.mark.parametrize("process", [True, False], ids=["reader-process", "reader-thread"])
def test_a_batch_that_fails_to_apply_is_read_again_and_counts_once(
    broker: Broker, bologna: CityApplication, read_store: Store, fresh_store: Store, process: bool
) -> None:
    wallets = season(bologna, "ahead", people=12, days=3)
    relay = Relay(bologna, "bologna", broker.bootstrap, read_store, partitions=3, timeout_ms=3000)
    relay_all(relay, bologna)
    relay.close()

    projector = Projector(read_store)
    applied = projector.apply_batch
    calls = 0

    def fail_third(source: str, deliveries: list[Delivery]) -> int:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("the read models' database went away")
        return applied(source, deliveries)

    projector.apply_batch = fail_third  # type: ignore[method-assign]
    # Small polls: many batches, several of them read ahead when the third fails.
    client: dict[str, Any] = {"bootstrap_servers": broker.bootstrap, "max_poll_records": 7}
    source = KafkaSource(client, ["bologna"], projector, process=process)
    try:
        with pytest.raises(RuntimeError, match="went away"):
            source.catch_up()
        stored = projector.positions(topic_for("bologna"))
        assert 0 < sum(position for position, _ in stored.values()) <= 14
        total = source.applied + source.catch_up()
    finally:
        source.close()
    assert readers() == []
    assert calls > 3
    with read_store.transaction() as tx:
        assert balances(tx, "bologna") == balances_from_app(bologna, wallets)
    assert total == project(broker.bootstrap, fresh_store)
    assert snapshot(read_store) == snapshot(fresh_store)


def test_a_catch_up_waits_for_what_the_broker_holds_and_applies_full_batches(
    broker: Broker,
    bologna: CityApplication,
    read_store: Store,
    fresh_store: Store,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Polls of 5 records, batches of up to 20: while the broker holds enough to fill a batch,
    the source waits for the next polls rather than applying each poll alone; what is left
    at the end is applied as it comes. The read models come out as the defaults make them."""
    wallets = season(bologna, "full", people=12, days=3)
    relay = Relay(bologna, "bologna", broker.bootstrap, read_store, partitions=1, timeout_ms=3000)
    relay_all(relay, bologna)
    relay.close()

    expected = project(broker.bootstrap, fresh_store)  # one source's defaults: a poll or two
    monkeypatch.setattr(kafka_reader, "CHUNK", 5)
    projector = Projector(read_store)
    applied = projector.apply_batch
    sizes: list[int] = []

    def counted(source: str, deliveries: list[Delivery]) -> int:
        sizes.append(len(deliveries))
        return applied(source, deliveries)

    projector.apply_batch = counted  # type: ignore[method-assign]
    client: dict[str, Any] = {"bootstrap_servers": broker.bootstrap, "max_poll_records": 20}
    source = KafkaSource(client, ["bologna"], projector, process=False)
    try:
        while source.applied < expected:
            source.poll_once(timeout_ms=10_000)  # a generous bound on each wait
    finally:
        source.close()
    assert sum(sizes) == source.applied == expected > 60
    left = [expected - sum(sizes[:i]) for i in range(len(sizes))]  # before each batch
    assert [size for size, more in zip(sizes, left, strict=True) if more >= 20] == [20] * (expected // 20)
    assert all(0 < size <= 20 for size in sizes)
    with read_store.transaction() as tx:
        assert balances(tx, "bologna") == balances_from_app(bologna, wallets)
    assert snapshot(read_store) == snapshot(fresh_store)
