"""A city's rulebook: versioned rules, validated when published, with full history."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.errors import (
    InvalidInput,
    NegativeAward,
    NotFound,
    ProposalNotOpen,
    ProtectedAttribute,
    RuleRejected,
    SelfApproval,
)
from aggregates.limits import LIMITS, check_limits
from aggregates.protected import protected_term
from aggregates.rules import (
    FIXED_PER_ACTION,
    MEASURED_QUANTITY,
    ONCE_PER_SUBJECT,
    PER_APPROVED_TIME,
    RULE_KINDS,
    SUBJECT_SCOPES,
)
from aggregates.rules import Rule as Rule  # a rule lives with its kinds; still importable from here

ALLOWED_CONDITIONS = ("participant_kinds", *LIMITS)
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


def check_rule(
    rule_id: str, kind: str, params: dict[str, Any], conditions: dict[str, Any], activity: str = ""
) -> None:
    """Publish-time validation: rewards only, no protected attributes, own data only."""
    for word in [rule_id, activity, *_words(conditions), *_words(params)]:
        # Every name, in every language the federation speaks (aggregates/protected.py).
        term = protected_term(word)
        if term is not None:
            raise ProtectedAttribute(rule_id, f"refers to protected attribute {word!r} ({term})")
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
    check_limits(rule_id, conditions)
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
    if kind == ONCE_PER_SUBJECT:
        scope = params.get("scope", "city")
        if scope == "person":
            raise RuleRejected(
                rule_id,
                'scope "person" promises what no node can check (it cannot tell two wallets are '
                'one person): say "wallet" (once per wallet) or "city" (once per subject, e.g. '
                "once per bike frame)",
            )
        if scope not in SUBJECT_SCOPES:
            raise RuleRejected(rule_id, f"scope {scope!r} is not one of {SUBJECT_SCOPES}")
    if kind == FIXED_PER_ACTION and not params.get("points"):
        raise RuleRejected(rule_id, "points table is empty")
    if kind == PER_APPROVED_TIME:
        if not params.get("units_per_hour"):
            raise RuleRejected(rule_id, "units_per_hour must be a positive whole number")
        if params.get("four_eyes") is not True:
            raise RuleRejected(rule_id, "four_eyes must be true: nobody approves their own hours")


PUBLISH, CHANGE, RETIRE = "publish", "change", "retire"
PENDING, APPROVED, REJECTED = "proposed", "approved", "rejected"


@dataclass(frozen=True)
class Proposal:
    """A rule change someone proposed; it takes effect only once another person approves it."""

    proposal_id: str
    rule_id: str
    action: str  # PUBLISH, CHANGE or RETIRE
    kind: str
    activity: str
    params: dict[str, Any]
    conditions: dict[str, Any]
    proposed_by: str
    reason: str
    effective_from: str
    proposed_at: str
    status: str = PENDING
    decided_by: str | None = None
    decision_ref: str | None = None
    decided_at: str | None = None


class Rulebook(Aggregate):
    """One per city. Every change records who, when (the city's own clock) and why.

    The first rulebook a city starts with is its founding version (`found`). After that a
    rule changes only through a proposal (`propose`) that a different person approves
    (`approve`) with a decision reference; the change applies to activities dated from its
    effective date. `publish` and `retire` remain for a rulebook not yet founded.
    """

    @staticmethod
    def create_id(city: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"civfed:{city}:rulebook")

    @event("Created")
    def __init__(self, city: str) -> None:
        self.city = city
        self.rules: dict[str, Rule] = {}
        # Every version of every rule, oldest first: an activity is judged by the version
        # in force on its own date.
        self.versions: dict[str, list[Rule]] = {}
        self.proposals: dict[str, Proposal] = {}
        self.founded_at: str | None = None

    # -- founding ------------------------------------------------------------
    def found(self, rules: list[tuple[Rule, str, str]], at: dt.datetime) -> None:
        """The founding version: the rules a city starts with, each with who and why."""
        if self.founded_at is not None or self.rules:
            raise RuleRejected(next(iter(self.rules), "rulebook"), "the rulebook is already founded")
        for rule, _, _ in rules:
            check_rule(rule.rule_id, rule.kind, rule.params, rule.conditions, rule.activity)
        for rule, by, why in rules:
            self._published(
                rule.rule_id,
                rule.kind,
                rule.activity,
                rule.params,
                rule.conditions,
                by,
                why,
                at.isoformat(),
                True,
            )

    def _check_unfounded(self, rule_id: str) -> None:
        if self.founded_at is not None:
            raise RuleRejected(rule_id, "the rulebook is founded: a change is proposed and approved")

    def publish(self, rule: Rule, by: str, why: str) -> None:
        self._check_unfounded(rule.rule_id)
        check_rule(rule.rule_id, rule.kind, rule.params, rule.conditions, rule.activity)
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
        at: str | None = None,
        founding: bool = False,
        effective_from: str | None = None,
        proposal_id: str | None = None,
    ) -> None:
        if founding and self.founded_at is None:
            self.founded_at = at
        version = len(self.versions.get(rule_id, [])) + 1
        self._set(Rule(rule_id, kind, activity, version, params, conditions, True, effective_from))

    @event("RuleChanged")
    def _changed(
        self,
        rule_id: str,
        params: dict[str, Any],
        conditions: dict[str, Any],
        by: str,
        why: str,
        effective_from: str | None = None,
        proposal_id: str | None = None,
    ) -> None:
        old = self.rules[rule_id]
        self._set(
            Rule(rule_id, old.kind, old.activity, old.version + 1, params, conditions, True, effective_from)
        )

    def retire(self, rule_id: str, by: str, why: str) -> None:
        self._check_unfounded(rule_id)
        self.get(rule_id)
        self._retired(rule_id, by, why)

    @event("RuleRetired")
    def _retired(
        self,
        rule_id: str,
        by: str,
        why: str,
        effective_from: str | None = None,
        proposal_id: str | None = None,
    ) -> None:
        old = self.rules[rule_id]
        # A retirement keeps the last version's number: the rule stops, its terms do not change.
        self.rules[rule_id] = replace(old, active=False, effective_from=effective_from)
        self.versions.setdefault(rule_id, []).append(self.rules[rule_id])

    def _set(self, rule: Rule) -> None:
        self.rules[rule.rule_id] = rule
        self.versions.setdefault(rule.rule_id, []).append(rule)

    # -- changes: proposed by one person, approved by another -----------------
    def latest(self, rule_id: str) -> Rule | None:
        """The newest version, in force or scheduled."""
        return self.rules.get(rule_id)

    def differs(self, rule: Rule, active: bool = True) -> bool:
        """Whether `rule` (or its retirement) differs from the newest version and from every
        open proposal, so proposing it would say something new."""
        current = self.rules.get(rule.rule_id)
        same_as_current = current is not None and (current.params, current.conditions, current.active) == (
            rule.params,
            rule.conditions,
            active,
        )
        if current is None and not active:
            return False
        if same_as_current or (current is not None and not active and not current.active):
            return False
        action = RETIRE if not active else (PUBLISH if current is None else CHANGE)
        return not any(
            p.status == PENDING
            and p.rule_id == rule.rule_id
            and p.action == action
            and (action == RETIRE or (p.params, p.conditions) == (rule.params, rule.conditions))
            for p in self.proposals.values()
        )

    def propose(
        self,
        proposal_id: str,
        rule: Rule,
        action: str,
        proposed_by: str,
        reason: str,
        effective_from: dt.date | None,
        at: dt.datetime,
    ) -> Proposal:
        """Record a proposed change; nothing about awards changes until it is approved.
        Without an effective date, it applies from the day it is approved."""
        if proposal_id in self.proposals:
            raise InvalidInput("proposal_id", f"proposal {proposal_id} already exists")
        if not reason.strip():
            raise InvalidInput("reason", "a proposed rule change gives its reason")
        if not proposed_by:
            raise InvalidInput("proposed_by", "the person proposing must be named")
        current = self.rules.get(rule.rule_id)
        if action == PUBLISH:
            if current is not None:
                raise RuleRejected(rule.rule_id, "a rule with this id exists; propose a change instead")
            self._check_activity_free(rule)
        elif action in (CHANGE, RETIRE):
            if current is None:
                raise NotFound(f"rule {rule.rule_id!r} is not in the {self.city} rulebook")
            rule = replace(rule, kind=current.kind, activity=current.activity) if action == RETIRE else rule
            if (rule.kind, rule.activity) != (current.kind, current.activity):
                raise RuleRejected(rule.rule_id, "a change keeps the rule's kind and activity")
            if action == CHANGE and not current.active:
                self._check_activity_free(rule)
        else:
            raise InvalidInput("action", f"must be one of {(PUBLISH, CHANGE, RETIRE)}")
        if action != RETIRE:
            check_rule(rule.rule_id, rule.kind, rule.params, rule.conditions, rule.activity)
        if not self.differs(rule, active=action != RETIRE):
            raise RuleRejected(rule.rule_id, "the proposal changes nothing, or is already proposed")
        self._proposed(
            proposal_id,
            rule.rule_id,
            action,
            rule.kind,
            rule.activity,
            rule.params if action != RETIRE else {},
            rule.conditions if action != RETIRE else {},
            proposed_by,
            reason,
            effective_from.isoformat() if effective_from is not None else "",
            at.isoformat(),
        )
        return self.proposals[proposal_id]

    def _check_activity_free(self, rule: Rule) -> None:
        for other in self.rules.values():
            if other.active and other.activity == rule.activity and other.rule_id != rule.rule_id:
                raise RuleRejected(rule.rule_id, f"rule {other.rule_id} rewards {rule.activity!r}")

    @event("ChangeProposed")
    def _proposed(
        self,
        proposal_id: str,
        rule_id: str,
        action: str,
        kind: str,
        activity: str,
        params: dict[str, Any],
        conditions: dict[str, Any],
        proposed_by: str,
        reason: str,
        effective_from: str,
        at: str,
    ) -> None:
        self.proposals[proposal_id] = Proposal(
            proposal_id,
            rule_id,
            action,
            kind,
            activity,
            params,
            conditions,
            proposed_by,
            reason,
            effective_from,
            at,
        )

    def proposal(self, proposal_id: str) -> Proposal:
        found = self.proposals.get(proposal_id)
        if found is None:
            raise NotFound(f"rule change proposal {proposal_id} not found in the {self.city} rulebook")
        return found

    def _check_decidable(self, proposal_id: str, by: str, decision_ref: str) -> Proposal:
        p = self.proposal(proposal_id)
        if p.status != PENDING:
            raise ProposalNotOpen(f"rule change proposal {proposal_id} was already {p.status}")
        if not by:
            raise InvalidInput("decided_by", "the deciding person must be named")
        if by == p.proposed_by:
            raise SelfApproval(
                f"four eyes: {by} proposed this change to rule {p.rule_id}; another person must decide it"
            )
        if not decision_ref.strip():
            raise InvalidInput("decision_ref", "a decision reference is required")
        return p

    def approve(self, proposal_id: str, approved_by: str, decision_ref: str, at: dt.datetime) -> Rule:
        """Approved by someone other than the proposer, the change becomes a new version,
        applying to activities dated from its effective date (today or later)."""
        p = self._check_decidable(proposal_id, approved_by, decision_ref)
        effective = p.effective_from or at.date().isoformat()
        if effective < at.date().isoformat():
            raise RuleRejected(
                p.rule_id, f"effective date {effective} has passed; propose the change again with a new date"
            )
        if p.action == PUBLISH:
            self._check_activity_free(Rule(p.rule_id, p.kind, p.activity, 0, p.params, p.conditions))
        self._approved(proposal_id, approved_by, decision_ref, at.isoformat(), effective)
        return self.rules[p.rule_id]

    @event("ChangeApproved")
    def _approved(
        self, proposal_id: str, approved_by: str, decision_ref: str, at: str, effective_from: str
    ) -> None:
        p = self.proposals[proposal_id]
        self.proposals[proposal_id] = replace(
            p,
            status=APPROVED,
            decided_by=approved_by,
            decision_ref=decision_ref,
            decided_at=at,
            effective_from=effective_from,
        )
        current = self.rules.get(p.rule_id)
        if p.action == RETIRE and current is not None:
            self.rules[p.rule_id] = replace(current, active=False, effective_from=effective_from)
            self.versions.setdefault(p.rule_id, []).append(self.rules[p.rule_id])
            return
        version = 1 if current is None else current.version + 1
        self._set(Rule(p.rule_id, p.kind, p.activity, version, p.params, p.conditions, True, effective_from))

    def reject(self, proposal_id: str, rejected_by: str, reason: str, at: dt.datetime) -> None:
        self._check_decidable(proposal_id, rejected_by, reason)
        self._rejected(proposal_id, rejected_by, reason, at.isoformat())

    @event("ChangeRejected")
    def _rejected(self, proposal_id: str, rejected_by: str, reason: str, at: str) -> None:
        p = self.proposals[proposal_id]
        self.proposals[proposal_id] = replace(
            p, status=REJECTED, decided_by=rejected_by, decision_ref=reason, decided_at=at
        )

    # -- reading ---------------------------------------------------------------
    def get(self, rule_id: str) -> Rule:
        if rule_id not in self.rules:
            raise NotFound(f"rule {rule_id!r} is not in the {self.city} rulebook")
        return self.rules[rule_id]

    def in_force(self, rule_id: str, on: dt.date) -> Rule | None:
        """The version of the rule that applies to an activity dated `on`: the newest one
        whose effective date is not after it."""
        day = on.isoformat()
        chosen = None
        for version in self.versions.get(rule_id, []):
            if version.effective_from is None or version.effective_from <= day:
                chosen = version
        return chosen

    def kind_of(self, activity: str) -> str:
        """The kind of the rule rewarding `activity` (every version of a rule has one kind)."""
        found = [r for r in self.rules.values() if r.activity == activity]
        if not found:
            raise NotFound(f"no active {self.city} rule rewards activity {activity!r}")
        return next((r for r in found if r.active), found[0]).kind

    def for_activity(self, activity: str, on: dt.date | None = None) -> Rule:
        """The rule rewarding `activity` (on `on`, if given: the version in force that day)."""
        for rule_id, rule in self.rules.items():
            if rule.activity != activity:
                continue
            if on is None:
                if rule.active:
                    return rule
                continue
            found = self.in_force(rule_id, on)
            if found is not None and found.active:
                return found
        raise NotFound(f"no active {self.city} rule rewards activity {activity!r}")
