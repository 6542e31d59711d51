"""The Partner port over real gRPC: what each answer of a home node becomes for the saga.

Sint-Niklaas's node reaches Vienna's through its `GrpcPartner`, over mutual TLS with its
own node certificate, exactly as its acceptor does.
"""

from __future__ import annotations

import uuid

import pytest

from services.demo.local_federation import LocalFederation
from services.federation.partner import PartnerRefusedCall
from services.grpc.partner_client import GrpcPartner
from tests.e2e.flows import vienna_citizen


@pytest.fixture
def partner(fed: LocalFederation) -> GrpcPartner:
    found = fed.running["sint_niklaas"].node.partners["vienna"]
    assert isinstance(found, GrpcPartner)
    return found


def test_decisions_come_back_as_decisions_and_other_refusals_as_refused_calls(
    fed: LocalFederation, partner: GrpcPartner
) -> None:
    ada = vienna_citizen(fed.stubs("vienna"), "ada-port", 900)  # 9 tokens
    first, second = ada.voucher(3, "port-v1"), ada.voucher(2, "port-v2")

    held = partner.reserve("port-r1", first)
    assert held.decision.accepted and held.amount == 3 and held.redemption_id is not None
    assert held.hold_expires_at is not None
    # The same voucher again, under another key: the home refuses it, and says only that.
    again = partner.reserve("port-r1b", first)
    assert not again.decision.accepted and again.redemption_id is None
    assert again.decision.reason == "refused by the home city"

    # Cancelled, then a commit: the home decided (the redemption is closed), so the saga
    # may reverse its credit; the answer is a refusal, not an error.
    assert partner.cancel("port-x1", held.redemption_id, "shop closed").decision.accepted
    late = partner.commit("port-c1", held.redemption_id)
    assert not late.decision.accepted and "cancelled" in late.decision.reason

    # Committed, then a cancel: refused, and nothing moves.
    other = partner.reserve("port-r2", second)
    assert other.redemption_id is not None
    done = partner.commit("port-c2", other.redemption_id)
    assert done.decision.accepted and done.amount == 2
    assert partner.commit("port-c2b", other.redemption_id).decision.accepted  # a repeat burns nothing
    undo = partner.cancel("port-x2", other.redemption_id, "too late")
    assert not undo.decision.accepted and "committed" in undo.decision.reason
    balance = ada.balance()
    assert (balance.balance.units, balance.held.units) == (7, 0)

    # A redemption the home does not know, or a key reused for another call: the call is
    # refused, which decides nothing about any redemption.
    with pytest.raises(PartnerRefusedCall, match="not found"):
        partner.commit("port-c3", uuid.uuid4())
    with pytest.raises(PartnerRefusedCall, match="idempotency key"):
        partner.commit("port-x2", other.redemption_id)


def test_published_terms_are_domain_terms(partner: GrpcPartner) -> None:
    terms = partner.published_terms()
    assert (terms.city, terms.currency) == ("vienna", "Wienertoken")
    assert "sint_niklaas" in terms.redeemable_at
    assert terms.accepts["rome"].rate_denominator == 2
