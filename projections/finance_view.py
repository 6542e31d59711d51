"""The public finance page of a city: its funds' budgets and top-ups (public council
decisions, exact), and per closed month what each fund's rules awarded and what was
redeemed at the city's shops, each in tokens and in euros where the city's token has a
euro value.

No figure here is measured anew. A month's figure is the sum of the city dashboard's
published daily cells of that month (`projections.dashboard_view`: k people per cell,
discrete Laplace noise drawn once and stored), grouped by the fund each rule's awards drew
on: post-processing of what is already public, which spends no privacy budget and cannot be
differenced to anything those cells do not already show. Only closed months are shown. A
month's redemptions are shown only when at least k distinct shops were paid the city's own
tokens in it (`LOCAL_KINDS`), so no
figure is a single shop's takings (a shop reads its own on its statement, with its own
credential); that decision is taken once per closed month and kept
(`rm_published_thresholds`, which a rebuild leaves alone, like `rm_published_cells`), so a
late payment cannot make a withheld month appear, nor a shown one disappear. Payouts to
shops are not shown per shop or per month here: the finance department reads them from the
node (`civfed finance report`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from projections.dashboard_view import city_dashboard
from projections.disclosure import Noise, Period, Policy, opendp_noise, total
from projections.funds import funds_of, rule_funds
from projections.store import Tx

SEVERAL = "(several funds)"  # a rule moved between funds: its awards are not split by guess
UNKNOWN = "(no fund recorded)"  # awards projected before the stream named their fund


def _month_closed(month: str, now: dt.datetime, policy: Policy) -> bool:
    return Period("month", dt.date.fromisoformat(month + "-01")).closed(now, policy.grace)


THRESHOLDS_DDL = (
    "CREATE TABLE IF NOT EXISTS rm_published_thresholds (city TEXT NOT NULL, period TEXT NOT NULL, "
    "metric TEXT NOT NULL, shown BOOLEAN NOT NULL, k INTEGER NOT NULL, drawn_at TEXT NOT NULL, "
    "PRIMARY KEY (city, period, metric))"
)


def decided_once(tx: Tx, city: str, month: str, metric: str, count: int, k: int, now: dt.datetime) -> bool:
    """Whether a closed month's figure of `metric` is shown (`count` at least `k`), decided
    at its first reading and kept: a later reading returns the stored decision."""
    tx.execute(THRESHOLDS_DDL)
    key = (city, f"month:{month}-01", metric)
    tx.execute(
        "INSERT INTO rm_published_thresholds VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (city, period, metric) DO NOTHING",
        (*key, count >= k, k, now.isoformat()),
    )
    row = tx.one(
        "SELECT shown FROM rm_published_thresholds WHERE city = ? AND period = ? AND metric = ?", key
    )
    return bool(row[0]) if row is not None else False


# The kinds of a shop's payment that the month's redemptions add up (a holder's spend, a
# prize, a local voucher): a partner city's redemption credited to a shop is not in them.
LOCAL_KINDS = ("payment", "prize", "voucher")


def shops_per_month(tx: Tx, city: str) -> dict[str, int]:
    """Per month, how many distinct shops were paid the city's own tokens in it (never which)."""
    rows = tx.all(
        "SELECT substr(day, 1, 7), COUNT(DISTINCT merchant_id) FROM rm_statement_lines "
        "WHERE city = ? AND amount > 0 AND kind IN (?, ?, ?) GROUP BY substr(day, 1, 7)",
        (city, *LOCAL_KINDS),
    )
    return {str(m): int(n) for m, n in rows}


def euros(units: int, euro_per_token: Decimal | None, decimals: int) -> str | None:
    if euro_per_token is None:
        return None
    return str((Decimal(units) * euro_per_token / Decimal(10) ** decimals).quantize(Decimal("0.01")))


def in_euros(f: Mapping[str, Any], euro_per_token: Decimal | None, decimals: int) -> dict[str, Any] | None:
    """A published figure in euros (post-processing); None when the token has no euro value."""
    if euro_per_token is None:
        return None
    if "value" not in f:
        return {"suppressed": True, "reason": f.get("reason", "suppressed")}
    value = euros(int(f["value"]), euro_per_token, decimals)
    return {"value": value, "protection": {"method": "published figure times the euro value of a token"}}


def finance_dashboard(
    tx: Tx,
    city: str,
    policy: Policy | None = None,
    now: dt.datetime | None = None,
    noise: Noise = opendp_noise,
    euro_per_token: Decimal | None = None,
    decimals: int = 0,
) -> dict[str, Any]:
    policy = policy or Policy()
    now = now or dt.datetime.now(dt.UTC)
    board = city_dashboard(tx, city, policy, now, noise)
    issued: Mapping[str, Mapping[str, dict[str, Any]]] = board["cells"]["issued_by_rule"]
    spent: Mapping[str, Mapping[str, dict[str, Any]]] = board["cells"]["spent_by_category"]
    by_rule = rule_funds(tx, city)
    fund_of = {rule: funds[0] if len(funds) == 1 else SEVERAL for rule, funds in by_rule.items()}
    months = sorted({d[:7] for d in (*issued, *spent) if _month_closed(d[:7], now, policy)})
    shops = shops_per_month(tx, city)
    budgets = funds_of(tx, city)
    fund_ids = [f["fund_id"] for f in budgets] + sorted(
        {f for f in fund_of.values() if f not in {b["fund_id"] for b in budgets}}
    )
    awarded: dict[str, dict[str, Any]] = {f: {} for f in fund_ids}
    redeemed: dict[str, Any] = {}
    for month in months:
        cells: dict[str, list[dict[str, Any]]] = {f: [] for f in fund_ids}
        for day, by_key in issued.items():
            if day[:7] == month:
                for rule, figure in by_key.items():
                    cells.setdefault(fund_of.get(rule, UNKNOWN), []).append(figure)
        for fund, figures in cells.items():
            awarded.setdefault(fund, {})[month] = total(figures)
        if not decided_once(tx, city, month, "redeemed_shops", shops.get(month, 0), policy.k, now):
            redeemed[month] = {"suppressed": True, "reason": f"fewer than {policy.k} shops"}
        else:
            redeemed[month] = total(
                [f for day, by_key in spent.items() if day[:7] == month for f in by_key.values()]
            )

    def with_euros(figures: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
        return {
            m: {**f, "eur": in_euros(f, euro_per_token, decimals)} if euro_per_token is not None else f
            for m, f in figures.items()
        }

    exact = {"method": "public council decision, exact"}
    funds = []
    for b in budgets:
        funds.append(
            {
                **b,
                "protection": exact,
                "budget_eur": euros(b["budget"], euro_per_token, decimals),
                "awarded_by_month": with_euros(awarded.get(b["fund_id"], {})),
            }
        )
    declared = {b["fund_id"] for b in budgets}
    for fund in sorted(set(awarded) - declared):
        funds.append({"fund_id": fund, "awarded_by_month": with_euros(awarded[fund])})
    return {
        "city": city,
        "k": policy.k,
        "months": months,
        "euro_per_token": None if euro_per_token is None else str(euro_per_token),
        "funds": funds,
        "redeemed_by_month": with_euros(redeemed),
        "protection": {
            "method": "budgets and top-ups: public council decisions, exact. Per closed month: sums of the "
            "dashboard's published daily cells (k people per cell, discrete Laplace noise drawn once "
            "and kept), grouped by the fund each rule drew on; a month's redemptions only when at "
            "least k shops were paid in it; euros are the published figure times the euro value",
            "k": policy.k,
            "epsilon_per_day": policy.epsilon_per_day,
        },
    }
