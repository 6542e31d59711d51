"""A group commit reads its aggregates in one go, from what the writer saved last and the
store's newer events: another writer's changes are never missed, and a failed save leaves
nothing stale behind."""

from __future__ import annotations

from typing import Any

import pytest
from citykit import Cities, open_wallet, wallet_state

from aggregates.receipt import Receipt
from services.commands import EraseWallet
from services.privacy.sealing import REDACTED

TRIP = {"mode": "bike", "distance_m": 200_000, "date": "2026-05-04"}  # 40 kg: 2 tokens


def test_a_group_sees_what_another_writer_saved_since(cities: Cities) -> None:
    one, two = cities.open("vienna"), cities.open("vienna")
    w = open_wallet(one, "w")
    assert one.execute_group([one.record_activity("t1", w, "trip", TRIP)]) == [
        one.execute(one.record_activity("t1", w, "trip", TRIP))
    ]
    # `one`'s writer now holds the wallet at 2 tokens; `two` adds 2 more behind its back.
    two.execute(two.record_activity("t2", w, "trip", TRIP))
    out = one.execute_group([one.record_activity("t3", w, "trip", TRIP)])
    assert isinstance(out[0], dict) and out[0]["amount"] == 2
    assert wallet_state(one, w)["balance"] == wallet_state(two, w)["balance"] == 6


def test_a_retried_group_replays_every_stored_result_without_a_second_award(cities: Cities) -> None:
    app = cities.open("vienna")
    w = open_wallet(app, "w")
    group = [app.record_activity(f"t{i}", w, "trip", TRIP) for i in range(3)]
    first = app.execute_group(group)
    # Read ahead, the receipts answer the retry from memory: nothing more is stored.
    before = app.recorder.max_notification_id()
    assert app.execute_group(group) == first
    assert app.recorder.max_notification_id() == before
    assert wallet_state(app, w)["balance"] == 6


def test_a_failed_group_save_leaves_nothing_stale_behind(
    cities: Cities, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = cities.open("vienna"), cities.open("vienna")
    w = open_wallet(one, "w")
    one.execute_group([one.record_activity("t1", w, "trip", TRIP)])
    read_ahead = one.executor._read_ahead
    raced: list[bool] = []

    def then_the_other_writes(uow: Any, cmds: Any) -> None:
        read_ahead(uow, cmds)
        if not raced:  # between this group's read and its save, once
            raced.append(True)
            two.execute(two.record_activity("t2", w, "trip", TRIP))

    monkeypatch.setattr(one.executor, "_read_ahead", then_the_other_writes)
    out = one.execute_group([one.record_activity("t3", w, "trip", TRIP)])
    # The save collided, the group ran again on what is stored, and credited on top.
    assert isinstance(out[0], dict) and out[0]["amount"] == 2
    assert wallet_state(one, w)["balance"] == wallet_state(two, w)["balance"] == 6
    held = one.executor.hot.take(w)
    assert held is not None and held.version == two.wallet(w).version and held.balance == 6


def test_receipts_are_not_held_between_groups(cities: Cities) -> None:
    app = cities.open("vienna")
    w = open_wallet(app, "w")
    app.execute_group([app.record_activity("t1", w, "trip", TRIP)])
    assert app.executor.hot.take(Receipt.create_id(app.key, "t1")) is None
    assert app.executor.hot.take(w) is not None


def test_after_an_erasure_the_wallet_is_rebuilt_from_the_store(cities: Cities) -> None:
    app = cities.open("vienna")
    w = open_wallet(app, "w")
    app.execute_group([app.record_activity("t1", w, "trip", TRIP)])
    held = app.executor.hot.take(w)
    assert held is not None and "2026-05-04" in next(iter(held.earned.values()))
    app.executor.hot.give_back([held])
    assert app.keys is not None
    app.keys.erase([w])  # the key goes (by another process, say): the plain dates held must go too
    app.execute_group([app.record_activity("t2", w, "trip", {**TRIP, "date": "2026-05-05"})])
    again = app.executor.hot.take(w)
    assert again is not None and REDACTED in next(iter(again.earned.values()))


def test_a_wallet_erased_in_a_group_is_not_held(cities: Cities) -> None:
    app = cities.open("vienna")
    w = open_wallet(app, "w")
    app.execute_group([app.record_activity("t1", w, "trip", TRIP)])
    out = app.execute_group([EraseWallet("e", w, "asked to be forgotten")])
    assert out == [{"erased": True}]
    assert app.executor.hot.take(w) is None
