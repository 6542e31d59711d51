"""A holder's own history: every event about their wallet and their appeals.

Each entry says what happened, when, under which rule and rule version, and why
in plain words. After erasure the personal fields read "[erased]"; amounts, rules
and times stay, so the entry is still there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application

from aggregates.credential import Keyring
from aggregates.errors import not_found
from aggregates.wallet import Wallet
from services.event_log import event_type

HIDDEN = ("originator_id", "originator_version", "timestamp")
# A credential's hash is no one's to read, the holder's included.
NEVER_SHOWN = ("secret_hash",)
CREDENTIAL_EVENTS = {
    "Keyring.Created": "credentials set up",
    "Keyring.CredentialIssued": "credential issued",
    "Keyring.CredentialRevoked": "credential revoked",
    "Keyring.CredentialRotated": "credential replaced by a new one (the old one no longer works)",
}


@dataclass(frozen=True)
class Entry:
    aggregate_id: UUID
    version: int
    type: str
    timestamp: str
    rule_id: str
    rule_version: int
    explanation: str
    fields: dict[str, Any]


def describe(kind: str, fields: dict[str, Any]) -> str:
    """The plain-language line of an event that has no rule explanation of its own."""
    if "explanation" in fields:
        return str(fields["explanation"])
    if kind == "Appeal.Filed":
        subject = f"{fields.get('subject_kind')} {fields.get('subject_ref')}"
        return f"appeal filed against {subject}: {fields.get('reason')}"
    if kind == "Appeal.Decided":
        outcome = "upheld" if fields.get("upheld") else "denied"
        return f"appeal {outcome} by {fields.get('decided_by')}: {fields.get('reason')}"
    if kind == "Keyring.RecoveryRequested":
        return f"recovery of this wallet requested by {fields.get('requested_by')}: {fields.get('reason')}"
    if kind == "Keyring.RecoveryApproved":
        return (
            f"recovery approved by {fields.get('approved_by')}: a new credential was issued "
            "and every earlier one revoked"
        )
    if kind in CREDENTIAL_EVENTS:
        return CREDENTIAL_EVENTS[kind]
    if "amount" in fields:
        return f"{kind.split('.')[-1].lower()}: {fields['amount']}"
    return kind.split(".")[-1]


def history(app: Application[UUID], wallet_id: UUID) -> list[Entry]:
    """The wallet's events, each appeal's and the wallet's credentials' (issued, rotated,
    revoked, recovered: never a hash), in the order they were recorded."""
    try:
        # Read only (its appeals' ids): the cached wallet itself, not a copy of it.
        wallet: Any = app.repository.get(wallet_id, deepcopy_from_cache=False)
    except AggregateNotFoundError:
        wallet = None
    if not isinstance(wallet, Wallet):
        raise not_found("wallet", wallet_id)
    entries: list[tuple[str, Entry]] = []
    keyring = Keyring.create_id(str(getattr(app, "key", "")), "holder", wallet_id)
    for aggregate_id in [wallet_id, *wallet.appeals, keyring]:
        for e in app.events.get(aggregate_id):
            fields = {k: v for k, v in vars(e).items() if k not in HIDDEN + NEVER_SHOWN}
            kind = event_type(e)
            stamp = vars(e)["timestamp"].isoformat()
            entry = Entry(
                aggregate_id=aggregate_id,
                version=e.originator_version,
                type=kind,
                timestamp=stamp,
                rule_id=str(fields.get("rule_id") or ""),
                rule_version=int(fields.get("rule_version") or 0),
                explanation=describe(kind, fields),
                fields=fields,
            )
            entries.append((stamp, entry))
    return [entry for _, entry in sorted(entries, key=lambda pair: pair[0])]
