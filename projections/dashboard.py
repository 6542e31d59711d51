"""The daily dashboard per city, kept with the distinct people behind each cell.

Cells are (city, day, metric, key) -> value; the people table lets queries
suppress any cell built from fewer than K_ANONYMITY distinct wallets.

Metrics: issued, issued_by_rule (key rule id), spent, spent_by_category (key
the merchant's category code), active, vouchers_redeemed, prizes_redeemed,
redemptions_by_partner (key partner city). A trip's distance and CO2 stay in the
city's store (per-person detail), so there is no CO2 metric here.

People are wallet pseudonyms; an erasure replaces them with its random token.

A spend carries its merchant's category, not the merchant: the stream never puts
a shop beside a wallet, so a shop cannot find its customers' histories there.
"""

from __future__ import annotations

from civfed.v1 import events_pb2
from projections.erasure import ERASED, rename
from projections.lookups import hold
from projections.model import day_of, is_hold_consumed, partner_city
from projections.store import Tx


class Dashboard:
    name = "dashboard"
    tables = ("rm_cells", "rm_cell_people")
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_cells (city TEXT NOT NULL, day TEXT NOT NULL, metric TEXT NOT NULL, "
        "key TEXT NOT NULL, value BIGINT NOT NULL, PRIMARY KEY (city, day, metric, key))",
        "CREATE TABLE IF NOT EXISTS rm_cell_people (city TEXT NOT NULL, day TEXT NOT NULL, "
        "metric TEXT NOT NULL, key TEXT NOT NULL, wallet_id TEXT NOT NULL, "
        "PRIMARY KEY (city, day, metric, key, wallet_id))",
    )

    def apply(self, tx: Tx, e: events_pb2.Event) -> None:
        amounts, refs = e.payload.amounts, e.payload.refs
        day, wallet = day_of(e), e.aggregate_id

        def add(metric: str, key: str, value: int, who: str = wallet) -> None:
            cell = (e.city, day, metric, key)
            tx.execute(
                "INSERT INTO rm_cells VALUES (?, ?, ?, ?, ?) ON CONFLICT (city, day, metric, key) "
                "DO UPDATE SET value = rm_cells.value + excluded.value",
                (*cell, value),
            )
            tx.execute(
                "INSERT INTO rm_cell_people VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", (*cell, who)
            )

        if e.type in ("Wallet.Credited", "Wallet.Progressed"):
            if amount := amounts.get("amount", 0):
                add("issued", "", amount)
                add("issued_by_rule", refs.get("rule_id", ""), amount)
            add("active", "", 0)
        elif e.type == "Wallet.Spent":
            add("spent", "", amounts["amount"])
            add("spent_by_category", refs.get("category") or "other", amounts["amount"])
            add("active", "", 0)
            if refs.get("spent_for") == "prize":
                add("prizes_redeemed", "", 1)
        elif is_hold_consumed(e.type):
            _, amount = hold(tx, e.city, refs["hold_id"])
            add("spent", "", amount)
            add("active", "", 0)
            partner = partner_city(e)
            if partner is not None:
                add("redemptions_by_partner", partner, amount)
            else:
                # A local voucher taken by a shop: the hold's spend is the redemption.
                add("spent_by_category", refs.get("category") or "other", amount)
                add("vouchers_redeemed", "", 1)
        elif e.type == ERASED:
            rename(tx, "rm_cell_people", "city", e)
