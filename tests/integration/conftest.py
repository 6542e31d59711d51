"""City applications on real stores: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from citykit import Cities

from tests.conftest import new_schema


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "sqlite":
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "CIVFED_DATA_DIR": str(tmp_path / "data")}
    pg: dict[str, str] = request.getfixturevalue("pg_env")
    return dict(pg)


@pytest.fixture
def cities(store_env: dict[str, str]) -> Iterator[Cities]:
    c = Cities(store_env)
    yield c
    c.close_all()


@pytest.fixture
def other_cities(
    request: pytest.FixtureRequest, store_env: dict[str, str], tmp_path: Path
) -> Iterator[Cities]:
    """A second, empty store on the same backend, to compare two ways of running."""
    if store_env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
        env = {**store_env, "CIVFED_DATA_DIR": str(tmp_path / "other")}
    else:
        env = {**store_env, "POSTGRES_SCHEMA": new_schema(request.getfixturevalue("pg_schemas"))}
    c = Cities(env)
    yield c
    c.close_all()
