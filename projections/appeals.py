"""Appeals per city: when each was filed and decided, and by whose wallet (a pseudonym).

Only times and pseudonymous ids arrive here; reasons stay in the city's store. An
erasure replaces the filer's pseudonym, and the appeal's id, with random tokens
(projections/erasure.py).
"""

from __future__ import annotations

import datetime as dt

from civfed.v1 import events_pb2
from projections.batch import Batch
from projections.erasure import ERASED, rekey, rename
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


def appeal_cells(
    tx: Tx, city: str, per_person: int, wait_cap_hours: int
) -> dict[str, dict[str, dict[str, tuple[int, int]]]]:
    """Weekly base cells, metric -> week start -> {"": (value, distinct filers)}:

    - `appeals`: appeals filed in the week;
    - `appeals_decided`: appeals decided in the week;
    - `appeal_wait_hours`: their hours from filing to decision, each capped at
      `wait_cap_hours`.

    At most `per_person` of one wallet's appeals count in a week, so one person moves a
    cell by at most `per_person` (or `per_person` × `wait_cap_hours` hours): the noise's
    sensitivity is enforced here, not assumed.
    """
    rows = tx.all("SELECT wallet_id, filed_at, decided_at FROM rm_appeals WHERE city = ?", (city,))
    sums: dict[tuple[str, str], int] = {}
    people: dict[tuple[str, str], set[str]] = {}
    counted: dict[tuple[str, str, str], int] = {}

    def add(metric: str, at: int, value: int, wallet: str) -> None:
        d = dt.datetime.fromtimestamp(at, dt.UTC).date()
        cell = (metric, (d - dt.timedelta(days=d.weekday())).isoformat())
        if counted.get((*cell, wallet), 0) >= per_person:
            return
        counted[(*cell, wallet)] = counted.get((*cell, wallet), 0) + 1
        sums[cell] = sums.get(cell, 0) + value
        people.setdefault(cell, set()).add(wallet)

    for wallet, filed, decided in sorted(rows, key=lambda r: (int(r[1]), str(r[0]))):
        add("appeals", int(filed), 1, str(wallet))
        if decided is not None:
            add("appeals_decided", int(decided), 1, str(wallet))
            hours = min((int(decided) - int(filed)) // 3600, wait_cap_hours)
            add("appeal_wait_hours", int(decided), hours, str(wallet))
    out: dict[str, dict[str, dict[str, tuple[int, int]]]] = {
        m: {} for m in ("appeals", "appeals_decided", "appeal_wait_hours")
    }
    for (metric, week), value in sums.items():
        out[metric][week] = {"": (value, len(people[(metric, week)]))}
    return out
