"""A wallet's access log: every staff read of the person's data and every staff action on
their wallet, with who (the authenticated subject and the roles they acted under), what,
when and the purpose they gave. One log per wallet; the person reads it next to their events.
"""

from __future__ import annotations

import datetime as dt
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.errors import InvalidInput

MAX_PURPOSE = 500


def check_purpose(purpose: str) -> None:
    """A staff read of a person's data says why."""
    if not purpose or not purpose.strip():
        raise InvalidInput("purpose", "staff reading a person's data must give a purpose")
    if len(purpose) > MAX_PURPOSE:
        raise InvalidInput("purpose", f"at most {MAX_PURPOSE} characters")


class AccessLog(Aggregate):
    @staticmethod
    def create_id(city: str, wallet_id: UUID) -> UUID:
        return uuid5(NAMESPACE_URL, f"civfed:{city}:access-log:{wallet_id}")

    @event("Opened")
    def __init__(self, city: str, wallet_id: UUID) -> None:
        self.city = city
        self.wallet_id = wallet_id
        self.entries = 0

    def record(
        self, subject: str, roles: list[str], action: str, purpose: str, at: dt.datetime, read: bool
    ) -> None:
        """`read`: the person's data was read, so a purpose is required; an action records
        the purpose if one was given."""
        if not subject.startswith("staff:"):
            raise InvalidInput("subject", "the access log records staff, by authenticated subject")
        if not action:
            raise InvalidInput("action", "what was read or done must be named")
        if read:
            check_purpose(purpose)
        self._recorded(self.wallet_id, subject, sorted(roles), action, purpose, at)

    @event("Recorded")
    def _recorded(
        self, wallet_id: UUID, subject: str, roles: list[str], action: str, purpose: str, at: dt.datetime
    ) -> None:
        self.entries += 1
