"""Personal fields of events, sealed with their owner's key (crypto-shredding).

The mapper seals the listed fields with AES-GCM under the owner's key before
the event is stored, and opens them when it is read. An event's own fields are
sealed together, in one envelope (`sealed:v2`); fields inside a nested dict (a
snapshot's state) one by one (`sealed:v1`, as every field was before), and both
are read. Once the key is erased the fields read as a redaction marker: the
event, its amounts and its rule remain, so totals and token conservation still
hold, and history shows the entry.
The domain never sees any of this.
"""

from __future__ import annotations

import base64
import os
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.utils import get_topic

from projections.integration import PUBLIC_FIELDS
from services.privacy.keystore import KeyStore

REDACTED = "[erased]"
SEALED = "sealed:v1"  # one field (nested fields, and events stored before v2)
SEALED_ALL = "sealed:v2"  # all of an event's own personal fields, under one nonce
# Where an event's stored state keeps them: no event has a field of this name.
SEALED_FIELDS = "_sealed"

# Event type -> its personal fields. Anything written by or about one person
# that is not an amount, a pseudonymous id or a closed-vocabulary code.
# An award's explanation: its English text, and the message id and parameters it is read
# from in other languages (a distance, a date, a mode: just as personal as the text).
AWARD_FIELDS = ("activity_id", "explanation", "explanation_id", "explanation_args", "on", "claim_id")
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "Wallet.Credited": AWARD_FIELDS,
    "Wallet.Progressed": AWARD_FIELDS,
    "Wallet.AwardRefused": ("activity_id", "reason", "reason_id", "reason_args", "on"),
    "Wallet.Spent": ("purchase_ref",),
    "Wallet.HoldSpent": ("purchase_ref",),
    "Wallet.CloseScheduled": ("reason",),
    "Wallet.Closed": ("reason",),
    "Wallet.Erased": ("reason",),
    "Wallet.TaxPaid": ("assessment_ref",),
    "Treasury.TaxReceived": ("assessment_ref",),
    "WorkLog.Logged": ("logged_by",),
    "WorkLog.Rejected": ("reason",),
    "WorkLog.Refused": ("reason",),
    "Appeal.Filed": ("subject_ref", "reason", "filed_by"),
    "Appeal.Decided": ("reason",),
    # Why a staff member read or acted on the wallet; who, what and when stay readable.
    "AccessLog.Recorded": ("purpose",),
    "ErasureRequest.Withdrawn": ("reason",),
    # A recovery's reason is about the person (it names the wallet, so their key seals it).
    "Keyring.RecoveryRequested": ("reason",),
    # Command results hold explanations (an award, an appeal's remedy).
    "Receipt.Recorded": ("result",),
    # Snapshots, if a city turns them on, copy the state: seal the appeal's texts
    # inside it (a wallet's state holds amounts and ids only).
    "Appeal.Snapshot": ("state.subject_ref", "state.reason", "state.filed_by", "state.decision_reason"),
    # A wallet's state keeps what it earned per activity date, and the refused activities'
    # ids and reasons: sealed as the events they come from are.
    "Wallet.Snapshot": ("state.earned", "state.refused"),
    # A sole trader's bank account (the event names the shop as `owner`); a company's
    # account names no owner and is not personal data, so it stays readable.
    "Merchant.BankAccountSet": ("iban", "bic", "account_holder"),
    "Merchant.BankAccountEntered": ("iban", "bic", "account_holder"),
    # A shop's snapshot copies its account, and a change waiting for a second entry: sealed
    # when either is a sole trader's.
    "Merchant.Snapshot": ("state.iban", "state.bic", "state.account_holder", "state.pending_account"),
}
# Event type -> its fields that are both public (projections/integration.py) and personal:
# none so far, so publishing an event never needs its sealed fields opened.
PUBLIC_AND_PERSONAL: dict[str, tuple[str, ...]] = {
    name: both
    for name, public in PUBLIC_FIELDS.items()
    if (both := tuple(f for f in public if f in PERSONAL_FIELDS.get(name, ())))
}
# Fields that name the owner when the event is not the wallet's own.
OWNER_FIELDS = ("wallet_id", "owner")


class ShreddingMapper(Mapper[UUID]):
    def __init__(self, transcoder: Transcoder, keys: KeyStore) -> None:
        super().__init__(transcoder)
        self.keys = keys

    def _owner(self, type_name: str, originator: UUID, state: dict[str, Any]) -> UUID | None:
        if type_name.startswith("Wallet."):
            return originator
        if type_name == "Merchant.Snapshot":
            # The shop's state says whose account it holds; a company's names nobody.
            shop = state.get("state") or {}
            owner = shop.get("bank_owner") or (shop.get("pending_account") or {}).get("owner")
            return owner if isinstance(owner, UUID) else None
        for name in OWNER_FIELDS:
            value = state.get(name)
            if isinstance(value, UUID):
                # Later events of this aggregate may not name the owner (an appeal's
                # decision); a receipt has no later events, so it needs no link.
                if value != originator and not type_name.startswith("Receipt."):
                    self.keys.link(originator, value)
                return value
        if type_name.startswith("Receipt."):
            # Its owner is in its own state or nowhere: no receipt is ever linked to one.
            return None
        return self.keys.owner_of(originator)

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        type_name = _type_name(domain_event)
        fields = PERSONAL_FIELDS.get(type_name)
        if not fields:
            return super().to_stored_event(domain_event)
        state = dict(vars(domain_event))
        originator, version = state.pop("originator_id"), state.pop("originator_version")
        owner = self._owner(type_name, originator, state)
        if owner is not None:
            key = self.keys.key_for(owner, create=True)
            # The event's own fields are sealed together, under one nonce: one cipher call
            # and one envelope per event rather than per field.
            together = {n: state.pop(n) for n in fields if "." not in n and state.get(n) is not None}
            if together:
                state[SEALED_FIELDS] = self._seal_all(key, owner, originator, version, together)
            for name in fields:
                if "." not in name:
                    continue
                parent, _, leaf = name.rpartition(".")
                # A dotted name reaches into a nested dict (a snapshot's state), copied first.
                holder = state
                if parent:
                    holder = state[parent] = dict(state[parent])
                if holder.get(leaf) is not None:
                    holder[leaf] = self._seal(key, owner, originator, version, name, holder[leaf])
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        return StoredEvent(
            originator_id=originator,
            originator_version=version,
            topic=get_topic(type(domain_event)),
            state=self.transcoder.encode(state),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return self.open(super().to_domain_event(stored_event))

    def to_public_domain_event(self, stored_event: StoredEvent) -> Any:
        """The event with its personal fields left out, neither opened nor present: what
        publishing it needs when none of its public fields is personal (the log source and
        the relay), without a key lookup or a decryption per event."""
        event = super().to_domain_event(stored_event)
        if not PUBLIC_AND_PERSONAL.get(_type_name(event)):
            event.__dict__.pop(SEALED_FIELDS, None)
            return event
        return self.open(event)

    def open(self, event: Any) -> Any:
        """Open the personal fields of a decoded event, in place."""
        originator, version = event.originator_id, event.originator_version
        together = event.__dict__.pop(SEALED_FIELDS, None)
        if isinstance(together, dict) and together.get("seal") == SEALED_ALL:
            event.__dict__.update(self._open_all(originator, version, together))
        for name, value in list(vars(event).items()):
            if not isinstance(value, dict):
                continue
            if value.get("seal") == SEALED:
                event.__dict__[name] = self._open(originator, version, name, value)
                continue
            for inner, sealed in list(value.items()):
                if isinstance(sealed, dict) and sealed.get("seal") == SEALED:
                    value[inner] = self._open(originator, version, f"{name}.{inner}", sealed)
        return event

    def _aad(self, owner: UUID, originator: UUID, version: int, name: str) -> bytes:
        # Binds the ciphertext to its place: it cannot be moved to another event or field.
        who = str(owner)
        # A wallet's own events are owned by the wallet: its id is written out once.
        where = who if originator == owner else str(originator)
        return f"{who}|{where}|{version}|{name}".encode()

    def _seal(
        self, key: bytes | None, owner: UUID, originator: UUID, version: int, name: str, value: Any
    ) -> dict[str, Any]:
        if key is None:
            # An erased person gets no new personal data, not even encrypted.
            return {"seal": SEALED, "owner": str(owner), "shape": _shape(value), "data": ""}
        nonce = os.urandom(12)
        plain = self.transcoder.encode({"v": value})
        data = AESGCM(key).encrypt(nonce, plain, self._aad(owner, originator, version, name))
        return {
            "seal": SEALED,
            "owner": str(owner),
            "shape": _shape(value),
            "data": base64.b64encode(nonce + data).decode(),
        }

    def _seal_all(
        self, key: bytes | None, owner: UUID, originator: UUID, version: int, values: dict[str, Any]
    ) -> dict[str, Any]:
        shapes = {name: _shape(value) for name, value in values.items()}
        if key is None:
            # An erased person gets no new personal data, not even encrypted.
            return {"seal": SEALED_ALL, "owner": str(owner), "shapes": shapes, "data": ""}
        nonce = os.urandom(12)
        plain = self.transcoder.encode(values)
        data = AESGCM(key).encrypt(nonce, plain, self._aad(owner, originator, version, SEALED_FIELDS))
        return {
            "seal": SEALED_ALL,
            "owner": str(owner),
            "shapes": shapes,
            "data": base64.b64encode(nonce + data).decode(),
        }

    def _open_all(self, originator: UUID, version: int, sealed: dict[str, Any]) -> dict[str, Any]:
        owner = UUID(sealed["owner"])
        key = self.keys.key_for(owner, create=False)
        if key is None or not sealed["data"]:
            return {
                name: {"redacted": REDACTED} if shape == "dict" else REDACTED
                for name, shape in sealed["shapes"].items()
            }
        raw = base64.b64decode(sealed["data"])
        plain = AESGCM(key).decrypt(raw[:12], raw[12:], self._aad(owner, originator, version, SEALED_FIELDS))
        opened: dict[str, Any] = self.transcoder.decode(plain)
        return opened

    def _open(self, originator: UUID, version: int, name: str, sealed: dict[str, Any]) -> Any:
        owner = UUID(sealed["owner"])
        key = self.keys.key_for(owner, create=False)
        marker = {"redacted": REDACTED} if sealed.get("shape") == "dict" else REDACTED
        if key is None or not sealed["data"]:
            return marker
        raw = base64.b64decode(sealed["data"])
        plain = AESGCM(key).decrypt(raw[:12], raw[12:], self._aad(owner, originator, version, name))
        return self.transcoder.decode(plain)["v"]


def _type_name(domain_event: Any) -> str:
    """ "Wallet.Credited"; a snapshot is named after the aggregate it holds."""
    name = type(domain_event).__qualname__
    if name.endswith("Snapshot"):
        snapped = str(getattr(domain_event, "topic", "")).rsplit(":", 1)[-1].rsplit(".", 1)[-1]
        return f"{snapped}.Snapshot"
    return name


def _shape(value: Any) -> str:
    return "dict" if isinstance(value, dict) else "str"
