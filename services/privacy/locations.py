"""Where the key store and the erasure journal live: their own database, apart from the events.

A location is a URL setting (CIVFED_KEYSTORE_URL, CIVFED_ERASURE_JOURNAL_URL):

- `sqlite:///absolute/path/file.sqlite` (or `sqlite://:memory:`), a file of its own;
- `postgresql://[user[:password]@][host][:port]/dbname[?schema=name]`, a database (and
  optionally a schema) of its own. What the URL leaves out comes from the store's
  settings (POSTGRES_HOST, _PORT, _USER, _PASSWORD), so the password can stay in the
  Secret the store's login already uses; libpq reads PGSSLMODE and the like itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from services.settings.errors import ConfigError


@dataclass(frozen=True)
class Location:
    kind: str  # "sqlite" or "postgres"
    path: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    schema: str = ""


def parse_location(url: str, setting: str) -> Location:
    """The location a URL names; anything else is a ConfigError naming `setting`."""
    if url.startswith("sqlite://"):
        rest = url[len("sqlite://") :]
        if rest == ":memory:":
            return Location("sqlite", ":memory:")
        if not rest.startswith("/") or rest == "/":
            raise ConfigError(f"{setting}: a SQLite location is sqlite:///absolute/path/file.sqlite")
        return Location("sqlite", rest)
    if url.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        unknown = set(query) - {"schema"}
        if unknown:
            raise ConfigError(f"{setting}: unknown parameter {sorted(unknown)[0]!r} (only schema=...)")
        dbname = unquote(parts.path.lstrip("/"))
        if not dbname:
            raise ConfigError(f"{setting}: name the database: postgresql://host/dbname")
        schema = query.get("schema", [""])[0]
        if schema and not schema.replace("_", "").isalnum():
            raise ConfigError(f"{setting}: schema must be letters, digits and underscores")
        try:
            port = parts.port
        except ValueError:
            raise ConfigError(f"{setting}: the port is not a number") from None
        params: dict[str, Any] = {"dbname": dbname}
        for name, value in (
            ("host", parts.hostname),
            ("port", port),
            ("user", parts.username and unquote(parts.username)),
            ("password", parts.password and unquote(parts.password)),
        ):
            if value:
                params[name] = value
        return Location("postgres", params=params, schema=schema)
    raise ConfigError(f"{setting}: must start with sqlite:// or postgresql://")


def with_store_login(location: Location, env: dict[str, str]) -> Location:
    """Fill what a PostgreSQL URL leaves out from the store's own connection settings."""
    if location.kind != "postgres":
        return location
    params = dict(location.params)
    params.setdefault("host", env.get("POSTGRES_HOST") or None)
    params.setdefault("port", int(env.get("POSTGRES_PORT") or 5432))
    params.setdefault("user", env.get("POSTGRES_USER") or None)
    params.setdefault("password", env.get("POSTGRES_PASSWORD") or None)
    return Location("postgres", params=params, schema=location.schema)


def store_location(env: dict[str, str]) -> Location:
    """The events' own database, as a location (for the defaults beside it)."""
    if env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
        params = {"dbname": env.get("POSTGRES_DBNAME")}
        schema = env.get("POSTGRES_SCHEMA", "")
        return with_store_login(Location("postgres", params=params, schema=schema), env)
    return Location("sqlite", env.get("SQLITE_DBNAME", ":memory:"))


def in_memory(location: Location) -> bool:
    path = location.path
    return location.kind == "sqlite" and (path == ":memory:" or path.startswith("file::memory:"))


def connect_postgres(location: Location) -> Any:
    """A connection to the location's database; its schema is made if missing."""
    import psycopg

    conn = psycopg.connect(**{k: v for k, v in location.params.items() if v is not None}, autocommit=True)
    if location.schema:
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (location.schema,)).fetchall()
        if not found:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {location.schema}")
    return conn


def qualified(location: Location, table: str) -> str:
    return f"{location.schema}.{table}" if location.schema else table
