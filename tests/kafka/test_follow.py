"""The embedded projection following city logs: woken by PostgreSQL's NOTIFY, polling SQLite."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from projections.balances import balances
from projections.log_source import follow_logs
from projections.projector import Projector
from projections.store import Store
from services.city import CityApplication
from services.settings.cities import load_city, load_settings
from tests.conftest import PG_URL
from tests.kafka.activity import balances_from_app, season


def following(
    store: Store, app: CityApplication, **timing: float
) -> tuple[threading.Event, threading.Thread]:
    """`civfed project --follow` in a thread, with its own read-model connection."""
    stop = threading.Event()

    def run() -> None:
        follow_logs(Projector(store), [("bologna", app)], stop, **timing)

    thread = threading.Thread(target=run)
    thread.start()
    return stop, thread


def within(seconds: float, check: Callable[[], bool]) -> float:
    """How long `check` took to hold; fails after `seconds`."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < seconds, "not reached in time"
        time.sleep(0.05)
    return time.monotonic() - start


def test_postgres_notify_wakes_the_follower(bologna: CityApplication, read_store: Store) -> None:
    reader = Store(PG_URL, read_store.schema)
    watcher = Projector(reader)  # creates the tables before the follower starts
    # Neither polling nor the fallback could fire within this test: only a notification can.
    stop, thread = following(read_store, bologna, interval=600, fallback=600)
    try:
        within(10, lambda: bool(watcher.positions("log:bologna")))  # the first catch-up
        for round_ in range(3):
            wallets = season(bologna, f"n{round_}", people=3, days=1)
            expected = balances_from_app(bologna, wallets)

            def shown(expected: dict[str, tuple[int, int]] = expected) -> bool:
                with reader.transaction() as tx:
                    found = balances(tx, "bologna")
                return all(found.get(w) == b for w, b in expected.items())

            assert within(10, shown) < 10
    finally:
        stop.set()
        thread.join(timeout=5)
        reader.close()
    assert not thread.is_alive()  # stop ends it promptly, though it sleeps on notifications


def test_sqlite_logs_are_polled(tmp_path: Path) -> None:
    settings = load_settings({"CIVFED_DATA_DIR": str(tmp_path)})
    app = CityApplication(load_city("bologna"), settings.eventsourcing_env("bologna"))
    store = Store(f"sqlite:///{tmp_path / 'rm.sqlite'}")
    reader = Store(f"sqlite:///{tmp_path / 'rm.sqlite'}")
    stop, thread = following(store, app, interval=0.2)
    try:
        wallets = season(app, "poll", people=3, days=1)

        def shown() -> bool:
            with reader.transaction() as tx:
                return balances(tx, "bologna") == balances_from_app(app, wallets)

        within(10, shown)
    finally:
        stop.set()
        thread.join(timeout=5)
        reader.close()
        app.close()
    assert not thread.is_alive()
