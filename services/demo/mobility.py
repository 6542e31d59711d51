"""The demo's mobility provider: a registered source that signs the trips it measured.

Vienna's trips in the demo reach the ledger as a real source's would: the provider is
registered by the city's mobility office (a `rule_publisher`) with its public key, the
kind it attests (trips) and a plausibility bound (150 km by bike per person and day), and
every trip is a compact JWS it signs (services/claims.py). Its key is derived from a fixed
phrase so that a rerun of the demo registers the very same source again (the registration
replays); a real source keeps its private key to itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc.jwk import OKPKey

from civfed.v1 import sources_pb2
from services import commands as c
from services.claims import public_pem, sign_claim

SOURCE_ID = "demo-mobility"
KEY_ID = "demo-2026"
NAME = "Demo mobility app (simulated)"
KINDS = ["trip"]
BIKE = {"mode": "bike"}
BIKE_PER_DAY: dict[str, Any] = {
    "activity": "trip",
    "field": "distance_m",
    "max_per_day": 150_000,
    "where": {"mode": "bike"},
}
REASON = "trips measured by the city's mobility app, signed per trip"
REGISTERED_BY = "staff:demo-mobility-office"


def demo_key() -> OKPKey:
    """A published demo key: fine for a simulation, never for a real source."""
    seed = hashlib.sha256(b"civfed demo mobility provider").digest()
    pem = Ed25519PrivateKey.from_private_bytes(seed).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return OKPKey.import_key(pem)


class MobilityProvider:
    def __init__(self) -> None:
        self.key = demo_key()

    def registration(self, idempotency_key: str) -> c.RegisterSource:
        """For the embedded demo, which runs the city's commands in process."""
        pem = public_pem(self.key)
        return c.RegisterSource(
            idempotency_key, SOURCE_ID, NAME, KEY_ID, pem, KINDS, [BIKE_PER_DAY], REGISTERED_BY, REASON
        )

    def register_request(self, idempotency_key: str) -> Any:
        """For a node over gRPC, sent with a rule publisher's token."""
        return sources_pb2.RegisterSourceRequest(
            idempotency_key=idempotency_key,
            source_id=SOURCE_ID,
            name=NAME,
            key_id=KEY_ID,
            public_key_pem=public_pem(self.key),
            kinds=KINDS,
            bounds=[
                sources_pb2.Bound(
                    activity="trip", field="distance_m", max_per_day=150_000, where={"mode": "bike"}
                )
            ],
            reason=REASON,
        )

    def trip(self, claim_id: str, wallet: UUID | str, fields: dict[str, Any], date: dt.date | str) -> str:
        """One measured trip, signed. `fields`: mode and distance_m (any `date` is dropped)."""
        body = {k: v for k, v in fields.items() if k != "date"}
        return sign_claim(self.key, KEY_ID, SOURCE_ID, claim_id, wallet, "trip", body, date)
