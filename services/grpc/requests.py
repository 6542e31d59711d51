"""Request validation: every field is checked by pydantic before a command is built."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

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
    valid_until: dt.datetime | None = None

    @field_validator("valid_until", mode="before")
    @classmethod
    def _datetime_or_none(cls, value: Any) -> Any:
        return None if value == "" else value


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
    basic_economy: bool = False
    # Where payouts go (optional here); checked by the payout commands.
    iban: Annotated[str, Field(max_length=42)] = ""
    bic: Annotated[str, Field(max_length=11)] = ""
    account_holder: Annotated[str, Field(max_length=70)] = ""
    sole_trader: bool = False


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


def _json_object(value: Any) -> dict[str, Any]:
    if value in ("", None):
        return {}
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    if not isinstance(parsed, dict):
        raise ValueError("must be a JSON object")
    return parsed


class ProposeRuleChange(_Request):
    idempotency_key: Key
    rule_id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
    action: Literal["publish", "change", "retire"]
    kind: Annotated[str, Field(max_length=64)] = ""
    activity: Annotated[str, Field(max_length=64)] = ""
    params_json: Annotated[dict[str, Any], Field()] = {}
    conditions_json: Annotated[dict[str, Any], Field()] = {}
    reason: Annotated[str, Field(min_length=1, max_length=2000)]
    effective_from: dt.date | None = None

    @field_validator("params_json", "conditions_json", mode="before")
    @classmethod
    def _object(cls, value: Any) -> dict[str, Any]:
        return _json_object(value)

    @field_validator("effective_from", mode="before")
    @classmethod
    def _date_or_none(cls, value: Any) -> Any:
        return None if value == "" else value


class ApproveRuleChange(_Request):
    idempotency_key: Key
    proposal_id: Annotated[str, Field(min_length=1, max_length=200)]
    decision_ref: Annotated[str, Field(min_length=1, max_length=200)]


class RejectRuleChange(_Request):
    idempotency_key: Key
    proposal_id: Annotated[str, Field(min_length=1, max_length=200)]
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class ListRuleProposals(_Request):
    status: Literal["", "proposed", "approved", "rejected"] = ""


# -- staff reads of a person's data, and the rights service ---------------------------------


class PersonRead(WalletRef):
    """A read of one person's data; staff give a purpose (here or in `civfed-purpose`)."""

    purpose: Text = ""


class EraseMyWallet(_Request):
    idempotency_key: Key
    wallet_id: UUID


class RequestErasure(_Request):
    idempotency_key: Key
    wallet_id: UUID
    legal_basis: Annotated[str, Field(min_length=1, max_length=64)]
    reference: Annotated[str, Field(min_length=1, max_length=100)]


class ApproveErasure(_Request):
    idempotency_key: Key
    request_id: UUID


class WithdrawErasure(_Request):
    idempotency_key: Key
    request_id: UUID
    reason: Annotated[str, Field(min_length=1, max_length=500)]


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


# -- a social-workflow city (services/grpc/workflow_service.py) -------------------------------


class PublishCategory(_Request):
    idempotency_key: Key
    code: Annotated[str, Field(min_length=1, max_length=48)]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    sector: Annotated[str, Field(min_length=1, max_length=32)]
    decision_ref: Annotated[str, Field(min_length=1, max_length=100)]


class RetireCategory(_Request):
    idempotency_key: Key
    code: Annotated[str, Field(min_length=1, max_length=48)]
    decision_ref: Annotated[str, Field(min_length=1, max_length=100)]


class PostTask(_Request):
    idempotency_key: Key
    category: Annotated[str, Field(min_length=1, max_length=48)]
    place: Annotated[str, Field(min_length=1, max_length=200)]
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    slots: Annotated[int, Field(ge=1, le=1000)]


class CloseTask(_Request):
    idempotency_key: Key
    task_id: UUID
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class ListTasks(_Request):
    include_closed: bool = False


class ClaimTask(_Request):
    idempotency_key: Key
    task_id: UUID
    wallet_id: UUID


class LogMinutes(_Request):
    idempotency_key: Key
    task_id: UUID
    wallet_id: UUID
    minutes: Annotated[int, Field(gt=0, le=10**6)]


class ApproveLog(_Request):
    idempotency_key: Key
    log_id: UUID


class RejectLog(_Request):
    idempotency_key: Key
    log_id: UUID
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class PayTax(_Request):
    idempotency_key: Key
    wallet_id: UUID
    amount: Units
    assessment_ref: Annotated[str, Field(min_length=1, max_length=64)]


class ListWorkLogs(_Request):
    """One person's logs, or one task's; staff give a purpose."""

    wallet_id: UUID | None = None
    task_id: UUID | None = None
    purpose: Text = ""

    @field_validator("wallet_id", "task_id", mode="before")
    @classmethod
    def _unset(cls, value: Any) -> Any:
        return None if value == "" else value


# -- partner prizes (services/grpc/prize_service.py) ---------------------------------------
PrizeName = Annotated[str, Field(min_length=1, max_length=200)]


class OfferPrize(_Request):
    idempotency_key: Key
    name: PrizeName
    cost: Units
    stock: Units


class UpdatePrize(_Request):
    idempotency_key: Key
    prize_id: UUID
    name: PrizeName
    cost: Units
    stock: Annotated[int, Field(ge=0, le=10**12)]


class PrizeRef(_Request):
    idempotency_key: Key
    prize_id: UUID


class ClaimPrize(_Request):
    idempotency_key: Key
    wallet_id: UUID
    prize_id: UUID


class ClaimRef(_Request):
    idempotency_key: Key
    claim_id: UUID


class CancelClaim(ClaimRef):
    reason: Text = ""


# -- shop payouts -----------------------------------------------------------------
class ProposePayoutRun(_Request):
    idempotency_key: Key
    period: Annotated[str, Field(min_length=1, max_length=10)]
    city: Annotated[str, Field(max_length=40)] = ""


class RunPayouts(_Request):
    idempotency_key: Key
    period: Annotated[str, Field(min_length=1, max_length=10)]
    city: Annotated[str, Field(max_length=40)] = ""


class SetBankAccount(_Request):
    idempotency_key: Key
    merchant_id: UUID
    iban: Annotated[str, Field(min_length=1, max_length=42)]
    bic: Annotated[str, Field(max_length=11)] = ""
    account_holder: Annotated[str, Field(min_length=1, max_length=70)]
    sole_trader: bool = False


# -- funds and budgets (services/grpc/fund_service.py) ---------------------------------------

FundCode = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class ProposeFundTopUp(_Request):
    idempotency_key: Key
    fund_id: FundCode
    amount: Units
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class ApproveFundTopUp(_Request):
    idempotency_key: Key
    fund_id: FundCode
    proposal_id: Annotated[str, Field(min_length=1, max_length=200)]
    decision_ref: Annotated[str, Field(min_length=1, max_length=200)]


class GetFundReport(_Request):
    pass


class GetFinanceReport(_Request):
    period: Annotated[str, Field(max_length=7, pattern=r"^(\d{4}-(0[1-9]|1[0-2]))?$")] = ""
