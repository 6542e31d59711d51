"""PayoutService: payout runs, their list, and shops' bank accounts (thin translation only)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import grpc

from aggregates.errors import InvalidInput
from civfed.v1 import payouts_pb2, payouts_pb2_grpc
from services import commands as cmds
from services.grpc import requests as rq
from services.grpc.calls import Calls, as_staff
from services.grpc.node import CityNode
from services.payouts import run_result


class PayoutService(payouts_pb2_grpc.PayoutServiceServicer):
    def __init__(self, node: CityNode) -> None:
        self.node = node
        self.app = node.app
        self.call = Calls()

    def _check_city(self, asked: str) -> None:
        if asked and asked.replace("-", "_") != self.app.key:
            raise InvalidInput("city", f"this node is {self.app.city.config.name}'s ({self.app.key})")

    def ProposePayoutRun(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.ProposePayoutRun)
        self._check_city(c.request.city)
        cmd = cmds.ProposePayoutRun(c.key, c.request.period, as_staff(c.who).ref)
        out = self.node.execute(self.app.job(cmd))
        return payouts_pb2.ProposePayoutRunResponse(
            run=run_message(out), already_proposed=bool(out["already_run"])
        )

    def RunPayouts(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.RunPayouts)
        by = as_staff(c.who).ref
        self._check_city(c.request.city)
        out = self.node.execute(self.app.job(cmds.RunPayouts(c.key, c.request.period, by)))
        # A period paid before gives no file: handing one out again could pay it twice.
        already = bool(out["already_run"])
        sepa = b"" if already else self.app.payouts.file(UUID(out["run_id"]))
        return payouts_pb2.RunPayoutsResponse(
            run=run_message(out),
            already_run=already,
            sepa_file=sepa,
            skipped_merchant_ids=out["skipped"],
        )

    def ListPayoutRuns(self, request: Any, context: grpc.ServicerContext) -> Any:
        runs = [run_message(run_result(run, already_run=True)) for run in self.app.payouts.runs()]
        return payouts_pb2.ListPayoutRunsResponse(runs=runs)

    def SetBankAccount(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.SetBankAccount)
        r = c.request
        cmd = cmds.SetBankAccount(
            c.key, r.merchant_id, r.iban, r.bic, r.account_holder, r.sole_trader, as_staff(c.who).ref
        )
        out = self.node.execute(self.app.job(cmd))
        return payouts_pb2.SetBankAccountResponse(
            merchant_id=out["merchant_id"], awaiting_second_entry=bool(out.get("awaiting_second_entry"))
        )


def run_message(out: dict[str, Any]) -> Any:
    return payouts_pb2.PayoutRun(
        run_id=out["run_id"],
        period=out["period"],
        rate=out["rate"],
        execution_date=out["execution_date"],
        recorded_by=out["recorded_by"],
        lines=[
            payouts_pb2.PayoutRunLine(
                merchant_id=line["merchant_id"],
                tokens=line["tokens"],
                euro_cents=line["cents"],
                carry=line["carry"],
            )
            for line in out["lines"]
        ],
        tokens=out["tokens"],
        euro_cents=out["cents"],
        state=out["state"],
        proposed_by=out["proposed_by"],
    )
