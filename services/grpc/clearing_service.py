"""ClearingService (between partner nodes) and ClearingAdminService (a city's staff)."""

from __future__ import annotations

from typing import Any

import grpc

from aggregates.clearing import ClearingStatement
from civfed.v1 import clearing_pb2, clearing_pb2_grpc
from services.federation.clearing import signature_bytes
from services.grpc import clearing_requests as rq
from services.grpc.access import caller
from services.grpc.calls import Calls, as_partner
from services.grpc.clearing_client import figures_message
from services.grpc.node import CityNode


def statement_view(s: ClearingStatement) -> clearing_pb2.ClearingStatementView:
    return clearing_pb2.ClearingStatementView(
        figures=figures_message(s.figures),
        signature_a=signature_bytes(s.signature_a),
        signature_b=signature_bytes(s.signature_b),
    )


class ClearingService(clearing_pb2_grpc.ClearingServiceServicer):
    def __init__(self, node: CityNode) -> None:
        self.node = node
        self.call = Calls()

    def ProposeClearing(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.ProposeClearing)
        partner = as_partner(c.who).city
        r = c.request
        self.node.writer.settle()  # every sale already answered is counted
        answer = self.node.clearing.receive(
            partner, r.figures.domain(), r.signature, [line.domain() for line in r.lines]
        )
        reply = clearing_pb2.ProposeClearingResponse(
            agreed=answer.agreed,
            countersignature=answer.countersignature,
            differing_figures=list(answer.differing_figures),
        )
        if answer.difference is not None:
            rid, proposer, receiver = answer.difference
            reply.first_differing_redemption = rid
            reply.proposer_counts = proposer is not None
            reply.proposer_amount = proposer or 0
            reply.receiver_counts = receiver is not None
            reply.receiver_amount = receiver or 0
        if answer.recorded is not None:
            figures, proposer_signature, ids = answer.recorded
            reply.recorded.CopyFrom(figures_message(figures))
            reply.recorded_proposer_signature = proposer_signature
            reply.recorded_redemption_ids.extend(ids)
        return reply


class ClearingAdminService(clearing_pb2_grpc.ClearingAdminServiceServicer):
    def __init__(self, node: CityNode) -> None:
        self.node = node
        self.call = Calls()

    def RunClearing(self, request: Any, context: grpc.ServicerContext) -> Any:
        r = self.call(context, request, rq.RunClearing).request
        self.node.writer.settle()
        statement = self.node.clearing.run(r.partner_city, r.period)
        return clearing_pb2.RunClearingResponse(statement=statement_view(statement))

    def ListClearings(self, request: Any, context: grpc.ServicerContext) -> Any:
        caller()
        self.node.writer.settle()
        clearing = self.node.clearing
        return clearing_pb2.ListClearingsResponse(
            city=self.node.app.key,
            statements=[statement_view(s) for s in clearing.statements()],
            open=[
                clearing_pb2.OpenPosition(
                    partner_city=partner, owed_by_us=ours, owed_by_partner=theirs, redemptions=n
                )
                for partner, (ours, theirs, n) in clearing.open_positions().items()
            ],
        )
