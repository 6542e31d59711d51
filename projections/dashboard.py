"""The daily dashboard per city, kept with the distinct people behind each cell.

Cells are (city, day, metric, key) -> value, the exact figure; the people table keeps
each person's part of each cell, so the dashboard can suppress a cell from fewer than k
people and cap each person's part at the metric's bound before it adds noise.

Metrics: issued, issued_by_rule (key rule id), spent, spent_by_category (key
the merchant's category code), active, vouchers_redeemed, prizes_redeemed,
redemptions_by_partner (key partner city). A trip's distance and CO2 stay in the
city's store (per-person detail), so there is no CO2 metric here.

People are wallet pseudonyms; an erasure replaces them with its random token.

A spend carries its merchant's category, not the merchant: the stream never puts
a shop beside a wallet, so a shop cannot find its customers' histories there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from civfed.v1 import events_pb2
from projections.batch import Batch
from projections.erasure import ERASED, rename
from projections.lookups import hold
from projections.model import day_of, is_hold_consumed, partner_city
from projections.store import Tx, add_missing_column

_ADD_CELL = (
    "INSERT INTO rm_cells VALUES (?, ?, ?, ?, ?) ON CONFLICT (city, day, metric, key) "
    "DO UPDATE SET value = rm_cells.value + excluded.value"
)
# Each person's own part of a cell: the dashboard caps it at the metric's bound before summing,
# so the noise's sensitivity is enforced (projections/dashboard_view.py).
_ADD_PERSON = (
    "INSERT INTO rm_cell_people VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (city, day, metric, key, wallet_id) "
    "DO UPDATE SET value = rm_cell_people.value + excluded.value"
)


def additions(
    e: events_pb2.Event, held_by: Callable[[str, str], tuple[str, int]]
) -> Iterator[tuple[str, str, int]]:
    """(metric, key, value) the event adds to its day's cells, each with the event's wallet
    among its people; `held_by` finds a hold."""
    amounts, refs = e.payload.amounts, e.payload.refs
    if e.type in ("Wallet.Credited", "Wallet.Progressed"):
        if amount := amounts.get("amount", 0):
            yield "issued", "", amount
            yield "issued_by_rule", refs.get("rule_id", ""), amount
        yield "active", "", 0
    elif e.type == "Wallet.Spent":
        yield "spent", "", amounts["amount"]
        yield "spent_by_category", refs.get("category") or "other", amounts["amount"]
        yield "active", "", 0
        if refs.get("spent_for") == "prize":
            yield "prizes_redeemed", "", 1
    elif is_hold_consumed(e.type):
        _, amount = held_by(e.city, refs["hold_id"])
        yield "spent", "", amount
        yield "active", "", 0
        partner = partner_city(e)
        if partner is not None:
            yield "redemptions_by_partner", partner, amount
        else:
            # A local voucher taken by a shop: the hold's spend is the redemption.
            yield "spent_by_category", refs.get("category") or "other", amount
            yield "vouchers_redeemed", "", 1


class Dashboard:
    name = "dashboard"
    tables = ("rm_cells", "rm_cell_people")
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_cells (city TEXT NOT NULL, day TEXT NOT NULL, metric TEXT NOT NULL, "
        "key TEXT NOT NULL, value BIGINT NOT NULL, PRIMARY KEY (city, day, metric, key))",
        "CREATE TABLE IF NOT EXISTS rm_cell_people (city TEXT NOT NULL, day TEXT NOT NULL, "
        "metric TEXT NOT NULL, key TEXT NOT NULL, wallet_id TEXT NOT NULL, value BIGINT NOT NULL, "
        "PRIMARY KEY (city, day, metric, key, wallet_id))",
    )

    def upgrade(self, tx: Tx) -> None:
        """Read models made before people's parts were kept: the column, filled by a rebuild."""
        add_missing_column(tx, "rm_cell_people", "value", "BIGINT NOT NULL DEFAULT 0")

    def apply(self, tx: Tx, e: events_pb2.Event) -> None:
        if e.type == ERASED:
            rename(tx, "rm_cell_people", "city", e)
            return
        day = None
        for metric, key, value in additions(e, lambda city, hold_id: hold(tx, city, hold_id)):
            day = day or day_of(e)
            tx.execute(_ADD_CELL, (e.city, day, metric, key, value))
            tx.execute(_ADD_PERSON, (e.city, day, metric, key, e.aggregate_id, value))

    def apply_batch(self, tx: Tx, batch: Batch) -> None:
        # cell (city, day, metric, key) -> wallet -> its part; a cell's value is their sum
        people: dict[tuple[str, str, str, str], dict[str, int]] = {}
        days: dict[int, str] = {}  # UTC day number -> its date: a batch spans few days
        held_by, counted = batch.hold, COUNTED
        for e in batch.events:
            kind = e.type
            if kind not in counted and not is_hold_consumed(kind):
                continue
            number = e.time.seconds // 86400
            day = days.get(number) or days.setdefault(number, day_of(e))
            city, wallet = e.city, e.aggregate_id
            found: Iterable[tuple[str, str, int]]
            if kind in ISSUING:  # most events: `additions` inlined
                found = _ONLY_ACTIVE
                if amount := e.payload.amounts.get("amount", 0):
                    rule = e.payload.refs.get("rule_id", "")
                    found = (("issued", "", amount), ("issued_by_rule", rule, amount), _ACTIVE)
            else:
                found = additions(e, held_by)
            for metric, key, value in found:
                cell = (city, day, metric, key)
                parts = people.get(cell)
                if parts is None:
                    parts = people[cell] = {}
                parts[wallet] = parts.get(wallet, 0) + value
        tx.many(_ADD_CELL, [(*cell, sum(parts.values())) for cell, parts in people.items()])
        # Sorted by (cell, wallet): the same rows in the same order every time. Cells are few,
        # so sorting each one's wallets compares strings, not five-part keys.
        rows = []
        for cell in sorted(people):
            parts = people[cell]
            rows += [(*cell, wallet, parts[wallet]) for wallet in sorted(parts)]
        tx.many(_ADD_PERSON, rows)


# The events `additions` counts, beside the holds consumed.
COUNTED = frozenset(("Wallet.Credited", "Wallet.Progressed", "Wallet.Spent"))
# Those that issue tokens: what `additions` gives them, inlined in `apply_batch`.
ISSUING = frozenset(("Wallet.Credited", "Wallet.Progressed"))
_ACTIVE = ("active", "", 0)
_ONLY_ACTIVE = (_ACTIVE,)
