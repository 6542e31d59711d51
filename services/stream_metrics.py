"""Relay lag and projection lag, measured when Prometheus scrapes.

Measured at scrape time, from the stores and the broker, rather than set by the loops:
a relay or projector that hangs stops updating a gauge of its own, and its lag would look
frozen exactly when it grows. Each scrape opens its own read-model connection (the loops'
connections belong to their threads) and closes it again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from kafka import KafkaConsumer, TopicPartition
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from projections.integration import topic_for
from projections.log_source import log_source
from projections.store import Store, read_positions
from services.relay import relay_position

log = logging.getLogger("civfed.metrics")

Apps = Sequence[tuple[str, Application[UUID]]]


class RelayLag(Collector):
    """Events each city recorded that the broker has not acknowledged yet."""

    def __init__(self, apps: Apps, open_store: Callable[[], Store]) -> None:
        self.apps = apps
        self.open_store = open_store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "civfed_relay_lag_events",
            "Notifications recorded in the city's store but not yet acknowledged by Kafka",
            labels=["city"],
        )
        try:
            with closing(self.open_store()) as store:
                for city, app in self.apps:
                    recorded = app.recorder.max_notification_id() or 0
                    lag.add_metric([city], max(0, recorded - relay_position(store, city, topic_for(city))))
        except Exception:
            log.exception("relay lag not measured this scrape")
            return
        yield lag


class ProjectionLag(Collector):
    """What each source holds that the read models have not applied yet.

    Log sources (`log:<city>`) count notifications; Kafka topics count records, summed over
    partitions."""

    def __init__(
        self,
        open_store: Callable[[], Store],
        apps: Apps = (),
        kafka: Mapping[str, Any] | None = None,
        cities: Sequence[str] = (),
    ) -> None:
        self.open_store = open_store
        self.apps = apps
        self.topics = [topic_for(c) for c in cities] if kafka is not None else []
        self._kafka = kafka
        self._consumer: Any = None
        self._lock = threading.Lock()  # scrapes may overlap; a consumer is not thread-safe

    def _end_offsets(self, topic: str) -> dict[int, int]:
        if self._consumer is None:
            self._consumer = KafkaConsumer(**dict(self._kafka or {}), group_id=None, enable_auto_commit=False)
        parts = [TopicPartition(topic, p) for p in sorted(self._consumer.partitions_for_topic(topic) or ())]
        ends = self._consumer.end_offsets(parts) if parts else {}
        return {tp.partition: int(end) for tp, end in ends.items()}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "civfed_projection_lag_events",
            "Events a source holds that the read models have not applied yet",
            labels=["source"],
        )
        try:
            with self._lock, closing(self.open_store()) as store:
                for city, app in self.apps:
                    source = log_source(city)
                    recorded = app.recorder.max_notification_id() or 0
                    with store.transaction() as tx:
                        position = read_positions(tx, source).get(0, (0, 0))[0]
                    lag.add_metric([source], max(0, recorded - position))
                for topic in self.topics:
                    ends = self._end_offsets(topic)
                    with store.transaction() as tx:
                        positions = read_positions(tx, topic)
                    behind = sum(max(0, end - positions.get(p, (0, 0))[0]) for p, end in ends.items())
                    lag.add_metric([topic], behind)
        except Exception:
            log.exception("projection lag not measured this scrape")
            return
        yield lag

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
