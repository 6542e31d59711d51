"""The store outlives the process: close a city, reopen it on the same store, nothing is lost."""

from __future__ import annotations

from uuid import UUID

import pytest
from city_scenarios import normalised, run_singly, season
from citykit import Cities, log_types, wallet_state

from services.city_totals import city_totals

CITIES = ["vienna", "rome", "sint_niklaas", "bologna"]


@pytest.mark.parametrize("city", CITIES)
def test_state_survives_reopening(cities: Cities, city: str) -> None:
    app = cities.open(city)
    first, wallets = season(app, run_singly(app))
    states = [wallet_state(app, w) for w in wallets]
    types = log_types(app)
    totals = city_totals(app, city).summary()
    rules = dict(app.rulebook.rules)
    app.close()

    reopened = cities.open(city)
    assert [wallet_state(reopened, w) for w in wallets] == states
    assert reopened.rulebook.rules == rules
    assert city_totals(reopened, city).summary() == totals
    # Reopening republished the unchanged rulebook and wrote nothing.
    assert log_types(reopened) == types
    # Receipts survive too: the whole season replays.
    again, _ = season(reopened, run_singly(reopened))
    assert normalised(again) == normalised(first)
    assert log_types(reopened) == types


def test_vienna_carry_continues_after_reopening(cities: Cities) -> None:
    app = cities.open("vienna")
    w = app.execute(app.open_wallet("w", "resident", "wien-2026-01"))["wallet_id"]
    wallet = UUID(w)
    app.execute(
        app.record_activity(
            "t1", wallet, "trip", {"mode": "bike", "distance_m": 95_000, "date": "2026-05-04"}
        )
    )
    app.close()
    app = cities.open("vienna")
    assert wallet_state(app, wallet)["carried"] == {"mobility-co2": 19_000}
    out = app.execute(
        app.record_activity("t2", wallet, "trip", {"mode": "bike", "distance_m": 5_000, "date": "2026-05-05"})
    )
    assert out["amount"] == 1
    assert wallet_state(app, wallet)["carried"] == {"mobility-co2": 0}
