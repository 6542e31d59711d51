"""The prize book keeps its claims in the node's store, not in memory: a closed claim takes
no memory, and a wallet's or a shop's claims, open or closed, are all still listed after a
restart. On SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from uuid import UUID

import pytest
from citykit import Cities, merchant, open_wallet

from services import commands as c
from services import prizes
from services.city import CityApplication


def funded(app: CityApplication, key: str) -> UUID:
    """A resident of Rome with 10 points."""
    w = open_wallet(app, key)
    fields = {"action": "recycling_drop_off", "date": "2026-05-04"}
    app.execute(app.record_activity(f"funds:{key}", w, "eco_action", fields))
    return w


def one_prize(cities: Cities) -> tuple[CityApplication, UUID, UUID, UUID]:
    """Rome with one funded resident and one shop offering one prize: (app, wallet, shop, prize)."""
    app = cities.open("rome")
    w = funded(app, "w")
    shop = merchant(app, "shop")
    return app, w, shop, offer(app, "p", shop, "Gelato")


def offer(app: CityApplication, key: str, shop: UUID, name: str) -> UUID:
    return UUID(app.execute(app.offer_prize(key, shop, name, 1, 20))["prize_id"])


def claim(app: CityApplication, key: str, wallet: UUID, prize: UUID) -> UUID:
    return UUID(app.execute(c.PlacePrizeClaim(key, wallet, prize))["claim_id"])


def test_a_wallets_and_a_shops_claims_are_all_listed_after_a_restart(cities: Cities) -> None:
    app = cities.open("rome")
    a, b = funded(app, "a"), funded(app, "b")
    shop, other = merchant(app, "shop"), merchant(app, "other", name="Other")
    prize, theirs = offer(app, "p", shop, "Gelato"), offer(app, "q", other, "Pizza")
    handed, cancelled, held = (claim(app, f"a{n}", a, prize) for n in range(3))
    b_held = claim(app, "b0", b, prize)
    elsewhere = claim(app, "b1", b, theirs)
    app.execute(c.ConfirmPrizeHandover("hand", shop, handed))
    app.execute(c.CancelPrizeClaim("cancel", shop, cancelled, "closed today"))

    book = prizes.PrizeBook().refresh(app)
    assert book.of_wallet(a) == [handed, cancelled, held]
    assert book.of_wallet(b) == [b_held, elsewhere]
    assert book.of_merchant(shop) == [handed, cancelled, held, b_held]
    assert book.of_merchant(other) == [elsewhere]
    assert book.prize_ids() == [prize, theirs] and book.prize_ids(other) == [theirs]
    assert book.lapsed(cities.clock()) == []
    # Only open claims lapse.
    cities.clock.advance(hours=app.city.config.prize_claim_hours)
    assert book.lapsed(cities.clock()) == [held, b_held, elsewhere]

    # A restarted node: a new application on the same store, and a new book, which carries
    # on from the position it saved instead of reading the log again.
    cities.close_all()
    app = cities.open("rome")
    book = prizes.PrizeBook()
    assert book.refresh(app).position == app.recorder.max_notification_id()
    assert book.of_wallet(a) == [handed, cancelled, held]
    assert book.of_merchant(shop) == [handed, cancelled, held, b_held]
    assert book.prize_ids(shop) == [prize]
    run = app.execute
    assert prizes.sweep_claims(app, book, cities.clock(), run) == 3
    assert book.refresh(app).lapsed(cities.clock()) == []
    # Released claims are still listed, in their final state.
    states = [x.state for x in prizes.claims(app, book.of_wallet(a))]
    assert states == ["handed_over", "cancelled", "expired"]


def test_a_closed_claim_takes_no_memory_in_the_book(cities: Cities) -> None:
    app = cities.open("rome")
    shop = merchant(app, "shop")
    prize = UUID(app.execute(app.offer_prize("p", shop, "Gelato", 1, 100))["prize_id"])
    book = prizes.PrizeBook().refresh(app)
    before = {name: type(value) for name, value in vars(book).items()}
    index = {name: type(value) for name, value in vars(book.index).items()}
    made = []
    for n in range(12):
        w = funded(app, f"w{n}")
        made.append(claim(app, f"c{n}", w, prize))
        app.execute(c.CancelPrizeClaim(f"x{n}", shop, made[-1], "closed today"))
        assert book.refresh(app).of_wallet(w) == [made[-1]]
    # The book and its index hold the same few fields as before twelve claims: a position,
    # a lock, where the store is. Nothing per claim, open or closed.
    assert {name: type(value) for name, value in vars(book).items()} == before
    assert {name: type(value) for name, value in vars(book.index).items()} == index
    assert set(before) == {"position", "_saved", "_index", "_lock"}
    for value in [*vars(book).values(), *vars(book.index).values()]:
        assert not isinstance(value, dict | list | set | tuple)
    assert book.of_merchant(shop) == made


def test_the_sweep_releases_a_bounded_number_a_round(cities: Cities, monkeypatch: pytest.MonkeyPatch) -> None:
    app, w, _, prize = one_prize(cities)
    made = [claim(app, f"c{n}", w, prize) for n in range(3)]
    cities.clock.advance(hours=app.city.config.prize_claim_hours)
    monkeypatch.setattr(prizes, "SWEEP_BATCH", 2)
    book = prizes.PrizeBook()
    assert prizes.sweep_claims(app, book, cities.clock(), app.execute) == 2
    assert book.refresh(app).lapsed(cities.clock()) == made[2:]
    assert prizes.sweep_claims(app, book, cities.clock(), app.execute) == 1
    assert book.refresh(app).lapsed(cities.clock()) == []


def test_two_books_on_one_store_agree_whatever_order_they_read_in(cities: Cities) -> None:
    """Replicas of a node share the store and its claim index: applying the same events
    twice, or a claim's opening after its closing was applied, changes nothing."""
    app, w, shop, prize = one_prize(cities)
    first = claim(app, "c0", w, prize)
    app.execute(c.CancelPrizeClaim("x0", shop, first, "closed today"))
    second = claim(app, "c1", w, prize)
    ahead = prizes.PrizeBook().refresh(app)
    behind = prizes.PrizeBook()
    behind.refresh(app)
    behind.position = 0  # as if it had not yet read anything: it reads it all again
    behind.refresh(app)
    cities.clock.advance(hours=app.city.config.prize_claim_hours)
    for book in (ahead, behind):
        assert book.of_wallet(w) == [first, second]
        assert book.lapsed(cities.clock()) == [second]
    # Both at once, from many threads: each refresh is one transaction.
    third = claim(app, "c2", w, prize)
    threads = [threading.Thread(target=b.refresh, args=(app,)) for b in (ahead, behind) * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ahead.of_wallet(w) == [first, second, third]
    assert ahead.lapsed(cities.clock() + dt.timedelta(days=30)) == [second, third]


def test_an_index_ahead_of_its_log_is_read_again_from_the_start(cities: Cities) -> None:
    """A log replaced under its index (a store restored without it) leaves no stale claims."""
    app, w, shop, prize = one_prize(cities)
    made = claim(app, "c0", w, prize)
    book = prizes.PrizeBook().refresh(app)
    ahead = (app.recorder.max_notification_id() or 0) + 100
    stale = ("00000000-0000-0000-0000-000000000001", str(w), str(shop), 0, ahead)
    book.index.record([], [stale], [], ahead)
    assert len(book.of_wallet(w)) == 2
    fresh = prizes.PrizeBook().refresh(app)
    assert fresh.position == app.recorder.max_notification_id()
    assert fresh.of_wallet(w) == [made]
    assert fresh.prize_ids() == [prize]


def test_a_long_log_is_caught_up_in_chunks(cities: Cities, monkeypatch: pytest.MonkeyPatch) -> None:
    app, w, shop, prize = one_prize(cities)
    made = [claim(app, f"c{n}", w, prize) for n in range(4)]
    app.execute(c.CancelPrizeClaim("x", shop, made[1], "closed today"))
    monkeypatch.setattr(prizes, "CHUNK", 2)
    book = prizes.PrizeBook().refresh(app)
    assert book.position == app.recorder.max_notification_id() == book.index.position()
    assert book.of_wallet(w) == made
    later = app.city.config.prize_claim_hours + 1
    assert book.lapsed(cities.clock() + dt.timedelta(hours=later)) == [made[0], *made[2:]]
