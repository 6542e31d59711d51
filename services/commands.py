"""Every command a city application runs, as data.

A command's fields are the whole request: its handler reads nothing else, and the
idempotency fingerprint is computed from all of them, so a field added here is bound
to the key without anyone having to remember it.

`name` is what a receipt records, and never changes. Each field is fingerprinted
under the name the receipts of earlier versions used for it (`As("wallet")` beside
the field), so a key retried across an upgrade still replays its stored result
rather than meeting a conflict; a new field needs no `As`. The encoding is the
receipts' own (`aggregates.receipt.params_hash`): JSON with sorted keys, UUIDs and
datetimes as their `str()`.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, get_type_hints
from uuid import UUID, uuid4

from aggregates.receipt import params_hash
from aggregates.redemption import Redemption
from aggregates.source import DailyTally, SourceRegistry


@dataclass(frozen=True)
class As:
    """The name a field is fingerprinted under, where it differs from the field's own."""

    name: str


@dataclass(frozen=True)
class Attempt:
    """A field made anew by each attempt, not asked for by the caller: a new credential's id
    and secret hash, or the credential the caller proved themselves with. It is not
    fingerprinted, so a retry with the same key replays the first attempt's result (which
    never holds a secret) instead of meeting a conflict."""


@dataclass(frozen=True)
class Command:
    name: ClassVar[str]
    idempotency_key: str

    def parameters(self) -> dict[str, Any]:
        """Every field but the key, under its fingerprint name (as `dataclasses.asdict`
        gives them: nested dataclasses as dicts, every value a copy)."""
        names = _fingerprint_names(type(self))
        return {stored: _plain(getattr(self, field)) for field, stored in names.items()}

    def fingerprint(self) -> str:
        return params_hash(self.name, self.parameters())

    @property
    def owner(self) -> UUID | None:
        """The wallet the command is about (its `wallet_id`): its receipt is that person's data."""
        wallet = getattr(self, "wallet_id", None)
        return wallet if isinstance(wallet, UUID) else None

    def reads(self, city: str) -> tuple[UUID, ...]:
        """The aggregates its handler will read, so that a group of commands reads them all
        at once (services/batch_reads.py). A hint only: what it leaves out is read when
        the handler asks for it."""
        return (self.owner,) if self.owner is not None else ()

    def reads_after(self, city: str, found: Mapping[UUID, Any]) -> tuple[UUID, ...]:
        """The aggregates its handler will read that only those of `reads` name (as `found`
        holds them), read for the whole group in one query more. A hint too."""
        return ()


_NAMES: dict[type[Command], dict[str, str]] = {}
_IMMUTABLE = (str, int, float, bool, type(None), UUID, dt.date, dt.datetime)


def _plain(value: Any) -> Any:
    """`dataclasses.asdict` for one field's value, without copying what cannot change
    (it deep-copies every leaf, and a batch of claims fingerprints thousands of fields)."""
    if isinstance(value, _IMMUTABLE):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple) and not hasattr(value, "_fields"):
        return type(value)(_plain(v) for v in value)
    return copy.deepcopy(value)


def _fingerprint_names(cls: type[Command]) -> dict[str, str]:
    """Field name -> fingerprint name, for every field but the key (read once per class)."""
    if cls not in _NAMES:
        hints = get_type_hints(cls, include_extras=True)
        names = {}
        for field in dataclasses.fields(cls):
            extras = getattr(hints[field.name], "__metadata__", ())
            if field.name != "idempotency_key" and not any(isinstance(m, Attempt) for m in extras):
                marks = [m for m in getattr(hints[field.name], "__metadata__", ()) if isinstance(m, As)]
                names[field.name] = marks[0].name if marks else field.name
        _NAMES[cls] = names
    return _NAMES[cls]


# -- wallets, merchants, prizes and vouchers (services/city.py) ------------------------


@dataclass(frozen=True)
class OpenWallet(Command):
    name = "open_wallet"
    participant_kind: Annotated[str, As("kind")]
    consent_version: Annotated[str, As("consent")]
    valid_until: Annotated[dt.datetime | None, As("until")] = None


@dataclass(frozen=True)
class RecordActivity(Command):
    name = "record_activity"
    wallet_id: Annotated[UUID, As("wallet")]
    activity: str
    fields: dict[str, Any]
    activity_id: Annotated[str | None, As("id")] = None


@dataclass(frozen=True)
class RecordDeskActivity(Command):
    """An activity staff record at a desk (WalletService.RecordActivity): only the kinds the
    city file lists as desk activities, and the award names `recorded_by` (`staff:<subject>`,
    as authenticated). Every other kind reaches the ledger as a source's signed claim."""

    name = "record_desk_activity"
    wallet_id: Annotated[UUID, As("wallet")]
    activity: str
    fields: dict[str, Any]
    activity_id: str | None
    recorded_by: str


@dataclass(frozen=True)
class RegisterMerchant(Command):
    name = "register_merchant"
    merchant_name: Annotated[str, As("name")]
    category: str
    local: bool
    basic_economy: Annotated[bool, As("basic")] = False


@dataclass(frozen=True)
class Spend(Command):
    name = "spend"
    wallet_id: Annotated[UUID, As("wallet")]
    merchant_id: Annotated[UUID, As("merchant")]
    amount: int
    purchase_ref: Annotated[str, As("ref")]


@dataclass(frozen=True)
class OfferPrize(Command):
    name = "offer_prize"
    merchant_id: Annotated[UUID, As("merchant")]
    prize_name: Annotated[str, As("name")]
    cost: int
    stock: int


@dataclass(frozen=True)
class ClaimPrize(Command):
    name = "claim_prize"
    wallet_id: Annotated[UUID, As("wallet")]
    prize_id: Annotated[UUID, As("prize")]


@dataclass(frozen=True)
class UpdatePrize(Command):
    """A partner's new terms for its own prize; claims already made keep their price."""

    name = "update_prize"
    merchant_id: UUID
    prize_id: UUID
    prize_name: str
    cost: int
    stock: int


@dataclass(frozen=True)
class WithdrawPrize(Command):
    name = "withdraw_prize"
    merchant_id: UUID
    prize_id: UUID


@dataclass(frozen=True)
class PlacePrizeClaim(Command):
    """A holder claims one unit: the price is held until the partner hands it over."""

    name = "place_prize_claim"
    wallet_id: Annotated[UUID, As("wallet")]
    prize_id: UUID


@dataclass(frozen=True)
class ConfirmPrizeHandover(Command):
    name = "confirm_prize_handover"
    merchant_id: UUID
    claim_id: UUID


@dataclass(frozen=True)
class CancelPrizeClaim(Command):
    name = "cancel_prize_claim"
    merchant_id: UUID
    claim_id: UUID
    reason: str


@dataclass(frozen=True)
class ExpirePrizeClaim(Command):
    """Run by the node's sweep: a claim not handed over in time gives its hold back."""

    name = "expire_prize_claim"
    claim_id: UUID


@dataclass(frozen=True)
class IssueVoucher(Command):
    name = "issue_voucher"
    wallet_id: Annotated[UUID, As("wallet")]
    amount: int


@dataclass(frozen=True)
class RedeemVoucher(Command):
    name = "redeem_voucher"
    voucher_id: Annotated[UUID, As("voucher")]
    merchant_id: Annotated[UUID, As("merchant")]


# -- leaving and erasure (services/city.py; services/privacy/retention.py runs them) ----


@dataclass(frozen=True)
class CloseWallet(Command):
    name = "close_wallet"
    wallet_id: Annotated[UUID, As("wallet")]
    reason: str = "opted out"


@dataclass(frozen=True)
class ExpireWallet(Command):
    """Run by retention: a tourist wallet past its validity enters its final spend window."""

    name = "expire_wallet"
    wallet_id: Annotated[UUID, As("wallet")]


@dataclass(frozen=True)
class FinishClosing(Command):
    """Close a wallet whose final spend window has ended; what is left lapses."""

    name = "finish_closing"
    wallet_id: Annotated[UUID, As("wallet")]


@dataclass(frozen=True)
class EraseWallet(Command):
    """Record the erasure (closing the wallet if needed). The person's key is destroyed
    afterwards by `services.privacy.retention.erase_wallet`, which runs this command."""

    name = "erase_wallet"
    wallet_id: Annotated[UUID, As("wallet")]
    reason: str


# -- appeals (services/appeals.py) ---------------------------------------------------------


@dataclass(frozen=True)
class IssueCredential(Command):
    """A new credential for a wallet's holder or a merchant's till. Only the secret's hash
    is in the command (and so in the store); the secret goes to the caller once.
    With `first_only`, nothing is issued if the keyring ever had a credential: retrying the
    opening of a wallet cannot produce a second working credential for it."""

    name = "issue_credential"
    owner_kind: str
    owner_id: UUID
    credential_id: UUID
    secret_hash: str
    label: str
    valid_days: int
    issued_by: str
    first_only: bool = False


@dataclass(frozen=True)
class RevokeCredential(Command):
    name = "revoke_credential"
    owner_kind: str
    owner_id: UUID
    credential_id: UUID
    revoked_by: str
    reason: str


@dataclass(frozen=True)
class RotateCredential(Command):
    """The holder replaces the credential they call with by a new one; the old one stops
    working in the same event (unless `keep_current`: a second device, the first one working
    on until revoked). Needs that credential's secret: the store cannot rotate."""

    name = "rotate_credential"
    wallet_id: Annotated[UUID, As("wallet")]
    label: str
    valid_days: int
    keep_current: bool
    presented_credential_id: Annotated[UUID, Attempt()]
    presented_secret: Annotated[str, Attempt()] = dataclasses.field(repr=False)
    credential_id: Annotated[UUID, Attempt()] = dataclasses.field(default_factory=uuid4)
    secret_hash: Annotated[str, Attempt()] = dataclasses.field(default="", repr=False)


@dataclass(frozen=True)
class RequestRecovery(Command):
    """A recorder asks for a lost wallet's recovery, with the reason (sealed: the person's data)."""

    name = "request_recovery"
    wallet_id: Annotated[UUID, As("wallet")]
    reason: str
    requested_by: str
    recovery_id: Annotated[UUID, Attempt()] = dataclasses.field(default_factory=uuid4)


@dataclass(frozen=True)
class ApproveRecovery(Command):
    """A second staff member approves: every live credential of the wallet is revoked and a
    new one issued, shown once to the approving desk."""

    name = "approve_recovery"
    wallet_id: Annotated[UUID, As("wallet")]
    recovery_id: UUID
    approved_by: str
    valid_days: int
    credential_id: Annotated[UUID, Attempt()] = dataclasses.field(default_factory=uuid4)
    secret_hash: Annotated[str, Attempt()] = dataclasses.field(default="", repr=False)


@dataclass(frozen=True)
class IssueTillCredential(Command):
    """One more till of a registered merchant, issued by a merchant administrator."""

    name = "issue_till_credential"
    merchant_id: UUID
    label: str
    valid_days: int
    issued_by: str
    credential_id: Annotated[UUID, Attempt()] = dataclasses.field(default_factory=uuid4)
    secret_hash: Annotated[str, Attempt()] = dataclasses.field(default="", repr=False)


@dataclass(frozen=True)
class FileAppeal(Command):
    name = "file_appeal"
    wallet_id: Annotated[UUID, As("wallet")]
    subject_kind: Annotated[str, As("kind")]
    subject_ref: Annotated[str, As("ref")]
    reason: str
    filed_by: Annotated[str, As("by")]


@dataclass(frozen=True)
class DecideAppeal(Command):
    name = "decide_appeal"
    appeal_id: Annotated[UUID, As("appeal")]
    upheld: bool
    reason: str
    decided_by: Annotated[str, As("by")]
    remedy: dict[str, Any] | None = None


# -- the social workflow (services/workflow.py) ------------------------------------------


@dataclass(frozen=True)
class PublishCategory(Command):
    name = "publish_category"
    code: str
    title: str
    sector: str
    decision_ref: Annotated[str, As("decision")]


@dataclass(frozen=True)
class RetireCategory(Command):
    name = "retire_category"
    code: str
    decision_ref: Annotated[str, As("decision")]


@dataclass(frozen=True)
class PostTask(Command):
    name = "post_task"
    category: str
    place: str
    starts_at: Annotated[dt.datetime, As("from")]
    ends_at: Annotated[dt.datetime, As("to")]
    slots: int
    posted_by: Annotated[str, As("by")]


@dataclass(frozen=True)
class CloseTask(Command):
    name = "close_task"
    task_id: Annotated[UUID, As("task")]
    reason: str
    closed_by: Annotated[str, As("by")]


@dataclass(frozen=True)
class ClaimTask(Command):
    name = "claim_task"
    task_id: Annotated[UUID, As("task")]
    wallet_id: Annotated[UUID, As("wallet")]


@dataclass(frozen=True)
class LogMinutes(Command):
    """The participant (or someone on their behalf, named in `logged_by`) logs minutes worked."""

    name = "log_minutes"
    task_id: Annotated[UUID, As("task")]
    wallet_id: Annotated[UUID, As("wallet")]
    minutes: int
    logged_by: Annotated[str | None, As("by")] = None


@dataclass(frozen=True)
class ApproveLog(Command):
    name = "approve_log"
    log_id: Annotated[UUID, As("log")]
    approver: str


@dataclass(frozen=True)
class RejectLog(Command):
    name = "reject_log"
    log_id: Annotated[UUID, As("log")]
    approver: str
    reason: str


@dataclass(frozen=True)
class PayTax(Command):
    name = "pay_tax"
    wallet_id: Annotated[UUID, As("wallet")]
    amount: int
    assessment_ref: Annotated[str, As("assessment")]


# -- rule changes (services/rule_changes.py): one person proposes, another decides -----------


@dataclass(frozen=True)
class ProposeRuleChange(Command):
    name = "propose_rule_change"
    rule_id: str
    action: str  # "publish", "change" or "retire"
    kind: str
    activity: str
    params: dict[str, Any]
    conditions: dict[str, Any]
    reason: str
    effective_from: dt.date | None
    proposed_by: str


@dataclass(frozen=True)
class ApproveRuleChange(Command):
    name = "approve_rule_change"
    proposal_id: str
    decision_ref: str
    approved_by: str


@dataclass(frozen=True)
class RejectRuleChange(Command):
    name = "reject_rule_change"
    proposal_id: str
    reason: str
    rejected_by: str


# -- the access log and erasure on request (services/access_log.py, services/erasure.py) ----


@dataclass(frozen=True)
class RecordAccess(Command):
    """A staff read of a person's data (`read`: a purpose is required) or a staff action on
    their wallet, written to that wallet's access log."""

    name = "record_access"
    wallet_id: Annotated[UUID, As("wallet")]
    subject: str
    roles: tuple[str, ...]
    action: str
    purpose: str
    read: bool


@dataclass(frozen=True)
class EraseOwnWallet(Command):
    """The holder erases their own wallet; the key is destroyed once this is saved."""

    name = "erase_own_wallet"
    wallet_id: Annotated[UUID, As("wallet")]


@dataclass(frozen=True)
class RequestErasure(Command):
    name = "request_erasure"
    wallet_id: Annotated[UUID, As("wallet")]
    legal_basis: str
    reference: str
    requested_by: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class ApproveErasure(Command):
    """A second erasure officer approves; the wallet is erased in the same save."""

    name = "approve_erasure"
    request_id: UUID
    approved_by: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class WithdrawErasure(Command):
    name = "withdraw_erasure"
    request_id: UUID
    withdrawn_by: str
    roles: tuple[str, ...]
    reason: str


# -- cross-city redemption (services/federation) ------------------------------------------


@dataclass(frozen=True)
class IssueRedemptionVoucher(Command):
    """A signed voucher for a partner city's shops; `redeem_at` names the partner it is meant
    for, if any."""

    name = "issue_redemption_voucher"
    wallet_id: Annotated[UUID, As("wallet")]
    amount: int
    redeem_at: Annotated[str, As("at")] = ""

    def parameters(self) -> dict[str, Any]:
        # "at" only when given, so receipts stored before it existed still replay.
        params = super().parameters()
        if not self.redeem_at:
            del params["at"]
        return params


@dataclass(frozen=True)
class ReserveRedemption(Command):
    """A partner (`acceptor`) holds a voucher's tokens at its home city."""

    name = "reserve"
    acceptor: str
    voucher_id: Annotated[UUID, As("voucher")]

    def reads(self, city: str) -> tuple[UUID, ...]:
        return (Redemption.create_id(city, self.voucher_id),)

    def reads_after(self, city: str, found: Mapping[UUID, Any]) -> tuple[UUID, ...]:
        return _wallet_of(found.get(Redemption.create_id(city, self.voucher_id)))


@dataclass(frozen=True)
class CommitRedemption(Command):
    name = "commit"
    acceptor: str
    redemption_id: Annotated[UUID, As("redemption")]

    def reads(self, city: str) -> tuple[UUID, ...]:
        return (self.redemption_id,)

    def reads_after(self, city: str, found: Mapping[UUID, Any]) -> tuple[UUID, ...]:
        return _wallet_of(found.get(self.redemption_id))


@dataclass(frozen=True)
class CancelRedemption(Command):
    name = "cancel"
    acceptor: str
    redemption_id: Annotated[UUID, As("redemption")]
    reason: str

    def reads(self, city: str) -> tuple[UUID, ...]:
        return (self.redemption_id,)

    def reads_after(self, city: str, found: Mapping[UUID, Any]) -> tuple[UUID, ...]:
        return _wallet_of(found.get(self.redemption_id))


def _wallet_of(redemption: Any) -> tuple[UUID, ...]:
    """The wallet a redemption holds tokens of, if it was found."""
    wallet = getattr(redemption, "wallet_id", None)
    return (wallet,) if isinstance(wallet, UUID) else ()


@dataclass(frozen=True)
class ExpireRedemption(Command):
    """Release a lapsed hold; its key is fresh per attempt, so "not yet" is never replayed."""

    name = "expire"
    redemption_id: Annotated[UUID, As("redemption")]


@dataclass(frozen=True)
class AcceptForeignVoucher(Command):
    """A shop (`merchant_id`) takes another city's voucher: the accepting side's saga starts."""

    name = "accept_foreign_voucher"
    merchant_id: Annotated[UUID, As("merchant")]
    token: str


# -- sources and their signed claims (services/claims.py) ----------------------------------


@dataclass(frozen=True)
class RegisterSource(Command):
    name = "register_source"
    source_id: str
    source_name: str
    key_id: str
    public_key: str
    kinds: list[str]
    # Each as aggregates.source.Bound.as_dict().
    bounds: list[dict[str, Any]]
    registered_by: str
    reason: str


@dataclass(frozen=True)
class RotateSourceKey(Command):
    name = "rotate_source_key"
    source_id: str
    key_id: str
    public_key: str
    rotated_by: str
    reason: str


@dataclass(frozen=True)
class RetireSource(Command):
    name = "retire_source"
    source_id: str
    retired_by: str
    reason: str


@dataclass(frozen=True)
class SubmitClaim(Command):
    """A claim whose signature the node has verified. Its key is the source's claim id, so
    the same claim again replays its result and another claim under that id conflicts."""

    name = "submit_claim"
    source_id: str
    claim_id: str
    wallet_id: Annotated[UUID, As("wallet")]
    activity: str
    fields: dict[str, Any]
    date: str

    def reads(self, city: str) -> tuple[UUID, ...]:
        """The sources, the wallet and the wallet's tally of the day (services/claims.py)."""
        tally = DailyTally.create_id(city, self.wallet_id, self.date, self.activity)
        return (SourceRegistry.create_id(city), self.wallet_id, tally)


# -- cashback reported by a shop's till (services/cashback.py) -------------------------------


@dataclass(frozen=True)
class ReportPurchase(Command):
    """A purchase a shop's till reported. Its key is derived from the shop and the receipt
    id (services/cashback.py: receipt_key), never from the caller's key, so the same receipt
    again replays its result and another purchase under that receipt id conflicts."""

    name = "report_purchase"
    merchant_id: UUID
    receipt_id: str
    wallet_id: Annotated[UUID, As("wallet")]
    amount_cents: int
    date: str


# -- shop payouts (services/payouts.py) --------------------------------------------
@dataclass(frozen=True)
class SetBankAccount(Command):
    """Where a shop's payouts go, set by a merchant administrator (at registration or later)."""

    name = "set_bank_account"
    merchant_id: UUID
    iban: str
    bic: str
    account_holder: str
    sole_trader: bool
    changed_by: str


@dataclass(frozen=True)
class ProposePayoutRun(Command):
    """A city's payout run for one period, proposed by a finance officer."""

    name = "propose_payout_run"
    period: str
    proposed_by: str


@dataclass(frozen=True)
class RunPayouts(Command):
    """A proposed payout run, approved and paid by another finance officer."""

    name = "run_payouts"
    period: str
    run_by: str


# -- funds and budgets (services/funds.py): one person proposes a top-up, another approves -----


@dataclass(frozen=True)
class ProposeFundTopUp(Command):
    name = "propose_fund_top_up"
    fund_id: str
    amount: int
    reason: str
    proposed_by: str


@dataclass(frozen=True)
class ApproveFundTopUp(Command):
    name = "approve_fund_top_up"
    fund_id: str
    proposal_id: str
    decision_ref: str
    approved_by: str
