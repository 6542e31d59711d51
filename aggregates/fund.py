"""A fund behind a city's awards: its budget, what its rules issued, and what came back.

Every award draws on the fund of its rule, in the same save as the wallet's credit; an
award beyond the budget left is refused (`check_covers`). Tokens issued and not yet
spent are the fund's liability (`outstanding`). Tokens spent at shops (`redeemed`) have
used the budget; tokens that lapse with a closed wallet or depreciate away never will,
so they release it: they return to what the fund has left.

    awarded   = issued - lapsed - depreciated
    remaining = budget - awarded                (budget = awarded + remaining, always)
    outstanding = issued - redeemed - lapsed - depreciated

A city tops a fund up by a decision of two people: one proposes (`propose_top_up`),
another approves with a decision reference (`approve_top_up`).

Each draw and release records the day it was booked (`on`, ISO date on the city's clock),
so the finance report can give every figure per month from the fund's own events. Events
stored before `on` was recorded have it empty; their month is the event's timestamp's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.errors import (
    DecisionReused,
    FundExhausted,
    InvalidInput,
    NotFound,
    SelfApproval,
    TopUpNotOpen,
)

RELEASES = ("redeemed", "lapsed", "depreciated")


@dataclass
class TopUp:
    proposal_id: str
    amount: int
    reason: str
    proposed_by: str
    status: str = "proposed"  # "approved" once decided
    approved_by: str = ""
    decision_ref: str = ""


class Fund(Aggregate):
    @staticmethod
    def create_id(city: str, fund_id: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"civfed:{city}:fund:{fund_id}")

    @event("Declared")
    def __init__(self, city: str, fund_id: str, name: str, funder: str, budget: int, period: str) -> None:
        self.city = city
        self.fund_id = fund_id
        self.name = name
        self.funder = funder
        self.period = period
        self.declared = budget
        self.budget = budget  # the declared budget plus every approved top-up
        self.issued = 0
        self.redeemed = 0
        self.lapsed = 0
        self.depreciated = 0
        # Kept as plain dicts (`TopUp` fields), so a snapshot of the fund needs no transcoding.
        self.top_ups: dict[str, dict[str, Any]] = {}

    @classmethod
    def declare(cls, city: str, fund_id: str, name: str, funder: str, budget: int, period: str) -> Fund:
        if type(budget) is not int or budget < 0:
            raise InvalidInput("budget", "a whole number of the currency's smallest unit, not negative")
        return cls(city, fund_id, name, funder, budget, period)

    # -- figures ------------------------------------------------------------------------------
    @property
    def awarded(self) -> int:
        return self.issued - self.lapsed - self.depreciated

    @property
    def remaining(self) -> int:
        return self.budget - self.awarded

    @property
    def outstanding(self) -> int:
        return self.issued - self.redeemed - self.lapsed - self.depreciated

    # -- awards -------------------------------------------------------------------------------
    def check_covers(self, amount: int) -> None:
        if amount > self.remaining:
            raise FundExhausted(
                f"fund {self.fund_id!r} ({self.name}) has {self.remaining} left of its budget;"
                f" the award of {amount} is refused"
            )

    def draw(self, amount: int, rule_id: str, on: str = "") -> None:
        """An award under `rule_id`. The fund names no wallet and no activity: which award
        it was is the wallet's record (its credit names the fund), sealed with the person's
        key; the fund's events stay figures only."""
        if type(amount) is not int or amount <= 0:
            raise InvalidInput("amount", "must be a positive whole number")
        self.check_covers(amount)
        self._drawn(amount, rule_id, on)

    @event("Drawn")
    def _drawn(self, amount: int, rule_id: str, on: str = "") -> None:
        self.issued += amount

    def release(self, how: str, amount: int, on: str = "") -> None:
        """Tokens this fund issued left circulation: spent (`redeemed`), or lapsed or
        depreciated, which gives the budget back."""
        if how not in RELEASES:
            raise InvalidInput("how", f"one of {RELEASES}")
        if amount > 0:
            self._released(how, amount, on)

    @event("Released")
    def _released(self, how: str, amount: int, on: str = "") -> None:
        setattr(self, how, getattr(self, how) + amount)

    # -- top-ups: four eyes ---------------------------------------------------------------------
    def propose_top_up(self, proposal_id: str, amount: int, reason: str, proposed_by: str) -> None:
        if type(amount) is not int or amount <= 0:
            raise InvalidInput("amount", "a top-up is a positive whole number of the smallest unit")
        if not reason.strip():
            raise InvalidInput("reason", "a top-up gives its reason")
        if not proposed_by:
            raise InvalidInput("proposed_by", "the proposing person must be named")
        if proposal_id in self.top_ups:
            raise TopUpNotOpen(f"top-up {proposal_id} of fund {self.fund_id!r} was already proposed")
        self._top_up_proposed(proposal_id, amount, reason, proposed_by)

    @event("TopUpProposed")
    def _top_up_proposed(self, proposal_id: str, amount: int, reason: str, proposed_by: str) -> None:
        self.top_ups[proposal_id] = asdict(TopUp(proposal_id, amount, reason, proposed_by))

    def top_up(self, proposal_id: str) -> TopUp | None:
        found = self.top_ups.get(proposal_id)
        return TopUp(**found) if found is not None else None

    def check_approvable(self, proposal_id: str, approved_by: str, decision_ref: str) -> TopUp:
        top_up = self.top_up(proposal_id)
        if top_up is None:
            raise NotFound(f"top-up {proposal_id} of fund {self.fund_id!r} not found")
        if top_up.status != "proposed":
            raise TopUpNotOpen(f"top-up {proposal_id} of fund {self.fund_id!r} was already {top_up.status}")
        if not approved_by:
            raise InvalidInput("approved_by", "the approving person must be named")
        if approved_by == top_up.proposed_by:
            raise SelfApproval(
                f"four eyes: {approved_by} proposed this top-up of fund {self.fund_id!r};"
                " another person must approve it"
            )
        if not decision_ref.strip():
            raise InvalidInput("decision_ref", "a decision reference is required")
        self.check_decision_unused(decision_ref)
        return top_up

    def check_decision_unused(self, decision_ref: str) -> None:
        """One decision approves one top-up of this fund: a reference that approved another
        one (spelt the same up to case and spacing) does not approve a second amount."""
        wanted = _decision_key(decision_ref)
        for other in self.top_ups.values():
            if other["status"] == "approved" and _decision_key(other["decision_ref"]) == wanted:
                raise DecisionReused(
                    f"decision {decision_ref.strip()!r} already approved top-up {other['proposal_id']} "
                    f"of fund {self.fund_id!r}; each top-up needs its own decision"
                )

    def approve_top_up(self, proposal_id: str, approved_by: str, decision_ref: str) -> TopUp:
        top_up = self.check_approvable(proposal_id, approved_by, decision_ref)
        self._topped_up(proposal_id, top_up.amount, approved_by, decision_ref)
        return TopUp(**self.top_ups[proposal_id])

    @event("ToppedUp")
    def _topped_up(self, proposal_id: str, amount: int, approved_by: str, decision_ref: str) -> None:
        self.top_ups[proposal_id].update(
            status="approved", approved_by=approved_by, decision_ref=decision_ref
        )
        self.budget += amount


def _decision_key(decision_ref: str) -> str:
    return " ".join(decision_ref.split()).casefold()
