"""Appeal commands: filing and deciding, with remedies registered per subject kind.

An upheld appeal runs its remedy inside the same unit of work as the decision,
so the decision and its effect are stored in one atomic save or not at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from aggregates.appeal import Appeal, check_reason
from aggregates.errors import InvalidInput, NotFound
from aggregates.wallet import Wallet
from services.commands import Command, DecideAppeal, FileAppeal
from services.settings.cities import City
from services.unit_of_work import Job, UnitOfWork

Remedy = Callable[[UnitOfWork, Appeal, dict[str, Any]], dict[str, Any]]


class CityLike(Protocol):
    """What appeals need of the city application."""

    city: City
    key: str
    appeal_remedies: dict[str, Remedy]

    def clock(self) -> dt.datetime: ...

    def credit_activity(
        self,
        uow: UnitOfWork,
        wallet_id: UUID,
        activity: str,
        fields: dict[str, Any],
        activity_id: str,
        waive_limits: bool = False,
    ) -> dict[str, Any]: ...

    def job(self, command: Command) -> Job: ...

    @property
    def repository(self) -> Any: ...

    def wallet(self, wallet_id: UUID) -> Wallet: ...


class Caller(Protocol):
    """An authenticated caller: how events name them (`holder:<wallet>`, `staff:<subject>`)."""

    @property
    def kind(self) -> str: ...

    @property
    def ref(self) -> str: ...


def filer(caller: Caller, wallet_id: UUID) -> str:
    """Who counts as having filed an appeal, and so may never decide it: the holder of the
    wallet, or the staff member who filed on the holder's behalf, as authenticated."""
    if caller.kind == "holder":
        return f"holder:{wallet_id}"
    if caller.kind != "staff":
        raise ValueError(f"a {caller.kind} does not file appeals")  # the policy lets no one else call
    return caller.ref


def appeal_activity_id(appeal: Appeal) -> str:
    """The activity id of a credit granted on appeal: derived, so it is granted once."""
    return f"appeal:{appeal.id}"


def award_remedy(app: CityLike, waive_limits: bool = False) -> Remedy:
    """Credit the award through the normal rule path, as if recorded in the first place;
    with `waive_limits` (an award a cap or date refused) past the rule's caps and dates."""

    def remedy(uow: UnitOfWork, appeal: Appeal, spec: dict[str, Any]) -> dict[str, Any]:
        activity = spec.get("activity")
        fields = spec.get("fields")
        if not isinstance(activity, str) or not activity:
            raise InvalidInput("remedy.activity", "an upheld award appeal names the activity to credit")
        if not isinstance(fields, dict):
            raise InvalidInput("remedy.fields", "an upheld award appeal gives the activity's fields")
        activity_id = appeal_activity_id(appeal)
        return app.credit_activity(uow, appeal.wallet_id, activity, fields, activity_id, waive_limits)

    return remedy


class AppealCommands:
    """Mixed into CityApplication; needs its city, key, clock and remedies."""

    appeal_remedies: dict[str, Remedy]

    def _register_award_remedies(self: CityLike) -> None:
        self.appeal_remedies = {
            "award": award_remedy(self),
            "missing_award": award_remedy(self),
            "refused_award": award_remedy(self, waive_limits=True),
        }

    def file_appeal(
        self: CityLike,
        key: str,
        wallet_id: UUID,
        subject_kind: str,
        subject_ref: str,
        reason: str,
        filed_by: str,
    ) -> Job:
        return self.job(FileAppeal(key, wallet_id, subject_kind, subject_ref, reason, filed_by))

    def decide_appeal(
        self: CityLike,
        key: str,
        appeal_id: UUID,
        upheld: bool,
        reason: str,
        decided_by: str,
        remedy: dict[str, Any] | None = None,
    ) -> Job:
        return self.job(DecideAppeal(key, appeal_id, upheld, reason, decided_by, remedy))

    def _file_appeal(self: CityLike, cmd: FileAppeal, uow: UnitOfWork) -> dict[str, Any]:
        wallet = uow.get(cmd.wallet_id, Wallet, "wallet")
        now = self.clock()
        wallet.check_earning(now)
        if cmd.subject_kind == "refused_award" and cmd.subject_ref not in wallet.refused:
            raise NotFound(f"wallet {wallet.id} has no refused award {cmd.subject_ref!r}")
        deadline = now + dt.timedelta(days=self.city.config.appeal_decision_days)
        appeal = Appeal.file(
            self.key, wallet.id, cmd.subject_kind, cmd.subject_ref, cmd.reason, cmd.filed_by, deadline
        )
        wallet.note_appeal(appeal.id, cmd.subject_kind)
        uow.add(appeal)
        return {"appeal_id": str(appeal.id), "status": appeal.status, "deadline": deadline.isoformat()}

    def _decide_appeal(self: CityLike, cmd: DecideAppeal, uow: UnitOfWork) -> dict[str, Any]:
        appeal = uow.get(cmd.appeal_id, Appeal, "appeal")
        uow.owner = appeal.wallet_id
        # A closed wallet is not processed any further, appeals included.
        now = self.clock()
        uow.get(appeal.wallet_id, Wallet, "wallet").check_earning(now)
        appeal.check_decidable(cmd.decided_by, now)
        check_reason("reason", cmd.reason)
        result: dict[str, Any] = {"appeal_id": str(appeal.id), "status": "upheld" if cmd.upheld else "denied"}
        if cmd.upheld:
            run = self.appeal_remedies.get(appeal.subject_kind)
            if run is None:
                raise InvalidInput("subject_kind", f"no remedy for {appeal.subject_kind!r} appeals")
            # The remedy checks everything before it changes anything, so a refusal
            # leaves the appeal open.
            result["remedy"] = run(uow, appeal, cmd.remedy or {})
        appeal.decide(cmd.upheld, cmd.reason, cmd.decided_by)
        return result

    def appeal(self: CityLike, appeal_id: UUID) -> Appeal:
        try:
            found = self.repository.get(appeal_id)
        except AggregateNotFoundError:
            found = None
        if not isinstance(found, Appeal):
            raise NotFound(f"appeal {appeal_id} not found")
        return found

    def appeals_of(self: CityLike, wallet_id: UUID) -> list[Appeal]:
        """The holder's appeals, with status and deadline, oldest first."""
        return [AppealCommands.appeal(self, appeal_id) for appeal_id in self.wallet(wallet_id).appeals]
