"""Merchant statements: per merchant and day, tokens received and prizes handed out.

Lines carry amounts and counts only; which wallet paid is not part of a statement.
"""

from __future__ import annotations

from typing import Any

from civfed.v1 import events_pb2
from projections.lookups import hold
from projections.model import day_of, is_hold_consumed, partner_city
from projections.store import Tx


class Statements:
    name = "statements"
    tables = ("rm_statement_lines",)
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_statement_lines (city TEXT NOT NULL, merchant_id TEXT NOT NULL, "
        "day TEXT NOT NULL, kind TEXT NOT NULL, amount BIGINT NOT NULL, count BIGINT NOT NULL, "
        "PRIMARY KEY (city, merchant_id, day, kind))",
    )

    def _line(self, tx: Tx, e: events_pb2.Event, merchant: str, kind: str, amount: int) -> None:
        tx.execute(
            "INSERT INTO rm_statement_lines VALUES (?, ?, ?, ?, ?, 1) "
            "ON CONFLICT (city, merchant_id, day, kind) DO UPDATE SET "
            "amount = rm_statement_lines.amount + excluded.amount, count = rm_statement_lines.count + 1",
            (e.city, merchant, day_of(e), kind, amount),
        )

    def apply(self, tx: Tx, e: events_pb2.Event) -> None:
        refs = e.payload.refs
        if e.type == "Wallet.Spent":
            self._line(tx, e, refs["merchant_id"], "spent", e.payload.amounts["amount"])
        elif is_hold_consumed(e.type) and "merchant_id" in refs and partner_city(e) is None:
            _, amount = hold(tx, e.city, refs["hold_id"])
            self._line(tx, e, refs["merchant_id"], "voucher", amount)
        elif e.type == "Prize.Claimed":
            row = tx.one(
                "SELECT merchant_id, cost FROM rm_prizes WHERE city = ? AND prize_id = ?",
                (e.city, e.aggregate_id),
            )
            if row is not None:
                self._line(tx, e, str(row[0]), "prize", int(row[1]))


def statement(tx: Tx, city: str, merchant_id: str) -> dict[str, Any]:
    """Lines by day, and the total received (prize lines are already paid as spends)."""
    rows = tx.all(
        "SELECT day, kind, amount, count FROM rm_statement_lines WHERE city = ? AND merchant_id = ? "
        "ORDER BY day, kind",
        (city, merchant_id),
    )
    lines = [{"day": d, "kind": k, "amount": int(a), "count": int(n)} for d, k, a, n in rows]
    received = sum(line["amount"] for line in lines if line["kind"] != "prize")
    return {"city": city, "merchant_id": merchant_id, "lines": lines, "received": received}
