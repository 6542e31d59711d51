"""Per-person keys, kept apart from the events they protect, wrapped by the key-store key.

One AES-256 data key per owner (a wallet), plus aliases that tie other aggregates
(an appeal, a receipt) to their owner. Each data key is stored wrapped: AES-GCM
under the key-store key (CIVFED_KEYSTORE_KEY_FILE, see services/privacy/keystore_key.py),
with the store's name and the owner's id as associated data (services/privacy/key_wrapping.py),
so a stolen copy of the database opens nothing and a wrapped key copied to another
owner's row does not open. Erasure overwrites the wrapped key with NULL and keeps the row, so no
new key can ever be made for that person. SQLite runs with secure_delete, and
PostgreSQL is vacuumed after erasures and rotations, so old bytes do not linger
in free pages.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

from services.bounded_cache import BoundedCache
from services.privacy.journal import ErasureJournal, open_journal
from services.privacy.key_wrapping import KEY_BYTES, KeyStoreError, KeyWrapper
from services.privacy.keystore_key import DEFAULT_NAME, SETTING, KeyStoreKeyError, generate_kek, read_kek
from services.privacy.locations import (
    Location,
    connect_postgres,
    in_memory,
    parse_location,
    qualified,
    store_location,
    with_store_login,
)

# Keys are cached briefly; an erasure made by another process takes effect here
# within this many seconds (erasure in this process takes effect at once).
CACHE_SECONDS = 30.0
ERASED = b""
# How many owners' keys and aliases are kept in memory (each: a few hundred bytes); the
# rest are read from the store when asked for. CIVFED_KEY_CACHE_SIZE sets it.
CACHE_SIZE_SETTING = "CIVFED_KEY_CACHE_SIZE"
DEFAULT_CACHE_SIZE = 50_000


class KeyStore:
    """Owner keys (wrapped) and aliases in one SQLite file or one PostgreSQL schema."""

    def __init__(
        self, conn: Any, table: str, pyformat: bool, kek: bytes, cache_size: int = DEFAULT_CACHE_SIZE
    ) -> None:
        self._conn = conn
        self._keys = table
        self._aliases = f"{table}_aliases"
        self._meta = f"{table}_meta"
        # Bound into every wrapped key: without the schema, so a store can move schemas.
        self.name = table.rpartition(".")[2]
        self._pyformat = pyformat
        # One connection serves every thread of a node; calls on it take turns.
        self._lock = threading.RLock()
        # Bounded: a node serving a million wallets keeps only the recently used keys.
        self.cache_size = cache_size
        self._cache: BoundedCache[UUID, tuple[bytes, float]] = BoundedCache(cache_size)
        self._owners: BoundedCache[UUID, UUID] = BoundedCache(cache_size)
        blob = "BYTEA" if pyformat else "BLOB"
        self._run(
            f"CREATE TABLE IF NOT EXISTS {self._keys} (owner_id TEXT PRIMARY KEY, key {blob}, erased_at TEXT)"
        )
        self._run(
            f"CREATE TABLE IF NOT EXISTS {self._aliases} "
            "(subject_id TEXT PRIMARY KEY, owner_id TEXT NOT NULL)"
        )
        self._run(f"CREATE TABLE IF NOT EXISTS {self._meta} (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._wrapper = KeyWrapper(kek, self.name)
        self._adopt()
        # Every erasure is journalled here first (services/privacy/journal.py), apart from this store.
        self.journal: ErasureJournal | None = None

    @classmethod
    def sqlite(cls, path: str, table: str, kek: bytes, cache_size: int = DEFAULT_CACHE_SIZE) -> KeyStore:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        conn.execute("PRAGMA secure_delete = ON")
        return cls(conn, table, pyformat=False, kek=kek, cache_size=cache_size)

    @classmethod
    def postgres(cls, env: dict[str, str], table: str, kek: bytes) -> KeyStore:
        """In the store's own database and schema."""
        return cls.at(store_location(env), table, kek)

    @classmethod
    def at(cls, location: Location, table: str, kek: bytes, cache_size: int = DEFAULT_CACHE_SIZE) -> KeyStore:
        if location.kind == "sqlite":
            if in_memory(location):
                return cls.sqlite(":memory:", table, kek, cache_size)
            Path(location.path).parent.mkdir(parents=True, exist_ok=True)
            return cls.sqlite(location.path, table, kek, cache_size)
        conn = connect_postgres(location)
        return cls(conn, qualified(location, table), pyformat=True, kek=kek, cache_size=cache_size)

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self._pyformat:
            sql = sql.replace("?", "%s")
        with self._lock:
            cur = self._conn.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """All or nothing, with the key tables locked against other writers."""
        with self._lock:
            if self._pyformat:
                with self._conn.transaction():
                    self._run(f"LOCK TABLE {self._meta}, {self._keys} IN SHARE ROW EXCLUSIVE MODE")
                    yield
                return
            self._run("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._run("ROLLBACK")
                raise
            self._run("COMMIT")

    def _stored_kek_id(self) -> str | None:
        rows = self._run(f"SELECT value FROM {self._meta} WHERE name = 'kek_id'")
        return str(rows[0][0]) if rows else None

    def _check_kek(self, stored: str | None) -> None:
        if stored is not None and stored != self._wrapper.kek_id:
            raise KeyStoreKeyError(
                f"this key-store key does not open the key store {self.name}: its keys are wrapped "
                "under another key (after a rotation, point the setting at the new key file)"
            )

    def _adopt(self) -> None:
        """Record which key wraps this store; wrap keys stored in clear by older versions."""
        stored = self._stored_kek_id()
        self._check_kek(stored)
        if stored is not None:
            return
        with self._transaction():
            stored = self._stored_kek_id()
            self._check_kek(stored)
            if stored is not None:
                return  # another process adopted it meanwhile, with this same key
            for owner, key in self._run(f"SELECT owner_id, key FROM {self._keys} WHERE key IS NOT NULL"):
                if len(bytes(key)) != KEY_BYTES:
                    raise KeyStoreError(f"{self.name}: the key of {owner} is neither clear nor wrapped")
                self._run(
                    f"UPDATE {self._keys} SET key = ? WHERE owner_id = ?",
                    (self._wrapper.wrap(str(owner), bytes(key)), str(owner)),
                )
            self._run(f"INSERT INTO {self._meta} VALUES ('kek_id', ?)", (self._wrapper.kek_id,))

    def rotate(self, new_kek: bytes) -> int:
        """Rewrap every stored key under `new_kek`, all in one transaction; returns how many."""
        new = KeyWrapper(new_kek, self.name)
        if new.kek_id == self._wrapper.kek_id:
            raise KeyStoreKeyError("it holds the key in use; make a new one to rotate", "--new-key-file")
        with self._transaction():
            self._check_kek(self._stored_kek_id())
            rows = self._run(f"SELECT owner_id, key FROM {self._keys} WHERE key IS NOT NULL")
            for owner, stored in rows:
                key = self._wrapper.unwrap(str(owner), bytes(stored))
                self._run(
                    f"UPDATE {self._keys} SET key = ? WHERE owner_id = ?",
                    (new.wrap(str(owner), key), str(owner)),
                )
            self._run(f"UPDATE {self._meta} SET value = ? WHERE name = 'kek_id'", (new.kek_id,))
        self._wrapper = new
        if self._pyformat:
            self._run(f"VACUUM {self._keys}")  # the old wrapped rows
        return len(rows)

    # -- keys -----------------------------------------------------------------
    def key_for(self, owner: UUID, create: bool) -> bytes | None:
        """The owner's key; None once erased (or, without `create`, if never made)."""
        cached = self._cache.get(owner)
        if cached is not None and time.monotonic() - cached[1] < CACHE_SECONDS:
            return cached[0] or None
        select = f"SELECT key FROM {self._keys} WHERE owner_id = ?"
        with self._lock:
            rows = self._run(select, (str(owner),))
            if not rows and create:
                # Only while the store is still wrapped under this process's key: a
                # process left running through a rotation must not add keys under the old one.
                self._run(
                    f"INSERT INTO {self._keys} (owner_id, key) SELECT ?, ? WHERE EXISTS "
                    f"(SELECT 1 FROM {self._meta} WHERE name = 'kek_id' AND value = ?) "
                    "ON CONFLICT DO NOTHING",
                    (str(owner), self._wrapper.wrap(str(owner), os.urandom(KEY_BYTES)), self._wrapper.kek_id),
                )
                rows = self._run(select, (str(owner),))
                if not rows:
                    self._check_kek(self._stored_kek_id())
        if not rows:
            return None
        key = self._wrapper.unwrap(str(owner), bytes(rows[0][0])) if rows[0][0] is not None else ERASED
        self._cache.put(owner, (key, time.monotonic()))
        return key or None

    def prefetch(self, owners: Iterable[UUID]) -> set[UUID]:
        """Read the keys of many owners in one query, into the cache `key_for` reads (a
        group of claims seals and opens fields of hundreds of wallets); returns those of
        them whose key is erased. Owners with no key yet are left to `key_for`, which makes
        one where asked."""
        now = time.monotonic()
        wanted = list(dict.fromkeys(owners))
        stale = [
            str(o) for o in wanted if (hit := self._cache.get(o)) is None or now - hit[1] >= CACHE_SECONDS
        ]
        for start in range(0, len(stale), 500):
            batch = stale[start : start + 500]
            marks = ", ".join("?" for _ in batch)
            rows = self._run(
                f"SELECT owner_id, key FROM {self._keys} WHERE owner_id IN ({marks})", tuple(batch)
            )
            for owner_id, stored in rows:
                owner = str(owner_id)
                key = self._wrapper.unwrap(owner, bytes(stored)) if stored is not None else ERASED
                self._cache.put(UUID(owner), (key, now))
        return {o for o in wanted if (hit := self._cache.get(o)) is not None and hit[0] == ERASED}

    def erase(self, owners: Iterable[UUID]) -> int:
        """Destroy the owners' keys for good; returns how many were erased now."""
        owners = list(owners)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        erased = 0
        if self.journal is not None:
            # Journalled before the key goes: a restore that brings the key back cannot
            # bring back the record that it must go (`civfed erasures reapply`).
            self.journal.record(owners, stamp[:10])
        with self._lock:
            for owner in owners:
                self._cache.put(owner, (ERASED, time.monotonic()))
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

    def holding_keys_of(self, owners: Iterable[UUID]) -> list[UUID]:
        """Those of `owners` whose key this store still holds (not erased)."""
        wanted = [str(o) for o in owners]
        held: list[UUID] = []
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            marks = ", ".join("?" for _ in batch)
            rows = self._run(
                f"SELECT owner_id FROM {self._keys} WHERE key IS NOT NULL AND owner_id IN ({marks})",
                tuple(batch),
            )
            held.extend(UUID(str(r[0])) for r in rows)
        return sorted(held)

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
        self._owners.put(subject, owner)

    def owner_of(self, subject: UUID) -> UUID | None:
        owner = self._owners.get(subject)
        if owner is None:
            rows = self._run(f"SELECT owner_id FROM {self._aliases} WHERE subject_id = ?", (str(subject),))
            if not rows:
                return None
            owner = UUID(str(rows[0][0]))
            self._owners.put(subject, owner)
        return owner

    @property
    def cached(self) -> int:
        """How many owners' keys are held in memory now (at most the cache size)."""
        return len(self._cache)

    def close(self) -> None:
        self._conn.close()
        if self.journal is not None:
            self.journal.close()


def keystore_kek(env: dict[str, str]) -> bytes:
    """The key-store key the environment names; the embedded SQLite default makes its own.

    Without the setting: an in-memory store gets a key for this process alone, a
    SQLite file store uses (and on first use makes) `keystore.key` in its folder, and
    PostgreSQL refuses to start.
    """
    path = env.get(SETTING)
    if path:
        return read_kek(Path(path))
    if env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
        raise KeyStoreKeyError(
            "must be set when PERSISTENCE_MODULE is eventsourcing.postgres: a file holding "
            "32 random bytes, base64-encoded (see docs/RIGHTS.md)"
        )
    dbname = env.get("SQLITE_DBNAME", ":memory:")
    if dbname == ":memory:" or dbname.startswith("file::memory:"):
        return os.urandom(KEY_BYTES)
    return generate_kek(Path(dbname).parent / DEFAULT_NAME)


KEYSTORE_URL = "CIVFED_KEYSTORE_URL"


def keystore_location(env: dict[str, str]) -> Location:
    """CIVFED_KEYSTORE_URL (its own database, backed up on its own schedule); without it,
    beside the event store: its own file `<city>.keys.sqlite`, or the store's PostgreSQL
    database and schema."""
    url = env.get(KEYSTORE_URL)
    if url:
        return with_store_login(parse_location(url, KEYSTORE_URL), env)
    store = store_location(env)
    if store.kind == "postgres" or in_memory(store):
        return store
    return Location("sqlite", str(Path(store.path).with_suffix(".keys.sqlite")))


def open_keystore(env: dict[str, str], name: str) -> KeyStore:
    """An application's key store, with its erasure journal attached."""
    kek = keystore_kek(env)
    size = int(env.get(CACHE_SIZE_SETTING) or DEFAULT_CACHE_SIZE)
    keys = KeyStore.at(keystore_location(env), f"{name}_keys", kek, size)
    try:
        keys.journal = open_journal(env, name)
    except BaseException:
        keys.close()
        raise
    return keys
