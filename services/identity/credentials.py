"""Issuing and checking holder and till credentials (aggregates/credential.py keeps them).

A credential reads `civfed-<kind>.<owner id>.<credential id>.<secret>`. The node keeps only
the secret's hash, so it can check a credential but never make one: a new one exists only
when its owner (or, for a till, a merchant administrator) asks for it, and is shown once.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError

from aggregates.credential import Keyring, OwnerKind, secret_hash
from aggregates.errors import InvalidInput
from services.commands import Command, IssueCredential, RevokeCredential
from services.identity.principals import Holder, Till
from services.unit_of_work import Job, UnitOfWork

PREFIX = "civfed-"
KINDS: tuple[OwnerKind, ...] = ("holder", "till")


@dataclass(frozen=True)
class NewCredential:
    """A freshly made secret, before it is issued: the command carries only its hash."""

    credential_id: UUID
    secret: str
    owner_kind: OwnerKind
    owner_id: UUID

    @classmethod
    def make(cls, owner_kind: OwnerKind, owner_id: UUID) -> NewCredential:
        return cls(uuid4(), secrets.token_urlsafe(32), owner_kind, owner_id)

    @property
    def token(self) -> str:
        return f"{PREFIX}{self.owner_kind}.{self.owner_id}.{self.credential_id}.{self.secret}"

    @property
    def hash(self) -> str:
        return secret_hash(self.secret)


def parse(token: str) -> tuple[OwnerKind, UUID, UUID, str] | None:
    if not token.startswith(PREFIX):
        return None
    parts = token[len(PREFIX) :].split(".")
    if len(parts) != 4 or parts[0] not in KINDS:
        return None
    try:
        owner, credential = UUID(parts[1]), UUID(parts[2])
    except ValueError:
        return None
    kind: OwnerKind = "holder" if parts[0] == "holder" else "till"
    return kind, owner, credential, parts[3]


class CityLike(Protocol):
    key: str

    def clock(self) -> dt.datetime: ...

    def job(self, command: Command) -> Job: ...

    @property
    def repository(self) -> Any: ...


class CredentialCommands:
    """Mixed into the city application: issue, revoke and check credentials."""

    def issue_credential(
        self: CityLike,
        key: str,
        new: NewCredential,
        label: str,
        valid_days: int,
        issued_by: str,
        first_only: bool = False,
    ) -> Job:
        return self.job(
            IssueCredential(
                key,
                new.owner_kind,
                new.owner_id,
                new.credential_id,
                new.hash,
                label,
                valid_days,
                issued_by,
                first_only,
            )
        )

    def revoke_credential(
        self: CityLike,
        key: str,
        owner_kind: OwnerKind,
        owner_id: UUID,
        credential_id: UUID,
        revoked_by: str,
        reason: str,
    ) -> Job:
        return self.job(RevokeCredential(key, owner_kind, owner_id, credential_id, revoked_by, reason))

    def _issue_credential(self: CityLike, cmd: IssueCredential, uow: UnitOfWork) -> dict[str, Any]:
        if cmd.owner_kind not in KINDS:
            raise InvalidInput("owner_kind", f"must be one of {', '.join(KINDS)}")
        kind: OwnerKind = "holder" if cmd.owner_kind == "holder" else "till"
        ring_id = Keyring.create_id(self.key, kind, cmd.owner_id)
        ring = uow.find(ring_id, Keyring)
        if ring is not None and cmd.first_only and ring.entries:
            return {"credential_id": "", "issued": False}
        if ring is None:
            ring = Keyring(self.key, kind, cmd.owner_id)
            uow.add(ring)
        now = self.clock()
        expires = now + dt.timedelta(days=cmd.valid_days)
        ring.issue(cmd.credential_id, cmd.secret_hash, cmd.label, now, expires, cmd.issued_by)
        return {"credential_id": str(cmd.credential_id), "issued": True, "expires_at": expires.isoformat()}

    def _revoke_credential(self: CityLike, cmd: RevokeCredential, uow: UnitOfWork) -> dict[str, Any]:
        kind: OwnerKind = "holder" if cmd.owner_kind == "holder" else "till"
        ring = uow.get(Keyring.create_id(self.key, kind, cmd.owner_id), Keyring, "credential")
        ring.check_revocable(cmd.credential_id)
        ring.revoke(cmd.credential_id, self.clock(), cmd.revoked_by, cmd.reason)
        return {"credential_id": str(cmd.credential_id), "revoked": True}

    def keyring(self: CityLike, owner_kind: OwnerKind, owner_id: UUID) -> Keyring | None:
        try:
            ring: Keyring = self.repository.get(Keyring.create_id(self.key, owner_kind, owner_id))
        except AggregateNotFoundError:
            return None
        return ring


class CredentialCheck:
    """Who a presented credential belongs to, read from the store on every call, so a
    revocation takes effect at once on every replica."""

    def __init__(self, app: CityLike) -> None:
        self.app = app

    def principal(self, token: str) -> Holder | Till | None:
        parsed = parse(token)
        if parsed is None:
            return None
        kind, owner, credential, secret = parsed
        try:
            ring: Keyring = self.app.repository.get(Keyring.create_id(self.app.key, kind, owner))
        except AggregateNotFoundError:
            return None
        if not ring.matches(credential, secret, self.app.clock()):
            return None
        return Holder(owner, credential) if kind == "holder" else Till(owner, credential)
