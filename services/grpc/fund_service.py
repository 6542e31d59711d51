"""FundService: the city's funds. Staff propose a top-up, another person approves it with a
decision reference (the fund checks the subjects differ); the report gives each fund's
figures, in tokens and euros, and never a person's."""

from __future__ import annotations

from typing import Any

import grpc

from civfed.v1 import funds_pb2, funds_pb2_grpc
from services import commands as c
from services.finance import finance_report
from services.funds import FIGURES, FundReport
from services.grpc import requests as rq
from services.grpc.calls import Calls, as_staff
from services.grpc.node import CityNode


class FundService(funds_pb2_grpc.FundServiceServicer):
    def __init__(self, node: CityNode) -> None:
        self.node = node
        self.app = node.app
        self.call = Calls()

    def ProposeFundTopUp(self, request: Any, context: grpc.ServicerContext) -> Any:
        call = self.call(context, request, rq.ProposeFundTopUp)
        r = call.request
        cmd = c.ProposeFundTopUp(call.key, r.fund_id, r.amount, r.reason, as_staff(call.who).ref)
        return funds_pb2.FundTopUp(**self.node.execute(self.app.job(cmd)))

    def ApproveFundTopUp(self, request: Any, context: grpc.ServicerContext) -> Any:
        call = self.call(context, request, rq.ApproveFundTopUp)
        r = call.request
        cmd = c.ApproveFundTopUp(call.key, r.fund_id, r.proposal_id, r.decision_ref, as_staff(call.who).ref)
        return funds_pb2.FundTopUp(**self.node.execute(self.app.job(cmd)))

    def GetFundReport(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.call(context, request, rq.GetFundReport)
        rate = self.app.city.config.euro_per_token
        return funds_pb2.FundReportResponse(
            city=self.app.key,
            euro_per_token="" if rate is None else str(rate),
            funds=[report_message(r) for r in self.app.fund_reports()],
        )

    def GetFinanceReport(self, request: Any, context: grpc.ServicerContext) -> Any:
        period = self.call(context, request, rq.GetFinanceReport).request.period
        self.node.writer.settle()  # every command already answered is counted
        report = finance_report(self.app, self.node.clearing, period, self.node.euro_rates)
        cfg = self.app.city.config
        rate = cfg.euro_per_token
        return funds_pb2.FinanceReportResponse(
            city=report.city,
            period=report.period,
            currency=cfg.currency.name,
            decimals=cfg.currency.decimals,
            euro_per_token="" if rate is None else str(rate),
            funds=[funds_pb2.FinanceFund(**vars(f)) for f in report.funds],
            periods=[funds_pb2.FinancePeriod(**vars(p)) for p in report.periods],
            partners=[funds_pb2.FinancePartner(**vars(p)) for p in report.partners],
            fund_periods=[funds_pb2.FinanceFundPeriod(**vars(m)) for m in report.fund_periods],
        )


def report_message(r: FundReport) -> Any:
    tokens = funds_pb2.FundFigures(**{f: getattr(r, f) for f in FIGURES})
    euros = None
    if r.euro_per_token is not None:
        euros = funds_pb2.EuroFigures(**{f: str(r.euros(getattr(r, f))) for f in FIGURES})
    return funds_pb2.FundReport(
        fund_id=r.fund_id,
        name=r.name,
        funder=r.funder,
        period=r.period,
        rules=r.rules,
        declared=r.declared,
        tokens=tokens,
        euros=euros,
    )
