"""The Partner port (services/federation/partner.py) over gRPC with mutual TLS.

Every call has a deadline, and only UNAVAILABLE is retried here; retrying is safe because
every mutating call carries an idempotency key. No answer in time is `PartnerUnreachable`
(the partner may have acted). A commit or cancel the home refuses because the redemption
is closed is a `Decision`; any other refusal status is `PartnerRefusedCall`, which decides
nothing about the redemption.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

import grpc

from aggregates.redemption import Terms
from civfed.v1 import federation_pb2, federation_pb2_grpc
from services.federation.partner import (
    Decision,
    Outcome,
    PartnerRefusedCall,
    PartnerUnreachable,
    PublishedTerms,
    Reservation,
)
from services.grpc.client import call_with_retry

R = TypeVar("R")

ACCEPTED = federation_pb2.DECISION_ACCEPTED
# Trailing metadata on a Commit or Cancel refused because the redemption is closed
# (expired, cancelled or committed): the home decided, and the call is not to be retried.
REDEMPTION_CLOSED = "civfed-redemption-closed"


class GrpcPartner:
    """The federation service of one partner city, verified by its certificate name."""

    def __init__(
        self, city: str, address: str, credentials: grpc.ChannelCredentials, timeout: float = 5.0
    ) -> None:
        self.city = city
        self.timeout = timeout
        # The server must present a certificate naming the partner city itself.
        options = [("grpc.ssl_target_name_override", city)]
        self.channel = grpc.secure_channel(address, credentials, options=options)
        self.stub = federation_pb2_grpc.FederationServiceStub(self.channel)
        self._terms: tuple[float, PublishedTerms] | None = None

    def _call(self, fn: Callable[..., R], request: Any, closed_is_refusal: bool = False) -> R | Decision:
        try:
            return call_with_retry(fn, request, self.timeout)
        except grpc.RpcError as exc:
            code = exc.code()
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise PartnerUnreachable(f"{self.city} did not answer in time; retry later") from None
            trailing = dict(exc.trailing_metadata() or ())
            if (
                closed_is_refusal
                and code == grpc.StatusCode.FAILED_PRECONDITION
                and REDEMPTION_CLOSED in trailing
            ):
                return Decision.refuse(exc.details() or "redemption closed")
            raise PartnerRefusedCall(f"{self.city} refused: {exc.details()}") from None

    def reserve(self, key: str, token: str) -> Reservation:
        req = federation_pb2.ReserveRequest(idempotency_key=key, redemption_token=token)
        reply = self._call(self.stub.Reserve, req)
        assert isinstance(reply, federation_pb2.ReserveResponse)
        if reply.decision != ACCEPTED:
            return Reservation(Decision.refuse("refused by the home city"), reply.amount.units)
        return Reservation(
            Decision.accept(),
            reply.amount.units,
            UUID(reply.redemption_id),
            dt.datetime.fromisoformat(reply.hold_expires_at),
        )

    def commit(self, key: str, redemption_id: UUID) -> Outcome:
        req = federation_pb2.CommitRequest(idempotency_key=key, redemption_id=str(redemption_id))
        reply = self._call(self.stub.Commit, req, closed_is_refusal=True)
        if isinstance(reply, Decision):
            return Outcome(reply)
        accepted = reply.decision == ACCEPTED
        decision = Decision.accept() if accepted else Decision.refuse("the hold lapsed")
        return Outcome(decision, reply.amount.units)

    def cancel(self, key: str, redemption_id: UUID, reason: str) -> Outcome:
        req = federation_pb2.CancelRequest(
            idempotency_key=key, redemption_id=str(redemption_id), reason=reason
        )
        reply = self._call(self.stub.Cancel, req, closed_is_refusal=True)
        if isinstance(reply, Decision):
            return Outcome(reply)
        return Outcome(Decision.accept() if reply.released else Decision.refuse("not released"))

    def terms(self) -> PublishedTerms:
        reply = self._call(self.stub.GetTerms, federation_pb2.GetTermsRequest())
        assert isinstance(reply, federation_pb2.GetTermsResponse)
        return PublishedTerms(
            reply.city,
            reply.currency,
            {
                t.home_city: Terms(t.rate.numerator, t.rate.denominator, t.per_redemption_cap, t.daily_cap)
                for t in reply.accepts
            },
            tuple(reply.redeemable_at),
        )

    def published_terms(self, max_age: float = 60.0) -> PublishedTerms:
        """The partner's terms, asked again at most every `max_age` seconds: they change
        only when its city file does, and a sale should not wait on them."""
        now = time.monotonic()
        if self._terms is None or now - self._terms[0] > max_age:
            self._terms = (now, self.terms())
        return self._terms[1]

    def close(self) -> None:
        self.channel.close()
