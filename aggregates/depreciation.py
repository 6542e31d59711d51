"""Linear depreciation of minted lots, in exact integer arithmetic.

A lot is minted with a value and an end date fixed at minting (the city's
published period later). Its value falls linearly to zero at the end date.

Rounding, stated once: on day `d` a lot valued `v` on its base day `b` with
end day `e` is worth floor(v * (e - d) / (e - b)), never more than its
straight-line value. On or before `b` it is worth `v`; on or after `e`, zero.

Spending draws on the oldest lots first. A partly drawn lot is re-based: its
remaining value becomes the new base on the day of the draw and it keeps its
end date, so it goes on falling in a straight line to zero on the same day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from aggregates.errors import InsufficientBalance, InvalidInput

DAYS_PER_YEAR = 365  # the published period counts a year as 365 days


@dataclass(frozen=True)
class Lot:
    value: int
    base_on: dt.date
    ends_on: dt.date


@dataclass(frozen=True)
class LotTerms:
    """When a new lot is minted and the day it will be worth nothing."""

    on: dt.date
    ends_on: dt.date


def lot_terms(on: dt.date, days: int) -> LotTerms:
    if days <= 0:
        raise InvalidInput("period_days", "must be positive")
    return LotTerms(on, on + dt.timedelta(days=days))


def period_days(years: int) -> int:
    if years <= 0:
        raise InvalidInput("years", "a depreciation period must be positive")
    return years * DAYS_PER_YEAR


def mint(amount: int, terms: LotTerms) -> Lot:
    if amount <= 0:
        raise InvalidInput("amount", "a lot holds a positive whole amount")
    return Lot(amount, terms.on, terms.ends_on)


def value_at(lot: Lot, on: dt.date) -> int:
    if on <= lot.base_on:
        return lot.value
    if on >= lot.ends_on:
        return 0
    remaining = (lot.ends_on - on).days
    span = (lot.ends_on - lot.base_on).days
    return lot.value * remaining // span


def total_at(lots: list[Lot], on: dt.date) -> int:
    return sum(value_at(lot, on) for lot in lots)


def draw(lots: list[Lot], amount: int, on: dt.date) -> list[Lot]:
    """The lots left after spending `amount` of their value on `on`, oldest first.

    `lots` is in minting order, as the wallet keeps it.
    """
    if amount <= 0:
        raise InvalidInput("amount", "must be a positive whole number")
    left = amount
    kept: list[Lot] = []
    for lot in lots:  # kept in minting order: the oldest lot comes first
        worth = value_at(lot, on)
        if left >= worth:
            left -= worth  # fully drawn (or already worthless): the lot is gone
            continue
        if left:
            kept.append(Lot(worth - left, on, lot.ends_on))
            left = 0
        else:
            kept.append(lot)
    if left:
        raise InsufficientBalance(f"needs {amount}, lots are worth {amount - left}")
    return kept


@dataclass(frozen=True)
class ScheduleStep:
    on: dt.date
    value: int
    depreciation: int  # how much value is lost between the previous step and this one


def schedule(lots: list[Lot], on: dt.date, steps: int = 12, step_days: int = 30) -> list[ScheduleStep]:
    """The upcoming depreciation, every `step_days` days from `on`, if nothing is spent."""
    out: list[ScheduleStep] = []
    before = total_at(lots, on)
    for i in range(1, steps + 1):
        day = on + dt.timedelta(days=i * step_days)
        value = total_at(lots, day)
        out.append(ScheduleStep(day, value, before - value))
        before = value
    return out


def steady_state_supply(issued_per_year: int, days: int) -> int:
    """Supply at equilibrium for linear depreciation: issuance per year × period / 2 (floored)."""
    return issued_per_year * days // (2 * DAYS_PER_YEAR)
