"""City nodes as `civfed serve` processes on loopback, over mutual TLS, and the conservation check."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.city import CityApplication
from services.city_totals import city_totals
from services.demo.local_federation import CityStubs, LocalFederation
from services.event_log import event_type, read_events
from services.funds import FundBooks
from services.payouts import shop_totals
from services.settings.cities import load_city, load_settings

ROOT = Path(__file__).resolve().parents[2]
CITIES = ["vienna", "rome", "sint_niklaas", "bologna"]


class Cluster:
    """`civfed serve` processes, each on port 0: a node writes the ports it bound to its port
    file (`--port-file`), and the cluster reads them back. Partners reach each node through
    its front door, so they need not know its port before it starts, and find it again when
    it restarts on another port."""

    def __init__(self, fed: LocalFederation) -> None:
        self.fed = fed
        fed.open_front_doors()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._stubs: dict[str, CityStubs] = {}

    def start(self, city: str) -> None:
        env = {**os.environ, **self.fed.environment(city), "PYTHONPATH": str(ROOT)}
        port_file = self.fed.folder / f"{city}.ports"
        port_file.unlink(missing_ok=True)
        log = open(self.fed.folder / f"{city}.log", "ab")  # noqa: SIM115 - kept open for the child
        self.procs[city] = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", "--city", city, "--port-file", str(port_file)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )
        self.wait_serving(city, port_file)

    def wait_serving(self, city: str, port_file: Path) -> None:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            self._still_starting(city, deadline)
            time.sleep(0.05)
        ports = json.loads(port_file.read_text())
        self.fed.listening(city, ports["grpc"], ports["health"])
        health = health_pb2_grpc.HealthStub(self.fed.channel(city))
        while True:
            try:
                reply = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            self._still_starting(city, deadline)
            time.sleep(0.1)

    def _still_starting(self, city: str, deadline: float) -> None:
        if self.procs[city].poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{city} did not start: " + (self.fed.folder / f"{city}.log").read_text())

    def kill(self, city: str) -> None:
        self.procs[city].send_signal(signal.SIGKILL)
        self.procs[city].wait()
        self.fed.gone(city)
        self._stubs.pop(city, None)

    def stop(self, city: str) -> int:
        proc = self.procs.pop(city)
        proc.send_signal(signal.SIGTERM)
        self._stubs.pop(city, None)
        code = proc.wait(timeout=30)
        self.fed.gone(city)
        return code

    def stubs(self, city: str) -> CityStubs:
        if city not in self._stubs:
            self._stubs[city] = self.fed.stubs(city)
        return self._stubs[city]

    def events(self, city: str, kind: str) -> list[Any]:
        """Every stored event of one type in a city's store, read while the node runs."""
        app = self.open_app(city)
        try:
            return [e for _, e in read_events(app) if event_type(e) == kind]
        finally:
            app.close()

    def open_app(self, city: str) -> CityApplication:
        env = self.fed.environment(city)
        settings = load_settings(env)
        return CityApplication(load_city(city), settings.eventsourcing_env(city))


def conservation(app: CityApplication, city: str) -> dict[str, Any]:
    """Issued − spent − burned − lapsed from events, against balances and holds of every wallet."""
    totals = city_totals(app, city)
    wallets = {e.originator_id for _, e in read_events(app) if event_type(e) == "Wallet.Opened"}
    balances = sum(app.wallet(w).balance for w in wallets)
    holds = sum(app.wallet(w).held for w in wallets)
    assert totals.outstanding == balances, (city, totals.summary(), balances)
    assert totals.held == holds, (city, totals.summary(), holds)
    assert all(app.wallet(w).available >= 0 for w in wallets)
    # Shops: tokens received - paid out = what each still has to be paid out.
    shops = shop_totals(app)
    assert shops.conserved, (city, shops)
    # Funds: budget = awarded + remaining, the draws equal the credits, and each fund's
    # outstanding tokens are what the wallets hold from it.
    books = FundBooks()
    for _, e in read_events(app):
        books.apply(event_type(e), e)
    assert books.problems(app) == [], (city, books.problems(app))
    held: dict[str, int] = {}
    for w in wallets:
        for fund_id, amount in app.wallet(w).fund_lots:
            held[fund_id] = held.get(fund_id, 0) + amount
    for report in app.fund_reports():
        assert report.outstanding == held.get(report.fund_id, 0), (city, report)
    return {"burned": totals.burned, "held": totals.held, "balances": balances}
