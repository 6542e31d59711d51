"""Group commit: concurrent commands saved together give each caller exactly its own answer."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import AggregateNotFoundError

from aggregates.errors import IdempotencyConflict, InsufficientBalance, NotFound
from aggregates.merchant import Merchant
from aggregates.receipt import Receipt
from services.city import CityApplication
from services.group_writer import GroupWriter
from services.settings.cities import load_city, load_settings
from services.unit_of_work import Command, UnitOfWork


class CountingApp(CityApplication):
    """Counts store transactions, to show that queued commands share them."""

    saves = 0

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        type(self).saves += 1
        return super().save(*objs, **kwargs)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[CountingApp]:
    settings = load_settings({"CIVFED_DATA_DIR": str(tmp_path)})
    a = CountingApp(load_city("bologna"), settings.eventsourcing_env("bologna"))
    yield a
    a.close()


def funded_wallet(app: CityApplication, tokens: int) -> tuple[UUID, UUID]:
    consent = app.city.config.consent_versions[-1]
    wallet = UUID(app.execute(app.open_wallet("w", "resident", consent))["wallet_id"])
    shop = UUID(app.execute(app.register_merchant("m", "Coop", "food", True))["merchant_id"])
    earned = 0
    for day in range(1, 29):
        if earned >= tokens:
            break
        fields = {"action": "bus_ride", "date": f"2026-05-{day:02d}"}
        earned += app.execute(app.record_activity(f"a{day}", wallet, "eco_action", fields))["amount"]
    return wallet, shop


def test_racing_spends_are_decided_in_order_and_share_transactions(app: CountingApp) -> None:
    wallet, shop = funded_wallet(app, 10)
    balance = app.wallet(wallet).balance
    assert 10 <= balance < 40  # some of the forty spends must be refused
    writer = GroupWriter(app, threading.Lock())
    CountingApp.saves = 0
    start = threading.Barrier(40)

    def spend(i: int) -> str:
        start.wait()
        try:
            writer.execute(app.spend(f"s{i}", wallet, shop, 1, f"r{i}"))
            return "spent"
        except InsufficientBalance:
            return "refused"

    with ThreadPoolExecutor(max_workers=40) as pool:
        outcomes = list(pool.map(spend, range(40)))
    assert outcomes.count("spent") == min(balance, 40)
    assert app.wallet(wallet).balance == balance - outcomes.count("spent") >= 0
    assert CountingApp.saves < 40  # forty commands, fewer transactions
    # Each answer was recorded under its own key: a retry replays it.
    for i, outcome in enumerate(outcomes):
        if outcome == "spent":
            assert writer.execute(app.spend(f"s{i}", wallet, shop, 1, f"r{i}"))["spent"] == 1
        else:
            with pytest.raises(InsufficientBalance):
                writer.execute(app.spend(f"s{i}", wallet, shop, 1, f"r{i}"))


def test_a_failing_command_fails_only_its_caller(app: CountingApp) -> None:
    wallet, shop = funded_wallet(app, 3)
    writer = GroupWriter(app, threading.Lock())
    gate = threading.Barrier(3)

    def broken(uow: UnitOfWork) -> dict[str, Any]:
        raise ValueError("a bug in one handler")

    commands = [
        app.spend("ok", wallet, shop, 1, "ok"),
        Command("broken", "broken", {}, broken),
        app.spend("m", wallet, shop, 2, "reused key, other parameters"),  # "m" registered the shop
    ]

    def run(cmd: Command) -> object:
        gate.wait()
        try:
            return writer.execute(cmd)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=3) as pool:
        ok, failed, conflict = pool.map(run, commands)
    assert ok == {"spent": 1, "available": app.wallet(wallet).available}
    assert isinstance(failed, ValueError)
    assert isinstance(conflict, IdempotencyConflict)
    assert app.wallet(wallet).balance == app.wallet(wallet).available


def test_saga_steps_share_transactions_keep_no_receipt_and_hand_back_the_saved_aggregate(
    app: CountingApp,
) -> None:
    _, shop = funded_wallet(app, 1)
    writer = GroupWriter(app, threading.Lock())
    version = app.repository.get(shop).version
    CountingApp.saves = 0
    gate = threading.Barrier(20)

    def pay(i: int) -> Any:
        def step(uow: UnitOfWork) -> dict[str, Any]:
            merchant = uow.get(shop, Merchant, "merchant")
            merchant.paid(1, "redemption", f"r{i}")
            return {"merchant": merchant}

        gate.wait()
        return writer.execute(Command.step("pay", step))["merchant"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        handed_back = list(pool.map(pay, range(20)))
    assert CountingApp.saves < 20  # queued steps were saved together
    stored = app.repository.get(shop)
    assert stored.version == version + 20  # every step saved once, none lost
    # Each caller gets the aggregate as its batch saved it, with nothing left pending.
    assert all(m.id == shop and not m.pending_events for m in handed_back)
    assert max(m.version for m in handed_back) == stored.version
    # A step is guarded by the state it expects, not by a key: no receipt is stored.
    with pytest.raises(AggregateNotFoundError):
        app.repository.get(Receipt.create_id(app.key, ""))


def test_a_step_refused_part_way_saves_nothing_of_itself_and_fails_only_its_caller(
    app: CountingApp,
) -> None:
    _, shop = funded_wallet(app, 1)
    writer = GroupWriter(app, threading.Lock())
    version = app.repository.get(shop).version
    gate = threading.Barrier(3)

    def pay(reference: str, then_refuse: bool) -> Command:
        def step(uow: UnitOfWork) -> dict[str, Any]:
            uow.get(shop, Merchant, "merchant").paid(1, "redemption", reference)
            if then_refuse:
                uow.get(uuid4(), Merchant, "merchant")  # refused after the payment above
            return {}

        return Command.step("pay", step)

    def run(cmd: Command) -> object:
        gate.wait()
        try:
            return writer.execute(cmd)
        except Exception as exc:
            return exc

    steps = [pay("a", False), pay("refused", True), pay("b", False)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        first, refused, last = pool.map(run, steps)
    assert first == {} and last == {}
    assert isinstance(refused, NotFound)
    stored = app.repository.get(shop)
    assert stored.version == version + 2
    references = [e.reference for e in app.events.get(shop) if type(e).__name__ == "Paid"]
    assert sorted(references) == ["a", "b"]


def test_a_submitted_command_is_saved_without_its_caller_and_before_close(app: CountingApp) -> None:
    writer = GroupWriter(app, threading.Lock())
    consent = app.city.config.consent_versions[-1]
    done = writer.submit(app.open_wallet("later", "resident", consent))
    wallet = UUID(done.result(timeout=10)["wallet_id"])  # the writer's own thread saved it
    assert app.wallet(wallet).balance == 0
    # Queued behind a held lock, it is saved by the next caller's batch or at close.
    with writer.lock:
        queued = [writer.submit(app.register_merchant(f"m{i}", "Coop", "food", True)) for i in range(3)]
        assert not any(f.done() for f in queued)
    writer.close()
    assert all(f.done() for f in queued)
    for f in queued:
        assert isinstance(UnitOfWork(app).get(UUID(f.result()["merchant_id"]), Merchant, "m"), Merchant)
    with pytest.raises(RuntimeError):
        writer.submit(app.open_wallet("too-late", "resident", consent))


def test_settle_returns_only_when_every_submitted_command_is_saved(app: CountingApp) -> None:
    writer = GroupWriter(app, threading.Lock())
    # Queued while another holds the write lock: nothing is saved yet.
    with writer.lock:
        queued = [writer.submit(app.register_merchant(f"s{i}", "Coop", "food", True)) for i in range(3)]
        assert not any(f.done() for f in queued)
    # A read that must see every answered step waits for them, and then finds them stored.
    writer.settle()
    assert all(f.done() for f in queued)
    for f in queued:
        assert isinstance(UnitOfWork(app).get(UUID(f.result()["merchant_id"]), Merchant, "m"), Merchant)
    writer.settle()  # nothing queued: returns at once
    writer.close()
