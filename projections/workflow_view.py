"""The equilibrium report of a depreciating currency, month by month, for closed months only.

Per closed month, five base cells: tokens minted, spent in shops, paid as municipal tax,
lapsed in closed wallets, and the money supply at month end. Each is published the way
every dashboard figure is (`projections.disclosure`: k people, discrete Laplace noise drawn
once and stored). Depreciation, the issuance rate and the steady-state supply are computed
from those published figures only (issuance per year × period / 2), so a derived figure is
withheld whenever one it is derived from is, and reveals nothing the published cells do not.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aggregates.depreciation import DAYS_PER_YEAR, steady_state_supply, total_at
from projections.disclosure import Noise, Period, Policy, opendp_noise, publish, total
from projections.store import Tx
from projections.workflow import load_lots, month_end, next_month, wallet_months

FLOWS = ("minted", "spent", "tax", "lapsed")  # lapsed: left in a wallet when it closed
CELLS = (*FLOWS, "supply")  # the base cells of one month; the month's budget is split over them
RATE_MONTHS = 3  # the current issuance rate: the latest three months, annualised


def _published(c: dict[str, Any]) -> bool:
    return "value" in c


def _derived(value: int, sources: list[dict[str, Any]], k: int) -> dict[str, Any]:
    if all(_published(s) for s in sources):
        return {"value": value, "protection": {"method": "derived from published cells"}}
    return {"suppressed": True, "reason": "derived from a suppressed figure"}


def equilibrium(
    tx: Tx,
    city: str,
    policy: Policy | None = None,
    now: dt.datetime | None = None,
    noise: Noise = opendp_noise,
    published_tx: Tx | None = None,
) -> dict[str, Any] | None:
    """None for a city whose currency keeps no lots. `published_tx`: where the month's cells
    are drawn and kept, when the raw read model is a private one."""
    policy = policy or Policy()
    now = now or dt.datetime.now(dt.UTC)
    k = policy.k
    state = tx.one("SELECT month, period_days FROM rm_wf_state WHERE city = ?", (city,))
    if state is None:
        return None
    open_month, period = str(state[0]), int(state[1])
    values = {
        (str(m), str(metric)): int(v)
        for m, metric, v in tx.all("SELECT month, metric, value FROM rm_wf_months WHERE city = ?", (city,))
    }
    people = {
        (str(m), str(metric)): int(n)
        for m, metric, n in tx.all(
            "SELECT month, metric, COUNT(wallet_id) FROM rm_wf_people WHERE city = ? GROUP BY month, metric",
            (city,),
        )
    }
    # Closing supply: wallets already closed for a month, plus those still open in
    # it or earlier, valued now on the lots they hold (unchanged since).
    lots, opened = load_lots(tx, city), wallet_months(tx, city)
    month = min([m for m, _ in values] + [open_month])
    while month <= open_month:
        open_here = [total_at(lots.get(w, []), month_end(month)) for w, m in opened.items() if m <= month]
        values[(month, "supply_end")] = values.get((month, "supply_closed"), 0) + sum(open_here)
        values[(month, "holders_end")] = values.get((month, "holders_closed"), 0) + sum(
            v > 0 for v in open_here
        )
        month = next_month(month)

    def cell(month: str, metric: str, value: int, people: int) -> dict[str, Any]:
        if people == 0 and value == 0:
            # Nobody took part: nothing about anyone is shown by it, and it spends nothing.
            return {"value": 0, "empty": True, "protection": {"method": "no one took part"}}
        return publish(
            published_tx or tx,
            city,
            Period("month", dt.date.fromisoformat(month + "-01")),
            f"equilibrium_{metric}",
            {"": (value, people)},
            epsilon=policy.epsilon_per_month / len(CELLS),
            sensitivity=policy.bound(f"month_{metric}"),
            k=k,
            now=now,
            noise=noise,
        )[""]

    month = min(m for m, _ in values)
    rows: list[dict[str, Any]] = []
    before: dict[str, Any] = {"value": 0}
    while month <= open_month and Period("month", dt.date.fromisoformat(month + "-01")).closed(
        now, policy.grace
    ):
        flows = {f: cell(month, f, values.get((month, f), 0), people.get((month, f), 0)) for f in FLOWS}
        end = cell(month, "supply", values[(month, "supply_end")], values.get((month, "holders_end"), 0))
        sources = [before, end, *flows.values()]
        lost = (
            before.get("value", 0)
            + sum(flows[f].get("value", 0) * (1 if f == "minted" else -1) for f in FLOWS)
            - end.get("value", 0)
        )
        rows.append(
            {"month": month, **flows, "depreciated": _derived(max(0, lost), sources, k), "supply": end}
        )
        before, month = end, next_month(month)

    recent = rows[-RATE_MONTHS:]
    rate_sources = [r["minted"] for r in recent]
    minted = sum(c.get("value", 0) for c in rate_sources)
    per_year = minted * 12 // len(recent) if recent else 0
    return {
        "city": city,
        "k": k,
        "epsilon_per_month": policy.epsilon_per_month,
        "months": rows,
        "period_days": period,
        "period_years": period // DAYS_PER_YEAR,
        "issuance_per_year": _derived(per_year, rate_sources, k) if recent else _none(),
        "steady_state_supply": (
            _derived(steady_state_supply(per_year, period), rate_sources, k) if recent else _none()
        ),
        "treasury_received": total([r["tax"] for r in rows if not r["tax"].get("empty")]),
        "method": (
            "closed months only; minted, spent, tax, lapsed and supply per month are published cells "
            f"(k = {k}, discrete Laplace noise, epsilon {policy.epsilon_per_month} per month); "
            f"issuance per year = published minted in the latest {len(recent)} closed month(s) × 12 / "
            f"{len(recent)}; steady state = issuance per year × period / 2 (linear depreciation), rounded "
            "down; depreciated = supply before + minted − spent − tax − lapsed − supply after, "
            "all published; "
            "supply at month end = every lot valued on the first day of the next month"
        ),
    }


def _none() -> dict[str, Any]:
    return {"suppressed": True, "reason": "no closed month"}
