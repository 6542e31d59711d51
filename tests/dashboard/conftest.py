"""A dashboard served over HTTP from a small demo data set."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from projections.store import Store
from services.cli import main
from services.clock import Clock, utcnow
from services.dashboard.app import create_app
from services.settings.cities import load_settings
from services.settings.disclosure import disclosure_policies
from services.settings.stream import load_stream_settings, read_model_store


@pytest.fixture(scope="session")
def dashboard_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("demo")
    # The demo builds the read models from the notification logs and exits.
    assert main(["demo", "--data-dir", str(data), "--scale", "0.2", "--json"]) == 0
    settings = load_settings({"CIVFED_DATA_DIR": str(data)})
    with serving(read_model_store(settings, load_stream_settings({}))) as url:
        yield url


@contextmanager
def serving(store: Store, clock: Clock = utcnow) -> Iterator[str]:
    """The dashboard over `store` on a loopback port the kernel picks, until the block ends;
    `clock` decides which days are closed."""
    sock = socket.create_server(("127.0.0.1", 0))  # bound and held: the server takes it as it is
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(store, disclosure_policies(), clock), log_level="warning")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "dashboard did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def empty_url(tmp_path: Path) -> Iterator[str]:
    """The dashboard over a read-model store no projection has touched yet."""
    with serving(Store(f"sqlite:///{tmp_path / 'read_models.sqlite'}")) as url:
        yield url


# Each page as headless Chromium draws it, written by every run of tests/dashboard (README).
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
