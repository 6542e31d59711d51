"""Partner prizes held until the hand-over, and a tourist wallet's expiry: the domain alone."""

from __future__ import annotations

import datetime as dt
from uuid import uuid4

import pytest

from aggregates.errors import (
    ClaimNotOpen,
    InvalidInput,
    NotFound,
    OutOfStock,
    PrizeWithdrawn,
    WalletClosed,
    WalletExpired,
)
from aggregates.merchant import Prize, PrizeClaim
from aggregates.wallet import Wallet

T0 = dt.datetime(2026, 5, 4, 9, 0, tzinfo=dt.UTC)
SHOP = uuid4()


def claim(expires: dt.datetime = T0 + dt.timedelta(hours=72)) -> PrizeClaim:
    return PrizeClaim("rome", uuid4(), SHOP, uuid4(), "h1", 10, expires)


def test_a_prize_changes_its_terms_and_withdrawn_refuses_claims() -> None:
    prize = Prize.offer("rome", SHOP, "Museum ticket", 10, 1)
    prize.reserve(uuid4())
    with pytest.raises(OutOfStock, match="out of stock"):
        prize.check_in_stock()
    prize.update("Two tickets", 20, 2)
    assert (prize.name, prize.cost, prize.stock) == ("Two tickets", 20, 2)
    prize.check_in_stock()
    with pytest.raises(InvalidInput) as exc:
        prize.update("Two tickets", 20, -1)
    assert exc.value.field == "stock"
    with pytest.raises(InvalidInput) as exc:
        prize.update(" ", 20, 1)
    assert exc.value.field == "name"
    prize.withdraw()
    prize.withdraw()  # once
    assert [type(e).__name__ for e in prize.collect_events()].count("Withdrawn") == 1
    with pytest.raises(PrizeWithdrawn, match="withdrawn"):
        prize.check_in_stock()
    with pytest.raises(PrizeWithdrawn):
        prize.update("Back", 1, 1)


def test_another_merchant_is_told_a_prize_or_claim_does_not_exist() -> None:
    prize = Prize.offer("rome", SHOP, "Museum ticket", 10, 1)
    prize.check_owner(SHOP)
    with pytest.raises(NotFound):
        prize.check_owner(uuid4())
    with pytest.raises(NotFound):
        claim().check_owner(uuid4())


def test_a_claim_is_settled_once_and_expires_on_its_instant() -> None:
    c = claim()
    c.check_open(T0)
    with pytest.raises(ClaimNotOpen, match="expired"):
        c.check_open(T0 + dt.timedelta(hours=72))
    with pytest.raises(ClaimNotOpen, match="runs until"):
        c.check_lapsed(T0)
    c.check_lapsed(T0 + dt.timedelta(hours=72))
    c.hand_over()
    with pytest.raises(ClaimNotOpen, match="handed over"):
        c.check_held()
    with pytest.raises(ClaimNotOpen):
        c.check_lapsed(T0 + dt.timedelta(days=9))


def tourist(days: int = 30) -> Wallet:
    w = Wallet.open("rome", "tourist", "roma-2026-03", T0 + dt.timedelta(days=3), days)
    w.credit(20, "eco", 1, "a1", "drop-off")
    return w


def test_an_expired_tourist_wallet_spends_in_its_window_and_earns_nothing() -> None:
    w = tourist()
    end = T0 + dt.timedelta(days=3)
    assert w.spend_until == end + dt.timedelta(days=30)
    w.spend(5, SHOP, "r1", end)  # at the validity end: the window, not a refusal
    with pytest.raises(WalletExpired, match="only its final spending"):
        w.check_earning(end)
    with pytest.raises(WalletExpired, match="final spend window ended"):
        w.spend(1, SHOP, "r2", end + dt.timedelta(days=30))


def test_expiry_is_recorded_then_the_rest_lapses_like_leaving() -> None:
    w = tourist()
    end = T0 + dt.timedelta(days=3)
    with pytest.raises(WalletClosed, match="not expired"):
        w.expire(end - dt.timedelta(seconds=1))
    w.expire(end + dt.timedelta(days=1))
    assert (w.closes_at, w.closed) == (end + dt.timedelta(days=30), False)
    with pytest.raises(WalletClosed, match="already closing"):
        w.expire(end + dt.timedelta(days=2))
    w.check_closing_due(end + dt.timedelta(days=30))
    w.finish("final spend window ended", end + dt.timedelta(days=30))
    names = [type(e).__name__ for e in w.collect_events()]
    assert names[-3:] == ["Expired", "Closed", "Lapsed"]
    assert w.balance == 0


def test_without_a_window_an_expired_wallet_closes_and_lapses_at_once() -> None:
    w = tourist(days=0)
    w.expire(T0 + dt.timedelta(days=3))
    assert w.closed and w.balance == 0
    assert [type(e).__name__ for e in w.collect_events()][-3:] == ["Expired", "Closed", "Lapsed"]
