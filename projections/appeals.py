"""Appeals per city: when each was filed and decided, and by whose wallet (a pseudonym).

Only times and pseudonymous ids arrive here; reasons stay in the city's store. An
erasure replaces the filer's pseudonym, and the appeal's id, with random tokens
(projections/erasure.py).
"""

from __future__ import annotations

from statistics import median
from typing import Any

from civfed.v1 import events_pb2
from projections.batch import Batch
from projections.erasure import ERASED, rekey, rename
from projections.kanon import K_ANONYMITY, cell
from projections.store import Tx


class Appeals:
    name = "appeals"
    tables = ("rm_appeals",)
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_appeals (city TEXT NOT NULL, appeal_id TEXT NOT NULL, "
        "wallet_id TEXT NOT NULL, filed_at BIGINT NOT NULL, decided_at BIGINT, "
        "PRIMARY KEY (city, appeal_id))",
    )

    def apply(self, tx: Tx, e: events_pb2.Event) -> None:
        if e.type == "Appeal.Filed":
            tx.execute(
                "INSERT INTO rm_appeals VALUES (?, ?, ?, ?, NULL) ON CONFLICT DO NOTHING",
                (e.city, e.aggregate_id, e.payload.refs.get("wallet_id", ""), e.time.seconds),
            )
        elif e.type == "Appeal.Decided":
            tx.execute(
                "UPDATE rm_appeals SET decided_at = ? WHERE city = ? AND appeal_id = ?",
                (e.time.seconds, e.city, e.aggregate_id),
            )
        elif e.type == ERASED:
            rekey(tx, "rm_appeals", "appeal_id", e)
            rename(tx, "rm_appeals", "city", e)

    def apply_batch(self, tx: Tx, batch: Batch) -> None:
        # Appeals are few, and a decision must find its filing: one at a time, in order.
        for e in batch.events:
            if e.type in ("Appeal.Filed", "Appeal.Decided"):
                self.apply(tx, e)


def appeal_figures(tx: Tx, city: str, k: int = K_ANONYMITY) -> dict[str, Any]:
    """The number of appeals, and the median hours from filing to decision (k-anonymous)."""
    rows = tx.all("SELECT wallet_id, filed_at, decided_at FROM rm_appeals WHERE city = ?", (city,))
    filers = {str(w) for w, _, _ in rows}
    decided = [(str(w), int(d) - int(f)) for w, f, d in rows if d is not None]
    waits = [seconds for _, seconds in decided]
    hours = int(median(waits)) // 3600 if waits else 0
    return {
        "appeals": cell(len(rows), len(filers), k),
        "median_hours_to_decision": cell(hours, len({w for w, _ in decided}), k),
    }
