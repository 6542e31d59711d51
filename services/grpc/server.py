"""`civfed serve --city NAME`: one city node as a gRPC server over mutual TLS."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable
from concurrent import futures
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import grpc
from eventsourcing.persistence import PersistenceError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from civfed.v1 import (
    cashback_pb2,
    cashback_pb2_grpc,
    claims_pb2,
    claims_pb2_grpc,
    clearing_pb2,
    clearing_pb2_grpc,
    credentials_pb2,
    credentials_pb2_grpc,
    federation_pb2,
    federation_pb2_grpc,
    funds_pb2,
    funds_pb2_grpc,
    merchant_pb2,
    merchant_pb2_grpc,
    payouts_pb2,
    payouts_pb2_grpc,
    prizes_pb2,
    prizes_pb2_grpc,
    rights_pb2,
    rights_pb2_grpc,
    rulebook_pb2,
    rulebook_pb2_grpc,
    sources_pb2,
    sources_pb2_grpc,
    wallet_pb2,
    wallet_pb2_grpc,
    workflow_pb2,
    workflow_pb2_grpc,
)
from services.city import CityApplication
from services.clock import Clock, OffsetClock, utcnow
from services.finance import published_rates
from services.grpc.access import AccessInterceptor
from services.grpc.cashback_service import CashbackService
from services.grpc.claim_service import ClaimService
from services.grpc.clearing_service import ClearingAdminService, ClearingService
from services.grpc.credential_service import CredentialService
from services.grpc.errors import ErrorInterceptor
from services.grpc.federation_service import FederationService
from services.grpc.fund_service import FundService
from services.grpc.merchant_service import MerchantService
from services.grpc.metrics import MetricsInterceptor
from services.grpc.node import CityNode
from services.grpc.payout_service import PayoutService
from services.grpc.prize_service import PrizeService
from services.grpc.rights_service import RightsService
from services.grpc.rulebook_service import RulebookService
from services.grpc.source_service import SourceService
from services.grpc.tls import public_server_credentials, server_credentials
from services.grpc.wallet_service import WalletService
from services.grpc.workflow_service import WorkflowService
from services.metrics import MetricsServer, NodeMetrics, serve_metrics
from services.privacy.reapply import refuse_restored_keys
from services.settings.cities import City, Settings, city_keys, load_city, load_settings
from services.settings.disclosure import disclosure_policies
from services.settings.errors import ConfigError
from services.settings.node import NodeSettings, load_node_settings
from services.settings.node_files import check_node_files
from services.settings.stream import load_stream_settings, read_model_store

log = logging.getLogger("civfed.node")
SERVICES = [
    wallet_pb2.DESCRIPTOR.services_by_name["WalletService"].full_name,
    merchant_pb2.DESCRIPTOR.services_by_name["MerchantService"].full_name,
    cashback_pb2.DESCRIPTOR.services_by_name["CashbackService"].full_name,
    federation_pb2.DESCRIPTOR.services_by_name["FederationService"].full_name,
    rulebook_pb2.DESCRIPTOR.services_by_name["RulebookService"].full_name,
    rights_pb2.DESCRIPTOR.services_by_name["RightsService"].full_name,
    credentials_pb2.DESCRIPTOR.services_by_name["CredentialService"].full_name,
    sources_pb2.DESCRIPTOR.services_by_name["SourceService"].full_name,
    claims_pb2.DESCRIPTOR.services_by_name["ClaimService"].full_name,
    workflow_pb2.DESCRIPTOR.services_by_name["WorkflowService"].full_name,
    prizes_pb2.DESCRIPTOR.services_by_name["PrizeService"].full_name,
    payouts_pb2.DESCRIPTOR.services_by_name["PayoutService"].full_name,
    clearing_pb2.DESCRIPTOR.services_by_name["ClearingService"].full_name,
    clearing_pb2.DESCRIPTOR.services_by_name["ClearingAdminService"].full_name,
    funds_pb2.DESCRIPTOR.services_by_name["FundService"].full_name,
]


# grpc binds with SO_REUSEPORT unless told not to: a second node on a busy port would then
# start without error and the kernel would split connections between the two.
EXCLUSIVE = [("grpc.so_reuseport", 0)]
# Threads serving calls: enough for every till and partner call a node has in flight at once
# (a saga's shop call waits on the home's Reserve and Commit while holding one).
WORKERS = 16


class Listening:
    """The node's servers, bound but not yet serving: mutual TLS for partner cities on one
    port; TLS with server authentication only, for apps, tills and staff with their bearer
    credentials, on another (the same services, behind the same access policy); and health
    alone in plaintext on a third. Port 0 binds a port the kernel picks; `port`,
    `public_port` and `health_port` are the ones bound. A port another process holds stops
    start-up here, before the store is opened."""

    def __init__(
        self,
        host: str,
        port: int,
        health_port: int,
        creds: grpc.ServerCredentials,
        public_port: int | None = None,
        public_creds: grpc.ServerCredentials | None = None,
        workers: int = WORKERS,
    ) -> None:
        # Who is calling is known only once the node's store is open: `access` gets its
        # authenticator then, before the server starts.
        self.access = AccessInterceptor()
        # Outermost, so it records the status the caller gets; its registry comes with the node.
        self.metrics = MetricsInterceptor()
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers),
            interceptors=[self.metrics, ErrorInterceptor(), self.access],
            options=EXCLUSIVE,
        )
        # Kubelet `grpc:` probes speak plaintext, so health alone gets its own port.
        self.health_server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=2), interceptors=[ErrorInterceptor()], options=EXCLUSIVE
        )
        address = f"{host}:{port}"
        self.port = _listen("CIVFED_GRPC_PORT", address, lambda: self.server.add_secure_port(address, creds))
        self.public_port: int | None = None
        if public_port is not None and public_creds is not None:
            public_address = f"{host}:{public_port}"
            try:
                self.public_port = _listen(
                    "CIVFED_PUBLIC_PORT",
                    public_address,
                    lambda: self.server.add_secure_port(public_address, public_creds),
                )
            except ConfigError:
                self.server.stop(None)
                raise
        health_address = f"{host}:{health_port}"
        try:
            self.health_port = _listen(
                "CIVFED_HEALTH_PORT",
                health_address,
                lambda: self.health_server.add_insecure_port(health_address),
            )
        except ConfigError:
            self.server.stop(None)
            raise

    @classmethod
    def for_settings(cls, settings: NodeSettings) -> Listening:
        creds = server_credentials(
            settings.CIVFED_TLS_CERT_FILE, settings.CIVFED_TLS_KEY_FILE, settings.CIVFED_TLS_CA_FILE
        )
        public = public_server_credentials(settings.CIVFED_TLS_CERT_FILE, settings.CIVFED_TLS_KEY_FILE)
        return cls(
            settings.CIVFED_GRPC_HOST,
            settings.CIVFED_GRPC_PORT,
            settings.CIVFED_HEALTH_PORT,
            creds,
            settings.CIVFED_PUBLIC_PORT,
            public,
        )

    def close(self) -> None:
        """Release both ports of servers that never served."""
        self.server.stop(None)
        self.health_server.stop(None)


class RunningNode:
    """A started server plus its sweeper; `stop` drains in-flight calls first."""

    def __init__(
        self,
        node: CityNode,
        settings: NodeSettings,
        listening: Listening,
        metrics_server: MetricsServer | None = None,
    ) -> None:
        self.node = node
        self.settings = settings
        self.server = listening.server
        self.port = listening.port
        self.public_port = listening.public_port
        self.metrics_server = metrics_server
        self.metrics_port = metrics_server.port if metrics_server is not None else None
        listening.access.authenticator = node.authenticator
        listening.metrics.metrics = node.metrics
        wallet_pb2_grpc.add_WalletServiceServicer_to_server(WalletService(node), self.server)
        merchant_pb2_grpc.add_MerchantServiceServicer_to_server(MerchantService(node), self.server)
        cashback_pb2_grpc.add_CashbackServiceServicer_to_server(CashbackService(node), self.server)
        federation_pb2_grpc.add_FederationServiceServicer_to_server(FederationService(node), self.server)
        rulebook_pb2_grpc.add_RulebookServiceServicer_to_server(RulebookService(node), self.server)
        rights_pb2_grpc.add_RightsServiceServicer_to_server(RightsService(node), self.server)
        credentials_pb2_grpc.add_CredentialServiceServicer_to_server(CredentialService(node), self.server)
        sources_pb2_grpc.add_SourceServiceServicer_to_server(SourceService(node), self.server)
        claims_pb2_grpc.add_ClaimServiceServicer_to_server(ClaimService(node), self.server)
        workflow_pb2_grpc.add_WorkflowServiceServicer_to_server(WorkflowService(node), self.server)
        prizes_pb2_grpc.add_PrizeServiceServicer_to_server(PrizeService(node), self.server)
        payouts_pb2_grpc.add_PayoutServiceServicer_to_server(PayoutService(node), self.server)
        clearing_pb2_grpc.add_ClearingServiceServicer_to_server(ClearingService(node), self.server)
        clearing_pb2_grpc.add_ClearingAdminServiceServicer_to_server(ClearingAdminService(node), self.server)
        funds_pb2_grpc.add_FundServiceServicer_to_server(FundService(node), self.server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*SERVICES, reflection.SERVICE_NAME, health.SERVICE_NAME], self.server
        )
        # The plaintext port shares the servicer: graceful shutdown shows NOT_SERVING on both.
        self.health_server = listening.health_server
        self.health_port = listening.health_port
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.health_server)
        self.stopping = threading.Event()
        self.sweeper = threading.Thread(target=self._sweep, name="sweeper", daemon=True)

    def start(self) -> RunningNode:
        self.server.start()
        self.health_server.start()
        for name in ("", *SERVICES):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self.sweeper.start()
        return self

    def _sweep(self) -> None:
        while not self.stopping.wait(self.settings.CIVFED_SWEEP_SECONDS):
            try:
                self.node.sweep()
            except Exception:
                log.exception("sweep failed; trying again next round")

    def stop(self, grace: float | None = None) -> None:
        """Refuse new calls, let in-flight ones finish within `grace`, then close the store."""
        self.health.enter_graceful_shutdown()
        self.stopping.set()
        grace = self.settings.CIVFED_SHUTDOWN_GRACE_SECONDS if grace is None else grace
        self.server.stop(grace).wait()
        self.health_server.stop(0).wait()
        self.sweeper.join(timeout=5)
        if self.metrics_server is not None:
            self.metrics_server.close()
        self.node.close()


def _listen(setting: str, address: str, add_port: Callable[[], int]) -> int:
    """The port bound; grpc says only "Failed to bind" (in use, or not this host's address)."""
    try:
        port = add_port()
    except RuntimeError:
        port = 0
    if not port:
        raise ConfigError(f"{setting}: cannot listen on {address} (in use, or not an address of this host)")
    return port


def _open_app(city: City, settings: Settings, clock: Clock) -> CityApplication:
    """The city's application; an SQLite file that is not a store names CIVFED_DATA_DIR."""
    try:
        return CityApplication(city, settings.eventsourcing_env(city.config.key), clock=clock)
    except (PersistenceError, sqlite3.Error) as exc:
        if settings.PERSISTENCE_MODULE != "eventsourcing.sqlite":
            raise  # a database server that cannot be reached is not a bad setting
        raise ConfigError(
            f"CIVFED_DATA_DIR: cannot open the {city.config.key} stores in {settings.CIVFED_DATA_DIR} ({exc})"
        ) from None


def node_clock(settings: NodeSettings) -> Clock:
    """The wall clock, or with CIVFED_CLOCK_OFFSET_FILE (tests and demos) the wall clock
    moved on by the offset that file holds."""
    path = settings.CIVFED_CLOCK_OFFSET_FILE
    return OffsetClock(path) if path is not None else utcnow


def start_node(
    settings: NodeSettings,
    env: dict[str, str],
    clock: Clock | None = None,
    listening: Listening | None = None,
) -> RunningNode:
    """Check the files, bind both ports (or take `listening`, already bound), then open the
    store and serve. On any failure, whatever was bound or opened is released."""
    undo = ExitStack()
    try:
        if listening is not None:
            undo.callback(listening.close)
        # Before the store is opened: a wrong key or certificate file, or a port in use,
        # stops start-up naming its setting.
        check_node_files(settings)
        if listening is None:
            listening = Listening.for_settings(settings)
            undo.callback(listening.close)
        metrics = NodeMetrics()
        metrics_server = serve_metrics(
            metrics.registry, settings.CIVFED_METRICS_HOST, settings.CIVFED_METRICS_PORT
        )
        if metrics_server is not None:
            undo.callback(metrics_server.close)
        city_settings = load_settings(env)
        city = load_city(settings.CIVFED_CITY, city_settings.CIVFED_CITIES_DIR)
        app = _open_app(city, city_settings, clock or node_clock(settings))
        try:
            # A key store restored from before an erasure: not until the erasures are re-applied.
            refuse_restored_keys(app)
            node = CityNode(app, settings, metrics)
            stream = load_stream_settings(env)
            node.figures = lambda: read_model_store(city_settings, stream)
            node.disclosure = disclosure_policies(city_settings.CIVFED_CITIES_DIR)[city.config.key]
            # Partner cities' published euro values, from their files beside this city's.
            node.euro_rates = published_rates(
                load_city(key, city_settings.CIVFED_CITIES_DIR).config
                for key in city_keys(city_settings.CIVFED_CITIES_DIR)
            )
        except BaseException:
            app.close()
            raise
        undo.callback(node.close)
        return RunningNode(node, settings, listening, metrics_server).start()
    except BaseException:
        undo.close()
        raise


def write_port_file(path: Path, running: RunningNode) -> None:
    """The ports bound, as JSON, for whoever started the node with port 0; replaced whole,
    so a reader never sees half a file."""
    partial = path.with_name(f".{path.name}.partial")
    ports = {
        "grpc": running.port,
        "public": running.public_port,
        "health": running.health_port,
        "metrics": running.metrics_port,
    }
    partial.write_text(json.dumps(ports) + "\n")
    partial.replace(path)


def cmd_serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    env = dict(os.environ)
    env["CIVFED_CITY"] = args.city
    if args.port is not None:
        env["CIVFED_GRPC_PORT"] = str(args.port)
    settings = load_node_settings(env)
    running = start_node(settings, env)
    done = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.port_file is not None:
        write_port_file(args.port_file, running)
    print(
        f"civfed: {args.city} serving on {settings.CIVFED_GRPC_HOST}:{running.port}"
        f" (apps, tills and staff on port {running.public_port};"
        f" plaintext health on port {running.health_port}"
        + (f"; metrics on port {running.metrics_port}" if running.metrics_port is not None else "")
        + ")",
        file=sys.stderr,
        flush=True,
    )
    done.wait()
    running.stop()
    print(f"civfed: {args.city} stopped", file=sys.stderr, flush=True)
    return 0


def add_serve_parser(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run one city node as a gRPC server over mutual TLS")
    serve.add_argument("--city", required=True, help="the city key, e.g. vienna")
    serve.add_argument("--port", type=int, help="listen port (default: CIVFED_GRPC_PORT; 0: any free port)")
    serve.add_argument(
        "--port-file",
        type=Path,
        help='once serving, write the ports bound here as JSON: {"grpc": ..., "public": ..., "health": ...,'
        ' "metrics": ... or null}',
    )
    serve.set_defaults(func=cmd_serve)
