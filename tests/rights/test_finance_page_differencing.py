"""Attacks on the finance page's figures (/api/city/{city}/finance): each month's award per
fund and its redemptions are sums of the dashboard's published daily cells of closed days,
so re-reading, waiting for a late action, or subtracting the city page's figures recovers
no one; and a month's redemptions at a single shop are never shown, however many people
spent there.

Bologna on real SQLite stores, projected with the real read models, read over HTTP with
real OpenDP noise, as tests/rights/test_differencing_attacks.py does.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from projections.log_source import catch_up_log
from projections.store import Store
from services.demo.clock import scenario_time
from tests.dashboard.conftest import serving
from tests.rights.test_differencing_attacks import MAY_4, City

DURING_MAY = dt.datetime(2026, 5, 20, 12, 0, tzinfo=dt.UTC)
MAY_CLOSED = dt.datetime(2026, 6, 2, 12, 0, tzinfo=dt.UTC)


class FinanceCity(City):
    def read(self, path: str, now: dt.datetime) -> dict[str, Any]:
        catch_up_log(self.projector, self.app, "bologna")
        with (
            serving(Store(f"sqlite:///{self.rm}"), clock=lambda: now) as url,
            urllib.request.urlopen(f"{url}{path}", timeout=10) as r,
        ):
            found: dict[str, Any] = json.loads(r.read())
        return found

    def finance(self, now: dt.datetime) -> dict[str, Any]:
        return self.read("/api/city/bologna/finance", now)


@pytest.fixture
def city(tmp_path: Path) -> Iterator[FinanceCity]:
    c = FinanceCity(tmp_path)
    yield c
    c.app.close()
    c.projector.store.close()


def eu_grant(board: dict[str, Any]) -> dict[str, Any]:
    (fund,) = [f for f in board["funds"] if f["fund_id"] == "eu_grant"]
    return fund


def test_an_open_month_shows_nothing_and_a_late_action_changes_no_closed_month(city: FinanceCity) -> None:
    """Read during May, let one person act, read after May: the open month was not shown at
    all; once closed, the month is the sum of its published days, where the one person's day
    is suppressed, so the month is the same with or without them."""
    city.bus_rides(MAY_4, 12)
    during = city.finance(DURING_MAY)
    assert during["months"] == [] and eu_grant(during)["awarded_by_month"] == {}
    assert eu_grant(during)["budget"] == eu_grant(during)["declared"] > 0  # the budget is public at once

    first = city.finance(MAY_CLOSED)
    may = eu_grant(first)["awarded_by_month"]["2026-05"]
    assert may["protection"] == {"method": "sum of published cells", "cells": 1}
    # It is exactly the city page's published 4 May cell: nothing measured anew.
    board = city.read("/api/city/bologna", MAY_CLOSED)
    cell = board["cells"]["issued_by_rule"]["2026-05-04"]["eco-actions"]
    assert cell["protection"]["method"] == "laplace" and may["value"] == cell["value"]
    assert Decimal(may["eur"]["value"]) == Decimal(may["value"]) / 10  # Bologna's 0.10 euro a point

    # One person acts on 20 May; the event reaches the read models after the first reading.
    with scenario_time(lambda: DURING_MAY):
        city.app.execute(
            city.app.record_activity(
                "late", city.wallets[0], "eco_action", {"action": "recycling_drop_off", "date": "2026-05-20"}
            )
        )
    assert city.raw("SELECT SUM(value) FROM rm_cells WHERE metric = 'issued_by_rule'") == 12 * 3  # not yet
    again = city.finance(MAY_CLOSED)
    assert city.raw("SELECT SUM(value) FROM rm_cells WHERE metric = 'issued_by_rule'") == 12 * 3 + 8
    assert eu_grant(again)["awarded_by_month"]["2026-05"] == may  # differencing the two gives 0
    # And the page says how each month was made, never from how many people.
    assert "people" not in json.dumps(again["funds"]) and "people" not in json.dumps(
        again["redeemed_by_month"]
    )


def test_a_single_shops_takings_are_never_shown_however_many_customers(city: FinanceCity) -> None:
    """Twelve people spend at one shop in May: the city page may publish the day's spending
    per category (twelve people), but the finance page's month of redemptions is that one
    shop's takings, so it is withheld: fewer than k shops."""
    city.bus_rides(MAY_4, 12)
    shop = UUID(city.app.execute(city.app.register_merchant("m1", "Forno", "food", True))["merchant_id"])
    with scenario_time(lambda: MAY_4 + dt.timedelta(hours=3)):
        for i, wallet in enumerate(city.wallets[:12]):
            city.app.execute(city.app.spend(f"s{i}", wallet, shop, 2, f"receipt-{i}"))
    finance = city.finance(MAY_CLOSED)
    assert finance["redeemed_by_month"]["2026-05"] == {
        "suppressed": True,
        "reason": "fewer than 10 shops",
        "eur": {"suppressed": True, "reason": "fewer than 10 shops"},
    }
    assert str(shop) not in json.dumps(finance) and "Forno" not in json.dumps(finance)


def test_whether_a_months_redemptions_are_shown_is_decided_once(city: FinanceCity) -> None:
    """Ten more shops paid late in a closed month do not make its withheld redemptions
    appear: that would show the month's spending before and after, one shop's worth apart."""
    for days in range(4):  # 12 points each
        city.bus_rides(MAY_4 + dt.timedelta(days=days), 12)
    first = UUID(city.app.execute(city.app.register_merchant("m0", "Forno", "food", True))["merchant_id"])
    with scenario_time(lambda: MAY_4 + dt.timedelta(hours=3)):
        for i, wallet in enumerate(city.wallets[:12]):
            city.app.execute(city.app.spend(f"s{i}", wallet, first, 1, f"receipt-{i}"))
    withheld = city.finance(MAY_CLOSED)["redeemed_by_month"]["2026-05"]
    assert withheld["suppressed"] is True
    # Late deliveries: ten other shops each paid on another May day, read after the decision.
    shops = [
        UUID(city.app.execute(city.app.register_merchant(f"m{n}", f"Shop {n}", "food", True))["merchant_id"])
        for n in range(1, 11)
    ]
    with scenario_time(lambda: MAY_4 + dt.timedelta(days=2)):
        for n, shop in enumerate(shops):
            for i, wallet in enumerate(city.wallets[:12]):
                city.app.execute(city.app.spend(f"late{n}-{i}", wallet, shop, 1, f"late-{n}-{i}"))
    again = city.finance(MAY_CLOSED)
    assert (
        city.raw("SELECT COUNT(DISTINCT merchant_id) FROM rm_statement_lines WHERE day LIKE '2026-05%'") == 11
    )
    assert again["redeemed_by_month"]["2026-05"] == withheld
