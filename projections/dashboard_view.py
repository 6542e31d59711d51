"""What the dashboards publish: base cells of closed periods, protected by `disclosure`.

Base cells (each one k-checked, noised once and stored):

- per closed UTC day: tokens issued per rule, tokens spent per merchant category, CO2 saved,
  active people, vouchers redeemed, prizes redeemed;
- per closed week: tokens redeemed at each partner city's shops (the public settlement figure)
  and appeals filed.

Everything else is a sum of published cells: a day's tokens issued (over its rules), a day's
tokens spent (over its categories), every period total, the federation's totals. Figures of
an open day or week are not shown at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
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


def _raw(tx: Tx, city: str, metric: str) -> Cells:
    """Exact daily cells of `metric`: day -> key -> (value, distinct people)."""
    rows = tx.all(
        "SELECT c.day, c.key, c.value, COUNT(p.wallet_id) FROM rm_cells c JOIN rm_cell_people p "
        "ON p.city = c.city AND p.day = c.day AND p.metric = c.metric AND p.key = c.key "
        "WHERE c.city = ? AND c.metric = ? GROUP BY c.day, c.key, c.value",
        (city, metric),
    )
    out: Cells = {}
    for d, key, value, people in rows:
        # An "active" cell's figure is its head count.
        out.setdefault(str(d), {})[str(key)] = (
            int(people) if metric == "active" else int(value),
            int(people),
        )
    return out


def _weekly(tx: Tx, city: str, metric: str) -> Cells:
    """Exact weekly cells of a daily-recorded metric: people counted once over the week."""
    rows = tx.all(
        "SELECT c.day, c.key, c.value FROM rm_cells c WHERE c.city = ? AND c.metric = ?", (city, metric)
    )
    who = tx.all(
        "SELECT day, key, wallet_id FROM rm_cell_people WHERE city = ? AND metric = ?", (city, metric)
    )
    values: dict[tuple[str, str], int] = {}
    people: dict[tuple[str, str], set[str]] = {}
    for d, key, value in rows:
        cell = (week_of(str(d)).start.isoformat(), str(key))
        values[cell] = values.get(cell, 0) + int(value)
    for d, key, wallet in who:
        people.setdefault((week_of(str(d)).start.isoformat(), str(key)), set()).add(str(wallet))
    out: Cells = {}
    for (w, key), value in values.items():
        out.setdefault(w, {})[key] = (value, len(people.get((w, key), ())))
    return out


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
                sensitivity=1 if metric == "active" else self.policy.bound(metric),
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
        "sensitivity": {m: 1 if m == "active" else policy.bound(m) for m in (*DAILY, *WEEKLY)},
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
    daily = {m: pub.series(m, _raw(tx, city, m), "day") for m in DAILY}
    # One person's appeals in a week, and each wait, are capped, so the bounds hold.
    per_person = policy.bound("appeals_decided")
    appeals = appeal_cells(tx, city, per_person, policy.bound("appeal_wait_hours") // per_person)
    weekly = {m: pub.series(m, appeals[m] if m in appeals else _weekly(tx, city, m), "week") for m in WEEKLY}
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
        for home in names
        for w, cells in sorted(
            Publisher(tx, home, policies.get(home) or Policy(), at, noise)
            .series("redemptions_by_partner", _weekly(tx, home, "redemptions_by_partner"), "week")
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
