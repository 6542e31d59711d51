"""`civfed relay`, `civfed project`, `civfed projections rebuild`, `civfed dashboard`.

Also what `civfed demo` does after the scenario: build the read models from the
notification logs and, with `--serve`, show the dashboard.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import socket
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from projections.integration import topic_for
from projections.kafka_source import KafkaSource, topic_ends
from projections.log_source import catch_up_log, follow_logs, log_source
from projections.projector import Projector
from services.city import CityApplication
from services.metrics import serve_metrics
from services.settings.cities import Settings, city_keys, cli_environment, load_city, load_settings
from services.settings.errors import ConfigError
from services.settings.stream import (
    StreamSettings,
    kafka_client_kwargs,
    load_stream_settings,
    read_model_store,
)
from services.stream_metrics import ProjectionLag, RelayLag


def _env(args: argparse.Namespace) -> dict[str, str]:
    env = cli_environment(getattr(args, "data_dir", None))
    if getattr(args, "kafka", None):
        env["CIVFED_KAFKA_BOOTSTRAP"] = args.kafka
    return env


def _cities(settings: Settings, chosen: list[str] | None) -> list[str]:
    return chosen or city_keys(settings.CIVFED_CITIES_DIR)


def open_apps(settings: Settings, cities: list[str], stack: ExitStack) -> list[tuple[str, CityApplication]]:
    apps: list[tuple[str, CityApplication]] = []
    for key in cities:
        app = CityApplication(load_city(key, settings.CIVFED_CITIES_DIR), settings.eventsourcing_env(key))
        stack.callback(app.close)
        apps.append((key, app))
    return apps


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def project(
    settings: Settings,
    stream: StreamSettings,
    cities: list[str],
    follow: bool,
    registry: CollectorRegistry | None = None,
) -> int:
    """Catch the read models up (and keep following with `follow`); returns events applied.
    With `registry`, each source's lag is measured there when it is scraped."""
    store = read_model_store(settings, stream)
    projector = Projector(store)
    with ExitStack() as stack:
        stack.callback(store.close)

        def measure(lag: ProjectionLag) -> None:
            if registry is not None:
                registry.register(lag)
                stack.callback(registry.unregister, lag)
                stack.callback(lag.close)

        if stream.CIVFED_KAFKA_BOOTSTRAP:
            kafka = kafka_client_kwargs(stream)
            source = KafkaSource(kafka, cities, projector)
            stack.callback(source.close)
            measure(ProjectionLag(lambda: read_model_store(settings, stream), kafka=kafka, cities=cities))
            source.catch_up()
            if follow:
                source.follow(_stop_on_signals())
            return source.applied
        apps = open_apps(settings, cities, stack)
        measure(ProjectionLag(lambda: read_model_store(settings, stream), apps=apps))
        applied = sum(catch_up_log(projector, app, key) for key, app in apps)
        if follow:
            follow_logs(projector, apps, _stop_on_signals())
        return applied


def cmd_project(args: argparse.Namespace) -> int:
    env = _env(args)
    settings, stream = load_settings(env), load_stream_settings(env)
    registry = CollectorRegistry()
    # Bound before any store is opened: a port in use stops start-up naming its setting.
    metrics = serve_metrics(registry, stream.CIVFED_METRICS_HOST, stream.CIVFED_METRICS_PORT)
    try:
        applied = project(settings, stream, _cities(settings, args.city), args.follow, registry)
    finally:
        if metrics is not None:
            metrics.close()
    print(f"applied {applied} events")
    return 0


def rebuild(settings: Settings, stream: StreamSettings, cities: list[str]) -> int:
    """Empty the read models and replay every city's own store; returns events applied.

    Never from a topic: it keeps messages only for the days the city sets. With Kafka,
    the topics' ends are taken first, and the Kafka source then continues from them,
    skipping whatever the store already gave (Projector.start_after)."""
    store = read_model_store(settings, stream)
    with ExitStack() as stack:
        stack.callback(store.close)
        apps = open_apps(settings, cities, stack)
        client = kafka_client_kwargs(stream) if stream.CIVFED_KAFKA_BOOTSTRAP else None
        # Before the stores are read: every message below these offsets is in them by then.
        ends = topic_ends(client, cities) if client is not None else {}
        projector = Projector(store)
        projector.reset()
        applied = sum(catch_up_log(projector, app, key) for key, app in apps)
        for key in cities:
            if client is not None:
                last_nid = projector.positions(log_source(key)).get(0, (0, 0))[1]
                projector.start_after(topic_for(key), ends.get(topic_for(key), {}), last_nid)
        return applied


def cmd_rebuild(args: argparse.Namespace) -> int:
    env = _env(args)
    settings, stream = load_settings(env), load_stream_settings(env)
    applied = rebuild(settings, stream, _cities(settings, args.city))
    print(f"rebuilt read models from the cities' stores: {applied} events")
    return 0


def cmd_relay(args: argparse.Namespace) -> int:
    from services.relay import Relay

    env = _env(args)
    settings, stream = load_settings(env), load_stream_settings(env)
    if not stream.CIVFED_KAFKA_BOOTSTRAP:
        print("civfed relay: set CIVFED_KAFKA_BOOTSTRAP or --kafka HOST:PORT")
        return 2
    stop = _stop_on_signals()
    registry = CollectorRegistry()
    metrics = serve_metrics(registry, stream.CIVFED_METRICS_HOST, stream.CIVFED_METRICS_PORT)
    store = read_model_store(settings, stream)
    with ExitStack() as stack:
        if metrics is not None:
            stack.callback(metrics.close)
        stack.callback(store.close)
        threads = []
        apps = open_apps(settings, _cities(settings, args.city), stack)
        registry.register(RelayLag(apps, lambda: read_model_store(settings, stream)))
        for key, app in apps:
            relay = Relay(app, key, stream, store)
            stack.callback(relay.close)
            relay.ensure_topic()  # a broker that is down only delays this: publishing retries it
            if args.once:
                print(f"{key}: published {relay.publish_once(limit=1_000_000)} events")
                continue
            threads.append(threading.Thread(target=relay.run, args=(stop,), daemon=True))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return 0


def listen(host: str, port: int, port_setting: str, host_setting: str) -> socket.socket:
    """A listening socket on `host`:`port` (0: any free port), not shared with anyone: a port
    another process holds stops start-up with one line naming the setting."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        # Rebinding over connections left in TIME_WAIT is fine; sharing a listening port is not
        # (no SO_REUSEPORT).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen()
    except OSError as exc:
        sock.close()
        bad_host = isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL
        reason = (exc.strerror or str(exc)).lower()
        setting = host_setting if bad_host else port_setting
        raise ConfigError(f"{setting}: cannot listen on {host}:{port} ({reason})") from None
    return sock


def serve_dashboard(settings: Settings, stream: StreamSettings, sock: socket.socket) -> None:
    """Serve on `sock`, already listening: the read models are opened, then the address is
    announced, so nothing is announced that is not listening yet."""
    import uvicorn

    from services.clock import Clock, OffsetClock, utcnow
    from services.dashboard.app import create_app
    from services.settings.disclosure import disclosure_policies

    with ExitStack() as stack:
        stack.callback(sock.close)
        store = read_model_store(settings, stream)
        host, bound = sock.getsockname()[:2]
        print(f"Dashboard: http://{host}:{bound}/", flush=True)
        # The clock decides which days are closed; tests and demos move it with the same
        # offset file as the nodes (CIVFED_CLOCK_OFFSET_FILE).
        offset = os.environ.get("CIVFED_CLOCK_OFFSET_FILE")
        clock: Clock = OffsetClock(Path(offset)) if offset else utcnow
        cities = settings.CIVFED_CITIES_DIR
        app = create_app(store, disclosure_policies(cities), clock, cities)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        server.run(sockets=[sock])


def cmd_dashboard(args: argparse.Namespace) -> int:
    env = _env(args)
    settings, stream = load_settings(env), load_stream_settings(env)
    host = args.host or stream.CIVFED_DASHBOARD_HOST
    port = args.port if args.port is not None else stream.CIVFED_DASHBOARD_PORT
    named = (
        "--port" if args.port is not None else "CIVFED_DASHBOARD_PORT",
        "--host" if args.host else "CIVFED_DASHBOARD_HOST",
    )
    # Bound first: a port in use stops start-up before any address is announced.
    serve_dashboard(settings, stream, listen(host, port, *named))
    return 0


def demo_stream() -> StreamSettings:
    """The demo's stream settings: never Kafka, whatever the environment says."""
    return load_stream_settings({k: v for k, v in os.environ.items() if not k.startswith("CIVFED_KAFKA_")})


def project_demo(settings: Settings) -> int:
    """Build the read models from the notification logs; returns the events applied."""
    return project(settings, demo_stream(), city_keys(settings.CIVFED_CITIES_DIR), follow=False)


def register(sub: Any) -> None:
    """Add the event-path subcommands to the `civfed` parser."""

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", help="where the SQLite stores live")
        p.add_argument("--city", action="append", help="a city key (repeatable; default: all)")
        p.add_argument("--kafka", help="Kafka bootstrap HOST:PORT (default: CIVFED_KAFKA_BOOTSTRAP)")

    relay = sub.add_parser("relay", help="publish each city's notification log to Kafka")
    common(relay)
    relay.add_argument("--once", action="store_true", help="publish what is there, then stop")
    relay.set_defaults(func=cmd_relay)

    proj = sub.add_parser("project", help="update the read models (Kafka, or the logs without it)")
    common(proj)
    proj.add_argument("--follow", action="store_true", help="keep following new events")
    proj.set_defaults(func=cmd_project)

    group = sub.add_parser("projections", help="manage the read models")
    psub = group.add_subparsers(dest="projections_command", required=True)
    rebuild = psub.add_parser(
        "rebuild", help="recompute every read model from the cities' stores (then Kafka continues)"
    )
    common(rebuild)
    rebuild.set_defaults(func=cmd_rebuild)

    dash = sub.add_parser("dashboard", help="serve the dashboards over HTTP")
    dash.add_argument("--data-dir", help="where the SQLite stores live")
    dash.add_argument("--host", help="listen address (default: CIVFED_DASHBOARD_HOST)")
    dash.add_argument(
        "--port", type=int, help="listen port (default: CIVFED_DASHBOARD_PORT; 0: any free port)"
    )
    dash.set_defaults(func=cmd_dashboard)
