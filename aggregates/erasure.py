"""Erasure on request: a holder erases their own wallet, or an erasure officer requests it
on a published legal basis and a second officer approves it (four eyes, by authenticated
subject). The request records who, on which basis and when, and stays readable after the
person's key is destroyed: it carries no personal data, only codes and references.
"""

from __future__ import annotations

import datetime as dt
import re
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from aggregates.errors import ErasureNotPending, InvalidInput, SelfErasureApproval

# The bases an officer may cite (GDPR Art. 17(1)); a holder's own request is "holder_request".
LEGAL_BASES = (
    "art17_1a_no_longer_necessary",
    "art17_1b_consent_withdrawn",
    "art17_1c_objection",
    "art17_1d_unlawfully_processed",
    "art17_1e_legal_obligation",
    "art17_1f_child_information_society",
)
HOLDER_REQUEST = "holder_request"
# A case or file number: letters, digits and a few separators, so no free text rides along.
REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._/:#-]{0,99}$")


class ErasureRequest(Aggregate):
    @event("Requested")
    def __init__(
        self, city: str, wallet_id: UUID, legal_basis: str, reference: str, requested_by: str
    ) -> None:
        self.city = city
        self.wallet_id = wallet_id
        self.legal_basis = legal_basis
        self.reference = reference
        self.requested_by = requested_by
        self.status = "requested"
        self.approved_by = ""
        self.withdrawn_by = ""

    @classmethod
    def by_officer(
        cls, city: str, wallet_id: UUID, legal_basis: str, reference: str, requested_by: str
    ) -> ErasureRequest:
        if legal_basis not in LEGAL_BASES:
            raise InvalidInput("legal_basis", f"must be one of {LEGAL_BASES}")
        if not REFERENCE.match(reference):
            raise InvalidInput("reference", "a case or file reference (letters, digits, . _ / : # -)")
        if not requested_by.startswith("staff:"):
            raise InvalidInput("requested_by", "an erasure officer, by authenticated subject")
        return cls(city, wallet_id, legal_basis, reference, requested_by)

    @classmethod
    def by_holder(cls, city: str, wallet_id: UUID, at: dt.datetime) -> ErasureRequest:
        """The person's own request: granted at once, in the same save."""
        request = cls(city, wallet_id, HOLDER_REQUEST, "", f"holder:{wallet_id}")
        request._erased(request.requested_by, at)
        return request

    def check_approvable(self, approved_by: str) -> None:
        if self.status != "requested":
            raise ErasureNotPending(f"erasure request {self.id} is {self.status}")
        if not approved_by.startswith("staff:"):
            raise InvalidInput("approved_by", "an erasure officer, by authenticated subject")
        if approved_by == self.requested_by:
            raise SelfErasureApproval("a second erasure officer must approve: the requester may not")

    def approve(self, approved_by: str, at: dt.datetime) -> None:
        self.check_approvable(approved_by)
        self._erased(approved_by, at)

    @event("Approved")
    def _erased(self, approved_by: str, at: dt.datetime) -> None:
        self.status = "erased"
        self.approved_by = approved_by

    def withdraw(self, withdrawn_by: str, reason: str) -> None:
        if self.status != "requested":
            raise ErasureNotPending(f"erasure request {self.id} is {self.status}")
        if withdrawn_by != self.requested_by:
            raise ErasureNotPending("only the officer who requested an erasure may withdraw it")
        self._withdrawn(self.wallet_id, withdrawn_by, reason)

    @event("Withdrawn")
    def _withdrawn(self, wallet_id: UUID, withdrawn_by: str, reason: str) -> None:
        self.status = "withdrawn"
        self.withdrawn_by = withdrawn_by
