"""Command → event store → relay → topic → projection → read model, on tansu and PostgreSQL."""

from __future__ import annotations

from projections.balances import balances
from projections.integration import decode
from projections.kafka_source import KafkaSource
from projections.projector import Projector
from projections.store import Store
from services.city import CityApplication
from services.relay import Relay
from tests.kafka.activity import balances_from_app, exact_by_key, season
from tests.kafka.conftest import Broker, relay_once


def test_command_reaches_the_read_model_through_kafka(
    broker: Broker, bologna: CityApplication, read_store: Store
) -> None:
    wallets = season(bologna, "rt")
    relay = Relay(bologna, "bologna", broker.bootstrap, read_store, partitions=3, timeout_ms=3000)
    published = relay.publish_once(limit=100_000)
    assert relay.position == bologna.recorder.max_notification_id()

    source = KafkaSource(broker.bootstrap, ["bologna"], Projector(read_store))
    applied = source.catch_up()
    source.close()
    relay.close()

    assert applied == published > 0
    with read_store.transaction() as tx:
        assert balances(tx, "bologna") == balances_from_app(bologna, wallets)
        exact = exact_by_key(tx, "bologna", "issued_by_rule")
    issued = sum(b for b, _ in balances_from_app(bologna, wallets).values()) + len(wallets[::2])
    assert exact["eco-actions"] == (issued, len(wallets))


def test_published_events_carry_no_personal_data(
    broker: Broker, bologna: CityApplication, read_store: Store
) -> None:
    season(bologna, "pd", people=3, days=1)
    _, records = relay_once(bologna, "bologna", broker.bootstrap, read_store)
    events = [decode(r.value) for r in records]
    allowed = {"amount", "quantity", "cost", "rule_version", "budget"}  # budget: a fund's, the council's
    for e in events:
        assert set(e.payload.amounts) <= allowed
        for name, value in e.payload.refs.items():
            # Free text never crosses: no explanations, names, purchase or activity references.
            assert name not in ("explanation", "name", "purchase_ref", "activity_id", "reason")
            assert " " not in value, (e.type, name, value)
    assert {"Wallet.Opened", "Wallet.Credited", "Merchant.Registered", "Wallet.Spent"} <= {
        e.type for e in events
    }
    assert not any(e.type.startswith("Receipt.") for e in events)
