"""Businesses that accept a city's tokens, and the prizes they put up."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from aggregates.errors import (
    ClaimNotOpen,
    InvalidInput,
    MerchantNotAccepted,
    OutOfStock,
    PrizeWithdrawn,
    not_found,
)

# What a shop is paid for: a holder's direct payment, a local voucher, a prize it put
# up, or a partner city's voucher (credited at the agreed rate).
PAYMENT_KINDS = ("payment", "voucher", "prize", "redemption")


class Merchant(Aggregate):
    @event("Registered")
    def __init__(self, city: str, name: str, category: str, local: bool, basic_economy: bool) -> None:
        self.city = city
        self.name = name
        self.category = category
        self.local = local
        self.basic_economy = basic_economy
        # Tokens received and not yet paid out in euros, and the fraction of a euro cent
        # carried from the last payout (aggregates/payout.py).
        self.to_pay_out = 0
        self.payout_carry = "0"
        # Running totals for the statement, so reading one never replays the whole stream.
        self.received = 0
        self.paid_out_total = 0
        # Where its payouts go: set at registration or by a later recorded change.
        self.iban = ""
        self.bic = ""
        self.account_holder = ""
        self.bank_owner: UUID | None = None
        # A change entered by one person, waiting for a second to enter the same account.
        self.pending_account: dict[str, Any] | None = None
        # How many times the account was set: a payout run pays the account its proposal
        # named, and its file is written again only to the account it paid.
        self.account_version = 0

    @classmethod
    def admit(
        cls,
        city: str,
        name: str,
        category: str,
        local: bool,
        basic_economy: bool,
        categories: Mapping[str, str],
    ) -> Merchant:
        """A merchant in one of the city's declared categories (code -> display name).

        The category is published on the public stream, so it must be one of the
        city's codes, never free text; the refusal does not repeat what was given.
        """
        if category not in categories:
            allowed = ", ".join(sorted(categories))
            if not allowed:
                raise InvalidInput("category", "this city declares no merchant categories")
            raise InvalidInput("category", f"not one of this city's categories; allowed: {allowed}")
        return cls(city, name, category, local, basic_economy)

    # -- what the shop was paid: its statement, with no wallet in it ----------
    class Paid(Aggregate.Event):
        """Tokens received. `kind` is one of PAYMENT_KINDS; `reference` is one the shop
        itself was shown (a voucher, a prize, a redemption), never the holder's."""

        amount: int
        kind: str
        reference: str

        def apply(self, aggregate: Merchant) -> None:
            aggregate.to_pay_out = getattr(aggregate, "to_pay_out", 0) + self.amount
            aggregate.received = getattr(aggregate, "received", 0) + self.amount

    class PaymentReversed(Aggregate.Event):
        """A credit taken back because the sale behind it did not complete."""

        amount: int
        kind: str
        reference: str

        def apply(self, aggregate: Merchant) -> None:
            aggregate.to_pay_out = getattr(aggregate, "to_pay_out", 0) - self.amount
            aggregate.received = getattr(aggregate, "received", 0) - self.amount

    class PaidOut(Aggregate.Event):
        """Tokens moved to "paid out" by a payout run: `euro_cents` transferred to the
        shop's account at the run's rate, `carry` (a fraction of a cent) kept for the next."""

        run_id: UUID
        period: str
        amount: int
        euro_cents: int
        carry: str

        def apply(self, aggregate: Merchant) -> None:
            aggregate.to_pay_out = getattr(aggregate, "to_pay_out", 0) - self.amount
            aggregate.paid_out_total = getattr(aggregate, "paid_out_total", 0) + self.amount
            aggregate.payout_carry = self.carry

    class BankAccountSet(Aggregate.Event):
        """Where payouts go. A sole trader's account is personal data: `owner` then names
        the shop, and the account fields are sealed with its key (services/privacy)."""

        iban: str
        bic: str
        account_holder: str
        owner: UUID | None
        changed_by: str

        def apply(self, aggregate: Merchant) -> None:
            aggregate.iban, aggregate.bic = self.iban, self.bic
            aggregate.account_holder = self.account_holder
            # Who the account's fields belong to, so a snapshot of the shop seals them too.
            aggregate.bank_owner = self.owner
            aggregate.account_version = getattr(aggregate, "account_version", 0) + 1
            aggregate.pending_account = None

    class BankAccountEntered(Aggregate.Event):
        """A change to an account already set, as one person entered it. It takes effect
        only when someone else enters the same account (dual entry): until then payouts
        go to the account set, so no one person can send a shop's money elsewhere. Sealed
        like BankAccountSet when the account is a sole trader's."""

        iban: str
        bic: str
        account_holder: str
        owner: UUID | None
        entered_by: str

        def apply(self, aggregate: Merchant) -> None:
            aggregate.pending_account = {
                "iban": self.iban,
                "bic": self.bic,
                "account_holder": self.account_holder,
                "owner": self.owner,
                "entered_by": self.entered_by,
            }

    def set_bank_account(
        self, iban: str, bic: str, account_holder: str, sole_trader: bool, changed_by: str
    ) -> str:
        """`iban` already checked (its checksum) and in its compact form. The first account
        is set at once; a change needs a second person to enter the same account. Returns
        "set", "unchanged" or "awaiting_second_entry"."""
        if not iban:
            raise InvalidInput("iban", "an account needs an IBAN")
        if not account_holder.strip():
            raise InvalidInput("account_holder", "an account needs the name of its holder")
        owner = self.id if sole_trader else None
        wanted = (iban, bic, account_holder.strip(), owner)
        if (self.iban, self.bic, self.account_holder, getattr(self, "bank_owner", None)) == wanted:
            return "unchanged"
        pending = getattr(self, "pending_account", None)
        same_as_entered = pending is not None and wanted == (
            pending["iban"],
            pending["bic"],
            pending["account_holder"],
            pending["owner"],
        )
        confirmed = same_as_entered and pending is not None and pending["entered_by"] != changed_by
        if self.iban and not confirmed:
            if not same_as_entered:
                self.trigger_event(
                    self.BankAccountEntered,
                    iban=iban,
                    bic=bic,
                    account_holder=account_holder.strip(),
                    owner=owner,
                    entered_by=changed_by,
                )
            return "awaiting_second_entry"
        self.trigger_event(
            self.BankAccountSet,
            iban=iban,
            bic=bic,
            account_holder=account_holder.strip(),
            owner=owner,
            changed_by=changed_by,
        )
        return "set"

    def paid_out(self, run_id: UUID, period: str, amount: int, euro_cents: int, carry: str) -> None:
        if amount <= 0 or amount > self.to_pay_out:
            raise InvalidInput("amount", f"{self.name} has {self.to_pay_out} to pay out, not {amount}")
        self.trigger_event(
            self.PaidOut, run_id=run_id, period=period, amount=amount, euro_cents=euro_cents, carry=carry
        )

    def paid(self, amount: int, kind: str, reference: str = "") -> None:
        self.trigger_event(self.Paid, amount=amount, kind=kind, reference=reference)

    def payment_reversed(self, amount: int, kind: str, reference: str = "") -> None:
        self.trigger_event(self.PaymentReversed, amount=amount, kind=kind, reference=reference)

    def check_accepts(self, local_only: bool, basic_economy_only: bool = False) -> None:
        if local_only and not self.local:
            raise MerchantNotAccepted(f"{self.name} is not a local shop; this currency is spent only locally")
        if basic_economy_only and not self.basic_economy:
            raise MerchantNotAccepted(
                f"{self.name} is not in the basic economy; this currency is spent only there"
            )


class Prize(Aggregate):
    """A partner business's prize: a price in tokens and a number of units left.

    A claim takes one unit at once (`reserve`); a claim cancelled or expired puts it back
    (`restock`). The partner may change the price, name or units left at any time (claims
    already made keep the price they hold), and withdraw the prize (no new claims).
    """

    @event("Offered")
    def __init__(self, city: str, merchant_id: UUID, name: str, cost: int, stock: int) -> None:
        self.city = city
        self.merchant_id = merchant_id
        self.name = name
        self.cost = cost
        self.stock = stock
        self.withdrawn = False

    @classmethod
    def offer(cls, city: str, merchant_id: UUID, name: str, cost: int, stock: int) -> Prize:
        check_prize_terms(name, cost, stock, stock_may_be_zero=False)
        return cls(city, merchant_id, name, cost, stock)

    def check_owner(self, merchant_id: UUID) -> None:
        """Another merchant's prize is answered as if it did not exist."""
        if merchant_id != self.merchant_id:
            raise not_found("prize", self.id)

    def check_in_stock(self) -> None:
        if self.withdrawn:
            raise PrizeWithdrawn(f"prize {self.name!r} was withdrawn by its partner")
        if self.stock <= 0:
            raise OutOfStock(f"prize {self.name!r} is out of stock")

    @event("Claimed")
    def claim(self, wallet_id: UUID) -> None:
        """Claimed and paid at once (the in-process path)."""
        self.stock -= 1

    def update(self, name: str, cost: int, stock: int) -> None:
        if self.withdrawn:
            raise PrizeWithdrawn(f"prize {self.name!r} was withdrawn by its partner")
        check_prize_terms(name, cost, stock, stock_may_be_zero=True)
        self._updated(name, cost, stock)

    @event("Updated")
    def _updated(self, name: str, cost: int, stock: int) -> None:
        self.name, self.cost, self.stock = name, cost, stock

    def withdraw(self) -> None:
        if not self.withdrawn:
            self._withdrawn()

    @event("Withdrawn")
    def _withdrawn(self) -> None:
        self.withdrawn = True

    @event("Reserved")
    def reserve(self, claim_id: UUID) -> None:
        """One unit taken by a claim that holds its price until the hand-over."""
        self.stock -= 1

    @event("Restocked")
    def restock(self, claim_id: UUID, reason: str) -> None:
        """A unit back from a claim that was cancelled or expired."""
        self.stock += 1


def check_prize_terms(name: str, cost: int, stock: int, stock_may_be_zero: bool) -> None:
    if not name.strip():
        raise InvalidInput("name", "a prize needs a name")
    if type(cost) is not int or cost <= 0:
        raise InvalidInput("cost", "must be a positive whole number")
    least = 0 if stock_may_be_zero else 1
    if type(stock) is not int or stock < least:
        raise InvalidInput("stock", "must be a positive whole number" if least else "must not be negative")


CLAIM_STATES = ("held", "handed_over", "cancelled", "expired")


class PrizeClaim(Aggregate):
    """A holder's claim on one unit of a prize. The price is held on the wallet (`hold_id`)
    until the partner confirms the hand-over (the tokens are then spent to the partner),
    or released if the partner cancels or the claim expires."""

    @event("Made")
    def __init__(
        self,
        city: str,
        prize_id: UUID,
        merchant_id: UUID,
        wallet_id: UUID,
        hold_id: str,
        cost: int,
        expires_at: dt.datetime,
    ) -> None:
        self.city = city
        self.prize_id = prize_id
        self.merchant_id = merchant_id
        self.wallet_id = wallet_id
        self.hold_id = hold_id
        self.cost = cost
        self.expires_at = expires_at
        self.state = "held"

    def check_owner(self, merchant_id: UUID) -> None:
        if merchant_id != self.merchant_id:
            raise not_found("prize claim", self.id)

    def check_held(self) -> None:
        if self.state != "held":
            raise ClaimNotOpen(f"prize claim {self.id} is {self.state.replace('_', ' ')}")

    def check_open(self, now: dt.datetime) -> None:
        self.check_held()
        if now >= self.expires_at:
            raise ClaimNotOpen(f"prize claim {self.id} expired at {self.expires_at.isoformat()}")

    def check_lapsed(self, now: dt.datetime) -> None:
        self.check_held()
        if now < self.expires_at:
            raise ClaimNotOpen(f"prize claim {self.id} runs until {self.expires_at.isoformat()}")

    @event("HandedOver")
    def hand_over(self) -> None:
        self.state = "handed_over"

    @event("Cancelled")
    def cancel(self, reason: str) -> None:
        self.state = "cancelled"

    @event("Expired")
    def expire(self) -> None:
        self.state = "expired"
