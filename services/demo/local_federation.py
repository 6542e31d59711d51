"""Several city nodes on loopback with a throwaway CA: for the demo, benchmarks and tests.

`environment` gives each node's settings as environment variables, so the same
set-up starts nodes in this process (`start_in_process`) or as `civfed serve`
processes.
"""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from civfed.v1 import federation_pb2_grpc, merchant_pb2_grpc, rulebook_pb2_grpc, wallet_pb2_grpc
from services.city import Clock, utcnow
from services.demo.pki import NodeFiles, ThrowawayCA
from services.grpc.auth import bearer
from services.grpc.server import RunningNode, start_node
from services.grpc.tls import channel_credentials
from services.settings.node import load_node_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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

    def __post_init__(self) -> None:
        self.ca = ThrowawayCA(self.folder / "pki")
        self.files: dict[str, NodeFiles] = {c: self.ca.node(c, self.signing_folder) for c in self.cities}
        self.ports = {c: free_port() for c in self.cities}
        self.health_ports = {c: free_port() for c in self.cities}
        self.staff_token = secrets.token_urlsafe(24)
        self.secret = {c: secrets.token_urlsafe(24) for c in self.cities}
        # The client certificate city apps, shops and tests connect with.
        self.client_cert, self.client_key = self.ca.issue("civfed-client")
        self.running: dict[str, RunningNode] = {}

    def address(self, city: str) -> str:
        return f"127.0.0.1:{self.ports[city]}"

    def environment(self, city: str, partners: Iterable[str] | None = None) -> dict[str, str]:
        f = self.files[city]
        others = [c for c in (self.cities if partners is None else partners) if c != city]
        return {
            "CIVFED_CITY": city,
            "CIVFED_DATA_DIR": str(self.folder / "data" / city),
            "CIVFED_GRPC_HOST": "127.0.0.1",
            "CIVFED_GRPC_PORT": str(self.ports[city]),
            "CIVFED_HEALTH_PORT": str(self.health_ports[city]),
            "CIVFED_TLS_CERT_FILE": str(f.cert),
            "CIVFED_TLS_KEY_FILE": str(f.key),
            "CIVFED_TLS_CA_FILE": str(self.ca.ca_file),
            "CIVFED_SIGNING_KEY_FILE": str(f.signing_key),
            "CIVFED_PARTNERS": json.dumps(
                {
                    o: {"address": self.address(o), "public_key_file": str(self.files[o].public_key)}
                    for o in others
                }
            ),
            "CIVFED_STAFF_TOKEN": self.staff_token,
            "CIVFED_TOKEN_SECRET": self.secret[city],
            "CIVFED_HOLD_SECONDS": str(self.hold_seconds),
            "CIVFED_SWEEP_SECONDS": str(self.sweep_seconds),
            "CIVFED_SHUTDOWN_GRACE_SECONDS": "2",
            "CIVFED_CALL_TIMEOUT_SECONDS": "3",
            **self.extra_env,
            **self.city_env.get(city, {}),
        }

    def start_in_process(self, city: str, clock: Clock = utcnow) -> RunningNode:
        """Start `city`'s node in this process; `clock` is the time its commands see."""
        env = self.environment(city)
        self.running[city] = start_node(load_node_settings(env), env, clock)
        return self.running[city]

    def stop_all(self) -> None:
        for node in self.running.values():
            node.stop(grace=1)
        self.running.clear()

    def channel(self, city: str, cert: Path | None = None, key: Path | None = None) -> grpc.Channel:
        creds = channel_credentials(cert or self.client_cert, key or self.client_key, self.ca.ca_file)
        return grpc.secure_channel(
            self.address(city), creds, options=[("grpc.ssl_target_name_override", city)]
        )

    def stubs(self, city: str) -> CityStubs:
        return CityStubs(self.channel(city), self.staff_token)


class CityStubs:
    """Typed-enough handles on one node's services, with staff credentials at hand."""

    def __init__(self, channel: grpc.Channel, staff_token: str) -> None:
        self.channel = channel
        self.wallet: Any = wallet_pb2_grpc.WalletServiceStub(channel)
        self.merchant: Any = merchant_pb2_grpc.MerchantServiceStub(channel)
        self.federation: Any = federation_pb2_grpc.FederationServiceStub(channel)
        self.rulebook: Any = rulebook_pb2_grpc.RulebookServiceStub(channel)
        self.staff = bearer(staff_token)

    def close(self) -> None:
        self.channel.close()
