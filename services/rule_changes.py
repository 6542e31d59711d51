"""Rule changes need two people, and awards respect a rule's caps and dates.

The first rulebook a city starts with is its founding version. After that, neither the
rulebook file nor a call changes a rule: each only *proposes* a change, with a reason
(`ProposeRuleChange`, by a `rule_publisher`; or the edited file, proposed by the operator
who deployed it, recorded as `FILE_PROPOSER`). A `council_approver` who is not the proposer
approves it with a decision reference (`ApproveRuleChange`), and only then does it apply,
to activities dated from its effective date; or rejects it (`RejectRuleChange`).

Awards beyond a rule's caps, or outside its dates, are refused and the refusal recorded on
the wallet (`check_limits`); the holder can appeal it (`refused_award`, services/appeals.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from typing import Any
from uuid import uuid4

from aggregates.errors import AwardRefused, InvalidInput, NotFound
from aggregates.limits import limit_refusal, refusal_message
from aggregates.rulebook import CHANGE, PUBLISH, RETIRE, Proposal, Rulebook, check_rule
from aggregates.rules import Rule
from aggregates.vocabulary import check_declared_kinds, check_vocabulary
from aggregates.wallet import Wallet
from services import commands as c
from services.settings.cities import City, RuleSpec, check_rule_funds
from services.unit_of_work import Job, UnitOfWork

# Who proposes the changes an edited rulebook file brings: the operator who deployed the
# file. Not a signed-in person, so any council approver may approve them; see docs/RIGHTS.md.
FILE_PROPOSER = "operator:rulebook-file"


def check_limits(wallet: Wallet, rule: Rule, on: dt.date, amount: int, activity_id: str) -> None:
    """Refuse an award past the rule's caps or outside its dates, recording the refusal on
    the wallet first (the executor saves it with the refusal's receipt)."""
    day, month = wallet.earned_under(rule.rule_id, on)
    refused = limit_refusal(rule.rule_id, rule.conditions, on, amount, day, month)
    if refused is None:
        return
    limit, reason = refused
    # One activity is refused once: a retry (or the same activity sent again) is not a new refusal.
    if activity_id not in wallet.refused:
        message, args = refusal_message(limit, rule.rule_id, rule.conditions, on, amount, day, month)
        wallet.refuse_award(
            rule.rule_id, rule.version, activity_id, limit, reason, on.isoformat(), message, args
        )
    raise AwardRefused(f"{reason}; refusal recorded, appealable as refused_award {activity_id!r}")


def check_city_rules(city: City) -> None:
    """Load-time checks of every rule in the file: protected attributes and proxies first,
    then the city's published vocabulary (both name the rule and the word)."""
    vocabulary = city.config.vocabulary
    check_declared_kinds(city.config.key, vocabulary.actions, vocabulary.events)
    for spec in city.rules:
        check_rule(spec.id, spec.kind, spec.params, spec.conditions, spec.activity)
        check_vocabulary(
            spec.id, spec.kind, spec.activity, spec.params, vocabulary.actions, vocabulary.events
        )
    check_rule_funds(city)


def _rule(spec: RuleSpec) -> Rule:
    return Rule(spec.id, spec.kind, spec.activity, 0, spec.params, spec.conditions)


def file_proposal_id(rule_id: str, action: str, content: dict[str, Any]) -> str:
    """The same edit of the file is proposed once, however often the node restarts."""
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"file:{rule_id}:{action}:{digest}"


def sync_rulebook_file(app: Any, city: City, now: dt.datetime) -> Rulebook:
    """The rulebook to save at start: founded from the file in a new store; otherwise with a
    proposal for each difference between the file and the rulebook (never a new version)."""
    check_city_rules(city)
    uow = UnitOfWork(app)
    book = uow.find(Rulebook.create_id(city.config.key), Rulebook)
    if book is None:
        book = Rulebook(city.config.key)
        book.found([(_rule(spec), spec.published_by, spec.reason) for spec in city.rules], now)
        return book
    for spec in city.rules:
        rule = _rule(spec)
        if not book.differs(rule):
            continue
        action = PUBLISH if book.latest(spec.id) is None else CHANGE
        content = {"params": spec.params, "conditions": spec.conditions, "from": spec.effective_from}
        proposal_id = file_proposal_id(spec.id, action, content)
        if proposal_id not in book.proposals:
            book.propose(proposal_id, rule, action, FILE_PROPOSER, spec.reason, spec.effective_from, now)
    wanted = {spec.id for spec in city.rules}
    for rule_id, current in list(book.rules.items()):
        if rule_id in wanted or not book.differs(current, active=False):
            continue
        proposal_id = file_proposal_id(rule_id, RETIRE, {"version": current.version})
        if proposal_id not in book.proposals:
            reason = "removed from the published rulebook file"
            book.propose(proposal_id, current, RETIRE, FILE_PROPOSER, reason, None, now)
    return book


def _book(city: str, uow: UnitOfWork) -> Rulebook:
    return uow.get(Rulebook.create_id(city), Rulebook, "rulebook")


def proposal_view(p: Proposal) -> dict[str, Any]:
    return {
        "proposal_id": p.proposal_id,
        "rule_id": p.rule_id,
        "action": p.action,
        "kind": p.kind,
        "activity": p.activity,
        "params": p.params,
        "conditions": p.conditions,
        "proposed_by": p.proposed_by,
        "reason": p.reason,
        "effective_from": p.effective_from,
        "proposed_at": p.proposed_at,
        "status": p.status,
        "decided_by": p.decided_by or "",
        "decision_ref": p.decision_ref or "",
        "decided_at": p.decided_at or "",
    }


class RuleChangeCommands:
    """Mixed into CityApplication: proposing, approving and rejecting rule changes."""

    city: City
    key: str
    clock: Callable[[], dt.datetime]
    job: Callable[[c.Command], Job]
    repository: Any

    def rule_change_handlers(
        self,
    ) -> dict[type[c.Command], Callable[[Any, UnitOfWork], dict[str, Any]]]:
        return {
            c.ProposeRuleChange: self._propose_rule_change,
            c.ApproveRuleChange: self._approve_rule_change,
            c.RejectRuleChange: self._reject_rule_change,
        }

    def propose_rule_change(
        self,
        key: str,
        rule_id: str,
        action: str,
        kind: str,
        activity: str,
        params: dict[str, Any],
        conditions: dict[str, Any],
        reason: str,
        effective_from: dt.date | None,
        proposed_by: str,
    ) -> Job:
        return self.job(
            c.ProposeRuleChange(
                key, rule_id, action, kind, activity, params, conditions, reason, effective_from, proposed_by
            )
        )

    def approve_rule_change(self, key: str, proposal_id: str, decision_ref: str, by: str) -> Job:
        return self.job(c.ApproveRuleChange(key, proposal_id, decision_ref, by))

    def reject_rule_change(self, key: str, proposal_id: str, reason: str, by: str) -> Job:
        return self.job(c.RejectRuleChange(key, proposal_id, reason, by))

    def _propose_rule_change(self, cmd: c.ProposeRuleChange, uow: UnitOfWork) -> dict[str, Any]:
        book = _book(self.key, uow)
        now = self.clock()
        if cmd.effective_from is not None and cmd.effective_from < now.date():
            raise InvalidInput("effective_from", "a change takes effect from today or later")
        kind, activity = cmd.kind, cmd.activity
        current = book.latest(cmd.rule_id)
        if current is not None and cmd.action != PUBLISH:
            # A change or retirement keeps the rule's kind and activity; the caller may omit them.
            kind, activity = kind or current.kind, activity or current.activity
        vocabulary = self.city.config.vocabulary
        if cmd.action != RETIRE:
            try:
                check_rule(cmd.rule_id, kind, cmd.params, cmd.conditions, activity)
            except (KeyError, TypeError, AttributeError) as exc:
                raise InvalidInput("params_json", f"malformed parameters for a {kind} rule ({exc})") from None
            check_vocabulary(cmd.rule_id, kind, activity, cmd.params, vocabulary.actions, vocabulary.events)
        rule = Rule(cmd.rule_id, kind, activity, 0, cmd.params, cmd.conditions)
        proposal = book.propose(
            str(uuid4()), rule, cmd.action, cmd.proposed_by, cmd.reason, cmd.effective_from, now
        )
        return proposal_view(proposal)

    def _approve_rule_change(self, cmd: c.ApproveRuleChange, uow: UnitOfWork) -> dict[str, Any]:
        book = _book(self.key, uow)
        rule = book.approve(cmd.proposal_id, cmd.approved_by, cmd.decision_ref, self.clock())
        return {**proposal_view(book.proposal(cmd.proposal_id)), "version": rule.version}

    def _reject_rule_change(self, cmd: c.RejectRuleChange, uow: UnitOfWork) -> dict[str, Any]:
        book = _book(self.key, uow)
        book.reject(cmd.proposal_id, cmd.rejected_by, cmd.reason, self.clock())
        return proposal_view(book.proposal(cmd.proposal_id))

    def rule_proposals(self, status: str = "") -> list[dict[str, Any]]:
        """Every proposal, oldest first (optionally only those with `status`)."""
        book = UnitOfWork(self).find(Rulebook.create_id(self.key), Rulebook)
        if book is None:
            raise NotFound(f"{self.key} has no rulebook")
        return [proposal_view(p) for p in book.proposals.values() if not status or p.status == status]
