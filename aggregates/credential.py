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

from aggregates.errors import NotFound, PreconditionFailed, SelfApproval

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


@dataclass
class Recovery:
    """A desk's request to give a lost wallet a new credential: one recorder asks, a second
    staff member (another authenticated subject) approves."""

    recovery_id: UUID
    requested_by: str
    requested_at: dt.datetime
    approved_by: str = ""
    approved_at: dt.datetime | None = None


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
        self.recoveries: dict[UUID, Recovery] = {}

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

    def check_presented(self, credential_id: UUID, secret: str, now: dt.datetime) -> None:
        """Rotation needs the live credential it replaces, secret and all: the store alone
        (which holds only hashes) can never rotate anyone's credential."""
        if not self.matches(credential_id, secret, now):
            raise CredentialInvalid("the presented credential is unknown, expired or revoked")

    @event("CredentialRotated")
    def rotate(
        self,
        old_credential_id: UUID,
        credential_id: UUID,
        secret_hash: str,
        label: str,
        issued_at: dt.datetime,
        expires_at: dt.datetime,
        keep_old: bool = False,
    ) -> None:
        """The new credential replaces the presented one, which stops working now; with
        `keep_old` (a second device) the presented one works on until it is revoked."""
        if not keep_old:
            old = self.entries[old_credential_id]
            old.revoked_at = issued_at
            old.revoked_by = f"{self.owner_kind}:{self.owner_id}"
        self.entries[credential_id] = KeyEntry(
            credential_id, secret_hash, label, issued_at, expires_at, f"{self.owner_kind}:{self.owner_id}"
        )

    def check_recovery_new(self, recovery_id: UUID) -> None:
        if recovery_id in self.recoveries:
            raise PreconditionFailed(f"recovery {recovery_id} was already requested")

    @event("RecoveryRequested")
    def request_recovery(
        self, recovery_id: UUID, wallet_id: UUID, reason: str, requested_by: str, at: dt.datetime
    ) -> None:
        self.recoveries[recovery_id] = Recovery(recovery_id, requested_by, at)

    def check_recovery_approvable(self, recovery_id: UUID, approved_by: str) -> None:
        found = self.recoveries.get(recovery_id)
        if found is None:
            raise NotFound(f"recovery {recovery_id} not found")
        if found.approved_at is not None:
            raise PreconditionFailed(f"recovery {recovery_id} was already approved")
        if approved_by == found.requested_by:
            raise SelfApproval("four eyes: whoever requested a recovery cannot approve it")

    @event("RecoveryApproved")
    def approve_recovery(
        self,
        recovery_id: UUID,
        approved_by: str,
        credential_id: UUID,
        secret_hash: str,
        issued_at: dt.datetime,
        expires_at: dt.datetime,
    ) -> None:
        """Every credential still live is revoked and one new one issued, in one event."""
        found = self.recoveries[recovery_id]
        found.approved_by = approved_by
        found.approved_at = issued_at
        for entry in self.entries.values():
            if entry.revoked_at is None:
                entry.revoked_at = issued_at
                entry.revoked_by = approved_by
        self.entries[credential_id] = KeyEntry(
            credential_id, secret_hash, "recovery", issued_at, expires_at, approved_by
        )

    def live(self, now: dt.datetime) -> list[KeyEntry]:
        return [e for e in self.entries.values() if e.live(now)]

    def matches(self, credential_id: UUID, secret: str, now: dt.datetime) -> bool:
        """Whether `secret` is the live credential `credential_id` of this keyring."""
        entry = self.entries.get(credential_id)
        if entry is None or not entry.live(now):
            return False
        return hmac.compare_digest(entry.secret_hash, secret_hash(secret))
