"""A city's treasury account: municipal tax paid in tokens, against assessments."""

from __future__ import annotations

import re
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.errors import AssessmentPaid, InvalidInput


class Treasury(Aggregate):
    """One per city. Records what was received, from which wallet, against which assessment.

    The assessment reference is the payer's personal data: the store seals it with
    their key, so erasing them leaves the amounts and removes the reference.
    """

    @staticmethod
    def create_id(city: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"civfed:{city}:treasury")

    @event("Opened")
    def __init__(self, city: str) -> None:
        self.city = city
        self.balance = 0
        self.received: dict[str, int] = {}

    @staticmethod
    def check_assessment_ref(assessment_ref: str, pattern: str) -> None:
        """The whole reference matches the city's published format (`city.toml`)."""
        if not assessment_ref.strip() or len(assessment_ref) > 64:
            raise InvalidInput("assessment_ref", "a tax assessment reference of 1 to 64 characters")
        if not re.fullmatch(pattern, assessment_ref):
            raise InvalidInput("assessment_ref", f"not a reference of this city's format ({pattern})")

    def check_payable(self, assessment_ref: str, instalments: bool) -> None:
        """Each assessment is paid once, unless the city takes instalments."""
        if not instalments and assessment_ref in self.received:
            raise AssessmentPaid(
                f"assessment {assessment_ref} was already paid; this city takes no instalments"
            )

    def receive(
        self, amount: int, assessment_ref: str, wallet_id: UUID, pattern: str, instalments: bool
    ) -> None:
        self.check_assessment_ref(assessment_ref, pattern)
        if amount <= 0:
            raise InvalidInput("amount", "must be a positive whole number")
        self.check_payable(assessment_ref, instalments)
        self._received(amount, assessment_ref, wallet_id)

    @event("TaxReceived")
    def _received(self, amount: int, assessment_ref: str, wallet_id: UUID) -> None:
        self.balance += amount
        self.received[assessment_ref] = self.received.get(assessment_ref, 0) + amount
