"""Idempotency receipts and once-only markers, without a side table.

Both have ids derived from their natural key, so saving a second one for the
same key fails the event store's unique constraint inside the same atomic save
as the change it guards.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.errors import AlreadyAwarded, IdempotencyConflict, rebuild


def params_hash(command: str, params: dict[str, Any]) -> str:
    body = json.dumps([command, params], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


@lru_cache(maxsize=4096)  # a command asks for the same id several times
def _receipt_id(city: str, key: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"civfed:{city}:receipt:{key}")


class Receipt(Aggregate):
    """The outcome of one command: its result, or the refusal it met.

    Refusals that depend on state are kept too, so a retry gets the same answer
    rather than one decided against a later state.
    """

    @staticmethod
    def create_id(city: str, key: str) -> UUID:
        # Named or not (eventsourcing names them when it creates the receipt), one cache entry.
        return _receipt_id(city, key)

    @event("Recorded")
    def __init__(
        self,
        city: str,
        key: str,
        command: str,
        params_hash: str,
        result: dict[str, Any],
        owner: UUID | None = None,
    ) -> None:
        # `owner` is the wallet the command was about: its result is that person's data.
        self.command = command
        self.params_hash = params_hash
        self.result = result

    def replay(self, command: str, params_hash: str) -> dict[str, Any]:
        """The original result of a retried command, or a refusal if it differs."""
        if (command, params_hash) != (self.command, self.params_hash):
            raise IdempotencyConflict("idempotency key was already used with different parameters")
        if "refused" in self.result:
            raise rebuild(self.result)
        return self.result


class SubjectClaim(Aggregate):
    """Marks that a once-per-subject award (a bike frame, an event) was given."""

    @staticmethod
    def digest(subject_key: str) -> str:
        # The subject itself (a frame number) is never stored, only this digest.
        return hashlib.sha256(subject_key.encode()).hexdigest()

    @staticmethod
    def create_id(city: str, rule_id: str, subject_digest: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"civfed:{city}:once:{rule_id}:{subject_digest}")

    @event("Claimed")
    def __init__(self, city: str, rule_id: str, subject_digest: str, wallet_id: UUID) -> None:
        self.rule_id = rule_id
        self.wallet_id = wallet_id

    @staticmethod
    def check_unclaimed(existing: SubjectClaim | None, rule_id: str) -> None:
        if existing is not None:
            raise AlreadyAwarded(f"rule {rule_id!r} already rewarded this subject")
