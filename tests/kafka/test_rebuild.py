"""`civfed projections rebuild` reads the cities' own stores, then Kafka continues from the
topic's end: every event counts exactly once across the two sources.

Topics keep messages for a few days only, so a rebuild can no longer replay a topic from
offset zero. The real tansu broker and PostgreSQL read models throughout.
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from projections.balances import balances
from projections.log_source import catch_up_log
from projections.projector import Projector
from projections.store import Store
from services.city import CityApplication
from services.cli.main import main
from services.cli.stream import rebuild
from services.relay import Relay
from services.settings.cities import load_settings
from services.settings.stream import load_stream_settings
from tests.conftest import PG_URL
from tests.kafka.activity import balances_from_app, season
from tests.kafka.conftest import Broker, snapshot
from tests.kafka.test_failures import project, relay_all


def rebuild_into(store: Store, pg_env: dict[str, str], bootstrap: str) -> int:
    """What `civfed projections rebuild --city bologna` runs, with the read models in
    `store` (the city's own schema, as the settings place them)."""
    assert store.schema == pg_env["POSTGRES_SCHEMA"]
    stream = load_stream_settings({"CIVFED_KAFKA_BOOTSTRAP": bootstrap, "CIVFED_READ_MODELS_URL": PG_URL})
    return rebuild(load_settings(pg_env), stream, ["bologna"])


@pytest.fixture
def models(pg_env: dict[str, str]) -> Iterator[Store]:
    """The read models where the settings put them: beside the city's events."""
    store = Store(PG_URL, pg_env["POSTGRES_SCHEMA"])
    yield store
    store.close()


def public_events(app: CityApplication, after: int) -> int:
    """How many events after notification id `after` reach the read models."""
    from projections.integration import to_integration_event

    rows = app.recorder.select_notifications(start=after, limit=1_000_000, inclusive_of_start=False)
    events = (
        to_integration_event("bologna", n.id, app.mapper.to_domain_event(n), app.pseudonym) for n in rows
    )
    return sum(e is not None for e in events)


def test_a_rebuild_reads_the_store_and_kafka_continues_without_counting_twice(
    broker: Broker,
    bologna: CityApplication,
    read_store: Store,
    models: Store,
    fresh_store: Store,
    pg_env: dict[str, str],
) -> None:
    relay = Relay(bologna, "bologna", broker.bootstrap, read_store, partitions=3, timeout_ms=3000)
    consumed = season(bologna, "consumed")
    relay_all(relay, bologna)
    assert project(broker.bootstrap, models) > 0
    # On the topic but not yet projected; and in the store but not yet on the topic.
    on_topic = season(bologna, "on-topic")
    relay_all(relay, bologna)
    in_store = season(bologna, "in-store", people=10)

    applied = rebuild_into(models, pg_env, broker.bootstrap)
    assert applied == public_events(bologna, 0)
    rebuilt_at = bologna.recorder.max_notification_id()
    # The relay now publishes what the rebuild already read from the store, and more.
    later = season(bologna, "later", people=11)
    relay_all(relay, bologna)
    relay.close()
    assert project(broker.bootstrap, models) == public_events(bologna, rebuilt_at)
    assert project(broker.bootstrap, models) == 0

    everyone = consumed + on_topic + in_store + later
    with models.transaction() as tx:
        assert balances(tx, "bologna") == balances_from_app(bologna, everyone)
    # The same rows as a build from the store alone.
    catch_up_log(Projector(fresh_store), bologna, "bologna")
    assert snapshot(models) == snapshot(fresh_store)


def test_a_rebuild_before_the_topic_exists_lets_kafka_add_only_what_is_new(
    broker: Broker,
    bologna: CityApplication,
    read_store: Store,
    models: Store,
    fresh_store: Store,
    pg_env: dict[str, str],
) -> None:
    first = season(bologna, "first")
    rebuilt = rebuild_into(models, pg_env, broker.bootstrap)  # no topic yet: no partitions known
    assert rebuilt == public_events(bologna, 0)
    rebuilt_at = bologna.recorder.max_notification_id()
    relay = Relay(bologna, "bologna", broker.bootstrap, read_store, partitions=3, timeout_ms=3000)
    relay_all(relay, bologna)  # the whole log, from notification id 1
    second = season(bologna, "second", people=10)
    relay_all(relay, bologna)
    relay.close()
    assert project(broker.bootstrap, models) == public_events(bologna, rebuilt_at)
    with models.transaction() as tx:
        assert balances(tx, "bologna") == balances_from_app(bologna, first + second)
    catch_up_log(Projector(fresh_store), bologna, "bologna")
    assert snapshot(models) == snapshot(fresh_store)


def test_rebuilding_twice_gives_the_same_read_models_and_the_command_line_runs_it(
    broker: Broker,
    bologna: CityApplication,
    models: Store,
    pg_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wallets: list[UUID] = season(bologna, "once", people=10)
    rebuild_into(models, pg_env, broker.bootstrap)
    once = snapshot(models)
    for name, value in {**pg_env, "CIVFED_READ_MODELS_URL": PG_URL}.items():
        monkeypatch.setenv(name, value)
    assert main(["projections", "rebuild", "--city", "bologna", "--kafka", broker.bootstrap]) == 0
    assert f"from the cities' stores: {public_events(bologna, 0)} events" in capsys.readouterr().out
    assert snapshot(models) == once
    with models.transaction() as tx:
        assert balances(tx, "bologna") == balances_from_app(bologna, wallets)
