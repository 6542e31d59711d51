"""Cross-city redemption: the home side's saga and the accepting city's record.

The home city's `Redemption` has an id derived from the voucher, so a voucher
exists once and moves Issued → Reserved → Committed (or Cancelled / Expired)
exactly once: a replayed voucher finds it past Issued and is refused.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.errors import (
    BuysNothing,
    InvalidInput,
    NoAgreement,
    OverCap,
    RedemptionClosed,
    VoucherAlreadyRedeemed,
    VoucherExpired,
    not_found,
)


@dataclass(frozen=True)
class Terms:
    """What one city's shops give for another city's tokens, as the accepting city publishes."""

    rate_numerator: int
    rate_denominator: int
    per_redemption_cap: int
    daily_cap: int


def credit_units(home_amount: int, numerator: int, denominator: int) -> int:
    """Home units to the acceptor's smallest unit, exactly, rounded down."""
    if numerator <= 0 or denominator <= 0:
        raise InvalidInput("rate", "numerator and denominator must be positive")
    return home_amount * numerator // denominator


def check_buys_something(home_amount: int, numerator: int, denominator: int, acceptor: str) -> int:
    """The credit a voucher buys at `acceptor`; refused if it rounds down to nothing,
    since the holder would give up tokens and the shop receive none."""
    credit = credit_units(home_amount, numerator, denominator)
    if credit <= 0:
        smallest = -(-denominator // numerator)  # the least amount worth one unit there
        raise BuysNothing(
            f"{home_amount} is worth nothing at {acceptor} (rate {numerator}/{denominator}, "
            f"rounded down); the least that buys anything there is {smallest}"
        )
    return credit


class Redemption(Aggregate):
    """Home side: one signed voucher and what became of it."""

    @staticmethod
    def create_id(home: str, voucher_id: UUID) -> UUID:
        return uuid5(NAMESPACE_URL, f"civfed:{home}:redemption:{voucher_id}")

    @event("Issued")
    def __init__(
        self, home: str, voucher_id: UUID, wallet_id: UUID, amount: int, expires_at: dt.datetime
    ) -> None:
        self.home = home
        self.voucher_id = voucher_id
        self.wallet_id = wallet_id
        self.amount = amount
        self.expires_at = expires_at
        self.state = "issued"
        self.acceptor: str | None = None
        self.hold_id: str | None = None
        self.hold_expires_at: dt.datetime | None = None

    def check_reservable(self, now: dt.datetime) -> None:
        if self.state != "issued":
            raise VoucherAlreadyRedeemed("voucher was already presented")
        if now >= self.expires_at:
            raise VoucherExpired(f"voucher expired at {self.expires_at.isoformat()}")

    def check_acceptor(self, acceptor: str) -> None:
        if self.acceptor != acceptor:
            # Exactly the answer for an unknown redemption id, status and text alike:
            # a partner learns nothing about other cities' redemptions, or vouchers
            # not yet presented, not even that they exist.
            raise not_found("redemption", self.id)

    def check_committable(self, acceptor: str) -> None:
        self.check_acceptor(acceptor)
        if self.state != "reserved":
            raise RedemptionClosed(f"redemption is {self.state}")

    @event("Reserved")
    def reserve(self, acceptor: str, hold_id: str, hold_expires_at: dt.datetime) -> None:
        self.state = "reserved"
        self.acceptor = acceptor
        self.hold_id = hold_id
        self.hold_expires_at = hold_expires_at

    @event("Committed")
    def commit(self, acceptor: str, amount: int) -> None:
        """The settlement claim: this city owes `acceptor` `amount` of its own units."""
        self.state = "committed"

    @event("Cancelled")
    def cancel(self, reason: str) -> None:
        self.state = "cancelled"

    @event("Expired")
    def expire(self) -> None:
        self.state = "expired"


class ForeignRedemption(Aggregate):
    """Accepting side: another city's voucher taken by one of this city's shops."""

    @staticmethod
    def create_id(acceptor: str, home: str, voucher_id: UUID) -> UUID:
        return uuid5(NAMESPACE_URL, f"civfed:{acceptor}:foreign:{home}:{voucher_id}")

    @event("Started")
    def __init__(
        self,
        acceptor: str,
        home: str,
        voucher_id: UUID,
        merchant_id: UUID,
        home_amount: int,
        credit: int,
        rate_numerator: int,
        rate_denominator: int,
        day: str,
    ) -> None:
        self.acceptor = acceptor
        self.day = day  # ISO date of the daily allowance it counts against
        self.home = home
        self.voucher_id = voucher_id
        self.merchant_id = merchant_id
        self.home_amount = home_amount
        self.credit = credit
        self.state = "started"
        self.home_redemption_id: UUID | None = None

    @event("Reserved")
    def reserved(self, home_redemption_id: UUID) -> None:
        self.state = "reserved"
        self.home_redemption_id = home_redemption_id

    @event("Refused")
    def refused(self, reason: str) -> None:
        self.state = "refused"

    @event("MerchantCredited")
    def credit_merchant(self, merchant_id: UUID, units: int) -> None:
        self.state = "credited"

    @event("Committed")
    def committed(self, home_city: str, home_amount: int, credit: int) -> None:
        """The settlement claim: `home_city` owes this city `home_amount` of its own units,
        which this city valued at `credit` of its units when it credited the shop."""
        self.state = "committed"

    @event("CreditReversed")
    def reverse(self, merchant_id: UUID, units: int, reason: str) -> None:
        self.state = "reversed"


class DailyAllowance(Aggregate):
    """How much of one partner's tokens this city accepted on one day."""

    @staticmethod
    def create_id(acceptor: str, home: str, day: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"civfed:{acceptor}:daily:{home}:{day}")

    @event("Opened")
    def __init__(self, acceptor: str, home: str, day: str) -> None:
        self.used = 0

    def check_room(self, amount: int, per_redemption_cap: int, daily_cap: int) -> None:
        if amount > per_redemption_cap:
            raise OverCap(f"{amount} is above the per-redemption cap of {per_redemption_cap}")
        if self.used + amount > daily_cap:
            raise OverCap(f"the daily cap of {daily_cap} would be exceeded")

    @event("Used")
    def use(self, amount: int) -> None:
        self.used += amount

    @event("Returned")
    def give_back(self, amount: int) -> None:
        self.used -= amount


def check_agreement(accepted: bool, home: str, acceptor: str) -> None:
    if not accepted:
        raise NoAgreement(f"{acceptor} and {home} have no redemption agreement")


def check_spendable_at(amount: int, terms: Terms | None, home: str, acceptor: str) -> None:
    """A voucher meant for `acceptor` must be one its shops can take and that buys something."""
    check_agreement(terms is not None, home, acceptor)
    assert terms is not None
    check_buys_something(amount, terms.rate_numerator, terms.rate_denominator, acceptor)
    if amount > terms.per_redemption_cap:
        raise OverCap(f"{amount} is above {acceptor}'s per-redemption cap of {terms.per_redemption_cap}")
