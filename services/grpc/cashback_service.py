"""CashbackService: a shop's till reports a purchase; the holder earns the city's cashback.

The till is the caller its till credential authenticated (`Till(merchant)`), and reports only
for its own shop; the rest is services/cashback.py.
"""

from __future__ import annotations

from typing import Any

import grpc

from aggregates.errors import DomainError
from civfed.v1 import cashback_pb2, cashback_pb2_grpc
from services.cashback import refused_report, report_purchase
from services.claims import reason_code
from services.grpc import cashback_requests as rq
from services.grpc.calls import Calls, as_till
from services.grpc.language import award_explanation, reading_language
from services.grpc.node import CityNode
from services.identity.principals import PermissionDenied


class CashbackService(cashback_pb2_grpc.CashbackServiceServicer):
    def __init__(self, node: CityNode) -> None:
        self.node = node
        self.app = node.app
        self.call = Calls()

    def ReportPurchase(self, request: Any, context: grpc.ServicerContext) -> Any:
        call = self.call(context, request, rq.ReportPurchase)
        till, r = as_till(call.who), call.request
        if r.merchant_id != till.merchant_id:
            raise PermissionDenied("a till reports purchases only for its own shop")
        language = reading_language(self.app.city.config.locale, request.language)
        cmd = report_purchase(r.merchant_id, r.receipt_id, r.wallet_id, r.amount_cents, r.date)
        try:
            out = self.node.execute(self.app.job(cmd))
        except DomainError as exc:
            raise _with_reason(refused_report(exc)) from None
        return cashback_pb2.ReportPurchaseResponse(
            awarded=self.node.amount(out["amount"]),
            rule_id=out["rule_id"],
            rule_version=out["rule_version"],
            explanation=award_explanation(out, language),
            merchant_id=out["merchant_id"],
            receipt_id=out["receipt_id"],
        )


def _with_reason(exc: BaseException) -> BaseException:
    """The same refusal, its message led by its reason code (e.g. `not_local_shop: ...`)."""
    again = Exception.__new__(type(exc))
    Exception.__init__(again, f"{reason_code(exc)}: {exc}")
    return again
