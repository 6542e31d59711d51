"""Linear depreciation of lots: exact integer values, oldest-first draws, the schedule."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import pytest

from aggregates.depreciation import (
    Lot,
    draw,
    lot_terms,
    mint,
    period_days,
    schedule,
    steady_state_supply,
    total_at,
    value_at,
)
from aggregates.errors import InsufficientBalance, InvalidInput

D0 = dt.date(2026, 9, 1)
SEVEN_YEARS = period_days(7)


def day(n: int) -> dt.date:
    return D0 + dt.timedelta(days=n)


def test_seven_years_count_365_days_each() -> None:
    assert SEVEN_YEARS == 2555
    assert lot_terms(D0, SEVEN_YEARS).ends_on == dt.date(2033, 8, 30)


def test_value_at_day_zero_one_day_halfway_last_day_and_after_the_end() -> None:
    lot = mint(10_000, lot_terms(D0, SEVEN_YEARS))
    assert value_at(lot, D0) == 10_000  # day 0: the whole amount
    assert value_at(lot, day(1)) == 9_996  # floor(10000 × 2554 / 2555) = floor(9996.08)
    assert value_at(lot, day(1277)) == 5_001  # floor(10000 × 1278 / 2555) = floor(5001.96)
    assert value_at(lot, day(1278)) == 4_998  # floor(10000 × 1277 / 2555) = floor(4998.04)
    assert value_at(lot, day(2554)) == 3  # last day: floor(10000 / 2555)
    assert value_at(lot, day(2555)) == 0  # the end date
    assert value_at(lot, day(5000)) == 0  # and ever after


def test_halfway_of_an_even_period_is_exactly_half() -> None:
    lot = mint(10_000, lot_terms(D0, period_days(2)))
    assert value_at(lot, day(365)) == 5_000
    assert value_at(lot, day(729)) == 13  # last day: floor(10000 / 730)
    assert value_at(lot, day(730)) == 0


def test_every_day_is_the_floor_of_the_straight_line() -> None:
    lot = mint(12_345, lot_terms(D0, 400))
    previous = lot.value
    for n in range(0, 420):
        expected = max(Fraction(12_345 * (400 - n), 400), Fraction(0))
        assert value_at(lot, day(n)) == int(expected)  # floor, never more than the line
        assert value_at(lot, day(n)) <= previous
        previous = value_at(lot, day(n))


def test_draw_takes_the_oldest_lots_first_and_rebases_the_partial_one() -> None:
    lots = [mint(1_000, lot_terms(day(n), 365)) for n in (0, 30, 60)]
    on = day(90)
    worth = [value_at(lot, on) for lot in lots]
    assert worth == [753, 835, 917]  # floor(1000 × 275/365), × 305/365, × 335/365

    kept = draw(lots, worth[0] + 100, on)  # all of the oldest, 100 of the next

    assert len(kept) == 2
    assert kept[0] == Lot(worth[1] - 100, on, lots[1].ends_on)  # rebased, same end date
    assert kept[1] == lots[2]  # the youngest is untouched
    assert total_at(kept, on) == sum(worth) - worth[0] - 100
    # The rebased lot keeps falling in a straight line to zero on its own end date.
    assert value_at(kept[0], lots[1].ends_on - dt.timedelta(days=1)) == (worth[1] - 100) // 305
    assert value_at(kept[0], lots[1].ends_on) == 0


def test_draw_across_several_whole_lots_and_worthless_ones() -> None:
    lots = [
        mint(500, lot_terms(day(0), 10)),
        mint(400, lot_terms(day(5), 100)),
        mint(300, lot_terms(day(6), 100)),
    ]
    on = day(12)  # the first lot has ended: worth nothing
    kept = draw(lots, value_at(lots[1], on) + value_at(lots[2], on), on)
    assert kept == []


def test_draw_more_than_the_lots_are_worth_is_refused() -> None:
    lots = [mint(100, lot_terms(D0, 10))]
    with pytest.raises(InsufficientBalance):
        draw(lots, 91, day(1))  # worth floor(100 × 9/10) = 90
    with pytest.raises(InvalidInput):
        draw(lots, 0, day(1))


def test_schedule_shows_the_upcoming_depreciation_month_by_month() -> None:
    lots = [mint(3_650, lot_terms(D0, 365))]
    steps = schedule(lots, D0, steps=13, step_days=30)
    assert [s.value for s in steps[:3]] == [3_350, 3_050, 2_750]  # 10 per day, exactly
    assert all(s.depreciation == 300 for s in steps[:12])
    assert steps[12].value == 0 and steps[12].depreciation == 50  # the last 5 days
    assert sum(s.depreciation for s in steps) == 3_650


def test_steady_state_formula_is_issuance_times_period_over_two() -> None:
    assert steady_state_supply(36_500, SEVEN_YEARS) == 127_750  # 365.00 a year × 7 years / 2
    assert steady_state_supply(0, SEVEN_YEARS) == 0


def test_bad_periods_and_amounts_name_the_field() -> None:
    with pytest.raises(InvalidInput, match="years"):
        period_days(0)
    with pytest.raises(InvalidInput, match="amount"):
        mint(0, lot_terms(D0, 10))
    with pytest.raises(InvalidInput, match="period_days"):
        lot_terms(D0, 0)
