"""Shop payouts: a city pays its shops euros for the tokens they collected.

A payout run is one city's run for one period (an ISO week `2026-W22` or a month
`2026-06`), proposed by one finance officer and approved by another. Its id is derived from
the city and the period, so a second run for the same period finds the first and pays nobody
again. Each line moves a shop's collected tokens
to "paid out" (`Merchant.PaidOut`, saved with the run) at the city's published rate:
euro cents = tokens x cents per token unit, rounded down; the fraction of a cent left
over is carried to the shop's next payout, so over time nothing is lost to rounding.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.errors import InvalidInput, PreconditionFailed, SelfApproval

PERIODS = ("weekly", "monthly")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def period_end(period: str, every: str) -> dt.date:
    """The last day of `period` (weekly: an ISO week `2026-W22`; monthly: `2026-06`)."""
    if every == "weekly":
        week = _WEEK.match(period)
        if week is None:
            raise InvalidInput("period", "a weekly payout period is an ISO week, such as 2026-W22")
        try:
            return dt.date.fromisocalendar(int(week[1]), int(week[2]), 7)
        except ValueError:
            raise InvalidInput("period", f"{period} is not a week of its year") from None
    month = _MONTH.match(period)
    if month is None or not 1 <= int(month[2]) <= 12:
        raise InvalidInput("period", "a monthly payout period is a month, such as 2026-06")
    first_next = dt.date(int(month[1]) + int(month[2]) // 12, int(month[2]) % 12 + 1, 1)
    return first_next - dt.timedelta(days=1)


def check_after_last_paid(period: str, end: dt.date, last: tuple[str, dt.date] | None) -> None:
    """A run pays what shops collected up to the day it is run, whatever its period, so a
    period that ends before the last one paid would only label later tokens with an earlier
    period (and the finance report's month with them): refused. `last`: the latest paid
    period and its last day, if any."""
    if last is not None and end <= last[1]:
        raise PreconditionFailed(
            f"period {period} does not end after {last[0]}, which was paid already; "
            "a payout run is for a period after the last one paid"
        )


def parse_rate(text: str) -> Fraction:
    """An exact rate: `3`, or `1/2` (euro cents per smallest token unit), positive."""
    try:
        rate = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise InvalidInput("euro_cents_per_token_unit", "an exact number such as 1/2 or 5") from None
    if rate <= 0:
        raise InvalidInput("euro_cents_per_token_unit", "must be above zero")
    return rate


def euro_cents(tokens: int, rate: Fraction, carry: Fraction) -> tuple[int, Fraction]:
    """The whole cents `tokens` are worth with the fraction carried from before, and the
    fraction of a cent carried on."""
    owed = tokens * rate + carry
    cents = owed.numerator // owed.denominator
    return cents, owed - cents


@dataclass(frozen=True)
class PayoutLine:
    """One shop's payout in a run: `tokens` moved to paid out, `cents` transferred (0:
    less than a cent, carried on with `carry`)."""

    merchant_id: UUID
    tokens: int
    cents: int
    carry: str
    # Which of the shop's bank accounts was paid: how many times its account had been set
    # (`Merchant.account_version`; 0 in runs recorded before this was kept). A number, never
    # the account itself, which may be a sole trader's personal data.
    account: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "merchant_id": str(self.merchant_id),
            "tokens": self.tokens,
            "cents": self.cents,
            "carry": self.carry,
            "account": self.account,
        }

    @classmethod
    def of(cls, data: dict[str, Any]) -> PayoutLine:
        merchant = UUID(str(data["merchant_id"]))
        account = int(data.get("account", 0))
        return cls(merchant, int(data["tokens"]), int(data["cents"]), str(data["carry"]), account)


class PayoutRun(Aggregate):
    """A city's payout run for one period. Four eyes: one finance officer proposes it, another
    approves it, and only the approval pays (every shop's line is recorded then, once)."""

    @staticmethod
    def create_id(city: str, period: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"civfed:payout-run:{city}:{period}")

    @event("Proposed")
    def __init__(self, city: str, period: str, proposed_by: str) -> None:
        self.city = city
        self.period = period
        self.proposed_by = proposed_by
        self.paid = False
        self.rate = ""
        # The day the transfers are asked for (ISO date), once paid.
        self.execution_date = ""
        self.recorded_by = ""
        self.lines: list[dict[str, Any]] = []
        # What the proposer put up for approval (`Planned`): per shop, the tokens it had to
        # be paid out and which of its accounts (`Merchant.account_version`). None in runs
        # proposed before plans were kept: those pay what the shops have when run.
        self.planned: list[dict[str, Any]] | None = None

    def check_approver(self, approved_by: str) -> None:
        if approved_by == self.proposed_by:
            raise SelfApproval("four eyes: whoever proposed a payout run cannot approve it")

    def plan(self, lines: list[dict[str, Any]]) -> None:
        """The shops, tokens and accounts the proposal puts up, once, before it is run."""
        if self.planned is not None or self.paid:
            raise PreconditionFailed(f"payout run {self.period} was planned already")
        for line in lines:
            if int(line["tokens"]) <= 0:
                raise InvalidInput("tokens", "a planned payout is a positive number of tokens")
        self._planned(lines)

    @event("Planned")
    def _planned(self, lines: list[dict[str, Any]]) -> None:
        self.planned = lines

    def approved_share(self, merchant_id: UUID, to_pay_out: int, account_version: int) -> int:
        """How many of a shop's tokens the run pays: what the proposal put up for it, at most
        what it still has, and nothing if its account is not the one proposed (its tokens
        then wait for the next run). The officer who runs it thus pays only what the
        proposer saw: neither tokens received since nor an account changed since."""
        if self.planned is None:
            return to_pay_out
        for line in self.planned:
            if line["merchant_id"] == str(merchant_id):
                if int(line["account"]) != account_version:
                    return 0
                return min(int(line["tokens"]), to_pay_out)
        return 0

    def message_id(self) -> str:
        """The transfer file's message id (pain.001 MsgId, at most 35 characters): the same
        for every copy of this run's file, so a bank refuses a second copy as a duplicate."""
        return f"CIVFED-{self.id.hex[:28]}"

    def record(self, rate: str, execution_date: str, approved_by: str, lines: list[dict[str, Any]]) -> None:
        """Paid: the lines the approval moved to paid out (Merchant.PaidOut, in the same save)."""
        self.check_approver(approved_by)
        if self.paid:
            raise PreconditionFailed(f"payout run {self.period} was paid already")
        self._recorded(rate, execution_date, approved_by, lines)

    @event("Recorded")
    def _recorded(
        self, rate: str, execution_date: str, approved_by: str, lines: list[dict[str, Any]]
    ) -> None:
        self.paid = True
        self.rate = rate
        self.execution_date = execution_date
        self.recorded_by = approved_by
        self.lines = lines

    @property
    def payout_lines(self) -> list[PayoutLine]:
        return [PayoutLine.of(line) for line in self.lines]

    @property
    def total_cents(self) -> int:
        return sum(line.cents for line in self.payout_lines)

    @property
    def total_tokens(self) -> int:
        return sum(line.tokens for line in self.payout_lines)
