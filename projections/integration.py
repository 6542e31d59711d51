"""Domain events to public integration events (proto civfed.v1.Event).

Only an allowlist of fields crosses the boundary: amounts, pseudonymous ids,
rule ids and closed-vocabulary codes. Explanations, names, purchase references,
activity ids and trip distances stay in the city's own store.

No wallet id crosses it either: a wallet is named by its pseudonym, which whoever
builds the events computes from the wallet's own key (services/privacy/pseudonyms.py)
and passes in as `name`. Once the key is erased, no message names the wallet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.utils import resolve_topic

from civfed.v1 import events_pb2

# "home_amount" is in the home city's units and "credit" in the accepting
# city's; every other amount is in the units of the city that emits the event.
AMOUNT_FIELDS = ("amount", "cost", "rule_version", "home_amount", "credit", "budget")

# Refs that hold a wallet id: published as the wallet's pseudonym.
WALLET_REFS = ("wallet_id",)

# wallet id -> the wallet's pseudonym (hex)
Namer = Callable[[UUID], str]


class CityLog(Protocol):
    """What the relay and the log source read: a city's notification log and its
    wallets' pseudonyms (a city application)."""

    @property
    def recorder(self) -> Any: ...
    @property
    def mapper(self) -> Any: ...
    def pseudonym(self, wallet_id: UUID) -> str: ...
    def owner_pseudonym(self, aggregate_id: UUID) -> str | None:
        """The pseudonym of the wallet owning another aggregate (an appeal), if any."""

    def public_domain_event(self, stored: Any) -> Any:
        """A stored event decoded as far as its public fields need (PUBLIC_FIELDS): personal
        fields no public event carries may stay sealed."""

    def prefetch_pseudonyms(self, wallet_ids: Iterable[UUID]) -> None:
        """Make naming these wallets cheap: their keys read in as few queries as can be."""


# Exactly what each public event type carries, beside its envelope (city,
# notification id, aggregate id, version, type, time). Everything else, and every
# other event type, stays in the city's own store. docs/RIGHTS.md lists the same
# table, and a test holds the two together.
#
# What is left out, on purpose: every reference a counterpart sees (a voucher's
# QR id, a signed voucher's reference, a redemption id, the accepting city's saga
# and its shop), explanations, names, purchase and activity references, a trip's
# distance (`quantity`: per person, and only the award needs it). Hold ids
# are random and never shown to anyone outside the city, so they only pair a
# hold with its release, spend or burn inside one wallet's stream.
PUBLIC_FIELDS: dict[str, tuple[str, ...]] = {
    "Wallet.Opened": ("participant_kind",),
    # `fund`: the fund the award drew on, which its rule already determines (city.toml).
    "Wallet.Credited": ("amount", "rule_id", "rule_version", "fund"),
    "Wallet.Progressed": ("rule_id", "rule_version"),
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
    # Named by the pseudonym the erasure recorded: each read model drops or anonymises
    # what it holds under that name.
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
    # A fund's budget and its top-ups are public decisions of the council: the fund and its
    # budget; a top-up's amount. Never who proposed or approved it, nor any free text (the
    # reason, the decision reference): the fund's name, funder and period are in city.toml.
    "Fund.Declared": ("fund_id", "budget"),
    "Fund.ToppedUp": ("amount",),
}


# Events whose aggregate id a counterpart has seen (the accepting city's saga id is the
# redemption id its shop got back): published with an empty aggregate id.
UNNAMED = ("ForeignRedemption.Committed",)


def payload_of(type_name: str, event: Any, name: Namer) -> events_pb2.Payload:
    """The allowlisted fields of one domain event (see PUBLIC_FIELDS), wallets by pseudonym."""
    payload = events_pb2.Payload()
    for field in PUBLIC_FIELDS.get(type_name, ()):
        value = getattr(event, field, None)
        if field in AMOUNT_FIELDS:
            if isinstance(value, int) and not isinstance(value, bool):
                payload.amounts[field] = value
        elif field in WALLET_REFS:
            if isinstance(value, UUID):
                payload.refs[field] = name(value)
        elif isinstance(value, str | UUID):
            payload.refs[field] = str(value)
    return payload


def topic_for(city: str) -> str:
    """The Kafka topic a city publishes its integration events to."""
    return f"civfed.{city}.events"


def aggregate_name(type_name: str, event: Any, name: Namer) -> str:
    """How the envelope names the event's aggregate: a wallet by its pseudonym."""
    if type_name in UNNAMED:
        return ""
    recorded = getattr(event, "pseudonym", None)
    if type_name == "Wallet.Erased" and isinstance(recorded, str) and recorded:
        return recorded  # recorded while the key still existed
    if type_name.startswith("Wallet."):
        return name(event.originator_id)
    return str(event.originator_id)


def to_integration_event(city: str, notification_id: int, event: Any, name: Namer) -> events_pb2.Event | None:
    """The public envelope for one stored domain event, or None if it stays internal.

    `name`: the city's wallet pseudonyms (wallet id -> pseudonym)."""
    type_name = type(event).__qualname__
    if type_name not in PUBLIC_FIELDS:
        return None
    out = events_pb2.Event(
        city=city,
        notification_id=notification_id,
        aggregate_id=aggregate_name(type_name, event, name),
        version=event.originator_version,
        type=type_name,
        payload=payload_of(type_name, event, name),
    )
    set_time(out, event.timestamp)
    return out


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NAIVE_EPOCH = dt.datetime(1970, 1, 1)


def set_time(out: events_pb2.Event, when: dt.datetime) -> None:
    """What `out.time.FromDatetime(when)` sets (a naive time taken as UTC), without its
    round trip through a time tuple."""
    since = when - (_EPOCH if when.tzinfo is not None else _NAIVE_EPOCH)
    out.time.seconds = since.days * 86400 + since.seconds
    out.time.nanos = since.microseconds * 1000


@lru_cache(maxsize=4096)
def type_of_topic(topic: str) -> str:
    """The event type a stored event's topic names ("Wallet.Credited")."""
    return str(resolve_topic(topic).__qualname__)


def is_public(topic: str) -> bool:
    """Whether a stored event of this topic becomes a public event (before decoding it)."""
    return type_of_topic(topic) in PUBLIC_FIELDS


def integration_events(city: str, rows: Sequence[Any], app: CityLog) -> list[events_pb2.Event | None]:
    """`to_integration_event` over a page of stored notifications, for each in order.

    Cheaper than one at a time: events that stay internal are not decoded at all, personal
    fields are left sealed (no public field is personal), and the keys of every wallet the
    page names are read at once before any is named."""
    decoded = [app.public_domain_event(n) if is_public(n.topic) else None for n in rows]
    wallets: list[UUID] = []
    for event in decoded:
        if event is None:
            continue
        if type(event).__qualname__.startswith("Wallet."):
            wallets.append(event.originator_id)
        for ref in WALLET_REFS:
            value = getattr(event, ref, None)
            if isinstance(value, UUID):
                wallets.append(value)
    if wallets:
        app.prefetch_pseudonyms(wallets)
    # Each wallet named once per page: a page is converted at one moment of the key store.
    names: dict[UUID, str] = {}

    def name(wallet_id: UUID) -> str:
        found = names.get(wallet_id)
        if found is None:
            found = names[wallet_id] = app.pseudonym(wallet_id)
        return found

    return [
        None if event is None else to_integration_event(city, n.id, event, name)
        for n, event in zip(rows, decoded, strict=True)
    ]


# Public events of aggregates a wallet owns, keyed by the owner's pseudonym.
OWNED_BY_A_WALLET = ("Appeal.",)


def partition_key(event: events_pb2.Event, owner: str | None) -> bytes:
    """The message key: the wallet's pseudonym for its own events and for events of what
    it owns (an appeal), so they share a partition and keep their order: a read model
    sees a wallet's appeal before the wallet's erasure. Otherwise the aggregate id."""
    return (event.payload.refs.get("wallet_id") or owner or event.aggregate_id).encode()


def decode(data: bytes) -> events_pb2.Event:
    event = events_pb2.Event()
    event.ParseFromString(data)
    return event
