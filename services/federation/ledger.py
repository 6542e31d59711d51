"""Cross-city redemptions read from a city's events: open sagas and settlement."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

from aggregates.redemption import ForeignRedemption, Redemption
from services.event_log import event_type, follow, topics_of

# The ledger reads only redemptions' events: a log of a million wallets' events is not decoded.
TOPICS = topics_of(Redemption, ForeignRedemption)


@dataclass
class Position:
    """Net position with one partner, in each side's home units."""

    partner: str
    payable: int = 0  # our units redeemed at the partner's shops: we owe
    receivable: int = 0  # the partner's units redeemed at our shops: they owe
    receivable_value: int = 0  # what our shops were credited for them, in our units
    redemptions: int = 0

    @property
    def net(self) -> int:
        """Claims on the partner minus claims of the partner, in this city's units."""
        return self.receivable_value - self.payable


@dataclass
class RedemptionLedger:
    """Follows the notification log; `refresh` reads only what is new."""

    position: int = 0
    # Home side: reserved redemptions and when their hold lapses.
    reserved: dict[UUID, dt.datetime] = field(default_factory=dict)
    # Accepting side: sagas not yet committed, refused or reversed, in the order they started.
    unfinished: dict[UUID, None] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def refresh(self, app: Application[UUID]) -> RedemptionLedger:
        with self._lock:
            upto, events = follow(app, self.position, TOPICS)
            for _, event in events:
                self.apply(event_type(event), event)
            self.position = upto
        return self

    def _partner(self, city: str) -> Position:
        return self.positions.setdefault(city, Position(city))

    def apply(self, kind: str, e: Any) -> None:
        rid = e.originator_id
        if kind == "Redemption.Reserved":
            self.reserved[rid] = e.hold_expires_at
        elif kind in ("Redemption.Cancelled", "Redemption.Expired"):
            self.reserved.pop(rid, None)
        elif kind == "Redemption.Committed":
            self.reserved.pop(rid, None)
            p = self._partner(e.acceptor)
            p.payable += e.amount
            p.redemptions += 1
        elif kind == "ForeignRedemption.Started":
            self.unfinished[rid] = None
        elif kind in ("ForeignRedemption.Refused", "ForeignRedemption.CreditReversed"):
            self.unfinished.pop(rid, None)
        elif kind == "ForeignRedemption.Committed":
            self.unfinished.pop(rid, None)
            p = self._partner(e.home_city)
            p.receivable += e.home_amount
            p.receivable_value += e.credit
            p.redemptions += 1

    def lapsed(self, now: dt.datetime) -> list[UUID]:
        with self._lock:
            return [rid for rid, until in self.reserved.items() if now >= until]
