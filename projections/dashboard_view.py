"""What the dashboards publish: base cells of closed periods, protected by `disclosure`.

Base cells (each one k-checked, noised once and stored):

- per closed UTC day: tokens issued per rule, tokens spent per merchant category,
  active people, vouchers redeemed, prizes redeemed;
- per closed week: tokens redeemed at each partner city's shops (the public settlement figure)
  and appeals filed.

Everything else is a sum of published cells: a day's tokens issued (over its rules), a day's
tokens spent (over its categories), every period total, the federation's totals. Figures of
an open day or week are not shown at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from projections.appeals import appeal_cells
from projections.disclosure import Noise, Period, Policy, opendp_noise, publish, total, week_of
from projections.store import Tx
from projections.workflow_view import equilibrium

# Metric -> how its base cells are periodised. Each day's budget is split evenly over the
# daily metrics, each week's over the weekly ones (sequential composition: one person may
# be in every metric of a period).
DAILY = ("issued_by_rule", "spent_by_category", "active", "vouchers_redeemed", "prizes_redeemed")
WEEKLY = ("redemptions_by_partner", "appeals", "appeals_decided", "appeal_wait_hours")

Cells = dict[str, dict[str, tuple[int, int]]]  # period start -> key -> (value, people)


def _capped(rows: list[tuple[Any, ...]], bound: int, period_of: Callable[[str], str]) -> Cells:
    """Cells from people's own parts, `(day, key, person, value)` rows: period -> key ->
    (value, distinct people).

    One person's parts of one period's cells of a metric add up to at most `bound` (the
    metric's sensitivity): above it, each part is scaled down (rounding down), so a published
    figure moves by no more than the bound when one person is added or removed, whatever
    they did. The noise's scale is computed from that bound, so it holds by construction.
    """
    parts: dict[tuple[str, str], dict[str, int]] = {}  # (period, person) -> key -> value
    for d, key, person, value in rows:
        mine = parts.setdefault((period_of(str(d)), str(person)), {})
        mine[str(key)] = mine.get(str(key), 0) + int(value)
    sums: dict[tuple[str, str], list[int]] = {}
    for (period, _), mine in parts.items():
        whole = sum(mine.values())
        for key, value in mine.items():
            cell = sums.setdefault((period, key), [0, 0])
            cell[0] += value if whole <= bound else value * bound // whole
            cell[1] += 1
    out: Cells = {}
    for (period, key), (value, people) in sums.items():
        out.setdefault(period, {})[key] = (value, people)
    return out


def _parts(tx: Tx, city: str, metric: str) -> list[tuple[Any, ...]]:
    return tx.all(
        "SELECT day, key, wallet_id, value FROM rm_cell_people WHERE city = ? AND metric = ?", (city, metric)
    )


def _raw(tx: Tx, city: str, metric: str, bound: int) -> Cells:
    """Daily cells of `metric`, each person's part capped: day -> key -> (value, distinct people).
    An "active" cell's figure is its head count."""
    rows = _parts(tx, city, metric)
    if metric == "active":
        rows = [(d, key, person, 1) for d, key, person, _ in rows]
    return _capped(rows, bound, lambda d: d)


def _weekly(tx: Tx, city: str, metric: str, bound: int) -> Cells:
    """Weekly cells of a daily-recorded metric: people counted once over the week, each
    person's week capped."""
    return _capped(_parts(tx, city, metric), bound, lambda d: week_of(d).start.isoformat())


def sensitivity(policy: Policy, metric: str) -> int:
    """The most one person moves one period's cells of `metric`: each person's part is capped
    at it before summing (`_capped`), and the noise is scaled to it."""
    return 1 if metric == "active" else policy.bound(metric)


class Publisher:
    """Publishes one city's closed base cells under its policy, at `now`."""

    def __init__(self, tx: Tx, city: str, policy: Policy, now: dt.datetime, noise: Noise) -> None:
        self.tx, self.city, self.policy, self.now, self.noise = tx, city, policy, now, noise

    def series(self, metric: str, cells: Cells, kind: str) -> dict[str, dict[str, dict[str, Any]]]:
        """Closed period start -> key -> published figure."""
        budget, share = (
            (self.policy.epsilon_per_day, len(DAILY))
            if kind == "day"
            else (self.policy.epsilon_per_week, len(WEEKLY))
        )
        out = {}
        for start in sorted(cells):
            period = Period(kind, dt.date.fromisoformat(start))
            if not period.closed(self.now, self.policy.grace):
                continue  # an open period: nothing of it is shown, not even a running total
            out[start] = publish(
                self.tx,
                self.city,
                period,
                metric,
                cells[start],
                epsilon=budget / share,
                sensitivity=sensitivity(self.policy, metric),
                k=self.policy.k,
                now=self.now,
                noise=self.noise,
            )
        return out


def _by_key(series: Mapping[str, Mapping[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per key, the sum of its published cells over every closed period; largest first."""
    keys = sorted({k for cells in series.values() for k in cells})
    found = {k: total([cells[k] for cells in series.values() if k in cells]) for k in keys}
    return dict(sorted(found.items(), key=lambda kv: -int(kv[1].get("value", -1))))


def _per_period(series: Mapping[str, Mapping[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per period, its one keyless cell, or the sum of its keyed published cells."""
    return {
        p: cells[""] if set(cells) == {""} else total(list(cells.values())) for p, cells in series.items()
    }


def _sum(series: Mapping[str, Mapping[str, dict[str, Any]]]) -> dict[str, Any]:
    """One figure over every closed period: the sum of all its published cells."""
    return total([f for cells in series.values() for f in cells.values()])


def cities(tx: Tx) -> list[str]:
    rows = tx.all("SELECT DISTINCT city FROM rm_cells UNION SELECT DISTINCT city FROM rm_balances")
    return sorted(str(r[0]) for r in rows)


def protection_note(policy: Policy) -> dict[str, Any]:
    return {
        "method": "closed periods only; base cells from fewer than k people suppressed; discrete Laplace "
        "noise (OpenDP) drawn once per closed cell and stored; every total a sum of published cells",
        "k": policy.k,
        "epsilon_per_day": policy.epsilon_per_day,
        "epsilon_per_week": policy.epsilon_per_week,
        "epsilon_per_month": policy.epsilon_per_month,
        "daily_metrics": list(DAILY),
        "weekly_metrics": list(WEEKLY),
        "sensitivity": {m: sensitivity(policy, m) for m in (*DAILY, *WEEKLY)},
    }


def city_dashboard(
    tx: Tx,
    city: str,
    policy: Policy | None = None,
    now: dt.datetime | None = None,
    noise: Noise = opendp_noise,
) -> dict[str, Any]:
    policy = policy or Policy()
    pub = Publisher(tx, city, policy, now or dt.datetime.now(dt.UTC), noise)
    daily = {m: pub.series(m, _raw(tx, city, m, sensitivity(policy, m)), "day") for m in DAILY}
    # One person's appeals in a week, and each wait, are capped, so the bounds hold.
    per_person = policy.bound("appeals_decided")
    appeals = appeal_cells(tx, city, per_person, policy.bound("appeal_wait_hours") // per_person)
    weekly = {
        m: pub.series(m, appeals[m] if m in appeals else _weekly(tx, city, m, sensitivity(policy, m)), "week")
        for m in WEEKLY
    }
    days = sorted({d for series in daily.values() for d in series})
    out: dict[str, Any] = {
        "city": city,
        "k": policy.k,
        "protection": protection_note(policy),
        "days": days,
        "daily": {
            "issued": _per_period(daily["issued_by_rule"]),
            "spent": _per_period(daily["spent_by_category"]),
            "active": _per_period(daily["active"]),
        },
        "issued_by_rule": _by_key(daily["issued_by_rule"]),
        "spent_by_category": _by_key(daily["spent_by_category"]),
        "vouchers_redeemed": _sum(daily["vouchers_redeemed"]),
        "prizes_redeemed": _sum(daily["prizes_redeemed"]),
        "redemptions_by_partner": _by_key(weekly["redemptions_by_partner"]),
        "weekly": {m: _per_period(weekly[m]) for m in WEEKLY},
        **{m: _sum(weekly[m]) for m in ("appeals", "appeals_decided", "appeal_wait_hours")},
        # Every base cell as published (period -> key -> figure): what each total above adds.
        "cells": {**daily, **weekly},
    }
    hours, decided = out["appeal_wait_hours"], out["appeals_decided"]
    # A ratio of two published sums: post-processing, no further budget.
    out["mean_hours_to_decision"] = (
        {"value": hours["value"] // decided["value"], "protection": {"method": "ratio of published sums"}}
        if decided.get("value") and "value" in hours
        else {"suppressed": True, "reason": "no published decisions"}
    )
    report = equilibrium(tx, city, policy, pub.now, noise)
    if report is not None:  # a depreciating currency: its equilibrium and treasury
        out["equilibrium"] = report
    return out


def federation_dashboard(
    tx: Tx,
    policies: Mapping[str, Policy] | None = None,
    now: dt.datetime | None = None,
    noise: Noise = opendp_noise,
) -> dict[str, Any]:
    """Tokens redeemed per pair of cities per closed week (the home city's units, noised), and
    per city the tokens issued per rule: every figure a published cell or a sum of them.

    Exact settlement (what each node owes, credits and nets) is not published: finance staff
    of a partner city read it from the node (`FederationService.GetSettlement`).
    """
    policies = policies or {}
    at = now or dt.datetime.now(dt.UTC)
    names = cities(tx)
    boards = {c: city_dashboard(tx, c, policies.get(c), at, noise) for c in names}
    settlement = [
        {"from": home, "to": partner, **figure}
        for home in names
        for partner, figure in boards[home]["redemptions_by_partner"].items()
    ]
    weekly = [
        {"from": home, "to": partner, "week": w, **figure}
        for home, policy in ((h, policies.get(h) or Policy()) for h in names)
        for w, cells in sorted(
            Publisher(tx, home, policy, at, noise)
            .series(
                "redemptions_by_partner",
                _weekly(tx, home, "redemptions_by_partner", sensitivity(policy, "redemptions_by_partner")),
                "week",
            )
            .items()
        )
        for partner, figure in cells.items()
    ]
    return {
        "k": max([p.k for p in policies.values()] + [Policy().k]),
        "protection": {c: boards[c]["protection"] for c in names},
        "cities": names,
        "settlement": settlement,
        "settlement_by_week": weekly,
        "issued_by_rule": {c: boards[c]["issued_by_rule"] for c in names},
        "issued": {c: total(list(boards[c]["issued_by_rule"].values())) for c in names},
    }
