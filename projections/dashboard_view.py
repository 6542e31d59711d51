"""What the dashboards publish: read-model cells with k-anonymity applied.

Every figure is a `kanon.cell`; nothing leaves here with fewer than K people
behind it, and per-period figures count distinct people over the period.
"""

from __future__ import annotations

from typing import Any

from projections.appeals import appeal_figures
from projections.kanon import K_ANONYMITY, cell
from projections.settlement import net_positions, pairs
from projections.store import Tx
from projections.workflow_view import equilibrium

DAILY = ("issued", "spent", "co2_g", "active")
PERIOD = (
    "issued_by_rule",
    "spent_by_category",
    "vouchers_redeemed",
    "prizes_redeemed",
    "redemptions_by_partner",
)


def _daily(tx: Tx, city: str, metric: str, k: int) -> dict[str, dict[str, Any]]:
    rows = tx.all(
        "SELECT c.day, c.value, COUNT(p.wallet_id) FROM rm_cells c JOIN rm_cell_people p "
        "ON p.city = c.city AND p.day = c.day AND p.metric = c.metric AND p.key = c.key "
        "WHERE c.city = ? AND c.metric = ? AND c.key = '' GROUP BY c.day, c.value ORDER BY c.day",
        (city, metric),
    )
    # An "active" cell's figure is its head count.
    return {str(d): cell(int(n) if metric == "active" else int(v), int(n), k) for d, v, n in rows}


def _period(tx: Tx, city: str, metric: str, k: int) -> dict[str, dict[str, Any]]:
    values = tx.all(
        "SELECT key, SUM(value) FROM rm_cells WHERE city = ? AND metric = ? GROUP BY key", (city, metric)
    )
    people = dict(
        tx.all(
            "SELECT key, COUNT(DISTINCT wallet_id) FROM rm_cell_people WHERE city = ? AND metric = ? "
            "GROUP BY key",
            (city, metric),
        )
    )
    ordered = sorted(values, key=lambda r: -int(r[1]))
    return {str(key): cell(int(v), int(people.get(key, 0)), k) for key, v in ordered}


def cities(tx: Tx) -> list[str]:
    rows = tx.all("SELECT DISTINCT city FROM rm_cells UNION SELECT DISTINCT city FROM rm_balances")
    return sorted(str(r[0]) for r in rows)


def city_dashboard(tx: Tx, city: str, k: int = K_ANONYMITY) -> dict[str, Any]:
    daily = {m: _daily(tx, city, m, k) for m in DAILY}
    days = sorted({d for series in daily.values() for d in series})
    period: dict[str, Any] = {}
    for metric in PERIOD:
        found = _period(tx, city, metric, k)
        # Totals without a key are one cell; keyed metrics are a breakdown.
        period[metric] = found.get("", cell(0, 0, k)) if metric.endswith("_redeemed") else found
    out = {"city": city, "k": k, "days": days, "daily": daily, **period, **appeal_figures(tx, city, k)}
    report = equilibrium(tx, city, k)
    if report is not None:  # a depreciating currency: its equilibrium and treasury
        out["equilibrium"] = report
    return out


def federation_dashboard(tx: Tx, k: int = K_ANONYMITY) -> dict[str, Any]:
    """The settlement matrix (debtor's units), redemptions per pair, and net positions (each city's units).

    Every settlement figure is drawn from the people who redeemed, so each is
    k-anonymous by those wallets; a net position takes the fewer people of its
    two directions.
    """
    rows = pairs(tx)
    cells = [{"from": d, "to": c, **cell(amount, people, k)} for d, c, amount, _, people in rows]
    # How many vouchers each home city's people redeemed at each partner's shops.
    counts = [{"from": d, "to": c, **cell(n, people, k)} for d, c, _, n, people in rows]
    names = cities(tx)
    positions: dict[str, dict[str, Any]] = {c: {} for c in names}
    for (city, partner), (net, people) in sorted(net_positions(tx).items()):
        positions.setdefault(city, {})[partner] = cell(net, people, k)
    totals = {c: city_dashboard(tx, c, k)["issued_by_rule"] for c in names}
    return {
        "k": k,
        "cities": names,
        "settlement": cells,
        "redemptions": counts,
        "net_positions": positions,
        "issued_by_rule": totals,
    }
