"""One way into the rule kinds: `rules.evaluate(rule, fields, context)` and `Rule.check_covers`.

The awards and explanations themselves are pinned by the tests of each kind; these show
that the table reaches every kind, gives exactly what the kind's own function gives, and
takes from the context only what the application passes in.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID, uuid4

import pytest

from aggregates import rules
from aggregates.errors import (
    InvalidInput,
    MerchantNotAccepted,
    ParticipantNotAllowed,
    PreconditionFailed,
    RuleRejected,
    WalletClosed,
)
from aggregates.rulebook import check_rule
from aggregates.wallet import Wallet
from services.settings.cities import load_city

T0 = dt.datetime(2026, 5, 4, 9, 0, tzinfo=dt.UTC)
TRIP = {"mode": "bike", "distance_m": 25_000, "date": "2026-05-04"}


def city_rule(city: str, rule_id: str) -> rules.Rule:
    spec = next(r for r in load_city(city).rules if r.id == rule_id)
    return rules.Rule(spec.id, spec.kind, spec.activity, 1, spec.params, spec.conditions)


def wallet(kind: str = "resident") -> Wallet:
    until = T0 + dt.timedelta(days=3) if kind == "tourist" else None
    return Wallet.open("vienna", kind, "wien-2026-01", until)


def test_the_table_holds_every_kind_the_rulebook_accepts() -> None:
    assert set(rules.KINDS) == set(rules.RULE_KINDS) == set(rules.INPUT_MODELS)
    assert len(rules.RULE_KINDS) == 5
    with pytest.raises(RuleRejected, match="unknown rule kind"):
        check_rule("r", "per_smile", {}, {})


def test_a_measured_quantity_carries_the_wallets_remainder_for_that_rule() -> None:
    rule = city_rule("vienna", "mobility-co2")
    w = wallet()
    w.credit(0, rule.rule_id, 1, "a0", "earlier trip", carry_key=rule.rule_id, carried_after=15_000)
    w.credit(0, "other-rule", 1, "a1", "another rule's remainder", carry_key="other-rule", carried_after=9)
    context = rules.Context.of(rule, w)
    assert (context.wallet_id, context.carried) == (w.id, 15_000)
    award = rules.evaluate(rule, TRIP, context)
    trip = rules.TripInput.model_validate(TRIP)
    assert award == rules.measured_quantity(rule.params, trip, 15_000)
    # 5,000 g saved on top of the 15,000 carried make one token, nothing left over.
    assert (award.amount, award.carried_after) == (1, 0)


@pytest.mark.parametrize(
    ("city", "rule_id", "fields"),
    [
        ("rome", "eco-actions", {"action": "recycling_drop_off", "date": "2026-05-04"}),
        ("sint_niklaas", "bike-engraving", {"subject": "SN-77", "date": "2026-05-04"}),
        ("sint_niklaas", "event-attendance", {"subject": "fair-2026", "date": "2026-05-04"}),
    ],
)
def test_evaluate_gives_exactly_what_the_kind_gives(city: str, rule_id: str, fields: dict[str, Any]) -> None:
    rule = city_rule(city, rule_id)
    w = wallet()
    award = rules.evaluate(rule, fields, rules.Context.of(rule, w))
    inp = rules.parse_input(rule.kind, fields)
    if isinstance(inp, rules.ActionInput):
        assert award == rules.fixed_per_action(rule.params, inp)
    else:
        assert isinstance(inp, rules.SubjectInput)
        assert award == rules.once_per_subject(rule.params, inp, w.id)


def test_a_per_person_subject_is_keyed_by_the_contexts_wallet() -> None:
    rule = city_rule("sint_niklaas", "event-attendance")
    a, b = uuid4(), uuid4()
    fields = {"subject": "fair-2026", "date": "2026-05-04"}
    keys = {rules.evaluate(rule, fields, rules.Context(w)).subject_key for w in (a, b)}
    assert keys == {f"fair-2026|{a}", f"fair-2026|{b}"}


def test_a_purchase_asks_the_application_whether_the_merchant_takes_part() -> None:
    rule = city_rule("sint_niklaas", "local-cashback")
    shop = uuid4()
    fields = {"amount_cents": 1999, "merchant_id": str(shop), "date": "2026-05-04"}
    asked: list[tuple[UUID, bool]] = []
    award = rules.evaluate(
        rule, fields, rules.Context(uuid4(), merchant_accepts=lambda m, local: asked.append((m, local)))
    )
    assert asked == [(shop, True)]  # the rule requires a local merchant
    buy = rules.PurchaseInput.model_validate(fields)
    assert award == rules.percentage_of_amount(rule.params, buy)

    def refuse(merchant_id: UUID, local_only: bool) -> None:
        raise MerchantNotAccepted("not a local shop")

    with pytest.raises(MerchantNotAccepted):
        rules.evaluate(rule, fields, rules.Context(uuid4(), merchant_accepts=refuse))
    with pytest.raises(PreconditionFailed, match="no merchant was checked"):
        rules.evaluate(rule, fields, rules.Context(uuid4()))


def test_approved_time_mints_only_on_the_approval_path() -> None:
    rule = rules.Rule(
        "hours", rules.PER_APPROVED_TIME, "approved_work", 1, {"units_per_hour": 100, "four_eyes": True}
    )
    fields = {"minutes": 90, "category": "food-bank", "date": "2026-09-05"}
    with pytest.raises(PreconditionFailed) as refused:
        rules.evaluate(rule, fields, rules.Context(uuid4()))
    assert str(refused.value) == "rule hours mints only through an approved work log"
    award = rules.evaluate(rule, fields, rules.Context(uuid4(), approved_work=True))
    assert award == rules.per_approved_time(rule.params, rules.ApprovedTimeInput.model_validate(fields))
    assert award.amount == 150


def test_fields_a_kind_does_not_need_are_refused_before_anything_is_evaluated() -> None:
    rule = city_rule("vienna", "mobility-co2")
    with pytest.raises(InvalidInput) as exc:
        rules.evaluate(rule, {**TRIP, "gps": "48.2,16.3"}, rules.Context(uuid4()))
    assert exc.value.field == "gps"
    assert exc.value.problem == "not accepted: this rule needs only date, mode, distance_m"


def test_check_covers_asks_the_wallet_first_then_the_rules_conditions() -> None:
    rule = rules.Rule(
        "r", rules.FIXED_PER_ACTION, "eco", 1, {"points": {"a": 1}}, {"participant_kinds": ["resident"]}
    )
    rule.check_covers(wallet("resident"), T0)
    with pytest.raises(ParticipantNotAllowed) as exc:
        rule.check_covers(wallet("tourist"), T0)
    assert str(exc.value) == "rule r does not cover tourist wallets"
    leaving = wallet("tourist")
    leaving.leave(T0, final_spend_days=0, reason="moving")
    # A closed wallet is refused as closed, whatever the rule covers.
    with pytest.raises(WalletClosed):
        rule.check_covers(leaving, T0)
