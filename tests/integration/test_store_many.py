"""`Tx.many` writes exactly the rows it is given, on SQLite and on PostgreSQL, whatever the
values hold: PostgreSQL gets a column of plain strings or whole numbers as one joined string,
and any column that cannot travel that way (a value holding the separator, a missing value,
a single row) as an array."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from projections.store import Store
from tests.conftest import PG_URL, new_schema

_UPSERT = (
    "INSERT INTO t_many (k, label, n) VALUES (?, ?, ?) "
    "ON CONFLICT (k) DO UPDATE SET label = excluded.label, n = t_many.n + excluded.n"
)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "postgres":
        made = Store(PG_URL, new_schema(request.getfixturevalue("pg_schemas")))
    else:
        made = Store(f"sqlite:///{tmp_path / 'many.sqlite'}")
    with made.transaction() as tx:
        tx.execute("CREATE TABLE t_many (k TEXT PRIMARY KEY, label TEXT, n BIGINT NOT NULL)")
    yield made
    made.close()


Row = tuple[str, str | None, int]


def rows(store: Store) -> list[tuple[object, ...]]:
    """Sorted here: the databases' collations differ."""
    with store.transaction() as tx:
        return sorted(tx.all("SELECT k, label, n FROM t_many"), key=lambda r: str(r[0]))


@pytest.mark.parametrize(
    "batch",
    [
        [("a", "", 1), ("b", "", -2)],  # empty strings, a negative number
        [("a", "x\x1fy", 1), ("b", "\x1f", 2), ("c", "", 3)],  # the separator inside values
        [("a\x1f", "plain", 5), ("\x1fb", "plain", 6)],  # ... and in the key
        [("a", None, 1), ("b", "set", 2)],  # a missing value
        [("only", "", 7)],  # one row
        [("k'1", 'quote"s', 9_000_000_000_000), ("k\\2", "back\\slash", -9_000_000_000_000)],
        [(f"w{i:05d}", f"label {i % 7}", i) for i in range(3000)],
    ],
)
def test_many_writes_exactly_the_rows_given(store: Store, batch: list[Row]) -> None:
    with store.transaction() as tx:
        tx.many(_UPSERT, batch)
    assert rows(store) == sorted(batch, key=lambda r: r[0])
    with store.transaction() as tx:  # again: every row meets its conflict and adds up
        tx.many(_UPSERT, batch)
    assert rows(store) == sorted(((k, label, 2 * n) for k, label, n in batch), key=lambda r: r[0])
