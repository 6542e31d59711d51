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

# Exactly what each public event type carries, beside its envelope (city,
# notification id, aggregate id, version, type, time). Everything else, and every
# other event type, stays in the city's own store. docs/RIGHTS.md lists the same
# table, and a test holds the two together.
#
# What is left out, on purpose: every reference a counterpart sees (a voucher's
# QR id, a signed voucher's reference, a redemption id, the accepting city's saga
# and its shop), explanations, names, purchase and activity references. Hold ids
# are random and never shown to anyone outside the city, so they only pair a
# hold with its release, spend or burn inside one wallet's stream.
PUBLIC_FIELDS: dict[str, tuple[str, ...]] = {
    "Wallet.Opened": ("participant_kind",),
    "Wallet.Credited": ("amount", "rule_id", "rule_version", "quantity"),
    "Wallet.Progressed": ("rule_id", "rule_version", "quantity"),
    "Wallet.LotOpened": ("amount", "on", "ends_on"),
    "Wallet.Depreciated": ("amount", "on"),
    "Wallet.LotsDrawn": ("amount", "on", "drawn_for"),
    "Wallet.Spent": ("amount", "category", "spent_for"),
    "Wallet.TaxPaid": ("amount",),
    "Wallet.HoldPlaced": ("hold_id", "amount"),
    "Wallet.HoldReleased": ("hold_id",),
    "Wallet.HoldSpent": ("hold_id", "category"),
    "Wallet.HoldBurned": ("hold_id", "partner_city"),
    "Wallet.AppealLodged": ("subject_kind",),
    "Wallet.CloseScheduled": (),
    "Wallet.Lapsed": ("amount",),
    "Wallet.Erased": (),
    "Wallet.Closed": (),
    "Merchant.Registered": ("category",),
    # A shop's own record of what it was paid: the shop, never the wallet.
    "Merchant.Paid": ("amount", "kind"),
    "Merchant.PaymentReversed": ("amount", "kind"),
    "Prize.Offered": ("merchant_id", "cost"),
    "Prize.Claimed": (),
    "Appeal.Filed": ("wallet_id", "subject_kind"),
    "Appeal.Decided": (),
    # The accepting city's settlement claim: the home city, the home amount and
    # what its shop was credited. No voucher, shop or wallet.
    "ForeignRedemption.Committed": ("home_city", "home_amount", "credit"),
}


# Events whose aggregate id a counterpart has seen (the accepting city's saga id is the
# redemption id its shop got back): published with an empty aggregate id.
UNNAMED = ("ForeignRedemption.Committed",)


def payload_of(type_name: str, event: Any) -> events_pb2.Payload:
    """The allowlisted fields of one domain event (see PUBLIC_FIELDS)."""
    payload = events_pb2.Payload()
    for name in PUBLIC_FIELDS.get(type_name, ()):
        value = getattr(event, name, None)
        if name in AMOUNT_FIELDS:
            if isinstance(value, int) and not isinstance(value, bool):
                payload.amounts[name] = value
        elif isinstance(value, str | UUID):
            payload.refs[name] = str(value)
    return payload


def topic_for(city: str) -> str:
    """The Kafka topic a city publishes its integration events to."""
    return f"civfed.{city}.events"


def to_integration_event(city: str, notification_id: int, event: Any) -> events_pb2.Event | None:
    """The public envelope for one stored domain event, or None if it stays internal."""
    type_name = type(event).__qualname__
    if type_name not in PUBLIC_FIELDS:
        return None
    out = events_pb2.Event(
        city=city,
        notification_id=notification_id,
        aggregate_id="" if type_name in UNNAMED else str(event.originator_id),
        version=event.originator_version,
        type=type_name,
        payload=payload_of(type_name, event),
    )
    out.time.FromDatetime(event.timestamp)
    return out


def decode(data: bytes) -> events_pb2.Event:
    event = events_pb2.Event()
    event.ParseFromString(data)
    return event
