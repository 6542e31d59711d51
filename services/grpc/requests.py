"""Request validation: every field is checked by pydantic before a command is built."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar
from uuid import UUID

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from pydantic import BaseModel, ConfigDict, Field

M = TypeVar("M", bound=BaseModel)

Key = Annotated[str, Field(min_length=1, max_length=200)]
Units = Annotated[int, Field(gt=0, le=10**12)]
Text = Annotated[str, Field(max_length=500)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def parse(model: type[M], request: Message) -> M:
    """Proto fields to the model; unset scalars count as their zero value."""
    data: dict[str, Any] = MessageToDict(
        request, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return model.model_validate(data)


class OpenWallet(_Request):
    idempotency_key: Key
    participant_kind: Annotated[str, Field(min_length=1, max_length=40)]
    consent_version: Annotated[str, Field(min_length=1, max_length=100)]


class WalletRef(_Request):
    wallet_id: UUID


class RecordActivity(_Request):
    idempotency_key: Key
    wallet_id: UUID
    activity: Annotated[str, Field(min_length=1, max_length=64)]
    fields: dict[str, Text] = {}
    activity_id: Annotated[str, Field(max_length=200)] = ""


class Spend(_Request):
    idempotency_key: Key
    wallet_id: UUID
    merchant_id: UUID
    amount: Units
    purchase_ref: Annotated[str, Field(min_length=1, max_length=200)]


class WalletAmount(_Request):
    idempotency_key: Key
    wallet_id: UUID
    amount: Units


class IssueRedemptionVoucher(WalletAmount):
    redeem_at: Annotated[str, Field(max_length=31, pattern=r"^([a-z][a-z0-9_]{1,30})?$")] = ""


class CloseWallet(_Request):
    idempotency_key: Key
    wallet_id: UUID
    reason: Text = ""


class FileAppeal(_Request):
    idempotency_key: Key
    wallet_id: UUID
    subject_kind: Annotated[str, Field(min_length=1, max_length=40)]
    subject_ref: Annotated[str, Field(max_length=200)] = ""
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class DecideAppeal(_Request):
    idempotency_key: Key
    appeal_id: UUID
    upheld: bool = False
    reason: Annotated[str, Field(min_length=1, max_length=2000)]
    remedy_activity: Annotated[str, Field(max_length=64)] = ""
    remedy_fields: dict[str, Text] = {}


class RegisterMerchant(_Request):
    idempotency_key: Key
    name: Annotated[str, Field(min_length=1, max_length=200)]
    category: Annotated[str, Field(min_length=1, max_length=64)]
    local: bool = False


class AcceptVoucher(_Request):
    idempotency_key: Key
    local_voucher_id: UUID | None = None
    redemption_token: Annotated[str, Field(min_length=1, max_length=2000)] | None = None


class Reserve(_Request):
    idempotency_key: Key
    redemption_token: Annotated[str, Field(min_length=1, max_length=2000)]


class Commit(_Request):
    idempotency_key: Key
    redemption_id: UUID


class Cancel(_Request):
    idempotency_key: Key
    redemption_id: UUID
    reason: Text = ""


# -- credentials (services/grpc/credential_service.py) ----------------------------------------

Label = Annotated[str, Field(max_length=100)]


class RotateMyCredential(_Request):
    idempotency_key: Key
    wallet_id: UUID
    label: Label = ""
    keep_current: bool = False


class RevokeMyCredential(_Request):
    idempotency_key: Key
    wallet_id: UUID
    credential_id: UUID


class RequestRecovery(_Request):
    idempotency_key: Key
    wallet_id: UUID
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class ApproveRecovery(_Request):
    idempotency_key: Key
    wallet_id: UUID
    recovery_id: UUID


class MerchantRef(_Request):
    merchant_id: UUID


class IssueTillCredential(_Request):
    idempotency_key: Key
    merchant_id: UUID
    label: Label = ""


class RevokeTillCredential(_Request):
    idempotency_key: Key
    merchant_id: UUID
    credential_id: UUID
