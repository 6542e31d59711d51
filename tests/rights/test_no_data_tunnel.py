"""No data tunnel: a federation response carries an amount, a yes or no and pseudonymous
references: never an identity, a balance or a behaviour history."""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf.descriptor import Descriptor

from civfed.v1 import federation_pb2, wallet_pb2
from services.grpc.auth import bearer
from services.grpc.local_federation import LocalFederation
from tests.e2e.flows import open_wallet, record_activity

ALLOWED_FIELDS = {
    # Reserve / Commit / Cancel: the decision, the amount, the redemption's own reference.
    "decision", "amount", "units", "currency", "redemption_id", "hold_expires_at", "released",
    # Terms and settlement: city-level figures only.
    "city", "accepts", "home_city", "rate", "numerator", "denominator", "per_redemption_cap",
    "daily_cap", "redeemable_at", "positions", "partner_city", "home_currency", "payable_units",
    "receivable_units", "receivable_value_units", "net_units", "redemptions",
}  # fmt: skip


def fields_of(message: Descriptor, seen: set[str] | None = None) -> set[str]:
    """Every field name reachable from a message, through nested messages."""
    seen = seen if seen is not None else set()
    names: set[str] = set()
    for f in message.fields:
        names.add(f.name)
        if f.message_type is not None and f.message_type.full_name not in seen:
            seen.add(f.message_type.full_name)
            names |= fields_of(f.message_type, seen)
    return names


def test_federation_responses_can_only_hold_amounts_decisions_and_references() -> None:
    service = federation_pb2.DESCRIPTOR.services_by_name["FederationService"]
    reachable = set().union(*(fields_of(m.output_type) for m in service.methods))
    assert reachable == ALLOWED_FIELDS
    assert {m.name for m in service.methods} == {"GetTerms", "Reserve", "Commit", "Cancel", "GetSettlement"}


def test_a_real_redemption_reveals_no_identity_or_history(fed: LocalFederation) -> None:
    v = fed.stubs("vienna")
    opened = open_wallet(v, "w")
    trip = {"mode": "bike", "distance_m": "300000", "date": "2026-05-03"}
    award = record_activity(v, "t", opened.wallet_id, "trip", trip, activity_id="trip-77x")
    holder = bearer(opened.holder_token)
    token = v.wallet.IssueRedemptionVoucher(
        wallet_pb2.IssueRedemptionVoucherRequest(idempotency_key="rv", wallet_id=opened.wallet_id, amount=2),
        metadata=holder,
        timeout=5,
    ).token
    personal = [opened.wallet_id, opened.holder_token, award.explanation, "trip-77x", "resident"]
    payload = base64.urlsafe_b64decode(token.split(".")[0] + "==")
    assert [p for p in personal if p.encode() in payload] == []  # the voucher is a reference and an amount

    sn = fed.files["sint_niklaas"]
    partner: Any = type(v.federation)(fed.channel("vienna", sn.cert, sn.key))
    responses = [
        partner.Reserve(federation_pb2.ReserveRequest(idempotency_key="r", redemption_token=token), timeout=5)
    ]
    responses.append(
        partner.Commit(
            federation_pb2.CommitRequest(idempotency_key="c", redemption_id=responses[0].redemption_id),
            timeout=5,
        )
    )
    responses.append(partner.GetSettlement(federation_pb2.GetSettlementRequest(), timeout=5))
    responses.append(partner.GetTerms(federation_pb2.GetTermsRequest(), timeout=5))
    assert responses[0].decision == federation_pb2.DECISION_ACCEPTED and responses[0].amount.units == 2
    assert responses[1].decision == federation_pb2.DECISION_ACCEPTED
    for response in responses:
        assert {f.name for f, _ in response.ListFields()} <= ALLOWED_FIELDS
        raw = response.SerializeToString()
        assert [p for p in personal if p.encode() in raw] == []
    # The home ledger knows the wallet; the answer the partner got named only the redemption.
    assert responses[0].redemption_id != opened.wallet_id
