"""What every read model offers the projector, and small shared helpers."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from civfed.v1 import events_pb2
from projections.hold_events import is_hold_consumed
from projections.store import Tx

if TYPE_CHECKING:
    from projections.batch import Batch


class ReadModel(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def ddl(self) -> tuple[str, ...]:
        """CREATE TABLE IF NOT EXISTS statements for this model's tables."""

    @property
    def tables(self) -> tuple[str, ...]:
        """The tables a rebuild empties."""

    def apply(self, tx: Tx, event: events_pb2.Event) -> None:
        """Change the read model for one event, inside the caller's transaction."""


@runtime_checkable
class BatchModel(ReadModel, Protocol):
    """A read model that folds a run of events at once (projections/batch.py)."""

    def apply_batch(self, tx: Tx, batch: Batch) -> None:
        """The same change as `apply` on each event of `batch` in turn. A run never holds an
        erasure, so changes can be added up per key in memory and written once."""


def day_of(event: events_pb2.Event) -> str:
    return dt.datetime.fromtimestamp(event.time.seconds, dt.UTC).date().isoformat()


def partner_city(event: events_pb2.Event) -> str | None:
    """The other city a cross-city event names (any `*_city` ref that is not this city)."""
    for name, value in sorted(event.payload.refs.items()):
        if name.endswith("_city") and value and value != event.city:
            return str(value)
    return None


__all__ = ["ReadModel", "day_of", "is_hold_consumed", "partner_city"]
