"""How a cross-city redemption ended, read from the events a save stored.

Counted from stored events rather than where the saga decides, so a group commit that
rolls back, or a repeated call answered from its receipt, counts nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aggregates.redemption import ForeignRedemption, Redemption

# (side, outcome) of each event that ends a saga. The home city's hold lapsing, and the
# acceptor reversing a shop's credit because the home city let it lapse, are both "lapsed".
# Keyed by the event classes' qualified names (the classes are made by `@event`).
OUTCOMES: dict[str, tuple[str, str]] = {
    f"{Redemption.__qualname__}.Committed": ("home", "committed"),
    f"{Redemption.__qualname__}.Cancelled": ("home", "cancelled"),
    f"{Redemption.__qualname__}.Expired": ("home", "lapsed"),
    f"{ForeignRedemption.__qualname__}.Committed": ("acceptor", "committed"),
    f"{ForeignRedemption.__qualname__}.Refused": ("acceptor", "refused"),
    f"{ForeignRedemption.__qualname__}.CreditReversed": ("acceptor", "lapsed"),
}


def saga_outcomes(events: Sequence[Any]) -> list[tuple[str, str]]:
    """The (side, outcome) of every saga these events end."""
    found = []
    for e in events:
        kind = type(e)
        if kind.__module__ == Redemption.__module__ and kind.__qualname__ in OUTCOMES:
            found.append(OUTCOMES[kind.__qualname__])
    return found


def count_outcomes(record: Callable[[str, str], None]) -> Callable[[Sequence[Any]], None]:
    """A saved-events listener calling `record(side, outcome)` for each saga ended."""

    def listener(events: Sequence[Any]) -> None:
        for side, outcome in saga_outcomes(events):
            record(side, outcome)

    return listener
