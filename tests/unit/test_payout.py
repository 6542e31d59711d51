"""Shop payouts in the domain: periods, the exact rate, cents rounded down with the fraction
carried, a run's id fixed by city and period, and a shop's balance to be paid out."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from uuid import uuid4

import pytest

from aggregates.errors import InvalidInput, PreconditionFailed, SelfApproval
from aggregates.merchant import Merchant
from aggregates.payout import PayoutRun, euro_cents, parse_rate, period_end


def test_periods_end_on_the_last_day_of_their_week_or_month() -> None:
    assert period_end("2026-W22", "weekly") == dt.date(2026, 5, 31)
    assert period_end("2026-02", "monthly") == dt.date(2026, 2, 28)
    assert period_end("2026-12", "monthly") == dt.date(2026, 12, 31)
    for period, every in [("2026-W54", "weekly"), ("2026-22", "weekly"), ("2026-13", "monthly")]:
        with pytest.raises(InvalidInput):
            period_end(period, every)


def test_the_rate_is_exact_and_positive() -> None:
    assert parse_rate("1/2") == Fraction(1, 2) and parse_rate("3") == 3
    for bad in ("0", "-1/2", "half", "1/0"):
        with pytest.raises(InvalidInput):
            parse_rate(bad)


def test_cents_are_rounded_down_and_the_fraction_carried_so_nothing_is_lost() -> None:
    rate, carry, paid = Fraction(1, 3), Fraction(0), 0
    for _ in range(3):
        cents, carry = euro_cents(1, rate, carry)  # a third of a cent each time
        paid += cents
    assert (paid, carry) == (1, 0)
    assert euro_cents(301, Fraction(1, 2), Fraction(0)) == (150, Fraction(1, 2))


def test_a_run_id_is_fixed_by_city_and_period() -> None:
    assert PayoutRun.create_id("sint_niklaas", "2026-W22") == PayoutRun.create_id("sint_niklaas", "2026-W22")
    assert PayoutRun.create_id("sint_niklaas", "2026-W22") != PayoutRun.create_id("sint_niklaas", "2026-W23")
    assert PayoutRun.create_id("sint_niklaas", "2026-W22") != PayoutRun.create_id("bologna", "2026-W22")


def test_a_shop_is_paid_out_at_most_what_it_collected() -> None:
    shop = Merchant("sint_niklaas", "Bakkerij", "food", True, False)
    shop.paid(300, "payment")
    shop.payment_reversed(20, "payment")
    assert shop.to_pay_out == 280
    with pytest.raises(InvalidInput):
        shop.paid_out(uuid4(), "2026-W22", 281, 140, "0")
    shop.paid_out(uuid4(), "2026-W22", 280, 140, "0")
    assert shop.to_pay_out == 0
    with pytest.raises(InvalidInput):
        shop.set_bank_account("BE71096123456769", "", " ", False, "staff:mia")


def test_a_run_is_paid_only_on_another_officers_approval_and_only_once() -> None:
    run = PayoutRun("sint_niklaas", "2026-W22", "staff:ann")
    assert not run.paid and run.id == PayoutRun.create_id("sint_niklaas", "2026-W22")
    with pytest.raises(SelfApproval):
        run.record("1/2", "2026-06-01", "staff:ann", [])
    line = {"merchant_id": str(uuid4()), "tokens": 301, "cents": 150, "carry": "1/2"}
    run.record("1/2", "2026-06-01", "staff:fin", [line])
    assert run.paid and (run.total_tokens, run.total_cents) == (301, 150)
    with pytest.raises(PreconditionFailed):
        run.record("1/2", "2026-06-01", "staff:piet", [])
