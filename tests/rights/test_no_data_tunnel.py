"""No data tunnel: a federation response carries an amount, a yes or no and pseudonymous
references: never an identity, a balance or a behaviour history."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from uuid import UUID

from google.protobuf.descriptor import Descriptor

from civfed.v1 import federation_pb2, merchant_pb2, wallet_pb2
from projections.integration import PUBLIC_FIELDS, to_integration_event
from services.demo.local_federation import LocalFederation
from services.event_log import event_type, read_events
from services.grpc.auth import bearer
from tests.e2e.flows import attest, open_wallet

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
    # In English: the explanation as the events store it.
    award = attest(v, "trip-77x", opened.wallet_id, "trip", trip, language="en")
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


def exported(fed: LocalFederation, city: str) -> list[Any]:
    """Every integration event a city's relay would publish, from its whole store."""
    app = fed.running[city].node.app
    events = [
        to_integration_event(city, n.id, app.mapper.to_domain_event(n), app.pseudonym)
        for n in app.recorder.select_notifications(start=0, limit=1_000_000)
    ]
    return [e for e in events if e is not None]


def test_no_reference_a_counterpart_sees_is_on_the_public_stream(fed: LocalFederation) -> None:
    """A shop or partner holding a voucher reference, a QR id or a redemption id cannot find
    it on either city's stream, so it cannot reach the wallet's pseudonymous history."""
    v, s = fed.stubs("vienna"), fed.stubs("sint_niklaas")
    opened = open_wallet(v, "tunnel")
    trip = {"mode": "bike", "distance_m": "600000", "date": "2026-05-03"}
    attest(v, "tunnel:t", opened.wallet_id, "trip", trip)
    holder = bearer(opened.holder_token)
    shop = s.merchant.RegisterMerchant(
        merchant_pb2.RegisterMerchantRequest(idempotency_key="tunnel:s", name="Shop", category="food"),
        metadata=s.staff,
        timeout=5,
    )
    home_shop = v.merchant.RegisterMerchant(
        merchant_pb2.RegisterMerchantRequest(
            idempotency_key="tunnel:h", name="Home", category="food", local=True
        ),
        metadata=v.staff,
        timeout=5,
    )
    # A local voucher: the shop sees its id and QR text.
    local = v.wallet.IssueVoucher(
        wallet_pb2.IssueVoucherRequest(idempotency_key="tunnel:lv", wallet_id=opened.wallet_id, amount=1),
        metadata=holder,
        timeout=5,
    )
    v.merchant.AcceptVoucher(
        merchant_pb2.AcceptVoucherRequest(idempotency_key="tunnel:la", local_voucher_id=local.voucher_id),
        metadata=bearer(home_shop.merchant_token),
        timeout=5,
    )
    # A cross-city voucher: the shop sees its reference and the answer's redemption id; the
    # accepting city sees the redemption id Vienna's Reserve returned.
    token = v.wallet.IssueRedemptionVoucher(
        wallet_pb2.IssueRedemptionVoucherRequest(
            idempotency_key="tunnel:rv", wallet_id=opened.wallet_id, amount=2
        ),
        metadata=holder,
        timeout=5,
    ).token
    sold = s.merchant.AcceptVoucher(
        merchant_pb2.AcceptVoucherRequest(idempotency_key="tunnel:sale", redemption_token=token),
        metadata=bearer(shop.merchant_token),
        timeout=20,
    )
    voucher_ref = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["ref"]
    home_redemptions = [
        str(e.originator_id)
        for _, e in read_events(fed.running["vienna"].node.app)
        if event_type(e) == "Redemption.Reserved"
    ]
    seen_by_counterparts = [local.voucher_id, local.qr, voucher_ref, sold.redemption_id, *home_redemptions]
    assert home_redemptions and all(seen_by_counterparts)
    for city in ("vienna", "sint_niklaas"):
        stream = [e.SerializeToString() for e in exported(fed, city)]
        for ref in seen_by_counterparts:
            assert not any(ref.encode() in raw for raw in stream), (city, ref)
    # Nor is a shop beside a wallet: a shop knows its own merchant id and when its customers paid.
    shops = [home_shop.merchant_id, shop.merchant_id]
    for city in ("vienna", "sint_niklaas"):
        for e in exported(fed, city):
            if e.type.startswith(("Wallet.", "Prize.Claimed", "Appeal.")):
                assert not any(m.encode() in e.SerializeToString() for m in shops), (city, e.type)
    paid = [e for e in exported(fed, "vienna") if e.type == "Merchant.Paid"]
    assert [(e.aggregate_id, e.payload.refs["kind"]) for e in paid] == [(home_shop.merchant_id, "voucher")]
    # The scan reads the right stream: the wallet's own events are on it, by its pseudonym.
    name = fed.running["vienna"].node.app.pseudonym(UUID(opened.wallet_id)).encode()
    assert any(name in raw for raw in (e.SerializeToString() for e in exported(fed, "vienna")))


def documented_fields() -> dict[str, tuple[str, ...]]:
    """The table of public event types and their fields in docs/RIGHTS.md."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "RIGHTS.md").read_text()
    table = text.split("<!-- public-events -->")[1]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    out = {}
    for row in rows:
        kind, fields = (cell.strip() for cell in row.strip("|").split("|")[:2])
        out[kind.strip("`")] = tuple(f.strip("` ") for f in fields.split(",") if f.strip("` -"))
    return out


def test_the_published_table_of_stream_fields_is_the_allowlist() -> None:
    assert documented_fields() == PUBLIC_FIELDS
