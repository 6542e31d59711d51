"""RulebookService: the city's rules and their full history, open to anyone."""

from __future__ import annotations

import json
from typing import Any

import grpc

from aggregates.rulebook import Rule
from civfed.v1 import rulebook_pb2, rulebook_pb2_grpc
from services.grpc.node import CityNode
from services.rulebook_history import RuleChange, rule_history


class RulebookService(rulebook_pb2_grpc.RulebookServiceServicer):
    def __init__(self, node: CityNode) -> None:
        self.app = node.app

    def GetRulebook(self, request: Any, context: grpc.ServicerContext) -> Any:
        # No credentials: rules that decide people's awards are public.
        rules = [
            rulebook_pb2.Rule(**rule_fields(r), active=r.active) for r in self.app.rulebook.rules.values()
        ]
        history = [
            rulebook_pb2.RuleChange(**rule_fields(c), action=c.action, by=c.by, why=c.why, at=c.at)
            for c in rule_history(self.app, self.app.key)
        ]
        return rulebook_pb2.GetRulebookResponse(city=self.app.key, rules=rules, history=history)


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
