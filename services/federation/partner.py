"""The port through which the redemption saga talks to a partner city.

Plain domain types only: the saga never sees a wire format. `services/grpc/partner_client.py`
implements the port over mutual TLS; `services/federation/local_partner.py` implements it
in memory, for tests and the fault simulation.

A call either answers with a `Decision`, or raises `PartnerUnreachable` when the answer is
unknown (no reply in time: the partner may or may not have acted), or `PartnerRefusedCall`
when the partner refused the call itself (no agreement, a reused key, busy) without
deciding anything about the redemption. Retrying any call with the same key is safe.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from aggregates.errors import PreconditionFailed
from aggregates.redemption import Terms


@dataclass(frozen=True)
class Decision:
    """What the home city decided about one redemption: accepted, or refused with a reason.

    A refusal is definitive: whatever was held for the redemption is (or will be) released,
    and nothing of it is ever burned.
    """

    accepted: bool
    reason: str = ""

    @classmethod
    def accept(cls) -> Decision:
        return cls(True)

    @classmethod
    def refuse(cls, reason: str) -> Decision:
        return cls(False, reason)


@dataclass(frozen=True)
class Reservation:
    """The home's answer to a reserve: with an acceptance, the redemption it opened."""

    decision: Decision
    amount: int
    redemption_id: UUID | None = None
    hold_expires_at: dt.datetime | None = None


@dataclass(frozen=True)
class Outcome:
    """The home's answer to a commit or a cancel."""

    decision: Decision
    amount: int = 0


@dataclass(frozen=True)
class PublishedTerms:
    """A partner's currency and what its shops give for other cities' tokens."""

    city: str
    currency: str
    accepts: Mapping[str, Terms] = field(default_factory=dict)
    redeemable_at: tuple[str, ...] = ()


class PartnerUnreachable(Exception):
    """No answer in time: the partner may or may not have acted. Retry with the same key."""


class PartnerRefusedCall(PreconditionFailed):
    """The partner refused the call itself, deciding nothing about the redemption."""


class Partner(Protocol):
    """One partner city, as the saga sees it."""

    city: str

    def reserve(self, key: str, token: str) -> Reservation:
        """Hold the voucher's tokens at its home city."""
        ...

    def commit(self, key: str, redemption_id: UUID) -> Outcome:
        """Burn what the reserve held; refused if the hold lapsed or was cancelled."""
        ...

    def cancel(self, key: str, redemption_id: UUID, reason: str) -> Outcome:
        """Release what the reserve held; refused once the redemption was committed."""
        ...

    def published_terms(self) -> PublishedTerms: ...

    def close(self) -> None: ...
