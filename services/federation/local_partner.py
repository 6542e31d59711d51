"""The Partner port in memory: a home city's redemption commands, run directly.

For tests and the fault simulation (services/simulation), which put their own faults
between the saga and this. It answers as the gRPC service does (services/grpc/
federation_service.py): a holder's refusal only as "refused", a closed redemption as
a refused decision, any other refusal as a refused call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from uuid import UUID

from aggregates.errors import DomainError, RedemptionClosed
from aggregates.redemption import Terms
from services.federation.home import HOLDER_REFUSALS, HomeRedemptions
from services.federation.partner import Decision, Outcome, PartnerRefusedCall, PublishedTerms, Reservation
from services.unit_of_work import Job


class LocalPartner:
    """Home city `home` as partner `acceptor` reaches it; `execute` runs the home's commands."""

    def __init__(
        self, home: HomeRedemptions, execute: Callable[[Job], dict[str, Any]], acceptor: str
    ) -> None:
        self.home = home
        self.execute = execute
        self.acceptor = acceptor
        self.city = home.key

    def _key(self, key: str) -> str:
        # Scoped to the caller, as the gRPC service scopes a partner's keys.
        return f"partner:{self.acceptor}:{key}"

    def reserve(self, key: str, token: str) -> Reservation:
        voucher = self.home.voucher(token)
        try:
            out = self.execute(self.home.reserve(self._key(key), self.acceptor, voucher))
        except HOLDER_REFUSALS:
            return Reservation(Decision.refuse("refused by the home city"), voucher.amount)
        except DomainError as exc:
            raise PartnerRefusedCall(f"{self.city} refused: {exc}") from None
        return Reservation(
            Decision.accept(),
            out["amount"],
            UUID(out["redemption_id"]),
            dt.datetime.fromisoformat(out["hold_expires_at"]),
        )

    def commit(self, key: str, redemption_id: UUID) -> Outcome:
        try:
            out = self._closed_is_refusal(self.home.commit(self._key(key), self.acceptor, redemption_id))
        except RedemptionClosed as exc:
            return Outcome(Decision.refuse(str(exc)))
        accepted = out["decision"] == "accepted"
        return Outcome(Decision.accept() if accepted else Decision.refuse("the hold lapsed"), out["amount"])

    def cancel(self, key: str, redemption_id: UUID, reason: str) -> Outcome:
        try:
            self._closed_is_refusal(self.home.cancel(self._key(key), self.acceptor, redemption_id, reason))
        except RedemptionClosed as exc:
            return Outcome(Decision.refuse(str(exc)))
        return Outcome(Decision.accept())

    def _closed_is_refusal(self, job: Job) -> dict[str, Any]:
        try:
            return self.execute(job)
        except RedemptionClosed:
            raise
        except DomainError as exc:
            raise PartnerRefusedCall(f"{self.city} refused: {exc}") from None

    def published_terms(self) -> PublishedTerms:
        config = self.home.app.city.config
        accepts = {
            home: Terms(t.rate_numerator, t.rate_denominator, t.per_redemption_cap, t.daily_cap)
            for home, t in sorted(config.federation.accepts.items())
        }
        return PublishedTerms(
            config.key, config.currency.name, accepts, tuple(config.federation.redeemable_at)
        )

    def close(self) -> None:
        pass
