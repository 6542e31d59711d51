"""Two city nodes in this process, on loopback over mutual TLS (real gRPC, no mocks)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.grpc.local_federation import LocalFederation
from tests.e2e.cluster import conservation


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    f = LocalFederation(Path(tmp_path_factory.mktemp("fed")), ["vienna", "sint_niklaas"])
    for city in f.cities:
        f.start_in_process(city)
    yield f
    # Token conservation in every city once the module's tests are done.
    for city, running in f.running.items():
        conservation(running.node.app, city)
    f.stop_all()
