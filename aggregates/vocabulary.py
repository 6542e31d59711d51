"""A city's published vocabulary: the action and event kinds its rules may name.

Each city declares, in its city file, every kind of action and event it rewards, with its
purpose in plain words. A rule may name only declared kinds: its activity (an action or,
for a once-per-event rule, an event kind) and every action in a points table. So the list
of what a city pays for is short, public and read before any rule is, and a new kind is a
change to the city file that people can see, not a word slipped into a points table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aggregates.errors import ProtectedAttribute, RuleRejected
from aggregates.protected import protected_term
from aggregates.rules import FIXED_PER_ACTION, ONCE_PER_SUBJECT


def check_declared_kinds(city: str, actions: Mapping[str, str], events: Mapping[str, str]) -> None:
    """The vocabulary itself names no protected attribute and gives every kind a purpose."""
    for group, kinds in (("action", actions), ("event", events)):
        for name, purpose in kinds.items():
            term = protected_term(name)
            if term is not None:
                raise ProtectedAttribute(
                    f"{city} vocabulary", f"{group} kind {name!r} refers to protected attribute ({term})"
                )
            if not purpose.strip():
                raise RuleRejected(f"{city} vocabulary", f"{group} kind {name!r} needs a purpose")


def named_kinds(kind: str, activity: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """The kinds a rule names, each with whether it must be an "action" or an "event"."""
    is_event = kind == ONCE_PER_SUBJECT and params.get("subject_label") == "event"
    names = [(activity, "event" if is_event else "action")]
    if kind == FIXED_PER_ACTION and isinstance(params.get("points"), dict):
        names += [(str(action), "action") for action in params["points"]]
    return names


def check_vocabulary(
    rule_id: str,
    kind: str,
    activity: str,
    params: dict[str, Any],
    actions: Mapping[str, str],
    events: Mapping[str, str],
) -> None:
    """Refuse a rule that names a kind the city has not declared, naming the rule and kind."""
    for name, group in named_kinds(kind, activity, params):
        declared = events if group == "event" else actions
        if name not in declared:
            raise RuleRejected(
                rule_id,
                f"names {group} kind {name!r}, which the city's vocabulary does not declare "
                f"(declared {group}s: {', '.join(sorted(declared)) or 'none'})",
            )
