"""Applies integration events to read models, exactly once per (city, notification id).

Each batch is one transaction: the read-model changes and the new positions of
the source commit together, so a crash anywhere leaves either all of a batch or
none of it. Duplicated deliveries (the relay is at-least-once) are skipped by
the per-partition high-water mark of notification ids, stored in the same row.

A rebuild reads each city's own store (projections/log_source.py) and then
starts the Kafka source where the topic ends (`start_after`): every partition
is marked with the last notification id the store gave, and a floor row
(partition -1) marks partitions the topic did not have yet. A delivery from
Kafka whose notification id the store already gave is skipped, so no event
counts twice across the two sources, and none is missed.

Within a transaction the events are folded in runs (projections/batch.py): each
read model adds up a run's changes per key and writes each key once, which is
what makes catching up and rebuilding fast. Erasures are applied one at a time
after the run they fall in, and a run ends before anything that could touch an
erased wallet's rows, so the outcome is the same as applying every event alone
(`batched=False`, which the tests compare against).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from civfed.v1 import events_pb2
from projections.appeals import Appeals
from projections.balances import Balances
from projections.batch import Batch, runs
from projections.dashboard import Dashboard
from projections.erasure import ERASED, with_token
from projections.funds import Funds
from projections.lookups import Lookups
from projections.model import BatchModel, ReadModel
from projections.settlement import Settlement
from projections.statements import Statements
from projections.store import FLOOR, POSITIONS_DDL, Store, Tx, read_positions, write_position, write_positions
from projections.workflow import WorkflowMoney


def default_models() -> list[ReadModel]:
    # Lookups first: later models in the same transaction join against them.
    return [
        Lookups(),
        Balances(),
        Dashboard(),
        Statements(),
        Settlement(),
        Appeals(),
        WorkflowMoney(),
        Funds(),
    ]


class Delivery(NamedTuple):
    """One event as a source delivered it: where it sat and what comes next. A named tuple:
    a source makes one per event, and a frozen dataclass takes twice as long to make."""

    part: int
    next_position: int
    event: events_pb2.Event | None  # None: an internal event that only advances the position
    notification_id: int


class Projector:
    def __init__(self, store: Store, models: Sequence[ReadModel] | None = None, batched: bool = True) -> None:
        """`batched=False` applies every event alone, model by model (the reference the
        batched path is tested against)."""
        self.store = store
        self.models = list(models) if models is not None else default_models()
        self.batched = batched
        with store.transaction() as tx:
            tx.execute(POSITIONS_DDL)
            for model in self.models:
                for ddl in model.ddl:
                    tx.execute(ddl)
                upgrade = getattr(model, "upgrade", None)
                if upgrade is not None:  # a model whose tables gained columns since they were made
                    upgrade(tx)

    def positions(self, source: str) -> dict[int, tuple[int, int]]:
        with self.store.transaction() as tx:
            return read_positions(tx, source)

    def apply_batch(self, source: str, deliveries: Iterable[Delivery]) -> int:
        """Apply a batch in one transaction; returns how many events took effect."""
        with self.store.transaction() as tx:
            positions = read_positions(tx, source)
            floor = positions.get(FLOOR, (0, 0))[1]
            events: list[events_pb2.Event] = []
            for d in deliveries:
                position, last_nid = positions.get(d.part, (0, floor))
                if d.next_position <= position:
                    continue  # re-delivered offset, already reflected
                if d.event is not None and d.notification_id > last_nid:
                    events.append(d.event)
                positions[d.part] = (d.next_position, max(last_nid, d.notification_id))
            if self.batched:
                self._fold(tx, events)
            else:
                for event in events:
                    self._apply(tx, event)
            write_positions(tx, source, positions)
        return len(events)

    def _apply(self, tx: Tx, event: events_pb2.Event) -> None:
        if event.type == ERASED:
            event = with_token(event)  # one token for every model (projections/erasure.py)
        for model in self.models:
            model.apply(tx, event)

    def _fold(self, tx: Tx, events: Sequence[events_pb2.Event]) -> None:
        """Each run folded at once, model by model, then its erasures one by one
        (projections/batch.py says where runs end)."""
        folding = all(isinstance(model, BatchModel) for model in self.models)
        for folded, erasures in runs(events, defer=folding):
            if folded:
                batch = Batch.load(tx, folded)
                for model in self.models:
                    if isinstance(model, BatchModel):
                        model.apply_batch(tx, batch)
                    else:
                        for event in batch.events:
                            model.apply(tx, event)
            for erasure in erasures:
                self._apply(tx, erasure)

    def start_after(self, source: str, ends: dict[int, int], last_nid: int) -> None:
        """Continue `source` (a topic) at its partitions' `ends`, as if every event up to
        notification id `last_nid` had come from it (what a rebuild read from the store)."""
        with self.store.transaction() as tx:
            tx.execute("DELETE FROM rm_positions WHERE source = ?", (source,))
            write_position(tx, source, FLOOR, 0, last_nid)
            for part, end in ends.items():
                write_position(tx, source, part, end, last_nid)

    def reset(self) -> None:
        """Empty every read model and forget every position (the start of a rebuild)."""
        with self.store.transaction() as tx:
            tx.execute("DELETE FROM rm_positions")
            for model in self.models:
                for table in model.tables:
                    tx.execute(f"DELETE FROM {table}")
