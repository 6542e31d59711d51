"""A read-model store made before people's parts of dashboard cells were kept gains the
column when a projector opens it, on SQLite and on PostgreSQL, and keeps its rows."""

from __future__ import annotations

from pathlib import Path

from projections.projector import Projector
from projections.store import Store
from tests.conftest import PG_URL, new_schema

OLD_PEOPLE = (
    "CREATE TABLE rm_cell_people (city TEXT NOT NULL, day TEXT NOT NULL, metric TEXT NOT NULL, "
    "key TEXT NOT NULL, wallet_id TEXT NOT NULL, PRIMARY KEY (city, day, metric, key, wallet_id))"
)


def upgraded(store: Store) -> list[tuple[object, ...]]:
    with store.transaction() as tx:
        tx.execute(OLD_PEOPLE)
        tx.execute("INSERT INTO rm_cell_people VALUES ('bologna', '2026-05-04', 'active', '', 'p1')")
    Projector(store)
    Projector(store)  # opening it again changes nothing
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO rm_cell_people VALUES ('bologna', '2026-05-04', 'issued_by_rule', 'r', 'p1', 3)"
        )
        rows = tx.all("SELECT metric, wallet_id, value FROM rm_cell_people ORDER BY metric")
    store.close()
    return rows


def test_an_sqlite_read_model_store_gains_the_column(tmp_path: Path) -> None:
    rows = upgraded(Store(f"sqlite:///{tmp_path / 'rm.sqlite'}"))
    assert rows == [("active", "p1", 0), ("issued_by_rule", "p1", 3)]


def test_a_postgresql_read_model_store_gains_the_column(pg_schemas: list[str]) -> None:
    rows = upgraded(Store(PG_URL, new_schema(pg_schemas)))
    assert rows == [("active", "p1", 0), ("issued_by_rule", "p1", 3)]
