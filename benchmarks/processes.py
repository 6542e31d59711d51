"""City nodes as `civfed serve` processes, and an echo server as a process of its own.

The home city's node starts first; its partner's address is a front door (used only for
the acceptor's published terms, which the home asks once and keeps). The accepting node
then starts knowing the home's own port, so every Reserve and Commit goes straight from
one node process to the other, over mutual TLS, as deployed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.demo.local_federation import LocalFederation

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class NodeProcesses:
    def __init__(self, fed: LocalFederation) -> None:
        self.fed = fed
        self.procs: list[subprocess.Popen[bytes]] = []
        self.metrics_ports: dict[str, int] = {}

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> tuple[Path, subprocess.Popen[bytes]]:
        port_file = self.fed.folder / f"{name}.ports"
        port_file.unlink(missing_ok=True)
        log = open(self.fed.folder / f"{name}.log", "ab")  # noqa: SIM115 - kept open for the child
        proc = subprocess.Popen(
            [sys.executable, *argv, "--port-file", str(port_file)],
            cwd=ROOT,
            env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=log,
        )
        self.procs.append(proc)
        deadline = time.monotonic() + 60
        while not port_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start: " + (self.fed.folder / f"{name}.log").read_text())
            time.sleep(0.05)
        return port_file, proc

    def start_node(self, city: str) -> int:
        """Start `city`'s node and wait until it serves; its process id."""
        port_file, proc = self._spawn(
            city, ["-m", "services.cli", "serve", "--city", city], self.fed.environment(city)
        )
        ports = json.loads(port_file.read_text())
        self.fed.listening(city, ports["grpc"], ports["health"])
        if ports.get("metrics") is not None:
            self.metrics_ports[city] = ports["metrics"]
        with self.fed.channel(city) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while True:
                with contextlib.suppress(grpc.RpcError):
                    reply = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return proc.pid
                time.sleep(0.1)

    def start_echo(self) -> int:
        """The echo server on `vienna`'s certificate; the port it bound."""
        env = {k: v for k, v in self.fed.environment("vienna").items() if k.startswith("CIVFED_TLS_")}
        port_file, _ = self._spawn("echo", ["-m", "benchmarks.echo_server"], env)
        return int(port_file.read_text())

    def stop_all(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()


@contextlib.contextmanager
def postgres_databases(cities: list[str], folder: Path) -> Iterator[dict[str, dict[str, str]]]:
    """A fresh database per city in the local PostgreSQL, dropped afterwards: each city's
    settings for it, with the key-store key a PostgreSQL store requires (kept in `folder`)."""
    run = uuid.uuid4().hex[:8]
    folder.mkdir(parents=True, exist_ok=True)
    kek = folder / "keystore.key"
    kek.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    kek.chmod(0o600)
    names = {city: f"civfed_bench_{run}_{city}" for city in cities}
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        for name in names.values():
            conn.execute(f"CREATE DATABASE {name}")
    try:
        yield {
            city: {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": name,
                "POSTGRES_HOST": "127.0.0.1",
                "POSTGRES_PORT": "5432",
                "POSTGRES_USER": "postgres",
                "CIVFED_KEYSTORE_KEY_FILE": str(kek),
            }
            for city, name in names.items()
        }
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            for name in names.values():
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
