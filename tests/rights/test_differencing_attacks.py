"""Attacks on the published figures that worked before the disclosure method, and now recover nothing.

Each test plays Bologna's points on real SQLite stores, projects them with the real read
models and reads the figures through the dashboard's JSON API over HTTP, with real OpenDP
noise. Bologna's points table: a bus ride is 3 points, a recycling drop-off 8, a civic
event 25. Events are dated on a scenario clock; the dashboard's clock is injected.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from projections.log_source import catch_up_log
from projections.projector import Projector
from projections.store import Store
from services.demo.clock import scenario_time
from tests.dashboard.conftest import serving
from tests.rights.apps import city_app

MAY_4 = dt.datetime(2026, 5, 4, 9, 0, tzinfo=dt.UTC)
MAY_5 = MAY_4 + dt.timedelta(days=1)
DURING_MAY_5 = dt.datetime(2026, 5, 5, 18, 0, tzinfo=dt.UTC)  # 4 May closed, 5 May open
MAY_5_CLOSED = dt.datetime(2026, 5, 6, 12, 0, tzinfo=dt.UTC)


class City:
    """Bologna's store, its read models, and a dashboard reader at a moment of our choosing."""

    def __init__(self, tmp_path: Path) -> None:
        self.app = city_app("bologna", tmp_path)
        self.rm = tmp_path / "rm.sqlite"
        self.projector = Projector(Store(f"sqlite:///{self.rm}"))
        consent = self.app.city.config.consent_versions[-1]
        opened = self.app.execute_group(
            [self.app.open_wallet(f"w{i}", "resident", consent) for i in range(13)]
        )
        self.wallets = [UUID(r["wallet_id"]) for r in opened if isinstance(r, dict)]
        self.n = 0

    def act(self, at: dt.datetime, wallet: UUID, activity: str, fields: dict[str, str]) -> None:
        self.n += 1
        with scenario_time(lambda: at):
            self.app.execute(
                self.app.record_activity(
                    f"act{self.n}", wallet, activity, {**fields, "date": at.date().isoformat()}
                )
            )

    def bus_rides(self, at: dt.datetime, people: int) -> None:
        for w in self.wallets[:people]:
            self.act(at, w, "eco_action", {"action": "bus_ride"})

    def board(self, now: dt.datetime) -> dict[str, Any]:
        """/api/city/bologna as the dashboard serves it at `now`."""
        catch_up_log(self.projector, self.app, "bologna")
        with (
            serving(Store(f"sqlite:///{self.rm}"), clock=lambda: now) as url,
            urllib.request.urlopen(f"{url}/api/city/bologna", timeout=10) as r,
        ):
            found: dict[str, Any] = json.loads(r.read())
        return found

    def raw(self, sql: str) -> int:
        with self.projector.store.transaction() as tx:
            row = tx.one(sql)
        return int(row[0]) if row and row[0] is not None else 0


@pytest.fixture
def city(tmp_path: Path) -> Iterator[City]:
    c = City(tmp_path)
    yield c
    c.app.close()
    c.projector.store.close()


def keys(doc: Any) -> set[str]:
    """Every key anywhere in a JSON document."""
    if isinstance(doc, dict):
        return set(doc) | {k for v in doc.values() for k in keys(v)}
    if isinstance(doc, list):
        return {k for v in doc for k in keys(v)}
    return set()


def published_days(series: dict[str, dict[str, Any]]) -> int:
    return sum(c["value"] for c in series.values() if "value" in c)


def test_period_total_minus_published_days_recovers_nothing(city: City) -> None:
    """Ten residents each take a bus ride on 4 May; on 5 May only one of them recycles.

    before: the period total 38 − the published 4 May (30) = 8, that one person's award.
    now: the period total is the sum of the published days, so the difference is 0, and the
    5 May day is suppressed, so nothing of the 8 is in any figure.
    """
    city.bus_rides(MAY_4, 10)
    city.act(MAY_5, city.wallets[0], "eco_action", {"action": "recycling_drop_off"})
    board = city.board(MAY_5_CLOSED)
    assert city.raw("SELECT SUM(value) FROM rm_cells WHERE metric = 'issued_by_rule'") == 38

    assert board["daily"]["issued"]["2026-05-05"] == {"suppressed": True, "reason": "no published cell"}
    may_4 = board["daily"]["issued"]["2026-05-04"]
    assert may_4["protection"]["method"] == "sum of published cells"
    total = board["issued_by_rule"]["eco-actions"]
    assert total["protection"] == {"method": "sum of published cells", "cells": 1}
    assert total["value"] - published_days(board["daily"]["issued"]) == 0
    # The one cell it adds is noised, and says how: the city's ε per day over five daily figures.
    cell = board["cells"]["issued_by_rule"]["2026-05-04"]["eco-actions"]
    assert cell["value"] == total["value"] == may_4["value"]
    assert cell["protection"] == {
        "method": "laplace",
        "epsilon": 2.0 / 5,
        "sensitivity": 60,
        "k": 10,
        "period": "closed day 2026-05-04",
    }
    assert board["cells"]["issued_by_rule"]["2026-05-05"]["eco-actions"]["suppressed"] is True


def test_the_same_query_before_and_after_one_persons_action_shows_no_change(city: City) -> None:
    """Time slicing: read, let one person act, read again.

    before: 38 → 44 with the person count still 10, so 6 is that one person's award (a
    bike-to-work on the open day, read from the running total).
    now: an open day is not published at all, and head counts are never published, so the
    two readings are identical; once the day closes, its cell from one person is suppressed.
    """
    city.bus_rides(MAY_4, 10)
    city.act(MAY_5, city.wallets[0], "eco_action", {"action": "recycling_drop_off"})
    first = city.board(DURING_MAY_5)
    city.act(MAY_5 + dt.timedelta(hours=2), city.wallets[1], "eco_action", {"action": "bike_to_work"})
    second = city.board(DURING_MAY_5)
    assert city.raw("SELECT SUM(value) FROM rm_cells WHERE metric = 'issued_by_rule'") == 44
    assert second == first
    assert "2026-05-05" not in first["days"] and "people" not in keys(first)

    closed = city.board(MAY_5_CLOSED)
    assert closed["daily"]["active"]["2026-05-05"] == {"suppressed": True, "reason": "fewer than 10 people"}
    # The 4 May figure drawn before is the figure now: drawn once, not again.
    assert closed["daily"]["issued"]["2026-05-04"] == first["daily"]["issued"]["2026-05-04"]
    assert closed["issued_by_rule"]["eco-actions"]["value"] == first["issued_by_rule"]["eco-actions"]["value"]


def test_a_total_minus_its_published_categories_recovers_nothing(city: City) -> None:
    """Cross-category difference: ten people ride the bus on 4 May, three join a clean-up.

    before: the day's issued total (13 people, 105) − its published eco-actions (30) = 75,
    the suppressed civic-event category (three people's awards).
    now: the day's total is the sum of its published categories: total − categories = 0.
    """
    city.bus_rides(MAY_4, 10)
    for w in city.wallets[10:13]:
        city.act(MAY_4, w, "civic_event", {"subject": "clean-up-4-may"})
    board = city.board(DURING_MAY_5)
    assert city.raw("SELECT value FROM rm_cells WHERE metric = 'issued' AND day = '2026-05-04'") == 105

    assert board["issued_by_rule"]["civic-event"] == {"suppressed": True, "reason": "no published cell"}
    categories = [c["value"] for c in board["issued_by_rule"].values() if "value" in c]
    day_total = board["daily"]["issued"]["2026-05-04"]["value"]
    assert day_total - sum(categories) == 0


def test_the_published_figure_is_noise_drawn_once_and_stated(city: City) -> None:
    """Averaging: reading many times gives one draw, so the noise does not average away."""
    city.bus_rides(MAY_4, 10)
    readings = [city.board(DURING_MAY_5)["daily"]["issued"]["2026-05-04"]["value"] for _ in range(3)]
    assert len(set(readings)) == 1
    with city.projector.store.transaction() as tx:
        rows = tx.all(
            "SELECT value, people, noised, method FROM rm_published_cells WHERE metric = 'issued_by_rule'"
        )
    assert len(rows) == 1 and rows[0][:2] == (30, 10) and rows[0][3] == "laplace"
    assert rows[0][2] == readings[0]


def test_a_rebuild_of_the_read_models_draws_nothing_new(city: City) -> None:
    """A rebuild empties and replays the read models; the kept draws are not a read model, so
    the figures after it are the figures before it (a rebuild is no way to a second sample)."""
    city.bus_rides(MAY_4, 10)
    before = city.board(DURING_MAY_5)
    city.projector.reset()
    assert city.raw("SELECT COUNT(*) FROM rm_cells") == 0
    assert city.board(DURING_MAY_5) == before


def test_one_persons_part_of_a_figure_is_capped_at_the_bound_the_noise_is_scaled_to(city: City) -> None:
    """The noise is scaled to a bound on what one person adds to a day's figures; a person who
    earned more than that bound would stand out of the noise. Before: the figure summed
    everyone's awards as they were (10 riders at 3 points and one at 3 + 8 + 25 = 36 gave
    30 + 36 = 66 for the day). Now each person's part of the day is capped at the bound
    before the figures are summed and noised, so one person moves them by at most the bound."""
    from projections.dashboard_view import city_dashboard
    from projections.disclosure import Policy

    city.bus_rides(MAY_4, 11)
    heavy = city.wallets[0]
    city.act(MAY_4, heavy, "eco_action", {"action": "recycling_drop_off"})
    city.act(MAY_4, heavy, "civic_event", {"subject": "clean-up-4-may"})
    catch_up_log(city.projector, city.app, "bologna")
    exact = city.raw("SELECT SUM(value) FROM rm_cells WHERE metric = 'issued_by_rule' AND day = '2026-05-04'")
    bound = 10  # below the heavy earner's 36 points that day
    policy = Policy(bounds={"issued_by_rule": bound})
    with city.projector.store.transaction() as tx:
        board = city_dashboard(tx, "bologna", policy, MAY_5_CLOSED, noise=lambda value, scale: value)
        kept = tx.all(
            "SELECT key, value, people FROM rm_published_cells WHERE metric = 'issued_by_rule' "
            "AND period = 'day:2026-05-04'"
        )
    capped = {str(k): (int(v), int(n)) for k, v, n in kept}
    # Ten riders at 3 points each, and the heavy earner's 36 scaled to 10 over the rules they used.
    assert sum(v for v, _ in capped.values()) <= 10 * 3 + bound < exact
    assert sum(v for v, _ in capped.values()) >= 10 * 3
    issued = board["daily"]["issued"]["2026-05-04"]
    assert issued["value"] <= 10 * 3 + bound
    assert board["protection"]["sensitivity"]["issued_by_rule"] == bound
