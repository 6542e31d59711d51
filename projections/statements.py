"""Merchant statements: per merchant, day and kind, tokens received.

Fed by the shop's own `Merchant.Paid` and `Merchant.PaymentReversed` events, which
name the shop and never the wallet that paid.
"""

from __future__ import annotations

from typing import Any

from civfed.v1 import events_pb2
from projections.batch import Batch
from projections.model import day_of
from projections.store import Tx


class Statements:
    name = "statements"
    tables = ("rm_statement_lines",)
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_statement_lines (city TEXT NOT NULL, merchant_id TEXT NOT NULL, "
        "day TEXT NOT NULL, kind TEXT NOT NULL, amount BIGINT NOT NULL, count BIGINT NOT NULL, "
        "PRIMARY KEY (city, merchant_id, day, kind))",
    )

    def apply(self, tx: Tx, e: events_pb2.Event) -> None:
        if (line := _line(e)) is not None:
            tx.execute(_ADD, (e.city, e.aggregate_id, day_of(e), *line, 1))

    def apply_batch(self, tx: Tx, batch: Batch) -> None:
        totals: dict[tuple[str, str, str, str], list[int]] = {}
        for e in batch.events:
            if (line := _line(e)) is not None:
                kind, amount = line
                total = totals.setdefault((e.city, e.aggregate_id, day_of(e), kind), [0, 0])
                total[0] += amount
                total[1] += 1
        tx.many(_ADD, [(*key, amount, count) for key, (amount, count) in totals.items()])


_ADD = (
    "INSERT INTO rm_statement_lines VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (city, merchant_id, day, kind) DO UPDATE SET "
    "amount = rm_statement_lines.amount + excluded.amount, count = rm_statement_lines.count + excluded.count"
)


def _line(e: events_pb2.Event) -> tuple[str, int] | None:
    """(kind, amount) of a shop's payment or reversal; None for any other event."""
    if e.type == "Merchant.Paid":
        return e.payload.refs["kind"], e.payload.amounts["amount"]
    if e.type == "Merchant.PaymentReversed":
        return "reversal", -e.payload.amounts["amount"]
    return None


def statement(tx: Tx, city: str, merchant_id: str) -> dict[str, Any]:
    """Lines by day and kind, and the total received."""
    rows = tx.all(
        "SELECT day, kind, amount, count FROM rm_statement_lines WHERE city = ? AND merchant_id = ? "
        "ORDER BY day, kind",
        (city, merchant_id),
    )
    lines = [{"day": d, "kind": k, "amount": int(a), "count": int(n)} for d, k, a, n in rows]
    return {
        "city": city,
        "merchant_id": merchant_id,
        "lines": lines,
        "received": sum(x["amount"] for x in lines),
    }
