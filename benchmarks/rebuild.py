"""Rebuilding every read model from a city's own store: what `civfed projections rebuild` does.

Prints JSON. Builds the projection benchmark's city seasons in a fresh store (and says how long that
took: `events_built_seconds`, `events_built_per_s` in stored events),
reads its whole notification log raw in the pages the rebuild uses (the baseline: what
the store alone costs; and, beside it, only the rows the rebuild reads: every event but those
known to stay internal, which PostgreSQL leaves out itself), then runs the rebuild itself:
empty the read models and replay the log through the batched projector, read models in the same database.

    python -m benchmarks.rebuild [--people 400] [--days 5] [--store postgres|sqlite]
                                 [--build app|bulk] [--events N]

The store is built either through the application (`--build app`: seasons of 2,000 people,
one group commit per day; some 6,200 stored events a second up to a million), or (`--build bulk`,
PostgreSQL only) one season through the application and the rest cloned from it as the
application would have written them (benchmarks/bulk_store.py). With `--events N` the bulk
build makes as many seasons as give at least N stored events, whatever `--people` says.

Counts: `notifications` is the stored events (every row of the notification log: receipts
and a fund's draws included, which stay internal), `events_applied` the public events the
rebuild applied to the read models; at ten days a season stores about 31 events per person,
of which about 11 are public. At `--scale large` (benchmarks/run.py) the store holds at
least 10 million stored events (about 3.6 million public), built in bulk.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import bulk_store  # noqa: E402
from benchmarks.figures import Figure, figure  # noqa: E402
from benchmarks.projections import CITY, _drop, _pg_schema  # noqa: E402
from projections.log_source import PAGE, _select  # noqa: E402
from services.city import CityApplication  # noqa: E402
from services.cli.stream import rebuild  # noqa: E402
from services.settings.cities import load_city, load_settings  # noqa: E402
from services.settings.stream import load_stream_settings  # noqa: E402
from tests.kafka.activity import season  # noqa: E402

PG = {
    "POSTGRES_DBNAME": "test",
    "POSTGRES_HOST": "127.0.0.1",
    "POSTGRES_PORT": "5432",
    "POSTGRES_USER": "postgres",
}
# People per season built at once: one group commit per day of each season. Larger groups
# make one pipelined INSERT so large that psycopg and PostgreSQL can wait on each other for
# good (a season of 4,000 people did, on its fifth day or so).
CHUNK = 2_000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=400)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--store", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--build", choices=("app", "bulk"), default="app", help="how the store is built")
    parser.add_argument("--events", type=int, default=0, help="bulk: at least this many stored events")
    args = parser.parse_args()
    print(json.dumps(run(args.people, args.days, args.store, args.build, args.events), indent=2))


def run(
    people: int = 400,
    days: int = 5,
    store_kind: str = "postgres",
    build: str = "app",
    events: int = 0,
) -> dict[str, Any]:
    """The whole report. Public events: about 11 per person from ten days on."""
    if build == "bulk" and store_kind != "postgres":
        raise ValueError("the bulk build writes with PostgreSQL's COPY: use --store postgres")
    tmp = Path(tempfile.mkdtemp())
    env = {"CIVFED_DATA_DIR": str(tmp)}
    schema = ""
    if store_kind == "postgres":
        schema = _pg_schema()
        kek = tmp / "keystore.key"
        kek.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
        kek.chmod(0o600)
        env |= {"PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_SCHEMA": schema, **PG}
        env["CIVFED_KEYSTORE_KEY_FILE"] = str(kek)
    try:
        settings = load_settings(env)
        app = CityApplication(load_city(CITY), settings.eventsourcing_env(CITY))
        try:
            start = time.perf_counter()
            if build == "bulk":
                size = min(CHUNK, people)
                seasons, _ = bulk_store.build(app, -(-people // size), size, days, events=events)
                people = seasons * size
            else:
                for n, first in enumerate(range(0, people, CHUNK)):
                    season(app, f"bench{n}", people=min(CHUNK, people - first), days=days)
                    if n % 10 == 9:
                        so_far = time.perf_counter() - start
                        print(
                            f"rebuild: {first + CHUNK} people in {so_far:.0f} s", file=sys.stderr, flush=True
                        )
            built = time.perf_counter() - start
            print(f"rebuild: built the store in {built:.0f} s", file=sys.stderr, flush=True)
            start = time.perf_counter()
            notifications = _read_raw(app)
            raw = time.perf_counter() - start
            start = time.perf_counter()
            kept = _read_kept(app)
            raw_kept = time.perf_counter() - start
        finally:
            app.close()
        start = time.perf_counter()
        applied = rebuild(settings, load_stream_settings(env), [CITY])
        seconds = time.perf_counter() - start
    finally:
        if schema:
            _drop(schema)
    return {
        "store": store_kind,
        "build": build,
        "people": people,
        "days": days,
        "notifications": notifications,
        "events_applied": applied,
        "events_built_seconds": round(built, 1),
        "events_built_per_s": round(notifications / built),
        "raw_log_read_seconds": round(raw, 3),
        "rows_the_rebuild_reads": kept,
        "raw_read_of_those_rows_seconds": round(raw_kept, 3),
        "rebuild_seconds": round(seconds, 3),
        "rebuild_stored_events_per_s": round(notifications / seconds),
        "raw_log_read_per_s": round(notifications / raw),
        "raw_read_of_those_rows_per_s": round(notifications / raw_kept),
    }


def _read_raw(app: CityApplication) -> int:
    """Every notification of the log, in the rebuild's pages, decoded by nothing."""
    seen, after = 0, 0
    while rows := app.recorder.select_notifications(start=after, limit=PAGE, inclusive_of_start=False):
        seen += len(rows)
        after = rows[-1].id
    return seen


def _read_kept(app: CityApplication) -> int:
    """The rows of the log the rebuild reads (the log source's own query), decoded by nothing."""
    seen, after = 0, 0
    while rows := _select(app.recorder, after, PAGE):
        seen += len(rows)
        after = rows[-1].id
    return seen


def figures(report: dict[str, Any]) -> list[Figure]:
    return [
        figure(
            f"rebuild.{report['store']}.rebuild_stored_events_per_s",
            report["rebuild_stored_events_per_s"],
            "events/s",
            report["raw_log_read_per_s"],
            "raw read of the same notification log in the same pages",
        ),
        figure(
            f"rebuild.{report['store']}.rebuild_seconds",
            report["rebuild_seconds"],
            "s",
            report["raw_log_read_seconds"],
            "raw read of the same notification log in the same pages",
        ),
    ]


if __name__ == "__main__":
    main()
