"""Zwolle's workflow over gRPC against a real node: the season's equilibrium report is the
in-process path's, four eyes holds by authenticated subject, and each work-log and tax bug
is refused with a status that names the field or gives the reason."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import grpc
import pytest

from civfed.v1 import merchant_pb2, rights_pb2, rights_pb2_grpc, wallet_pb2, workflow_pb2
from projections.store import Store
from services.demo.local_federation import CityStubs, LocalFederation
from services.grpc.auth import bearer
from services.grpc.workflow_service import report_dict
from services.settings.cities import load_settings
from services.workflow_report import equilibrium_report
from tests.e2e.flows import open_wallet
from tests.grpc.conftest import conservation
from tests.integration.test_workflow_report import DECEMBER, POLICY, exact, month_start, three_months
from tests.integration.zwolle_season import START, Clock, zwolle

CONSENT = "zwolle-werkt-2026-09"
PEOPLE = 12


@dataclass
class Node:
    fed: LocalFederation
    stubs: CityStubs
    clock: Clock
    app: Any

    figures: Any

    def coordinator(self, subject: str, name: str = "") -> Any:
        return bearer(self.fed.idp.token(subject, ["work_coordinator"], name=name))


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    fed = LocalFederation(tmp_path, ["zwolle"])
    clock = Clock()
    running = fed.start_in_process("zwolle", clock=clock)
    stubs = fed.stubs("zwolle")
    try:
        yield Node(fed, stubs, clock, running.node.app, running.node.figures)
        conservation(running.node.app, "zwolle")
    finally:
        stubs.close()
        fed.stop_all()


def refused(call: Any, *args: Any, **kwargs: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call(*args, **kwargs)
    return err.value


def post_task(n: Node, key: str, start: dt.datetime, end: dt.datetime, who: Any, slots: int = 50) -> str:
    req = workflow_pb2.PostTaskRequest(
        idempotency_key=key,
        category="litter-picking",
        place="Park de Wezenlanden",
        starts_at=start.isoformat(),
        ends_at=end.isoformat(),
        slots=slots,
    )
    return str(n.stubs.workflow.PostTask(req, metadata=who, timeout=10).task_id)


def claim_and_log(n: Node, key: str, task: str, wallet: Any, minutes: int, who: Any = None) -> str:
    meta = bearer(wallet.holder_token)
    claim = workflow_pb2.ClaimTaskRequest(
        idempotency_key=f"{key}:c", task_id=task, wallet_id=wallet.wallet_id
    )
    n.stubs.workflow.ClaimTask(claim, metadata=meta, timeout=10)
    log = workflow_pb2.LogMinutesRequest(
        idempotency_key=f"{key}:l", task_id=task, wallet_id=wallet.wallet_id, minutes=minutes
    )
    return str(n.stubs.workflow.LogMinutes(log, metadata=who or meta, timeout=10).log_id)


def approve(n: Node, key: str, log: str, who: Any, language: str = "") -> Any:
    req = workflow_pb2.ApproveLogRequest(idempotency_key=key, log_id=log, language=language)
    return n.stubs.workflow.ApproveLog(req, metadata=who, timeout=10)


def pay_tax(n: Node, key: str, wallet: Any, amount: int, ref: str) -> Any:
    req = workflow_pb2.PayTaxRequest(
        idempotency_key=key, wallet_id=wallet.wallet_id, amount=amount, assessment_ref=ref
    )
    return n.stubs.workflow.PayTax(req, metadata=bearer(wallet.holder_token), timeout=10)


def test_a_zwolle_season_over_grpc_gives_the_in_process_equilibrium_report(
    node: Node, tmp_path: Path
) -> None:
    n, wf = node, node.stubs.workflow
    anna, bert = n.coordinator("anna"), n.coordinator("bert")
    # The catalogue is public; the council publishes a category citing its decision.
    listed = wf.ListCategories(workflow_pb2.ListCategoriesRequest(), timeout=10)
    assert "litter-picking" in {c.code for c in listed.categories}
    council = n.fed.staff("raad", "council_approver")
    published = wf.PublishCategory(
        workflow_pb2.PublishCategoryRequest(
            idempotency_key="cat",
            code="repair-cafe",
            title="Repair café",
            sector="civic",
            decision_ref="Raadsbesluit 2026-050",
        ),
        metadata=council,
        timeout=10,
    )
    assert (published.version, published.changed) == (1, True)

    wallets = [open_wallet(n.stubs, f"p:w{i}", CONSENT) for i in range(PEOPLE)]
    shop = n.stubs.merchant.RegisterMerchant(
        merchant_pb2.RegisterMerchantRequest(
            idempotency_key="m", name="Bakker", category="food", local=True, basic_economy=True
        ),
        metadata=n.fed.staff("mia", "merchant_admin"),
        timeout=10,
    )
    for i in range(3):
        first = month_start(i)
        day = first.replace(day=3)
        n.clock.set(day.replace(hour=8))
        task = post_task(n, f"m{i}:task", day.replace(hour=9), day.replace(hour=19), anna)
        n.clock.set(day.replace(hour=18))
        logs = [claim_and_log(n, f"m{i}:{k}", task, w, 120 + 30 * (k % 4)) for k, w in enumerate(wallets)]
        # Anna posted the task; Bert, who logged none of it, approves.
        for k, log in enumerate(logs):
            approve(n, f"m{i}:ok{k}", log, bert)
        n.clock.set(first.replace(day=20, hour=12))
        for k, w in enumerate(wallets):
            req = wallet_pb2.SpendRequest(
                idempotency_key=f"s{i}:{k}",
                wallet_id=w.wallet_id,
                merchant_id=shop.merchant_id,
                amount=50,
                purchase_ref=f"bon{i}{k}",
            )
            n.stubs.wallet.Spend(req, metadata=bearer(w.holder_token), timeout=10)
        if i == 2:
            for k, w in enumerate(wallets[: PEOPLE // 2]):
                paid = pay_tax(n, f"t{k}", w, 60, f"AANSLAG-2026-{k:04d}")
                assert paid.paid.units == 60

    # On 20 November the node publishes September and October only: November is still open.
    early = wf.GetEquilibriumReport(workflow_pb2.GetEquilibriumReportRequest(), timeout=10)
    assert [m.month for m in early.months] == ["2026-09", "2026-10"]
    n.clock.set(DECEMBER)
    over_grpc = wf.GetEquilibriumReport(workflow_pb2.GetEquilibriumReportRequest(), timeout=10)
    assert over_grpc.available
    # Asked again, the node draws nothing new: the same figures, September and October as before.
    again = wf.GetEquilibriumReport(workflow_pb2.GetEquilibriumReportRequest(), timeout=10)
    assert report_dict(again) == report_dict(over_grpc)
    assert report_dict(over_grpc)["months"][:2] == report_dict(early)["months"]
    statement = wf.GetTreasuryStatement(
        workflow_pb2.GetTreasuryStatementRequest(), metadata=n.fed.staff("olga", "auditor"), timeout=10
    )
    assert (statement.balance.units, statement.assessments_paid) == (360, 6)

    # The same season through the in-process path, as tests/integration/test_workflow_report.py
    # runs it, without noise: the exact figures the node's draws were made from are these.
    clock = Clock()
    env = {"CIVFED_DATA_DIR": str(tmp_path / "in-process")}
    exact_store = Store(f"sqlite:///{tmp_path / 'exact.sqlite'}")
    with zwolle(load_settings(env).eventsourcing_env("zwolle"), clock) as (app, _):
        three_months(app, clock, PEOPLE)
        in_process = equilibrium_report(app, "zwolle", exact_store, POLICY, DECEMBER, exact)
    exact_store.close()
    assert in_process is not None
    node_store = n.figures()
    with node_store.transaction() as tx:
        drawn = {
            (str(p).removeprefix("month:")[:7], str(m).removeprefix("equilibrium_")): (int(v), method)
            for p, m, v, method in tx.all("SELECT period, metric, value, method FROM rm_published_cells")
        }
    node_store.close()
    expected = {
        (m["month"], col): m[col]["value"]
        for m in in_process["months"]
        for col in ("minted", "spent", "tax", "lapsed", "supply")
        if m[col].get("protection", {}).get("method") == "laplace"
    }
    assert {cell: value for cell, (value, method) in drawn.items() if method == "laplace"} == expected
    shown = report_dict(over_grpc)
    assert [m["month"] for m in shown["months"]] == ["2026-09", "2026-10", "2026-11"]
    assert shown["months"][0]["minted"]["protection"]["method"] == "laplace"
    assert shown["months"][2]["tax"] == in_process["months"][2]["tax"]  # six payers: suppressed
    assert shown["epsilon_per_month"] == POLICY.epsilon_per_month


def test_four_eyes_by_subject_whatever_name_the_token_shows(node: Node) -> None:
    n = node
    anna = n.coordinator("anna", name="Anna de Vries")
    n.clock.set(START.replace(hour=8))
    task = post_task(n, "t", START.replace(hour=9), START.replace(hour=17), anna)
    n.clock.set(START.replace(hour=16))
    worker = open_wallet(n.stubs, "w", CONSENT)
    # Anna logs the minutes on the worker's behalf: she may not approve or reject them.
    log = claim_and_log(n, "w", task, worker, 240, who=anna)
    err = refused(approve, n, "a1", log, anna)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "four eyes" in err.details()
    # Nor under another display name, or with a second token of her own.
    again = bearer(n.fed.idp.token("anna", ["work_coordinator", "auditor"], name="A. de Vries (team lead)"))
    err = refused(approve, n, "a2", log, again)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "four eyes" in err.details()
    req = workflow_pb2.RejectLogRequest(idempotency_key="r", log_id=log, reason="no sheet")
    assert (
        refused(n.stubs.workflow.RejectLog, req, metadata=again, timeout=10).code()
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    # The holder cannot approve at all; another coordinator can, and the event names her subject.
    holder = bearer(worker.holder_token)
    assert refused(approve, n, "a3", log, holder).code() == grpc.StatusCode.PERMISSION_DENIED
    ok = approve(n, "a4", log, n.coordinator("carla", name="Anna de Vries"))
    assert ok.amount.units == 400
    approved = [e for e in n.app.events.get(UUID(log)) if type(e).__qualname__ == "WorkLog.Approved"]
    assert [e.approver for e in approved] == ["staff:carla"]
    # The explanation in Zwolle's language.
    assert (
        ok.explanation.startswith("4 u 00 min goedgekeurd werk (")
        and " levert 400 op (100 per uur" in ok.explanation
    )
    # A retry with the same key returns the same result; nothing is minted twice. Asked in
    # English, the stored result answers in English.
    retried = approve(n, "a4", log, n.coordinator("carla"), language="en")
    assert retried.amount.units == 400
    assert (
        retried.explanation.startswith("4 h 00 min of approved ")
        and " earns 400 (100 per hour" in retried.explanation
    )
    assert n.app.wallet(UUID(worker.wallet_id)).balance == 400

    # A holder cannot approve their own minutes: approving is a coordinator's call.
    logged_self = claim_and_log(n, "self", task, open_wallet(n.stubs, "w2", CONSENT), 60)
    assert refused(approve, n, "a5", logged_self, holder).code() == grpc.StatusCode.PERMISSION_DENIED

    # Holders list open tasks; once a coordinator closes one, it takes no further claims.
    listed = n.stubs.workflow.ListTasks(workflow_pb2.ListTasksRequest(), metadata=holder, timeout=10)
    assert [(t.task_id, t.slots, t.free_slots) for t in listed.tasks] == [(task, 50, 48)]
    close = workflow_pb2.CloseTaskRequest(idempotency_key="close", task_id=task, reason="enough hands")
    assert n.stubs.workflow.CloseTask(close, metadata=anna, timeout=10).closed
    assert not n.stubs.workflow.ListTasks(workflow_pb2.ListTasksRequest(), metadata=holder, timeout=10).tasks
    everything = workflow_pb2.ListTasksRequest(include_closed=True)
    assert [t.closed for t in n.stubs.workflow.ListTasks(everything, metadata=anna, timeout=10).tasks] == [
        True
    ]
    late = open_wallet(n.stubs, "late", CONSENT)
    err = refused(claim_and_log, n, "late", task, late, 60)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "closed" in err.details()


def test_work_log_bugs_are_refused_with_a_status_naming_the_field_or_the_reason(node: Node) -> None:
    n = node
    anna, bert = n.coordinator("anna"), n.coordinator("bert")
    start = START.replace(hour=0)
    n.clock.set(start)
    worker = open_wallet(n.stubs, "w", CONSENT)
    # 1,500 minutes on a three-day task: INVALID_ARGUMENT on `minutes`, at logging.
    tasks = [post_task(n, f"t{i}", start, start + dt.timedelta(days=3), anna) for i in range(4)]
    n.clock.set(start + dt.timedelta(hours=23))
    err = refused(claim_and_log, n, "big", tasks[3], worker, 1_500)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("minutes: ") and "1440" in err.details()
    # 72 hours in one day through three overlapping tasks: a day holds 1,440 minutes.
    logs = [claim_and_log(n, f"day{i}", t, worker, 1_440) for i, t in enumerate(tasks[:3])]
    assert approve(n, "ok0", logs[0], bert).amount.units == 2400
    for i in (1, 2):
        err = refused(approve, n, f"ok{i}", logs[i], bert)
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "past the 1440 a day holds" in err.details() and "appealable as work_log" in err.details()
    assert n.app.wallet(UUID(worker.wallet_id)).balance == 2400
    # The refusal can be appealed, like other refusals.
    appeal = n.stubs.wallet.FileAppeal(
        wallet_pb2.FileAppealRequest(
            idempotency_key="appeal",
            wallet_id=worker.wallet_id,
            subject_kind="work_log",
            subject_ref=logs[1],
            reason="that shift was the next day",
        ),
        metadata=bearer(worker.holder_token),
        timeout=10,
    )
    assert appeal.appeal_id
    # The holder reads their logs; a coordinator only with a purpose, which is logged.
    holder = bearer(worker.holder_token)
    mine = n.stubs.workflow.ListWorkLogs(
        workflow_pb2.ListWorkLogsRequest(wallet_id=worker.wallet_id), metadata=holder, timeout=10
    )
    assert sorted(log.status for log in mine.logs) == ["approved", "refused", "refused"]
    bare = workflow_pb2.ListWorkLogsRequest(wallet_id=worker.wallet_id)
    err = refused(n.stubs.workflow.ListWorkLogs, bare, metadata=bert, timeout=10)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "purpose" in err.details()
    with_purpose = workflow_pb2.ListWorkLogsRequest(wallet_id=worker.wallet_id, purpose="checking the appeal")
    assert len(n.stubs.workflow.ListWorkLogs(with_purpose, metadata=bert, timeout=10).logs) == 3
    access = rights_pb2_grpc.RightsServiceStub(n.stubs.channel).ListMyAccessLog(
        rights_pb2.ListMyAccessLogRequest(wallet_id=worker.wallet_id), metadata=holder, timeout=10
    )
    assert ("staff:bert", "read work logs", "checking the appeal") in {
        (e.subject, e.action, e.purpose) for e in access.entries
    }
    # A coordinator finds a task's logs (to decide them), each person's read logged; a holder cannot.
    by_task = workflow_pb2.ListWorkLogsRequest(task_id=tasks[1], purpose="deciding the logs of this task")
    found = n.stubs.workflow.ListWorkLogs(by_task, metadata=bert, timeout=10).logs
    assert [(log.log_id, log.wallet_id, log.status) for log in found] == [
        (logs[1], worker.wallet_id, "refused")
    ]
    err = refused(n.stubs.workflow.ListWorkLogs, by_task, metadata=holder, timeout=10)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    no_purpose = workflow_pb2.ListWorkLogsRequest(task_id=tasks[1])
    err = refused(n.stubs.workflow.ListWorkLogs, no_purpose, metadata=bert, timeout=10)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("purpose")
    both = workflow_pb2.ListWorkLogsRequest(task_id=tasks[1], wallet_id=worker.wallet_id, purpose="x")
    assert refused(n.stubs.workflow.ListWorkLogs, both, metadata=bert, timeout=10).code() == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    access = rights_pb2_grpc.RightsServiceStub(n.stubs.channel).ListMyAccessLog(
        rights_pb2.ListMyAccessLogRequest(wallet_id=worker.wallet_id), metadata=holder, timeout=10
    )
    assert ("staff:bert", "read work logs", "deciding the logs of this task") in {
        (e.subject, e.action, e.purpose) for e in access.entries
    }

    # Bad input anywhere: a status with a message, never UNKNOWN or INTERNAL.
    bad_time = workflow_pb2.PostTaskRequest(
        idempotency_key="bad", category="litter-picking", place="x", starts_at="tomorrow", ends_at="", slots=1
    )
    err = refused(n.stubs.workflow.PostTask, bad_time, metadata=anna, timeout=10)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("starts_at")
    naive = workflow_pb2.PostTaskRequest(
        idempotency_key="naive",
        category="litter-picking",
        place="x",
        starts_at="2026-09-01T09:00:00",
        ends_at="2026-09-01T10:00:00",
        slots=1,
    )
    assert (
        refused(n.stubs.workflow.PostTask, naive, metadata=anna, timeout=10).code()
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    # A holder claims only for their own wallet.
    other = open_wallet(n.stubs, "other", CONSENT)
    claim = workflow_pb2.ClaimTaskRequest(idempotency_key="x", task_id=tasks[2], wallet_id=other.wallet_id)
    assert (
        refused(n.stubs.workflow.ClaimTask, claim, metadata=holder, timeout=10).code()
        == grpc.StatusCode.PERMISSION_DENIED
    )


def test_tax_references_in_the_city_format_paid_once_over_grpc(node: Node) -> None:
    n = node
    n.clock.set(START.replace(hour=8))
    task = post_task(n, "t", START.replace(hour=9), START.replace(hour=19), n.coordinator("anna"))
    n.clock.set(START.replace(hour=18))
    payer = open_wallet(n.stubs, "payer", CONSENT)
    approve(n, "ok", claim_and_log(n, "p", task, payer, 600), n.coordinator("bert"))
    for i, text in enumerate(["any text at all", "AANSLAG-42", "ozb 2026"]):
        err = refused(pay_tax, n, f"bad{i}", payer, 100, text)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.details().startswith("assessment_ref: ")
    assert pay_tax(n, "t1", payer, 100, "AANSLAG-2026-0042").available.units == 900
    assert pay_tax(n, "t1", payer, 100, "AANSLAG-2026-0042").available.units == 900  # a retry
    err = refused(pay_tax, n, "t2", payer, 100, "AANSLAG-2026-0042")
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "already paid" in err.details()
    # Another holder cannot pay from this wallet.
    other = open_wallet(n.stubs, "other", CONSENT)
    req = workflow_pb2.PayTaxRequest(
        idempotency_key="x", wallet_id=payer.wallet_id, amount=1, assessment_ref="AANSLAG-2026-0043"
    )
    err = refused(n.stubs.workflow.PayTax, req, metadata=bearer(other.holder_token), timeout=10)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert n.app.workflow.treasury_balance() == 100

    # Spending: only at a merchant registered as basic economy (basic_economy_only).
    admin = n.fed.staff("mia", "merchant_admin")
    shops = {
        flag: n.stubs.merchant.RegisterMerchant(
            merchant_pb2.RegisterMerchantRequest(
                idempotency_key=f"shop-{flag}",
                name="Winkel",
                category="retail",
                local=True,
                basic_economy=flag,
            ),
            metadata=admin,
            timeout=10,
        ).merchant_id
        for flag in (True, False)
    }

    def spend(key: str, shop: str) -> Any:
        req = wallet_pb2.SpendRequest(
            idempotency_key=key, wallet_id=payer.wallet_id, merchant_id=shop, amount=100, purchase_ref=key
        )
        return n.stubs.wallet.Spend(req, metadata=bearer(payer.holder_token), timeout=10)

    err = refused(spend, "gadget", shops[False])
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "basic economy" in err.details()
    spend("bread", shops[True])
    assert n.app.wallet(UUID(payer.wallet_id)).available == 800
