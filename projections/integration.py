"""Domain events to public integration events (proto civfed.v1.Event).

Only an allowlist of fields crosses the boundary: amounts, pseudonymous ids,
rule ids and closed-vocabulary codes. Explanations, names, purchase references
and activity ids stay in the city's own store.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from civfed.v1 import events_pb2

# "home_amount" is in the home city's units and "credit" in the accepting
# city's; every other amount is in the units of the city that emits the event.
AMOUNT_FIELDS = ("amount", "quantity", "cost", "rule_version", "home_amount", "credit")
REF_FIELDS = (
    "wallet_id",
    "merchant_id",
    "hold_id",
    "prize_id",
    "rule_id",
    "category",
    "participant_kind",
    "subject_kind",
)
# Lots of a depreciating currency: the days a lot was minted, re-based or ends, and
# whether a draw paid a shop or municipal tax (closed vocabulary).
LOT_FIELDS = ("on", "ends_on", "drawn_for")

# Aggregates whose events are public. Receipts, subject claims and rulebooks are
# not: rulebooks are published separately, the others are internal bookkeeping.
PUBLIC_AGGREGATES = (
    "Wallet",
    "Merchant",
    "Prize",
    "Voucher",
    "Redemption",
    "Settlement",
    "Federation",
    "Appeal",
)
# Single public events of otherwise internal aggregates. The accepting city's
# saga stays internal (its voucher reference and shop would link two cities'
# streams); only its settlement claim is published: the home city, the home
# amount and what the shop was credited.
PUBLIC_EVENTS = ("ForeignRedemption.Committed",)


def _is_exported(type_name: str) -> bool:
    return type_name.split(".", 1)[0] in PUBLIC_AGGREGATES or type_name in PUBLIC_EVENTS


def payload_of(event: Any) -> events_pb2.Payload:
    """The allowlisted fields of a domain event, whatever its type.

    Events added by other flows (for example a cross-city hold burn carrying
    `acceptor_city`) pass through the same filter without code here.
    """
    payload = events_pb2.Payload()
    for name, value in vars(event).items():
        if name in ("originator_id", "originator_version", "timestamp"):
            continue
        if name in AMOUNT_FIELDS and isinstance(value, int) and not isinstance(value, bool):
            payload.amounts[name] = value
        elif name in REF_FIELDS + LOT_FIELDS and isinstance(value, str | UUID):
            payload.refs[name] = str(value)
        elif name.endswith("_city") and isinstance(value, str):
            payload.refs[name] = value
        elif name.endswith("_id") and isinstance(value, UUID):
            payload.refs[name] = str(value)
    return payload


def to_integration_event(city: str, notification_id: int, event: Any) -> events_pb2.Event | None:
    """The public envelope for one stored domain event, or None if it stays internal."""
    type_name = type(event).__qualname__
    if not _is_exported(type_name):
        return None
    out = events_pb2.Event(
        city=city,
        notification_id=notification_id,
        aggregate_id=str(event.originator_id),
        version=event.originator_version,
        type=type_name,
        payload=payload_of(event),
    )
    out.time.FromDatetime(event.timestamp)
    return out


def decode(data: bytes) -> events_pb2.Event:
    event = events_pb2.Event()
    event.ParseFromString(data)
    return event
