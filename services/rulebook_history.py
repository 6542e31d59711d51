"""A city's rulebook and its full history, read from the event-sourced Rulebook.

Public by design: who proposed which rule change and why, who approved it under which
decision, from when it applies, and the version it became. Times are the events' own
(the city's clock when they were recorded), never the time of reading.

`RulebookReader` opens a city's store to read only: `civfed rules show` uses it, so
showing a rulebook never records anything, whatever the rulebook file now says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application

from aggregates.rulebook import CHANGE, PUBLISH, RETIRE, Rulebook
from services.event_log import event_type

ACTIONS = {
    "Rulebook.RulePublished": "published",
    "Rulebook.RuleChanged": "changed",
    "Rulebook.RuleRetired": "retired",
}
PROPOSED_ACTIONS = {PUBLISH: "published", CHANGE: "changed", RETIRE: "retired"}


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
    # Who approved the change and under which decision ("" for the founding version and
    # for changes made before approvals were required); from when it applies.
    approved_by: str = ""
    decision_ref: str = ""
    effective_from: str = ""
    founding: bool = False
    proposed_at: str = ""


class RulebookReader(Application[UUID]):
    """A city's store opened only to read its rulebook (no founding, no proposals)."""

    def __init__(self, name: str, env: dict[str, str] | None = None) -> None:
        self.name = name
        super().__init__(env)


def _at(f: dict[str, Any]) -> str:
    at = f.get("at")
    return at if isinstance(at, str) and at else str(f["timestamp"].isoformat())


def rule_history(app: Application[UUID], city: str) -> list[RuleChange]:
    changes: list[RuleChange] = []
    current: dict[str, RuleChange] = {}
    proposals: dict[str, dict[str, Any]] = {}
    for e in app.events.get(Rulebook.create_id(city)):
        f: dict[str, Any] = vars(e)
        name = event_type(e)
        if name == "Rulebook.ChangeProposed":
            proposals[f["proposal_id"]] = f
            continue
        if name == "Rulebook.ChangeApproved":
            p = proposals[f["proposal_id"]]
            action = PROPOSED_ACTIONS[p["action"]]
            fields = {
                "rule_id": p["rule_id"],
                "by": p["proposed_by"],
                "why": p["reason"],
                "kind": p["kind"],
                "activity": p["activity"],
                "approved_by": f["approved_by"],
                "decision_ref": f["decision_ref"],
                "effective_from": f["effective_from"],
                "proposed_at": p["at"],
            }
            if action != "retired":
                fields.update(params=p["params"], conditions=p["conditions"])
        elif name in ACTIONS:
            action = ACTIONS[name]
            fields = {
                "rule_id": f["rule_id"],
                "by": f["by"],
                "why": f["why"],
                "founding": bool(f.get("founding")),
                "effective_from": f.get("effective_from") or "",
            }
            for key in ("kind", "activity", "params", "conditions"):
                if key in f:
                    fields[key] = f[key]
        else:
            continue
        before = current.get(fields["rule_id"])
        version = 1 if before is None else before.version + (action != "retired")
        change = RuleChange(
            rule_id=fields["rule_id"],
            version=version,
            action=action,
            by=fields["by"],
            why=fields["why"],
            at=_at(f),
            kind=fields.get("kind") or (before.kind if before else ""),
            activity=fields.get("activity") or (before.activity if before else ""),
            params=fields.get("params", before.params if before else {}),
            conditions=fields.get("conditions", before.conditions if before else {}),
            approved_by=fields.get("approved_by", ""),
            decision_ref=fields.get("decision_ref", ""),
            effective_from=fields.get("effective_from", ""),
            founding=fields.get("founding", False),
            proposed_at=fields.get("proposed_at", ""),
        )
        current[change.rule_id] = change
        changes.append(change)
    return changes


def render(city: str, changes: list[RuleChange], proposals: list[dict[str, Any]] | None = None) -> str:
    """The history as text, for `civfed rules show <city>`; then any open proposals."""
    lines = [f"Rulebook of {city}: {len(changes)} change(s), oldest first", ""]
    for c in changes:
        founding = " (founding version)" if c.founding else ""
        lines.append(f"{c.at}  {c.rule_id} v{c.version} {c.action} by {c.by}{founding}")
        lines.append(f"    why: {c.why}")
        if c.approved_by:
            lines.append(
                f"    proposed {c.proposed_at} by {c.by}; "
                f"approved by {c.approved_by}, decision {c.decision_ref}"
            )
        if c.effective_from:
            lines.append(f"    applies to activities from {c.effective_from}")
        if c.action != "retired":
            lines.append(f"    {c.kind} for activity {c.activity!r}")
            lines.append(f"    params: {json.dumps(c.params, sort_keys=True)}")
            if c.conditions:
                lines.append(f"    conditions: {json.dumps(c.conditions, sort_keys=True)}")
    open_ = [p for p in proposals or [] if p["status"] == "proposed"]
    if open_:
        lines += ["", f"Proposed, awaiting a council approver: {len(open_)}"]
        for p in open_:
            when = p["effective_from"] or "the day it is approved"
            lines.append(f"{p['proposed_at']}  {p['rule_id']} {p['action']} proposed by {p['proposed_by']}")
            lines.append(f"    why: {p['reason']}; would apply from {when}; proposal {p['proposal_id']}")
            if p["action"] != RETIRE:
                lines.append(f"    params: {json.dumps(p['params'], sort_keys=True)}")
    return "\n".join(lines)


def proposals_of(app: Application[UUID], city: str) -> list[dict[str, Any]]:
    """Every proposal as stored (read through the aggregate)."""
    from services.rule_changes import proposal_view

    try:
        book: Rulebook = app.repository.get(Rulebook.create_id(city))
    except AggregateNotFoundError:
        return []
    return [proposal_view(p) for p in book.proposals.values()]
