"""Rome's fixed_per_action and Sint-Niklaas's once_per_subject and cashback rules."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import uuid4

import pytest

from aggregates.errors import AlreadyAwarded, InvalidInput, MerchantNotAccepted
from aggregates.merchant import Merchant
from aggregates.receipt import SubjectClaim
from aggregates.rulebook import Rule
from aggregates.rules import (
    ActionInput,
    PurchaseInput,
    SubjectInput,
    fixed_per_action,
    once_per_subject,
    percentage_of_amount,
)
from services.settings.cities import RuleSpec, load_city

DAY = dt.date(2026, 6, 1)


def spec(city: str, rule_id: str) -> RuleSpec:
    return next(r for r in load_city(city).rules if r.id == rule_id)


def as_rule(s: RuleSpec) -> Rule:
    return Rule(s.id, s.kind, s.activity, 1, s.params, s.conditions)


# -- Rome: fixed points per action -----------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "points"),
    [("recycling_drop_off", 10), ("public_transport_ride", 5), ("bike_share_trip", 8), ("water_refill", 2)],
)
def test_rome_points_per_action(action: str, points: int) -> None:
    award = fixed_per_action(spec("rome", "eco-actions").params, ActionInput(action=action, date=DAY))
    assert award.amount == points
    assert award.explanation == f"{action} on 1 June 2026 earns {points} points"
    assert award.carried_after is None and award.subject_key is None


@pytest.mark.parametrize("kind", ["resident", "tourist", "business"])
def test_rome_rule_covers_every_participant_kind(kind: str) -> None:
    assert as_rule(spec("rome", "eco-actions")).allows(kind)


def test_a_rule_limited_to_some_kinds_excludes_the_others() -> None:
    rule = Rule(
        "r", "fixed_per_action", "eco_action", 1, {"points": {"a": 1}}, {"participant_kinds": ["resident"]}
    )
    assert rule.allows("resident")
    assert not rule.allows("tourist")
    assert not rule.allows("business")


def test_unknown_action_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as exc:
        fixed_per_action(spec("rome", "eco-actions").params, ActionInput(action="littering", date=DAY))
    assert exc.value.field == "action"
    assert "littering" in str(exc.value)


# -- Sint-Niklaas: once per subject ------------------------------------------------------------


def sn_params(rule_id: str) -> dict[str, Any]:
    return spec("sint_niklaas", rule_id).params


def test_bike_engraving_is_once_per_bike_city_wide() -> None:
    params = sn_params("bike-engraving")
    first, second = uuid4(), uuid4()
    a = once_per_subject(params, SubjectInput(subject="FRAME-123", date=DAY), first)
    b = once_per_subject(params, SubjectInput(subject="FRAME-123", date=DAY), second)
    c = once_per_subject(params, SubjectInput(subject="FRAME-124", date=DAY), first)
    assert a.amount == b.amount == 500
    # The same frame is the same subject whoever brings it; another frame is not.
    assert a.subject_key == b.subject_key
    assert a.subject_key != c.subject_key
    assert "once per bike frame" in a.explanation


def test_event_attendance_is_once_per_wallet_per_event_and_says_so() -> None:
    params = sn_params("event-attendance")
    ann, bob = uuid4(), uuid4()
    ann_fair = once_per_subject(params, SubjectInput(subject="fair-2026", date=DAY), ann)
    ann_again = once_per_subject(params, SubjectInput(subject="fair-2026", date=DAY), ann)
    bob_fair = once_per_subject(params, SubjectInput(subject="fair-2026", date=DAY), bob)
    ann_market = once_per_subject(params, SubjectInput(subject="market-2026", date=DAY), ann)
    assert ann_fair.amount == 200
    assert ann_fair.subject_key == ann_again.subject_key
    assert len({ann_fair.subject_key, bob_fair.subject_key, ann_market.subject_key}) == 3
    # The node cannot tell two wallets are one person, so the award does not claim it can.
    assert "once per wallet per event" in ann_fair.explanation
    assert "person" not in ann_fair.explanation


def test_subject_claim_ids_collide_exactly_for_the_same_subject() -> None:
    digest = SubjectClaim.digest("FRAME-123")
    assert "FRAME-123" not in digest  # the frame number itself is never stored
    same = SubjectClaim.create_id("sint_niklaas", "bike-engraving", digest)
    assert same == SubjectClaim.create_id("sint_niklaas", "bike-engraving", SubjectClaim.digest("FRAME-123"))
    assert same != SubjectClaim.create_id("sint_niklaas", "bike-engraving", SubjectClaim.digest("FRAME-124"))
    assert same != SubjectClaim.create_id("bologna", "bike-engraving", digest)
    claim = SubjectClaim("sint_niklaas", "bike-engraving", digest, uuid4())
    SubjectClaim.check_unclaimed(None, "bike-engraving")
    with pytest.raises(AlreadyAwarded):
        SubjectClaim.check_unclaimed(claim, "bike-engraving")


# -- Sint-Niklaas: cashback in basis points, rounded down --------------------------------------


@pytest.mark.parametrize(
    ("cents", "award"),
    [(1, 0), (19, 0), (20, 1), (39, 1), (40, 2), (1_999, 99), (2_000, 100), (100_000_000, 5_000_000)],
)
def test_cashback_is_five_percent_rounded_down(cents: int, award: int) -> None:
    params = sn_params("local-cashback")
    assert params["basis_points"] == 500
    result = percentage_of_amount(params, PurchaseInput(amount_cents=cents, merchant_id=uuid4(), date=DAY))
    assert result.amount == award
    assert "rounded down" in result.explanation


def test_cashback_needs_a_positive_amount() -> None:
    with pytest.raises(ValueError):
        PurchaseInput(amount_cents=0, merchant_id=uuid4(), date=DAY)


def test_sengzen_are_spent_only_at_local_merchants() -> None:
    assert load_city("sint_niklaas").config.currency.local_only
    assert sn_params("local-cashback")["requires_local_merchant"] is True
    cafe = Merchant("sint_niklaas", "Cafe De Zon", "cafe", local=True, basic_economy=False)
    chain = Merchant("sint_niklaas", "MegaMart", "supermarket", local=False, basic_economy=False)
    cafe.check_accepts(local_only=True)
    with pytest.raises(MerchantNotAccepted, match="not a local shop"):
        chain.check_accepts(local_only=True)
    # A city without the restriction takes any merchant.
    chain.check_accepts(local_only=False)
