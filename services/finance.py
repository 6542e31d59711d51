"""The finance department's report: what the city's funds issued, what was redeemed and what
is still outstanding; per month what shops were paid out and what was cleared with partner
cities; per partner what was cleared and what is open now.

Aggregates only: a fund's figures, the totals of the payout runs (never a shop's line) and
the clearing statements' totals (never a wallet's redemption). The funds' figures are to
date, the same as the fund report's (a fund keeps running totals, not months); payouts count
in the month their payout period ends (a weekly period `2026-W22` in the month of its last
day), clearings in the month of their statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aggregates.errors import InvalidInput
from aggregates.payout import period_end

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class FundLine:
    fund_id: str
    name: str
    issued: int
    redeemed: int
    outstanding: int


@dataclass
class PeriodLine:
    period: str
    paid_out: int = 0
    paid_out_euro_cents: int = 0
    payout_runs: int = 0
    cleared_owed_by_us: int = 0
    clearings: int = 0


@dataclass
class PartnerLine:
    partner_city: str
    cleared_owed_by_us: int = 0
    cleared_owed_by_partner: int = 0
    cleared_redemptions: int = 0
    open_owed_by_us: int = 0
    open_owed_by_partner: int = 0
    open_redemptions: int = 0


@dataclass
class FinanceReport:
    city: str
    period: str
    funds: list[FundLine] = field(default_factory=list)
    periods: list[PeriodLine] = field(default_factory=list)
    partners: list[PartnerLine] = field(default_factory=list)


def month_of_payout(period: str) -> str:
    """The month a payout period ends in."""
    every = "weekly" if "-W" in period else "monthly"
    return period_end(period, every).strftime("%Y-%m")


def check_period(period: str) -> str:
    if period and not MONTH.match(period):
        raise InvalidInput("period", "a report's period is a month, such as 2026-05")
    return period


def finance_report(app: Any, clearing: Any, period: str = "") -> FinanceReport:
    """`app` a city application, `clearing` its node's clearing (None: a city with no
    partners); `period` a month, or "" for every month."""
    check_period(period)
    report = FinanceReport(app.key, period)
    for r in app.fund_reports():
        report.funds.append(FundLine(r.fund_id, r.name, r.issued, r.redeemed, r.outstanding))
    periods: dict[str, PeriodLine] = {period: PeriodLine(period)} if period else {}
    for run in app.payouts.runs():
        if not run.paid:
            continue
        month = month_of_payout(run.period)
        if period and month != period:
            continue
        line = periods.setdefault(month, PeriodLine(month))
        line.paid_out += run.total_tokens
        line.paid_out_euro_cents += run.total_cents
        line.payout_runs += 1
    partners: dict[str, PartnerLine] = {}
    if clearing is not None:
        for s in clearing.statements():
            if period and s.period != period:
                continue
            f = s.figures
            partner = f.city_b if f.city_a == app.key else f.city_a
            ours, theirs = f.owed_by(app.key), f.owed_by(partner)
            p = partners.setdefault(partner, PartnerLine(partner))
            p.cleared_owed_by_us += ours
            p.cleared_owed_by_partner += theirs
            p.cleared_redemptions += f.redemptions
            line = periods.setdefault(s.period, PeriodLine(s.period))
            line.cleared_owed_by_us += ours
            line.clearings += 1
        for partner, (ours, theirs, n) in clearing.open_positions().items():
            p = partners.setdefault(partner, PartnerLine(partner))
            p.open_owed_by_us, p.open_owed_by_partner, p.open_redemptions = ours, theirs, n
    report.periods = [periods[k] for k in sorted(periods)]
    report.partners = [partners[k] for k in sorted(partners)]
    return report
