"""A person's wallet in one city: rewards in, spending out, nothing else.

There is deliberately no method that removes tokens for behaviour: tokens leave
only when the holder spends them (directly, through a voucher or a redemption),
or, in a currency that depreciates, through the depreciation its city
published in advance. Only such currencies give wallets lots.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from aggregates.depreciation import Lot, LotTerms, draw, total_at, value_at
from aggregates.errors import (
    AlreadyErased,
    HoldNotActive,
    HoldsNotOffered,
    InsufficientBalance,
    InvalidInput,
    WalletClosed,
    WalletExpired,
)

PARTICIPANT_KINDS = ("resident", "tourist", "business")


@dataclass(frozen=True)
class Hold:
    amount: int
    expires_at: dt.datetime
    purpose: str


class Wallet(Aggregate):
    @event("Opened")
    def __init__(
        self,
        city: str,
        participant_kind: str,
        consent_version: str,
        valid_until: dt.datetime | None,
        final_spend_days: int = 0,
    ) -> None:
        self.city = city
        self.participant_kind = participant_kind
        self.consent_version = consent_version
        self.valid_until = valid_until
        # For a wallet with a validity end: the final spend window after it, as the city
        # published it when the wallet opened.
        self.final_spend_days = final_spend_days
        self.balance = 0
        self.carried: dict[str, int] = {}
        self.holds: dict[str, Hold] = {}
        self.closed = False
        self.lots: list[Lot] = []  # minting order; stays empty unless the currency depreciates
        self.closes_at: dt.datetime | None = None
        self.erased = False
        self.pseudonym = ""  # set by the erasure: the name it went by outside the store
        self.appeals: list[UUID] = []
        # Per rule, what the wallet earned on each activity date (ISO day -> amount): caps.
        self.earned: dict[str, dict[str, int]] = {}
        # Awards refused by a rule's caps or dates, by activity id: the reason (appealable).
        self.refused: dict[str, str] = {}
        # Which fund issued the tokens held, in minting order: [[fund, amount], ...].
        self.fund_lots: list[list[Any]] = []

    @classmethod
    def open(
        cls,
        city: str,
        participant_kind: str,
        consent_version: str,
        valid_until: dt.datetime | None,
        final_spend_days: int = 0,
    ) -> Wallet:
        if participant_kind not in PARTICIPANT_KINDS:
            raise InvalidInput("participant_kind", f"must be one of {PARTICIPANT_KINDS}")
        if participant_kind == "tourist" and valid_until is None:
            raise InvalidInput("valid_until", "a tourist wallet needs a validity end")
        if valid_until is not None and valid_until.utcoffset() is None:
            raise InvalidInput("valid_until", "needs a time zone")
        if not consent_version:
            raise InvalidInput("consent_version", "a wallet opens only with recorded consent")
        if valid_until is None:
            return cls(city, participant_kind, consent_version, valid_until)
        return cls(city, participant_kind, consent_version, valid_until, final_spend_days)

    # -- guards -------------------------------------------------------------
    @property
    def held(self) -> int:
        return sum(h.amount for h in self.holds.values())

    @property
    def available(self) -> int:
        return self.balance - self.held

    @property
    def spend_until(self) -> dt.datetime | None:
        """When the wallet closes: the end of its final spend window, once it is leaving, or
        for a wallet with a validity end, that end plus the window published at opening."""
        if self.closes_at is not None:
            return self.closes_at
        if self.valid_until is not None:
            return self.valid_until + dt.timedelta(days=self.final_spend_days)
        return None

    def expired(self, now: dt.datetime) -> bool:
        return self.valid_until is not None and now >= self.valid_until

    def check_active(self, now: dt.datetime) -> None:
        """Not closed and not past its final spend window: spending is still processed."""
        if self.closed or (self.closes_at is not None and now >= self.closes_at):
            raise WalletClosed(f"wallet {self.id} is closed")
        ends = self.spend_until
        if self.valid_until is not None and ends is not None and now >= ends:
            raise WalletExpired(
                f"wallet {self.id} was valid until {self.valid_until.isoformat()};"
                f" its final spend window ended {ends.isoformat()}"
            )

    def check_earning(self, now: dt.datetime) -> None:
        """Active and not leaving: a wallet in its final spend window earns nothing more."""
        self.check_active(now)
        if self.closes_at is not None:
            raise WalletClosed(f"wallet {self.id} is closing; only its final spending is processed")
        if self.valid_until is not None and now >= self.valid_until:
            raise WalletExpired(
                f"wallet {self.id} was valid until {self.valid_until.isoformat()};"
                " only its final spending is processed"
            )

    def check_available(self, amount: int, on: dt.date | None = None) -> None:
        """With `on`, lots count at their depreciated value on that day."""
        # type() rather than isinstance: True is an int, and money is never a float.
        if type(amount) is not int or amount <= 0:
            raise InvalidInput("amount", "must be a positive whole number")
        available = total_at(self.lots, on) if self.lots and on is not None else self.available
        if amount > available:
            raise InsufficientBalance(f"needs {amount}, available {available}")

    def check_hold(self, hold_id: str, now: dt.datetime) -> Hold:
        hold = self.holds.get(hold_id)
        if hold is None:
            raise HoldNotActive(f"hold {hold_id} is not active")
        if now >= hold.expires_at:
            raise HoldNotActive(f"hold {hold_id} expired at {hold.expires_at.isoformat()}")
        return hold

    # -- rewards ------------------------------------------------------------
    def credit(
        self,
        amount: int,
        rule_id: str,
        rule_version: int,
        activity_id: str,
        explanation: str,
        carry_key: str | None = None,
        carried_after: int | None = None,
        quantity: int | None = None,
        lot: LotTerms | None = None,
        on: dt.date | None = None,
        source: str = "",
        claim_id: str = "",
        fund: str = "",
        explanation_id: str = "",
        explanation_args: dict[str, Any] | None = None,
    ) -> None:
        """An award; in a depreciating currency (`lot` given) it is also kept as a lot.
        `on` is the activity's date, which the rule's caps count by. `source` names where it
        came from (`source:<id>` with the source's `claim_id`, or the staff member who recorded
        it at a desk); empty for awards made by the node itself. `explanation_id` and
        `explanation_args` say what `explanation` says in English as a message id and its
        parameters, read in any language (events written before them have the text only)."""
        if amount < 0:
            raise InvalidInput("amount", "awards are never negative")
        if lot is not None:
            self.revalue(lot.on)
        fields: dict[str, Any] = dict(
            rule_id=rule_id,
            rule_version=rule_version,
            activity_id=activity_id,
            explanation=explanation,
            carry_key=carry_key,
            carried_after=carried_after,
            quantity=quantity,
            source=source,
            claim_id=claim_id,
        )
        if on is not None:
            fields["on"] = on.isoformat()
        if explanation_id:
            fields["explanation_id"] = explanation_id
            fields["explanation_args"] = dict(explanation_args or {})
        if amount:
            if fund:
                fields["fund"] = fund
            self._credited(amount=amount, **fields)
            if lot is not None:
                self._lot_opened(amount, lot.on.isoformat(), lot.ends_on.isoformat())
        else:
            self._progressed(**fields)

    @event("Credited")
    def _credited(
        self,
        amount: int,
        rule_id: str,
        rule_version: int,
        activity_id: str,
        explanation: str,
        carry_key: str | None,
        carried_after: int | None,
        quantity: int | None,
        on: str | None = None,
        source: str = "",
        claim_id: str = "",
        fund: str = "",
        explanation_id: str = "",
        explanation_args: dict[str, Any] | None = None,
    ) -> None:
        self.balance += amount
        lots = self._fund_lots()
        if lots and lots[-1][0] == fund:
            lots[-1][1] += amount
        else:
            lots.append([fund, amount])
        if carry_key is not None and carried_after is not None:
            self.carried[carry_key] = carried_after
        if on is not None:
            days = self.earned.setdefault(rule_id, {})
            days[on] = days.get(on, 0) + amount

    @event("Progressed")
    def _progressed(
        self,
        rule_id: str,
        rule_version: int,
        activity_id: str,
        explanation: str,
        carry_key: str | None,
        carried_after: int | None,
        quantity: int | None,
        on: str | None = None,
        source: str = "",
        claim_id: str = "",
        explanation_id: str = "",
        explanation_args: dict[str, Any] | None = None,
    ) -> None:
        """A measured activity that earned no whole token yet; the remainder carries."""
        if carry_key is not None and carried_after is not None:
            self.carried[carry_key] = carried_after

    def earned_under(self, rule_id: str, on: dt.date) -> tuple[int, int]:
        """What the wallet earned under a rule on `on`'s day and in its calendar month."""
        days = self.earned.get(rule_id, {})
        month = on.isoformat()[:7]
        return days.get(on.isoformat(), 0), sum(v for d, v in days.items() if d.startswith(month))

    @event("AwardRefused")
    def refuse_award(
        self,
        rule_id: str,
        rule_version: int,
        activity_id: str,
        limit: str,
        reason: str,
        on: str,
        reason_id: str = "",
        reason_args: dict[str, Any] | None = None,
    ) -> None:
        """An award the rule's caps or dates refuse: recorded, never silently dropped, and
        open to appeal like any refusal. `limit` names the cap or date that refused it;
        `reason_id` and `reason_args` say what `reason` says in English as a message id and
        its parameters (empty in events recorded before them)."""
        self.refused[activity_id] = reason

    # -- depreciating currencies: lots --------------------------------------
    @event("LotOpened")
    def _lot_opened(self, amount: int, on: str, ends_on: str) -> None:
        self.lots.append(Lot(amount, dt.date.fromisoformat(on), dt.date.fromisoformat(ends_on)))

    def revalue(self, on: dt.date) -> None:
        """Record the published depreciation of the lots up to `on`, so events alone show it."""
        if self.lots:
            lost = self.balance - self.held - total_at(self.lots, on)
            if lost > 0:
                self._depreciated(lost, on.isoformat(), self.attribute(lost))

    @event("Depreciated")
    def _depreciated(self, amount: int, on: str, funds: dict[str, int] | None = None) -> None:
        self.balance -= amount
        self._leave_funds(amount, funds)
        day = dt.date.fromisoformat(on)
        self.lots = [lot for lot in self.lots if value_at(lot, day) > 0]

    def _draw_lots(self, amount: int, now: dt.datetime, drawn_for: str) -> None:
        if self.lots:
            self._lots_drawn(amount, now.date().isoformat(), drawn_for)

    @event("LotsDrawn")
    def _lots_drawn(self, amount: int, on: str, drawn_for: str) -> None:
        self.lots = draw(self.lots, amount, dt.date.fromisoformat(on))

    def value_on(self, on: dt.date) -> int:
        """The balance as of `on`: lots at their depreciated value (without lots, the balance)."""
        return total_at(self.lots, on) + self.held if self.lots else self.balance

    def check_no_lots(self) -> None:
        if self.lots:
            raise HoldsNotOffered("holds are not offered in a depreciating currency; spend directly")

    # -- funds: which fund issued the tokens that leave ------------------------
    def _fund_lots(self) -> list[list[Any]]:
        # A wallet restored from a snapshot taken before funds existed has none recorded.
        lots: list[list[Any]] = self.__dict__.setdefault("fund_lots", [])
        return lots

    def attribute(self, amount: int) -> dict[str, int]:
        """The funds `amount` leaving the wallet came from: the oldest tokens first (lots,
        in a depreciating currency, lose their value oldest first as well). Tokens issued
        before the city declared funds count under the empty name."""
        out: dict[str, int] = {}
        left = amount
        for fund, held in self._fund_lots():
            if left <= 0:
                break
            take = min(held, left)
            if take > 0:
                out[fund] = out.get(fund, 0) + take
                left -= take
        if left > 0:
            out[""] = out.get("", 0) + left
        return out

    def _leave_funds(self, amount: int, funds: dict[str, int] | None) -> None:
        """Applied with each event that takes tokens out: as the event names the funds, or
        (an event from before funds existed) as attributed now."""
        lots = self._fund_lots()
        share = dict(funds) if funds is not None else self.attribute(amount)
        for lot in lots:
            take = min(lot[1], share.get(lot[0], 0))
            if take > 0:
                lot[1] -= take
                share[lot[0]] -= take
        lots[:] = [lot for lot in lots if lot[1] > 0]

    # -- spending -----------------------------------------------------------
    def spend(
        self,
        amount: int,
        merchant_id: UUID,
        purchase_ref: str,
        now: dt.datetime,
        category: str = "",
        spent_for: str = "purchase",
    ) -> None:
        """`category` is the merchant's category code; `spent_for` is "purchase" or "prize"."""
        self.release_expired(now)
        self.check_active(now)
        self.check_available(amount, now.date())
        self.revalue(now.date())
        self._spent(amount, merchant_id, purchase_ref, category, spent_for, self.attribute(amount))
        self._draw_lots(amount, now, "spending")

    @event("Spent")
    def _spent(
        self,
        amount: int,
        merchant_id: UUID,
        purchase_ref: str,
        category: str = "",
        spent_for: str = "purchase",
        funds: dict[str, int] | None = None,
    ) -> None:
        self.balance -= amount
        self._leave_funds(amount, funds)

    def pay_tax(self, amount: int, treasury_id: UUID, assessment_ref: str, now: dt.datetime) -> None:
        """Municipal tax paid from the wallet into the city treasury, against an assessment."""
        self.release_expired(now)
        self.check_active(now)
        self.check_available(amount, now.date())
        self.revalue(now.date())
        self._tax_paid(amount, treasury_id, assessment_ref, self.attribute(amount))
        self._draw_lots(amount, now, "tax")

    @event("TaxPaid")
    def _tax_paid(
        self, amount: int, treasury_id: UUID, assessment_ref: str, funds: dict[str, int] | None = None
    ) -> None:
        self.balance -= amount
        self._leave_funds(amount, funds)

    def place_hold(
        self, hold_id: str, amount: int, expires_at: dt.datetime, purpose: str, now: dt.datetime
    ) -> None:
        self.release_expired(now)
        self.check_active(now)
        self.check_no_lots()
        self.check_available(amount)
        self._hold_placed(hold_id, amount, expires_at, purpose)

    @event("HoldPlaced")
    def _hold_placed(self, hold_id: str, amount: int, expires_at: dt.datetime, purpose: str) -> None:
        self.holds[hold_id] = Hold(amount, expires_at, purpose)

    @event("HoldReleased")
    def release_hold(self, hold_id: str, reason: str) -> None:
        self.holds.pop(hold_id)

    def spend_hold(
        self, hold_id: str, merchant_id: UUID, purchase_ref: str, now: dt.datetime, category: str = ""
    ) -> None:
        self.check_hold(hold_id, now)
        self._hold_spent(
            hold_id, merchant_id, purchase_ref, category, self.attribute(self.holds[hold_id].amount)
        )

    @event("HoldSpent")
    def _hold_spent(
        self,
        hold_id: str,
        merchant_id: UUID,
        purchase_ref: str,
        category: str = "",
        funds: dict[str, int] | None = None,
    ) -> None:
        amount = self.holds.pop(hold_id).amount
        self.balance -= amount
        self._leave_funds(amount, funds)

    def burn_hold(self, hold_id: str, partner_city: str, redemption_id: UUID, now: dt.datetime) -> None:
        """Tokens redeemed at a partner city's shop leave this ledger for good."""
        self.check_hold(hold_id, now)
        self._hold_burned(hold_id, partner_city, redemption_id, self.attribute(self.holds[hold_id].amount))

    @event("HoldBurned")
    def _hold_burned(
        self, hold_id: str, partner_city: str, redemption_id: UUID, funds: dict[str, int] | None = None
    ) -> None:
        amount = self.holds.pop(hold_id).amount
        self.balance -= amount
        self._leave_funds(amount, funds)

    def release_expired(self, now: dt.datetime) -> None:
        """Record the release of every lapsed hold, so events alone show it."""
        for hold_id, hold in list(self.holds.items()):
            if now >= hold.expires_at:
                self.release_hold(hold_id, "expired")

    # -- appeals ------------------------------------------------------------
    @event("AppealLodged")
    def note_appeal(self, appeal_id: UUID, subject_kind: str) -> None:
        """Links an appeal to the wallet, so the holder's history lists it."""
        self.appeals.append(appeal_id)

    # -- opting out ---------------------------------------------------------
    def leave(self, now: dt.datetime, final_spend_days: int, reason: str) -> None:
        """The holder opts out: closed at once, or after the city's final spend window.
        A wallet past its validity end is already in its window: leaving records the expiry."""
        if self.expired(now) and self.closes_at is None and not self.closed:
            self.expire(now)  # closes it too, if its window has ended
            return
        self.check_earning(now)
        # Held tokens are still the holder's: a voucher out at a shop keeps the window open,
        # and stays redeemable until it expires even if that is after the window's end.
        if final_spend_days > 0 and self.value_on(now.date()) > 0:
            window_ends = now + dt.timedelta(days=final_spend_days)
            last_hold = max((h.expires_at for h in self.holds.values()), default=window_ends)
            self._close_scheduled(max(window_ends, last_hold), reason)
        else:
            self.finish(reason, now)

    def expire(self, now: dt.datetime) -> None:
        """The validity end has passed: recorded, and the wallet is in its final spend window
        (from the validity end) like a wallet whose holder left; at the window's end (or at
        once, with nothing left to spend) it closes and what is left lapses."""
        if self.closed:
            raise WalletClosed(f"wallet {self.id} is closed")
        if self.valid_until is None or now < self.valid_until:
            raise WalletClosed(f"wallet {self.id} has not expired")
        if self.closes_at is not None:
            raise WalletClosed(f"wallet {self.id} is already closing")
        ends = self.spend_until
        assert ends is not None
        if self.final_spend_days > 0 and self.value_on(now.date()) > 0:
            last_hold = max((h.expires_at for h in self.holds.values()), default=ends)
            ends = max(ends, last_hold)
        self._expired(self.valid_until, ends)
        if now >= ends or self.value_on(now.date()) <= 0:
            self.finish("validity ended", now)

    @event("Expired")
    def _expired(self, valid_until: dt.datetime, closes_at: dt.datetime) -> None:
        self.closes_at = closes_at

    @event("CloseScheduled")
    def _close_scheduled(self, closes_at: dt.datetime, reason: str) -> None:
        self.closes_at = closes_at

    def check_closing_due(self, now: dt.datetime) -> None:
        if self.closed:
            raise WalletClosed(f"wallet {self.id} is closed")
        if self.closes_at is None or now < self.closes_at:
            raise WalletClosed(f"wallet {self.id} has no final spend window that has ended")

    def finish(self, reason: str, now: dt.datetime) -> None:
        """Close now: holds are released and any balance lapses (not a penalty).

        Lots are valued on `now`'s day first, so what lapses is what they are worth.
        """
        for hold_id in list(self.holds):
            self.release_hold(hold_id, "wallet closed")
        self.revalue(now.date())
        self.close(reason)
        if self.balance:
            amount = self.balance
            self._lapsed(amount, self.attribute(amount))
            self._draw_lots(amount, now, "lapse")

    @event("Lapsed")
    def _lapsed(self, amount: int, funds: dict[str, int] | None = None) -> None:
        """The balance of a closed wallet leaves circulation, as the city's rules publish."""
        self.balance -= amount
        self._leave_funds(amount, funds)

    def check_not_erased(self) -> None:
        if self.erased:
            raise AlreadyErased("this wallet is already erased; there is nothing left to erase")

    @event("Erased")
    def mark_erased(self, reason: str, pseudonym: str = "") -> None:
        """Personal data is being erased (its key destroyed); amounts and rules remain.

        `pseudonym`: the name the wallet went by outside the store, recorded before its
        key goes, so the read models can find and replace it (empty in older events)."""
        self.erased = True
        self.pseudonym = pseudonym

    @event("Closed")
    def close(self, reason: str) -> None:
        self.closed = True
