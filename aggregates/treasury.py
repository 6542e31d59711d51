"""A city's treasury account: municipal tax paid in tokens, against assessments."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.errors import InvalidInput


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
    def check_assessment_ref(assessment_ref: str) -> None:
        if not assessment_ref.strip() or len(assessment_ref) > 64:
            raise InvalidInput("assessment_ref", "a tax assessment reference of 1 to 64 characters")

    def receive(self, amount: int, assessment_ref: str, wallet_id: UUID) -> None:
        self.check_assessment_ref(assessment_ref)
        if amount <= 0:
            raise InvalidInput("amount", "must be a positive whole number")
        self._received(amount, assessment_ref, wallet_id)

    @event("TaxReceived")
    def _received(self, amount: int, assessment_ref: str, wallet_id: UUID) -> None:
        self.balance += amount
        self.received[assessment_ref] = self.received.get(assessment_ref, 0) + amount
