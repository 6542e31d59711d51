"""The rebuild benchmark's bulk store is the store the application would have written.

Four seasons of six people over two days, once through the application (seasons `bench0` to
`bench3`, as the benchmark's application path runs them) and once in bulk (`bench0` through
the application, the other three cloned from it). Both stores must hold the same events of
each type, the same keys and links, the same snapshots (every third event of a wallet, a
shop or a fund; a fund's, taken as the clones move it on, with the same state), and give
the same read models when rebuilt (per table:
rows and the sum of each number; the balances as a multiset, since every wallet goes by a
pseudonym of its own). The clones must be the application's own: each loads through it with
its template's balance, its sealed fields open under its own key and name its own season,
retrying a clone's command with its key replays the stored result, and erasing one clone's
key leaves the others readable. Where the clones would overdraw a fund, it is topped up
through the application first, and the fund's books still balance.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from aggregates.fund import Fund
from benchmarks import bulk_store
from services.city import CityApplication
from services.cli.stream import rebuild
from services.funds import FundBooks
from services.privacy.sealing import REDACTED
from services.settings.cities import PACKAGED_CITIES, load_city, load_settings
from services.settings.stream import load_stream_settings
from tests.conftest import PG_URL, new_schema, write_kek
from tests.kafka.activity import season

CITY = "bologna"
PEOPLE, DAYS, SEASONS = 6, 2, 4
SNAPSHOT_EVERY = 3


def _env(schemas: list[str], folder: Path) -> dict[str, str]:
    folder.mkdir()
    return {
        "CIVFED_DATA_DIR": str(folder),
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": "test",
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": "5432",
        "POSTGRES_USER": "postgres",
        "POSTGRES_SCHEMA": new_schema(schemas),
        "CIVFED_KEYSTORE_KEY_FILE": str(write_kek(folder / "keystore.key")),
        # Every third event of a wallet, a shop or a fund: snapshots of all three.
        "CIVFED_SNAPSHOT_INTERVAL": str(SNAPSHOT_EVERY),
    }


def _app(env: dict[str, str]) -> CityApplication:
    return CityApplication(load_city(CITY), load_settings(env).eventsourcing_env(CITY))


@pytest.fixture
def stores(pg_schemas: list[str], tmp_path: Path) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """The application's store and the bulk one, each built and closed."""
    by_app, in_bulk = _env(pg_schemas, tmp_path / "app"), _env(pg_schemas, tmp_path / "bulk")
    app = _app(by_app)
    try:
        for n in range(SEASONS):
            season(app, f"bench{n}", people=PEOPLE, days=DAYS)
    finally:
        app.close()
    app = _app(in_bulk)
    try:
        seasons, written = bulk_store.build(app, SEASONS, PEOPLE, DAYS, progress=False)
        assert seasons == SEASONS and written == app.recorder.max_notification_id() - _setup(app)
    finally:
        app.close()
    yield by_app, in_bulk


def _setup(app: CityApplication) -> int:
    """The events a new city's store starts with (its rulebook and funds)."""
    return len(app.recorder.select_notifications(start=0, limit=100, topics=_setup_topics()))


def _setup_topics() -> list[str]:
    return [
        "aggregates.rulebook:Rulebook.Created",
        "aggregates.rulebook:Rulebook.RulePublished",
        "aggregates.fund:Fund.Declared",
    ]


def _sql(schema: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(PG_URL) as conn:
        conn.execute(f"SET search_path TO {schema}")
        return list(conn.execute(query, params).fetchall())


def _store_figures(schema: str) -> dict[str, Any]:
    return {
        "topics": Counter(
            dict(_sql(schema, "SELECT topic, COUNT(*) FROM civfed_bologna_events GROUP BY topic"))
        ),
        "last": _sql(schema, "SELECT MAX(notification_id) FROM civfed_bologna_events"),
        "versions": sorted(
            _sql(
                schema,
                "SELECT MAX(originator_version), COUNT(*) FROM civfed_bologna_events GROUP BY originator_id",
            )
        ),
        "keys": _sql(schema, "SELECT COUNT(*), COUNT(key) FROM civfed_bologna_keys"),
        "aliases": _sql(schema, "SELECT COUNT(*) FROM civfed_bologna_keys_aliases"),
        # Per kind of aggregate (the class its first event names) and version.
        "snapshots": sorted(
            _sql(
                schema,
                "SELECT split_part(split_part(e.topic, ':', 2), '.', 1), s.originator_version, COUNT(*) "
                "FROM civfed_bologna_snapshots s JOIN civfed_bologna_events e "
                "ON e.originator_id = s.originator_id AND e.originator_version = 1 GROUP BY 1, 2",
            )
        ),
    }


def _fund_snapshots(env: dict[str, str]) -> list[tuple[int, dict[str, Any]]]:
    """Each fund's snapshots: version and state (but when it was taken)."""
    app = _app(env)
    try:
        assert app.snapshots is not None
        return [
            (
                s.originator_version,
                {k: v for k, v in s.state.items() if k not in ("_created_on", "_modified_on")},
            )
            for fund_id in app.city.config.funds
            for s in app.snapshots.get(Fund.create_id(app.key, fund_id))
        ]
    finally:
        app.close()


def _read_models(schema: str) -> dict[str, list[Any]]:
    """Each read-model table: its rows, and the sum of each of its number columns."""
    figures: dict[str, list[Any]] = {}
    tables = _sql(
        schema,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_name LIKE 'rm%%'",
        (schema,),
    )
    for (table,) in tables:
        numbers = [
            c
            for (c,) in _sql(
                schema,
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = %s AND data_type IN ('bigint', 'integer', 'numeric', 'double precision', "
                "'real') ORDER BY column_name",
                (schema, table),
            )
        ]
        sums = ", ".join([f"COALESCE(SUM({c}), 0)" for c in numbers] + ["COUNT(*)"])
        figures[table] = list(_sql(schema, f"SELECT {sums} FROM {table}")[0])
    return figures


def _wallets(app: CityApplication) -> list[list[UUID]]:
    """Each season's wallets, in the order they were opened."""
    opened = app.recorder.select_notifications(
        start=0, limit=10_000, topics=["aggregates.wallet:Wallet.Opened"]
    )
    ids = [UUID(str(row.originator_id)) for row in opened]
    assert len(ids) == SEASONS * PEOPLE
    return [ids[n * PEOPLE : (n + 1) * PEOPLE] for n in range(SEASONS)]


def test_the_bulk_store_is_what_the_application_writes(stores: tuple[dict[str, str], dict[str, str]]) -> None:
    by_app, in_bulk = stores
    app_schema, bulk_schema = by_app["POSTGRES_SCHEMA"], in_bulk["POSTGRES_SCHEMA"]
    figures = _store_figures(bulk_schema)
    assert figures == _store_figures(app_schema)
    assert {kind for kind, _, _ in figures["snapshots"]} == {"Wallet", "Merchant", "Fund"}
    funds = _fund_snapshots(in_bulk)
    assert len(funds) >= SEASONS and funds == _fund_snapshots(by_app)

    applied = [rebuild(load_settings(env), load_stream_settings(env), [CITY]) for env in (by_app, in_bulk)]
    assert applied[0] == applied[1] > SEASONS * PEOPLE * DAYS
    models = _read_models(bulk_schema)
    assert "rm_balances" in models and "rm_cells" in models and "rm_funds" in models
    assert models == _read_models(app_schema)
    balances = [sorted(_sql(s, "SELECT balance, held FROM rm_balances")) for s in (app_schema, bulk_schema)]
    assert balances[0] == balances[1] and len(balances[0]) == SEASONS * PEOPLE
    assert len({row[0] for row in balances[0]}) > 1  # spenders and savers differ


def test_each_clone_is_the_applications_own(stores: tuple[dict[str, str], dict[str, str]]) -> None:
    _, in_bulk = stores
    app = _app(in_bulk)
    try:
        seasons = _wallets(app)
        template = seasons[0]
        consent = app.city.config.consent_versions[-1]
        for n, wallets in enumerate(seasons[1:], start=1):
            assert not set(wallets) & set(template)
            for i, wallet in enumerate(wallets):
                assert app.wallet(wallet).balance == app.wallet(template[i]).balance
                assert app.wallet(wallet).held == app.wallet(template[i]).held
                credited = [
                    app.mapper.to_domain_event(e)
                    for e in app.recorder.select_events(wallet)
                    if e.topic.endswith("Wallet.Credited")
                ]
                assert [e.activity_id for e in credited] == [f"bench{n}:a{d}:{i}" for d in range(DAYS)]
            # The clone's receipts: a retry replays the stored result and writes nothing.
            last = app.recorder.max_notification_id()
            assert app.execute(app.open_wallet(f"bench{n}:w2", "resident", consent)) == {
                "wallet_id": str(wallets[2])
            }
            again = app.execute(
                app.record_activity(
                    f"bench{n}:a1:3", wallets[3], "eco_action", {"action": "bus_ride", "date": "2026-05-02"}
                )
            )
            assert again["amount"] == 3 and "2026" in again["explanation"]
            assert app.recorder.max_notification_id() == last

        # Erasing one clone's key closes its fields alone.
        gone, kept = seasons[2][1], seasons[3][1]
        assert app.keys is not None
        assert app.keys.erase([gone]) == 1
        sealed = [app.mapper.to_domain_event(e) for e in app.recorder.select_events(gone)][1]
        assert sealed.activity_id == REDACTED
        opened = [app.mapper.to_domain_event(e) for e in app.recorder.select_events(kept)][1]
        assert opened.activity_id == "bench3:a0:1"
        assert app.wallet(kept).balance == app.wallet(template[1]).balance
        assert app.wallet(gone).balance == app.wallet(template[1]).balance  # amounts stay readable
    finally:
        app.close()


def test_a_fund_the_clones_would_overdraw_is_topped_up_first(pg_schemas: list[str], tmp_path: Path) -> None:
    """Ten euros of EU grant: enough for the template's 36 tokens, not for three clones more."""
    cities = tmp_path / "cities"
    shutil.copytree(PACKAGED_CITIES / CITY, cities / CITY)
    toml = cities / CITY / "city.toml"
    text = toml.read_text()
    assert 'budget_eur = "200000"' in text
    toml.write_text(text.replace('budget_eur = "200000"', 'budget_eur = "10"', 1))
    env = _env(pg_schemas, tmp_path / "store")
    app = CityApplication(load_city(CITY, cities), load_settings(env).eventsourcing_env(CITY))
    try:
        fund_id = Fund.create_id(app.key, "eu_grant")
        budget = app.repository.get(fund_id).budget
        bulk_store.build(app, SEASONS, PEOPLE, DAYS, progress=False)
        fund = app.repository.get(fund_id)
        drawn_per_season = PEOPLE * DAYS * 3
        assert budget < SEASONS * drawn_per_season
        assert fund.budget == budget + (SEASONS - 1) * drawn_per_season
        assert fund.awarded == SEASONS * drawn_per_season and fund.remaining >= 0
        books = FundBooks()
        after = 0
        while rows := app.recorder.select_notifications(start=after, limit=500, inclusive_of_start=False):
            for row in rows:
                event = app.mapper.to_domain_event(row)
                books.apply(type(event).__qualname__, event)
            after = rows[-1].id
        assert books.problems(app) == []
        assert books.budget["eu_grant"] == fund.budget
    finally:
        app.close()
