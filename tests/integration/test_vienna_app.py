"""Vienna's application: trips, carried grams, spending, vouchers, opting out."""

from __future__ import annotations

import datetime as dt
from uuid import UUID, uuid4

import pytest
from citykit import T0, Cities, event_names, log_count, merchant, open_wallet, wallet_state

from aggregates.errors import (
    InsufficientBalance,
    InvalidInput,
    NotFound,
    ParticipantNotAllowed,
    VoucherAlreadyRedeemed,
    VoucherExpired,
    WalletClosed,
)
from services.privacy.retention import finish_closing


def trip(mode: str, km: int, date: str = "2026-05-03") -> dict[str, object]:
    return {"mode": mode, "distance_m": km * 1000, "date": date}


def test_readme_trips_earn_three_tokens_and_carry_1_5_kg(cities: Cities) -> None:
    app = cities.open("vienna")
    w = open_wallet(app, "open-1")
    results = [
        app.execute(app.record_activity(f"t{i}", w, "trip", fields))
        for i, fields in enumerate([trip("bike", 225), trip("tram", 50), trip("bike", 40)])
    ]
    assert [r["amount"] for r in results] == [2, 0, 1]
    assert {(r["rule_id"], r["rule_version"]) for r in results} == {("mobility-co2", 1)}
    assert results[0]["explanation"] == (
        "225.0 km by bike on 3 May 2026 saved 45.0 kg CO2; 20.0 kg = 1 token; 5.0 kg carried"
    )
    state = wallet_state(app, w)
    assert (state["balance"], state["carried"]) == (3, {"mobility-co2": 1_500})
    assert event_names(app, w) == ["Opened", "Credited", "Progressed", "Credited"]
    credited = list(app.events.get(w))[1]
    assert credited.rule_id == "mobility-co2"  # type: ignore[attr-defined]
    assert credited.rule_version == 1  # type: ignore[attr-defined]
    assert credited.quantity == 45_000  # type: ignore[attr-defined]
    assert credited.activity_id == "t0"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("km_m", "tokens", "carried"), [(99_995, 0, 19_999), (100_000, 1, 0), (100_005, 1, 1)]
)
def test_20_kg_boundary_through_the_application(cities: Cities, km_m: int, tokens: int, carried: int) -> None:
    app = cities.open("vienna")
    w = open_wallet(app, "open-1")
    fields = {"mode": "bike", "distance_m": km_m, "date": "2026-05-03"}
    assert app.execute(app.record_activity("t1", w, "trip", fields))["amount"] == tokens
    assert wallet_state(app, w)["carried"] == {"mobility-co2": carried}


def test_bad_trips_are_refused_naming_the_field_and_write_nothing(cities: Cities) -> None:
    app = cities.open("vienna")
    w = open_wallet(app, "open-1")
    before = log_count(app)
    cases = [
        ({"mode": "jetpack", "distance_m": 1000, "date": "2026-05-03"}, "mode"),
        ({"mode": "bike", "distance_m": -1, "date": "2026-05-03"}, "distance_m"),
        ({"mode": "bike", "distance_m": 1000, "date": "2026-05-03", "route": "Ring"}, "route"),
    ]
    for n, (fields, field) in enumerate(cases):
        with pytest.raises(InvalidInput) as exc:
            app.execute(app.record_activity(f"bad{n}", w, "trip", fields))
        assert exc.value.field == field
    with pytest.raises(NotFound, match="eco_action"):
        app.execute(app.record_activity("bad-activity", w, "eco_action", {"action": "x"}))
    with pytest.raises(NotFound):
        app.execute(app.record_activity("no-wallet", uuid4(), "trip", trip("bike", 1)))
    assert wallet_state(app, w)["balance"] == 0
    # Invalid input leaves no trace; not-found refusals keep only their receipts.
    assert log_count(app) == before + 2


def test_vienna_enrols_only_residents(cities: Cities) -> None:
    app = cities.open("vienna")
    with pytest.raises(ParticipantNotAllowed):
        open_wallet(app, "tourist-1", "tourist")
    with pytest.raises(InvalidInput) as exc:
        app.execute(app.open_wallet("bad-consent", "resident", "wien-1999-01"))
    assert exc.value.field == "consent_version"


def test_spend_never_exceeds_the_balance(cities: Cities) -> None:
    app = cities.open("vienna")
    w = open_wallet(app, "open-1")
    shop = merchant(app, "m1")
    app.execute(app.record_activity("t1", w, "trip", trip("bike", 300)))  # 60 kg: 3 tokens
    with pytest.raises(InsufficientBalance):
        app.execute(app.spend("s1", w, shop, 4, "r1"))
    assert app.execute(app.spend("s2", w, shop, 3, "r2")) == {"spent": 3, "available": 0}
    with pytest.raises(InsufficientBalance):
        app.execute(app.spend("s3", w, shop, 1, "r3"))
    assert wallet_state(app, w)["balance"] == 0


def test_voucher_issue_redeem_once(cities: Cities) -> None:
    app = cities.open("vienna")
    w = open_wallet(app, "open-1")
    shop = merchant(app, "m1")
    app.execute(app.record_activity("t1", w, "trip", trip("bike", 500)))  # 5 tokens
    issued = app.execute(app.issue_voucher("v1", w, 2))
    voucher_id = UUID(issued["voucher_id"])
    assert issued["qr"] == f"civfed:vienna:voucher:{voucher_id}"
    assert issued["expires_at"] == (T0 + dt.timedelta(hours=72)).isoformat()
    state = wallet_state(app, w)
    assert (state["balance"], state["available"]) == (5, 3)
    # The held tokens cannot be spent meanwhile.
    with pytest.raises(InsufficientBalance):
        app.execute(app.spend("s1", w, shop, 4, "r1"))

    assert app.execute(app.redeem_voucher("r1", voucher_id, shop)) == {"amount": 2, "merchant_id": str(shop)}
    state = wallet_state(app, w)
    assert (state["balance"], state["available"], state["holds"]) == (3, 3, {})
    with pytest.raises(VoucherAlreadyRedeemed):
        app.execute(app.redeem_voucher("r2", voucher_id, shop))
    assert wallet_state(app, w)["balance"] == 3
    assert event_names(app, voucher_id) == ["Issued", "Redeemed"]


def test_an_expired_voucher_is_refused_and_its_tokens_return(cities: Cities) -> None:
    app = cities.open("vienna")
    w = open_wallet(app, "open-1")
    shop = merchant(app, "m1")
    app.execute(app.record_activity("t1", w, "trip", trip("bike", 200)))  # 2 tokens
    voucher_id = UUID(app.execute(app.issue_voucher("v1", w, 2))["voucher_id"])
    assert wallet_state(app, w)["available"] == 0

    cities.clock.advance(hours=72)  # the lifetime in cities/vienna/city.toml
    with pytest.raises(VoucherExpired):
        app.execute(app.redeem_voucher("r1", voucher_id, shop))
    assert wallet_state(app, w)["balance"] == 2
    # The lapsed hold is released (as an event) by the next spend.
    assert app.execute(app.spend("s1", w, shop, 2, "after-expiry")) == {"spent": 2, "available": 0}
    assert event_names(app, w)[-2:] == ["HoldReleased", "Spent"]


def test_a_voucher_just_before_expiry_still_redeems(cities: Cities) -> None:
    app = cities.open("vienna")
    w = open_wallet(app, "open-1")
    shop = merchant(app, "m1")
    app.execute(app.record_activity("t1", w, "trip", trip("bike", 100)))
    voucher_id = UUID(app.execute(app.issue_voucher("v1", w, 1))["voucher_id"])
    cities.clock.advance(hours=72, microseconds=-1)
    assert app.execute(app.redeem_voucher("r1", voucher_id, shop))["amount"] == 1
    assert wallet_state(app, w)["balance"] == 0


def test_a_voucher_needs_available_tokens(cities: Cities) -> None:
    app = cities.open("vienna")
    w = open_wallet(app, "open-1")
    app.execute(app.record_activity("t1", w, "trip", trip("bike", 100)))
    with pytest.raises(InsufficientBalance):
        app.execute(app.issue_voucher("v1", w, 2))
    with pytest.raises(InvalidInput) as exc:
        app.execute(app.issue_voucher("v2", w, 0))
    assert exc.value.field == "amount"


def test_closing_a_wallet_stops_all_processing(cities: Cities) -> None:
    app = cities.open("vienna")
    w = open_wallet(app, "open-1")
    shop = merchant(app, "m1")
    app.execute(app.record_activity("t1", w, "trip", trip("bike", 100)))
    # Vienna's published choice: 30 days to spend what is left, earning nothing more.
    window_end = cities.clock.now + dt.timedelta(days=app.city.config.final_spend_days)
    assert app.execute(app.close_wallet("c1", w)) == {
        "closed": False,
        "balance": 1,
        "final_spend_until": window_end.isoformat(),
    }
    with pytest.raises(WalletClosed):
        app.execute(app.record_activity("t2", w, "trip", trip("bike", 100)))
    with pytest.raises(WalletClosed):
        app.execute(app.close_wallet("c2", w))
    cities.clock.now = window_end
    with pytest.raises(WalletClosed):
        app.execute(app.spend("s1", w, shop, 1, "r1"))
    with pytest.raises(WalletClosed):
        app.execute(app.issue_voucher("v1", w, 1))
    app.execute(finish_closing(app, "finish-1", w))
    state = wallet_state(app, w)
    assert (state["closed"], state["balance"]) == (True, 0)
    assert event_names(app, w) == ["Opened", "Credited", "CloseScheduled", "Closed", "Lapsed"]
