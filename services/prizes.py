"""Partner prizes on a node: a partner business offers, updates and withdraws its prizes;
a holder claims one, which holds the price on the wallet until the partner confirms the
hand-over (the tokens are then spent to the partner), cancels the claim, or the claim
expires on the city's clock (the node's sweep releases it). A claim takes its unit at
once, so a sold-out prize refuses further claims; a released claim gives the unit back.

A partner acts only on its own prizes and claims: another merchant's are answered as if
they did not exist.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID, uuid4

from eventsourcing.application import Application

from aggregates.errors import DomainError
from aggregates.merchant import Merchant, Prize, PrizeClaim
from aggregates.wallet import Wallet
from services import commands as c
from services.event_log import event_type, follow, topics_of
from services.settings.cities import City
from services.unit_of_work import UnitOfWork

# The prize book reads only prizes' and claims' events, never the rest of the log.
TOPICS = topics_of(Prize, PrizeClaim)

Handler = Callable[[Any, UnitOfWork], dict[str, Any]]


class CityLike(Protocol):
    key: str
    city: City
    spending_terms: tuple[bool, bool]

    def clock(self) -> dt.datetime: ...


def handlers(app: CityLike) -> dict[type[c.Command], Handler]:
    def own_prize(uow: UnitOfWork, merchant_id: UUID, prize_id: UUID) -> Prize:
        prize = uow.get(prize_id, Prize, "prize")
        prize.check_owner(merchant_id)
        return prize

    def own_claim(uow: UnitOfWork, merchant_id: UUID, claim_id: UUID) -> PrizeClaim:
        claim = uow.get(claim_id, PrizeClaim, "prize claim")
        claim.check_owner(merchant_id)
        return claim

    def update(cmd: c.UpdatePrize, uow: UnitOfWork) -> dict[str, Any]:
        prize = own_prize(uow, cmd.merchant_id, cmd.prize_id)
        prize.update(cmd.prize_name, cmd.cost, cmd.stock)
        return prize_result(prize)

    def withdraw(cmd: c.WithdrawPrize, uow: UnitOfWork) -> dict[str, Any]:
        prize = own_prize(uow, cmd.merchant_id, cmd.prize_id)
        prize.withdraw()
        return prize_result(prize)

    def place(cmd: c.PlacePrizeClaim, uow: UnitOfWork) -> dict[str, Any]:
        prize = uow.get(cmd.prize_id, Prize, "prize")
        prize.check_in_stock()
        merchant = uow.get(prize.merchant_id, Merchant, "merchant")
        merchant.check_accepts(*app.spending_terms)
        wallet = uow.get(cmd.wallet_id, Wallet, "wallet")
        now = app.clock()
        expires = now + dt.timedelta(hours=app.city.config.prize_claim_hours)
        hold_id = f"prize-claim:{uuid4()}"
        wallet.place_hold(hold_id, prize.cost, expires, "prize", now)
        claim = PrizeClaim(app.key, prize.id, merchant.id, wallet.id, hold_id, prize.cost, expires)
        prize.reserve(claim.id)
        uow.add(claim)
        return claim_result(claim)

    def confirm(cmd: c.ConfirmPrizeHandover, uow: UnitOfWork) -> dict[str, Any]:
        claim = own_claim(uow, cmd.merchant_id, cmd.claim_id)
        now = app.clock()
        claim.check_open(now)
        wallet = uow.get(claim.wallet_id, Wallet, "wallet")
        merchant = uow.get(claim.merchant_id, Merchant, "merchant")
        wallet.check_active(now)
        wallet.spend_hold(claim.hold_id, merchant.id, f"prize:{claim.prize_id}", now, merchant.category)
        merchant.paid(claim.cost, "prize", str(claim.id))
        claim.hand_over()
        return claim_result(claim)

    def give_back(uow: UnitOfWork, claim: PrizeClaim, reason: str) -> None:
        wallet = uow.get(claim.wallet_id, Wallet, "wallet")
        # A hold already released (lapsed on the wallet's own clock, or its wallet closed)
        # is not released twice.
        if claim.hold_id in wallet.holds:
            wallet.release_hold(claim.hold_id, reason)
        uow.get(claim.prize_id, Prize, "prize").restock(claim.id, reason)

    def cancel(cmd: c.CancelPrizeClaim, uow: UnitOfWork) -> dict[str, Any]:
        claim = own_claim(uow, cmd.merchant_id, cmd.claim_id)
        claim.check_held()  # even past its time, until the sweep has released it
        give_back(uow, claim, "prize claim cancelled by the partner")
        claim.cancel(cmd.reason)
        return claim_result(claim)

    def expire(cmd: c.ExpirePrizeClaim, uow: UnitOfWork) -> dict[str, Any]:
        claim = uow.get(cmd.claim_id, PrizeClaim, "prize claim")
        claim.check_lapsed(app.clock())
        give_back(uow, claim, "prize claim expired")
        claim.expire()
        return claim_result(claim)

    return {
        c.UpdatePrize: update,
        c.WithdrawPrize: withdraw,
        c.PlacePrizeClaim: place,
        c.ConfirmPrizeHandover: confirm,
        c.CancelPrizeClaim: cancel,
        c.ExpirePrizeClaim: expire,
    }


def prize_result(prize: Prize) -> dict[str, Any]:
    return {
        "prize_id": str(prize.id),
        "name": prize.name,
        "cost": prize.cost,
        "stock": prize.stock,
        "withdrawn": prize.withdrawn,
    }


def claim_result(claim: PrizeClaim) -> dict[str, Any]:
    return {
        "claim_id": str(claim.id),
        "prize_id": str(claim.prize_id),
        "cost": claim.cost,
        "state": claim.state,
        "expires_at": claim.expires_at.isoformat(),
    }


@dataclass
class ClaimEntry:
    wallet_id: UUID
    merchant_id: UUID
    expires_at: dt.datetime
    open: bool = True


@dataclass
class PrizeBook:
    """Which prizes and claims exist, followed from the notification log (`refresh` reads
    only what is new); their current state is read from each aggregate."""

    position: int = 0
    prizes: dict[UUID, UUID] = field(default_factory=dict)  # prize -> merchant
    claims: dict[UUID, ClaimEntry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def refresh(self, app: Application[UUID]) -> PrizeBook:
        with self._lock:
            upto, events = follow(app, self.position, TOPICS)
            for _, e in events:
                kind = event_type(e)
                if kind == "Prize.Offered":
                    self.prizes[e.originator_id] = e.merchant_id  # type: ignore[attr-defined]
                elif kind == "PrizeClaim.Made":
                    self.claims[e.originator_id] = ClaimEntry(
                        e.wallet_id,  # type: ignore[attr-defined]
                        e.merchant_id,  # type: ignore[attr-defined]
                        e.expires_at,  # type: ignore[attr-defined]
                    )
                elif kind in ("PrizeClaim.HandedOver", "PrizeClaim.Cancelled", "PrizeClaim.Expired"):
                    entry = self.claims.get(e.originator_id)
                    if entry is not None:
                        entry.open = False
            self.position = upto
        return self

    def lapsed(self, now: dt.datetime) -> list[UUID]:
        with self._lock:
            return [cid for cid, e in self.claims.items() if e.open and now >= e.expires_at]

    def of_wallet(self, wallet_id: UUID) -> list[UUID]:
        with self._lock:
            return [cid for cid, e in self.claims.items() if e.wallet_id == wallet_id]

    def of_merchant(self, merchant_id: UUID) -> list[UUID]:
        with self._lock:
            return [cid for cid, e in self.claims.items() if e.merchant_id == merchant_id]

    def prize_ids(self, merchant_id: UUID | None = None) -> list[UUID]:
        with self._lock:
            return [p for p, m in self.prizes.items() if merchant_id is None or m == merchant_id]


def current_prizes(app: Application[UUID], book: PrizeBook, merchant_id: UUID | None = None) -> list[Prize]:
    """Prizes on offer (for a partner, all of its own, withdrawn ones too), oldest first."""
    uow = UnitOfWork(app)
    prizes = [uow.get(p, Prize, "prize") for p in book.refresh(app).prize_ids(merchant_id)]
    return [p for p in prizes if merchant_id is not None or not p.withdrawn]


def claims(app: Application[UUID], ids: list[UUID]) -> list[PrizeClaim]:
    uow = UnitOfWork(app)
    return [uow.get(cid, PrizeClaim, "prize claim") for cid in ids]


def sweep_claims(
    app: Application[UUID],
    book: PrizeBook,
    now: dt.datetime,
    run: Callable[[c.Command], dict[str, Any]],
) -> int:
    """Release every claim whose time ran out by `now` (the city's clock); the number released."""
    released = 0
    for claim_id in book.refresh(app).lapsed(now):
        try:
            run(c.ExpirePrizeClaim(f"sweep:expire-prize-claim:{claim_id}", claim_id))
            released += 1
        except DomainError:
            pass  # handed over or cancelled meanwhile: the book catches up next round
    return released
