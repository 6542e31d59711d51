"""A stand-in for a city's OpenID Connect provider, for the demo and the tests.

It holds a signing key and publishes its public half as a JWKS file; `token` mints access
tokens the way Keycloak or Entra ID would. Only token *minting* lives here: nodes verify
these tokens with the production code (services/identity/oidc.py), exactly as they verify
a real provider's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from uuid import uuid4

from joserfc import jwt
from joserfc.jwk import ECKey

from services.identity.principals import ROLES

ALL_ROLES = ROLES


class TestIdentityProvider:
    __test__ = False  # not a pytest test class, whatever its name

    def __init__(
        self, folder: Path, issuer: str = "https://id.civfed.test/realms/city", audience: str = "civfed"
    ):
        folder.mkdir(parents=True, exist_ok=True)
        self.issuer = issuer
        self.audience = audience
        self.kid = uuid4().hex[:12]
        self.key = ECKey.generate_key("P-256", parameters={"kid": self.kid, "use": "sig", "alg": "ES256"})
        self.jwks_file = folder / "jwks.json"
        self.jwks_file.write_text(json.dumps({"keys": [self.key.as_dict(private=False)]}))

    def settings(self) -> dict[str, str]:
        """The node settings that trust this provider."""
        return {
            "CIVFED_OIDC_ISSUER": self.issuer,
            "CIVFED_OIDC_AUDIENCE": self.audience,
            "CIVFED_OIDC_JWKS": str(self.jwks_file),
            "CIVFED_OIDC_ROLES_CLAIM": "roles",
        }

    def token(
        self,
        subject: str,
        roles: Iterable[str] = (),
        name: str = "",
        ttl: float = 3600,
        issuer: str | None = None,
        audience: str | None = None,
        key: ECKey | None = None,
        **claims: Any,
    ) -> str:
        """An access token for `subject`; the keyword arguments make the wrong ones tests need
        (another issuer, audience or signing key, a past expiry)."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": issuer or self.issuer,
            "aud": audience or self.audience,
            "sub": subject,
            "iat": now,
            "exp": now + int(ttl),
            "roles": list(roles),
            "preferred_username": name or subject,
            **claims,
        }
        signer = key or self.key
        header = {"alg": "ES256", "kid": signer.kid or self.kid, "typ": "JWT"}
        return jwt.encode(header, body, signer)

    @staticmethod
    def stranger_key() -> ECKey:
        """A key this provider never published, with its key id copied by the caller."""
        return ECKey.generate_key("P-256")
