"""Reference rows other read models join against: the holds placed on wallets.

Applied first in every transaction, and never deleted, so a later event in the
same batch can find what an earlier one created. An erasure replaces the wallet's
pseudonym and its holds' ids with random tokens (projections/erasure.py).
"""

from __future__ import annotations

from civfed.v1 import events_pb2
from projections.batch import Batch
from projections.erasure import ERASED, rekey, rename
from projections.store import Tx


class Lookups:
    name = "lookups"
    tables = ("rm_holds",)
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_holds (city TEXT NOT NULL, hold_id TEXT NOT NULL, "
        "wallet_id TEXT NOT NULL, amount BIGINT NOT NULL, PRIMARY KEY (city, hold_id))",
    )

    def apply(self, tx: Tx, e: events_pb2.Event) -> None:
        if e.type == "Wallet.HoldPlaced":
            tx.execute(
                _INSERT, (e.city, e.payload.refs["hold_id"], e.aggregate_id, e.payload.amounts["amount"])
            )
        elif e.type == ERASED:
            rekey(tx, "rm_holds", "hold_id", e)
            rename(tx, "rm_holds", "city", e)

    def apply_batch(self, tx: Tx, batch: Batch) -> None:
        tx.many(_INSERT, [(*key, wallet, amount) for key, (wallet, amount) in batch.placed.items()])


_INSERT = "INSERT INTO rm_holds VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"


def hold(tx: Tx, city: str, hold_id: str) -> tuple[str, int]:
    """(wallet pseudonym, amount) of a hold placed earlier in the same log."""
    row = tx.one("SELECT wallet_id, amount FROM rm_holds WHERE city = ? AND hold_id = ?", (city, hold_id))
    if row is None:
        raise LookupError(f"{city}: hold {hold_id} was never placed in this log")
    return str(row[0]), int(row[1])
