"""Wallet balances per city, by wallet pseudonym: balance, and how much of it is held.

An erased wallet's row goes (its balance was forfeited when it closed); should anything
still be held, the row stays under the erasure's random token so totals hold."""

from __future__ import annotations

from civfed.v1 import events_pb2
from projections.erasure import ERASED, TOKEN, rename
from projections.lookups import hold
from projections.model import is_hold_consumed
from projections.store import Tx


class Balances:
    name = "balances"
    tables = ("rm_balances",)
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_balances (city TEXT NOT NULL, wallet_id TEXT NOT NULL, "
        "balance BIGINT NOT NULL DEFAULT 0, held BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (city, wallet_id))",
    )

    def _add(self, tx: Tx, city: str, wallet: str, balance: int, held: int) -> None:
        tx.execute(
            "INSERT INTO rm_balances (city, wallet_id, balance, held) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (city, wallet_id) DO UPDATE SET balance = rm_balances.balance + excluded.balance, "
            "held = rm_balances.held + excluded.held",
            (city, wallet, balance, held),
        )

    def apply(self, tx: Tx, e: events_pb2.Event) -> None:
        amount = e.payload.amounts.get("amount", 0)
        if e.type == "Wallet.Opened":
            self._add(tx, e.city, e.aggregate_id, 0, 0)
        elif e.type == "Wallet.Credited":
            self._add(tx, e.city, e.aggregate_id, amount, 0)
        elif e.type in ("Wallet.Spent", "Wallet.Lapsed", "Wallet.TaxPaid", "Wallet.Depreciated"):
            self._add(tx, e.city, e.aggregate_id, -amount, 0)
        elif e.type == "Wallet.HoldPlaced":
            self._add(tx, e.city, e.aggregate_id, 0, amount)
        elif e.type == "Wallet.HoldReleased":
            _, held = hold(tx, e.city, e.payload.refs["hold_id"])
            self._add(tx, e.city, e.aggregate_id, 0, -held)
        elif is_hold_consumed(e.type):
            _, held = hold(tx, e.city, e.payload.refs["hold_id"])
            self._add(tx, e.city, e.aggregate_id, -held, -held)
        elif e.type == ERASED:
            rename(tx, "rm_balances", "city", e)
            tx.execute(
                "DELETE FROM rm_balances WHERE city = ? AND wallet_id = ? AND balance = 0 AND held = 0",
                (e.city, e.payload.refs[TOKEN]),
            )


def balances(tx: Tx, city: str) -> dict[str, tuple[int, int]]:
    """wallet pseudonym -> (balance, held)."""
    rows = tx.all("SELECT wallet_id, balance, held FROM rm_balances WHERE city = ?", (city,))
    return {str(w): (int(b), int(h)) for w, b, h in rows}
