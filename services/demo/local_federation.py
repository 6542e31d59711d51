"""Several city nodes on loopback with a throwaway CA: for the demo, benchmarks and tests.

`environment` gives each node's settings as environment variables, so the same
set-up starts nodes in this process (`start_in_process`) or as `civfed serve`
processes. Every node binds port 0 and `ports` records the port it got once it is
bound: no port is picked here and released for a node to take later, when another
process may have taken it first.

A node needs its partners' addresses when it starts. Nodes started in this process are
all bound before the first one starts (`start_in_process` binds every city that has no
address yet), so they call each other directly. A city whose node runs in another
process, starts later, or comes back on another port after a restart is reached through
its front door (`open_front_doors`; `environment` opens one for a partner with no
address yet): a port this process holds for the federation's whole life, passed on to
wherever the node listens now.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from civfed.v1 import (
    cashback_pb2_grpc,
    claims_pb2_grpc,
    credentials_pb2_grpc,
    federation_pb2_grpc,
    funds_pb2_grpc,
    merchant_pb2_grpc,
    prizes_pb2_grpc,
    rulebook_pb2_grpc,
    sources_pb2_grpc,
    wallet_pb2_grpc,
    workflow_pb2_grpc,
)
from services.clock import Clock
from services.demo.front_door import FrontDoor
from services.demo.identity_provider import ALL_ROLES, TestIdentityProvider
from services.demo.pki import NodeFiles, ThrowawayCA
from services.grpc.auth import bearer
from services.grpc.server import Listening, RunningNode, start_node
from services.grpc.tls import channel_credentials, public_server_credentials, server_credentials
from services.settings.node import load_node_settings

HOST = "127.0.0.1"


@dataclass
class LocalFederation:
    folder: Path
    cities: list[str]
    hold_seconds: float = 120
    sweep_seconds: float = 2
    extra_env: dict[str, str] = field(default_factory=dict)
    # Settings for one city only, e.g. its own PostgreSQL schema.
    city_env: dict[str, dict[str, str]] = field(default_factory=dict)
    # Where the cities' voucher signing keys are kept across runs (None: throwaway).
    signing_folder: Path | None = None
    # Every node's clock runs `move_clock`'s total ahead of the wall clock (tests: a hold
    # lapses when the test moves the clock, not after a wait).
    movable_clock: bool = False

    def __post_init__(self) -> None:
        self.ca = ThrowawayCA(self.folder / "pki")
        self.files: dict[str, NodeFiles] = {c: self.ca.node(c, self.signing_folder) for c in self.cities}
        # Where each city's node listens now, here or in another process: the ports it bound.
        self.ports: dict[str, int] = {}
        self.health_ports: dict[str, int] = {}
        # The cities' identity provider: staff tokens are minted here and verified by the
        # nodes' own code. The default staff member holds every role; tests that check four
        # eyes or a role's limits mint tokens for other people with `staff`.
        self.idp = TestIdentityProvider(self.folder / "idp")
        self.staff_token = self.idp.token("staff-1", ALL_ROLES, name="Staff One", ttl=12 * 3600)
        # The client certificate city apps, shops and tests connect with.
        self.client_cert, self.client_key = self.ca.issue("civfed-client")
        self.running: dict[str, RunningNode] = {}
        self.doors: dict[str, FrontDoor] = {}
        self._bound: dict[str, Listening] = {}  # bound in this process, not serving yet

    def address(self, city: str) -> str:
        """Where apps, shops and tests reach `city`'s node now: its port, or while it is
        down, its front door, which refuses as the closed port would."""
        if city in self.ports:
            return f"{HOST}:{self.ports[city]}"
        if city in self.doors:
            return self.doors[city].address
        raise LookupError(f"{city}: no node is listening; start it first")

    def partner_address(self, city: str) -> str:
        """Where other nodes reach `city`: its front door, or its port if it has no door."""
        if city in self.doors:
            return self.doors[city].address
        if city in self.ports:
            return f"{HOST}:{self.ports[city]}"
        return self.open_front_door(city).address

    def open_front_doors(self) -> None:
        """A front door for every city, before any node starts: for nodes that run as
        processes, start in any order, or restart."""
        for city in self.cities:
            self.open_front_door(city)

    def open_front_door(self, city: str) -> FrontDoor:
        if city not in self.doors:
            self.doors[city] = FrontDoor(lambda: self.ports.get(city), HOST)
        return self.doors[city]

    def listening(self, city: str, port: int, health_port: int) -> None:
        """`city`'s node has bound these ports (read back from the node itself)."""
        self.ports[city] = port
        self.health_ports[city] = health_port

    def gone(self, city: str) -> None:
        """`city`'s node has stopped: its front door refuses until it is back."""
        self.ports.pop(city, None)
        self.health_ports.pop(city, None)

    def environment(self, city: str, partners: Iterable[str] | None = None) -> dict[str, str]:
        """`city`'s node settings. Its data directory is made here, as an operator makes a new
        node's: `civfed serve` refuses one that does not exist."""
        f = self.files[city]
        (self.folder / "data" / city).mkdir(parents=True, exist_ok=True)
        others = [c for c in (self.cities if partners is None else partners) if c != city]
        return {
            "CIVFED_CITY": city,
            "CIVFED_DATA_DIR": str(self.folder / "data" / city),
            "CIVFED_GRPC_HOST": HOST,
            "CIVFED_GRPC_PORT": "0",
            "CIVFED_HEALTH_PORT": "0",
            "CIVFED_TLS_CERT_FILE": str(f.cert),
            "CIVFED_TLS_KEY_FILE": str(f.key),
            "CIVFED_TLS_CA_FILE": str(self.ca.ca_file),
            "CIVFED_SIGNING_KEY_FILE": str(f.signing_key),
            "CIVFED_PARTNERS": json.dumps(
                {
                    o: {"address": self.partner_address(o), "public_key_file": str(self.files[o].public_key)}
                    for o in others
                }
            ),
            "CIVFED_PUBLIC_PORT": "0",
            **self.idp.settings(),
            "CIVFED_HOLD_SECONDS": str(self.hold_seconds),
            "CIVFED_SWEEP_SECONDS": str(self.sweep_seconds),
            "CIVFED_SHUTDOWN_GRACE_SECONDS": "2",
            "CIVFED_CALL_TIMEOUT_SECONDS": "3",
            **({"CIVFED_CLOCK_OFFSET_FILE": str(self.clock_file)} if self.movable_clock else {}),
            **self.extra_env,
            **self.city_env.get(city, {}),
        }

    @property
    def clock_file(self) -> Path:
        return self.folder / "clock-offset"

    def move_clock(self, seconds: float) -> None:
        """Move every node's clock `seconds` ahead, at once (needs `movable_clock`)."""
        if not self.movable_clock:
            raise RuntimeError("this federation's clock follows the wall clock")
        offset = float(self.clock_file.read_text()) if self.clock_file.exists() else 0.0
        partial = self.clock_file.with_name(".clock-offset.partial")
        partial.write_text(f"{offset + seconds}\n")
        partial.replace(self.clock_file)  # whole, so a node never reads half a number

    def start_in_process(self, city: str, clock: Clock | None = None) -> RunningNode:
        """Start `city`'s node in this process; `clock` is the time its commands see
        (by default the wall clock, moved by `move_clock` if the clock is movable)."""
        # Every city with no address yet is bound now, so the nodes started here know
        # each other's ports from the start.
        for c in self.cities:
            if c not in self.ports and c not in self.doors:
                self._bind(c)
        env = self.environment(city)
        running = start_node(load_node_settings(env), env, clock, self._bound.pop(city, None))
        self.running[city] = running
        self.listening(city, running.port, running.health_port)
        return running

    def _bind(self, city: str) -> None:
        f = self.files[city]
        bound = Listening(
            HOST,
            0,
            0,
            server_credentials(f.cert, f.key, self.ca.ca_file),
            0,
            public_server_credentials(f.cert, f.key),
        )
        self._bound[city] = bound
        self.listening(city, bound.port, bound.health_port)

    def stop_all(self) -> None:
        """Stop the nodes started here, and release every port this process holds."""
        for city, node in self.running.items():
            node.stop(grace=1)
            self.gone(city)
        self.running.clear()
        for city, bound in self._bound.items():
            bound.close()
            self.gone(city)
        self._bound.clear()
        for door in self.doors.values():
            door.close()
        self.doors.clear()

    def channel(self, city: str, cert: Path | None = None, key: Path | None = None) -> grpc.Channel:
        creds = channel_credentials(cert or self.client_cert, key or self.client_key, self.ca.ca_file)
        return grpc.secure_channel(
            self.address(city), creds, options=[("grpc.ssl_target_name_override", city)]
        )

    def staff(self, subject: str, *roles: str) -> tuple[tuple[str, str]]:
        """Call metadata for staff member `subject` with `roles`."""
        return bearer(self.idp.token(subject, roles))

    def stubs(self, city: str) -> CityStubs:
        return CityStubs(self.channel(city), self.staff_token)


class CityStubs:
    """Typed-enough handles on one node's services, with staff credentials at hand."""

    def __init__(self, channel: grpc.Channel, staff_token: str) -> None:
        self.channel = channel
        self.wallet: Any = wallet_pb2_grpc.WalletServiceStub(channel)
        self.merchant: Any = merchant_pb2_grpc.MerchantServiceStub(channel)
        self.cashback: Any = cashback_pb2_grpc.CashbackServiceStub(channel)
        self.federation: Any = federation_pb2_grpc.FederationServiceStub(channel)
        self.rulebook: Any = rulebook_pb2_grpc.RulebookServiceStub(channel)
        self.credentials: Any = credentials_pb2_grpc.CredentialServiceStub(channel)
        self.sources: Any = sources_pb2_grpc.SourceServiceStub(channel)
        self.claims: Any = claims_pb2_grpc.ClaimServiceStub(channel)
        self.workflow: Any = workflow_pb2_grpc.WorkflowServiceStub(channel)
        self.prizes: Any = prizes_pb2_grpc.PrizeServiceStub(channel)
        self.funds: Any = funds_pb2_grpc.FundServiceStub(channel)
        self.staff = bearer(staff_token)

    def close(self) -> None:
        self.channel.close()
