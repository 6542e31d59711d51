"""A holder's history comes in pages that together make the whole of it, in one order,
however many appeals are filed between two pages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from aggregates.errors import InvalidInput
from services import commands as c
from services.city import CityApplication
from services.history import Entry, history, history_page
from tests.integration.vienna_app import long_lived, open_app


@pytest.fixture
def app(tmp_path: Path) -> Iterator[CityApplication]:
    city = open_app(tmp_path, 4)
    yield city
    city.close()


def appeal(app: CityApplication, wallet: UUID, n: int) -> None:
    app.execute(
        c.FileAppeal(f"appeal-{n}", wallet, "missing_award", f"trip-x{n}", "my trip is missing", "holder")
    )


def key(entry: Entry) -> tuple[UUID, int]:
    return entry.aggregate_id, entry.version


def read_all(app: CityApplication, wallet: UUID, size: int, between: int = -1) -> tuple[list[Entry], int]:
    """Every page of `size`, filing an appeal after page `between`; the entries and pages read."""
    seen: list[Entry] = []
    token, pages = "", 0
    while True:
        page = history_page(app, wallet, size, token)
        assert len(page.entries) <= size
        seen += page.entries
        pages += 1
        if pages == between:
            appeal(app, wallet, 2)
        token = page.next_page_token
        if not token:
            return seen, pages


def test_pages_make_the_whole_history_in_its_order(app: CityApplication) -> None:
    wallet = long_lived(app, 9)
    appeal(app, wallet, 1)
    whole = history(app, wallet)
    assert {"Wallet.Credited", "Appeal.Filed"} <= {e.type for e in whole}
    assert len({e.aggregate_id for e in whole}) == 2  # the wallet and its appeal
    for size in (1, 4, 1000):
        seen, pages = read_all(app, wallet, size)
        assert [key(e) for e in seen] == [key(e) for e in whole]
        assert pages >= len(whole) // size


def test_an_appeal_filed_between_two_pages_is_on_a_later_page(app: CityApplication) -> None:
    wallet = long_lived(app, 6)
    appeal(app, wallet, 1)
    seen, _ = read_all(app, wallet, 3, between=1)
    after = history(app, wallet)
    assert [key(e) for e in seen] == [key(e) for e in after]
    assert sum(e.type == "Appeal.Filed" for e in seen) == 2


def test_a_made_up_token_is_refused_with_the_field_named(app: CityApplication) -> None:
    wallet = long_lived(app, 2)
    for made_up in ("x:1", "h:1,a", "h:" + ",".join(["1"] * 9), "h:" + "9" * 30, "h:-1"):
        with pytest.raises(InvalidInput) as err:
            history_page(app, wallet, 5, made_up)
        assert err.value.field == "page_token"
