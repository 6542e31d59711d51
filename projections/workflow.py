"""Lots and monthly flows of depreciating currencies, for the equilibrium report.

The model replays each wallet's lots with the domain's own arithmetic
(`aggregates.depreciation`), so the supply it finds on any day is exactly the
sum of what the wallets are worth. A month's closing supply is every lot valued
on the first day of the next month. Each wallet is closed on its own: when its
first event in a later month arrives, its value at the end of each month it
leaves is added to those months. Wallets not yet closed for a month count at
query time with the lots they hold now, which are the lots they held then.
Only one wallet's order matters, which Kafka keeps per key, so the figures do
not depend on how partitions interleave.

Flows are dated by the lot events' own day, never by the event's wall-clock
time, so the figures are the same whichever clock recorded them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aggregates.depreciation import Lot, draw, total_at
from civfed.v1 import events_pb2
from projections.batch import Batch
from projections.erasure import ERASED, rename
from projections.store import Tx


def month_of(day: dt.date) -> str:
    return day.isoformat()[:7]


def next_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"


def month_end(month: str) -> dt.date:
    """The day a month's closing supply is valued on: the first day of the next month."""
    return dt.date.fromisoformat(next_month(month) + "-01")


def load_lots(tx: Tx, city: str, wallet: str | None = None) -> dict[str, list[Lot]]:
    sql = "SELECT wallet_id, value, base_on, ends_on FROM rm_wf_lots WHERE city = ?"
    params: tuple[str, ...] = (city,)
    if wallet is not None:
        sql, params = sql + " AND wallet_id = ?", (city, wallet)
    out: dict[str, list[Lot]] = {}
    for w, value, base_on, ends_on in tx.all(sql + " ORDER BY wallet_id, seq", params):
        lot = Lot(int(value), dt.date.fromisoformat(str(base_on)), dt.date.fromisoformat(str(ends_on)))
        out.setdefault(str(w), []).append(lot)
    return out


def wallet_months(tx: Tx, city: str) -> dict[str, str]:
    """wallet id -> the month of its latest lot event (the month it is still open in)."""
    rows = tx.all("SELECT wallet_id, month FROM rm_wf_wallets WHERE city = ?", (city,))
    return {str(w): str(m) for w, m in rows}


def add_to_month(tx: Tx, city: str, month: str, metric: str, value: int) -> None:
    tx.execute(
        "INSERT INTO rm_wf_months VALUES (?, ?, ?, ?) ON CONFLICT (city, month, metric) "
        "DO UPDATE SET value = rm_wf_months.value + excluded.value",
        (city, month, metric, value),
    )


class WorkflowMoney:
    name = "workflow"
    tables = ("rm_wf_lots", "rm_wf_wallets", "rm_wf_months", "rm_wf_people", "rm_wf_state")
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_wf_lots (city TEXT NOT NULL, wallet_id TEXT NOT NULL, "
        "seq INTEGER NOT NULL, value BIGINT NOT NULL, base_on TEXT NOT NULL, ends_on TEXT NOT NULL, "
        "PRIMARY KEY (city, wallet_id, seq))",
        "CREATE TABLE IF NOT EXISTS rm_wf_wallets (city TEXT NOT NULL, wallet_id TEXT NOT NULL, "
        "month TEXT NOT NULL, PRIMARY KEY (city, wallet_id))",
        "CREATE TABLE IF NOT EXISTS rm_wf_months (city TEXT NOT NULL, month TEXT NOT NULL, "
        "metric TEXT NOT NULL, value BIGINT NOT NULL, PRIMARY KEY (city, month, metric))",
        "CREATE TABLE IF NOT EXISTS rm_wf_people (city TEXT NOT NULL, month TEXT NOT NULL, "
        "metric TEXT NOT NULL, wallet_id TEXT NOT NULL, PRIMARY KEY (city, month, metric, wallet_id))",
        "CREATE TABLE IF NOT EXISTS rm_wf_state (city TEXT PRIMARY KEY, month TEXT NOT NULL, "
        "period_days INTEGER NOT NULL)",
    )

    def apply(self, tx: Tx, e: events_pb2.Event) -> None:
        if e.type == ERASED:
            for table in ("rm_wf_lots", "rm_wf_wallets", "rm_wf_people"):
                rename(tx, table, "city", e)
            return
        if e.type not in ("Wallet.LotOpened", "Wallet.LotsDrawn"):
            return
        refs, amount, wallet = e.payload.refs, e.payload.amounts["amount"], e.aggregate_id
        on = dt.date.fromisoformat(refs["on"])
        lots = load_lots(tx, e.city, wallet).get(wallet, [])
        month = self._advance(tx, e.city, wallet, month_of(on), lots)
        if e.type == "Wallet.LotOpened":
            ends_on = dt.date.fromisoformat(refs["ends_on"])
            tx.execute(
                "INSERT INTO rm_wf_lots VALUES (?, ?, ?, ?, ?, ?)",
                (e.city, wallet, len(lots) + 1, amount, on.isoformat(), ends_on.isoformat()),
            )
            tx.execute("UPDATE rm_wf_state SET period_days = ? WHERE city = ?", ((ends_on - on).days, e.city))
            self._add(tx, e.city, month, "minted", amount, wallet)
            return
        kept = draw(lots, amount, on)
        tx.execute("DELETE FROM rm_wf_lots WHERE city = ? AND wallet_id = ?", (e.city, wallet))
        for seq, lot in enumerate(kept, start=1):
            tx.execute(
                "INSERT INTO rm_wf_lots VALUES (?, ?, ?, ?, ?, ?)",
                (e.city, wallet, seq, lot.value, lot.base_on.isoformat(), lot.ends_on.isoformat()),
            )
        flow = {"tax": "tax", "lapse": "lapsed"}.get(refs.get("drawn_for", ""), "spent")
        self._add(tx, e.city, month, flow, amount, wallet)

    def apply_batch(self, tx: Tx, batch: Batch) -> None:
        """`apply`'s arithmetic over the run's lot events in order, on the touched wallets'
        lots and months read once, then written once."""
        events = [e for e in batch.events if e.type in LOT_EVENTS]
        if events:
            fold = _LotFold(tx, events)
            for e in events:
                fold.apply(e)
            fold.write(tx)

    def _add(self, tx: Tx, city: str, month: str, metric: str, value: int, wallet: str) -> None:
        add_to_month(tx, city, month, metric, value)
        tx.execute(
            "INSERT INTO rm_wf_people VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (city, month, metric, wallet),
        )

    def _advance(self, tx: Tx, city: str, wallet: str, month: str, lots: list[Lot]) -> str:
        """Close the wallet's months before `month`; returns the month the event counts in.

        A wallet's clock never runs backwards; should an event still be dated
        before the wallet's open month, it counts in that month, so closed
        figures stay as they are.
        """
        row = tx.one("SELECT month FROM rm_wf_wallets WHERE city = ? AND wallet_id = ?", (city, wallet))
        if row is None:
            tx.execute("INSERT INTO rm_wf_wallets VALUES (?, ?, ?)", (city, wallet, month))
        elif str(row[0]) >= month:
            month = str(row[0])
        else:
            open_month = str(row[0])
            while open_month < month:
                value = total_at(lots, month_end(open_month))
                add_to_month(tx, city, open_month, "supply_closed", value)
                add_to_month(tx, city, open_month, "holders_closed", int(value > 0))
                open_month = next_month(open_month)
            tx.execute(
                "UPDATE rm_wf_wallets SET month = ? WHERE city = ? AND wallet_id = ?", (month, city, wallet)
            )
        state = tx.one("SELECT month FROM rm_wf_state WHERE city = ?", (city,))
        if state is None:
            tx.execute("INSERT INTO rm_wf_state VALUES (?, ?, 0)", (city, month))
        elif str(state[0]) < month:
            tx.execute("UPDATE rm_wf_state SET month = ? WHERE city = ?", (month, city))
        return month


LOT_EVENTS = ("Wallet.LotOpened", "Wallet.LotsDrawn")
_CHUNK = 500


class _LotFold:
    """WorkflowMoney.apply in memory: the same steps, on rows loaded before and written after."""

    def __init__(self, tx: Tx, events: list[events_pb2.Event]) -> None:
        touched = sorted({(e.city, e.aggregate_id) for e in events})
        self.lots: dict[tuple[str, str], list[Lot]] = {key: [] for key in touched}
        self.months: dict[tuple[str, str], str] = {}
        for city in sorted({c for c, _ in touched}):
            wallets = [w for c, w in touched if c == city]
            for start in range(0, len(wallets), _CHUNK):
                chunk = wallets[start : start + _CHUNK]
                marks = ", ".join("?" * len(chunk))
                for w, value, base_on, ends_on in tx.all(
                    "SELECT wallet_id, value, base_on, ends_on FROM rm_wf_lots WHERE city = ? "
                    f"AND wallet_id IN ({marks}) ORDER BY wallet_id, seq",
                    (city, *chunk),
                ):
                    lot = Lot(
                        int(value), dt.date.fromisoformat(str(base_on)), dt.date.fromisoformat(str(ends_on))
                    )
                    self.lots[(city, str(w))].append(lot)
                for w, month in tx.all(
                    f"SELECT wallet_id, month FROM rm_wf_wallets WHERE city = ? AND wallet_id IN ({marks})",
                    (city, *chunk),
                ):
                    self.months[(city, str(w))] = str(month)
        self.state: dict[str, list[Any]] = {}  # city -> [month, period_days]
        for city, month, period in tx.all("SELECT city, month, period_days FROM rm_wf_state"):
            self.state[str(city)] = [str(month), int(period)]
        self.cities = {c for c, _ in touched}
        self.figures: dict[tuple[str, str, str], int] = {}
        self.people: dict[tuple[str, str, str, str], None] = {}

    def apply(self, e: events_pb2.Event) -> None:
        refs, amount, key = e.payload.refs, e.payload.amounts["amount"], (e.city, e.aggregate_id)
        on = dt.date.fromisoformat(refs["on"])
        month = self._advance(key, month_of(on))
        if e.type == "Wallet.LotOpened":
            ends_on = dt.date.fromisoformat(refs["ends_on"])
            self.lots[key].append(Lot(amount, on, ends_on))
            self.state[e.city][1] = (ends_on - on).days
            self._add(key, month, "minted", amount)
            return
        self.lots[key] = draw(self.lots[key], amount, on)
        flow = {"tax": "tax", "lapse": "lapsed"}.get(refs.get("drawn_for", ""), "spent")
        self._add(key, month, flow, amount)

    def _add(self, key: tuple[str, str], month: str, metric: str, value: int) -> None:
        figure = (key[0], month, metric)
        self.figures[figure] = self.figures.get(figure, 0) + value
        self.people[(*figure, key[1])] = None

    def _advance(self, key: tuple[str, str], month: str) -> str:
        city = key[0]
        open_month = self.months.get(key)
        if open_month is not None and open_month >= month:
            month = open_month
        elif open_month is not None:
            while open_month < month:
                value = total_at(self.lots[key], month_end(open_month))
                for metric, figure in (("supply_closed", value), ("holders_closed", int(value > 0))):
                    self.figures[(city, open_month, metric)] = (
                        self.figures.get((city, open_month, metric), 0) + figure
                    )
                open_month = next_month(open_month)
        self.months[key] = month
        state = self.state.get(city)
        if state is None:
            self.state[city] = [month, 0]
        elif state[0] < month:
            state[0] = month
        return month

    def write(self, tx: Tx) -> None:
        for city in sorted(self.cities):
            wallets = sorted(w for c, w in self.lots if c == city)
            for start in range(0, len(wallets), _CHUNK):
                chunk = wallets[start : start + _CHUNK]
                marks = ", ".join("?" * len(chunk))
                tx.execute(
                    f"DELETE FROM rm_wf_lots WHERE city = ? AND wallet_id IN ({marks})", (city, *chunk)
                )
        tx.many(
            "INSERT INTO rm_wf_lots VALUES (?, ?, ?, ?, ?, ?)",
            [
                (city, wallet, seq, lot.value, lot.base_on.isoformat(), lot.ends_on.isoformat())
                for (city, wallet), lots in self.lots.items()
                for seq, lot in enumerate(lots, start=1)
            ],
        )
        tx.many(
            "INSERT INTO rm_wf_wallets VALUES (?, ?, ?) "
            "ON CONFLICT (city, wallet_id) DO UPDATE SET month = excluded.month",
            [
                (city, wallet, month)
                for (city, wallet), month in self.months.items()
                if (city, wallet) in self.lots
            ],
        )
        tx.many(
            "INSERT INTO rm_wf_state VALUES (?, ?, ?) ON CONFLICT (city) "
            "DO UPDATE SET month = excluded.month, period_days = excluded.period_days",
            [(city, *self.state[city]) for city in sorted(self.cities)],
        )
        tx.many(
            "INSERT INTO rm_wf_months VALUES (?, ?, ?, ?) ON CONFLICT (city, month, metric) "
            "DO UPDATE SET value = rm_wf_months.value + excluded.value",
            [(*figure, value) for figure, value in self.figures.items()],
        )
        tx.many("INSERT INTO rm_wf_people VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", list(self.people))
