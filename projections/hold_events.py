"""Which public events consume a hold (shared by the read models and the batch planner)."""

from __future__ import annotations


def is_hold_consumed(type_name: str) -> bool:
    """A hold that left the wallet: spent locally or burned for a partner city."""
    return type_name.endswith((".HoldSpent", ".HoldBurned"))
