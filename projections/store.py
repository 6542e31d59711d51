"""Where read models and their tracking positions live: SQLite or PostgreSQL.

Read-model rows and the position they reflect are written in one transaction,
which is what makes every event take effect exactly once.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

POSITIONS_DDL = """
CREATE TABLE IF NOT EXISTS rm_positions (
    source TEXT NOT NULL,
    part INTEGER NOT NULL,
    position BIGINT NOT NULL,
    last_nid BIGINT NOT NULL,
    PRIMARY KEY (source, part)
)
"""


class Tx(Protocol):
    """The slice of a DB-API cursor the read models use, with `?` placeholders."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...
    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None: ...
    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """`sql` (an INSERT with one `VALUES (?, ...)` row) over many rows. No two rows may share
        the key an `ON CONFLICT ... DO UPDATE` names: PostgreSQL gets them in one statement."""


class _Cursor:
    def __init__(self, cursor: Any, pyformat: bool) -> None:
        self.cursor = cursor
        self.pyformat = pyformat

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.pyformat else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.cursor.execute(self._sql(sql), tuple(params))

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if not self.pyformat:
            self.cursor.executemany(sql, rows)  # SQLite's loop runs in C, in process
            return
        # PostgreSQL: one statement over arrays of each column, whatever the number of rows,
        # so the server plans it once and the query text stays short.
        match = _ONE_ROW.search(sql)
        if match is None:
            raise ValueError(f"not an INSERT with one VALUES row: {sql}")
        arrays: list[str] = []
        params: list[Any] = []
        for column in zip(*rows, strict=True):
            joined = _joined(column) if len(rows) > 1 else None
            if joined is not None:
                # One string, split by the server: psycopg builds an array param item by item.
                arrays.append(f"string_to_array(%s, %s)::{_pg_array_type(column)}")
                params += [joined, _SEP]
            else:
                arrays.append(f"%b::{_pg_array_type(column)}")  # binary: no quoting
                params.append(list(column))
        select = f"SELECT * FROM unnest({', '.join(arrays)}) WHERE true"  # WHERE: ON CONFLICT is not a join
        self.cursor.execute(sql[: match.start()] + select + sql[match.end() :], params)

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        self.cursor.execute(self._sql(sql), tuple(params))
        row = self.cursor.fetchone()
        return tuple(row) if row is not None else None

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.cursor.execute(self._sql(sql), tuple(params))
        return [tuple(r) for r in self.cursor.fetchall()]


# The one parameter row of an INSERT ... VALUES (?, ?, ...) statement.
_ONE_ROW = re.compile(r"VALUES\s*\((?:\s*\?\s*,)*\s*\?\s*\)", re.IGNORECASE)


def _pg_array_type(column: Sequence[Any]) -> str:
    """The array type of one column's values: whole numbers or text (all read models hold)."""
    if all(isinstance(v, int) and not isinstance(v, bool) for v in column):
        return "bigint[]"
    return "text[]"


# Between a column's values when it is sent as one string (no value may hold it).
_SEP = "\x1f"


def _joined(column: Sequence[Any]) -> str | None:
    """A column of two or more whole numbers, or of strings none of which holds _SEP, as one
    string; None for any other column (it goes as an array)."""
    kinds = set(map(type, column))
    if kinds == {int}:
        return _SEP.join(map(str, column))
    if kinds != {str}:
        return None
    joined = _SEP.join(column)
    return joined if joined.count(_SEP) == len(column) - 1 else None


class Store:
    """A read-model database: `sqlite:///path` or a `postgresql://` DSN.

    For PostgreSQL, `schema` selects the search path (tests use a fresh one).
    """

    def __init__(self, url: str, schema: str = "") -> None:
        self.url = url
        self.schema = schema
        self.postgres = url.startswith(("postgresql://", "postgres://"))
        self._conn: Any = None

    def connect(self) -> Any:
        if self._conn is None:
            if self.postgres:
                import psycopg

                options = f"-c search_path={self.schema}" if self.schema else ""
                self._conn = psycopg.connect(self.url, options=options)
            else:
                path = self.url.removeprefix("sqlite:///")
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                self._conn = sqlite3.connect(path, timeout=30, isolation_level=None)
                self._conn.execute("PRAGMA journal_mode=WAL")
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """One atomic unit: everything inside commits together or not at all."""
        conn = self.connect()
        if self.postgres:
            with conn.transaction(), conn.cursor() as cur:
                yield _Cursor(cur, pyformat=True)
        else:
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield _Cursor(cur, pyformat=False)
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# The partition row that holds a source's floor: the notification id up to which
# events came from elsewhere (a rebuild from the store), for partitions it has no row for.
FLOOR = -1


def read_positions(tx: Tx, source: str) -> dict[int, tuple[int, int]]:
    """part -> (position, last notification id applied) for one source."""
    rows = tx.all("SELECT part, position, last_nid FROM rm_positions WHERE source = ?", (source,))
    return {int(p): (int(pos), int(nid)) for p, pos, nid in rows}


_WRITE_POSITION = (
    "INSERT INTO rm_positions (source, part, position, last_nid) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (source, part) DO UPDATE SET position = excluded.position, last_nid = excluded.last_nid"
)


def write_position(tx: Tx, source: str, part: int, position: int, last_nid: int) -> None:
    tx.execute(_WRITE_POSITION, (source, part, position, last_nid))


def write_positions(tx: Tx, source: str, positions: dict[int, tuple[int, int]]) -> None:
    """Every partition's (position, last notification id) of one source, in one statement."""
    tx.many(_WRITE_POSITION, [(source, part, pos, nid) for part, (pos, nid) in sorted(positions.items())])


def add_missing_column(tx: Tx, table: str, column: str, declaration: str) -> None:
    """Give a table made before `column` existed that column (a rebuild then fills it)."""
    rows = tx.all(f"PRAGMA table_info({table})") if _is_sqlite(tx) else None
    if rows is None:
        tx.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {declaration}")
    elif column not in {str(r[1]) for r in rows}:
        tx.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


def _is_sqlite(tx: Tx) -> bool:
    return isinstance(tx, _Cursor) and not tx.pyformat
