"""A city's rulebook: versioned rules, validated when published, with full history."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.errors import NegativeAward, NotFound, ProtectedAttribute, RuleRejected
from aggregates.rules import FIXED_PER_ACTION, MEASURED_QUANTITY, PER_APPROVED_TIME, RULE_KINDS
from aggregates.rules import Rule as Rule  # a rule lives with its kinds; still importable from here

PROTECTED_TERMS = (
    "nationality",
    "citizenship",
    "passport",
    "ethnic",
    "race",
    "religio",
    "faith",
    "political",
    "party_member",
    "health",
    "disab",
    "medical",
    "pregnan",
    "sexual",
    "gender",
    "union",
    "birthplace",
    "country_of_birth",
    "migration",
    "immigra",
    "genetic",
    "biometric",
    "criminal",
)
ALLOWED_CONDITIONS = ("participant_kinds",)
CONDITION_KINDS = ("resident", "tourist", "business")


def _words(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [w for k, v in value.items() for w in [str(k), *_words(v)]]
    if isinstance(value, (list, tuple)):
        return [w for v in value for w in _words(v)]
    return [value] if isinstance(value, str) else []


def _numbers(value: Any, path: str) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in _numbers(v, f"{path}.{k}")]
    if isinstance(value, bool):
        return []
    return [(path, value)] if isinstance(value, (int, float)) else []


def check_rule(rule_id: str, kind: str, params: dict[str, Any], conditions: dict[str, Any]) -> None:
    """Publish-time validation: rewards only, no protected attributes, own data only."""
    for word in _words(conditions) + _words(params):
        # Split camelCase first, so "tradeUnionMember" is read as trade_union_member.
        split = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", word)
        norm = "_" + re.sub(r"[^a-z]+", "_", split.lower()).strip("_")
        for term in PROTECTED_TERMS:
            # Match word starts, so "religious" hits "religio" but "trace" misses "race".
            if "_" + term in norm:
                raise ProtectedAttribute(rule_id, f"refers to protected attribute {word!r}")
    for key in conditions:
        if "." in key or ":" in key:
            raise RuleRejected(rule_id, f"condition {key!r} reads another city's data")
        if key not in ALLOWED_CONDITIONS:
            raise RuleRejected(rule_id, f"unknown condition {key!r}")
    kinds = conditions.get("participant_kinds", [])
    if not isinstance(kinds, list):
        raise RuleRejected(rule_id, f"participant_kinds must be a list of {CONDITION_KINDS}")
    for kind_name in kinds:
        # Only the published kinds: a free-form group here could single people out.
        if kind_name not in CONDITION_KINDS:
            raise RuleRejected(rule_id, f"participant kind {kind_name!r} is not one of {CONDITION_KINDS}")
    if kind not in RULE_KINDS:
        raise RuleRejected(rule_id, f"unknown rule kind {kind!r}")
    for path, number in _numbers(params, "params"):
        if not isinstance(number, int) or isinstance(number, bool):
            raise RuleRejected(rule_id, f"{path} must be a whole number, not {number!r}")
        if number < 0:
            raise NegativeAward(rule_id, f"{path} is negative ({number}); civfed gives rewards only")
    if kind == MEASURED_QUANTITY:
        factors = params["factors_g_per_km"]
        baseline = factors[params["baseline_mode"]]
        for mode, factor in factors.items():
            if factor > baseline:
                raise NegativeAward(rule_id, f"mode {mode!r} emits more than the baseline")
        if params["unit_grams"] <= 0:
            raise RuleRejected(rule_id, "unit_grams must be positive")
    if kind == FIXED_PER_ACTION and not params.get("points"):
        raise RuleRejected(rule_id, "points table is empty")
    if kind == PER_APPROVED_TIME:
        if not params.get("units_per_hour"):
            raise RuleRejected(rule_id, "units_per_hour must be a positive whole number")
        if params.get("four_eyes") is not True:
            raise RuleRejected(rule_id, "four_eyes must be true: nobody approves their own hours")


class Rulebook(Aggregate):
    """One per city. Every change records who, when (event time) and why."""

    @staticmethod
    def create_id(city: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"civfed:{city}:rulebook")

    @event("Created")
    def __init__(self, city: str) -> None:
        self.city = city
        self.rules: dict[str, Rule] = {}

    def publish(self, rule: Rule, by: str, why: str) -> None:
        check_rule(rule.rule_id, rule.kind, rule.params, rule.conditions)
        current = self.rules.get(rule.rule_id)
        if current is None:
            self._published(rule.rule_id, rule.kind, rule.activity, rule.params, rule.conditions, by, why)
        elif (current.params, current.conditions, current.active) != (rule.params, rule.conditions, True):
            self._changed(rule.rule_id, rule.params, rule.conditions, by, why)

    @event("RulePublished")
    def _published(
        self,
        rule_id: str,
        kind: str,
        activity: str,
        params: dict[str, Any],
        conditions: dict[str, Any],
        by: str,
        why: str,
    ) -> None:
        self.rules[rule_id] = Rule(rule_id, kind, activity, 1, params, conditions)

    @event("RuleChanged")
    def _changed(
        self, rule_id: str, params: dict[str, Any], conditions: dict[str, Any], by: str, why: str
    ) -> None:
        old = self.rules[rule_id]
        self.rules[rule_id] = Rule(rule_id, old.kind, old.activity, old.version + 1, params, conditions)

    def retire(self, rule_id: str, by: str, why: str) -> None:
        self.get(rule_id)
        self._retired(rule_id, by, why)

    @event("RuleRetired")
    def _retired(self, rule_id: str, by: str, why: str) -> None:
        old = self.rules[rule_id]
        self.rules[rule_id] = Rule(**{**asdict(old), "active": False})

    def get(self, rule_id: str) -> Rule:
        if rule_id not in self.rules:
            raise NotFound(f"rule {rule_id!r} is not in the {self.city} rulebook")
        return self.rules[rule_id]

    def for_activity(self, activity: str) -> Rule:
        for rule in self.rules.values():
            if rule.active and rule.activity == activity:
                return rule
        raise NotFound(f"no active {self.city} rule rewards activity {activity!r}")
