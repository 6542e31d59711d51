"""Wallet balances per city, by wallet pseudonym: balance, and how much of it is held.

An erased wallet's row goes (its balance was forfeited when it closed); should anything
still be held, the row stays under the erasure's random token so totals hold."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from civfed.v1 import events_pb2
from projections.batch import Batch
from projections.erasure import ERASED, TOKEN, rename
from projections.lookups import hold
from projections.model import is_hold_consumed
from projections.store import Tx

_ADD = (
    "INSERT INTO rm_balances (city, wallet_id, balance, held) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (city, wallet_id) DO UPDATE SET balance = rm_balances.balance + excluded.balance, "
    "held = rm_balances.held + excluded.held"
)

_DEBITS = ("Wallet.Spent", "Wallet.Lapsed", "Wallet.TaxPaid", "Wallet.Depreciated")


def changes(e: events_pb2.Event, held_by: Callable[[str, str], tuple[str, int]]) -> Iterator[tuple[int, int]]:
    """(balance change, held change) of the event's wallet; `held_by` finds a hold."""
    amount = e.payload.amounts.get("amount", 0)
    if e.type == "Wallet.Opened":
        yield 0, 0
    elif e.type == "Wallet.Credited":
        yield amount, 0
    elif e.type in _DEBITS:
        yield -amount, 0
    elif e.type == "Wallet.HoldPlaced":
        yield 0, amount
    elif e.type == "Wallet.HoldReleased":
        _, held = held_by(e.city, e.payload.refs["hold_id"])
        yield 0, -held
    elif is_hold_consumed(e.type):
        _, held = held_by(e.city, e.payload.refs["hold_id"])
        yield -held, -held


class Balances:
    name = "balances"
    tables = ("rm_balances",)
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_balances (city TEXT NOT NULL, wallet_id TEXT NOT NULL, "
        "balance BIGINT NOT NULL DEFAULT 0, held BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (city, wallet_id))",
    )

    def apply(self, tx: Tx, e: events_pb2.Event) -> None:
        if e.type == ERASED:
            rename(tx, "rm_balances", "city", e)
            tx.execute(
                "DELETE FROM rm_balances WHERE city = ? AND wallet_id = ? AND balance = 0 AND held = 0",
                (e.city, e.payload.refs[TOKEN]),
            )
            return
        for balance, held in changes(e, lambda city, hold_id: hold(tx, city, hold_id)):
            tx.execute(_ADD, (e.city, e.aggregate_id, balance, held))

    def apply_batch(self, tx: Tx, batch: Batch) -> None:
        totals: dict[tuple[str, str], list[int]] = {}
        for e in batch.events:
            kind = e.type
            if kind == "Wallet.Credited":  # most events: `changes` inlined
                total = totals.setdefault((e.city, e.aggregate_id), [0, 0])
                total[0] += e.payload.amounts.get("amount", 0)
                continue
            if not kind.startswith("Wallet."):
                continue  # `changes` has nothing for any other aggregate
            for balance, held in changes(e, batch.hold):
                total = totals.setdefault((e.city, e.aggregate_id), [0, 0])
                total[0] += balance
                total[1] += held
        tx.many(_ADD, [(city, wallet, b, h) for (city, wallet), (b, h) in totals.items()])


def balances(tx: Tx, city: str) -> dict[str, tuple[int, int]]:
    """wallet pseudonym -> (balance, held)."""
    rows = tx.all("SELECT wallet_id, balance, held FROM rm_balances WHERE city = ?", (city,))
    return {str(w): (int(b), int(h)) for w, b, h in rows}
