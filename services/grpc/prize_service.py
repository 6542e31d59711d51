"""PrizeService: partner businesses (by their till credential) offer and hand over prizes;
holders list and claim them. The partner is always the merchant whose credential made the
call, never one named in the request."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import grpc

from aggregates.merchant import Prize, PrizeClaim
from civfed.v1 import prizes_pb2, prizes_pb2_grpc
from services import commands as c
from services import prizes
from services.grpc import requests as rq
from services.grpc.access import caller
from services.grpc.calls import Calls, as_till
from services.grpc.node import CityNode
from services.identity.principals import Till
from services.unit_of_work import UnitOfWork


class PrizeService(prizes_pb2_grpc.PrizeServiceServicer):
    def __init__(self, node: CityNode) -> None:
        self.node = node
        self.app = node.app
        self.call = Calls()

    # -- the partner's own prizes ---------------------------------------------------------
    def OfferPrize(self, request: Any, context: grpc.ServicerContext) -> Any:
        call = self.call(context, request, rq.OfferPrize)
        r, shop = call.request, as_till(call.who).merchant_id
        out = self.node.execute(self.app.job(c.OfferPrize(call.key, shop, r.name, r.cost, r.stock)))
        return self._prize(UnitOfWork(self.app).get(UUID(out["prize_id"]), Prize, "prize"))

    def UpdatePrize(self, request: Any, context: grpc.ServicerContext) -> Any:
        call = self.call(context, request, rq.UpdatePrize)
        r, shop = call.request, as_till(call.who).merchant_id
        cmd = c.UpdatePrize(call.key, shop, r.prize_id, r.name, r.cost, r.stock)
        return self._prize_result(self.node.execute(self.app.job(cmd)), shop)

    def WithdrawPrize(self, request: Any, context: grpc.ServicerContext) -> Any:
        call = self.call(context, request, rq.PrizeRef)
        shop = as_till(call.who).merchant_id
        cmd = c.WithdrawPrize(call.key, shop, call.request.prize_id)
        return self._prize_result(self.node.execute(self.app.job(cmd)), shop)

    def ListPrizes(self, request: Any, context: grpc.ServicerContext) -> Any:
        who = caller()
        shop = who.merchant_id if isinstance(who, Till) else None
        listed = prizes.current_prizes(self.app, self.node.prizes, shop)
        return prizes_pb2.ListPrizesResponse(prizes=[self._prize(p) for p in listed])

    # -- claims -------------------------------------------------------------------------
    def ClaimPrize(self, request: Any, context: grpc.ServicerContext) -> Any:
        call = self.call(context, request, rq.ClaimPrize, wallet=True)
        r = call.request
        out = self.node.execute(self.app.job(c.PlacePrizeClaim(call.key, r.wallet_id, r.prize_id)))
        return self._claim_result(out)

    def ConfirmHandover(self, request: Any, context: grpc.ServicerContext) -> Any:
        call = self.call(context, request, rq.ClaimRef)
        shop = as_till(call.who).merchant_id
        cmd = c.ConfirmPrizeHandover(call.key, shop, call.request.claim_id)
        return self._claim_result(self.node.execute(self.app.job(cmd)))

    def CancelClaim(self, request: Any, context: grpc.ServicerContext) -> Any:
        call = self.call(context, request, rq.CancelClaim)
        shop = as_till(call.who).merchant_id
        reason = call.request.reason or "cancelled by the partner"
        cmd = c.CancelPrizeClaim(call.key, shop, call.request.claim_id, reason)
        return self._claim_result(self.node.execute(self.app.job(cmd)))

    def ListMyPrizeClaims(self, request: Any, context: grpc.ServicerContext) -> Any:
        call = self.call(context, request, rq.WalletRef, wallet=True)
        ids = self.node.prizes.refresh(self.app).of_wallet(call.request.wallet_id)
        return self._claims(prizes.claims(self.app, ids))

    def ListPartnerClaims(self, request: Any, context: grpc.ServicerContext) -> Any:
        shop = as_till(caller()).merchant_id
        ids = self.node.prizes.refresh(self.app).of_merchant(shop)
        return self._claims(prizes.claims(self.app, ids))

    # -- answers ------------------------------------------------------------------------
    def _prize(self, prize: Prize) -> prizes_pb2.PrizeInfo:
        return prizes_pb2.PrizeInfo(
            prize_id=str(prize.id),
            name=prize.name,
            cost=self.node.amount(prize.cost),
            stock=prize.stock,
            withdrawn=prize.withdrawn,
            merchant_id=str(prize.merchant_id),
        )

    def _prize_result(self, out: dict[str, Any], shop: UUID) -> prizes_pb2.PrizeInfo:
        return prizes_pb2.PrizeInfo(
            prize_id=out["prize_id"],
            name=out["name"],
            cost=self.node.amount(out["cost"]),
            stock=out["stock"],
            withdrawn=out["withdrawn"],
            merchant_id=str(shop),
        )

    def _claim_result(self, out: dict[str, Any]) -> prizes_pb2.PrizeClaimInfo:
        return prizes_pb2.PrizeClaimInfo(
            claim_id=out["claim_id"],
            prize_id=out["prize_id"],
            cost=self.node.amount(out["cost"]),
            state=out["state"],
            expires_at=out["expires_at"],
        )

    def _claims(self, listed: list[PrizeClaim]) -> prizes_pb2.ListPrizeClaimsResponse:
        return prizes_pb2.ListPrizeClaimsResponse(
            claims=[
                prizes_pb2.PrizeClaimInfo(
                    claim_id=str(claim.id),
                    prize_id=str(claim.prize_id),
                    cost=self.node.amount(claim.cost),
                    state=claim.state,
                    expires_at=claim.expires_at.isoformat(),
                )
                for claim in listed
            ]
        )
