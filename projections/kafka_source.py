"""The Kafka source: `civfed.<city>.events` by manual partition assignment.

No consumer group: offsets live in the read-model store, written in the same
transaction as the read-model change they produced.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from projections.integration import decode, topic_for
from projections.projector import Delivery, Projector

# Large fetches: a catch-up reads many thousands of events per poll, and each poll is one
# transaction per topic, so fewer, larger batches mean fewer round trips to the store.
FETCH = {
    "max_poll_records": 20_000,
    "max_partition_fetch_bytes": 16 * 1024 * 1024,
    "fetch_max_bytes": 64 * 1024 * 1024,
    "receive_buffer_bytes": 4 * 1024 * 1024,
}


class OffsetBeyondLog(RuntimeError):
    """A stored offset past the end of the topic: the topic was reset or replaced."""


class KafkaSource:
    def __init__(self, client: Mapping[str, Any] | str, cities: Sequence[str], projector: Projector) -> None:
        """`client` holds the Kafka client settings (address, TLS, SASL) that whoever builds
        the source resolved, or a plain bootstrap address."""
        self.projector = projector
        self.topics = [topic_for(c) for c in cities]
        self.applied = 0
        settings = {"bootstrap_servers": client} if isinstance(client, str) else dict(client)
        self.consumer: Any = KafkaConsumer(
            **{**FETCH, **settings},
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="none",  # never jump silently: an out-of-range offset raises
            consumer_timeout_ms=1000,
        )
        self._assign()

    def _assign(self) -> None:
        parts: list[TopicPartition] = []
        for topic in self.topics:
            found = self.consumer.partitions_for_topic(topic) or set()
            stored = self.projector.positions(topic)
            missing = sorted({p for p in stored if p >= 0} - found)
            if missing:
                raise OffsetBeyondLog(
                    f"{topic}: partitions {missing} were read before but are gone; the topic was reset "
                    "or replaced. Run `civfed projections rebuild` to recompute from the cities' stores."
                )
            parts += [TopicPartition(topic, p) for p in sorted(found)]
        positions = {tp: self.projector.positions(tp.topic).get(tp.partition, (0, 0))[0] for tp in parts}
        for tp, position in positions.items():
            self._check_within_log(tp, position)
        self.consumer.assign(parts)
        for tp, position in positions.items():
            if position == 0:
                # Never read: from the oldest message the topic still keeps (retention is finite).
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, position)

    def _check_within_log(self, tp: TopicPartition, position: int) -> None:
        if position == 0:
            return
        start = self.consumer.beginning_offsets([tp])[tp]
        if position < start:
            # Messages the read models never applied are past the topic's retention.
            raise OffsetBeyondLog(
                f"{tp.topic}[{tp.partition}]: stored offset {position} is older than the oldest "
                f"message the topic keeps ({start}). Run `civfed projections rebuild` to recompute "
                "the read models from the cities' stores."
            )
        end = self.consumer.end_offsets([tp])[tp]
        if end >= position:
            return
        # Some brokers report the last batch's base offset + 1 as the end, so
        # confirm by fetching the last record the projection says it applied.
        self.consumer.assign([tp])
        self.consumer.seek(tp, position - 1)
        records = self.consumer.poll(timeout_ms=3000).get(tp, [])
        if not any(r.offset == position - 1 for r in records):
            raise OffsetBeyondLog(
                f"{tp.topic}[{tp.partition}]: stored offset {position} is beyond the end of the log "
                f"({end}); the topic was reset or replaced. Run `civfed projections rebuild` to "
                "recompute the read models from the cities' stores."
            )

    def poll_once(self, timeout_ms: int = 500) -> int:
        """Apply one polled batch, one transaction per topic; returns records seen."""
        batches = self.consumer.poll(timeout_ms=timeout_ms)
        seen = 0
        by_topic: dict[str, list[Delivery]] = {}
        for tp, records in batches.items():
            for r in records:
                seen += 1
                event = decode(r.value)
                by_topic.setdefault(tp.topic, []).append(
                    Delivery(tp.partition, r.offset + 1, event, event.notification_id)
                )
        for topic, deliveries in by_topic.items():
            self.applied += self.projector.apply_batch(topic, deliveries)
        return seen

    def catch_up(self, idle_polls: int = 2) -> int:
        """Poll until `idle_polls` polls in a row bring nothing; returns events applied."""
        before, idle = self.applied, 0
        while idle < idle_polls:
            idle = idle + 1 if self.poll_once() == 0 and self._at_end() else 0
        return self.applied - before

    def _at_end(self) -> bool:
        parts = self.consumer.assignment()
        return all(self.consumer.position(tp) >= self.consumer.end_offsets([tp])[tp] for tp in parts)

    def follow(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.poll_once()

    def close(self) -> None:
        self.consumer.close()


def topic_ends(client: Mapping[str, Any] | str, cities: Sequence[str]) -> dict[str, dict[int, int]]:
    """topic -> partition -> the offset the next message will get (none for a missing topic)."""
    settings = {"bootstrap_servers": client} if isinstance(client, str) else dict(client)
    consumer: Any = KafkaConsumer(**settings, group_id=None, enable_auto_commit=False)
    try:
        out: dict[str, dict[int, int]] = {}
        for topic in (topic_for(c) for c in cities):
            parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            ends = consumer.end_offsets(parts) if parts else {}
            out[topic] = {tp.partition: int(offset) for tp, offset in ends.items()}
        return out
    finally:
        consumer.close()
