"""Federation settlement: what each home city owes each acceptor city, and net positions.

A redemption of a home city's tokens at a partner city's merchant burns a hold
on the home wallet (`Wallet.HoldBurned` naming the partner in a `*_city` ref).
Only that home-side event is counted, so a redemption that both cities record
is never counted twice.
"""

from __future__ import annotations

from civfed.v1 import events_pb2
from projections.lookups import hold
from projections.model import is_hold_consumed, partner_city
from projections.store import Tx


class Settlement:
    name = "settlement"
    tables = ("rm_settlement", "rm_settlement_people")
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_settlement (debtor TEXT NOT NULL, creditor TEXT NOT NULL, "
        "amount BIGINT NOT NULL, redemptions BIGINT NOT NULL, PRIMARY KEY (debtor, creditor))",
        "CREATE TABLE IF NOT EXISTS rm_settlement_people (debtor TEXT NOT NULL, creditor TEXT NOT NULL, "
        "wallet_id TEXT NOT NULL, PRIMARY KEY (debtor, creditor, wallet_id))",
    )

    def apply(self, tx: Tx, e: events_pb2.Event) -> None:
        partner = partner_city(e)
        if partner is None or not is_hold_consumed(e.type):
            return
        wallet, amount = hold(tx, e.city, e.payload.refs["hold_id"])
        tx.execute(
            "INSERT INTO rm_settlement VALUES (?, ?, ?, 1) ON CONFLICT (debtor, creditor) DO UPDATE SET "
            "amount = rm_settlement.amount + excluded.amount, redemptions = rm_settlement.redemptions + 1",
            (e.city, partner, amount),
        )
        tx.execute(
            "INSERT INTO rm_settlement_people VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (e.city, partner, wallet),
        )


def net_positions(tx: Tx) -> dict[str, int]:
    """city -> what it is owed minus what it owes (sums to zero across the federation)."""
    net: dict[str, int] = {}
    for debtor, creditor, amount in tx.all("SELECT debtor, creditor, amount FROM rm_settlement"):
        net[debtor] = net.get(debtor, 0) - int(amount)
        net[creditor] = net.get(creditor, 0) + int(amount)
    return net


def matrix(tx: Tx) -> list[tuple[str, str, int, int]]:
    """(debtor, creditor, amount, distinct people) for every pair with redemptions."""
    rows = tx.all(
        "SELECT s.debtor, s.creditor, s.amount, COUNT(p.wallet_id) FROM rm_settlement s "
        "LEFT JOIN rm_settlement_people p ON p.debtor = s.debtor AND p.creditor = s.creditor "
        "GROUP BY s.debtor, s.creditor, s.amount ORDER BY s.debtor, s.creditor"
    )
    return [(str(d), str(c), int(a), int(n)) for d, c, a, n in rows]
