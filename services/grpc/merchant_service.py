"""MerchantService: register shops, accept local and cross-city vouchers, statements."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import grpc

from aggregates.errors import InvalidInput
from civfed.v1 import common_pb2, merchant_pb2, merchant_pb2_grpc
from projections.event_source import event_type, read_events
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
        me = UUID(who.subject)
        lines, total = [], 0
        e: Any
        for _, e in read_events(self.app):
            kind = event_type(e)
            if getattr(e, "merchant_id", None) != me:
                continue
            if kind == "Wallet.Spent" or kind == "Wallet.HoldSpent":
                units = getattr(e, "amount", None)
                if units is None:
                    continue  # a local voucher: its amount is on the matching Voucher.Redeemed
                lines.append(("payment", e.purchase_ref, units, ""))
            elif kind == "ForeignRedemption.MerchantCredited":
                lines.append(("redemption", str(e.originator_id), e.units, ""))
            elif kind == "ForeignRedemption.CreditReversed":
                lines.append(("reversal", str(e.originator_id), -e.units, ""))
            else:
                continue
            total += lines[-1][2]
        return merchant_pb2.GetStatementResponse(
            lines=[
                merchant_pb2.StatementLine(kind=k, reference=ref, credited=self.node.amount(u), home_city=h)
                for k, ref, u, h in lines
            ],
            total=self.node.amount(total),
        )
