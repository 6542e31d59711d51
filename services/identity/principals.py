"""The authenticated callers a node knows. Nothing here is taken from a request body:
each principal comes from a verified token, a stored credential or a certificate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

# Each role allows only its own calls (docs/ACCESS.md has the table).
ROLES = (
    "recorder",
    "appeals_officer",
    "work_coordinator",
    "rule_publisher",
    "council_approver",
    "erasure_officer",
    "merchant_admin",
    "auditor",
    # Runs a city's shop payouts (euro transfers) and reads the runs.
    "finance_officer",
)


@dataclass(frozen=True)
class Staff:
    """A named employee: `subject` is the identity provider's stable `sub`, never a name typed
    into a request; `name` is for display only and decides nothing."""

    subject: str
    roles: frozenset[str] = field(default_factory=frozenset)
    name: str = ""
    kind: Literal["staff"] = "staff"

    @property
    def ref(self) -> str:
        """How events and four-eyes checks name this person."""
        return f"staff:{self.subject}"


@dataclass(frozen=True)
class Holder:
    """Whoever presented a live credential of this wallet."""

    wallet_id: UUID
    credential_id: UUID | None = None
    kind: Literal["holder"] = "holder"

    @property
    def subject(self) -> str:
        return str(self.wallet_id)

    @property
    def ref(self) -> str:
        return f"holder:{self.wallet_id}"


@dataclass(frozen=True)
class Till:
    """A merchant's till, by one of the credentials issued to that merchant."""

    merchant_id: UUID
    credential_id: UUID | None = None
    kind: Literal["till"] = "till"

    @property
    def subject(self) -> str:
        return str(self.merchant_id)

    @property
    def ref(self) -> str:
        return f"till:{self.merchant_id}"


@dataclass(frozen=True)
class PartnerCity:
    """Another city's node, known by the city its client certificate names."""

    city: str
    kind: Literal["partner"] = "partner"

    @property
    def subject(self) -> str:
        return self.city

    @property
    def ref(self) -> str:
        return f"partner:{self.city}"


@dataclass(frozen=True)
class Anonymous:
    """No credentials at all: enough only for what the city publishes to everyone."""

    kind: Literal["anonymous"] = "anonymous"
    subject: str = ""

    @property
    def ref(self) -> str:
        return "anonymous"


Principal = Staff | Holder | Till | PartnerCity | Anonymous


class Unauthenticated(Exception):
    """No credentials where some are needed, or credentials this node cannot verify."""


class PermissionDenied(Exception):
    """Verified credentials that do not allow this call."""
