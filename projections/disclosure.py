"""How every published figure is protected: closed periods, k people, noise drawn once.

The one method (docs/RIGHTS.md, section 8):

1. A figure covers a **closed** period only: a UTC day once it is over (a week once its
   last day is), plus a grace for late deliveries. Nothing of an open period is shown,
   so reading again after one more action shows nothing new.
2. A **base cell** (period × metric × key) is the only thing measured. One from fewer than
   k distinct people is suppressed; every other gets discrete Laplace noise (OpenDP) of
   scale sensitivity / ε.
3. The decision and the noise are drawn **once** per closed cell and stored in
   `rm_published_cells`; every later reading returns the stored figure, spends no
   budget, and ignores events that arrive after the draw. The table is not a read model:
   a rebuild leaves it alone, so a rebuild cannot draw a second sample.
4. Every **total** is a sum of published (noised) cells, labelled so; no total is measured
   from the raw cells, so a total minus its published parts is only other noise.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from projections.store import Tx

K_MIN = 10  # no city may publish a cell from fewer people than this

# (exact value, noise scale) -> noised value. The default draws from OpenDP; tests wrap it.
Noise = Callable[[int, float], int]

PUBLISHED_DDL = (
    "CREATE TABLE IF NOT EXISTS rm_published_cells (city TEXT NOT NULL, period TEXT NOT NULL, "
    "metric TEXT NOT NULL, key TEXT NOT NULL, value BIGINT NOT NULL, people BIGINT NOT NULL, "
    "noised BIGINT, epsilon DOUBLE PRECISION NOT NULL, sensitivity BIGINT NOT NULL, k INTEGER NOT NULL, "
    "method TEXT NOT NULL, drawn_at TEXT NOT NULL, PRIMARY KEY (city, period, metric, key))"
)


@dataclass(frozen=True)
class Policy:
    """One city's disclosure terms (from `[disclosure]` in its city.toml).

    `bounds`: for each metric, the most one person adds to one period's cells of it,
    summed over the metric's keys (the L1 sensitivity of that period's release).
    """

    epsilon_per_day: float = 1.0
    epsilon_per_week: float = 1.0
    epsilon_per_month: float = 1.0
    k: int = K_MIN
    bounds: Mapping[str, int] = field(default_factory=dict)
    grace: dt.timedelta = dt.timedelta(hours=1)

    def __post_init__(self) -> None:
        if self.k < K_MIN:
            raise ValueError(f"k must be at least {K_MIN}")
        if min(self.epsilon_per_day, self.epsilon_per_week, self.epsilon_per_month) <= 0:
            raise ValueError("epsilon must be above zero")

    def bound(self, metric: str) -> int:
        return int(self.bounds.get(metric, 1))


@dataclass(frozen=True)
class Period:
    """A day, a week (starting Monday) or a month, in UTC, the way the read models date events."""

    kind: str  # "day", "week" or "month"
    start: dt.date

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.start.isoformat()}"

    def end(self) -> dt.datetime:
        if self.kind == "month":
            after = dt.date(self.start.year + self.start.month // 12, self.start.month % 12 + 1, 1)
        else:
            after = self.start + dt.timedelta(days=1 if self.kind == "day" else 7)
        return dt.datetime.combine(after, dt.time(), dt.UTC)

    def closed(self, now: dt.datetime, grace: dt.timedelta = dt.timedelta(0)) -> bool:
        """Over, and the grace for late deliveries past too."""
        return now >= self.end() + grace


def day(text: str) -> Period:
    return Period("day", dt.date.fromisoformat(text))


def week_of(text: str) -> Period:
    d = dt.date.fromisoformat(text)
    return Period("week", d - dt.timedelta(days=d.weekday()))


def opendp_noise(value: int, scale: float) -> int:
    """Discrete Laplace noise from OpenDP's own sampler (integers in, integers out)."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    measurement = dp.m.make_laplace(dp.atom_domain(T=int), dp.absolute_distance(T=int), scale=scale)
    return int(measurement(int(value)))


def publish(
    tx: Tx,
    city: str,
    period: Period,
    metric: str,
    cells: Mapping[str, tuple[int, int]],
    *,
    epsilon: float,
    sensitivity: int,
    k: int,
    now: dt.datetime,
    noise: Noise = opendp_noise,
) -> dict[str, dict[str, Any]]:
    """The published figures of one closed period's cells of `metric`: key -> figure.

    `cells`: key -> (exact value, distinct people). A cell already drawn is returned as
    stored, whatever `cells` now says of it; a new one is decided and drawn once.
    """
    tx.execute(PUBLISHED_DDL)

    def stored() -> dict[str, tuple[Any, ...]]:
        rows = tx.all(
            "SELECT key, noised, epsilon, sensitivity, k, method FROM rm_published_cells "
            "WHERE city = ? AND period = ? AND metric = ?",
            (city, period.key, metric),
        )
        return {str(r[0]): r[1:] for r in rows}

    kept = stored()
    new = sorted(set(cells) - set(kept))
    for key in new:
        value, people = cells[key]
        noised: int | None = None
        method = "suppressed"
        if people >= k:
            # Post-processing (flooring at zero) costs no privacy.
            noised, method = max(0, noise(value, sensitivity / epsilon)), "laplace"
        # Another reader (the node's report, a second dashboard) may have drawn this cell
        # meanwhile: its draw stands, and this one is discarded unseen.
        tx.execute(
            "INSERT INTO rm_published_cells VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (city, period, metric, key) DO NOTHING",
            (
                city,
                period.key,
                metric,
                key,
                value,
                people,
                noised,
                epsilon,
                sensitivity,
                k,
                method,
                now.isoformat(),
            ),
        )
    if new:
        kept = stored()
    return {key: figure(period, *kept[key]) for key in sorted(kept)}


def figure(
    period: Period, noised: Any, epsilon: Any, sensitivity: Any, k: Any, method: Any
) -> dict[str, Any]:
    if method != "laplace" or noised is None:
        return {"suppressed": True, "reason": f"fewer than {int(k)} people"}
    return {
        "value": int(noised),
        "protection": {
            "method": "laplace",
            "epsilon": float(epsilon),
            "sensitivity": int(sensitivity),
            "k": int(k),
            "period": f"closed {period.kind} {period.start.isoformat()}",
        },
    }


def total(figures: list[dict[str, Any]]) -> dict[str, Any]:
    """A sum of published cells only: a suppressed cell adds nothing, not even its absence."""
    shown = [f["value"] for f in figures if "value" in f]
    if not shown:
        return {"suppressed": True, "reason": "no published cell"}
    return {"value": sum(shown), "protection": {"method": "sum of published cells", "cells": len(shown)}}
