"""Every command's idempotency key: same key and parameters replay, other parameters conflict."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import pytest
from city_scenarios import normalised, run_singly, season
from citykit import Cities, log_count, merchant, open_wallet, wallet_state

from aggregates.errors import IdempotencyConflict, InsufficientBalance, InvalidInput, VoucherAlreadyRedeemed
from services.city import CityApplication
from services.unit_of_work import Command

CITIES = ["vienna", "rome", "sint_niklaas", "bologna"]


@pytest.mark.parametrize("city", CITIES)
def test_a_second_run_of_a_season_returns_the_same_results_and_writes_nothing(
    cities: Cities, city: str
) -> None:
    app = cities.open(city)
    first, wallets = season(app, run_singly(app))
    count = log_count(app)
    states = [wallet_state(app, w) for w in wallets]
    second, _ = season(app, run_singly(app))
    assert normalised(second) == normalised(first)
    # Not just alike: the very same ids come back.
    assert [r for r in second if isinstance(r, dict)] == [r for r in first if isinstance(r, dict)]
    assert log_count(app) == count
    assert [wallet_state(app, w) for w in wallets] == states


def _commands(app: CityApplication, w: UUID, shop: UUID) -> list[tuple[Callable[..., Command], tuple, tuple]]:
    """(builder, original arguments after the key, different arguments) for each command."""
    consent = app.city.config.consent_versions[-1]
    activity = {
        "vienna": ("trip", {"mode": "bike", "distance_m": 200_000, "date": "2026-05-04"}),
        "rome": ("eco_action", {"action": "recycling_drop_off", "date": "2026-05-04"}),
        "sint_niklaas": ("bike_engraving", {"subject": "SN-77", "date": "2026-05-04"}),
        "bologna": ("eco_action", {"action": "bike_to_work", "date": "2026-05-04"}),
    }[app.key]
    other_fields = {**activity[1], "date": "2026-05-05"}
    return [
        (app.open_wallet, ("resident", consent), ("business", consent)),
        (app.register_merchant, ("Bar", "food", True), ("Bar", "food", False)),
        (app.record_activity, (w, activity[0], activity[1]), (w, activity[0], other_fields)),
        (app.spend, (w, shop, 1, "r1"), (w, shop, 2, "r1")),
        (app.issue_voucher, (w, 1), (w, 2)),
        (app.close_wallet, (w, "moving away"), (w, "other reason")),
    ]


@pytest.mark.parametrize("city", CITIES)
def test_every_command_replays_and_refuses_other_parameters(cities: Cities, city: str) -> None:
    app = cities.open(city)
    w = open_wallet(app, "w")
    shop = merchant(app, "shop")
    for n, (build, args, other) in enumerate(_commands(app, w, shop)):
        key = f"k{n}"
        result = app.execute(build(key, *args))
        count, state = log_count(app), wallet_state(app, w)
        assert app.execute(build(key, *args)) == result, build.__name__
        assert log_count(app) == count, build.__name__
        with pytest.raises(IdempotencyConflict):
            app.execute(build(key, *other))
        assert log_count(app) == count, build.__name__
        assert wallet_state(app, w) == state, build.__name__


def test_a_successful_command_replays_even_when_it_would_now_fail(cities: Cities) -> None:
    app = cities.open("vienna")
    w, shop = open_wallet(app, "w"), merchant(app, "shop")
    app.execute(
        app.record_activity("t", w, "trip", {"mode": "bike", "distance_m": 100_000, "date": "2026-05-04"})
    )
    assert app.execute(app.spend("s", w, shop, 1, "r")) == {"spent": 1, "available": 0}
    assert app.execute(app.spend("s", w, shop, 1, "r")) == {"spent": 1, "available": 0}
    assert wallet_state(app, w)["balance"] == 0


def test_a_refusal_replays_identically_even_after_the_state_changed(cities: Cities) -> None:
    app = cities.open("vienna")
    w, shop = open_wallet(app, "w"), merchant(app, "shop")
    with pytest.raises(InsufficientBalance) as first:
        app.execute(app.spend("s", w, shop, 1, "r"))
    app.execute(
        app.record_activity("t", w, "trip", {"mode": "bike", "distance_m": 100_000, "date": "2026-05-04"})
    )
    count = log_count(app)
    with pytest.raises(InsufficientBalance) as again:
        app.execute(app.spend("s", w, shop, 1, "r"))
    assert str(again.value) == str(first.value)
    assert log_count(app) == count
    assert wallet_state(app, w)["balance"] == 1
    with pytest.raises(IdempotencyConflict):
        app.execute(app.spend("s", w, shop, 2, "r"))
    # A fresh key is decided on today's state.
    assert app.execute(app.spend("s2", w, shop, 1, "r")) == {"spent": 1, "available": 0}


def test_a_redeemed_voucher_refusal_replays(cities: Cities) -> None:
    app = cities.open("vienna")
    w, shop = open_wallet(app, "w"), merchant(app, "shop")
    app.execute(
        app.record_activity("t", w, "trip", {"mode": "bike", "distance_m": 100_000, "date": "2026-05-04"})
    )
    voucher = UUID(app.execute(app.issue_voucher("v", w, 1))["voucher_id"])
    assert app.execute(app.redeem_voucher("r1", voucher, shop))["amount"] == 1
    assert app.execute(app.redeem_voucher("r1", voucher, shop))["amount"] == 1
    with pytest.raises(VoucherAlreadyRedeemed) as first:
        app.execute(app.redeem_voucher("r2", voucher, shop))
    count = log_count(app)
    with pytest.raises(VoucherAlreadyRedeemed) as again:
        app.execute(app.redeem_voucher("r2", voucher, shop))
    assert str(again.value) == str(first.value)
    assert log_count(app) == count
    assert wallet_state(app, w)["balance"] == 0


def test_every_command_needs_a_key(cities: Cities) -> None:
    app = cities.open("rome")
    count = log_count(app)
    with pytest.raises(InvalidInput) as exc:
        app.execute(app.open_wallet("", "resident", "roma-2026-03"))
    assert exc.value.field == "idempotency_key"
    assert log_count(app) == count
