"""Bearer credentials in call metadata: staff, merchants and wallet holders.

Merchant and holder tokens are HMACs of their subject under the node's secret,
so the node stores no token table and a holder token opens only its own wallet.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from uuid import UUID

import grpc


class Unauthenticated(Exception):
    """No credentials, or credentials this node did not issue."""


class PermissionDenied(Exception):
    """Valid credentials that do not allow this call."""


@dataclass(frozen=True)
class Principal:
    role: str  # "staff", "merchant" or "holder"
    subject: str  # merchant or wallet id; "staff" for staff

    def require(self, *roles: str) -> None:
        if self.role not in roles:
            raise PermissionDenied(f"a {self.role} may not make this call")

    def require_wallet(self, wallet_id: UUID) -> None:
        """Staff, or the holder of exactly this wallet."""
        if self.role == "staff":
            return
        if self.role != "holder" or self.subject != str(wallet_id):
            raise PermissionDenied("a holder may act only on their own wallet")


class Credentials:
    def __init__(self, staff_token: str, secret: str) -> None:
        self._staff = staff_token.encode()
        self._secret = secret.encode()

    def _mac(self, role: str, subject: str) -> str:
        digest = hmac.new(self._secret, f"{role}:{subject}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def issue(self, role: str, subject: UUID) -> str:
        return f"{role}.{subject}.{self._mac(role, str(subject))}"

    def principal(self, context: grpc.ServicerContext) -> Principal:
        token = ""
        for key, value in context.invocation_metadata():
            if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
                token = value[len("Bearer ") :]
        if not token:
            raise Unauthenticated("missing bearer credentials")
        if hmac.compare_digest(token.encode(), self._staff):
            return Principal("staff", "staff")
        role, _, rest = token.partition(".")
        subject, _, mac = rest.partition(".")
        if role in ("merchant", "holder") and hmac.compare_digest(mac, self._mac(role, subject)):
            return Principal(role, subject)
        raise Unauthenticated("credentials not recognised")


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)
