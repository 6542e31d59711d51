"""RulebookService: the city's rules and their full history, open to anyone."""

from __future__ import annotations

import json
from typing import Any

import grpc

from civfed.v1 import rulebook_pb2, rulebook_pb2_grpc
from services.grpc.node import CityNode
from services.rulebook_history import rule_history


class RulebookService(rulebook_pb2_grpc.RulebookServiceServicer):
    def __init__(self, node: CityNode) -> None:
        self.app = node.app

    def GetRulebook(self, request: Any, context: grpc.ServicerContext) -> Any:
        # No credentials: rules that decide people's awards are public.
        book = self.app.rulebook
        rules = [
            rulebook_pb2.Rule(
                rule_id=r.rule_id,
                version=r.version,
                kind=r.kind,
                activity=r.activity,
                active=r.active,
                params_json=json.dumps(r.params, sort_keys=True),
                conditions_json=json.dumps(r.conditions, sort_keys=True),
            )
            for r in book.rules.values()
        ]
        history = [
            rulebook_pb2.RuleChange(
                rule_id=c.rule_id,
                version=c.version,
                action=c.action,
                by=c.by,
                why=c.why,
                at=c.at,
                kind=c.kind,
                activity=c.activity,
                params_json=json.dumps(c.params, sort_keys=True),
                conditions_json=json.dumps(c.conditions, sort_keys=True),
            )
            for c in rule_history(self.app, self.app.key)
        ]
        return rulebook_pb2.GetRulebookResponse(city=self.app.key, rules=rules, history=history)
