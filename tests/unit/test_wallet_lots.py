"""Wallets in a depreciating currency: lots, recorded depreciation, oldest-first spending, tax.

Wallets of currencies without depreciation keep no lots and record nothing new.
"""

from __future__ import annotations

import datetime as dt
from uuid import uuid4

import pytest

from aggregates.depreciation import lot_terms, period_days, steady_state_supply, total_at
from aggregates.errors import HoldsNotOffered, InsufficientBalance
from aggregates.wallet import Wallet

T0 = dt.datetime(2026, 9, 1, 9, 0, tzinfo=dt.UTC)
P = period_days(7)


def at(days: int) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


def mint(wallet: Wallet, amount: int, days: int, period: int = P) -> None:
    when = at(days)
    wallet.credit(
        amount, "approved-hours", 1, f"log-{days}", "approved work", lot=lot_terms(when.date(), period)
    )


def new_wallet() -> Wallet:
    return Wallet.open("zwolle", "resident", "zwolle-werkt-2026-09", None)


def event_names(wallet: Wallet) -> list[str]:
    return [type(e).__name__ for e in wallet.collect_events()]


def test_a_currency_without_depreciation_keeps_no_lots() -> None:
    wallet = new_wallet()
    wallet.credit(300, "r", 1, "a", "award")
    wallet.spend(100, uuid4(), "receipt", at(4000))
    assert wallet.lots == []
    assert wallet.balance == 200  # nothing depreciates, however late
    assert wallet.value_on(at(4000).date()) == 200
    assert event_names(wallet) == ["Opened", "Credited", "Spent"]


def test_spending_draws_the_oldest_lots_first_and_records_depreciation() -> None:
    wallet = new_wallet()
    mint(wallet, 1_000, 0, period=365)
    mint(wallet, 1_000, 30, period=365)
    mint(wallet, 1_000, 60, period=365)
    # On day 90 the lots are worth 753, 835 and 917 (floor of the straight line).
    wallet.spend(753 + 100, uuid4(), "bakker", at(90))

    assert [lot.value for lot in wallet.lots] == [735, 1_000]
    assert wallet.lots[0].base_on == at(90).date()  # the partly drawn lot is rebased
    assert wallet.lots[1].base_on == at(60).date()  # the youngest is untouched
    assert wallet.balance == 753 + 835 + 917 - 853
    assert wallet.balance == total_at(wallet.lots, at(90).date())
    events = wallet.collect_events()
    assert [type(e).__name__ for e in events[-3:]] == ["Depreciated", "Spent", "LotsDrawn"]
    # Day 90: 3000 minted are worth 753 + 835 + 917 = 2505; 495 depreciated, recorded
    # as each later mint and the spend came along.
    lost = [e.amount for e in events if type(e).__name__ == "Depreciated"]  # type: ignore[attr-defined]
    assert len(lost) == 3 and sum(lost) == 495


def test_recorded_depreciation_plus_spending_plus_tax_accounts_for_every_minted_token() -> None:
    wallet = new_wallet()
    treasury = uuid4()
    mint(wallet, 15_000, 0)
    mint(wallet, 6_000, 200)
    wallet.pay_tax(5_000, treasury, "AANSLAG-2027-001", at(400))
    wallet.spend(2_000, uuid4(), "bon-17", at(900))
    events = wallet.collect_events()
    sums = {name: 0 for name in ("Credited", "Depreciated", "Spent", "TaxPaid")}
    for e in events:
        if type(e).__name__ in sums:
            sums[type(e).__name__] += e.amount  # type: ignore[attr-defined]
    assert sums["Credited"] == 21_000
    assert sums["TaxPaid"] == 5_000 and sums["Spent"] == 2_000
    assert sums["Depreciated"] > 0
    assert sums["Credited"] - sums["Depreciated"] - sums["Spent"] - sums["TaxPaid"] == wallet.balance
    assert wallet.balance == total_at(wallet.lots, at(900).date()) == wallet.value_on(at(900).date())
    assert wallet.value_on(at(2000).date()) < wallet.balance  # not yet recorded, already shown


def test_tax_or_spending_beyond_the_depreciated_value_is_refused_and_changes_nothing() -> None:
    wallet = new_wallet()
    mint(wallet, 10_000, 0)
    wallet.collect_events()
    with pytest.raises(InsufficientBalance):
        wallet.pay_tax(9_999, uuid4(), "AANSLAG-1", at(365))  # worth floor(10000 × 2190/2555) = 8571
    assert wallet.collect_events() == []
    assert wallet.balance == 10_000


def test_holds_are_not_offered_in_a_depreciating_currency() -> None:
    wallet = new_wallet()
    mint(wallet, 1_000, 0)
    with pytest.raises(HoldsNotOffered):
        wallet.place_hold("h1", 10, at(3), "voucher", at(1))


def test_long_run_supply_converges_to_issuance_per_year_times_period_over_two() -> None:
    """Constant issuance (1.00 token a day) for three periods of seven years.

    Tolerance, from integer rounding and daily steps: the discrete sum over the
    lots alive is issuance × (P + 1) / 2 per day minted, at most one day's
    issuance above the formula, and each live lot's floor loses under one unit,
    so the supply lies within one day's issuance plus one unit per live lot.
    """
    wallet = new_wallet()
    per_day = 100
    supply_at: dict[int, int] = {}
    for n in range(3 * P):
        mint(wallet, per_day, n)  # each mint first records the depreciation since the last
        if n + 1 in (P, 2 * P, 3 * P):
            supply_at[n + 1] = total_at(wallet.lots, at(n).date())
    formula = steady_state_supply(per_day * 365, P)
    assert formula == 127_750
    live = len(wallet.lots)  # lots still worth something; worthless ones are dropped
    assert 0 < live <= P
    assert wallet.balance == supply_at[3 * P]  # recorded depreciation matches the lots exactly
    for supply in supply_at.values():
        assert abs(supply - formula) <= per_day + live, (supply, formula)
    assert supply_at[2 * P] == supply_at[3 * P]  # stationary once a whole period has passed
    assert supply_at[P] == supply_at[3 * P]
