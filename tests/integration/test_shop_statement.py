"""A shop's statement is read a page at a time, its totals from a snapshot of the shop,
and a sole trader's bank account stays sealed inside that snapshot."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from aggregates.errors import InvalidInput
from services import commands as c
from services.city import CityApplication
from services.paging import MAX_PAGE, page_size
from tests.integration.vienna_app import long_lived, open_app

EVERY = 5
SALES = 23
IBAN = "BE68539007547034"
AMOUNTS = [i % 3 + 1 for i in range(SALES)]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[CityApplication]:
    city = open_app(tmp_path, EVERY)
    yield city
    city.close()


def busy_shop(app: CityApplication, sole_trader: bool = False) -> UUID:
    """A shop with SALES sales (AMOUNTS) and a bank account set after the first."""
    wallet = long_lived(app, SALES, distance_m="900000")
    shop = UUID(app.execute(app.register_merchant("shop", "Greissler", "food", True))["merchant_id"])
    for i in range(SALES):
        app.execute(app.spend(f"sale-{i}", wallet, shop, AMOUNTS[i], f"receipt-{i}"))
        if i == 0:
            account = c.SetBankAccount("account", shop, IBAN, "", "Anna Greissler", sole_trader, "clerk")
            app.execute(app.job(account))
    return shop


def test_pages_from_either_end_make_the_whole_statement_and_totals_cover_all_of_it(
    app: CityApplication,
) -> None:
    shop = busy_shop(app)
    whole = app.statement(shop)
    # A direct payment names no reference (the holder's purchase reference is theirs).
    assert [(line.kind, line.amount) for line in whole] == [("payment", a) for a in AMOUNTS]
    assert len({line.at for line in whole}) == SALES
    for newest_first in (False, True):
        seen, token, pages = [], "", 0
        while True:
            page = app.statement_page(shop, 7, token, newest_first)
            assert len(page.lines) <= 7
            assert (page.received, page.paid_out, page.to_pay_out) == (sum(AMOUNTS), 0, sum(AMOUNTS))
            seen += page.lines
            pages += 1
            token = page.next_page_token
            if not token:
                break
        assert pages == 4  # 7 + 7 + 7 + 2
        assert seen == (whole[::-1] if newest_first else whole)


def test_a_token_is_refused_in_the_other_order_or_when_made_up(app: CityApplication) -> None:
    shop = busy_shop(app)
    forward = app.statement_page(shop, 5).next_page_token
    assert forward
    with pytest.raises(InvalidInput) as err:
        app.statement_page(shop, 5, forward, newest_first=True)
    assert err.value.field == "page_token"
    for made_up in ("f:", "f:-3", "x:4", "f:1e9", "f:" + "9" * 40):
        with pytest.raises(InvalidInput):
            app.statement_page(shop, 5, made_up)
    # A token past the end is simply an empty last page.
    page = app.statement_page(shop, 5, "f:99999")
    assert (page.lines, page.next_page_token) == ([], "")
    with pytest.raises(InvalidInput) as err:
        page_size(-1)
    assert err.value.field == "page_size"
    assert (page_size(0), page_size(7), page_size(10**6)) == (MAX_PAGE, 7, MAX_PAGE)


def test_a_shop_read_from_its_snapshot_is_the_shop_its_events_make(
    app: CityApplication, tmp_path: Path
) -> None:
    shop = busy_shop(app)
    assert app.snapshots is not None
    assert [s.originator_version for s in app.snapshots.get(shop)][-1] == 25
    fresh, replay = open_app(tmp_path, EVERY), open_app(tmp_path, 0)
    try:
        from_snapshot = fresh.statement_page(shop, 3, newest_first=True)
        from_events = replay.statement_page(shop, 3, newest_first=True)
        assert from_snapshot == from_events
        assert vars(fresh.repository.get(shop)) == vars(replay.repository.get(shop))
    finally:
        fresh.close()
        replay.close()


def test_a_sole_traders_account_is_sealed_in_the_shops_snapshot_and_gone_after_erasure(
    app: CityApplication, tmp_path: Path
) -> None:
    shop = busy_shop(app, sole_trader=True)
    with sqlite3.connect(tmp_path / "vienna.sqlite") as db:
        states = [bytes(r[0]) for r in db.execute("SELECT state FROM stored_snapshots")]
    assert any(b'"paid_out_total"' in s for s in states)  # the shop's snapshots are there
    assert all(IBAN.encode() not in s and b"Anna Greissler" not in s for s in states)
    fresh = open_app(tmp_path, EVERY)
    try:
        assert fresh.repository.get(shop).iban == IBAN  # opened with the shop's key
        assert fresh.keys is not None
        fresh.keys.erase([shop])
    finally:
        fresh.close()
    after = open_app(tmp_path, EVERY)
    try:
        read = after.repository.get(shop)
        assert IBAN not in str(read.iban) and "Anna" not in str(read.account_holder)
        assert read.received == sum(AMOUNTS)  # amounts are not personal data
    finally:
        after.close()


def test_a_companys_account_is_not_personal_data_and_stays_readable_in_the_snapshot(
    app: CityApplication, tmp_path: Path
) -> None:
    busy_shop(app, sole_trader=False)
    with sqlite3.connect(tmp_path / "vienna.sqlite") as db:
        states = [bytes(r[0]) for r in db.execute("SELECT state FROM stored_snapshots")]
    assert any(IBAN.encode() in s for s in states)


def test_an_account_change_waiting_for_a_second_entry_is_sealed_in_the_snapshot_too(
    app: CityApplication, tmp_path: Path
) -> None:
    shop = busy_shop(app, sole_trader=True)
    other = "NL91ABNA0417164300"
    change = c.SetBankAccount("change", shop, other, "", "Anna Greissler", True, "clerk-2")
    assert app.execute(app.job(change))["awaiting_second_entry"]
    consent = app.city.config.consent_versions[-1]
    wallet = UUID(app.execute(app.open_wallet("w2", "resident", consent))["wallet_id"])
    trip = {"mode": "bike", "distance_m": "900000", "date": app.clock().date().isoformat()}
    app.execute(app.record_activity("trip-more", wallet, "trip", trip))
    for i in range(EVERY):  # past the next snapshot
        app.execute(app.spend(f"more-{i}", wallet, shop, 1, f"more-{i}"))
    with sqlite3.connect(tmp_path / "vienna.sqlite") as db:
        states = [bytes(r[0]) for r in db.execute("SELECT state FROM stored_snapshots")]
    assert any(b'"pending_account"' in s for s in states)
    assert all(other.encode() not in s for s in states)
    fresh = open_app(tmp_path, EVERY)
    try:
        read = fresh.repository.get(shop)
        assert (read.iban, read.pending_account["iban"]) == (IBAN, other)
    finally:
        fresh.close()
