"""Prometheus metrics: each process keeps its own registry and serves it on its own port.

A registry per process, passed to whoever records, rather than prometheus_client's global
one: tests start several nodes in one process, and each must count only its own calls.
Labels name methods, status codes, outcomes, cities and sources; never a wallet, a merchant
or anything else about a person.
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from services.settings.errors import ConfigError

# Seconds: a claim batch over gRPC may take seconds; a balance read, a millisecond.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Commands per group commit, up to CIVFED_WRITE_BATCH's largest value.
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000)


class NodeMetrics:
    """What a city node counts: calls, their latency, group commits and saga outcomes."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.calls = Counter(
            "civfed_grpc_calls",
            "gRPC calls answered, by method and status code (domain refusals have their own codes)",
            ["method", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "civfed_grpc_call_seconds",
            "Time from a call's arrival to its answer, by method",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "civfed_write_batch_commands",
            "Commands saved per group-commit transaction",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_limit = Gauge(
            "civfed_write_batch_limit",
            "The most commands one group commit may save (CIVFED_WRITE_BATCH)",
            registry=self.registry,
        )
        self.sagas = Counter(
            "civfed_saga_outcomes",
            "Cross-city redemptions ended, by side (home, acceptor) and outcome",
            ["side", "outcome"],
            registry=self.registry,
        )


class MetricsServer:
    """The registry served over HTTP at /metrics, on a thread of its own."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int, setting: str) -> None:
        try:
            server, thread = start_http_server(port, host, registry)
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise ConfigError(f"{setting}: cannot listen on {host}:{port} ({reason})") from None
        self._server: WSGIServer = server
        self._thread: threading.Thread = thread
        self.port: int = server.server_port

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(
    registry: CollectorRegistry, host: str, port: int | None, setting: str = "CIVFED_METRICS_PORT"
) -> MetricsServer | None:
    """Serve `registry` on `host`:`port` (0: a port the kernel picks); None: no metrics."""
    if port is None:
        return None
    return MetricsServer(registry, host, port, setting)
