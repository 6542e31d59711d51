"""Relay lag and projection lag, scraped over HTTP, against tansu and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry

from projections.kafka_source import KafkaSource
from projections.log_source import catch_up_log
from projections.projector import Projector
from projections.store import Store
from services.city import CityApplication
from services.metrics import serve_metrics
from services.relay import Relay, relay_position
from services.settings.cities import load_city, load_settings
from services.stream_metrics import ProjectionLag
from tests.conftest import PG_URL, free_port
from tests.kafka.activity import season
from tests.kafka.conftest import Broker
from tests.metrics.scrape import scrape, value

ROOT = Path(__file__).resolve().parents[2]
RELAY_LAG = "civfed_relay_lag_events"
PROJECTION_LAG = "civfed_projection_lag_events"


@contextmanager
def served(registry: CollectorRegistry) -> Iterator[int]:
    server = serve_metrics(registry, "127.0.0.1", 0)
    assert server is not None
    try:
        yield server.port
    finally:
        server.close()


@contextmanager
def civfed(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """`civfed ARGS` as its own process, stopped with SIGTERM on exit."""
    full = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", *args], env=full, cwd=ROOT)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(30)


def until(
    port: int, name: str, labels: dict[str, str], wanted: Callable[[float | None], bool]
) -> float | None:
    """Scrape until the series satisfies `wanted` (None: not served yet); its last value."""
    deadline = time.monotonic() + 60
    last: float | None = None
    while time.monotonic() < deadline:
        try:
            samples = scrape(port)
            key = (name, tuple(sorted(labels.items())))
            last = samples.get(key)
        except OSError:
            last = None  # not listening yet
        if wanted(last):
            return last
        time.sleep(0.2)
    raise AssertionError(f"{name}{labels} stayed at {last}")


def test_relay_lag_counts_what_kafka_has_not_acknowledged(
    broker: Broker, bologna: CityApplication, pg_env: dict[str, str]
) -> None:
    season(bologna, "rl", people=4, days=1)
    recorded = bologna.recorder.max_notification_id()
    port = free_port()
    env = {
        **pg_env,
        "CIVFED_KAFKA_BOOTSTRAP": broker.bootstrap,
        "CIVFED_RELAY_TIMEOUT_MS": "1500",
        "CIVFED_METRICS_PORT": str(port),
    }
    broker.pause()  # nothing can be acknowledged yet
    try:
        with civfed(["relay", "--city", "bologna"], env):
            lag = until(port, RELAY_LAG, {"city": "bologna"}, lambda v: v is not None)
            assert lag == recorded > 0
            broker.resume()
            assert until(port, RELAY_LAG, {"city": "bologna"}, lambda v: v == 0) == 0
            # Events recorded while it runs are relayed too, and the lag returns to zero.
            season(bologna, "rl2", people=2, days=1)
            assert until(port, RELAY_LAG, {"city": "bologna"}, lambda v: v == 0) == 0
    finally:
        broker.resume()
    with closing(Store(PG_URL, pg_env["POSTGRES_SCHEMA"])) as store:
        assert (
            relay_position(store, "bologna", "civfed.bologna.events")
            == bologna.recorder.max_notification_id()
        )


def test_projection_lag_per_kafka_topic(broker: Broker, bologna: CityApplication, read_store: Store) -> None:
    season(bologna, "pl", people=4, days=1)
    relay = Relay(bologna, "bologna", broker.bootstrap, read_store, partitions=3, timeout_ms=3000)
    # One record per produce request: tansu reports a partition's end as its last batch's
    # base offset + 1, which is exact only when every batch holds one record.
    published = 0
    while relay.position < bologna.recorder.max_notification_id():
        published += relay.publish_once(limit=1)
    relay.close()
    assert published > 0
    projector = Projector(read_store)
    registry = CollectorRegistry()
    lag = ProjectionLag(
        lambda: Store(read_store.url, read_store.schema),
        kafka={"bootstrap_servers": broker.bootstrap},
        cities=["bologna"],
    )
    registry.register(lag)
    topic = {"source": "civfed.bologna.events"}
    try:
        with served(registry) as port:
            # Every record the relay published (internal events included) waits on the topic.
            assert value(scrape(port), PROJECTION_LAG, **topic) == published
            source = KafkaSource(broker.bootstrap, ["bologna"], projector)
            source.catch_up()
            source.close()
            assert value(scrape(port), PROJECTION_LAG, **topic) == 0
            assert (PROJECTION_LAG, tuple(topic.items())) in scrape(port)
    finally:
        lag.close()


def test_projection_lag_per_log_source(tmp_path: Path) -> None:
    settings = load_settings({"CIVFED_DATA_DIR": str(tmp_path / "data")})
    app = CityApplication(load_city("bologna"), settings.eventsourcing_env("bologna"))
    store = Store(f"sqlite:///{tmp_path / 'read_models.sqlite'}")
    try:
        season(app, "log", people=3, days=1)
        projector = Projector(store)
        registry = CollectorRegistry()
        registry.register(ProjectionLag(lambda: Store(store.url), apps=[("bologna", app)]))
        with served(registry) as port:
            recorded = app.recorder.max_notification_id()
            assert value(scrape(port), PROJECTION_LAG, source="log:bologna") == recorded > 0
            catch_up_log(projector, app, "bologna")
            assert value(scrape(port), PROJECTION_LAG, source="log:bologna") == 0
            assert (PROJECTION_LAG, (("source", "log:bologna"),)) in scrape(port)
    finally:
        store.close()
        app.close()


def test_the_projector_process_serves_its_lag(
    broker: Broker, bologna: CityApplication, pg_env: dict[str, str], read_store: Store
) -> None:
    season(bologna, "pp", people=3, days=1)
    relay = Relay(bologna, "bologna", broker.bootstrap, read_store, timeout_ms=3000)
    assert relay.publish_once(limit=100_000) > 0
    relay.close()
    port = free_port()
    env = {
        **pg_env,
        "CIVFED_KAFKA_BOOTSTRAP": broker.bootstrap,
        "CIVFED_READ_MODELS_URL": read_store.url,
        "CIVFED_METRICS_PORT": str(port),
    }
    # The read models in the test's store (the projector reads only Kafka, no event store).
    env["POSTGRES_SCHEMA"] = read_store.schema
    with civfed(["project", "--follow", "--city", "bologna"], env):
        topic = {"source": "civfed.bologna.events"}
        assert until(port, PROJECTION_LAG, topic, lambda v: v == 0) == 0
    with read_store.transaction() as tx:
        applied = tx.one("SELECT COUNT(*) FROM rm_positions WHERE source = ?", ("civfed.bologna.events",))
    assert applied is not None and applied[0] > 0
