"""A long-lived wallet is read from its latest snapshot, sealed like the events it copies."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from services import commands as c
from services.city import CityApplication
from tests.integration.vienna_app import long_lived, open_app

EVERY = 5


@pytest.fixture
def app(tmp_path: Path) -> Iterator[CityApplication]:
    city = open_app(tmp_path, EVERY)
    yield city
    city.close()


def test_a_wallet_read_from_its_snapshot_is_the_wallet_its_events_make(
    app: CityApplication, tmp_path: Path
) -> None:
    wallet = long_lived(app, 12)
    assert app.snapshots is not None
    versions = [s.originator_version for s in app.snapshots.get(wallet)]
    assert versions == [5, 10]
    # Not from the cache: a fresh application reads the snapshot and two events after it.
    fresh = open_app(tmp_path, EVERY)
    replay = open_app(tmp_path, 0)  # no snapshots: every event replayed
    try:
        assert replay.snapshots is None
        from_snapshot, from_events = fresh.wallet(wallet), replay.wallet(wallet)
        assert from_snapshot.version == from_events.version == 13
        assert vars(from_snapshot) == vars(from_events)
        assert fresh.balance_view(wallet) == replay.balance_view(wallet)
    finally:
        fresh.close()
        replay.close()


def test_a_snapshot_keeps_activity_dates_sealed_and_unreadable_after_erasure(
    app: CityApplication, tmp_path: Path
) -> None:
    wallet = long_lived(app, 5)
    today = app.clock().date().isoformat()
    with sqlite3.connect(tmp_path / "vienna.sqlite") as db:
        states = [bytes(r[0]) for r in db.execute("SELECT state FROM stored_snapshots")]
    # The activity date as a key of `earned` (timestamps carry the day too, with a time).
    in_clear = f'"{today}"'.encode()
    assert states and all(b'"earned"' in s and in_clear not in s for s in states)
    assert app.wallet(wallet).earned  # opened with the wallet's key
    app.execute(c.EraseWallet("erase", wallet, "asked to be forgotten"))
    assert app.keys is not None
    app.keys.erase([wallet])
    fresh = open_app(tmp_path, EVERY)
    try:
        erased = fresh.wallet(wallet)
        assert erased.erased and erased.closed
        assert today not in str(erased.earned) and erased.balance == 0
    finally:
        fresh.close()
