"""The city's funds as the public stream shows them: each fund's declared budget and every
top-up the council decided (`Fund.Declared`, `Fund.ToppedUp`), and which fund each rule's
awards drew on (`Wallet.Credited`'s `fund`). No person is in any of these tables: a fund is
the city's, a top-up carries its amount and day only, and the rule-to-fund pairs carry no
wallet. A fund's name, funder and period are the city's published city.toml's.

A read-model store made before this model existed gains its tables when a projector opens
it; the funds declared and the awards projected before then are filled by a rebuild
(`civfed projections rebuild`), as with every new read model.
"""

from __future__ import annotations

from typing import Any

from civfed.v1 import events_pb2
from projections.batch import Batch
from projections.model import day_of
from projections.store import Tx

_FUND = "INSERT INTO rm_funds VALUES (?, ?, ?, ?, ?) ON CONFLICT (city, aggregate_id) DO NOTHING"
_TOP_UP = (
    "INSERT INTO rm_fund_top_ups VALUES (?, ?, ?, ?, ?) ON CONFLICT (city, aggregate_id, version) DO NOTHING"
)
_RULE = "INSERT INTO rm_rule_funds VALUES (?, ?, ?) ON CONFLICT (city, rule_id, fund_id) DO NOTHING"


def _rows(e: events_pb2.Event) -> tuple[str, tuple[Any, ...]] | None:
    refs, amounts = e.payload.refs, e.payload.amounts
    if e.type == "Fund.Declared":
        return _FUND, (e.city, e.aggregate_id, refs.get("fund_id", ""), amounts.get("budget", 0), day_of(e))
    if e.type == "Fund.ToppedUp":
        return _TOP_UP, (e.city, e.aggregate_id, e.version, amounts.get("amount", 0), day_of(e))
    if e.type == "Wallet.Credited" and refs.get("fund"):
        return _RULE, (e.city, refs.get("rule_id", ""), refs["fund"])
    return None


class Funds:
    name = "funds"
    tables = ("rm_funds", "rm_fund_top_ups", "rm_rule_funds")
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_funds (city TEXT NOT NULL, aggregate_id TEXT NOT NULL, "
        "fund_id TEXT NOT NULL, budget BIGINT NOT NULL, day TEXT NOT NULL, PRIMARY KEY (city, aggregate_id))",
        "CREATE TABLE IF NOT EXISTS rm_fund_top_ups (city TEXT NOT NULL, aggregate_id TEXT NOT NULL, "
        "version BIGINT NOT NULL, amount BIGINT NOT NULL, day TEXT NOT NULL, "
        "PRIMARY KEY (city, aggregate_id, version))",
        "CREATE TABLE IF NOT EXISTS rm_rule_funds (city TEXT NOT NULL, rule_id TEXT NOT NULL, "
        "fund_id TEXT NOT NULL, PRIMARY KEY (city, rule_id, fund_id))",
    )

    def apply(self, tx: Tx, e: events_pb2.Event) -> None:
        if (row := _rows(e)) is not None:
            tx.execute(*row)

    def apply_batch(self, tx: Tx, batch: Batch) -> None:
        found: dict[str, dict[tuple[Any, ...], None]] = {}
        rules: dict[tuple[Any, ...], None] = {}
        for e in batch.events:
            kind = e.type
            if kind == "Wallet.Credited":  # most events: what `_rows` gives them, inlined
                refs = e.payload.refs
                if fund := refs.get("fund"):
                    rules[(e.city, refs.get("rule_id", ""), fund)] = None
            elif kind in ("Fund.Declared", "Fund.ToppedUp") and (row := _rows(e)) is not None:
                found.setdefault(row[0], {})[row[1]] = None
        if rules:
            found[_RULE] = rules
        for sql, rows in found.items():
            tx.many(sql, list(rows))


def funds_of(tx: Tx, city: str) -> list[dict[str, Any]]:
    """Each fund: its declared budget, its top-ups (amount and day) and its budget now (exact)."""
    funds = tx.all(
        "SELECT aggregate_id, fund_id, budget, day FROM rm_funds WHERE city = ? ORDER BY fund_id", (city,)
    )
    out = []
    for aggregate_id, fund_id, budget, day in funds:
        rows = tx.all(
            "SELECT amount, day FROM rm_fund_top_ups WHERE city = ? AND aggregate_id = ? ORDER BY version",
            (city, aggregate_id),
        )
        top_ups = [(int(amount), str(d)) for amount, d in rows]
        out.append(
            {
                "fund_id": str(fund_id),
                "declared": int(budget),
                "declared_on": str(day),
                "top_ups": [{"amount": amount, "day": d} for amount, d in top_ups],
                "budget": int(budget) + sum(amount for amount, _ in top_ups),
            }
        )
    return out


def rule_funds(tx: Tx, city: str) -> dict[str, list[str]]:
    """rule id -> the funds its awards drew on (one, unless the city moved the rule)."""
    out: dict[str, list[str]] = {}
    for rule_id, fund_id in tx.all(
        "SELECT rule_id, fund_id FROM rm_rule_funds WHERE city = ? ORDER BY rule_id, fund_id", (city,)
    ):
        out.setdefault(str(rule_id), []).append(str(fund_id))
    return out
