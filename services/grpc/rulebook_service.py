"""RulebookService: the city's rules, their full history and proposed changes, open to anyone
to read; a rule_publisher proposes a change and a council_approver (another person) decides it."""

from __future__ import annotations

import json
from typing import Any

import grpc

from aggregates.rulebook import Rule
from civfed.v1 import rulebook_pb2, rulebook_pb2_grpc
from services.grpc import requests as rq
from services.grpc.calls import Calls, as_staff
from services.grpc.node import CityNode
from services.rulebook_history import RuleChange, rule_history


class RulebookService(rulebook_pb2_grpc.RulebookServiceServicer):
    def __init__(self, node: CityNode) -> None:
        self.node = node
        self.app = node.app
        self.call = Calls()

    def GetRulebook(self, request: Any, context: grpc.ServicerContext) -> Any:
        # No credentials: rules that decide people's awards are public.
        rules = [
            rulebook_pb2.Rule(**rule_fields(r), active=r.active, effective_from=r.effective_from or "")
            for r in self.app.rulebook.rules.values()
        ]
        history = [
            rulebook_pb2.RuleChange(
                **rule_fields(c),
                action=c.action,
                by=c.by,
                why=c.why,
                at=c.at,
                approved_by=c.approved_by,
                decision_ref=c.decision_ref,
                effective_from=c.effective_from,
                founding=c.founding,
                proposed_at=c.proposed_at,
            )
            for c in rule_history(self.app, self.app.key)
        ]
        return rulebook_pb2.GetRulebookResponse(city=self.app.key, rules=rules, history=history)

    def ProposeRuleChange(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.ProposeRuleChange)
        r = c.request
        out = self.node.execute(
            self.app.propose_rule_change(
                c.key,
                r.rule_id,
                r.action,
                r.kind,
                r.activity,
                r.params_json,
                r.conditions_json,
                r.reason,
                r.effective_from,
                as_staff(c.who).ref,
            )
        )
        return proposal_message(out)

    def ApproveRuleChange(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.ApproveRuleChange)
        r = c.request
        out = self.node.execute(
            self.app.approve_rule_change(c.key, r.proposal_id, r.decision_ref, as_staff(c.who).ref)
        )
        self.app.refresh_rulebook()
        return proposal_message(out)

    def RejectRuleChange(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.RejectRuleChange)
        r = c.request
        out = self.node.execute(
            self.app.reject_rule_change(c.key, r.proposal_id, r.reason, as_staff(c.who).ref)
        )
        return proposal_message(out)

    def ListRuleProposals(self, request: Any, context: grpc.ServicerContext) -> Any:
        # Public like the rulebook: a change is visible from the moment it is proposed.
        r = rq.parse(rq.ListRuleProposals, request)
        proposals = [proposal_message(p) for p in self.app.rule_proposals(r.status)]
        return rulebook_pb2.ListRuleProposalsResponse(proposals=proposals)


def proposal_message(p: dict[str, Any]) -> Any:
    fields = {k: v for k, v in p.items() if k not in ("params", "conditions", "version")}
    return rulebook_pb2.RuleProposal(
        **fields,
        params_json=json.dumps(p["params"], sort_keys=True),
        conditions_json=json.dumps(p["conditions"], sort_keys=True),
    )


def rule_fields(r: Rule | RuleChange) -> dict[str, Any]:
    """The fields a rule and a change of it share on the wire, parameters as sorted JSON."""
    return {
        "rule_id": r.rule_id,
        "version": r.version,
        "kind": r.kind,
        "activity": r.activity,
        "params_json": json.dumps(r.params, sort_keys=True),
        "conditions_json": json.dumps(r.conditions, sort_keys=True),
    }
