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


# Lapsed claims released in one sweep round; the rest wait for the next round.
SWEEP_BATCH = 1000
# The book's position is saved with every change it applies and, with none, once the log
# moved this far past it: a restarted node re-reads at most this much of the log.
SAVE_EVERY = 10_000
# Rows written together while catching up with a long log: the book never holds more.
CHUNK = 5000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _micros(at: dt.datetime) -> int:
    """Microseconds since 1970 (UTC): compared exactly, as the claims' datetimes are."""
    aware = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
    return (aware - _EPOCH) // dt.timedelta(microseconds=1)


class ClaimIndex:
    """Which prizes and claims exist, and which claims are still open, in tables beside the
    city's own events (the same SQLite file or PostgreSQL schema): a node keeps none of it
    in memory, and a wallet's or a shop's claims are one indexed read at any size."""

    def __init__(self, recorder: Any) -> None:
        self._datastore = recorder.datastore
        self._postgres = type(self._datastore).__module__ == "eventsourcing.postgres"
        name = recorder.events_table_name
        if self._postgres:
            schema = self._datastore.schema
            self._positions = f'"{schema}"."{name}_prize_book"'
            self._prizes = f'"{schema}"."{name}_prizes"'
            self._claims = f'"{schema}"."{name}_prize_claims"'
        else:
            self._positions = f'"{name}_prize_book"'
            self._prizes = f'"{name}_prizes"'
            self._claims = f'"{name}_prize_claims"'
        self._write(
            [
                (
                    f"CREATE TABLE IF NOT EXISTS {self._positions} "
                    "(name TEXT PRIMARY KEY, notification_id BIGINT NOT NULL)",
                    None,
                ),
                (
                    f"CREATE TABLE IF NOT EXISTS {self._prizes} (prize_id TEXT PRIMARY KEY, "
                    "merchant_id TEXT NOT NULL, seq BIGINT NOT NULL)",
                    None,
                ),
                (
                    f"CREATE TABLE IF NOT EXISTS {self._claims} (claim_id TEXT PRIMARY KEY, "
                    "wallet_id TEXT NOT NULL, merchant_id TEXT NOT NULL, expires_us BIGINT NOT NULL, "
                    "open INTEGER NOT NULL, seq BIGINT NOT NULL)",
                    None,
                ),
                (
                    f"CREATE INDEX IF NOT EXISTS {name}_prize_claims_wallet "
                    f"ON {self._claims} (wallet_id, seq)",
                    None,
                ),
                (
                    f"CREATE INDEX IF NOT EXISTS {name}_prize_claims_merchant "
                    f"ON {self._claims} (merchant_id, seq)",
                    None,
                ),
                (
                    f"CREATE INDEX IF NOT EXISTS {name}_prize_claims_open "
                    f"ON {self._claims} (expires_us, seq) WHERE open = 1",
                    None,
                ),
            ]
        )

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self._postgres else statement

    def _write(self, statements: list[tuple[str, list[tuple[Any, ...]] | None]]) -> None:
        """All in one transaction; a statement with rows runs once per row."""
        with self._datastore.transaction(commit=True) as cursor:
            for statement, rows in statements:
                if rows is None:
                    cursor.execute(self._sql(statement))
                else:
                    for row in rows:
                        cursor.execute(self._sql(statement), row)

    def _column(self, statement: str, args: tuple[Any, ...]) -> list[Any]:
        """The first column of every row the query answers."""
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(self._sql(statement), args)
            rows = cursor.fetchall()
        return [next(iter(row.values())) if isinstance(row, dict) else row[0] for row in rows]

    def clear(self) -> None:
        self._write([(f"DELETE FROM {t}", None) for t in (self._positions, self._prizes, self._claims)])

    def position(self) -> int:
        found = self._column(f"SELECT notification_id FROM {self._positions} WHERE name = ?", ("log",))
        return int(found[0]) if found else 0

    def record(
        self,
        prizes: list[tuple[str, str, int]],
        made: list[tuple[str, str, str, int, int]],
        closed: list[tuple[str]],
        position: int,
    ) -> None:
        """Apply what the log added, and the position reached, at once. Applying it again
        (another replica of the node sharing the store, or a restart) changes nothing."""
        biggest = "GREATEST" if self._postgres else "MAX"
        self._write(
            [
                (f"INSERT INTO {self._prizes} VALUES (?, ?, ?) ON CONFLICT DO NOTHING", prizes),
                (f"INSERT INTO {self._claims} VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT DO NOTHING", made),
                (f"UPDATE {self._claims} SET open = 0 WHERE claim_id = ?", closed),
                (
                    f"INSERT INTO {self._positions} AS t VALUES (?, ?) ON CONFLICT (name) DO UPDATE "
                    f"SET notification_id = {biggest}(t.notification_id, excluded.notification_id)",
                    [("log", position)],
                ),
            ]
        )

    def lapsed(self, now: dt.datetime, limit: int | None) -> list[UUID]:
        statement = (
            f"SELECT claim_id FROM {self._claims} WHERE open = 1 AND expires_us <= ? ORDER BY expires_us, seq"
        )
        args: tuple[Any, ...] = (_micros(now),)
        if limit is not None:
            statement, args = statement + " LIMIT ?", (*args, limit)
        return [UUID(c) for c in self._column(statement, args)]

    def claims_of(self, column: str, owner: UUID) -> list[UUID]:
        statement = f"SELECT claim_id FROM {self._claims} WHERE {column} = ? ORDER BY seq"
        return [UUID(c) for c in self._column(statement, (str(owner),))]

    def prize_ids(self, merchant_id: UUID | None) -> list[UUID]:
        if merchant_id is None:
            found = self._column(f"SELECT prize_id FROM {self._prizes} ORDER BY seq", ())
        else:
            statement = f"SELECT prize_id FROM {self._prizes} WHERE merchant_id = ? ORDER BY seq"
            found = self._column(statement, (str(merchant_id),))
        return [UUID(p) for p in found]


class PrizeBook:
    """Which prizes and claims exist, followed from the notification log (`refresh` reads
    only what is new) into the node's claim index (`ClaimIndex`); their current state is read
    from each aggregate. The book itself holds only its position in the log: a claim, open or
    closed, takes no memory, and a restarted node carries on from where it left off."""

    def __init__(self) -> None:
        self.position = 0
        self._saved = 0  # the position last saved in the index
        self._index: ClaimIndex | None = None
        self._lock = threading.Lock()

    def _bound(self, app: Application[UUID]) -> ClaimIndex:
        if self._index is None:
            index = ClaimIndex(app.recorder)
            self._saved = index.position()
            if self._saved > (app.recorder.max_notification_id() or 0):
                # Ahead of the log it was read from: the log was replaced under it (a store
                # restored without its index). Read again from the start.
                index.clear()
                self._saved = 0
            self.position = max(self.position, self._saved)
            self._index = index
        return self._index

    @property
    def index(self) -> ClaimIndex:
        if self._index is None:
            raise RuntimeError("the prize book is read after its first refresh")
        return self._index

    def refresh(self, app: Application[UUID]) -> PrizeBook:
        with self._lock:
            index = self._bound(app)
            upto, events = follow(app, self.position, TOPICS)
            prizes: list[tuple[str, str, int]] = []
            made: list[tuple[str, str, str, int, int]] = []
            closed: list[tuple[str]] = []
            caught_up = False
            for seq, e in events:
                if len(prizes) + len(made) + len(closed) >= CHUNK:
                    # Everything up to this event is in the rows: save them, and this far.
                    index.record(prizes, made, closed, seq - 1)
                    self._saved, caught_up = seq - 1, True
                    prizes, made, closed = [], [], []
                kind = event_type(e)
                if kind == "Prize.Offered":
                    prizes.append((str(e.originator_id), str(e.merchant_id), seq))  # type: ignore[attr-defined]
                elif kind == "PrizeClaim.Made":
                    made.append(
                        (
                            str(e.originator_id),
                            str(e.wallet_id),  # type: ignore[attr-defined]
                            str(e.merchant_id),  # type: ignore[attr-defined]
                            _micros(e.expires_at),  # type: ignore[attr-defined]
                            seq,
                        )
                    )
                elif kind in ("PrizeClaim.HandedOver", "PrizeClaim.Cancelled", "PrizeClaim.Expired"):
                    closed.append((str(e.originator_id),))
            if prizes or made or closed or caught_up or upto - self._saved >= SAVE_EVERY:
                index.record(prizes, made, closed, upto)
                self._saved = upto
            self.position = upto
        return self

    def lapsed(self, now: dt.datetime, limit: int | None = None) -> list[UUID]:
        """Open claims whose time ran out by `now`, the earliest first."""
        return self.index.lapsed(now, limit)

    def of_wallet(self, wallet_id: UUID) -> list[UUID]:
        """Every claim the wallet made, open or closed, oldest first."""
        return self.index.claims_of("wallet_id", wallet_id)

    def of_merchant(self, merchant_id: UUID) -> list[UUID]:
        """Every claim on the shop's prizes, open or closed, oldest first."""
        return self.index.claims_of("merchant_id", merchant_id)

    def prize_ids(self, merchant_id: UUID | None = None) -> list[UUID]:
        return self.index.prize_ids(merchant_id)


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
    """Release the claims whose time ran out by `now` (the city's clock), at most
    `SWEEP_BATCH` a round; the number released."""
    released = 0
    for claim_id in book.refresh(app).lapsed(now, SWEEP_BATCH):
        try:
            run(c.ExpirePrizeClaim(f"sweep:expire-prize-claim:{claim_id}", claim_id))
            released += 1
        except DomainError:
            pass  # handed over or cancelled meanwhile: the book catches up next round
    return released
