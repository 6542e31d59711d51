"""The finance department's report: what the city's funds issued, what was redeemed and what
is still outstanding; per month what shops were paid out and what was cleared with partner
cities; per partner what was cleared and what is open now.

Aggregates only: a fund's figures, the totals of the payout runs (never a shop's line) and
the clearing statements' totals (never a wallet's redemption). Per fund: the figures to
date, the same as the fund report's, and per month what the fund issued and what of its
tokens were redeemed, lapsed or depreciated in the month, with what was outstanding at its
end, all counted exactly from the fund's own events, each booked on its day
(`services.funds.fund_months`). Payouts count in the month their payout period ends (a
weekly period `2026-W22` in the month of its last day), clearings in the month of their
statement. Shops' payouts and clearings are not split by fund: a payout pays a shop's
collected tokens, and a clearing nets redemptions, whichever fund issued them.

Euros: this city's amounts at its published `euro_per_token`; a partner's side of a
clearing at the partner's published rate (`rates`: city -> rate, None where the city's
currency has no euro value, such as Zwolle's hours, in which case the report says so and
gives no euro figure; a city missing from `rates` has published none this node knows).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aggregates.errors import InvalidInput
from aggregates.payout import period_end
from services.funds import FundMonth

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class FundLine:
    fund_id: str
    name: str
    issued: int
    redeemed: int
    outstanding: int
    lapsed: int = 0
    depreciated: int = 0


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
    # The partner's published euro value of a token ("" when it has none), and a note when
    # there is no rate to give euros at.
    partner_euro_per_token: str = ""
    partner_euro_note: str = ""
    cleared_owed_by_us_eur: str = ""
    cleared_owed_by_partner_eur: str = ""
    open_owed_by_us_eur: str = ""
    open_owed_by_partner_eur: str = ""


@dataclass
class FinanceReport:
    city: str
    period: str
    funds: list[FundLine] = field(default_factory=list)
    fund_periods: list[FundMonth] = field(default_factory=list)
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


NO_EURO_VALUE = "the city's currency has no euro value"
NO_RATE_KNOWN = "no euro value published for this city"


def euros(units: int, rate: Decimal | None, decimals: int) -> str:
    """`units` of a currency's smallest unit in euros at `rate`, to the cent; "" without one."""
    if rate is None:
        return ""
    return str((Decimal(units) * rate / Decimal(10) ** decimals).quantize(Decimal("0.01")))


@dataclass(frozen=True)
class Rate:
    """A city's published euro value of its token, and its currency's decimals."""

    euro_per_token: Decimal | None
    decimals: int


def published_rates(configs: Any) -> dict[str, Rate]:
    """city key -> its published euro value (None: its currency has none), from city files."""
    return {cfg.key: Rate(cfg.euro_per_token, cfg.currency.decimals) for cfg in configs}


def finance_report(
    app: Any, clearing: Any, period: str = "", rates: Mapping[str, Rate] | None = None
) -> FinanceReport:
    """`app` a city application, `clearing` its node's clearing (None: a city with no
    partners); `period` a month, or "" for every month; `rates` the partner cities'
    published euro values."""
    check_period(period)
    report = FinanceReport(app.key, period)
    for r in app.fund_reports():
        report.funds.append(
            FundLine(r.fund_id, r.name, r.issued, r.redeemed, r.outstanding, r.lapsed, r.depreciated)
        )
    for lines in app.fund_months(period).values():
        report.fund_periods.extend(lines)
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
    cfg = app.city.config
    for p in partners.values():
        in_euros(p, Rate(cfg.euro_per_token, cfg.currency.decimals), (rates or {}).get(p.partner_city))
    report.periods = [periods[k] for k in sorted(periods)]
    report.partners = [partners[k] for k in sorted(partners)]
    return report


def in_euros(p: PartnerLine, ours: Rate, theirs: Rate | None) -> None:
    """Each side of a partner's position in euros at its own city's published rate."""
    p.cleared_owed_by_us_eur = euros(p.cleared_owed_by_us, ours.euro_per_token, ours.decimals)
    p.open_owed_by_us_eur = euros(p.open_owed_by_us, ours.euro_per_token, ours.decimals)
    if theirs is None:
        p.partner_euro_note = NO_RATE_KNOWN
        return
    if theirs.euro_per_token is None:
        p.partner_euro_note = NO_EURO_VALUE
        return
    p.partner_euro_per_token = str(theirs.euro_per_token)
    p.cleared_owed_by_partner_eur = euros(p.cleared_owed_by_partner, theirs.euro_per_token, theirs.decimals)
    p.open_owed_by_partner_eur = euros(p.open_owed_by_partner, theirs.euro_per_token, theirs.decimals)
