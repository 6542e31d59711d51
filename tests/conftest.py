"""Shared fixtures: real PostgreSQL schemas, and the rule that CI never skips them."""

from __future__ import annotations

import base64
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.kafka.conftest import Broker

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

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    created.append(schema)
    return schema


def write_kek(path: Path) -> Path:
    """A fresh key-store key file, as `openssl rand -base64 32` writes one."""
    path.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def pg_env(pg_schemas: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A fresh schema, and the key-store key that PostgreSQL requires."""
    kek = write_kek(tmp_path_factory.mktemp("kek") / "keystore.key")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": "test",
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": "5432",
        "POSTGRES_USER": "postgres",
        "POSTGRES_SCHEMA": new_schema(pg_schemas),
        "CIVFED_KEYSTORE_KEY_FILE": str(kek),
    }


@pytest.fixture
def broker() -> Iterator[Broker]:
    """A real Kafka-protocol broker (tansu) for one test."""
    from tests.kafka.conftest import start_broker, stop_broker  # that module imports this one

    b = start_broker()
    yield b
    stop_broker(b)
