"""Rome's tourist wallets: spending until the validity end; then the same final spend window
as a holder who leaves, a recorded lapse, and erasure by the retention run on schedule."""

from __future__ import annotations

import datetime as dt
from uuid import UUID

import pytest
from citykit import Cities, event_names, merchant, open_wallet

from aggregates.errors import WalletClosed, WalletExpired
from services.city import CityApplication
from services.city_totals import city_totals
from services.privacy.retention import run_retention

DATE = "2026-05-04"


def earn(app: CityApplication, key: str, wallet: UUID) -> int:
    fields = {"action": "recycling_drop_off", "date": DATE}
    return int(app.execute(app.record_activity(key, wallet, "eco_action", fields))["amount"])


def tourist(cities: Cities, app: CityApplication, days: int = 3) -> tuple[UUID, dt.datetime]:
    end = cities.clock() + dt.timedelta(days=days)
    w = open_wallet(app, "t1", "tourist", valid_until=end)
    earn(app, "a1", w)
    earn(app, "a2", w)
    return w, end


def test_a_tourist_spends_until_the_validity_end(cities: Cities) -> None:
    app = cities.open("rome")
    w, end = tourist(cities, app)
    shop = merchant(app, "m1")
    cities.clock.now = end - dt.timedelta(seconds=1)
    assert app.execute(app.spend("s1", w, shop, 5, "r1"))["spent"] == 5
    assert app.wallet(w).balance == 15


def test_after_expiry_the_final_spend_window_then_a_recorded_lapse(cities: Cities) -> None:
    app = cities.open("rome")
    days = app.city.config.final_spend_days
    w, end = tourist(cities, app)
    shop = merchant(app, "m1")
    # Past the validity end: no more earning, but the remainder can still be spent...
    cities.clock.now = end + dt.timedelta(hours=1)
    with pytest.raises(WalletExpired):
        earn(app, "a3", w)
    assert app.execute(app.spend("s1", w, shop, 5, "r1"))["spent"] == 5
    # ...and the holder can close it (it is already in its window, which runs from the end).
    out = app.execute(app.close_wallet("c1", w))
    window_end = (end + dt.timedelta(days=days)).isoformat()
    assert out == {"closed": False, "balance": 15, "final_spend_until": window_end}
    assert event_names(app, w)[-1] == "Expired"
    # The window ends: the retention run closes the wallet and the remainder lapses, as an event.
    cities.clock.now = end + dt.timedelta(days=days)
    with pytest.raises(WalletClosed):
        app.execute(app.spend("s2", w, shop, 1, "r2"))
    assert run_retention(app)["closed"] == 1
    assert event_names(app, w)[-2:] == ["Closed", "Lapsed"]
    assert app.wallet(w).balance == 0
    totals = city_totals(app, "rome")
    assert (totals.issued, totals.spent, totals.lapsed, totals.outstanding) == (20, 5, 15, 0)


def test_an_expired_wallet_nobody_touched_is_expired_and_lapses_by_the_retention_run(cities: Cities) -> None:
    app = cities.open("rome")
    days = app.city.config.final_spend_days
    w, end = tourist(cities, app)
    cities.clock.now = end + dt.timedelta(days=1)
    report = run_retention(app)
    assert report["expired"] == 1 and report["closed"] == 0
    assert event_names(app, w)[-1] == "Expired"
    assert app.wallet(w).spend_until == end + dt.timedelta(days=days)
    cities.clock.now = end + dt.timedelta(days=days, seconds=1)
    assert run_retention(app)["closed"] == 1
    assert event_names(app, w)[-1] == "Lapsed"
    assert city_totals(app, "rome").lapsed == 20


def test_retention_erases_a_closed_tourist_wallet_on_schedule(cities: Cities) -> None:
    app = cities.open("rome")
    cfg = app.city.config
    w, end = tourist(cities, app)
    resident = open_wallet(app, "r1")
    closes = end + dt.timedelta(days=cfg.final_spend_days)
    cities.clock.now = closes
    assert run_retention(app)["erased"] == 0  # expired and closed, not yet erased
    assert app.wallet(w).closed and not app.wallet(w).erased
    cities.clock.now = closes + dt.timedelta(days=cfg.tourist_erase_after_days) - dt.timedelta(seconds=1)
    assert run_retention(app)["erased"] == 0
    cities.clock.now = closes + dt.timedelta(days=cfg.tourist_erase_after_days)
    assert run_retention(app)["erased"] == 1
    assert app.wallet(w).erased
    assert not app.wallet(resident).erased  # residents wait for the city's own retention policy
    assert run_retention(app)["erased"] == 0  # erased once
    assert city_totals(app, "rome").lapsed == 20


def test_closing_after_the_window_ended_closes_at_once_and_lapses(cities: Cities) -> None:
    app = cities.open("rome")
    w, end = tourist(cities, app)
    cities.clock.now = end + dt.timedelta(days=app.city.config.final_spend_days)
    out = app.execute(app.close_wallet("c1", w))
    assert out == {"closed": True, "balance": 0, "final_spend_until": None}
    assert event_names(app, w)[-3:] == ["Expired", "Closed", "Lapsed"]
    assert city_totals(app, "rome").lapsed == 20
