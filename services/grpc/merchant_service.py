"""MerchantService: register shops, accept local and cross-city vouchers, statements."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import grpc

from aggregates.errors import InvalidInput
from civfed.v1 import common_pb2, merchant_pb2, merchant_pb2_grpc
from services import commands as cmds
from services.grpc import requests as rq
from services.grpc.access import caller
from services.grpc.calls import Calls, as_staff, as_till
from services.grpc.node import CityNode
from services.paging import page_size
from services.payout_files import check_account_holder, check_bic, check_iban


class MerchantService(merchant_pb2_grpc.MerchantServiceServicer):
    def __init__(self, node: CityNode) -> None:
        self.node = node
        self.app = node.app
        self.call = Calls()

    def RegisterMerchant(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.RegisterMerchant)
        r = c.request
        if r.iban:
            # Checked before the shop is registered, so a wrong account registers nothing.
            check_iban(r.iban)
            if r.bic:
                check_bic(r.bic)
            check_account_holder(r.account_holder)
        job = self.app.register_merchant(c.key, r.name, r.category, r.local, r.basic_economy)
        out = self.node.execute(job)
        if r.iban:
            shop, by = UUID(out["merchant_id"]), as_staff(c.who).ref
            account = cmds.SetBankAccount(
                f"{c.key}:bank-account", shop, r.iban, r.bic, r.account_holder, r.sole_trader, by
            )
            self.node.execute(self.app.job(account))
        # The first till's credential, shown once; a retry finds it issued and shows none.
        token = self.node.first_credential("till", UUID(out["merchant_id"]), as_staff(c.who).ref)
        return merchant_pb2.RegisterMerchantResponse(merchant_id=out["merchant_id"], merchant_token=token)

    def AcceptVoucher(self, request: Any, context: grpc.ServicerContext) -> Any:
        # The shop is the one whose credentials made the call.
        c = self.call(context, request, rq.AcceptVoucher)
        r, shop = c.request, as_till(c.who).merchant_id
        if r.local_voucher_id is not None:
            out = self.node.execute(self.app.redeem_voucher(c.key, r.local_voucher_id, shop))
            return merchant_pb2.AcceptVoucherResponse(credited=self.node.amount(out["amount"]))
        if r.redemption_token is None:
            raise InvalidInput("voucher", "give local_voucher_id or redemption_token")
        out = self.node.acceptor.accept(c.key, shop, r.redemption_token)
        return merchant_pb2.AcceptVoucherResponse(
            credited=self.node.amount(out["credited"]),
            home_city=out["home_city"],
            home_amount=common_pb2.Amount(units=out["home_amount"], currency=out["home_currency"]),
            redemption_id=out["redemption_id"],
        )

    def GetStatement(self, request: Any, context: grpc.ServicerContext) -> Any:
        # One page of what the calling shop was paid, and paid out, from its own stream.
        shop = as_till(caller()).merchant_id
        size = page_size(request.page_size)
        page = self.app.statement_page(shop, size, request.page_token, request.newest_first)
        return merchant_pb2.GetStatementResponse(
            lines=[
                merchant_pb2.StatementLine(
                    kind=line.kind,
                    reference=line.reference,
                    credited=self.node.amount(line.amount),
                    timestamp=line.at.isoformat(),
                )
                for line in page.lines
            ],
            total=self.node.amount(page.received),
            payouts=[
                merchant_pb2.PayoutLine(
                    run_id=p.run_id,
                    period=p.period,
                    tokens=self.node.amount(p.tokens),
                    euro_cents=p.euro_cents,
                    timestamp=p.at.isoformat(),
                )
                for p in page.payouts
            ],
            paid_out=self.node.amount(page.paid_out),
            to_pay_out=self.node.amount(page.to_pay_out),
            next_page_token=page.next_page_token,
        )
