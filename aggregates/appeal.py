"""An appeal against an award, a missing award or another decision about a wallet.

The holder (or someone on their behalf) files it with a reason; a different
person decides it, also with a reason. An upheld appeal is remedied by the
application through the normal rule path, in the same save as the decision.
"""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from aggregates.errors import AppealAlreadyDecided, InvalidInput, SelfDecision

# The set stays open: a new kind of decision that can be appealed is added here,
# and its remedy is registered by the application that owns it.
# "refused_award": an award a rule's caps or dates refused; its ref is the activity id.
SUBJECT_KINDS = ("award", "missing_award", "work_log", "refused_award")


def check_reason(field: str, reason: str) -> None:
    if not reason or not reason.strip():
        raise InvalidInput(field, "a reason is required")


class Appeal(Aggregate):
    @event("Filed")
    def __init__(
        self,
        city: str,
        wallet_id: UUID,
        subject_kind: str,
        subject_ref: str,
        reason: str,
        filed_by: str,
        deadline: dt.datetime,
    ) -> None:
        self.city = city
        self.wallet_id = wallet_id
        self.subject_kind = subject_kind
        self.subject_ref = subject_ref
        self.reason = reason
        self.filed_by = filed_by
        self.deadline = deadline
        self.upheld: bool | None = None
        self.decision_reason: str | None = None
        self.decided_by: str | None = None

    @classmethod
    def file(
        cls,
        city: str,
        wallet_id: UUID,
        subject_kind: str,
        subject_ref: str,
        reason: str,
        filed_by: str,
        deadline: dt.datetime,
    ) -> Appeal:
        if subject_kind not in SUBJECT_KINDS:
            raise InvalidInput("subject_kind", f"must be one of {SUBJECT_KINDS}")
        check_reason("reason", reason)
        if not filed_by:
            raise InvalidInput("filed_by", "the person filing must be named")
        return cls(city, wallet_id, subject_kind, subject_ref, reason, filed_by, deadline)

    @property
    def status(self) -> str:
        if self.upheld is None:
            return "open"
        return "upheld" if self.upheld else "denied"

    def check_decidable(self, decided_by: str, now: dt.datetime) -> None:
        """A decision after the deadline is still taken: late is better than never."""
        if self.upheld is not None:
            raise AppealAlreadyDecided(f"appeal {self.id} was already {self.status}")
        if not decided_by:
            raise InvalidInput("decided_by", "the deciding staff member must be named")
        if decided_by == self.filed_by:
            raise SelfDecision(f"appeal {self.id} was filed by {decided_by}; another person must decide")

    @event("Decided")
    def decide(self, upheld: bool, reason: str, decided_by: str) -> None:
        check_reason("reason", reason)
        self.upheld = upheld
        self.decision_reason = reason
        self.decided_by = decided_by

    @property
    def decided_at(self) -> dt.datetime | None:
        # Decided is an appeal's last event, so its time is the decision's time.
        return None if self.upheld is None else self.modified_on
