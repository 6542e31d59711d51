"""A holder's own history: every event about their wallet and their appeals.

Each entry says what happened, when, under which rule and rule version, and why
in plain words. After erasure the personal fields read "[erased]"; amounts, rules
and times stay, so the entry is still there.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application

from aggregates.credential import Keyring
from aggregates.errors import InvalidInput, not_found
from aggregates.wallet import Wallet
from services.event_log import event_type
from services.i18n import translations
from services.i18n.explanations import explain, render

HIDDEN = ("originator_id", "originator_version", "timestamp")
# A credential's hash is no one's to read, the holder's included.
NEVER_SHOWN = ("secret_hash",)
CREDENTIAL_EVENTS = {
    "Keyring.Created": "credentials set up",
    "Keyring.CredentialIssued": "credential issued",
    "Keyring.CredentialRevoked": "credential revoked",
    "Keyring.CredentialRotated": "credential replaced by a new one (the old one no longer works)",
}
# The lines of events without an explanation of their own, as message ids (services/i18n).
APPEAL_FILED = "appeal filed against {subject_kind} {subject_ref}: {reason}"
APPEAL_UPHELD = "appeal upheld by {decided_by}: {reason}"
APPEAL_DENIED = "appeal denied by {decided_by}: {reason}"
RECOVERY_REQUESTED = "recovery of this wallet requested by {requested_by}: {reason}"
RECOVERY_APPROVED = (
    "recovery approved by {approved_by}: a new credential was issued and every earlier one revoked"
)
EVENT_AMOUNT = "{event}: {amount}"
AWARD_REFUSED = "award refused: {reason}"
MESSAGE_IDS = (
    AWARD_REFUSED,
    *CREDENTIAL_EVENTS.values(),
    APPEAL_FILED,
    APPEAL_UPHELD,
    APPEAL_DENIED,
    RECOVERY_REQUESTED,
    RECOVERY_APPROVED,
    EVENT_AMOUNT,
)


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


def describe(kind: str, fields: dict[str, Any], language: str | None = None) -> str:
    """The plain-language line of an event, in `language` (a BCP 47 tag); without one, in
    English as it was stored. An award's explanation is rendered from its message id and
    parameters; an award stored before explanations had ids reads as its English text."""
    if "explanation" in fields:
        english = str(fields["explanation"])
        return explain(fields.get("explanation_id"), fields.get("explanation_args"), english, language)
    if language is not None:
        return _localised(kind, fields, language)
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


def _localised(kind: str, fields: dict[str, Any], language: str) -> str:
    def line(message_id: str, *names: str) -> str:
        return render(message_id, {n: fields.get(n) for n in names}, language)

    if kind == "Appeal.Filed":
        return line(APPEAL_FILED, "subject_kind", "subject_ref", "reason")
    if kind == "Appeal.Decided":
        return line(APPEAL_UPHELD if fields.get("upheld") else APPEAL_DENIED, "decided_by", "reason")
    if kind == "Keyring.RecoveryRequested":
        return line(RECOVERY_REQUESTED, "requested_by", "reason")
    if kind == "Keyring.RecoveryApproved":
        return line(RECOVERY_APPROVED, "approved_by")
    tr = translations(language, "messages")
    if kind == "Wallet.AwardRefused":
        # A refusal recorded before reasons had ids reads as its English reason.
        reason = explain(
            fields.get("reason_id"), fields.get("reason_args"), str(fields.get("reason")), language
        )
        return render(AWARD_REFUSED, {"reason": reason}, language)
    if kind in CREDENTIAL_EVENTS:
        return tr.gettext(CREDENTIAL_EVENTS[kind])
    word = kind.split(".")[-1].lower()
    if kind == "Wallet.Spent" and fields.get("spent_for") == "prize":
        word = "prize claimed"
    event = tr.pgettext("event", word)
    if "amount" in fields:
        return render(EVENT_AMOUNT, {"event": event, "amount": fields["amount"]}, language)
    return event


def history(app: Application[UUID], wallet_id: UUID, language: str | None = None) -> list[Entry]:
    """The wallet's events, each appeal's and the wallet's credentials' (issued, rotated,
    revoked, recovered: never a hash), in the order they were recorded. Explanations read
    in `language` (a BCP 47 tag); without one, in English as stored."""
    entries = [
        (vars(e)["timestamp"], i, _entry(aggregate_id, e, language))
        for i, aggregate_id in enumerate(_streams(app, wallet_id))
        for e in app.events.get(aggregate_id)
    ]
    # The order pages come in: by time, then by stream and version.
    return [entry for _, _, entry in sorted(entries, key=lambda t: (t[0], t[1], t[2].version))]


@dataclass(frozen=True)
class HistoryPage:
    entries: list[Entry]
    # Where the next page starts, or "" when this one reached the end.
    next_page_token: str


def history_page(
    app: Application[UUID], wallet_id: UUID, size: int, token: str = "", language: str | None = None
) -> HistoryPage:
    """Up to `size` entries of `history`, from where `token` left off.

    Each stream (the wallet, its credentials, each appeal) is read from its own position,
    at most `size` events of each, and the heads merged by time: a page costs its size
    times the number of streams, however long the wallet's history."""
    streams = _streams(app, wallet_id)
    positions = _positions(token, len(streams))
    heads: list[tuple[dt.datetime, int, Entry]] = []
    full: set[int] = set()
    for i, aggregate_id in enumerate(streams):
        read = list(app.events.get(aggregate_id, gt=positions[i] or None, limit=size))
        if len(read) == size:
            full.add(i)  # there may be more after these
        heads += [(vars(e)["timestamp"], i, _entry(aggregate_id, e, language)) for e in read]
    heads.sort(key=lambda head: (head[0], head[1], head[2].version))
    taken, left = heads[:size], heads[size:]
    for _, i, entry in taken:
        positions[i] = entry.version
    more = bool(left) or bool(full)
    next_token = "h:" + ",".join(map(str, positions)) if more else ""
    return HistoryPage([entry for _, _, entry in taken], next_token)


def _positions(token: str, streams: int) -> list[int]:
    """The last version read of each stream; a wallet's appeals only ever grow in number."""
    if not token:
        return [0] * streams
    kind, _, rest = token.partition(":")
    parts = rest.split(",")
    if kind != "h" or len(parts) > streams or not all(p.isdigit() and len(p) <= 18 for p in parts):
        raise InvalidInput("page_token", "not a token this history handed out")
    return [int(p) for p in parts] + [0] * (streams - len(parts))


def _streams(app: Application[UUID], wallet_id: UUID) -> list[UUID]:
    """The wallet, its credentials, then its appeals in the order they were filed (so a
    page token's positions keep their places when another appeal is filed)."""
    try:
        # Read only (its appeals' ids): the cached wallet itself, not a copy of it.
        wallet: Any = app.repository.get(wallet_id, deepcopy_from_cache=False)
    except AggregateNotFoundError:
        wallet = None
    if not isinstance(wallet, Wallet):
        raise not_found("wallet", wallet_id)
    keyring = Keyring.create_id(str(getattr(app, "key", "")), "holder", wallet_id)
    return [wallet_id, keyring, *wallet.appeals]


def _entry(aggregate_id: UUID, e: Any, language: str | None) -> Entry:
    fields = {k: v for k, v in vars(e).items() if k not in HIDDEN + NEVER_SHOWN}
    kind = event_type(e)
    return Entry(
        aggregate_id=aggregate_id,
        version=e.originator_version,
        type=kind,
        timestamp=vars(e)["timestamp"].isoformat(),
        rule_id=str(fields.get("rule_id") or ""),
        rule_version=int(fields.get("rule_version") or 0),
        explanation=describe(kind, fields, language),
        fields=fields,
    )
