"""Rome's application: every participant kind earns; partner prizes run out; tourists expire."""

from __future__ import annotations

import datetime as dt
from uuid import UUID

import pytest
from citykit import Cities, event_names, log_count, merchant, open_wallet, wallet_state

from aggregates.errors import InsufficientBalance, InvalidInput, OutOfStock, WalletExpired
from services.city import CityApplication

DATE = "2026-05-04"


def act(app: CityApplication, key: str, wallet: UUID, action: str) -> int:
    fields = {"action": action, "date": DATE}
    return int(app.execute(app.record_activity(key, wallet, "eco_action", fields))["amount"])


@pytest.mark.parametrize("kind", ["resident", "tourist", "business"])
def test_every_participant_kind_earns_points(cities: Cities, kind: str) -> None:
    app = cities.open("rome")
    until = cities.clock() + dt.timedelta(days=7) if kind == "tourist" else None
    w = open_wallet(app, "w1", kind, valid_until=until)
    earned = [
        act(app, f"a{i}", w, a)
        for i, a in enumerate(
            ["recycling_drop_off", "public_transport_ride", "bike_share_trip", "water_refill"]
        )
    ]
    assert earned == [10, 5, 8, 2]
    assert wallet_state(app, w)["balance"] == 25


def test_unknown_action_is_refused_naming_the_field(cities: Cities) -> None:
    app = cities.open("rome")
    w = open_wallet(app, "w1")
    with pytest.raises(InvalidInput) as exc:
        act(app, "a1", w, "littering")
    assert exc.value.field == "action"
    assert wallet_state(app, w)["balance"] == 0


def test_prize_stock_decreases_and_runs_out(cities: Cities) -> None:
    app = cities.open("rome")
    partner = merchant(app, "m1", name="Gelateria")
    prize = UUID(app.execute(app.offer_prize("p1", partner, "Gelato", cost=15, stock=2))["prize_id"])
    ann, bob, cat = (open_wallet(app, f"w{i}") for i in range(3))
    for w in (ann, bob, cat):
        act(app, f"earn-{w}", w, "recycling_drop_off")
        act(app, f"earn2-{w}", w, "public_transport_ride")

    assert app.execute(app.claim_prize("c1", ann, prize)) == {"prize_id": str(prize), "cost": 15}
    assert app.execute(app.claim_prize("c2", bob, prize)) == {"prize_id": str(prize), "cost": 15}
    with pytest.raises(OutOfStock, match="Gelato"):
        app.execute(app.claim_prize("c3", cat, prize))
    assert [wallet_state(app, w)["balance"] for w in (ann, bob, cat)] == [0, 0, 15]
    assert event_names(app, prize) == ["Offered", "Claimed", "Claimed"]
    assert app.repository.get(prize).stock == 0


def test_a_prize_needs_enough_points_and_keeps_its_stock(cities: Cities) -> None:
    app = cities.open("rome")
    partner = merchant(app, "m1")
    prize = UUID(app.execute(app.offer_prize("p1", partner, "Museum ticket", cost=30, stock=1))["prize_id"])
    w = open_wallet(app, "w1")
    act(app, "a1", w, "recycling_drop_off")
    with pytest.raises(InsufficientBalance):
        app.execute(app.claim_prize("c1", w, prize))
    assert app.repository.get(prize).stock == 1
    assert event_names(app, prize) == ["Offered"]
    assert wallet_state(app, w)["balance"] == 10


def test_a_prize_offer_needs_positive_cost_and_stock(cities: Cities) -> None:
    app = cities.open("rome")
    partner = merchant(app, "m1")
    with pytest.raises(InvalidInput) as exc:
        app.execute(app.offer_prize("p1", partner, "Free", cost=0, stock=5))
    assert exc.value.field == "cost"


def test_a_tourist_wallet_ends_at_its_validity_end(cities: Cities) -> None:
    app = cities.open("rome")
    end = cities.clock() + dt.timedelta(days=3)
    w = open_wallet(app, "t1", "tourist", valid_until=end)
    assert act(app, "a1", w, "water_refill") == 2
    cities.clock.now = end - dt.timedelta(seconds=1)
    assert act(app, "a2", w, "water_refill") == 2
    cities.clock.now = end
    with pytest.raises(WalletExpired):
        act(app, "a3", w, "water_refill")
    assert wallet_state(app, w)["balance"] == 4


def test_a_tourist_wallet_lasts_at_most_the_citys_limit(cities: Cities) -> None:
    app = cities.open("rome")
    assert app.city.config.tourist_max_days == 30
    ok = cities.clock() + dt.timedelta(days=30)
    open_wallet(app, "t1", "tourist", valid_until=ok)
    with pytest.raises(InvalidInput) as exc:
        open_wallet(app, "t2", "tourist", valid_until=ok + dt.timedelta(seconds=1))
    assert exc.value.field == "valid_until"
    with pytest.raises(InvalidInput) as exc:
        open_wallet(app, "t3", "tourist")
    assert exc.value.field == "valid_until"


def test_a_tourist_validity_end_must_be_ahead_and_carry_a_time_zone(cities: Cities) -> None:
    app = cities.open("rome")
    count = log_count(app)
    for n, until in enumerate(
        [
            cities.clock() - dt.timedelta(days=1),
            cities.clock(),
            dt.datetime(2026, 5, 10, 12, 0),  # no time zone
        ]
    ):
        with pytest.raises(InvalidInput) as exc:
            open_wallet(app, f"t{n}", "tourist", valid_until=until)
        assert exc.value.field == "valid_until"
    assert log_count(app) == count


@pytest.mark.parametrize("amount", [1.5, True])
def test_amounts_are_whole_numbers_through_the_application(cities: Cities, amount: object) -> None:
    app = cities.open("rome")
    w, shop = open_wallet(app, "w"), merchant(app, "m")
    act(app, "a", w, "recycling_drop_off")
    count = log_count(app)
    for cmd in (app.spend("s", w, shop, amount, "r"), app.issue_voucher("v", w, amount)):  # type: ignore[arg-type]
        with pytest.raises(InvalidInput) as exc:
            app.execute(cmd)
        assert exc.value.field == "amount"
    with pytest.raises(InvalidInput) as exc:
        app.execute(app.offer_prize("p", shop, "Gelato", amount, 1))  # type: ignore[arg-type]
    assert exc.value.field == "cost"
    assert log_count(app) == count
    assert wallet_state(app, w)["balance"] == 10
