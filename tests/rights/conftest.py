"""Fixtures for the rights tests: one city application per test, on real SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.city import CityApplication
from services.grpc.local_federation import LocalFederation
from tests.kafka.conftest import Broker, start_broker, stop_broker
from tests.rights.apps import city_app


@pytest.fixture
def broker() -> Iterator[Broker]:
    """A real Kafka-protocol broker (tansu), as in the event-path tests."""
    b = start_broker()
    yield b
    stop_broker(b)


@pytest.fixture
def vienna(tmp_path: Path) -> Iterator[CityApplication]:
    app = city_app("vienna", tmp_path)
    yield app
    app.close()


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    """Vienna and Sint-Niklaas nodes in this process, over mutual TLS on loopback."""
    f = LocalFederation(Path(tmp_path_factory.mktemp("fed")), ["vienna", "sint_niklaas"])
    for city in f.cities:
        f.start_in_process(city)
    yield f
    f.stop_all()
