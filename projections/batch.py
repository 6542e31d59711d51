"""A run of events that every read model folds at once, and the holds they name.

The projector cuts each transaction's events into runs (`runs`): inside a run no
row of any read model is renamed, so a model can add up its changes per key in
memory and write each key once. Erasures are applied on their own, in order,
after the run they fall in was written. That is what one event at a time gives
as long as nothing later in the run touches an erased wallet's rows: a wallet's
erasure is its last event, so a run is cut only before an event that names an
erased pseudonym, a hold not placed in the run by a wallet still named, or an
appeal's decision (appeals are few).

Holds are the one thing a model looks up: a release, spend or burn needs the
wallet and amount of the hold it names. A run resolves all of them up front,
with one query for the holds placed before it and an in-memory overlay for the
holds placed earlier in the same run. A hold named before it is placed fails as
it does one event at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from civfed.v1 import events_pb2
from projections.erasure import ERASED
from projections.hold_events import is_hold_consumed
from projections.store import Tx

# Enough placeholders per query to be quick, few enough for SQLite's limit.
_CHUNK = 500

HoldKey = tuple[str, str]  # (city, hold id)


PLACED = "Wallet.HoldPlaced"


def names_hold(type_name: str) -> bool:
    return type_name == "Wallet.HoldReleased" or is_hold_consumed(type_name)


@dataclass
class Batch:
    events: Sequence[events_pb2.Event]
    # (city, hold id) -> (wallet pseudonym, amount) for every hold the run names
    holds: dict[HoldKey, tuple[str, int]] = field(default_factory=dict)
    # The holds first placed in this run, in order: what Lookups inserts.
    placed: dict[HoldKey, tuple[str, int]] = field(default_factory=dict)

    @classmethod
    def load(cls, tx: Tx, events: Sequence[events_pb2.Event]) -> Batch:
        about_holds = [e for e in events if e.type == PLACED or names_hold(e.type)]
        stored = _stored_holds(tx, {(e.city, e.payload.refs["hold_id"]) for e in about_holds})
        batch = cls(events)
        for e in about_holds:
            if e.type == PLACED:
                key = (e.city, e.payload.refs["hold_id"])
                if key not in stored and key not in batch.placed:
                    batch.placed[key] = (e.aggregate_id, e.payload.amounts["amount"])
            else:
                key = (e.city, e.payload.refs["hold_id"])
                if key not in stored and key not in batch.placed:
                    raise LookupError(f"{key[0]}: hold {key[1]} was never placed in this log")
        batch.holds = {**stored, **batch.placed}
        return batch

    def hold(self, city: str, hold_id: str) -> tuple[str, int]:
        """(wallet pseudonym, amount) of a hold placed before the run or earlier in it."""
        return self.holds[(city, hold_id)]


Run = tuple[list[events_pb2.Event], list[events_pb2.Event]]


def runs(events: Sequence[events_pb2.Event], defer: bool = True) -> Iterator[Run]:
    """(events to fold, erasures to apply after them in order), covering `events` in order.

    `defer=False` ends a run at every erasure (for read models that fold nothing)."""
    folded: list[events_pb2.Event] = []
    erasures: list[events_pb2.Event] = []
    erased: set[tuple[str, str]] = set()
    placed_by: dict[HoldKey, str] = {}  # holds placed in this run -> their wallet
    for e in events:
        if erasures and _touches(e, erased, placed_by):
            yield folded, erasures
            folded, erasures, erased, placed_by = [], [], set(), {}
        if e.type == ERASED:
            erasures.append(e)
            erased.add((e.city, e.aggregate_id))
            if not defer:
                yield folded, erasures
                folded, erasures, erased, placed_by = [], [], set(), {}
            continue
        if e.type == PLACED:
            placed_by.setdefault((e.city, e.payload.refs["hold_id"]), e.aggregate_id)
        folded.append(e)
    if folded or erasures:
        yield folded, erasures


def _touches(e: events_pb2.Event, erased: set[tuple[str, str]], placed_by: dict[HoldKey, str]) -> bool:
    """Whether `e` might read or write rows of a wallet erased earlier in the run."""
    if e.type == ERASED:
        return False  # erasures apply in order, each to its own wallet's rows
    if (e.city, e.aggregate_id) in erased or (e.city, e.payload.refs.get("wallet_id", "")) in erased:
        return True
    if e.type == "Appeal.Decided":
        return True  # its appeal may be an erased wallet's, under a new id by now
    if names_hold(e.type):
        wallet = placed_by.get((e.city, e.payload.refs["hold_id"]))
        return wallet is None or (e.city, wallet) in erased
    return False


def _stored_holds(tx: Tx, keys: set[HoldKey]) -> dict[HoldKey, tuple[str, int]]:
    """The stored holds among `keys`, city by city: by the table's key (city, hold id), so
    each lookup is an index probe however many holds the read model keeps."""
    out: dict[HoldKey, tuple[str, int]] = {}
    by_city: dict[str, list[str]] = {}
    for city, hold_id in keys:
        by_city.setdefault(city, []).append(hold_id)
    for city, hold_ids in sorted(by_city.items()):
        ids = sorted(hold_ids)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            for hold_id, wallet, amount in tx.all(
                f"SELECT hold_id, wallet_id, amount FROM rm_holds WHERE city = ? AND hold_id IN ({marks})",
                [city, *chunk],
            ):
                out[(city, str(hold_id))] = (str(wallet), int(amount))
    return out
