"""Workflow commands for a city whose `city.toml` has a `[workflow]` table.

The council's catalogue, tasks, logged minutes, four-eyes approval, minting
through the city's `per_approved_time` rule, and municipal tax paid into the
treasury. Every command carries an idempotency key, like the city's others.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol
from uuid import UUID

from aggregates import rules
from aggregates.appeal import Appeal
from aggregates.depreciation import schedule
from aggregates.errors import AwardRefused, InvalidInput, NotFound, PreconditionFailed, WorkDayFull
from aggregates.rulebook import Rulebook
from aggregates.treasury import Treasury
from aggregates.wallet import Wallet
from aggregates.workflow import REFUSED, REJECTED, Category, Task, TaskBoard, WorkCatalogue, WorkDay, WorkLog
from services import commands as c
from services.appeals import appeal_activity_id
from services.commands import Command
from services.lots import new_lot
from services.settings.cities import City, WorkflowTerms
from services.unit_of_work import Job, UnitOfWork


class WorkflowHost(Protocol):
    """What the workflow needs of its city application (which owns it)."""

    key: str
    city: City
    rulebook: Rulebook

    def clock(self) -> dt.datetime: ...

    def wallet(self, wallet_id: UUID) -> Wallet: ...

    def save(self, *aggregates: Any) -> Any: ...

    def job(self, command: Command) -> Job: ...

    def draw(self, uow: UnitOfWork, rule: rules.Rule, amount: int, activity_id: str) -> str: ...

    @property
    def repository(self) -> Any: ...


# An upheld appeal's award: the award's own explanation (`explanation`, nested) after it.
UPHELD_WORK = "appeal upheld against the rejection of these minutes: {explanation}"
MESSAGE_IDS = (UPHELD_WORK,)

ROUNDING = (
    "a lot minted with value v on day b, ending on day e, is worth floor(v × (e − d) / (e − b)) on day d; "
    "approved minutes earn floor(minutes × units_per_hour / 60)"
)


class Workflow:
    def __init__(self, app: WorkflowHost, terms: WorkflowTerms) -> None:
        self.app = app
        self.key = app.key
        self.terms = terms
        self.catalogue_id = WorkCatalogue.create_id(self.key)
        self.treasury_id = Treasury.create_id(self.key)
        self.board_id = TaskBoard.create_id(self.key)
        self._sync_catalogue()

    def _sync_catalogue(self) -> None:
        """Apply what changed in the city file's catalogue since it was last applied (new and
        edited entries published, removed ones retired); the council's own changes by command
        to entries the file did not change stay."""
        uow = UnitOfWork(self.app)
        catalogue = uow.find(self.catalogue_id, WorkCatalogue) or WorkCatalogue(self.key)
        catalogue.sync_file(
            {spec.code: [spec.title, spec.sector, spec.decision_ref] for spec in self.terms.categories}
        )
        treasury = uow.find(self.treasury_id, Treasury) or Treasury(self.key)
        board = uow.find(self.board_id, TaskBoard) or TaskBoard(self.key)
        self.app.save(catalogue, treasury, board)

    def handlers(self) -> dict[type[Command], Callable[[Any, UnitOfWork], dict[str, Any]]]:
        """The workflow's commands and their handlers, for the city application's table."""
        return {
            c.PublishCategory: self._publish_category,
            c.RetireCategory: self._retire_category,
            c.PostTask: self._post_task,
            c.CloseTask: self._close_task,
            c.ClaimTask: self._claim_task,
            c.LogMinutes: self._log_minutes,
            c.ApproveLog: self._approve_log,
            c.RejectLog: self._reject_log,
            c.PayTax: self._pay_tax,
        }

    # -- the council's catalogue --------------------------------------------
    def publish_category(self, key: str, code: str, title: str, sector: str, decision_ref: str) -> Job:
        return self.app.job(c.PublishCategory(key, code, title, sector, decision_ref))

    def retire_category(self, key: str, code: str, decision_ref: str) -> Job:
        return self.app.job(c.RetireCategory(key, code, decision_ref))

    def _publish_category(self, cmd: c.PublishCategory, uow: UnitOfWork) -> dict[str, Any]:
        catalogue = uow.get(self.catalogue_id, WorkCatalogue, "work catalogue")
        changed = catalogue.publish(cmd.code, cmd.title, cmd.sector, cmd.decision_ref)
        return {"code": cmd.code, "version": catalogue.get(cmd.code).version, "changed": changed}

    def _retire_category(self, cmd: c.RetireCategory, uow: UnitOfWork) -> dict[str, Any]:
        uow.get(self.catalogue_id, WorkCatalogue, "work catalogue").retire(cmd.code, cmd.decision_ref)
        return {"code": cmd.code, "retired": True}

    # -- tasks and hours ------------------------------------------------------
    def post_task(
        self,
        key: str,
        category: str,
        place: str,
        starts_at: dt.datetime,
        ends_at: dt.datetime,
        slots: int,
        posted_by: str,
    ) -> Job:
        return self.app.job(c.PostTask(key, category, place, starts_at, ends_at, slots, posted_by))

    def claim_task(self, key: str, task_id: UUID, wallet_id: UUID) -> Job:
        return self.app.job(c.ClaimTask(key, task_id, wallet_id))

    def log_minutes(
        self, key: str, task_id: UUID, wallet_id: UUID, minutes: int, logged_by: str | None = None
    ) -> Job:
        """The participant (or someone on their behalf, named in `logged_by`) logs minutes worked."""
        return self.app.job(c.LogMinutes(key, task_id, wallet_id, minutes, logged_by))

    def approve_log(self, key: str, log_id: UUID, approver: str) -> Job:
        return self.app.job(c.ApproveLog(key, log_id, approver))

    def reject_log(self, key: str, log_id: UUID, approver: str, reason: str) -> Job:
        return self.app.job(c.RejectLog(key, log_id, approver, reason))

    def _post_task(self, cmd: c.PostTask, uow: UnitOfWork) -> dict[str, Any]:
        uow.get(self.catalogue_id, WorkCatalogue, "work catalogue").check_open(cmd.category)
        task = Task.post(
            self.key, cmd.category, cmd.place, cmd.starts_at, cmd.ends_at, cmd.slots, cmd.posted_by
        )
        uow.add(task)
        uow.get(self.board_id, TaskBoard, "task board").pin(task.id)
        return {"task_id": str(task.id)}

    def close_task(self, key: str, task_id: UUID, reason: str, closed_by: str) -> Job:
        return self.app.job(c.CloseTask(key, task_id, reason, closed_by))

    def _close_task(self, cmd: c.CloseTask, uow: UnitOfWork) -> dict[str, Any]:
        task = uow.get(cmd.task_id, Task, "task")
        task.close(cmd.reason)
        return {"task_id": str(task.id), "closed": True}

    def _claim_task(self, cmd: c.ClaimTask, uow: UnitOfWork) -> dict[str, Any]:
        now = self.app.clock()
        uow.get(cmd.wallet_id, Wallet, "wallet").check_earning(now)
        task = uow.get(cmd.task_id, Task, "task")
        task.claim(cmd.wallet_id, now)
        return {"task_id": str(task.id), "claimed": True}

    def _log_minutes(self, cmd: c.LogMinutes, uow: UnitOfWork) -> dict[str, Any]:
        now = self.app.clock()
        task = uow.get(cmd.task_id, Task, "task")
        task.check_loggable(cmd.wallet_id, cmd.minutes, now)
        log_id = WorkLog.create_id(self.key, task.id, cmd.wallet_id)
        if uow.find(log_id, WorkLog) is not None:
            raise PreconditionFailed(f"minutes for task {task.id} were already logged by this wallet")
        worked_on = min(now, task.ends_at).date().isoformat()
        logged_by = cmd.logged_by or str(cmd.wallet_id)
        log = WorkLog(self.key, task.id, cmd.wallet_id, task.category, cmd.minutes, worked_on, logged_by)
        uow.add(log)
        return {"log_id": str(log.id), "minutes": cmd.minutes}

    def _approve_log(self, cmd: c.ApproveLog, uow: UnitOfWork) -> dict[str, Any]:
        log = uow.get(cmd.log_id, WorkLog, "work log")
        uow.owner = log.wallet_id  # the receipt's explanation is the participant's data
        log.check_pending()
        log.check_four_eyes(cmd.approver)
        now = self.app.clock()
        worked_on = dt.date.fromisoformat(str(log.worked_on))
        wallet, rule, award = self._award(uow, log, worked_on, now)
        day = self._work_day(uow, log.wallet_id, worked_on)
        try:
            day.check_room(log.id, log.minutes)
        except WorkDayFull as exc:
            # Recorded on the log (saved with the refusal's receipt), and open to appeal.
            log.refuse(cmd.approver, str(exc))
            raise WorkDayFull(f"{exc}; refusal recorded, appealable as work_log {str(log.id)!r}") from None
        try:
            fund = self.app.draw(uow, rule, award.amount, f"work-log:{log.id}")
        except AwardRefused as exc:
            # The fund behind the rule has too little left: refused like a full day.
            log.refuse(cmd.approver, str(exc))
            raise AwardRefused(f"{exc}; refusal recorded, appealable as work_log {str(log.id)!r}") from None
        log.approve(cmd.approver, award.amount)
        day.add(log.id, log.minutes)
        message, args = award.message, award.args
        self._mint(
            wallet, rule, f"work-log:{log.id}", award.amount, award.explanation, now, message, args, fund
        )
        return {
            "log_id": str(log.id),
            "amount": award.amount,
            "explanation": award.explanation,
            "explanation_id": message,
            "explanation_args": args,
        }

    def _work_day(self, uow: UnitOfWork, wallet_id: UUID, on: dt.date) -> WorkDay:
        day_id = WorkDay.create_id(self.key, wallet_id, on)
        day = uow.find(day_id, WorkDay)
        if day is None:
            day = WorkDay(self.key, wallet_id, on.isoformat())
            uow.add(day)
        return day

    def _reject_log(self, cmd: c.RejectLog, uow: UnitOfWork) -> dict[str, Any]:
        log = uow.get(cmd.log_id, WorkLog, "work log")
        uow.owner = log.wallet_id  # the receipt's reason is the participant's data
        log.reject(cmd.approver, cmd.reason)
        return {"log_id": str(log.id), "amount": 0, "reason": cmd.reason}

    def remedy(self, uow: UnitOfWork, appeal: Appeal, spec: dict[str, Any]) -> dict[str, Any]:
        """An upheld appeal against a rejected log mints its logged minutes through the same rule.

        Runs inside the appeal decision's unit of work; checks everything first.
        The appeal itself records who decided and why. The log holds the minutes; for a
        log the full-day rule refused, the decision may give the day the work was really
        done (`fields.worked_on`, inside the task's window). Either way the person's
        approved minutes on that day stay within what a day holds.
        """
        try:
            log_id = UUID(appeal.subject_ref)
        except ValueError:
            raise InvalidInput("subject_ref", "a work log id") from None
        log = uow.get(log_id, WorkLog, "work log")
        if log.wallet_id != appeal.wallet_id:
            raise InvalidInput("subject_ref", "the work log belongs to another wallet")
        if log.status not in (REJECTED, REFUSED):
            raise PreconditionFailed(f"work log {log.id} is {log.status}, not rejected or refused")
        worked_on = dt.date.fromisoformat(str(log.worked_on))
        fields = spec.get("fields") or {}
        if isinstance(fields, dict) and fields.get("worked_on"):
            worked_on = self._day_in_window(uow, log, str(fields["worked_on"]))
        now = self.app.clock()
        wallet, rule, award = self._award(uow, log, worked_on, now)
        day = self._work_day(uow, log.wallet_id, worked_on)
        day.check_room(log.id, log.minutes)
        fund = self.app.draw(uow, rule, award.amount, appeal_activity_id(appeal))
        log.reinstate(appeal.id, award.amount)
        day.add(log.id, log.minutes)
        explanation = f"appeal upheld against the rejection of these minutes: {award.explanation}"
        args: dict[str, Any] = {"explanation": {"id": award.message, "args": award.args}}
        activity_id = appeal_activity_id(appeal)
        self._mint(wallet, rule, activity_id, award.amount, explanation, now, UPHELD_WORK, args, fund)
        return {
            "log_id": str(log.id),
            "amount": award.amount,
            "explanation": explanation,
            "explanation_id": UPHELD_WORK,
            "explanation_args": args,
        }

    @staticmethod
    def _day_in_window(uow: UnitOfWork, log: WorkLog, text: str) -> dt.date:
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            raise InvalidInput("remedy.fields.worked_on", "a date, YYYY-MM-DD") from None
        task = uow.get(log.task_id, Task, "task")
        if not task.starts_at.date() <= day <= task.ends_at.date():
            raise InvalidInput("remedy.fields.worked_on", "a day inside the task's window")
        return day

    def _award(
        self, uow: UnitOfWork, log: WorkLog, worked_on: dt.date, now: dt.datetime
    ) -> tuple[Wallet, rules.Rule, rules.Award]:
        # The version in force on the day the work was done.
        rule = self.app.rulebook.for_activity(self.terms.activity, worked_on)
        if rule.kind != rules.PER_APPROVED_TIME:
            raise NotFound(f"rule {rule.rule_id} is not a per_approved_time rule")
        wallet = uow.get(log.wallet_id, Wallet, "wallet")
        rule.check_covers(wallet, now)
        work = {"date": worked_on, "minutes": log.minutes, "category": log.category}
        return wallet, rule, rules.evaluate(rule, work, rules.Context.of(rule, wallet, approved_work=True))

    def _mint(
        self,
        wallet: Wallet,
        rule: rules.Rule,
        activity_id: str,
        amount: int,
        explanation: str,
        now: dt.datetime,
        explanation_id: str,
        explanation_args: dict[str, Any],
        fund: str = "",
    ) -> None:
        lot = new_lot(self.app.city.config.currency, now)
        wallet.credit(
            amount,
            rule.rule_id,
            rule.version,
            activity_id,
            explanation,
            lot=lot,
            explanation_id=explanation_id,
            explanation_args=explanation_args,
            fund=fund,
        )

    # -- municipal tax --------------------------------------------------------
    def pay_tax(self, key: str, wallet_id: UUID, amount: int, assessment_ref: str) -> Job:
        return self.app.job(c.PayTax(key, wallet_id, amount, assessment_ref))

    def _pay_tax(self, cmd: c.PayTax, uow: UnitOfWork) -> dict[str, Any]:
        tax = self.terms.tax
        Treasury.check_assessment_ref(cmd.assessment_ref, tax.assessment_ref_pattern)
        treasury = uow.get(self.treasury_id, Treasury, "treasury")
        treasury.check_payable(cmd.assessment_ref, tax.instalments)
        wallet = uow.get(cmd.wallet_id, Wallet, "wallet")
        wallet.pay_tax(cmd.amount, treasury.id, cmd.assessment_ref, self.app.clock())
        pattern, instalments = tax.assessment_ref_pattern, tax.instalments
        treasury.receive(cmd.amount, cmd.assessment_ref, wallet.id, pattern, instalments)
        return {"paid": cmd.amount, "assessment_ref": cmd.assessment_ref, "available": wallet.available}

    # -- queries --------------------------------------------------------------
    def balance(self, wallet_id: UUID, on: dt.date | None = None) -> dict[str, Any]:
        """Current value and the published schedule of upcoming depreciation (monthly, 12 steps)."""
        return published_balance(self.app.wallet(wallet_id), on or self.app.clock().date())

    def treasury_balance(self) -> int:
        return UnitOfWork(self.app).get(self.treasury_id, Treasury, "treasury").balance

    def treasury_statement(self) -> dict[str, int]:
        """Totals only: the references are the payers' personal data."""
        treasury = UnitOfWork(self.app).get(self.treasury_id, Treasury, "treasury")
        return {"balance": treasury.balance, "assessments_paid": len(treasury.received)}

    def categories(self) -> list[Category]:
        catalogue = UnitOfWork(self.app).get(self.catalogue_id, WorkCatalogue, "work catalogue")
        return sorted(catalogue.categories.values(), key=lambda cat: cat.code)

    def tasks(self, include_closed: bool = False) -> list[Task]:
        """Tasks in the order posted; without `include_closed`, only those still open to claims."""
        uow = UnitOfWork(self.app)
        board = uow.get(self.board_id, TaskBoard, "task board")
        now = self.app.clock()
        found = [uow.get(task_id, Task, "task") for task_id in board.task_ids]
        return [t for t in found if include_closed or (not t.closed_reason and now < t.ends_at)]

    def task_logs(self, task_id: UUID) -> list[WorkLog]:
        """Every log on one task, in the order its slots were claimed."""
        uow = UnitOfWork(self.app)
        task = uow.get(task_id, Task, "task")
        found = (uow.find(WorkLog.create_id(self.key, task.id, w), WorkLog) for w in task.claimed_by)
        return [log for log in found if log is not None]

    def work_logs(self, wallet_id: UUID) -> list[WorkLog]:
        """One person's logs, over every task they claimed (read from the task board)."""
        uow = UnitOfWork(self.app)
        logs = []
        for task in self.tasks(include_closed=True):
            if wallet_id in task.claimed_by:
                log = uow.find(WorkLog.create_id(self.key, task.id, wallet_id), WorkLog)
                if log is not None:
                    logs.append(log)
        return logs


def published_balance(wallet: Wallet, day: dt.date) -> dict[str, Any]:
    """A wallet's value on `day` and the published schedule of its upcoming depreciation."""
    steps = schedule(wallet.lots, day)
    return {
        "wallet_id": str(wallet.id),
        "on": day.isoformat(),
        "value": wallet.value_on(day),
        "lots": len(wallet.lots),
        "schedule": [
            {"on": s.on.isoformat(), "value": s.value, "depreciation": s.depreciation} for s in steps
        ],
        "rounding": ROUNDING,
    }
