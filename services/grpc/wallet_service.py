"""WalletService: thin translation from requests to city commands."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import grpc

from aggregates.appeal import Appeal
from civfed.v1 import wallet_pb2, wallet_pb2_grpc
from services.appeals import filer
from services.grpc import requests as rq
from services.grpc.audit import Audit
from services.grpc.calls import Calls, as_staff
from services.grpc.language import award_explanation, reading_language
from services.grpc.node import CityNode
from services.history import history_page
from services.paging import page_size

W = "/civfed.v1.WalletService/"


class WalletService(wallet_pb2_grpc.WalletServiceServicer):
    def __init__(self, node: CityNode) -> None:
        self.node = node
        self.app = node.app
        self.call = Calls()
        # Staff reads and actions go to the person's access log (services/grpc/audit.py).
        self.audit = Audit(node)

    def OpenWallet(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.OpenWallet)
        out = self.node.execute(
            self.app.open_wallet(
                c.key, c.request.participant_kind, c.request.consent_version, c.request.valid_until
            )
        )
        # Shown once: a retry finds the wallet's first credential issued and shows none.
        holder = self.node.first_credential("holder", UUID(out["wallet_id"]), as_staff(c.who).ref)
        self.audit.action(context, c.who, W + "OpenWallet", UUID(out["wallet_id"]), "opened wallet", c.key)
        return wallet_pb2.OpenWalletResponse(wallet_id=out["wallet_id"], holder_token=holder)

    def GetBalance(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.PersonRead, wallet=True)
        wallet = c.request.wallet_id
        self.audit.read(context, c.who, W + "GetBalance", wallet, "read balance", c.request.purpose)
        view = self.app.balance_view(wallet)
        return wallet_pb2.GetBalanceResponse(
            balance=self.node.amount(view.balance),
            available=self.node.amount(view.available),
            held=self.node.amount(view.held),
            rounding=view.rounding,
            expires_on=view.expires_on,
            final_spend_until=view.final_spend_until,
            schedule=[
                wallet_pb2.DepreciationStep(
                    on=step.on,
                    value=self.node.amount(step.value),
                    depreciation=self.node.amount(step.depreciation),
                )
                for step in view.schedule
            ],
        )

    def RecordActivity(self, request: Any, context: grpc.ServicerContext) -> Any:
        # Crediting wallets is the city's own business.
        # Desk activities only (city file `[claims] desk_activities`); the award names the
        # staff member who recorded it. Everything else comes as a source's signed claim.
        c = self.call(context, request, rq.RecordActivity)
        r = c.request
        by = as_staff(c.who).ref
        fields = dict(r.fields)
        language = reading_language(self.app.city.config.locale, request.language)
        out = self.node.execute(
            self.app.record_activity(c.key, r.wallet_id, r.activity, fields, r.activity_id or None, by)
        )
        what = f"recorded activity {r.activity}"
        self.audit.action(context, c.who, W + "RecordActivity", r.wallet_id, what, c.key)
        return wallet_pb2.RecordActivityResponse(
            awarded=self.node.amount(out["amount"]),
            rule_id=out["rule_id"],
            rule_version=out["rule_version"],
            explanation=award_explanation(out, language),
        )

    def Spend(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.Spend, wallet=True)
        r = c.request
        out = self.node.execute(self.app.spend(c.key, r.wallet_id, r.merchant_id, r.amount, r.purchase_ref))
        return wallet_pb2.SpendResponse(
            spent=self.node.amount(out["spent"]), available=self.node.amount(out["available"])
        )

    def IssueVoucher(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.WalletAmount, wallet=True)
        out = self.node.execute(self.app.issue_voucher(c.key, c.request.wallet_id, c.request.amount))
        return wallet_pb2.IssueVoucherResponse(
            voucher_id=out["voucher_id"],
            qr=out["qr"],
            amount=self.node.amount(out["amount"]),
            expires_at=out["expires_at"],
        )

    def IssueRedemptionVoucher(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.IssueRedemptionVoucher, wallet=True)
        r = c.request
        terms = self.node.partner_terms(r.redeem_at) if r.redeem_at else None
        out = self.node.execute(self.node.home.issue(c.key, r.wallet_id, r.amount, r.redeem_at, terms))
        return wallet_pb2.IssueRedemptionVoucherResponse(token=out["token"], expires_at=out["expires_at"])

    def CloseWallet(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.CloseWallet, wallet=True)
        out = self.node.execute(
            self.app.close_wallet(c.key, c.request.wallet_id, c.request.reason or "opted out")
        )
        return wallet_pb2.CloseWalletResponse(
            balance=self.node.amount(out["balance"]),
            closed=out["closed"],
            final_spend_until=out.get("final_spend_until") or "",
        )

    def ListMyEvents(self, request: Any, context: grpc.ServicerContext) -> Any:
        # Staff read it only with a purpose, written to the person's access log first.
        c = self.call(context, request, rq.PersonRead, wallet=True)
        wallet = c.request.wallet_id
        language = reading_language(self.app.city.config.locale, request.language)
        self.audit.read(context, c.who, W + "ListMyEvents", wallet, "read history", c.request.purpose)
        page = history_page(self.app, wallet, page_size(request.page_size), request.page_token, language)
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
            for e in page.entries
        ]
        return wallet_pb2.ListMyEventsResponse(events=events, next_page_token=page.next_page_token)

    def FileAppeal(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.FileAppeal, wallet=True)
        r = c.request
        # Who counts as the filer (and so may never decide it) is the appeals' rule.
        filed_by = filer(c.who, r.wallet_id)
        cmd = self.app.file_appeal(c.key, r.wallet_id, r.subject_kind, r.subject_ref, r.reason, filed_by)
        out = self.node.execute(cmd)
        self.audit.action(context, c.who, W + "FileAppeal", r.wallet_id, "filed appeal", c.key)
        return self._status(self.app.appeal(UUID(out["appeal_id"])))

    def DecideAppeal(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.DecideAppeal)
        r = c.request
        remedy = (
            {"activity": r.remedy_activity, "fields": dict(r.remedy_fields)} if r.remedy_activity else None
        )
        decided_by = as_staff(c.who).ref
        cmd = self.app.decide_appeal(c.key, r.appeal_id, r.upheld, r.reason, decided_by, remedy)
        out = self.node.execute(cmd)
        awarded = out.get("remedy", {}).get("amount", 0)
        appeal = self.app.appeal(r.appeal_id)
        what = f"decided appeal {appeal.id}"
        self.audit.action(context, c.who, W + "DecideAppeal", appeal.wallet_id, what, c.key)
        return self._status(appeal, awarded)

    def ListMyAppeals(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.PersonRead, wallet=True)
        wallet = c.request.wallet_id
        self.audit.read(context, c.who, W + "ListMyAppeals", wallet, "read appeals", c.request.purpose)
        appeals = [self._status(a) for a in self.app.appeals_of(wallet)]
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
