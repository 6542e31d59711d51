"""Folding events in batches gives exactly the read models that applying them one by one gives.

Randomised (seeded) event streams, as the relay would publish them over three partitions:
wallets that earn, spend, place holds and settle them (often within one batch), appeals,
lots of a depreciating currency, shops' payments, cross-city redemptions, erasures amid a
wallet's other events, redelivered offsets and republished messages. Each stream goes once
through the batched projector in random batch sizes and once one delivery per transaction
through the reference path (`batched=False`); every table must end the same, on SQLite and
on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aggregates.depreciation import Lot, draw, total_at
from civfed.v1 import events_pb2
from projections import projector as projector_module
from projections.batch import runs
from projections.erasure import TOKEN
from projections.projector import Delivery, Projector
from projections.store import Store
from tests.conftest import PG_URL, new_schema

CITIES = ("alpha", "beta")
PARTS = 3
START = dt.datetime(2026, 5, 1, 8, tzinfo=dt.UTC)
# The funds an award may name, hostile ones among them: a quote, the separator a PostgreSQL
# batch write splits a column on, a semicolon, letters beyond ASCII.
FUNDS = ("", "parks", "it's\x1f; DROP TABLE rm_funds", "fondo-città")


def event(city: str, aggregate: str, type_name: str, when: dt.datetime, **fields: Any) -> events_pb2.Event:
    e = events_pb2.Event(city=city, aggregate_id=aggregate, type=type_name)
    for name, value in fields.items():
        if isinstance(value, int):
            e.payload.amounts[name] = value
        else:
            e.payload.refs[name] = value
    e.time.FromDatetime(when)
    return e


def wallet_stream(rng: random.Random, city: str, n: int) -> Iterator[tuple[str, events_pb2.Event]]:
    """One wallet's events in its own order, each with its partition key."""
    wallet = f"{city}-w{n}-{rng.getrandbits(32):08x}"
    when = START + dt.timedelta(hours=rng.randrange(48))
    other = CITIES[1 - CITIES.index(city)]
    lots: list[Lot] = []
    on = dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(20))

    def at(type_name: str, **fields: Any) -> tuple[str, events_pb2.Event]:
        nonlocal when
        when += dt.timedelta(minutes=rng.randrange(1, 600))
        return wallet, event(city, wallet, type_name, when, **fields)

    yield at("Wallet.Opened", participant_kind="resident")
    for step in range(rng.randrange(2, 14)):
        roll = rng.random()
        if roll < 0.3:
            rule_id, fund = rng.choice(("eco", "civic")), rng.choice(FUNDS)  # "": no fund named
            yield at("Wallet.Credited", amount=rng.randrange(1, 50), rule_id=rule_id, fund=fund)
        elif roll < 0.35:
            yield at("Wallet.Progressed", rule_id="eco")
        elif roll < 0.45:
            extra = {"spent_for": "prize"} if rng.random() < 0.3 else {}
            yield at("Wallet.Spent", amount=rng.randrange(1, 10), category=rng.choice(("food", "")), **extra)
        elif roll < 0.65:
            hold_id = f"h-{wallet}-{step}"
            yield at("Wallet.HoldPlaced", hold_id=hold_id, amount=rng.randrange(1, 20))
            how = rng.choice(("released", "spent", "burned", "open"))
            if how == "released":
                yield at("Wallet.HoldReleased", hold_id=hold_id)
            elif how == "spent":
                yield at("Wallet.HoldSpent", hold_id=hold_id, category=rng.choice(("food", "culture", "")))
            elif how == "burned":
                yield at("Wallet.HoldBurned", hold_id=hold_id, partner_city=other)
        elif roll < 0.72:
            yield at(rng.choice(("Wallet.TaxPaid", "Wallet.Lapsed", "Wallet.Depreciated")), amount=1)
        elif roll < 0.8:
            appeal = f"a-{wallet}-{step}"
            filed = event(city, appeal, "Appeal.Filed", when, wallet_id=wallet, subject_kind="award")
            yield wallet, filed
            if rng.random() < 0.7:
                decided = when + dt.timedelta(hours=rng.randrange(1, 90))
                yield wallet, event(city, appeal, "Appeal.Decided", decided)
        elif roll < 0.92:
            on += dt.timedelta(days=rng.randrange(0, 40))
            value = total_at(lots, on)
            if value > 1 and rng.random() < 0.5:
                amount = rng.randrange(1, value)
                lots = draw(lots, amount, on)
                drawn_for = rng.choice(("tax", "lapse", "spend"))
                yield at("Wallet.LotsDrawn", amount=amount, on=on.isoformat(), drawn_for=drawn_for)
            else:
                amount = rng.randrange(1, 100)
                ends = on + dt.timedelta(days=365)
                lots.append(Lot(amount, on, ends))
                yield at("Wallet.LotOpened", amount=amount, on=on.isoformat(), ends_on=ends.isoformat())
        else:
            yield at("Wallet.AppealLodged", subject_kind="award")
    if rng.random() < 0.3:
        yield at("Wallet.Erased")
        if rng.random() < 0.5:
            yield at("Wallet.Closed")


def fund_stream(rng: random.Random, city: str, n: int) -> Iterator[tuple[str, events_pb2.Event]]:
    """A fund declared, then topped up a few times."""
    fund = f"{city}-fund{n}"
    when = START + dt.timedelta(hours=rng.randrange(24))
    budget = rng.randrange(1, 10**6)
    declared = event(city, fund, "Fund.Declared", when, fund_id=FUNDS[1 + n % 3], budget=budget)
    declared.version = 1
    yield fund, declared
    for version in range(2, rng.randrange(2, 6)):
        when += dt.timedelta(hours=rng.randrange(1, 48))
        top_up = event(city, fund, "Fund.ToppedUp", when, amount=rng.randrange(1, 10**4))
        top_up.version = version
        yield fund, top_up


def shop_stream(rng: random.Random, city: str, n: int) -> Iterator[tuple[str, events_pb2.Event]]:
    shop = f"{city}-shop{n}"
    for i in range(rng.randrange(1, 8)):
        when = START + dt.timedelta(hours=rng.randrange(72))
        if rng.random() < 0.8:
            yield shop, event(city, shop, "Merchant.Paid", when, amount=rng.randrange(1, 30), kind="spend")
        else:
            yield shop, event(city, shop, "Merchant.PaymentReversed", when, amount=1, kind="spend")
        if rng.random() < 0.3:
            other = CITIES[1 - CITIES.index(city)]
            yield (
                f"fr{n}-{i}",
                event(
                    city, "", "ForeignRedemption.Committed", when, home_city=other, home_amount=5, credit=7
                ),
            )


def deliveries(seed: int, wallets: int = 60) -> list[Delivery]:
    """One city's stream interleaved from its wallets and shops, published over partitions by
    key, with redelivered offsets and republished messages."""
    rng = random.Random(seed)
    streams = [wallet_stream(rng, c, i) for c in CITIES for i in range(wallets)]
    streams += [shop_stream(rng, c, i) for c in CITIES for i in range(4)]
    streams += [fund_stream(rng, c, i) for c in CITIES for i in range(2)]
    published: list[Delivery] = []
    offsets = [0] * PARTS
    nid = 0
    while streams:
        stream = rng.choice(streams)
        item = next(stream, None)
        if item is None:
            streams.remove(stream)
            continue
        key, e = item
        nid += 1
        e.notification_id = nid
        part = int(hashlib.sha256(key.encode()).hexdigest(), 16) % PARTS
        offsets[part] += 1
        published.append(Delivery(part, offsets[part], e, nid))
        if rng.random() < 0.03:  # the relay republished it (at-least-once): a new offset
            offsets[part] += 1
            published.append(Delivery(part, offsets[part], e, nid))
    out: list[Delivery] = []
    for d in published:
        out.append(d)
        if rng.random() < 0.02:  # a consumer seeks back and reads a few offsets again
            out += [x for x in out[-rng.randrange(1, 30) :] if x.part == d.part]
    return out


def deterministic_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each erasure's token derived from its notification id, so two runs can be compared."""

    def with_token(e: events_pb2.Event) -> events_pb2.Event:
        out = events_pb2.Event()
        out.CopyFrom(e)
        out.payload.refs[TOKEN] = hashlib.sha256(str(e.notification_id).encode()).hexdigest()
        return out

    monkeypatch.setattr(projector_module, "with_token", with_token)


def tables(store: Store, projector: Projector, ids: set[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, sorted; hold and appeal ids an erasure replaced by random ones
    (which no two runs share) read as `rekeyed`."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with store.transaction() as tx:
        for table in ("rm_positions", *(t for m in projector.models for t in m.tables)):
            rows = tx.all(f"SELECT * FROM {table}")
            if table in ("rm_holds", "rm_appeals"):
                rows = [(r[0], r[1] if r[1] in ids else "rekeyed", *r[2:]) for r in rows]
            out[table] = sorted(rows, key=repr)
    return out


def project(store: Store, stream: list[Delivery], rng: random.Random | None) -> dict[str, Any]:
    projector = Projector(store, batched=rng is not None)
    i = 0
    while i < len(stream):
        size = rng.choice((1, 7, 50, 400)) if rng is not None else 1
        projector.apply_batch("topic", stream[i : i + size])
        i += size
    ids = {d.event.payload.refs.get("hold_id") or d.event.aggregate_id for d in stream if d.event is not None}
    return tables(store, projector, ids)


def check(seed: int, batched_store: Store, one_by_one_store: Store) -> None:
    stream = deliveries(seed)
    types = {d.event.type for d in stream if d.event is not None}
    assert {"Wallet.Erased", "Wallet.HoldBurned", "Wallet.LotsDrawn", "Appeal.Decided"} <= types
    assert len({d.next_position for d in stream}) < len(stream)  # some offsets come twice
    expected = project(one_by_one_store, stream, None)
    got = project(batched_store, stream, random.Random(seed))
    assert expected["rm_balances"] and expected["rm_cells"] and expected["rm_wf_lots"]
    assert expected["rm_rule_funds"] and expected["rm_funds"] and expected["rm_fund_top_ups"]
    assert got == expected


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_batches_match_one_by_one_on_sqlite(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deterministic_tokens(monkeypatch)
    batched = Store(f"sqlite:///{tmp_path / 'batched.sqlite'}")
    one_by_one = Store(f"sqlite:///{tmp_path / 'one.sqlite'}")
    try:
        check(seed, batched, one_by_one)
    finally:
        batched.close()
        one_by_one.close()


@pytest.mark.parametrize("seed", [5, 6])
def test_batches_match_one_by_one_on_postgres(
    seed: int, pg_schemas: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    deterministic_tokens(monkeypatch)
    batched = Store(PG_URL, new_schema(pg_schemas))
    one_by_one = Store(PG_URL, new_schema(pg_schemas))
    try:
        check(seed, batched, one_by_one)
    finally:
        batched.close()
        one_by_one.close()


def test_a_hold_named_before_it_is_placed_fails_as_one_by_one(tmp_path: Path) -> None:
    when = START
    placed = event("alpha", "w", "Wallet.HoldPlaced", when, hold_id="h1", amount=3)
    spent = event("alpha", "w", "Wallet.HoldSpent", when, hold_id="h1")
    stream = [Delivery(0, 1, spent, 1), Delivery(0, 2, placed, 2)]
    for batched in (True, False):
        projector = Projector(Store(f"sqlite:///{tmp_path / f'{batched}.sqlite'}"), batched=batched)
        with pytest.raises(LookupError, match="hold h1 was never placed"):
            projector.apply_batch("topic", stream)
        assert projector.positions("topic") == {}  # nothing of the batch was kept


def test_an_erasure_ends_a_run_only_before_what_could_touch_the_erased_wallet() -> None:
    def e(wallet: str, type_name: str, **fields: Any) -> events_pb2.Event:
        return event("alpha", wallet, type_name, START, **fields)

    erase_x = e("x", "Wallet.Erased")
    before = [e("x", "Wallet.Credited", amount=1), e("y", "Wallet.HoldPlaced", hold_id="hy", amount=2)]
    carry_on = [e("y", "Wallet.Credited", amount=3), e("y", "Wallet.HoldSpent", hold_id="hy")]
    assert list(runs([*before, erase_x, *carry_on])) == [([*before, *carry_on], [erase_x])]
    # Each of these might find the erased wallet's rows: the run ends before it.
    for later in (
        e("x", "Wallet.Credited", amount=1),
        e("appeal-1", "Appeal.Filed", wallet_id="x"),
        e("appeal-1", "Appeal.Decided"),
        e("y", "Wallet.HoldSpent", hold_id="placed-before-the-run"),
    ):
        assert list(runs([*before, erase_x, later])) == [(before, [erase_x]), ([later], [])]
    assert list(runs([*before, erase_x, *carry_on], defer=False)) == [(before, [erase_x]), (carry_on, [])]
