"""The equilibrium report of a depreciating currency, month by month, k-anonymous.

Per month: tokens minted, depreciated, spent in shops, paid as municipal tax,
lapsed in closed wallets, and the money supply at month end; then the current issuance rate and the
steady-state supply it leads to under linear depreciation,
issuance per year × period / 2. Every figure is a `kanon.cell`; a derived
figure is withheld whenever one of the figures it is derived from is.
"""

from __future__ import annotations

from typing import Any

from aggregates.depreciation import DAYS_PER_YEAR, steady_state_supply, total_at
from projections.kanon import K_ANONYMITY, cell
from projections.store import Tx
from projections.workflow import load_lots, month_end, next_month, wallet_months

FLOWS = ("minted", "spent", "tax", "lapsed")  # lapsed: left in a wallet when it closed
RATE_MONTHS = 3  # the current issuance rate: the latest three months, annualised


def _published(c: dict[str, Any]) -> bool:
    return "value" in c


def _derived(value: int, sources: list[dict[str, Any]], k: int) -> dict[str, Any]:
    if all(_published(s) or s.get("empty") for s in sources):
        return {"value": value}
    return {"suppressed": True, "reason": f"derived from a figure with fewer than {k} people"}


def _flow(value: int, people: int, k: int) -> dict[str, Any]:
    out = cell(value, people, k)
    if people == 0:
        out["empty"] = True  # nobody took part: nothing about anyone is shown by it
    return out


def equilibrium(tx: Tx, city: str, k: int = K_ANONYMITY) -> dict[str, Any] | None:
    """None for a city whose currency keeps no lots."""
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

    month = min(m for m, _ in values)
    rows: list[dict[str, Any]] = []
    before, before_cell = 0, {"value": 0}
    while month <= open_month:
        flows = {f: _flow(values.get((month, f), 0), people.get((month, f), 0), k) for f in FLOWS}
        end = values[(month, "supply_end")]
        end_cell = _flow(end, values.get((month, "holders_end"), 0), k)
        lost = before + sum(values.get((month, f), 0) * (1 if f == "minted" else -1) for f in FLOWS) - end
        rows.append(
            {
                "month": month,
                **flows,
                "depreciated": _derived(lost, [before_cell, end_cell, *flows.values()], k),
                "supply": end_cell,
            }
        )
        before, before_cell, month = end, end_cell, next_month(month)

    recent = rows[-RATE_MONTHS:]
    minted = sum(values.get((r["month"], "minted"), 0) for r in recent)
    per_year = minted * 12 // len(recent)
    rate_sources = [r["minted"] for r in recent]
    paid = tx.one(
        "SELECT COUNT(DISTINCT wallet_id) FROM rm_wf_people WHERE city = ? AND metric = 'tax'", (city,)
    )
    tax_total = sum(v for (m, metric), v in values.items() if metric == "tax")
    return {
        "city": city,
        "k": k,
        "months": rows,
        "period_days": period,
        "period_years": period // DAYS_PER_YEAR,
        "issuance_per_year": _derived(per_year, rate_sources, k),
        "steady_state_supply": _derived(steady_state_supply(per_year, period), rate_sources, k),
        "treasury_received": _flow(tax_total, int(paid[0]) if paid else 0, k),
        "method": (
            f"issuance per year = minted in the latest {len(recent)} month(s) × 12 / {len(recent)}; "
            "steady state = issuance per year × period / 2 (linear depreciation), rounded down; "
            "supply at month end = every lot valued on the first day of the next month"
        ),
    }
