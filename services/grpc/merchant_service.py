"""MerchantService: register shops, accept local and cross-city vouchers, statements."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import grpc

from aggregates.errors import InvalidInput
from civfed.v1 import common_pb2, merchant_pb2, merchant_pb2_grpc
from services.grpc import requests as rq
from services.grpc.node import CityNode
from services.grpc.wallet_service import scoped


class MerchantService(merchant_pb2_grpc.MerchantServiceServicer):
    def __init__(self, node: CityNode) -> None:
        self.node = node
        self.app = node.app

    def RegisterMerchant(self, request: Any, context: grpc.ServicerContext) -> Any:
        who = self.node.credentials.principal(context)
        who.require("staff")
        r = rq.parse(rq.RegisterMerchant, request)
        key = scoped(who.role, who.subject, r.idempotency_key)
        out = self.node.execute(self.app.register_merchant(key, r.name, r.category, r.local))
        token = self.node.credentials.issue("merchant", out["merchant_id"])
        return merchant_pb2.RegisterMerchantResponse(merchant_id=out["merchant_id"], merchant_token=token)

    def AcceptVoucher(self, request: Any, context: grpc.ServicerContext) -> Any:
        who = self.node.credentials.principal(context)
        who.require("merchant")
        r = rq.parse(rq.AcceptVoucher, request)
        merchant_id = UUID(who.subject)
        key = scoped(who.role, who.subject, r.idempotency_key)
        if r.local_voucher_id is not None:
            out = self.node.execute(self.app.redeem_voucher(key, r.local_voucher_id, merchant_id))
            return merchant_pb2.AcceptVoucherResponse(credited=self.node.amount(out["amount"]))
        if r.redemption_token is None:
            raise InvalidInput("voucher", "give local_voucher_id or redemption_token")
        out = self.node.acceptor.accept(key, merchant_id, r.redemption_token)
        return merchant_pb2.AcceptVoucherResponse(
            credited=self.node.amount(out["credited"]),
            home_city=out["home_city"],
            home_amount=common_pb2.Amount(units=out["home_amount"], currency=out["home_currency"]),
            redemption_id=out["redemption_id"],
        )

    def GetStatement(self, request: Any, context: grpc.ServicerContext) -> Any:
        who = self.node.credentials.principal(context)
        who.require("merchant")
        lines = self.app.statement(UUID(who.subject))
        return merchant_pb2.GetStatementResponse(
            lines=[
                merchant_pb2.StatementLine(
                    kind=line.kind,
                    reference=line.reference,
                    credited=self.node.amount(line.amount),
                    timestamp=line.at.isoformat(),
                )
                for line in lines
            ],
            total=self.node.amount(sum(line.amount for line in lines)),
        )
