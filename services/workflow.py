"""Workflow commands for a city whose `city.toml` has a `[workflow]` table.

The council's catalogue, tasks, logged minutes, four-eyes approval, minting
through the city's `per_approved_time` rule, and municipal tax paid into the
treasury. Every command carries an idempotency key, like the city's others.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol
from uuid import UUID

from aggregates import rules
from aggregates.appeal import Appeal
from aggregates.depreciation import schedule
from aggregates.errors import InvalidInput, NotFound, PreconditionFailed
from aggregates.rulebook import Rulebook
from aggregates.treasury import Treasury
from aggregates.wallet import Wallet
from aggregates.workflow import Task, WorkCatalogue, WorkLog
from services.appeals import appeal_activity_id
from services.lots import new_lot
from services.settings.cities import City, WorkflowTerms
from services.unit_of_work import Command, UnitOfWork


class WorkflowHost(Protocol):
    """What the workflow needs of its city application (which owns it)."""

    key: str
    city: City
    rulebook: Rulebook

    def clock(self) -> dt.datetime: ...

    def wallet(self, wallet_id: UUID) -> Wallet: ...

    def save(self, *aggregates: Any) -> Any: ...

    @property
    def repository(self) -> Any: ...


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
        self._sync_catalogue()

    def _sync_catalogue(self) -> None:
        """Publish the catalogue in the city file; categories removed from it are retired."""
        uow = UnitOfWork(self.app)
        catalogue = uow.find(self.catalogue_id, WorkCatalogue) or WorkCatalogue(self.key)
        for spec in self.terms.categories:
            catalogue.publish(spec.code, spec.title, spec.sector, spec.decision_ref)
        wanted = {spec.code for spec in self.terms.categories}
        for code, category in list(catalogue.categories.items()):
            if category.active and code not in wanted:
                catalogue.retire(code, "removed from the published city file")
        treasury = uow.find(self.treasury_id, Treasury) or Treasury(self.key)
        self.app.save(catalogue, treasury)

    # -- the council's catalogue --------------------------------------------
    def publish_category(self, key: str, code: str, title: str, sector: str, decision_ref: str) -> Command:
        def handle(uow: UnitOfWork) -> dict[str, Any]:
            catalogue = uow.get(self.catalogue_id, WorkCatalogue, "work catalogue")
            changed = catalogue.publish(code, title, sector, decision_ref)
            return {"code": code, "version": catalogue.get(code).version, "changed": changed}

        params = {"code": code, "title": title, "sector": sector, "decision": decision_ref}
        return Command("publish_category", key, params, handle)

    def retire_category(self, key: str, code: str, decision_ref: str) -> Command:
        def handle(uow: UnitOfWork) -> dict[str, Any]:
            uow.get(self.catalogue_id, WorkCatalogue, "work catalogue").retire(code, decision_ref)
            return {"code": code, "retired": True}

        return Command("retire_category", key, {"code": code, "decision": decision_ref}, handle)

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
    ) -> Command:
        def handle(uow: UnitOfWork) -> dict[str, Any]:
            uow.get(self.catalogue_id, WorkCatalogue, "work catalogue").check_open(category)
            task = Task.post(self.key, category, place, starts_at, ends_at, slots, posted_by)
            uow.add(task)
            return {"task_id": str(task.id)}

        params = {"category": category, "place": place, "from": starts_at, "to": ends_at, "slots": slots}
        return Command("post_task", key, {**params, "by": posted_by}, handle)

    def claim_task(self, key: str, task_id: UUID, wallet_id: UUID) -> Command:
        def handle(uow: UnitOfWork) -> dict[str, Any]:
            now = self.app.clock()
            uow.get(wallet_id, Wallet, "wallet").check_earning(now)
            task = uow.get(task_id, Task, "task")
            task.claim(wallet_id, now)
            return {"task_id": str(task.id), "claimed": True}

        return Command("claim_task", key, {"task": task_id, "wallet": wallet_id}, handle)

    def log_minutes(
        self, key: str, task_id: UUID, wallet_id: UUID, minutes: int, logged_by: str | None = None
    ) -> Command:
        """The participant (or someone on their behalf, named in `logged_by`) logs minutes worked."""

        def handle(uow: UnitOfWork) -> dict[str, Any]:
            now = self.app.clock()
            task = uow.get(task_id, Task, "task")
            task.check_loggable(wallet_id, minutes, now)
            log_id = WorkLog.create_id(self.key, task.id, wallet_id)
            if uow.find(log_id, WorkLog) is not None:
                raise PreconditionFailed(f"minutes for task {task.id} were already logged by this wallet")
            worked_on = min(now, task.ends_at).date().isoformat()
            log = WorkLog(
                self.key, task.id, wallet_id, task.category, minutes, worked_on, logged_by or str(wallet_id)
            )
            uow.add(log)
            return {"log_id": str(log.id), "minutes": minutes}

        params = {"task": task_id, "wallet": wallet_id, "minutes": minutes, "by": logged_by}
        return Command("log_minutes", key, params, handle)

    def approve_log(self, key: str, log_id: UUID, approver: str) -> Command:
        def handle(uow: UnitOfWork) -> dict[str, Any]:
            log = uow.get(log_id, WorkLog, "work log")
            uow.owner = log.wallet_id  # the receipt's explanation is the participant's data
            log.check_pending()
            log.check_four_eyes(approver)
            now = self.app.clock()
            wallet, rule, award = self._award(uow, log, now)
            log.approve(approver, award.amount)
            self._mint(wallet, rule, f"work-log:{log.id}", award.amount, award.explanation, now)
            return {"log_id": str(log.id), "amount": award.amount, "explanation": award.explanation}

        return Command("approve_log", key, {"log": log_id, "approver": approver}, handle)

    def reject_log(self, key: str, log_id: UUID, approver: str, reason: str) -> Command:
        def handle(uow: UnitOfWork) -> dict[str, Any]:
            log = uow.get(log_id, WorkLog, "work log")
            uow.owner = log.wallet_id  # the receipt's reason is the participant's data
            log.reject(approver, reason)
            return {"log_id": str(log.id), "amount": 0, "reason": reason}

        return Command("reject_log", key, {"log": log_id, "approver": approver, "reason": reason}, handle)

    def remedy(self, uow: UnitOfWork, appeal: Appeal, spec: dict[str, Any]) -> dict[str, Any]:
        """An upheld appeal against a rejected log mints its logged minutes through the same rule.

        Runs inside the appeal decision's unit of work; checks everything first.
        The appeal itself records who decided and why. `spec` is not needed: the
        log already holds the minutes.
        """
        try:
            log_id = UUID(appeal.subject_ref)
        except ValueError:
            raise InvalidInput("subject_ref", "a work log id") from None
        log = uow.get(log_id, WorkLog, "work log")
        if log.wallet_id != appeal.wallet_id:
            raise InvalidInput("subject_ref", "the work log belongs to another wallet")
        if log.status != "rejected":
            raise PreconditionFailed(f"work log {log.id} is {log.status}, not rejected")
        now = self.app.clock()
        wallet, rule, award = self._award(uow, log, now)
        log.reinstate(appeal.id, award.amount)
        explanation = f"appeal upheld against the rejection of these minutes: {award.explanation}"
        self._mint(wallet, rule, appeal_activity_id(appeal), award.amount, explanation, now)
        return {"log_id": str(log.id), "amount": award.amount, "explanation": explanation}

    def _award(
        self, uow: UnitOfWork, log: WorkLog, now: dt.datetime
    ) -> tuple[Wallet, rules.Rule, rules.Award]:
        rule = self.app.rulebook.for_activity(self.terms.activity)
        if rule.kind != rules.PER_APPROVED_TIME:
            raise NotFound(f"rule {rule.rule_id} is not a per_approved_time rule")
        wallet = uow.get(log.wallet_id, Wallet, "wallet")
        rule.check_covers(wallet, now)
        work = {"date": log.worked_on, "minutes": log.minutes, "category": log.category}
        return wallet, rule, rules.evaluate(rule, work, rules.Context.of(rule, wallet, approved_work=True))

    def _mint(
        self,
        wallet: Wallet,
        rule: rules.Rule,
        activity_id: str,
        amount: int,
        explanation: str,
        now: dt.datetime,
    ) -> None:
        lot = new_lot(self.app.city.config.currency, now)
        wallet.credit(amount, rule.rule_id, rule.version, activity_id, explanation, lot=lot)

    # -- municipal tax --------------------------------------------------------
    def pay_tax(self, key: str, wallet_id: UUID, amount: int, assessment_ref: str) -> Command:
        def handle(uow: UnitOfWork) -> dict[str, Any]:
            Treasury.check_assessment_ref(assessment_ref)
            treasury = uow.get(self.treasury_id, Treasury, "treasury")
            wallet = uow.get(wallet_id, Wallet, "wallet")
            wallet.pay_tax(amount, treasury.id, assessment_ref, self.app.clock())
            treasury.receive(amount, assessment_ref, wallet.id)
            return {"paid": amount, "assessment_ref": assessment_ref, "available": wallet.available}

        params = {"wallet": wallet_id, "amount": amount, "assessment": assessment_ref}
        return Command("pay_tax", key, params, handle)

    # -- queries --------------------------------------------------------------
    def balance(self, wallet_id: UUID, on: dt.date | None = None) -> dict[str, Any]:
        """Current value and the published schedule of upcoming depreciation (monthly, 12 steps)."""
        return published_balance(self.app.wallet(wallet_id), on or self.app.clock().date())

    def treasury_balance(self) -> int:
        return UnitOfWork(self.app).get(self.treasury_id, Treasury, "treasury").balance


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
