"""Sint-Niklaas: engraving once per bike, events once per wallet, local cashback and spending."""

from __future__ import annotations

from uuid import UUID

import pytest
from citykit import Cities, log_count, merchant, open_wallet, wallet_state

from aggregates.errors import AlreadyAwarded, MerchantNotAccepted, ParticipantNotAllowed
from aggregates.receipt import SubjectClaim
from services.city import CityApplication

DATE = "2026-06-06"


def record(app: CityApplication, key: str, wallet: UUID, activity: str, **fields: object) -> int:
    return int(app.execute(app.record_activity(key, wallet, activity, {**fields, "date": DATE}))["amount"])


def test_a_bike_is_rewarded_once_whoever_brings_it(cities: Cities) -> None:
    app = cities.open("sint_niklaas")
    ann, bob = open_wallet(app, "w1"), open_wallet(app, "w2")
    assert record(app, "e1", ann, "bike_engraving", subject="SN-123456") == 500
    with pytest.raises(AlreadyAwarded):
        record(app, "e2", bob, "bike_engraving", subject="SN-123456")
    with pytest.raises(AlreadyAwarded):
        record(app, "e3", ann, "bike_engraving", subject="SN-123456")
    assert record(app, "e4", bob, "bike_engraving", subject="SN-654321") == 500
    assert [wallet_state(app, w)["balance"] for w in (ann, bob)] == [500, 500]
    # The frame number is not stored anywhere in the ledger, only its digest.
    digest = SubjectClaim.digest("SN-123456")
    claim = app.repository.get(SubjectClaim.create_id("sint_niklaas", "bike-engraving", digest))
    assert claim.wallet_id == ann


def test_an_event_is_rewarded_once_per_wallet(cities: Cities) -> None:
    app = cities.open("sint_niklaas")
    ann, bob = open_wallet(app, "w1"), open_wallet(app, "w2")
    assert record(app, "a1", ann, "event_attendance", subject="fair-2026") == 200
    assert record(app, "a2", bob, "event_attendance", subject="fair-2026") == 200
    with pytest.raises(AlreadyAwarded):
        record(app, "a3", ann, "event_attendance", subject="fair-2026")
    assert record(app, "a4", ann, "event_attendance", subject="market-2026") == 200
    assert [wallet_state(app, w)["balance"] for w in (ann, bob)] == [400, 200]


@pytest.mark.parametrize(("cents", "award"), [(19, 0), (20, 1), (1_999, 99), (2_000, 100)])
def test_cashback_rounds_down(cities: Cities, cents: int, award: int) -> None:
    app = cities.open("sint_niklaas")
    w = open_wallet(app, "w1")
    cafe = merchant(app, "m1", local=True, name="Cafe De Zon")
    got = record(app, "buy", w, "local_purchase", amount_cents=cents, merchant_id=str(cafe))
    assert got == award
    assert wallet_state(app, w)["balance"] == award


def test_no_cashback_and_no_spending_at_a_non_local_merchant(cities: Cities) -> None:
    app = cities.open("sint_niklaas")
    w = open_wallet(app, "w1")
    cafe = merchant(app, "m1", local=True, name="Cafe De Zon")
    chain = merchant(app, "m2", local=False, name="MegaMart")
    with pytest.raises(MerchantNotAccepted, match="MegaMart"):
        record(app, "buy1", w, "local_purchase", amount_cents=5_000, merchant_id=str(chain))
    assert record(app, "buy2", w, "local_purchase", amount_cents=5_000, merchant_id=str(cafe)) == 250
    with pytest.raises(MerchantNotAccepted):
        app.execute(app.spend("s1", w, chain, 100, "r1"))
    before = log_count(app)
    assert app.execute(app.spend("s2", w, cafe, 100, "r2")) == {"spent": 100, "available": 150}
    # Spent, the shop's Paid, the fund's Released (the tokens redeemed) and the receipt, in one save.
    assert log_count(app) == before + 4
    assert wallet_state(app, w)["balance"] == 150


def test_sint_niklaas_enrols_only_residents(cities: Cities) -> None:
    app = cities.open("sint_niklaas")
    with pytest.raises(ParticipantNotAllowed):
        open_wallet(app, "b1", "business")
