"""The erasure journal: which wallets were erased, and when; nothing else.

Kept apart from the event store and from the key store (CIVFED_ERASURE_JOURNAL_URL),
so restoring either from an older backup cannot undo an erasure: the key store
writes here before it destroys a key (services/privacy/keystore.py), `civfed erasures
reapply` destroys again every key the journal names, and a node refuses to serve while
the key store still holds one (services/privacy/reapply.py).

It holds wallet ids and dates only: no name, no reason, no event.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from uuid import UUID

from services.privacy.locations import (
    Location,
    connect_postgres,
    in_memory,
    parse_location,
    qualified,
    store_location,
    with_store_login,
)

SETTING = "CIVFED_ERASURE_JOURNAL_URL"


class ErasureJournal:
    """One table per city: (wallet_id, erased_on), in its own SQLite file or PostgreSQL database."""

    def __init__(self, conn: Any, table: str, pyformat: bool, where: str) -> None:
        self._conn = conn
        self._table = table
        self._pyformat = pyformat
        self._lock = threading.RLock()
        # Where it is, for messages: a file or a database name, never a password.
        self.where = where
        self._run(f"CREATE TABLE IF NOT EXISTS {table} (wallet_id TEXT PRIMARY KEY, erased_on TEXT NOT NULL)")

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self._pyformat:
            sql = sql.replace("?", "%s")
        with self._lock:
            cur = self._conn.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []

    def record(self, wallets: Iterable[UUID], erased_on: str) -> None:
        """Journal the wallets as erased (the first date stays); durable before it returns."""
        with self._lock:
            for wallet in wallets:
                self._run(
                    f"INSERT INTO {self._table} VALUES (?, ?) ON CONFLICT (wallet_id) DO NOTHING",
                    (str(wallet), erased_on),
                )

    def erased(self) -> list[UUID]:
        return [UUID(str(w)) for (w,) in self._run(f"SELECT wallet_id FROM {self._table} ORDER BY wallet_id")]

    def entries(self) -> list[tuple[UUID, str]]:
        rows = self._run(f"SELECT wallet_id, erased_on FROM {self._table} ORDER BY erased_on, wallet_id")
        return [(UUID(str(w)), str(d)) for w, d in rows]

    def close(self) -> None:
        self._conn.close()


def journal_location(env: dict[str, str]) -> Location:
    """The setting's location; without it, apart from the data directory (SQLite: the file
    `<data dir>-erasures.sqlite` beside it, so a copy of the data directory does not hold
    it) or, on PostgreSQL, a table in the store's database (development only:
    `civfed check-config` refuses it for a node)."""
    url = env.get(SETTING)
    if url:
        return with_store_login(parse_location(url, SETTING), env)
    store = store_location(env)
    if store.kind == "postgres" or in_memory(store):
        return store
    data_dir = Path(store.path).parent
    return Location("sqlite", str(data_dir.with_name(f"{data_dir.name}-erasures.sqlite")))


def open_journal(env: dict[str, str], name: str) -> ErasureJournal:
    """The erasure journal of the application `name` (the table `<name>_erasures`)."""
    location = journal_location(env)
    table = f"{name}_erasures"
    if location.kind == "postgres":
        conn = connect_postgres(location)
        return ErasureJournal(conn, qualified(location, table), True, str(location.params.get("dbname")))
    path = ":memory:" if in_memory(location) else location.path
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode = WAL" if path != ":memory:" else "PRAGMA journal_mode = MEMORY")
    conn.execute("PRAGMA synchronous = FULL")
    return ErasureJournal(conn, table, False, path)
