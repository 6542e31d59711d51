"""The relay creates its topic at start-up with the configured shape, and never alters one.

tansu answers CreateTopics and DescribeTopics like Apache Kafka; on one
node it records the requested replication factor without placing the replicas.
"""

from __future__ import annotations

from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer

from projections.store import Store
from services.city import CityApplication
from services.relay import Relay
from services.settings.errors import ConfigError
from services.settings.stream import kafka_client_kwargs, load_stream_settings
from tests.kafka.activity import season
from tests.kafka.conftest import Broker

TOPIC = "civfed.bologna.events"


def described(bootstrap: str) -> dict[str, Any]:
    stream = load_stream_settings({"CIVFED_KAFKA_BOOTSTRAP": bootstrap})
    admin = KafkaAdminClient(**kafka_client_kwargs(stream))
    try:
        [topic] = admin.describe_topics([TOPIC])
    finally:
        admin.close()
    assert topic["error_code"] == 0, topic
    return topic


def partitions(bootstrap: str) -> set[int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return set(consumer.partitions_for_topic(TOPIC) or ())
    finally:
        consumer.close()


def test_a_relay_on_a_fresh_broker_creates_its_topic_from_the_settings(
    broker: Broker, bologna: CityApplication, read_store: Store
) -> None:
    stream = load_stream_settings(
        {"CIVFED_KAFKA_BOOTSTRAP": broker.bootstrap, "CIVFED_KAFKA_TOPIC_PARTITIONS": "5"}
    )
    assert stream.CIVFED_KAFKA_REPLICATION_FACTOR == 1  # the default, for one-node brokers
    assert partitions(broker.bootstrap) == set()
    relay = Relay(bologna, "bologna", stream, read_store)
    assert relay.ensure_topic()  # at start-up, before any event is published
    relay.close()
    assert partitions(broker.bootstrap) == {0, 1, 2, 3, 4}
    topic = described(broker.bootstrap)
    assert [len(p["replica_nodes"]) for p in topic["partitions"]] == [1] * 5


def test_an_existing_topic_is_kept_as_it_is(
    broker: Broker, bologna: CityApplication, read_store: Store
) -> None:
    first = Relay(bologna, "bologna", broker.bootstrap, read_store, partitions=2)
    assert first.ensure_topic()
    first.close()
    season(bologna, "kept", people=2, days=1)
    # A later relay configured for more partitions finds the topic and leaves it alone.
    second = Relay(bologna, "bologna", broker.bootstrap, read_store, partitions=7)
    assert second.ensure_topic()
    assert second.publish_once(limit=100_000) > 0
    second.close()
    assert partitions(broker.bootstrap) == {0, 1}


def test_a_relay_whose_broker_is_down_starts_and_creates_the_topic_later(
    broker: Broker, bologna: CityApplication, read_store: Store
) -> None:
    stream = load_stream_settings(
        {"CIVFED_KAFKA_BOOTSTRAP": broker.bootstrap, "CIVFED_KAFKA_TOPIC_PARTITIONS": "4"}
    )
    season(bologna, "down", people=2, days=1)
    broker.pause()
    try:
        relay = Relay(bologna, "bologna", stream, read_store, timeout_ms=1500)
        assert relay.ensure_topic() is False  # logged, not raised
        assert relay.publish_once(limit=100_000) == 0
    finally:
        broker.resume()
    assert relay.publish_once(limit=100_000) > 0  # publishing creates the topic first
    relay.close()
    assert partitions(broker.bootstrap) == {0, 1, 2, 3}


def test_the_configured_replication_factor_is_requested(
    broker: Broker, bologna: CityApplication, read_store: Store
) -> None:
    """As the Kubernetes manifests set it. Apache Kafka refuses more replicas than
    brokers; tansu accepts and lists its one node once per requested replica."""
    env = {
        "CIVFED_KAFKA_BOOTSTRAP": broker.bootstrap,
        "CIVFED_KAFKA_TOPIC_PARTITIONS": "2",
        "CIVFED_KAFKA_REPLICATION_FACTOR": "3",
    }
    relay = Relay(bologna, "bologna", load_stream_settings(env), read_store)
    assert relay.ensure_topic()
    relay.close()
    topic = described(broker.bootstrap)
    assert [(p["partition_index"], len(p["replica_nodes"])) for p in topic["partitions"]] == [(0, 3), (1, 3)]


def test_topics_keep_messages_for_the_days_the_city_sets_and_never_forever(
    broker: Broker, bologna: CityApplication, read_store: Store
) -> None:
    assert load_stream_settings({}).CIVFED_KAFKA_TOPIC_RETENTION_DAYS == 14
    for bad in ("0", "-1", "366", "forever"):
        with pytest.raises(ConfigError, match="CIVFED_KAFKA_TOPIC_RETENTION_DAYS"):
            load_stream_settings({"CIVFED_KAFKA_TOPIC_RETENTION_DAYS": bad})
    env = {"CIVFED_KAFKA_BOOTSTRAP": broker.bootstrap, "CIVFED_KAFKA_TOPIC_RETENTION_DAYS": "7"}
    first = Relay(bologna, "bologna", load_stream_settings(env), read_store)
    assert first.topic_configs() == {"retention.ms": str(7 * 86_400_000), "cleanup.policy": "delete"}
    assert first.ensure_topic()  # created with that retention
    first.close()
    # A relay started later with another retention sets it on the existing topic.
    env["CIVFED_KAFKA_TOPIC_RETENTION_DAYS"] = "3"
    second = Relay(bologna, "bologna", load_stream_settings(env), read_store)
    assert second.topic_configs()["retention.ms"] == str(3 * 86_400_000)
    assert second.ensure_topic()
    second.close()
