"""Real city nodes as `civfed serve` processes, started fresh for each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster import CITIES, Cluster, conservation

from services.demo.local_federation import LocalFederation
from tests.conftest import new_schema

NODES = ("vienna", "rome", "sint_niklaas")


def running(fed: LocalFederation, nodes: tuple[str, ...]) -> Iterator[Cluster]:
    c = Cluster(fed)
    for city in nodes:
        c.start(city)
    yield c
    for s in c._stubs.values():
        s.close()
    for city in list(c.procs):
        assert c.stop(city) == 0, (fed.folder / f"{city}.log").read_text()
    fed.stop_all()  # the front doors
    # Token conservation, in every city, after every test.
    for city in nodes:
        app = c.open_app(city)
        try:
            conservation(app, city)
        finally:
            app.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    yield from running(
        LocalFederation(tmp_path, CITIES, hold_seconds=6, sweep_seconds=0.3, movable_clock=True), NODES
    )


@pytest.fixture
def pg_cluster(tmp_path: Path, pg_env: dict[str, str], pg_schemas: list[str]) -> Iterator[Cluster]:
    """The same nodes, each city's event store in its own fresh PostgreSQL schema."""
    stores = {city: {**pg_env, "POSTGRES_SCHEMA": new_schema(pg_schemas)} for city in NODES}
    fed = LocalFederation(
        tmp_path, CITIES, hold_seconds=6, sweep_seconds=0.3, city_env=stores, movable_clock=True
    )
    yield from running(fed, NODES)
