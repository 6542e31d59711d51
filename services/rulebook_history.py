"""A city's rulebook and its full history, read from the event-sourced Rulebook.

Public by design: who changed which rule, when, why, and the version it became.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

from aggregates.rulebook import Rulebook
from services.event_log import event_type

ACTIONS = {
    "Rulebook.RulePublished": "published",
    "Rulebook.RuleChanged": "changed",
    "Rulebook.RuleRetired": "retired",
}


@dataclass(frozen=True)
class RuleChange:
    rule_id: str
    version: int
    action: str
    by: str
    why: str
    at: str
    kind: str
    activity: str
    params: dict[str, Any]
    conditions: dict[str, Any]


def rule_history(app: Application[UUID], city: str) -> list[RuleChange]:
    changes: list[RuleChange] = []
    current: dict[str, RuleChange] = {}
    for e in app.events.get(Rulebook.create_id(city)):
        action = ACTIONS.get(event_type(e))
        if action is None:
            continue
        f: dict[str, Any] = vars(e)
        before = current.get(f["rule_id"])
        version = 1 if before is None else before.version + (action == "changed")
        change = RuleChange(
            rule_id=f["rule_id"],
            version=version,
            action=action,
            by=f["by"],
            why=f["why"],
            at=f["timestamp"].isoformat(),
            kind=f.get("kind") or (before.kind if before else ""),
            activity=f.get("activity") or (before.activity if before else ""),
            params=f.get("params", before.params if before else {}),
            conditions=f.get("conditions", before.conditions if before else {}),
        )
        current[change.rule_id] = change
        changes.append(change)
    return changes


def render(city: str, changes: list[RuleChange]) -> str:
    """The history as text, for `civfed rules show <city>`."""
    lines = [f"Rulebook of {city}: {len(changes)} change(s), oldest first", ""]
    for c in changes:
        lines.append(f"{c.at}  {c.rule_id} v{c.version} {c.action} by {c.by}")
        lines.append(f"    why: {c.why}")
        if c.action != "retired":
            lines.append(f"    {c.kind} for activity {c.activity!r}")
            lines.append(f"    params: {json.dumps(c.params, sort_keys=True)}")
            if c.conditions:
                lines.append(f"    conditions: {json.dumps(c.conditions, sort_keys=True)}")
    return "\n".join(lines)
