"""The disclosure method's parts: the closed-period rule, the stored draw, sums, and the terms."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from projections.disclosure import Period, Policy, day, opendp_noise, publish, total, week_of
from projections.store import Store
from services.settings.cities import DisclosureTerms, load_city
from services.settings.disclosure import disclosure_policies, policy_for
from services.settings.errors import ConfigError

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_day_is_closed_only_once_it_is_over_and_the_grace_has_passed() -> None:
    grace = dt.timedelta(hours=1)
    may_4 = day("2026-05-04")
    assert not may_4.closed(at("2026-05-04T23:59:59"), grace)
    assert not may_4.closed(at("2026-05-05T00:30:00"), grace)  # over, but late deliveries may come
    assert may_4.closed(at("2026-05-05T01:00:00"), grace)
    assert may_4.closed(at("2026-05-05T00:00:00"))


def test_a_week_runs_monday_to_sunday_and_closes_after_sunday() -> None:
    week = week_of("2026-05-07")  # a Thursday
    assert week == Period("week", dt.date(2026, 5, 4)) and week.key == "week:2026-05-04"
    assert week_of("2026-05-10") == week and week_of("2026-05-11") != week
    assert not week.closed(at("2026-05-10T23:00:00"))
    assert week.closed(at("2026-05-11T00:00:00"))


def test_a_month_closes_on_the_first_of_the_next_including_december() -> None:
    assert Period("month", dt.date(2026, 7, 1)).end() == at("2026-08-01T00:00:00")
    assert Period("month", dt.date(2026, 12, 1)).end() == at("2027-01-01T00:00:00")


class Counting:
    """OpenDP's draw, counted."""

    def __init__(self) -> None:
        self.draws = 0

    def __call__(self, value: int, scale: float) -> int:
        self.draws += 1
        return opendp_noise(value, scale)


def publish_may_4(store: Store, cells: dict[str, tuple[int, int]], noise: Counting) -> dict[str, dict]:
    with store.transaction() as tx:
        return publish(
            tx,
            "bologna",
            day("2026-05-04"),
            "issued_by_rule",
            cells,
            epsilon=0.5,
            sensitivity=60,
            k=10,
            now=at("2026-05-05T02:00:00"),
            noise=noise,
        )


def test_a_closed_cell_is_drawn_once_and_reread_as_stored(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'rm.sqlite'}")
    noise = Counting()
    first = publish_may_4(store, {"eco-actions": (300, 12), "civic-event": (75, 3)}, noise)
    assert noise.draws == 1  # the suppressed cell draws nothing
    assert first["civic-event"] == {"suppressed": True, "reason": "fewer than 10 people"}
    shown = first["eco-actions"]
    assert shown["protection"] == {
        "method": "laplace",
        "epsilon": 0.5,
        "sensitivity": 60,
        "k": 10,
        "period": "closed day 2026-05-04",
    }
    # Read again, with an event that arrived after the draw: the same figures, no new draw.
    again = publish_may_4(store, {"eco-actions": (308, 13), "civic-event": (100, 10)}, noise)
    assert again == first and noise.draws == 1
    with store.transaction() as tx:
        rows = tx.all(
            "SELECT key, value, people, noised, epsilon, method FROM rm_published_cells ORDER BY key"
        )
    assert rows == [
        ("civic-event", 75, 3, None, 0.5, "suppressed"),
        ("eco-actions", 300, 12, shown["value"], 0.5, "laplace"),
    ]
    store.close()


def test_the_draw_is_discrete_laplace_noise_with_the_stated_scale() -> None:
    # Scale 60 / 0.5 = 120: a thousand draws spread widely and centre near the value.
    draws = [opendp_noise(1000, 120.0) for _ in range(1000)]
    assert all(isinstance(d, int) for d in draws)
    assert len(set(draws)) > 100
    assert 950 < sum(draws) / len(draws) < 1050
    assert 60 < sum(abs(d - 1000) for d in draws) / len(draws) < 180  # E|noise| = scale


def test_a_total_adds_published_cells_only() -> None:
    shown = {"value": 40, "protection": {"method": "laplace"}}
    hidden = {"suppressed": True, "reason": "fewer than 10 people"}
    assert total([shown, hidden, shown]) == {
        "value": 80,
        "protection": {"method": "sum of published cells", "cells": 2},
    }
    assert total([hidden]) == {"suppressed": True, "reason": "no published cell"}


def test_k_below_ten_and_a_zero_budget_are_refused() -> None:
    with pytest.raises(ValueError, match="k must be at least 10"):
        Policy(k=9)
    with pytest.raises(ValueError, match="epsilon"):
        Policy(epsilon_per_week=0)
    with pytest.raises(ValueError, match="k"):
        DisclosureTerms(k=5)
    with pytest.raises(ValueError, match="epsilon_per_day"):
        DisclosureTerms(epsilon_per_day=0)


def test_a_city_file_with_a_bad_disclosure_section_does_not_load(tmp_path: Path) -> None:
    folder = tmp_path / "bologna"
    folder.mkdir()
    source = Path(__file__).resolve().parents[2] / "cities" / "bologna"
    (folder / "rulebook.toml").write_text((source / "rulebook.toml").read_text())
    text = (source / "city.toml").read_text().replace("k = 10", "k = 3")
    (folder / "city.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"disclosure\.k"):
        load_city("bologna", tmp_path)


def test_sensitivity_comes_from_the_partners_caps_where_they_exist() -> None:
    policies = disclosure_policies()
    # Rome's tokens are taken in Vienna (cap 200 a redemption) and Sint-Niklaas (cap 100).
    rome = load_city("rome").config
    assert policies["rome"].bounds["redemptions_by_partner"] == 200 * rome.disclosure.max_redemptions_per_week
    # Bologna's tokens are taken nowhere: the bound falls back to its own terms.
    bologna = load_city("bologna").config
    assert policy_for(bologna, [bologna]).bounds["redemptions_by_partner"] == (
        bologna.disclosure.max_spend_per_day * bologna.disclosure.max_redemptions_per_week
    )
    assert all(p.k >= 10 and p.bounds["active"] == 1 for p in policies.values())


def test_one_persons_appeals_in_a_week_count_at_most_the_bound(tmp_path: Path) -> None:
    from projections.appeals import Appeals, appeal_cells

    store = Store(f"sqlite:///{tmp_path / 'rm.sqlite'}")
    monday = int(at("2026-05-04T09:00:00").timestamp())
    with store.transaction() as tx:
        for ddl in Appeals.ddl:
            tx.execute(ddl)
        # One wallet files five appeals on Monday, each decided 100 hours later; another files one.
        for n in range(5):
            tx.execute(
                "INSERT INTO rm_appeals VALUES ('vienna', ?, 'w1', ?, ?)",
                (f"a{n}", monday + n, monday + n + 100 * 3600),
            )
        tx.execute("INSERT INTO rm_appeals VALUES ('vienna', 'b', 'w2', ?, NULL)", (monday,))
        cells = appeal_cells(tx, "vienna", per_person=2, wait_cap_hours=72)
    store.close()
    assert cells["appeals"] == {"2026-05-04": {"": (3, 2)}}  # w1's first two, and w2's one
    assert cells["appeals_decided"] == {"2026-05-04": {"": (2, 1)}}
    assert cells["appeal_wait_hours"] == {"2026-05-04": {"": (2 * 72, 1)}}  # each wait capped at 72
