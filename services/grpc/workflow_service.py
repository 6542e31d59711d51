"""WorkflowService: a social-workflow city's catalogue, tasks, work logs, tax and figures
(thin translation only; services/workflow.py holds the commands).

Whoever approves, rejects, posts, closes or logs on someone's behalf is the authenticated
caller (`staff:<sub>`, or `holder:<wallet>`), never a name from the request: four eyes
compares those subjects.
"""

from __future__ import annotations

from typing import Any

import grpc

from aggregates.access import check_purpose
from aggregates.errors import InvalidInput, PreconditionFailed
from civfed.v1 import workflow_pb2, workflow_pb2_grpc
from services.grpc import requests as rq
from services.grpc.audit import Audit, purpose_of
from services.grpc.calls import Calls, as_staff, require_wallet
from services.grpc.language import award_explanation, reading_language
from services.grpc.node import CityNode
from services.workflow import Workflow
from services.workflow_report import equilibrium_report

S = "/civfed.v1.WorkflowService/"


class WorkflowService(workflow_pb2_grpc.WorkflowServiceServicer):
    def __init__(self, node: CityNode) -> None:
        self.node = node
        self.app = node.app
        self.call = Calls()
        self.audit = Audit(node)

    @property
    def wf(self) -> Workflow:
        if self.app.workflow is None:
            raise PreconditionFailed(f"{self.app.city.config.name} has no social workflow")
        return self.app.workflow

    # -- the council's catalogue ----------------------------------------------------------
    def ListCategories(self, request: Any, context: grpc.ServicerContext) -> Any:
        return workflow_pb2.ListCategoriesResponse(
            categories=[
                workflow_pb2.Category(
                    code=cat.code,
                    title=cat.title,
                    sector=cat.sector,
                    version=cat.version,
                    decision_ref=cat.decision_ref,
                    active=cat.active,
                )
                for cat in self.wf.categories()
            ]
        )

    def PublishCategory(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.PublishCategory)
        r = c.request
        out = self.node.execute(self.wf.publish_category(c.key, r.code, r.title, r.sector, r.decision_ref))
        return workflow_pb2.CategoryResponse(code=out["code"], version=out["version"], changed=out["changed"])

    def RetireCategory(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.RetireCategory)
        out = self.node.execute(self.wf.retire_category(c.key, c.request.code, c.request.decision_ref))
        return workflow_pb2.CategoryResponse(code=out["code"], retired=True)

    # -- tasks ----------------------------------------------------------------------------
    def PostTask(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.PostTask)
        r, by = c.request, as_staff(c.who).ref
        job = self.wf.post_task(c.key, r.category, r.place, r.starts_at, r.ends_at, r.slots, by)
        return workflow_pb2.TaskResponse(task_id=self.node.execute(job)["task_id"])

    def CloseTask(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.CloseTask)
        r, by = c.request, as_staff(c.who).ref
        out = self.node.execute(self.wf.close_task(c.key, r.task_id, r.reason, by))
        return workflow_pb2.TaskResponse(task_id=out["task_id"], closed=True)

    def ListTasks(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.ListTasks)
        return workflow_pb2.ListTasksResponse(
            tasks=[
                workflow_pb2.Task(
                    task_id=str(t.id),
                    category=t.category,
                    place=t.place,
                    starts_at=t.starts_at.isoformat(),
                    ends_at=t.ends_at.isoformat(),
                    slots=t.slots,
                    free_slots=t.slots - len(t.claimed_by),
                    closed=bool(t.closed_reason),
                )
                for t in self.wf.tasks(c.request.include_closed)
            ]
        )

    def ClaimTask(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.ClaimTask, wallet=True)
        out = self.node.execute(self.wf.claim_task(c.key, c.request.task_id, c.request.wallet_id))
        return workflow_pb2.TaskResponse(task_id=out["task_id"], claimed=True)

    # -- work logs ------------------------------------------------------------------------
    def LogMinutes(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.LogMinutes, wallet=True)
        r = c.request
        self.audit.action(context, c.who, S + "LogMinutes", r.wallet_id, "logged work minutes", c.key)
        out = self.node.execute(self.wf.log_minutes(c.key, r.task_id, r.wallet_id, r.minutes, c.who.ref))
        return workflow_pb2.WorkLogResponse(log_id=out["log_id"], minutes=out["minutes"])

    def ApproveLog(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.ApproveLog)
        language = reading_language(self.app.city.config.locale, request.language)
        out = self.node.execute(self.wf.approve_log(c.key, c.request.log_id, as_staff(c.who).ref))
        return workflow_pb2.WorkLogResponse(
            log_id=out["log_id"],
            amount=self.node.amount(out["amount"]),
            explanation=award_explanation(out, language),
        )

    def RejectLog(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.RejectLog)
        r = c.request
        out = self.node.execute(self.wf.reject_log(c.key, r.log_id, as_staff(c.who).ref, r.reason))
        return workflow_pb2.WorkLogResponse(
            log_id=out["log_id"], amount=self.node.amount(0), reason=out["reason"]
        )

    def ListWorkLogs(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.ListWorkLogs)
        r, method, action = c.request, S + "ListWorkLogs", "read work logs"
        wallet_id, task_id = r.wallet_id, r.task_id
        if wallet_id is not None and task_id is None:
            require_wallet(c.who, wallet_id)
            self.app.wallet(wallet_id)  # an unknown wallet is NOT_FOUND, not an empty list
            self.audit.read(context, c.who, method, wallet_id, action, r.purpose)
            logs = self.wf.work_logs(wallet_id)
        elif task_id is not None and wallet_id is None:
            as_staff(c.who)  # a holder reads only their own logs
            check_purpose(purpose_of(context, r.purpose))  # before anything is read
            logs = self.wf.task_logs(task_id)
            for wallet in sorted({log.wallet_id for log in logs}):
                self.audit.read(context, c.who, method, wallet, action, r.purpose)
        else:
            raise InvalidInput("wallet_id", "give wallet_id or task_id, not both")
        return workflow_pb2.ListWorkLogsResponse(
            wallet_id=str(r.wallet_id or ""),
            logs=[
                workflow_pb2.WorkLog(
                    log_id=str(log.id),
                    task_id=str(log.task_id),
                    category=log.category,
                    minutes=log.minutes,
                    worked_on=log.worked_on.isoformat(),
                    status=log.status,
                    reason=log.reason,
                    wallet_id=str(log.wallet_id),
                )
                for log in logs
            ],
        )

    # -- tax and the city's figures -------------------------------------------------------
    def PayTax(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.PayTax, wallet=True)
        r = c.request
        out = self.node.execute(self.wf.pay_tax(c.key, r.wallet_id, r.amount, r.assessment_ref))
        return workflow_pb2.PayTaxResponse(
            paid=self.node.amount(out["paid"]),
            assessment_ref=out["assessment_ref"],
            available=self.node.amount(out["available"]),
        )

    def GetTreasuryStatement(self, request: Any, context: grpc.ServicerContext) -> Any:
        out = self.wf.treasury_statement()
        return workflow_pb2.TreasuryStatement(
            balance=self.node.amount(out["balance"]), assessments_paid=out["assessments_paid"]
        )

    def GetEquilibriumReport(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.wf  # noqa: B018 -- a city without a workflow refuses, as every call here does
        figures = self.node.figures()
        try:
            report = equilibrium_report(
                self.app, self.app.key, figures, self.node.disclosure, self.app.clock()
            )
        finally:
            figures.close()
        if report is None:
            return workflow_pb2.EquilibriumReport(city=self.app.key, available=False)
        return report_message(report)


def _cell(c: dict[str, Any]) -> Any:
    p = c.get("protection")
    return workflow_pb2.Cell(
        value=c.get("value"),
        protection=workflow_pb2.Protection(**p) if p else None,
        suppressed=bool(c.get("suppressed")),
        reason=str(c.get("reason", "")),
        empty=bool(c.get("empty")),
    )


COLUMNS = ("minted", "depreciated", "spent", "tax", "lapsed", "supply")


def report_message(report: dict[str, Any]) -> Any:
    return workflow_pb2.EquilibriumReport(
        city=report["city"],
        k=report["k"],
        months=[
            workflow_pb2.EquilibriumMonth(month=m["month"], **{col: _cell(m[col]) for col in COLUMNS})
            for m in report["months"]
        ],
        period_days=report["period_days"],
        period_years=report["period_years"],
        issuance_per_year=_cell(report["issuance_per_year"]),
        steady_state_supply=_cell(report["steady_state_supply"]),
        treasury_received=_cell(report["treasury_received"]),
        method=report["method"],
        available=True,
        epsilon_per_month=report["epsilon_per_month"],
    )


def cell_dict(cell: Any) -> dict[str, Any]:
    """A Cell back as the report's dict (for clients that compare with the in-process report)."""
    out: dict[str, Any] = {}
    if cell.HasField("value"):
        out["value"] = cell.value
    if cell.suppressed:
        out["suppressed"] = True
    if cell.reason:
        out["reason"] = cell.reason
    if cell.empty:
        out["empty"] = True
    if cell.HasField("protection"):
        p = cell.protection
        out["protection"] = {"method": p.method}
        for name in ("epsilon", "sensitivity", "k"):
            if p.HasField(name):
                out["protection"][name] = getattr(p, name)
        if p.period:
            out["protection"]["period"] = p.period
        if p.HasField("cells"):
            out["protection"]["cells"] = p.cells
    return out


def report_dict(msg: Any) -> dict[str, Any]:
    """An EquilibriumReport message as the dict `equilibrium_report` returns."""
    return {
        "city": msg.city,
        "k": msg.k,
        "months": [
            {"month": m.month, **{col: cell_dict(getattr(m, col)) for col in COLUMNS}} for m in msg.months
        ],
        "period_days": msg.period_days,
        "period_years": msg.period_years,
        "issuance_per_year": cell_dict(msg.issuance_per_year),
        "steady_state_supply": cell_dict(msg.steady_state_supply),
        "treasury_received": cell_dict(msg.treasury_received),
        "method": msg.method,
        "epsilon_per_month": msg.epsilon_per_month,
    }
