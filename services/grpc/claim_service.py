"""ClaimService: signed claims from registered sources, one or a batch per call.

The claim's signature is its sender's authentication (services/claims.py): anyone may
deliver one, and only a claim that verifies under a live key of its source is credited.
"""

from __future__ import annotations

from typing import Any

import grpc

from aggregates.errors import DomainError, InvalidInput
from civfed.v1 import claims_pb2, claims_pb2_grpc
from services import commands
from services.claims import ClaimNotAuthentic, reason_code, refused_claim
from services.grpc import claim_requests as rq
from services.grpc.calls import Calls
from services.grpc.errors import status_for
from services.grpc.language import award_explanation, reading_language
from services.grpc.node import CityNode


class ClaimService(claims_pb2_grpc.ClaimServiceServicer):
    def __init__(self, node: CityNode) -> None:
        self.node = node
        self.app = node.app
        self.call = Calls()

    def SubmitClaim(self, request: Any, context: grpc.ServicerContext) -> Any:
        call = self.call(context, request, rq.SubmitClaim)
        language = reading_language(self.app.city.config.locale, request.language)
        try:
            cmd = self.app.verify_claim(call.request.claim)
            out = self.node.execute(self.app.job(cmd))
        except (DomainError, ClaimNotAuthentic) as exc:
            raise _with_reason(refused_claim(exc)) from None
        return self._accepted(cmd, out, language)

    def SubmitClaims(self, request: Any, context: grpc.ServicerContext) -> Any:
        if len(request.claims) > rq.MAX_CLAIMS_PER_CALL:
            # Refused whole, before any is read: the caller splits the batch.
            raise InvalidInput(
                "claims", f"at most {rq.MAX_CLAIMS_PER_CALL} claims per call, got {len(request.claims)}"
            )
        call = self.call(context, request, rq.SubmitClaims)
        language = reading_language(self.app.city.config.locale, request.language)
        registry = self.app.source_registry()
        results: list[Any] = [None] * len(call.request.claims)
        verified: list[tuple[int, commands.SubmitClaim]] = []
        for i, token in enumerate(call.request.claims):
            try:
                verified.append((i, self.app.verify_claim_with(registry, token)))
            except (DomainError, ClaimNotAuthentic) as exc:
                results[i] = _refused(exc)
        outcomes = self.node.writer.execute_many([cmd for _, cmd in verified])
        for (i, cmd), out in zip(verified, outcomes, strict=True):
            if isinstance(out, BaseException):
                results[i] = _refused(refused_claim(out), cmd)
            else:
                results[i] = self._accepted(cmd, out, language)
        accepted = sum(1 for r in results if r.accepted)
        return claims_pb2.SubmitClaimsResponse(
            results=results, accepted=accepted, refused=len(results) - accepted
        )

    def _accepted(self, cmd: commands.SubmitClaim, out: dict[str, Any], language: str) -> Any:
        return claims_pb2.ClaimResult(
            accepted=True,
            source=cmd.source_id,
            claim_id=cmd.claim_id,
            awarded=self.node.amount(out["amount"]),
            rule_id=out["rule_id"],
            rule_version=out["rule_version"],
            explanation=award_explanation(out, language),
            status=grpc.StatusCode.OK.name,
        )


def _refused(exc: BaseException, cmd: commands.SubmitClaim | None = None) -> Any:
    code, message = status_for(exc)
    return claims_pb2.ClaimResult(
        accepted=False,
        source=cmd.source_id if cmd else "",
        claim_id=cmd.claim_id if cmd else "",
        status=code.name,
        reason=reason_code(exc),
        message=message,
    )


def _with_reason(exc: BaseException) -> BaseException:
    """The same refusal, its message led by the reason code, for the single call's status."""
    text = f"{reason_code(exc)}: {exc}"
    again = Exception.__new__(type(exc))
    Exception.__init__(again, text)
    return again
