"""FederationService: what a partner city may ask, and only what it needs to know."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc

from aggregates.errors import RedemptionClosed
from civfed.v1 import common_pb2, federation_pb2, federation_pb2_grpc
from services.federation.home import HOLDER_REFUSALS
from services.grpc import requests as rq
from services.grpc.access import caller
from services.grpc.calls import Calls, as_partner
from services.grpc.node import CityNode
from services.grpc.partner_client import REDEMPTION_CLOSED

ACCEPTED = federation_pb2.DECISION_ACCEPTED
REFUSED = federation_pb2.DECISION_REFUSED


class FederationService(federation_pb2_grpc.FederationServiceServicer):
    def __init__(self, node: CityNode) -> None:
        self.node = node
        self.app = node.app
        # Partners are known by the city their client certificate names.
        self.call = Calls()

    def GetTerms(self, request: Any, context: grpc.ServicerContext) -> Any:
        as_partner(caller())
        fed = self.app.city.config.federation
        return federation_pb2.GetTermsResponse(
            city=self.app.key,
            currency=self.app.city.config.currency.name,
            accepts=[
                federation_pb2.AcceptedToken(
                    home_city=home,
                    rate=common_pb2.Rate(numerator=t.rate_numerator, denominator=t.rate_denominator),
                    per_redemption_cap=t.per_redemption_cap,
                    daily_cap=t.daily_cap,
                )
                for home, t in sorted(fed.accepts.items())
            ],
            redeemable_at=fed.redeemable_at,
        )

    def Reserve(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.Reserve)
        voucher = self.node.home.voucher(c.request.redemption_token)
        try:
            out = self.node.execute(self.node.home.reserve(c.key, c.who.subject, voucher))
        except HOLDER_REFUSALS:
            # Minimal disclosure: refused and the amount, never why in terms of the holder.
            return federation_pb2.ReserveResponse(decision=REFUSED, amount=self.node.amount(voucher.amount))
        return federation_pb2.ReserveResponse(
            decision=ACCEPTED,
            amount=self.node.amount(out["amount"]),
            redemption_id=out["redemption_id"],
            hold_expires_at=out["hold_expires_at"],
        )

    def Commit(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.Commit)
        with closed_marked(context):
            out = self.node.execute(self.node.home.commit(c.key, c.who.subject, c.request.redemption_id))
        decision = ACCEPTED if out["decision"] == "accepted" else REFUSED
        return federation_pb2.CommitResponse(decision=decision, amount=self.node.amount(out["amount"]))

    def Cancel(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.Cancel)
        r = c.request
        with closed_marked(context):
            out = self.node.execute(
                self.node.home.cancel(c.key, c.who.subject, r.redemption_id, r.reason or "cancelled")
            )
        return federation_pb2.CancelResponse(released=out["released"])

    def GetSettlement(self, request: Any, context: grpc.ServicerContext) -> Any:
        partner = as_partner(caller()).city
        # A sale is answered before its last step is saved: count every answered one.
        self.node.writer.settle()
        ledger = self.node.ledger.refresh(self.app)
        # A partner sees only its own position with this city.
        positions = [p for p in ledger.positions.values() if p.partner == partner]
        currency = self.app.city.config.currency.name
        return federation_pb2.GetSettlementResponse(
            city=self.app.key, positions=[position(p, currency) for p in positions]
        )


@contextmanager
def closed_marked(context: grpc.ServicerContext) -> Iterator[None]:
    """A refusal because the redemption is closed is the home's decision about it: the
    status stays FAILED_PRECONDITION, and trailing metadata tells the partner's client so."""
    try:
        yield
    except RedemptionClosed:
        context.set_trailing_metadata(((REDEMPTION_CLOSED, "1"),))
        raise


def position(p: Any, currency: str) -> federation_pb2.Position:
    return federation_pb2.Position(
        partner_city=p.partner,
        home_currency=currency,
        payable_units=p.payable,
        receivable_units=p.receivable,
        receivable_value_units=p.receivable_value,
        net_units=p.net,
        redemptions=p.redemptions,
    )
