"""WalletService: thin translation from requests to city commands."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import grpc

from aggregates.appeal import Appeal
from aggregates.errors import InvalidInput
from civfed.v1 import wallet_pb2, wallet_pb2_grpc
from services.grpc import requests as rq
from services.grpc.node import CityNode
from services.history import history
from services.workflow import published_balance


def scoped(principal_role: str, subject: str, key: str) -> str:
    """Idempotency keys are per caller, so one caller cannot replay another's result."""
    return f"{principal_role}:{subject}:{key}"


class WalletService(wallet_pb2_grpc.WalletServiceServicer):
    def __init__(self, node: CityNode) -> None:
        self.node = node
        self.app = node.app

    def OpenWallet(self, request: Any, context: grpc.ServicerContext) -> Any:
        who = self.node.credentials.principal(context)
        who.require("staff")
        r = rq.parse(rq.OpenWallet, request)
        key = scoped(who.role, who.subject, r.idempotency_key)
        out = self.node.execute(self.app.open_wallet(key, r.participant_kind, r.consent_version))
        holder = self.node.credentials.issue("holder", out["wallet_id"])
        return wallet_pb2.OpenWalletResponse(wallet_id=out["wallet_id"], holder_token=holder)

    def GetBalance(self, request: Any, context: grpc.ServicerContext) -> Any:
        who = self.node.credentials.principal(context)
        r = rq.parse(rq.WalletRef, request)
        who.require_wallet(r.wallet_id)
        wallet = self.app.wallet(r.wallet_id)
        today = self.app.clock().date()
        value = wallet.value_on(today)  # a depreciating currency: today's value
        response = wallet_pb2.GetBalanceResponse(
            balance=self.node.amount(value),
            available=self.node.amount(value - wallet.held),
            held=self.node.amount(wallet.held),
        )
        if self.app.workflow is not None and wallet.lots:
            published = published_balance(wallet, today)  # the wallet and day already read
            response.rounding = published["rounding"]
            for step in published["schedule"]:
                response.schedule.add(
                    on=step["on"],
                    value=self.node.amount(step["value"]),
                    depreciation=self.node.amount(step["depreciation"]),
                )
        return response

    def RecordActivity(self, request: Any, context: grpc.ServicerContext) -> Any:
        who = self.node.credentials.principal(context)
        who.require("staff")  # crediting wallets is the city's own business
        r = rq.parse(rq.RecordActivity, request)
        key = scoped(who.role, who.subject, r.idempotency_key)
        cmd = self.app.record_activity(key, r.wallet_id, r.activity, dict(r.fields), r.activity_id or None)
        out = self.node.execute(cmd)
        return wallet_pb2.RecordActivityResponse(
            awarded=self.node.amount(out["amount"]),
            rule_id=out["rule_id"],
            rule_version=out["rule_version"],
            explanation=out["explanation"],
        )

    def Spend(self, request: Any, context: grpc.ServicerContext) -> Any:
        who = self.node.credentials.principal(context)
        r = rq.parse(rq.Spend, request)
        who.require("holder")
        who.require_wallet(r.wallet_id)
        key = scoped(who.role, who.subject, r.idempotency_key)
        out = self.node.execute(self.app.spend(key, r.wallet_id, r.merchant_id, r.amount, r.purchase_ref))
        return wallet_pb2.SpendResponse(
            spent=self.node.amount(out["spent"]), available=self.node.amount(out["available"])
        )

    def IssueVoucher(self, request: Any, context: grpc.ServicerContext) -> Any:
        who = self.node.credentials.principal(context)
        r = rq.parse(rq.WalletAmount, request)
        who.require("holder")
        who.require_wallet(r.wallet_id)
        key = scoped(who.role, who.subject, r.idempotency_key)
        out = self.node.execute(self.app.issue_voucher(key, r.wallet_id, r.amount))
        return wallet_pb2.IssueVoucherResponse(
            voucher_id=out["voucher_id"],
            qr=out["qr"],
            amount=self.node.amount(out["amount"]),
            expires_at=out["expires_at"],
        )

    def IssueRedemptionVoucher(self, request: Any, context: grpc.ServicerContext) -> Any:
        who = self.node.credentials.principal(context)
        r = rq.parse(rq.IssueRedemptionVoucher, request)
        who.require("holder")
        who.require_wallet(r.wallet_id)
        key = scoped(who.role, who.subject, r.idempotency_key)
        terms = self.node.partner_terms(r.redeem_at) if r.redeem_at else None
        out = self.node.execute(self.node.home.issue(key, r.wallet_id, r.amount, r.redeem_at, terms))
        return wallet_pb2.IssueRedemptionVoucherResponse(token=out["token"], expires_at=out["expires_at"])

    def CloseWallet(self, request: Any, context: grpc.ServicerContext) -> Any:
        who = self.node.credentials.principal(context)
        r = rq.parse(rq.CloseWallet, request)
        who.require("holder")
        who.require_wallet(r.wallet_id)
        key = scoped(who.role, who.subject, r.idempotency_key)
        out = self.node.execute(self.app.close_wallet(key, r.wallet_id, r.reason or "opted out"))
        return wallet_pb2.CloseWalletResponse(
            balance=self.node.amount(out["balance"]),
            closed=out["closed"],
            final_spend_until=out.get("final_spend_until") or "",
        )

    def ListMyEvents(self, request: Any, context: grpc.ServicerContext) -> Any:
        who = self.node.credentials.principal(context)
        r = rq.parse(rq.WalletRef, request)
        who.require("holder")  # staff have other tools; history is the holder's to read
        who.require_wallet(r.wallet_id)
        self.app.wallet(r.wallet_id)  # NOT_FOUND for an unknown wallet
        events = [
            wallet_pb2.WalletEvent(
                version=e.version,
                type=e.type,
                timestamp=e.timestamp,
                fields_json=json.dumps(e.fields, default=str, sort_keys=True),
                rule_id=e.rule_id,
                rule_version=e.rule_version,
                explanation=e.explanation,
                aggregate_id=str(e.aggregate_id),
            )
            for e in history(self.app, r.wallet_id)
        ]
        return wallet_pb2.ListMyEventsResponse(events=events)

    def FileAppeal(self, request: Any, context: grpc.ServicerContext) -> Any:
        who = self.node.credentials.principal(context)
        r = rq.parse(rq.FileAppeal, request)
        who.require("holder", "staff")
        who.require_wallet(r.wallet_id)
        if who.role == "staff" and not r.filed_by:
            raise InvalidInput("filed_by", "staff filing for a holder must name themselves")
        filed_by = r.filed_by if who.role == "staff" else f"holder:{r.wallet_id}"
        key = scoped(who.role, who.subject, r.idempotency_key)
        cmd = self.app.file_appeal(key, r.wallet_id, r.subject_kind, r.subject_ref, r.reason, filed_by)
        out = self.node.execute(cmd)
        return self._status(self.app.appeal(UUID(out["appeal_id"])))

    def DecideAppeal(self, request: Any, context: grpc.ServicerContext) -> Any:
        who = self.node.credentials.principal(context)
        who.require("staff")
        r = rq.parse(rq.DecideAppeal, request)
        remedy = (
            {"activity": r.remedy_activity, "fields": dict(r.remedy_fields)} if r.remedy_activity else None
        )
        key = scoped(who.role, who.subject, r.idempotency_key)
        cmd = self.app.decide_appeal(key, r.appeal_id, r.upheld, r.reason, r.decided_by, remedy)
        out = self.node.execute(cmd)
        awarded = out.get("remedy", {}).get("amount", 0)
        return self._status(self.app.appeal(r.appeal_id), awarded)

    def ListMyAppeals(self, request: Any, context: grpc.ServicerContext) -> Any:
        who = self.node.credentials.principal(context)
        r = rq.parse(rq.WalletRef, request)
        who.require_wallet(r.wallet_id)
        appeals = [self._status(a) for a in self.app.appeals_of(r.wallet_id)]
        return wallet_pb2.ListMyAppealsResponse(appeals=appeals)

    def _status(self, appeal: Appeal, awarded: int = 0) -> Any:
        return wallet_pb2.AppealStatus(
            appeal_id=str(appeal.id),
            wallet_id=str(appeal.wallet_id),
            subject_kind=appeal.subject_kind,
            subject_ref=appeal.subject_ref,
            status=appeal.status,
            filed_at=appeal.created_on.isoformat(),
            deadline=appeal.deadline.isoformat(),
            decided_at=appeal.decided_at.isoformat() if appeal.decided_at else "",
            decision_reason=appeal.decision_reason or "",
            awarded=self.node.amount(awarded),
        )
