"""Fixtures for the rights tests: one city application per test, on real SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.city import CityApplication
from services.demo.local_federation import LocalFederation
from tests.grpc.conftest import in_process_federation
from tests.rights.apps import city_app


@pytest.fixture
def vienna(tmp_path: Path) -> Iterator[CityApplication]:
    app = city_app("vienna", tmp_path)
    yield app
    app.close()


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    """Vienna and Sint-Niklaas nodes in this process, over mutual TLS on loopback."""
    path = Path(tmp_path_factory.mktemp("fed"))
    with in_process_federation(path, ["vienna", "sint_niklaas"], conserved=False) as f:
        yield f
