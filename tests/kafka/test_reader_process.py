"""The Kafka source's reader process: it owns the consumer and hands polls over a pipe. Its
end, however it comes, must neither skip nor double an event: a reader killed mid-catch-up
is an error of the projection naming how it ended, and the next catch-up reads again from
the offsets stored with the read models. Its errors reach the projecting process as
exceptions with their message, and it never outlives the source or the projecting process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError

from projections.balances import balances
from projections.integration import topic_for
from projections.kafka_source import KafkaSource, ReaderFailed
from projections.projector import Delivery, Projector
from projections.store import Store
from services.city import CityApplication
from services.relay import Relay
from tests.conftest import free_port
from tests.kafka.activity import balances_from_app, season
from tests.kafka.conftest import Broker, snapshot
from tests.kafka.test_failures import project, relay_all
from tests.kafka.test_lag_metrics import PROJECTION_LAG, until

ROOT = Path(__file__).resolve().parents[2]


def gone(pid: int, wait_s: float = 30.0) -> bool:
    """Whether process `pid` has ended (exited, or left only as a zombie), waiting up to
    `wait_s` for it: a liveness bound, not a speed check."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def published(broker: Broker, app: CityApplication, store: Store, prefix: str) -> list[str]:
    wallets = season(app, prefix, people=15, days=4)
    relay = Relay(app, "bologna", broker.bootstrap, store, partitions=3, timeout_ms=3000)
    relay_all(relay, app)
    relay.close()
    return wallets


def test_a_reader_killed_mid_catch_up_is_a_clear_error_and_the_next_catch_up_counts_once(
    broker: Broker, bologna: CityApplication, read_store: Store, fresh_store: Store
) -> None:
    wallets = published(broker, bologna, read_store, "killed")
    projector = Projector(read_store)
    # Small polls: the reader is still reading when it is killed.
    client: dict[str, Any] = {"bootstrap_servers": broker.bootstrap, "max_poll_records": 5}
    source = KafkaSource(client, ["bologna"], projector)
    try:
        assert source.poll_once() > 0  # a first batch applied, with its offsets
        first = source.reader_pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        with pytest.raises(ReaderFailed, match="Kafka reader process ended: killed by SIGKILL"):
            source.catch_up()  # what it handed over before it died is applied, then its end
        assert gone(first)
        stored = projector.positions(topic_for("bologna"))
        assert sum(position for position, _ in stored.values()) > 0
        total = source.applied + source.catch_up()  # a new reader, from the stored offsets
        assert source.reader_pid not in (None, first)
    finally:
        source.close()
    assert source.reader_pid is None
    with read_store.transaction() as tx:
        assert balances(tx, "bologna") == balances_from_app(bologna, wallets)
    assert total == project(broker.bootstrap, fresh_store)
    assert snapshot(read_store) == snapshot(fresh_store)


def test_a_batch_that_fails_ends_its_reader_and_the_next_poll_reads_from_the_stored_offsets(
    broker: Broker, bologna: CityApplication, read_store: Store, fresh_store: Store
) -> None:
    published(broker, bologna, read_store, "reseek")
    projector = Projector(read_store)
    applied = projector.apply_batch
    calls = 0

    def fail_second(source: str, deliveries: list[Delivery]) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("the read models' database went away")
        return applied(source, deliveries)

    projector.apply_batch = fail_second  # type: ignore[method-assign]
    client: dict[str, Any] = {"bootstrap_servers": broker.bootstrap, "max_poll_records": 5}
    source = KafkaSource(client, ["bologna"], projector)
    try:
        first = source.reader_pid
        assert first is not None
        with pytest.raises(RuntimeError, match="went away"):
            source.catch_up()
        stored = projector.positions(topic_for("bologna"))
        assert 0 < sum(position for position, _ in stored.values()) <= 5  # the first batch alone
        total = source.applied + source.catch_up()
        assert gone(first)  # the reader that read past the failed batch is gone
        assert source.reader_pid not in (None, first)
    finally:
        source.close()
    assert total == project(broker.bootstrap, fresh_store)
    assert snapshot(read_store) == snapshot(fresh_store)


def test_an_error_in_the_reader_reaches_the_source_with_its_message(read_store: Store) -> None:
    nobody = {"bootstrap_servers": f"127.0.0.1:{free_port()}", "request_timeout_ms": 3000}
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        KafkaSource(nobody, ["bologna"], Projector(read_store))


def test_the_reader_ends_with_the_source_and_with_the_projecting_process(
    broker: Broker, bologna: CityApplication, read_store: Store, fresh_store: Store
) -> None:
    published(broker, bologna, read_store, "orphan")
    source = KafkaSource(broker.bootstrap, ["bologna"], Projector(fresh_store))
    pid = source.reader_pid
    assert pid is not None
    source.close()
    assert gone(pid, wait_s=0)  # close waits for it

    # A projecting process SIGKILLed mid-batch: its reader notices its pipe closed and exits.
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    script = ROOT / "tests" / "kafka" / "killed_projector.py"
    args = [sys.executable, str(script), broker.bootstrap, read_store.url, read_store.schema, "40"]
    done = subprocess.run(args, env=env, cwd=ROOT, timeout=120, capture_output=True)
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    reader = int(done.stdout.decode().split()[0])
    assert gone(reader)


def children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return [int(c) for task in tasks for c in (task / "children").read_text().split()]


def test_ctrl_c_stops_a_following_projector_and_its_reader_in_order(
    broker: Broker, bologna: CityApplication, pg_env: dict[str, str], read_store: Store
) -> None:
    published(broker, bologna, read_store, "ctrlc")
    port = free_port()
    env = {
        **os.environ,
        **pg_env,
        "PYTHONPATH": str(ROOT),
        "CIVFED_KAFKA_BOOTSTRAP": broker.bootstrap,
        "CIVFED_READ_MODELS_URL": read_store.url,
        "POSTGRES_SCHEMA": read_store.schema,
        "CIVFED_METRICS_PORT": str(port),
    }
    args = [sys.executable, "-m", "services.cli", "project", "--follow", "--city", "bologna"]
    # Its own process group, as a terminal's foreground job: Ctrl-C signals the whole group.
    pipe = subprocess.PIPE
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=pipe, stderr=pipe, start_new_session=True)
    try:
        assert until(port, PROJECTION_LAG, {"source": "civfed.bologna.events"}, lambda v: v == 0) == 0
        readers = children(proc.pid)
        assert len(readers) == 1
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # Stopped by the user either way, never by its reader's end: following, it returns what it
    # applied; still catching up, it is interrupted (CLI exit code 130, nothing half-written).
    assert "reader" not in err.decode()
    if proc.returncode == 0:
        assert out.decode().startswith("applied ")
    else:
        assert proc.returncode == 130, err.decode()[-2000:]
    assert gone(readers[0])
