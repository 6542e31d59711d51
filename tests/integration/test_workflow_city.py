"""Zwolle's social workflow through the city application, on SQLite and real PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from uuid import UUID

import pytest

from aggregates.depreciation import total_at
from aggregates.errors import (
    HoldsNotOffered,
    InsufficientBalance,
    MerchantNotAccepted,
    PreconditionFailed,
    SelfApproval,
    WorkNotOpen,
)
from aggregates.workflow import WorkLog
from projections.log_source import catch_up_log
from projections.projector import Projector
from projections.store import Store
from projections.workflow import WorkflowMoney
from services.city_totals import city_totals
from services.event_log import event_type, read_events
from services.privacy.retention import erase_wallet
from services.privacy.sealing import REDACTED
from tests.integration.zwolle_season import START, Clock, ok, open_wallets, store_env, work_day, zwolle

STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=STORES)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    return store_env(request, tmp_path)


def day(n: int, hour: int = 9) -> dt.datetime:
    return (START + dt.timedelta(days=n)).replace(hour=hour)


def wallet_events(app: object, wallet: UUID) -> list[str]:
    return [event_type(e) for _, e in read_events(app) if e.originator_id == wallet]  # type: ignore[arg-type]


def test_approved_minutes_mint_and_a_rejected_log_mints_nothing(env: dict[str, str]) -> None:
    clock = Clock(day(0, 8))
    with zwolle(env, clock) as (app, wf):
        worker, other = open_wallets(app, "t", 2)
        window = (day(0), day(0, 12))
        task = UUID(
            ok(app.execute(wf.post_task("task", "food-bank", "Voedselbank", *window, 2, "coord:anna")))[
                "task_id"
            ]
        )
        app.execute(wf.claim_task("c1", task, worker))
        app.execute(wf.claim_task("c2", task, other))
        clock.set(day(0, 12))
        good = UUID(app.execute(wf.log_minutes("l1", task, worker, 90))["log_id"])
        bad = UUID(app.execute(wf.log_minutes("l2", task, other, 120))["log_id"])

        approved = app.execute(wf.approve_log("a1", good, "coord:anna"))
        assert approved["amount"] == 150  # 90 minutes at 1.00 per hour, in hundredths
        assert "1 h 30 min of approved food-bank work" in approved["explanation"]
        assert (
            app.execute(wf.approve_log("a1", good, "coord:anna")) == approved
        )  # the retry mints nothing more
        with pytest.raises(WorkNotOpen):
            app.execute(wf.approve_log("a1-again", good, "coord:bert"))

        rejected = app.execute(wf.reject_log("r1", bad, "coord:anna", "the food bank was closed that day"))
        assert rejected["amount"] == 0

        assert app.wallet(worker).balance == 150
        assert app.wallet(other).balance == 0
        assert "Credited" not in " ".join(wallet_events(app, other))
        log = app.repository.get(bad)
        assert isinstance(log, WorkLog) and log.status == "rejected"
        assert log.reason == "the food bank was closed that day"


def test_self_approval_is_refused_through_the_application(env: dict[str, str]) -> None:
    clock = Clock(day(0, 8))
    with zwolle(env, clock) as (app, wf):
        (worker,) = open_wallets(app, "t", 1)
        task = UUID(
            ok(
                app.execute(
                    wf.post_task("task", "litter-picking", "Park", day(0), day(0, 11), 1, "coord:anna")
                )
            )["task_id"]
        )
        app.execute(wf.claim_task("c", task, worker))
        clock.set(day(0, 11))
        log = UUID(app.execute(wf.log_minutes("l", task, worker, 120))["log_id"])
        with pytest.raises(SelfApproval):
            app.execute(wf.approve_log("self", log, str(worker)))
        with pytest.raises(SelfApproval):  # the refusal is stored: a retry gets the same answer
            app.execute(wf.approve_log("self", log, str(worker)))
        assert app.wallet(worker).balance == 0
        assert app.execute(wf.approve_log("other", log, "coord:anna"))["amount"] == 200


def test_hours_mint_only_through_approval_and_hold_free_spending(env: dict[str, str]) -> None:
    clock = Clock(day(0, 8))
    with zwolle(env, clock) as (app, wf):
        (worker,) = open_wallets(app, "t", 1)
        with pytest.raises(PreconditionFailed, match="approved work log"):
            app.execute(
                app.record_activity(
                    "direct",
                    worker,
                    "approved_work",
                    {"date": "2026-09-01", "minutes": 600, "category": "food-bank"},
                )
            )
        work_day(app, wf, clock, "d0", day(0), {worker: 60})
        with pytest.raises(HoldsNotOffered):
            app.execute(app.issue_voucher("v", worker, 50))
        assert app.wallet(worker).balance == 100


def test_spending_only_in_the_basic_economy_and_oldest_lots_first(env: dict[str, str]) -> None:
    clock = Clock(day(0, 8))
    with zwolle(env, clock) as (app, wf):
        (worker,) = open_wallets(app, "t", 1)
        for n in (0, 30, 60):
            work_day(app, wf, clock, f"d{n}", day(n), {worker: 600})  # 10.00 each
        bakery = UUID(
            app.execute(app.register_merchant("m1", "Bakkerij Diepenmaat", "food", True, basic_economy=True))[
                "merchant_id"
            ]
        )
        cinema = UUID(app.execute(app.register_merchant("m2", "Filmhuis", "culture", True))["merchant_id"])
        clock.set(day(90, 12))
        with pytest.raises(MerchantNotAccepted, match="basic economy"):
            app.execute(app.spend("s0", worker, cinema, 100, "ticket"))
        lots_before = app.wallet(worker).lots
        worth = [total_at([lot], day(90).date()) for lot in lots_before]
        app.execute(app.spend("s1", worker, bakery, worth[0] + 100, "brood"))
        wallet = app.wallet(worker)
        assert len(wallet.lots) == 2
        assert wallet.lots[0].value == worth[1] - 100 and wallet.lots[0].base_on == day(90).date()
        assert wallet.lots[0].ends_on == lots_before[1].ends_on
        assert wallet.lots[1] == lots_before[2]
        assert wallet.balance == sum(worth) - worth[0] - 100
        with pytest.raises(InsufficientBalance):
            app.execute(app.spend("s2", worker, bakery, wallet.balance + 1, "taart"))


def test_tax_payment_reduces_the_balance_and_credits_the_treasury(env: dict[str, str]) -> None:
    clock = Clock(day(0, 8))
    with zwolle(env, clock) as (app, wf):
        payer, saver = open_wallets(app, "t", 2)
        work_day(app, wf, clock, "d0", day(0), {payer: 600, saver: 300})
        clock.set(day(200, 10))
        value = wf.balance(payer)["value"]
        assert value == 1000 * (2555 - 200) // 2555  # 921
        paid = app.execute(wf.pay_tax("tax1", payer, 400, "AANSLAG-2027-0042"))
        assert paid["available"] == value - 400
        assert app.wallet(payer).balance == value - 400
        assert wf.treasury_balance() == 400
        assert app.execute(wf.pay_tax("tax1", payer, 400, "AANSLAG-2027-0042")) == paid  # retried: paid once
        assert wf.treasury_balance() == 400
        with pytest.raises(InsufficientBalance):
            app.execute(wf.pay_tax("tax2", payer, value, "AANSLAG-2027-0043"))

        # Conservation, later on: minted − depreciated − spent − tax = current value of every balance.
        later = day(1000).date()
        totals = city_totals(app, "zwolle")
        wallets = [app.wallet(w) for w in (payer, saver)]
        unrecorded = sum(w.balance - total_at(w.lots, later) for w in wallets)
        assert totals.tax_paid == wf.treasury_balance() == 400
        assert totals.issued == 1500
        assert totals.issued - totals.depreciated - totals.spent - totals.tax_paid == sum(
            w.balance for w in wallets
        )
        current = sum(total_at(w.lots, later) for w in wallets)
        assert totals.issued - (totals.depreciated + unrecorded) - totals.spent - totals.tax_paid == current


def test_balance_query_shows_current_value_and_the_published_schedule(env: dict[str, str]) -> None:
    clock = Clock(day(0, 8))
    with zwolle(env, clock) as (app, wf):
        (worker,) = open_wallets(app, "t", 1)
        work_day(app, wf, clock, "d0", day(0), {worker: 600})
        shown = wf.balance(worker, day(365).date())
        assert shown["value"] == 1000 * 2190 // 2555 == 857
        assert len(shown["schedule"]) == 12
        first = shown["schedule"][0]
        assert first == {
            "on": day(395).date().isoformat(),
            "value": 1000 * 2160 // 2555,
            "depreciation": 857 - 845,
        }
        assert "floor" in shown["rounding"]


def test_catalogue_changes_from_the_council_and_retired_work_takes_no_tasks(env: dict[str, str]) -> None:
    clock = Clock(day(0, 8))
    with zwolle(env, clock) as (app, wf):
        published = app.execute(
            wf.publish_category("p1", "repair-cafe", "Repair café", "civic", "Raadsbesluit 2026-090")
        )
        assert published == {"code": "repair-cafe", "version": 1, "changed": True}
        app.execute(wf.retire_category("r1", "repair-cafe", "Raadsbesluit 2027-001"))
        with pytest.raises(WorkNotOpen, match="Raadsbesluit 2027-001"):
            app.execute(wf.post_task("t1", "repair-cafe", "Wijkcentrum", day(1), day(1, 12), 3, "coord:anna"))


def test_erasure_lapses_the_lots_at_their_value_and_keeps_the_totals(env: dict[str, str]) -> None:
    clock = Clock(day(0, 8))
    with zwolle(env, clock) as (app, wf):
        (worker,) = open_wallets(app, "t", 1)
        work_day(app, wf, clock, "d0", day(0), {worker: 600})
        clock.set(day(300, 10))
        app.execute(wf.pay_tax("tax", worker, 100, "AANSLAG-2027-0099"))
        clock.set(day(400, 10))
        worth = wf.balance(worker)["value"]
        # Day 300: worth floor(1000 × 2255/2555) = 882, less 100 tax, rebased; day 400: × 2155/2255.
        assert worth == (1000 * 2255 // 2555 - 100) * 2155 // 2255 == 747
        erase_wallet(app, "erase", worker, "asked to be forgotten")

        wallet = app.wallet(worker)
        assert (wallet.closed, wallet.balance, wallet.lots) == (True, 0, [])
        totals = city_totals(app, "zwolle")
        assert totals.lapsed == worth  # what lapses is what the lots were worth that day
        assert totals.issued - totals.depreciated - totals.spent - totals.tax_paid - totals.lapsed == 0
        # The report's read model counts the lapse (one person: far too few to publish it).
        store = Store("sqlite:///:memory:")
        catch_up_log(Projector(store, [WorkflowMoney()]), app, "zwolle")
        with store.transaction() as tx:
            lapsed = tx.one("SELECT SUM(value) FROM rm_wf_months WHERE city = 'zwolle' AND metric = 'lapsed'")
        store.close()
        assert lapsed is not None and lapsed[0] == worth
        # The tax stays in the treasury; the assessment reference is erased with the person.
        assert wf.treasury_balance() == 100
        treasury_events = app.events.get(wf.treasury_id)
        received = [e for e in treasury_events if type(e).__qualname__ == "Treasury.TaxReceived"]
        assert [(e.amount, e.assessment_ref) for e in received] == [(100, REDACTED)]
        paid = [e for e in app.events.get(worker) if type(e).__qualname__ == "Wallet.TaxPaid"]
        assert [(e.amount, e.assessment_ref) for e in paid] == [(100, REDACTED)]
