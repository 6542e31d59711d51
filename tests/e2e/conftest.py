"""Real city nodes as `civfed serve` processes, started fresh for each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster import CITIES, Cluster, conservation

from services.grpc.local_federation import LocalFederation


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    fed = LocalFederation(tmp_path, CITIES, hold_seconds=6, sweep_seconds=0.3)
    c = Cluster(fed)
    for city in ("vienna", "rome", "sint_niklaas"):
        c.start(city)
    yield c
    for s in c._stubs.values():
        s.close()
    for city in list(c.procs):
        assert c.stop(city) == 0, (fed.folder / f"{city}.log").read_text()
    # Token conservation, in every city, after every test.
    for city in ("vienna", "rome", "sint_niklaas"):
        app = c.open_app(city)
        try:
            conservation(app, city)
        finally:
            app.close()
