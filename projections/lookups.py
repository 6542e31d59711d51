"""Reference rows other read models join against: merchants, holds, prizes.

Applied first in every transaction, and never deleted, so a later event in the
same batch can find what an earlier one created.
"""

from __future__ import annotations

from civfed.v1 import events_pb2
from projections.store import Tx


class Lookups:
    name = "lookups"
    tables = ("rm_merchants", "rm_holds", "rm_prizes")
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_merchants (city TEXT NOT NULL, merchant_id TEXT NOT NULL, "
        "category TEXT NOT NULL, PRIMARY KEY (city, merchant_id))",
        "CREATE TABLE IF NOT EXISTS rm_holds (city TEXT NOT NULL, hold_id TEXT NOT NULL, "
        "wallet_id TEXT NOT NULL, amount BIGINT NOT NULL, PRIMARY KEY (city, hold_id))",
        "CREATE TABLE IF NOT EXISTS rm_prizes (city TEXT NOT NULL, prize_id TEXT NOT NULL, "
        "merchant_id TEXT NOT NULL, cost BIGINT NOT NULL, PRIMARY KEY (city, prize_id))",
    )

    def apply(self, tx: Tx, e: events_pb2.Event) -> None:
        refs, amounts = e.payload.refs, e.payload.amounts
        if e.type == "Merchant.Registered":
            tx.execute(
                "INSERT INTO rm_merchants VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (e.city, e.aggregate_id, refs.get("category", "other")),
            )
        elif e.type == "Wallet.HoldPlaced":
            tx.execute(
                "INSERT INTO rm_holds VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (e.city, refs["hold_id"], e.aggregate_id, amounts["amount"]),
            )
        elif e.type == "Prize.Offered":
            tx.execute(
                "INSERT INTO rm_prizes VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (e.city, e.aggregate_id, refs["merchant_id"], amounts["cost"]),
            )


def hold(tx: Tx, city: str, hold_id: str) -> tuple[str, int]:
    """(wallet id, amount) of a hold placed earlier in the same log."""
    row = tx.one("SELECT wallet_id, amount FROM rm_holds WHERE city = ? AND hold_id = ?", (city, hold_id))
    if row is None:
        raise LookupError(f"{city}: hold {hold_id} was never placed in this log")
    return str(row[0]), int(row[1])
