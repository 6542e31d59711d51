"""The Kafka source: `civfed.<city>.events` by manual partition assignment.

No consumer group: offsets live in the read-model store, written in the same
transaction as the read-model change they produced.

A reader thread owns the consumer: it polls and decodes the next batches (at most
`AHEAD` polls ahead) while the caller's thread applies the current one, so fetching
and checking records overlaps with writing the read models. The offsets the reader has
reached are never stored: each applied batch stores its own, in its transaction. A batch
that fails to apply stops the reader; the next poll drops what was read ahead and seeks
every partition back to the offsets stored, so nothing is skipped or applied twice.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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


# Polls read ahead of the one being applied.
AHEAD = 2


@dataclass
class _Polled:
    """One poll's records, decoded and grouped by topic."""

    seen: int = 0
    by_topic: dict[str, list[Delivery]] = field(default_factory=dict)
    at_end: bool = False  # nothing came, and every partition was read to its end
    error: BaseException | None = None


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
        self._ahead: queue.Queue[_Polled] = queue.Queue(maxsize=AHEAD)
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._reseek = False  # a batch failed: what was read ahead must be read again
        self._at_end_seen = False

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
        if self._reseek:
            self._stop_reader()
            self._assign()  # back to the stored offsets
            self._reseek = False
        if self._reader is None:
            self._start_reader(timeout_ms)
        try:
            polled = self._ahead.get(timeout=timeout_ms / 1000 + 1.0)
        except queue.Empty:
            self._at_end_seen = False
            return 0
        try:
            if polled.error is not None:
                raise polled.error
            for topic, deliveries in polled.by_topic.items():
                self.applied += self.projector.apply_batch(topic, deliveries)
        except BaseException:
            self._reseek = True
            raise
        self._at_end_seen = polled.at_end
        return polled.seen

    def _start_reader(self, timeout_ms: int) -> None:
        self._stop.clear()
        self._reader = threading.Thread(
            target=self._read, args=(timeout_ms,), name="kafka-reader", daemon=True
        )
        self._reader.start()

    def _read(self, timeout_ms: int) -> None:
        """The reader thread: poll, decode, hand over; the only user of the consumer meanwhile."""
        while not self._stop.is_set():
            polled = _Polled()
            try:
                for tp, records in self.consumer.poll(timeout_ms=timeout_ms).items():
                    deliveries = polled.by_topic.setdefault(tp.topic, [])
                    for r in records:
                        event = decode(r.value)
                        deliveries.append(Delivery(tp.partition, r.offset + 1, event, event.notification_id))
                    polled.seen += len(records)
                polled.at_end = polled.seen == 0 and self._at_end()
            except BaseException as exc:
                polled.error = exc
            while not self._stop.is_set():
                with contextlib.suppress(queue.Full):
                    self._ahead.put(polled, timeout=0.1)
                    break
            if polled.error is not None:
                return

    def _stop_reader(self) -> None:
        self._stop.set()
        if self._reader is not None:
            self._reader.join()
            self._reader = None
        while True:
            try:
                self._ahead.get_nowait()
            except queue.Empty:
                break

    def catch_up(self, idle_polls: int = 2) -> int:
        """Poll until `idle_polls` polls in a row bring nothing; returns events applied."""
        before, idle = self.applied, 0
        while idle < idle_polls:
            idle = idle + 1 if self.poll_once() == 0 and self._at_end_seen else 0
        return self.applied - before

    def _at_end(self) -> bool:
        parts = self.consumer.assignment()
        return all(self.consumer.position(tp) >= self.consumer.end_offsets([tp])[tp] for tp in parts)

    def follow(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.poll_once()

    def close(self) -> None:
        self._stop_reader()
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
