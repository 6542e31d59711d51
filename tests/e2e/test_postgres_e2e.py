"""City nodes with their event stores on PostgreSQL, one fresh schema per city.

The same flows as on SQLite; the fixture checks conservation in every city afterwards.
"""

from __future__ import annotations

import psycopg
from cluster import Cluster
from test_redemption_e2e import (
    test_fifty_concurrent_redemptions_spend_exactly_the_balance as fifty_concurrent,
)
from test_redemption_e2e import (
    test_happy_path_credits_the_shop_burns_at_home_and_settles as happy_path,
)
from test_saga_failures_e2e import test_acceptor_retrying_commit_burns_once as retried_commit

from tests.conftest import PG_URL


def events_in_postgres(cluster: Cluster, city: str) -> int:
    """Rows in the city's event table in its own schema; and no SQLite store beside it."""
    schema = cluster.fed.environment(city)["POSTGRES_SCHEMA"]
    assert not (cluster.fed.folder / "data" / city / f"{city}.sqlite").exists()
    with psycopg.connect(PG_URL) as conn:
        row = conn.execute(f"SELECT COUNT(*) FROM {schema}.civfed_{city}_events").fetchone()
    assert row is not None
    return int(row[0])


def test_happy_path_on_postgres(pg_cluster: Cluster) -> None:
    happy_path(pg_cluster)
    assert events_in_postgres(pg_cluster, "vienna") > 0
    assert events_in_postgres(pg_cluster, "sint_niklaas") > 0


def test_fifty_concurrent_redemptions_on_postgres(pg_cluster: Cluster) -> None:
    fifty_concurrent(pg_cluster)


def test_retried_commit_burns_once_on_postgres(pg_cluster: Cluster) -> None:
    retried_commit(pg_cluster)
    assert events_in_postgres(pg_cluster, "vienna") > 0
