"""The ClearingPartner port (services/federation/clearing.py) over gRPC with mutual TLS."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from aggregates.clearing import Figures, Line
from civfed.v1 import clearing_pb2, clearing_pb2_grpc
from services.federation.clearing import Answer
from services.federation.partner import PartnerRefusedCall, PartnerUnreachable
from services.grpc.client import call_with_retry


def figures_message(f: Figures) -> clearing_pb2.ClearingFigures:
    return clearing_pb2.ClearingFigures(
        city_a=f.city_a,
        city_b=f.city_b,
        period=f.period,
        owed_by_a=f.owed_by_a,
        owed_by_b=f.owed_by_b,
        redemptions=f.redemptions,
        digest=f.digest,
    )


def line_message(line: Line) -> clearing_pb2.ClearingLine:
    at = line.at.isoformat() if line.at is not None else ""
    return clearing_pb2.ClearingLine(
        redemption_id=line.redemption_id, home_city=line.home, amount=line.amount, recorded_at=at
    )


class GrpcClearingPartner:
    """One partner city's clearing service, verified by its certificate name."""

    def __init__(
        self, city: str, address: str, credentials: grpc.ChannelCredentials, timeout: float = 30.0
    ) -> None:
        self.city = city
        self.timeout = timeout
        options = [("grpc.ssl_target_name_override", city)]
        self.channel = grpc.secure_channel(address, credentials, options=options)
        self.stub = clearing_pb2_grpc.ClearingServiceStub(self.channel)

    def propose(self, figures: Figures, signature: bytes, lines: Sequence[Line]) -> Answer:
        request = clearing_pb2.ProposeClearingRequest(
            figures=figures_message(figures), signature=signature, lines=[line_message(x) for x in lines]
        )
        try:
            reply = call_with_retry(self.stub.ProposeClearing, request, self.timeout)
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise PartnerUnreachable(f"{self.city} did not answer in time; retry later") from None
            raise PartnerRefusedCall(f"{self.city} refused: {exc.details()}") from None
        difference = None
        if reply.first_differing_redemption:
            difference = (
                reply.first_differing_redemption,
                reply.proposer_amount if reply.proposer_counts else None,
                reply.receiver_amount if reply.receiver_counts else None,
            )
        recorded = None
        if reply.HasField("recorded"):
            r = reply.recorded
            figures = Figures(r.city_a, r.city_b, r.period, r.owed_by_a, r.owed_by_b, r.redemptions, r.digest)
            recorded = (figures, reply.recorded_proposer_signature, tuple(reply.recorded_redemption_ids))
        return Answer(
            reply.agreed, reply.countersignature, tuple(reply.differing_figures), difference, recorded
        )

    def close(self) -> None:
        self.channel.close()
