"""Two city nodes in this process, on loopback over mutual TLS (real gRPC, no mocks)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from services.demo.local_federation import LocalFederation
from tests.e2e.cluster import conservation


@contextmanager
def in_process_federation(path: Path, cities: list[str], conserved: bool = True) -> Iterator[LocalFederation]:
    """City nodes in this process, stopped on exit; with `conserved`, token conservation is
    checked in every city first."""
    f = LocalFederation(path, cities)
    for city in f.cities:
        f.start_in_process(city)
    yield f
    if conserved:
        for city, running in f.running.items():
            conservation(running.node.app, city)
    f.stop_all()


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    # Token conservation in every city once the module's tests are done.
    with in_process_federation(Path(tmp_path_factory.mktemp("fed")), ["vienna", "sint_niklaas"]) as f:
        yield f
