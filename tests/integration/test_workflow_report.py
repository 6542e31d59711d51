"""The equilibrium report: closed months only, each figure published once (k people, noise),
the same in the CLI and the dashboard, and derived figures computed from published ones."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from uuid import UUID

import pytest

from aggregates.depreciation import total_at
from projections.dashboard_view import city_dashboard
from projections.disclosure import Policy
from projections.integration import to_integration_event
from projections.log_source import catch_up_log
from projections.projector import Projector
from projections.store import Store
from projections.workflow import WorkflowMoney
from projections.workflow_view import equilibrium
from services.city import CityApplication
from services.settings.disclosure import disclosure_policies
from services.workflow_report import equilibrium_report, render_equilibrium
from tests.conftest import PG_URL
from tests.integration.zwolle_season import START, Clock, ok, open_wallets, store_env, work_day, zwolle

STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=STORES)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    return store_env(request, tmp_path)


def month_start(i: int) -> dt.datetime:
    year, month = divmod(START.month - 1 + i, 12)
    return START.replace(year=START.year + year, month=month + 1, day=1)


def read_models(env: dict[str, str], tmp_path: Path) -> Store:
    if env["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
        return Store(PG_URL, env["POSTGRES_SCHEMA"])
    return Store(f"sqlite:///{tmp_path / 'rm.sqlite'}")


POLICY = disclosure_policies()["zwolle"]
# After November (the third month) has closed: every month of the season is published.
DECEMBER = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)


def exact(value: int, scale: float) -> int:
    """No noise: lets a test check the report's arithmetic against the ledger. Production
    always draws from OpenDP (the default)."""
    return value


def three_months(app: CityApplication, clock: Clock, people: int) -> list[UUID]:
    assert app.workflow is not None
    wf = app.workflow
    wallets = open_wallets(app, "p", people)
    bakery = UUID(ok(app.execute(app.register_merchant("m", "Bakker", "food", True, True)))["merchant_id"])
    for i in range(3):
        first = month_start(i)
        work_day(
            app,
            wf,
            clock,
            f"m{i}",
            first.replace(day=3),
            {w: 120 + 30 * (n % 4) for n, w in enumerate(wallets)},
        )
        clock.set(first.replace(day=20, hour=12))
        app.execute_group(
            [app.spend(f"s{i}:{n}", w, bakery, 50, f"bon{i}{n}") for n, w in enumerate(wallets)]
        )
        if i == 2:
            payers = wallets[: people // 2]
            app.execute_group(
                [app.workflow.pay_tax(f"t{n}", w, 60, f"AANSLAG-2026-{n:04d}") for n, w in enumerate(payers)]
            )
    return wallets


def test_report_figures_add_up_and_match_the_dashboard(env: dict[str, str], tmp_path: Path) -> None:
    clock = Clock()
    with zwolle(env, clock) as (app, wf):
        wallets = three_months(app, clock, 12)
        store = read_models(env, tmp_path)
        catch_up_log(Projector(store), app, "zwolle")
        report = equilibrium_report(app, "zwolle", store, POLICY, DECEMBER, exact)
        assert report is not None
        with store.transaction() as tx:
            dashboard = city_dashboard(tx, "zwolle", POLICY, DECEMBER)
        store.close()
        # The dashboard shows the cells the report drew: one draw, shown alike everywhere.
        assert dashboard["equilibrium"] == report

        months = report["months"]
        assert [m["month"] for m in months] == ["2026-09", "2026-10", "2026-11"]
        minted_each = sum((120 + 30 * (n % 4)) * 100 // 60 for n in range(12))
        supply = 0
        for m in months:
            assert m["minted"]["value"] == minted_each
            assert m["minted"]["protection"] == {
                "method": "laplace",
                "epsilon": POLICY.epsilon_per_month / 5,
                "sensitivity": POLICY.bounds["month_minted"],
                "k": 10,
                "period": f"closed month {m['month']}-01",
            }
            assert m["spent"]["value"] == 600
            assert "people" not in m["supply"]
        for m in months[:2]:  # nobody paid tax yet: every figure is shown, and they add up
            assert m["tax"].get("empty") is True
            assert m["depreciated"]["value"] > 0
            assert m["depreciated"]["protection"] == {"method": "derived from published cells"}
            assert m["supply"]["value"] == supply + minted_each - 600 - m["depreciated"]["value"]
            supply = m["supply"]["value"]
        # Six payers are fewer than k = 10: the tax cell and what derives from it are withheld.
        assert months[2]["tax"] == {"suppressed": True, "reason": "fewer than 10 people"}
        assert "value" not in months[2]["depreciated"]
        assert "value" not in report["treasury_received"]
        assert wf.treasury_balance() == 6 * 60

        # The closing supply is every wallet's value on the first day of the next month.
        end = dt.date(2026, 12, 1)
        assert months[2]["supply"]["value"] == sum(total_at(app.wallet(w).lots, end) for w in wallets)

        per_year = 3 * minted_each * 12 // 3
        assert report["issuance_per_year"]["value"] == per_year
        assert report["steady_state_supply"]["value"] == per_year * 2555 // 730
        assert report["period_days"] == 2555 and report["period_years"] == 7

        text = render_equilibrium(report, "Zwolle", "Zwolse uren", 2)
        assert "2026-11" in text and "suppressed" in text and "closed months" in text
        assert f"{per_year * 2555 // 730 / 100:,.2f}" in text


def test_an_open_month_is_not_reported_and_a_closed_one_is_drawn_once(
    env: dict[str, str], tmp_path: Path
) -> None:
    clock = Clock()
    with zwolle(env, clock) as (app, _):
        three_months(app, clock, 12)
        store = read_models(env, tmp_path)
        # On 15 November, November is open: only September and October are published.
        mid_november = dt.datetime(2026, 11, 15, tzinfo=dt.UTC)
        early = equilibrium_report(app, "zwolle", store, POLICY, mid_november)
        assert early is not None and [m["month"] for m in early["months"]] == ["2026-09", "2026-10"]
        # In December, with real noise: the months drawn before come back as they were.
        late = equilibrium_report(app, "zwolle", store, POLICY, DECEMBER)
        again = equilibrium_report(app, "zwolle", store, POLICY, DECEMBER)
        store.close()
        assert late is not None and late == again
        assert late["months"][:2] == early["months"]
        assert late["months"][2]["minted"]["protection"]["method"] == "laplace"


def test_with_four_people_no_figure_is_shown(env: dict[str, str], tmp_path: Path) -> None:
    clock = Clock()
    with zwolle(env, clock) as (app, _):
        three_months(app, clock, 4)
        store = read_models(env, tmp_path)
        hidden = equilibrium_report(app, "zwolle", store, Policy(), DECEMBER)
        store.close()
        assert hidden is not None
        assert all("value" not in m["minted"] for m in hidden["months"])
        assert "value" not in hidden["steady_state_supply"]
        assert "value" not in hidden["treasury_received"]


def test_the_figures_do_not_depend_on_how_wallets_interleave(env: dict[str, str], tmp_path: Path) -> None:
    """Kafka keeps each wallet's order, not the order across wallets: replay one wallet at a time."""
    clock = Clock()
    with zwolle(env, clock) as (app, _):
        three_months(app, clock, 12)
        rows = app.recorder.select_notifications(start=0, limit=100_000)
        events = [
            e
            for e in (
                to_integration_event("zwolle", n.id, app.mapper.to_domain_event(n), app.pseudonym)
                for n in rows
            )
            if e is not None
        ]
    by_wallet = sorted(
        events, key=lambda e: e.aggregate_id, reverse=True
    )  # stable: keeps each wallet's order
    assert [e.notification_id for e in by_wallet] != [e.notification_id for e in events]
    reports = []
    for name, order in (("log", events), ("wallets", by_wallet)):
        store = Store(f"sqlite:///{tmp_path / f'{name}.sqlite'}")
        model = WorkflowMoney()
        with store.transaction() as tx:
            for ddl in model.ddl:
                tx.execute(ddl)
            for e in order:
                model.apply(tx, e)
        with store.transaction() as tx:
            reports.append(equilibrium(tx, "zwolle", POLICY, DECEMBER, exact))
        store.close()
    assert reports[0] is not None and len(reports[0]["months"]) == 3
    assert reports[0] == reports[1]
