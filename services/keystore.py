"""Per-person keys, kept apart from the events they protect.

One AES-256 key per owner (a wallet), plus aliases that tie other aggregates
(an appeal, a receipt) to their owner. Erasure overwrites the key with NULL and
keeps the row, so no new key can ever be made for that person. SQLite runs with
secure_delete, and PostgreSQL is vacuumed after erasures, so the erased key's
bytes do not linger in free pages.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from uuid import UUID

# Keys are cached briefly; an erasure made by another process takes effect here
# within this many seconds (erasure in this process takes effect at once).
CACHE_SECONDS = 30.0
ERASED = b""


class KeyStore:
    """Owner keys and aliases in one SQLite file or one PostgreSQL schema."""

    def __init__(self, conn: Any, table: str, pyformat: bool) -> None:
        self._conn = conn
        self._keys = table
        self._aliases = f"{table}_aliases"
        self._pyformat = pyformat
        # One connection serves every thread of a node; calls on it take turns.
        self._lock = threading.RLock()
        self._cache: dict[UUID, tuple[bytes, float]] = {}
        self._owners: dict[UUID, UUID] = {}
        blob = "BYTEA" if pyformat else "BLOB"
        self._run(
            f"CREATE TABLE IF NOT EXISTS {self._keys} (owner_id TEXT PRIMARY KEY, key {blob}, erased_at TEXT)"
        )
        self._run(
            f"CREATE TABLE IF NOT EXISTS {self._aliases} "
            "(subject_id TEXT PRIMARY KEY, owner_id TEXT NOT NULL)"
        )

    @classmethod
    def sqlite(cls, path: str, table: str) -> KeyStore:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        conn.execute("PRAGMA secure_delete = ON")
        return cls(conn, table, pyformat=False)

    @classmethod
    def postgres(cls, env: dict[str, str], table: str) -> KeyStore:
        import psycopg

        conn = psycopg.connect(
            host=env.get("POSTGRES_HOST"),
            port=int(env.get("POSTGRES_PORT") or 5432),
            dbname=env.get("POSTGRES_DBNAME"),
            user=env.get("POSTGRES_USER"),
            password=env.get("POSTGRES_PASSWORD") or None,
            autocommit=True,
        )
        schema = env.get("POSTGRES_SCHEMA")
        return cls(conn, f"{schema}.{table}" if schema else table, pyformat=True)

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self._pyformat:
            sql = sql.replace("?", "%s")
        with self._lock:
            cur = self._conn.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []

    # -- keys -----------------------------------------------------------------
    def key_for(self, owner: UUID, create: bool) -> bytes | None:
        """The owner's key; None once erased (or, without `create`, if never made)."""
        cached = self._cache.get(owner)
        if cached is not None and time.monotonic() - cached[1] < CACHE_SECONDS:
            return cached[0] or None
        with self._lock:
            rows = self._run(f"SELECT key FROM {self._keys} WHERE owner_id = ?", (str(owner),))
            if not rows and create:
                self._run(
                    f"INSERT INTO {self._keys} (owner_id, key) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    (str(owner), os.urandom(32)),
                )
                rows = self._run(f"SELECT key FROM {self._keys} WHERE owner_id = ?", (str(owner),))
        if not rows:
            return None
        key = bytes(rows[0][0]) if rows[0][0] is not None else ERASED
        self._cache[owner] = (key, time.monotonic())
        return key or None

    def erase(self, owners: Iterable[UUID]) -> int:
        """Destroy the owners' keys for good; returns how many were erased now."""
        owners = list(owners)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        erased = 0
        with self._lock:
            for owner in owners:
                self._cache[owner] = (ERASED, time.monotonic())
                found = self._run(f"SELECT erased_at FROM {self._keys} WHERE owner_id = ?", (str(owner),))
                if found and found[0][0] is not None:
                    continue
                self._run(
                    f"INSERT INTO {self._keys} (owner_id, key, erased_at) VALUES (?, NULL, ?) "
                    "ON CONFLICT (owner_id) DO UPDATE SET key = NULL, erased_at = excluded.erased_at",
                    (str(owner), stamp),
                )
                erased += 1
            if erased and self._pyformat:
                # Dead row versions would still hold the key bytes until vacuumed.
                self._run(f"VACUUM {self._keys}")
        return erased

    def is_erased(self, owner: UUID) -> bool:
        rows = self._run(f"SELECT erased_at FROM {self._keys} WHERE owner_id = ?", (str(owner),))
        return bool(rows) and rows[0][0] is not None

    # -- aliases --------------------------------------------------------------
    def link(self, subject: UUID, owner: UUID) -> None:
        if self._owners.get(subject) == owner:
            return
        with self._lock:
            self._run(
                f"INSERT INTO {self._aliases} VALUES (?, ?) ON CONFLICT DO NOTHING",
                (str(subject), str(owner)),
            )
        self._owners[subject] = owner

    def owner_of(self, subject: UUID) -> UUID | None:
        if subject not in self._owners:
            rows = self._run(f"SELECT owner_id FROM {self._aliases} WHERE subject_id = ?", (str(subject),))
            if not rows:
                return None
            self._owners[subject] = UUID(str(rows[0][0]))
        return self._owners[subject]

    def close(self) -> None:
        self._conn.close()


def open_keystore(env: dict[str, str], name: str) -> KeyStore:
    """The key store beside an application's event store: same server, separate table or file."""
    table = f"{name}_keys"
    if env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
        return KeyStore.postgres(env, table)
    dbname = env.get("SQLITE_DBNAME", ":memory:")
    if dbname == ":memory:" or dbname.startswith("file::memory:"):
        return KeyStore.sqlite(":memory:", table)
    return KeyStore.sqlite(str(Path(dbname).with_suffix(".keys.sqlite")), table)
