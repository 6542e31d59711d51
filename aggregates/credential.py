"""Holder and till credentials: a keyring per wallet or merchant that keeps only hashes.

A credential is a random secret shown once, to whoever it was issued to. The keyring keeps
its SHA-256 (enough for 256 random bits: there is nothing to guess), its expiry and whether
it was revoked, so nothing the node stores or is configured with can produce a working one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.errors import NotFound, PreconditionFailed

OwnerKind = Literal["holder", "till"]


class CredentialInvalid(PreconditionFailed):
    """A credential that is unknown, expired or revoked."""


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class KeyEntry:
    credential_id: UUID
    secret_hash: str
    label: str
    issued_at: dt.datetime
    expires_at: dt.datetime
    issued_by: str
    revoked_at: dt.datetime | None = None
    revoked_by: str = ""

    def live(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


class Keyring(Aggregate):
    """The credentials of one wallet (a holder's phones) or one merchant (its tills)."""

    @staticmethod
    def create_id(city: str, owner_kind: str, owner_id: UUID) -> UUID:
        return uuid5(NAMESPACE_URL, f"civfed:{city}:keyring:{owner_kind}:{owner_id}")

    @event("Created")
    def __init__(self, city: str, owner_kind: OwnerKind, owner_id: UUID) -> None:
        self.owner_kind = owner_kind
        self.owner_id = owner_id
        self.entries: dict[UUID, KeyEntry] = {}

    @event("CredentialIssued")
    def issue(
        self,
        credential_id: UUID,
        secret_hash: str,
        label: str,
        issued_at: dt.datetime,
        expires_at: dt.datetime,
        issued_by: str,
    ) -> None:
        self.entries[credential_id] = KeyEntry(
            credential_id, secret_hash, label, issued_at, expires_at, issued_by
        )

    def check_revocable(self, credential_id: UUID) -> None:
        entry = self.entries.get(credential_id)
        if entry is None:
            raise NotFound(f"credential {credential_id} not found")
        if entry.revoked_at is not None:
            raise CredentialInvalid(f"credential {credential_id} is already revoked")

    @event("CredentialRevoked")
    def revoke(self, credential_id: UUID, at: dt.datetime, by: str, reason: str) -> None:
        entry = self.entries[credential_id]
        entry.revoked_at = at
        entry.revoked_by = by

    def live(self, now: dt.datetime) -> list[KeyEntry]:
        return [e for e in self.entries.values() if e.live(now)]

    def matches(self, credential_id: UUID, secret: str, now: dt.datetime) -> bool:
        """Whether `secret` is the live credential `credential_id` of this keyring."""
        entry = self.entries.get(credential_id)
        if entry is None or not entry.live(now):
            return False
        return hmac.compare_digest(entry.secret_hash, secret_hash(secret))
