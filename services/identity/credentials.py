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

from aggregates.credential import KeyEntry, Keyring, OwnerKind, secret_hash
from aggregates.errors import InvalidInput, PreconditionFailed
from aggregates.merchant import Merchant
from aggregates.wallet import Wallet
from services.commands import (
    ApproveRecovery,
    Command,
    IssueCredential,
    IssueTillCredential,
    RequestRecovery,
    RevokeCredential,
    RotateCredential,
)
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
        if kind == "holder" and not cmd.first_only:
            # Nobody but the holder (by rotation) or two staff members (by recovery) gives an
            # existing wallet a new credential.
            raise PreconditionFailed(
                "a holder's credential comes only with a new wallet, by the holder's rotation "
                "or by an approved recovery"
            )
        ring_id = Keyring.create_id(self.key, kind, cmd.owner_id)
        ring = uow.find(ring_id, Keyring)
        if ring is not None and cmd.first_only and (ring.entries or ring.recoveries):
            return {"credential_id": "", "issued": False}
        if kind == "holder" and not _just_opened(uow.get(cmd.owner_id, Wallet, "wallet")):
            # A wallet already used without a credential (opened by a city's own tooling)
            # gets one only by a recovery.
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

    def _rotate_credential(self: CityLike, cmd: RotateCredential, uow: UnitOfWork) -> dict[str, Any]:
        ring = uow.get(Keyring.create_id(self.key, "holder", cmd.wallet_id), Keyring, "credential")
        now = self.clock()
        ring.check_presented(cmd.presented_credential_id, cmd.presented_secret, now)
        _check_new(cmd.credential_id, cmd.secret_hash, ring)
        expires = now + dt.timedelta(days=_days(cmd.valid_days))
        ring.rotate(
            cmd.presented_credential_id,
            cmd.credential_id,
            cmd.secret_hash,
            cmd.label,
            now,
            expires,
            cmd.keep_current,
        )
        return {
            "credential_id": str(cmd.credential_id),
            "replaced": "" if cmd.keep_current else str(cmd.presented_credential_id),
            "expires_at": expires.isoformat(),
        }

    def _request_recovery(self: CityLike, cmd: RequestRecovery, uow: UnitOfWork) -> dict[str, Any]:
        wallet = uow.get(cmd.wallet_id, Wallet, "wallet")
        if wallet.erased:
            raise PreconditionFailed("an erased wallet cannot be recovered")
        if not cmd.reason.strip():
            raise InvalidInput("reason", "a recovery needs a reason")
        ring_id = Keyring.create_id(self.key, "holder", cmd.wallet_id)
        ring = uow.find(ring_id, Keyring)
        if ring is None:
            ring = Keyring(self.key, "holder", cmd.wallet_id)
            uow.add(ring)
        ring.check_recovery_new(cmd.recovery_id)
        now = self.clock()
        ring.request_recovery(cmd.recovery_id, cmd.wallet_id, cmd.reason, cmd.requested_by, now)
        return {"recovery_id": str(cmd.recovery_id), "requested_at": now.isoformat()}

    def _approve_recovery(self: CityLike, cmd: ApproveRecovery, uow: UnitOfWork) -> dict[str, Any]:
        ring = uow.get(Keyring.create_id(self.key, "holder", cmd.wallet_id), Keyring, "recovery")
        ring.check_recovery_approvable(cmd.recovery_id, cmd.approved_by)
        _check_new(cmd.credential_id, cmd.secret_hash, ring)
        now = self.clock()
        revoked = [str(e.credential_id) for e in ring.entries.values() if e.revoked_at is None]
        expires = now + dt.timedelta(days=_days(cmd.valid_days))
        ring.approve_recovery(
            cmd.recovery_id, cmd.approved_by, cmd.credential_id, cmd.secret_hash, now, expires
        )
        return {
            "credential_id": str(cmd.credential_id),
            "expires_at": expires.isoformat(),
            "revoked": revoked,
        }

    def _issue_till_credential(self: CityLike, cmd: IssueTillCredential, uow: UnitOfWork) -> dict[str, Any]:
        uow.get(cmd.merchant_id, Merchant, "merchant")
        ring_id = Keyring.create_id(self.key, "till", cmd.merchant_id)
        ring = uow.find(ring_id, Keyring)
        if ring is None:
            ring = Keyring(self.key, "till", cmd.merchant_id)
            uow.add(ring)
        _check_new(cmd.credential_id, cmd.secret_hash, ring)
        now = self.clock()
        expires = now + dt.timedelta(days=_days(cmd.valid_days))
        ring.issue(cmd.credential_id, cmd.secret_hash, cmd.label, now, expires, cmd.issued_by)
        return {"credential_id": str(cmd.credential_id), "expires_at": expires.isoformat()}

    def keyring(self: CityLike, owner_kind: OwnerKind, owner_id: UUID) -> Keyring | None:
        try:
            ring: Keyring = self.repository.get(Keyring.create_id(self.key, owner_kind, owner_id))
        except AggregateNotFoundError:
            return None
        return ring


def _just_opened(wallet: Wallet) -> bool:
    """The wallet has had no event since its opening (nothing credited, spent or appealed).
    Its recorded state decides, not a timestamp: node clocks and event stamps may differ."""
    return wallet.version == 1


def _days(valid_days: int) -> int:
    if not 1 <= valid_days <= 3660:
        raise InvalidInput("valid_days", "between 1 and 3660")
    return valid_days


def _check_new(credential_id: UUID, hash_: str, ring: Keyring) -> None:
    if len(hash_) != 64 or credential_id in ring.entries:
        raise InvalidInput("credential", "a new credential needs a fresh id and its secret's hash")


def listing(ring: Keyring | None) -> list[KeyEntry]:
    """A keyring's credentials, newest first: ids, labels and dates, never a hash."""
    if ring is None:
        return []
    return sorted(ring.entries.values(), key=lambda e: e.issued_at, reverse=True)


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
            # Read only: the cached keyring itself, not a copy (checked on every call).
            ring: Keyring = self.app.repository.get(
                Keyring.create_id(self.app.key, kind, owner), deepcopy_from_cache=False
            )
        except AggregateNotFoundError:
            return None
        if not ring.matches(credential, secret, self.app.clock()):
            return None
        return Holder(owner, credential) if kind == "holder" else Till(owner, credential)
