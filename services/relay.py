"""The outbox relay: a city's notification log to `civfed.<city>.events`.

Commands never wait on Kafka: they only write the event store. The relay reads
the log from its own durable position, publishes with acks=all keyed by
the wallet's pseudonym, or the aggregate id where no wallet owns it (so per-wallet
order holds), and records the new position only after the broker acknowledged. If
the broker is away, events wait in the store.
Delivery is at-least-once; consumers de-duplicate on (city, notification id).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from civfed.v1 import events_pb2
from projections.integration import OWNED_BY_A_WALLET, CityLog, integration_events, partition_key, topic_for
from projections.store import Store
from services.settings.stream import StreamSettings, kafka_client_kwargs, kafka_settings, retention_ms

log = logging.getLogger(__name__)

# Rows converted at once: enough for one key-store query per chunk, few enough that the
# producer is sending while the rest of a large page is converted.
CHUNK = 1000

RELAY_DDL = (
    "CREATE TABLE IF NOT EXISTS relay_positions (city TEXT NOT NULL, topic TEXT NOT NULL, "
    "notification_id BIGINT NOT NULL, PRIMARY KEY (city, topic))"
)


class Relay:
    def __init__(
        self,
        app: CityLog,
        city: str,
        kafka: StreamSettings | str,
        store: Store,
        partitions: int | None = None,
        timeout_ms: int | None = None,
        replication: int | None = None,
    ) -> None:
        """`kafka`: the stream settings, or a bare bootstrap address (PLAINTEXT);
        the other arguments override the settings' values."""
        self.app, self.city, self.store = app, city, store
        self.kafka = kafka_settings(kafka)
        self.topic = topic_for(city)
        self.partitions = partitions or self.kafka.CIVFED_KAFKA_TOPIC_PARTITIONS
        self.replication = replication or self.kafka.CIVFED_KAFKA_REPLICATION_FACTOR
        self.timeout_ms = timeout_ms or self.kafka.CIVFED_RELAY_TIMEOUT_MS
        self._producer: Any = None
        self._topic_ready = False
        with store.transaction() as tx:
            tx.execute(RELAY_DDL)

    @property
    def position(self) -> int:
        return relay_position(self.store, self.city, self.topic)

    def _record(self, notification_id: int) -> None:
        with self.store.transaction() as tx:
            tx.execute(
                "INSERT INTO relay_positions VALUES (?, ?, ?) ON CONFLICT (city, topic) "
                "DO UPDATE SET notification_id = excluded.notification_id",
                (self.city, self.topic, notification_id),
            )

    def _client_kwargs(self) -> dict[str, Any]:
        timeouts = {"request_timeout_ms": self.timeout_ms, "bootstrap_timeout_ms": self.timeout_ms}
        return {**kafka_client_kwargs(self.kafka), **timeouts}

    def topic_configs(self) -> dict[str, str]:
        """The settings the topic is created with, and the retention kept on an existing one."""
        return {"retention.ms": str(retention_ms(self.kafka)), "cleanup.policy": "delete"}

    def ensure_topic(self) -> bool:
        """Create the topic if it is missing; on one that exists, set only its retention.

        Returns whether the topic is known to exist. A broker that is down is
        logged, not raised: the relay starts anyway and tries again when it publishes.
        """
        if self._topic_ready:
            return True
        try:
            admin = KafkaAdminClient(**self._client_kwargs())
        except KafkaError as exc:
            log.warning("relay %s: cannot reach the broker to check %s (%s)", self.city, self.topic, exc)
            return False
        try:
            configs = self.topic_configs()
            admin.create_topics(
                [NewTopic(self.topic, self.partitions, self.replication, topic_configs=configs)]
            )
            log.info(
                "relay %s: created %s (%d partitions, %d replicas, retention %s ms)",
                self.city,
                self.topic,
                self.partitions,
                self.replication,
                configs["retention.ms"],
            )
        except TopicAlreadyExistsError:
            # Its partitions as they are (a new count would move aggregates between
            # partitions); its retention as the city sets it, so no message outlives it.
            retention = {"retention.ms": self.topic_configs()["retention.ms"]}
            result = admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, self.topic, configs=retention)]
            )
            outcome = result.get("topic", {}).get(self.topic) if isinstance(result, dict) else None
            if outcome != "OK":
                log.warning(
                    "relay %s: could not set the retention of %s (%s)", self.city, self.topic, outcome
                )
        except KafkaError as exc:
            log.warning("relay %s: could not create %s (%s)", self.city, self.topic, exc)
            return False
        finally:
            with contextlib.suppress(KafkaError):
                admin.close()
        self._topic_ready = True
        return True

    def _connect(self) -> Any:
        if self._producer is None:
            self.ensure_topic()  # a refusal here leaves it to the broker, as before
            self._producer = KafkaProducer(
                **self._client_kwargs(),
                acks="all",
                linger_ms=5,
                max_block_ms=self.timeout_ms,
                delivery_timeout_ms=2 * self.timeout_ms + 1000,
            )
        return self._producer

    def _disconnect(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            # Unsent records are dropped; the stored position still points before them.
            with contextlib.suppress(KafkaError):
                producer.close(timeout=0)

    def publish_once(self, limit: int = 1000) -> int:
        """Publish the next page of the log; returns how many events the broker acknowledged."""
        after = self.position
        rows = self.app.recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)
        if not rows:
            return 0
        sent: list[tuple[int, Any]] = []
        try:
            producer = self._connect()
            for n, event in self._public(rows):
                future = None
                if event is not None:
                    owned = event.type.startswith(OWNED_BY_A_WALLET)
                    owner = self.app.owner_pseudonym(n.originator_id) if owned else None
                    key = partition_key(event, owner)
                    future = producer.send(self.topic, key=key, value=event.SerializeToString())
                sent.append((n.id, future))
            producer.flush(timeout=2 * self.timeout_ms / 1000)
        except KafkaError as exc:
            log.warning("relay %s: broker unavailable (%s); events wait in the store", self.city, exc)
            self._disconnect()
        acked, last = 0, after
        for nid, future in sent:
            if future is not None:
                if not future.is_done or future.failed():
                    break
                acked += 1
            last = nid
        if last > after:
            self._record(last)  # only after the acknowledgement
        if not sent or len(sent) < len(rows) or last < sent[-1][0]:
            self._disconnect()  # a fresh connection for the retry
        return acked

    def _public(self, rows: Sequence[Any]) -> Iterator[tuple[Any, events_pb2.Event | None]]:
        """Each row with its public event, converted a chunk at a time: the producer sends
        one chunk while the next is converted."""
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            yield from zip(chunk, integration_events(self.city, chunk, self.app), strict=True)

    def run(self, stop: threading.Event, interval: float = 0.2) -> None:
        self.ensure_topic()
        while not stop.is_set():
            if self.publish_once() == 0:
                stop.wait(interval)

    def close(self) -> None:
        self._disconnect()


def relay_position(store: Store, city: str, topic: str) -> int:
    """The last notification id the broker acknowledged for `city` on `topic` (0: none)."""
    with store.transaction() as tx:
        row = tx.one(
            "SELECT notification_id FROM relay_positions WHERE city = ? AND topic = ?", (city, topic)
        )
    return int(row[0]) if row else 0
