"""Staff access tokens: JWTs from the city's own OpenID Connect provider.

Signature, issuer, audience and expiry are checked by joserfc against the issuer's published
keys (a JWKS file, or its URL); roles come from one configured claim. No role named in the
token but unknown here grants anything.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from services.identity.principals import ROLES, Staff, Unauthenticated

ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


class Jwks:
    """The issuer's public keys, from a file or an https URL. A key id not seen before makes
    one fresh fetch (the provider rotated), at most every `min_refetch` seconds."""

    def __init__(self, source: str, ttl: float = 300.0, min_refetch: float = 10.0) -> None:
        self.source = source
        self.ttl = ttl
        self.min_refetch = min_refetch
        self._keys: KeySet | None = None
        self._fetched = 0.0
        self._lock = threading.Lock()

    def _read(self) -> dict[str, Any]:
        if self.source.startswith(("https://", "http://")):
            with urllib.request.urlopen(self.source, timeout=5) as reply:
                data: dict[str, Any] = json.load(reply)
                return data
        loaded: dict[str, Any] = json.loads(Path(self.source).read_text())
        return loaded

    def keys(self, kid: str | None = None) -> KeySet:
        with self._lock:
            now = time.monotonic()
            stale = self._keys is None or now - self._fetched > self.ttl
            unknown = kid is not None and self._keys is not None and not _has_kid(self._keys, kid)
            if stale or (unknown and now - self._fetched > self.min_refetch):
                self._keys = KeySet.import_key_set(self._read())  # type: ignore[arg-type]
                self._fetched = now
            assert self._keys is not None
            return self._keys


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(k.kid == kid for k in keys.keys)


@dataclass(frozen=True)
class StaffTokens:
    """Verifies staff access tokens and turns them into `Staff` principals."""

    issuer: str
    audience: str
    jwks: Jwks
    roles_claim: str = "roles"
    leeway: int = 30
    now: Callable[[], float] = time.time

    def verify(self, token: str) -> Staff:
        try:
            header = json.loads(_b64(token.split(".", 1)[0]))
            keys = self.jwks.keys(header.get("kid"))
            decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
            registry = jwt.JWTClaimsRegistry(
                now=lambda: int(self.now()),
                leeway=self.leeway,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.audience},
                exp={"essential": True},
                sub={"essential": True},
            )
            registry.validate(decoded.claims)
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise Unauthenticated(f"staff token refused: {_reason(exc)}") from None
        claims = decoded.claims
        roles = frozenset(r for r in _claim(claims, self.roles_claim) if r in ROLES)
        name = str(claims.get("preferred_username") or claims.get("name") or "")
        return Staff(subject=str(claims["sub"]), roles=roles, name=name)


def _claim(claims: dict[str, Any], path: str) -> list[str]:
    """A dotted path into the claims (Keycloak: "realm_access.roles"; Entra ID: "roles")."""
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _reason(exc: BaseException) -> str:
    # joserfc's errors name the claim (e.g. "invalid_claim: Invalid claim: 'iss'").
    text = getattr(exc, "description", None) or str(exc) or type(exc).__name__
    return str(text)
