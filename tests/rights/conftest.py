"""Fixtures for the rights tests: one city application per test, on real SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.city import CityApplication
from tests.rights.apps import city_app


@pytest.fixture
def vienna(tmp_path: Path) -> Iterator[CityApplication]:
    app = city_app("vienna", tmp_path)
    yield app
    app.close()
