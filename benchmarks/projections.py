"""Event-path throughput on the tansu broker: relay vs raw produce, projection vs raw consume.

Prints JSON. Each figure sits beside its baseline measured in the same run on
the same broker, topic shape and messages, so the ratio means something on a
shared machine. The projection catches up from the start of the topic into fresh
read models on each store named (SQLite and PostgreSQL by default), each right
after a raw kafka-python consumer read the same topic with the same fetch settings.
With `--rounds N` each store repeats that pair N times (fresh read models each round) and
reports the medians beside every round's own ratio: on a shared machine one pair can land
on a busy second.

    python -m benchmarks.projections [--people 400] [--days 5] [--store sqlite --store postgres] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.figures import Figure, figure  # noqa: E402
from projections.integration import topic_for  # noqa: E402
from projections.kafka_source import FETCH, KafkaSource  # noqa: E402
from projections.projector import Projector  # noqa: E402
from projections.store import Store  # noqa: E402
from services.city import CityApplication  # noqa: E402
from services.relay import Relay  # noqa: E402
from services.settings.cities import load_city, load_settings  # noqa: E402
from tests.kafka.activity import season  # noqa: E402
from tests.kafka.conftest import start_broker, stop_broker  # noqa: E402


def raw_produce(bootstrap: str, messages: list[tuple[bytes, bytes]]) -> float:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    start = time.perf_counter()
    for key, value in messages:
        producer.send("bench.raw", key=key, value=value)
    producer.flush()
    elapsed = time.perf_counter() - start
    producer.close()
    return len(messages) / elapsed


def raw_consume(bootstrap: str, topic: str, expected: int) -> float:
    """Read the whole topic and decode nothing: what kafka-python alone costs, with the fetch
    settings the Kafka source uses."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **FETCH)
    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    consumer.assign(parts)
    for tp in parts:
        consumer.seek(tp, 0)
    seen, start = 0, time.perf_counter()
    while seen < expected:
        seen += sum(len(r) for r in consumer.poll(timeout_ms=1000).values())
    elapsed = time.perf_counter() - start
    consumer.close()
    return seen / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=400)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--store", choices=STORES, action="append", help="repeatable; default: both")
    parser.add_argument("--rounds", type=int, default=1, help="raw consume + catch-up pairs per store")
    args = parser.parse_args()
    print(json.dumps(run(args.people, args.days, tuple(args.store or STORES), args.rounds), indent=2))


STORES = ("sqlite", "postgres")
# The city whose season both event-path benchmarks build (benchmarks/rebuild.py too).
CITY = "bologna"


def run(
    people: int = 400, days: int = 5, stores: tuple[str, ...] = STORES, rounds: int = 1
) -> dict[str, Any]:
    """The whole report, as `main` prints it. Events: about 11 per person from ten days on."""
    tmp = Path(tempfile.mkdtemp())
    settings = load_settings({"CIVFED_DATA_DIR": str(tmp)})
    app = CityApplication(load_city("bologna"), settings.eventsourcing_env("bologna"))
    start = time.perf_counter()
    season(app, "bench", people=people, days=days)
    built = time.perf_counter() - start
    broker = start_broker()
    relay_store = Store(f"sqlite:///{tmp / 'relay.sqlite'}")
    try:
        relay = Relay(app, "bologna", broker.bootstrap, relay_store, partitions=3)
        start = time.perf_counter()
        published = relay.publish_once(limit=10**7)
        relay_rate = published / (time.perf_counter() - start)
        relay.close()

        # The same messages, produced raw to a topic of the same shape.
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None)
        topic = topic_for("bologna")
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        for tp in parts:
            consumer.seek(tp, 0)
        messages: list[tuple[bytes, bytes]] = []
        while len(messages) < published:
            for records in consumer.poll(timeout_ms=1000).values():
                messages += [(r.key, r.value) for r in records]
        consumer.close()
        produce_rate = raw_produce(broker.bootstrap, messages)

        catch_up = {kind: _rounds(broker.bootstrap, topic, published, kind, tmp, rounds) for kind in stores}
    finally:
        relay_store.close()
        stop_broker(broker)
        app.close()
    return {
        "events": published,
        "events_built_seconds": round(built, 1),
        "relay_events_per_s": round(relay_rate),
        "raw_produce_per_s": round(produce_rate),
        "catch_up": catch_up,
    }


def _rounds(bootstrap: str, topic: str, published: int, kind: str, tmp: Path, rounds: int) -> dict[str, Any]:
    """`rounds` pairs of raw consume and catch-up: the medians, and each pair's own ratio."""
    pairs = [_catch_up(bootstrap, topic, published, kind, tmp) for _ in range(max(1, rounds))]
    if len(pairs) == 1:
        return pairs[0]
    return {
        "projection_catch_up_events_per_s": round(
            statistics.median(p["projection_catch_up_events_per_s"] for p in pairs)
        ),
        "raw_consume_per_s": round(statistics.median(p["raw_consume_per_s"] for p in pairs)),
        "ratio_per_round": [
            round(p["projection_catch_up_events_per_s"] / p["raw_consume_per_s"], 3) for p in pairs
        ],
    }


def _catch_up(bootstrap: str, topic: str, published: int, kind: str, tmp: Path) -> dict[str, Any]:
    """Raw consumption of the topic, then the projection's catch-up into fresh read models."""
    consume_rate = raw_consume(bootstrap, topic, published)
    postgres = kind == "postgres"
    # Fresh read models each round: a file of its own (the last round's is at the topic's end).
    sqlite = tmp / f"rm-{len(list(tmp.glob('rm-*.sqlite')))}.sqlite"
    store = Store(PG_URL, _pg_schema()) if postgres else Store(f"sqlite:///{sqlite}")
    try:
        source = KafkaSource(bootstrap, ["bologna"], Projector(store))
        start = time.perf_counter()
        idle = 0
        while source.applied < published:
            idle = idle + 1 if source.poll_once() == 0 else 0
            if idle >= STALLED_POLLS:
                raise RuntimeError(f"catch-up stalled: {source.applied} of {published} events applied")
        project_rate = source.applied / (time.perf_counter() - start)
        source.close()
    finally:
        store.close()
        if postgres:
            _drop(store.schema)
    return {"projection_catch_up_events_per_s": round(project_rate), "raw_consume_per_s": round(consume_rate)}


def figures(report: dict[str, Any]) -> list[Figure]:
    """Each figure of `run`'s report beside the baseline measured in the same run."""
    found = [
        figure(
            "projections.relay_events_per_s",
            report["relay_events_per_s"],
            "events/s",
            report["raw_produce_per_s"],
            "raw produce of the same messages to a topic of the same shape",
        )
    ]
    for kind, rates in report["catch_up"].items():
        found.append(
            figure(
                f"projections.{kind}.projection_catch_up_events_per_s",
                rates["projection_catch_up_events_per_s"],
                "events/s",
                rates["raw_consume_per_s"],
                "raw kafka-python consume of the same topic, same fetch settings",
            )
        )
    return found


# Empty polls in a row after which a catch-up that has not applied every event fails loudly.
STALLED_POLLS = 20
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _pg_schema() -> str:
    import uuid

    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return schema


def _drop(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
