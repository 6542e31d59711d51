"""k-anonymity for published figures: a cell from fewer than K people is withheld."""

from __future__ import annotations

from typing import Any

K_ANONYMITY = 10


def cell(value: int, people: int, k: int = K_ANONYMITY) -> dict[str, Any]:
    """A published cell. A suppressed cell carries neither its value nor its head count."""
    if people < k:
        return {"suppressed": True, "reason": f"fewer than {k} people"}
    return {"value": value, "people": people}
