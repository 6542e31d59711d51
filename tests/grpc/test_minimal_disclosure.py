"""Minimal disclosure: the home city tells an acceptor accepted or refused, the amount and a reference.

Checked twice: in the contract (the response messages' field sets) and on the
wire (the bytes a partner actually receives, decoded without the stubs, plus
the call's metadata).
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from civfed.v1 import common_pb2, federation_pb2
from services.demo.local_federation import LocalFederation
from tests.e2e.flows import Citizen, vienna_citizen

SERVICE = "/civfed.v1.FederationService/"
ACCEPTED, REFUSED = federation_pb2.DECISION_ACCEPTED, federation_pb2.DECISION_REFUSED
# What a partner may learn. The hold's expiry is the home city's configured
# hold lifetime from now: it tells the acceptor how long it has to commit and
# says nothing about the person.
ALLOWED = {
    "ReserveResponse": {"decision", "amount", "redemption_id", "hold_expires_at"},
    "CommitResponse": {"decision", "amount"},
    "CancelResponse": {"released"},
    "Amount": {"units", "currency"},
}


def fields(message: Any) -> set[str]:
    return {f.name for f in message.DESCRIPTOR.fields}


def test_contract_responses_carry_only_decision_amount_and_reference() -> None:
    assert fields(federation_pb2.ReserveResponse) == ALLOWED["ReserveResponse"]
    assert fields(federation_pb2.CommitResponse) == ALLOWED["CommitResponse"]
    assert fields(federation_pb2.CancelResponse) == ALLOWED["CancelResponse"]
    assert fields(common_pb2.Amount) == ALLOWED["Amount"]
    amount = federation_pb2.ReserveResponse.DESCRIPTOR.fields_by_name["amount"]
    assert amount.message_type.full_name == "civfed.v1.Amount"


def wire_fields(data: bytes) -> dict[int, list[Any]]:
    """Field number -> values of a protobuf message, read from its bytes without a schema."""
    out: dict[int, list[Any]] = {}
    i = 0

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while i < len(data):
        tag = varint()
        number, kind = tag >> 3, tag & 7
        if kind == 0:
            out.setdefault(number, []).append(varint())
        elif kind == 2:
            size = varint()
            out.setdefault(number, []).append(data[i : i + size])
            i += size
        else:
            raise AssertionError(f"unexpected wire type {kind} for field {number}")
    return out


def numbers(message: Any) -> dict[int, str]:
    return {f.number: f.name for f in message.DESCRIPTOR.fields}


class RawPartner:
    """Sint-Niklaas calling Vienna's federation service, keeping the raw reply bytes and metadata."""

    def __init__(self, fed: LocalFederation) -> None:
        files = fed.files["sint_niklaas"]
        self.channel = fed.channel("vienna", files.cert, files.key)

    def call(self, method: str, request: Any) -> tuple[bytes, list[tuple[str, Any]]]:
        rpc = self.channel.unary_unary(SERVICE + method, request_serializer=lambda m: m.SerializeToString())
        reply, call = rpc.with_call(request, timeout=5)
        metadata = [*(call.initial_metadata() or ()), *(call.trailing_metadata() or ())]
        return reply, [(key, value) for key, value in metadata]

    def reserve(self, key: str, token: str) -> bytes:
        return self.call(
            "Reserve", federation_pb2.ReserveRequest(idempotency_key=key, redemption_token=token)
        )[0]

    def commit(self, key: str, rid: str) -> bytes:
        return self.call("Commit", federation_pb2.CommitRequest(idempotency_key=key, redemption_id=rid))[0]

    def cancel(self, key: str, rid: str) -> bytes:
        return self.call("Cancel", federation_pb2.CancelRequest(idempotency_key=key, redemption_id=rid))[0]


def check_reply(raw: bytes, message: Any, citizen: Citizen) -> Any:
    """Only allowed fields on the wire, nothing unknown, and nothing that names the holder."""
    found = wire_fields(raw)
    names = numbers(message)
    assert {names[n] for n in found} <= ALLOWED[message.DESCRIPTOR.name], found
    if "amount" in {names[n] for n in found}:
        [amount] = found[next(n for n, name in names.items() if name == "amount")]
        assert {numbers(common_pb2.Amount)[n] for n in wire_fields(amount)} <= ALLOWED["Amount"]
    assert citizen.wallet_id.encode() not in raw and citizen.token.encode() not in raw
    parsed = message()
    parsed.ParseFromString(raw)
    assert parsed.SerializeToString() == raw  # no unknown fields hidden in the reply
    return parsed


@pytest.fixture(scope="module")
def partner(fed: LocalFederation) -> RawPartner:
    return RawPartner(fed)


def test_reserve_commit_and_cancel_replies_on_the_wire(fed: LocalFederation, partner: RawPartner) -> None:
    ann = vienna_citizen(fed.stubs("vienna"), "disclosure-ann", 500)  # 5 tokens
    # Vouchers hold nothing until reserved: both can be issued now.
    three, four = ann.voucher(3, "md-v1"), ann.voucher(4, "md-v2")
    request = federation_pb2.ReserveRequest(idempotency_key="md-r1", redemption_token=three)
    raw, metadata = partner.call("Reserve", request)
    reserved = check_reply(raw, federation_pb2.ReserveResponse, ann)
    assert (reserved.decision, reserved.amount.units) == (ACCEPTED, 3)
    assert reserved.amount.currency == "Wienertoken"
    assert reserved.redemption_id and reserved.redemption_id != ann.wallet_id
    assert metadata == []  # no headers or trailers beside the message

    raw, metadata = partner.call(
        "Commit", federation_pb2.CommitRequest(idempotency_key="md-c1", redemption_id=reserved.redemption_id)
    )
    committed = check_reply(raw, federation_pb2.CommitResponse, ann)
    assert (committed.decision, committed.amount.units) == (ACCEPTED, 3)
    assert metadata == []  # no headers or trailers beside the message

    # Two tokens left: a voucher for four is refused with its own amount, and
    # nothing says why or how much the holder has.
    raw = partner.reserve("md-r2", four)
    refused = check_reply(raw, federation_pb2.ReserveResponse, ann)
    assert set(wire_fields(raw)) == {1, 2}  # decision and amount only: no reference, no expiry
    assert (refused.decision, refused.amount.units) == (REFUSED, 4)

    raw = partner.reserve("md-r3", ann.voucher(1, "md-v3"))
    rid = check_reply(raw, federation_pb2.ReserveResponse, ann).redemption_id
    raw = partner.cancel("md-x", rid)
    assert check_reply(raw, federation_pb2.CancelResponse, ann).released is True
    assert ann.balance().balance.units == 2 and ann.balance().held.units == 0


def test_refusal_statuses_say_nothing_about_the_holder(fed: LocalFederation, partner: RawPartner) -> None:
    ben = vienna_citizen(fed.stubs("vienna"), "disclosure-ben", 200)  # 2 tokens
    token = ben.voucher(2, "md-b1")
    reply = check_reply(
        partner.call(
            "Reserve", federation_pb2.ReserveRequest(idempotency_key="md-b1", redemption_token=token)
        )[0],
        federation_pb2.ReserveResponse,
        ben,
    )
    # The same voucher again (another key): refused, not "already redeemed by wallet ...".
    again = check_reply(
        partner.call(
            "Reserve", federation_pb2.ReserveRequest(idempotency_key="md-b2", redemption_token=token)
        )[0],
        federation_pb2.ReserveResponse,
        ben,
    )
    assert (reply.decision, again.decision, again.amount.units) == (ACCEPTED, REFUSED, 2)
    # Cancelling after the commit: a status whose text names no wallet, balance or history.
    partner.call(
        "Commit", federation_pb2.CommitRequest(idempotency_key="md-b3", redemption_id=reply.redemption_id)
    )
    with pytest.raises(grpc.RpcError) as err:
        partner.call(
            "Cancel", federation_pb2.CancelRequest(idempotency_key="md-b4", redemption_id=reply.redemption_id)
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = err.value.details() or ""
    assert ben.wallet_id not in details and "balance" not in details and "available" not in details
