"""Funds and budgets: who pays for the awards, and what each fund's tokens became.

A city declares its funds in `city.toml` (`[funds.<id>]`: name, funder, budget, period and
the rules that draw on it; every rule in the file draws on exactly one, checked at load).
At start each declared fund not yet in the store is recorded with its budget; afterwards
the budget changes only by a top-up decided by two people (`ProposeFundTopUp`, then
`ApproveFundTopUp` by someone else, with a decision reference). Editing a budget in the
file later changes nothing stored.

Every award draws on its rule's fund in the same save as the wallet's credit
(`draw_for`). An award beyond what the fund has left is refused and the refusal recorded
on the wallet (`Wallet.AwardRefused`, `limit` "fund:<id>"), appealable as a
`refused_award` like a cap's refusal; an upheld appeal credits through the same fund, so
it waits for a top-up if the fund is still empty. A rule no fund names (published after
the file was loaded) has nothing to draw on, and its awards are refused the same way.

Tokens leave a wallet by spending, by lapsing when it closes, or by depreciating. Each
such wallet event names the funds the tokens came from (`funds`), oldest tokens first
(aggregates/wallet.py: `attribute`); after every command the funds are told, in the
same save (`settle_funds`): spent tokens are `redeemed`, the others release the budget.

The fund is read and changed by every award. Within a node the group writer runs
concurrent commands one after another against the fund it holds in memory and saves
them together, so awards meet no version conflict there; the group's read-ahead brings
the city's funds with the rest of its aggregates, and the writer keeps them between
groups (services/batch_reads.py), reading only the events stored since.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any, Protocol
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError

from aggregates.errors import AwardRefused, NotFound
from aggregates.fund import RELEASES, Fund
from aggregates.rules import Rule
from aggregates.wallet import Wallet
from services import commands as c
from services.settings.cities import City
from services.unit_of_work import UnitOfWork

# Wallet events that take tokens out, and what they are to the fund that issued them.
RELEASE_OF = {
    "Spent": "redeemed",
    "TaxPaid": "redeemed",
    "HoldSpent": "redeemed",
    "HoldBurned": "redeemed",
    "Lapsed": "lapsed",
    "Depreciated": "depreciated",
}


FIGURES = ("budget", "issued", "redeemed", "lapsed", "depreciated", "outstanding", "awarded", "remaining")


class FundsLike(Protocol):
    city: City
    key: str

    def clock(self) -> dt.datetime: ...

    def save(self, *aggregates: Any) -> Any: ...

    @property
    def repository(self) -> Any: ...


@dataclass(frozen=True)
class FundReport:
    fund_id: str
    name: str
    funder: str
    period: str
    rules: list[str]
    declared: int
    budget: int
    issued: int
    redeemed: int
    lapsed: int
    depreciated: int
    outstanding: int
    awarded: int
    remaining: int
    euro_per_token: Decimal | None
    decimals: int

    def euros(self, units: int) -> Decimal | None:
        """`units` of the smallest unit in euros at the published rate, to the cent."""
        if self.euro_per_token is None:
            return None
        return (Decimal(units) * self.euro_per_token / Decimal(10) ** self.decimals).quantize(Decimal("0.01"))

    def as_dict(self) -> dict[str, Any]:
        figures = (
            "budget",
            "issued",
            "redeemed",
            "lapsed",
            "depreciated",
            "outstanding",
            "awarded",
            "remaining",
        )
        out: dict[str, Any] = {
            "fund_id": self.fund_id,
            "name": self.name,
            "funder": self.funder,
            "period": self.period,
            "rules": list(self.rules),
            "declared": self.declared,
            **{f: getattr(self, f) for f in figures},
            "euro_per_token": str(self.euro_per_token) if self.euro_per_token is not None else None,
        }
        out["euros"] = (
            None if self.euro_per_token is None else {f: str(self.euros(getattr(self, f))) for f in figures}
        )
        return out


@dataclass
class FundMonth:
    """One fund's month: what it issued, what of its tokens were redeemed, lapsed or
    depreciated in it, and what was outstanding at the month's end."""

    fund_id: str
    period: str  # "2026-05"
    issued: int = 0
    redeemed: int = 0
    lapsed: int = 0
    depreciated: int = 0
    outstanding: int = 0


def month_of(e: Any) -> str:
    """The month a fund's draw or release was booked in: its recorded day, or for one
    stored before days were recorded, its timestamp's month (UTC)."""
    on = getattr(e, "on", "") or ""
    if on:
        return str(on)[:7]
    stamp: dt.datetime = e.timestamp
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC)
    return stamp.strftime("%Y-%m")


def months_of(fund_id: str, events: Any) -> list[FundMonth]:
    """A fund's months from its events, each month from its first to its last, even one
    with nothing booked (its outstanding carried)."""
    found: dict[str, FundMonth] = {}
    for e in events:
        kind = type(e).__qualname__.rsplit(".", 1)[-1]
        if kind == "Drawn":
            line = found.setdefault(month_of(e), FundMonth(fund_id, month_of(e)))
            line.issued += e.amount
        elif kind == "Released" and e.how in RELEASES:
            line = found.setdefault(month_of(e), FundMonth(fund_id, month_of(e)))
            setattr(line, e.how, getattr(line, e.how) + e.amount)
    out: list[FundMonth] = []
    outstanding = 0
    for month in _every_month(sorted(found)):
        line = found.get(month) or FundMonth(fund_id, month)
        outstanding += line.issued - line.redeemed - line.lapsed - line.depreciated
        line.outstanding = outstanding
        out.append(line)
    return out


def _every_month(months: list[str]) -> list[str]:
    if not months:
        return []
    year, month = int(months[0][:4]), int(months[0][5:7])
    out = []
    while (text := f"{year:04d}-{month:02d}") <= months[-1]:
        out.append(text)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def fund_ids(city: City) -> list[UUID]:
    return [Fund.create_id(city.config.key, fund_id) for fund_id in city.config.funds]


class FundCommands:
    """Mixed into the city application: its funds, the draws on them and their top-ups."""

    def fund_handlers(self: FundsLike) -> dict[type[c.Command], Any]:
        return {
            c.ProposeFundTopUp: partial(FundCommands._propose_top_up, self),
            c.ApproveFundTopUp: partial(FundCommands._approve_top_up, self),
        }

    def declare_funds(self: FundsLike) -> None:
        """Each fund the file declares and the store does not yet hold, with its budget."""
        cfg = self.city.config
        uow = UnitOfWork(self)
        for fund_id, spec in cfg.funds.items():
            if uow.find(Fund.create_id(self.key, fund_id), Fund) is not None:
                continue
            budget = spec.budget_units(cfg.euro_per_token, cfg.currency.decimals, fund_id)
            # Another process of the city may have declared it first.
            with contextlib.suppress(IntegrityError):
                self.save(Fund.declare(self.key, fund_id, spec.name, spec.funder, budget, spec.period))

    # -- awards -----------------------------------------------------------------------------
    def draw_for(
        self: FundsLike,
        uow: UnitOfWork,
        wallet: Wallet,
        rule: Rule,
        amount: int,
        activity_id: str,
        on: dt.date,
        appealed: bool = False,
    ) -> str:
        """Draw an award on its rule's fund, or refuse it (recorded on the wallet unless an
        appeal's remedy is being credited): the fund's id, or "" in a city without funds."""
        try:
            return FundCommands.draw(self, uow, rule, amount, activity_id)
        except AwardRefused as exc:
            if not appealed and activity_id not in wallet.refused:
                limit = f"fund:{self.city.config.fund_of(rule.rule_id) or ''}"
                wallet.refuse_award(rule.rule_id, rule.version, activity_id, limit, str(exc), on.isoformat())
            raise type(exc)(f"{exc}; refusal recorded, appealable as refused_award {activity_id!r}") from None

    def draw(self: FundsLike, uow: UnitOfWork, rule: Rule, amount: int, activity_id: str) -> str:
        """Draw `amount` on the rule's fund (its id; "" in a city without funds), or refuse
        it (`FundExhausted`, or no fund at all), changing nothing."""
        cfg = self.city.config
        if not cfg.funds or amount <= 0:
            return ""
        fund_id = cfg.fund_of(rule.rule_id)
        fund = uow.find(Fund.create_id(self.key, fund_id), Fund) if fund_id is not None else None
        if fund is None:
            raise AwardRefused(f"rule {rule.rule_id!r} draws on no fund of {cfg.name}")
        fund.draw(amount, rule.rule_id, self.clock().date().isoformat())
        return fund.fund_id

    def settle_funds(self: FundsLike, uow: UnitOfWork) -> None:
        """After a command: the funds whose tokens left a wallet in it are told how."""
        if not self.city.config.funds:
            return
        today = ""
        for aggregate in uow.take_touched(lambda a: isinstance(a, Wallet) and bool(a.pending_events)):
            pending = aggregate.pending_events
            start = uow.marks.get(aggregate.id, 0)
            uow.marks[aggregate.id] = len(pending)
            for e in pending[start:]:
                how = RELEASE_OF.get(type(e).__qualname__.rsplit(".", 1)[-1])
                funds = getattr(e, "funds", None)
                if how is None or not funds:
                    continue
                for fund_id, amount in funds.items():
                    fund = uow.find(Fund.create_id(self.key, fund_id), Fund) if fund_id else None
                    if fund is not None:
                        today = today or self.clock().date().isoformat()
                        fund.release(how, amount, today)

    # -- top-ups ----------------------------------------------------------------------------
    def _fund(self: FundsLike, uow: UnitOfWork, fund_id: str) -> Fund:
        if fund_id not in self.city.config.funds:
            raise NotFound(f"{self.city.config.name} declares no fund {fund_id!r}")
        return uow.get(Fund.create_id(self.key, fund_id), Fund, "fund")

    def _propose_top_up(self: FundsLike, cmd: c.ProposeFundTopUp, uow: UnitOfWork) -> dict[str, Any]:
        fund = FundCommands._fund(self, uow, cmd.fund_id)
        proposal_id = str(uuid4())
        fund.propose_top_up(proposal_id, cmd.amount, cmd.reason, cmd.proposed_by)
        return top_up_result(fund, proposal_id)

    def _approve_top_up(self: FundsLike, cmd: c.ApproveFundTopUp, uow: UnitOfWork) -> dict[str, Any]:
        fund = FundCommands._fund(self, uow, cmd.fund_id)
        fund.approve_top_up(cmd.proposal_id, cmd.approved_by, cmd.decision_ref)
        return top_up_result(fund, cmd.proposal_id)

    # -- reads ------------------------------------------------------------------------------
    def fund_reports(self: FundsLike) -> list[FundReport]:
        cfg = self.city.config
        uow = UnitOfWork(self, for_reading=True)
        out = []
        for fund_id, spec in cfg.funds.items():
            fund = uow.find(Fund.create_id(self.key, fund_id), Fund)
            if fund is None:
                raise NotFound(f"fund {fund_id!r} of {cfg.name} is not recorded yet")
            out.append(
                FundReport(
                    fund_id,
                    fund.name,
                    fund.funder,
                    fund.period,
                    list(spec.rules),
                    fund.declared,
                    fund.budget,
                    fund.issued,
                    fund.redeemed,
                    fund.lapsed,
                    fund.depreciated,
                    fund.outstanding,
                    fund.awarded,
                    fund.remaining,
                    cfg.euro_per_token,
                    cfg.currency.decimals,
                )
            )
        return out

    def fund_months(self: FundsLike, period: str = "") -> dict[str, list[FundMonth]]:
        """Per fund, its months from its own events (`period`: that month only, with what
        was outstanding at its end even if nothing was booked in it)."""
        cfg = self.city.config
        out: dict[str, list[FundMonth]] = {}
        for fund_id in cfg.funds:
            lines = months_of(fund_id, self.repository.event_store.get(Fund.create_id(self.key, fund_id)))
            if period:
                before = [line for line in lines if line.period <= period]
                if not before:
                    lines = [FundMonth(fund_id, period)]
                elif before[-1].period == period:
                    lines = [before[-1]]
                else:
                    lines = [FundMonth(fund_id, period, outstanding=before[-1].outstanding)]
            out[fund_id] = lines
        return out


def top_up_result(fund: Fund, proposal_id: str) -> dict[str, Any]:
    t = fund.top_up(proposal_id)
    assert t is not None  # the fund has just recorded it
    return {
        "fund_id": fund.fund_id,
        "proposal_id": t.proposal_id,
        "amount": t.amount,
        "reason": t.reason,
        "proposed_by": t.proposed_by,
        "status": t.status,
        "approved_by": t.approved_by,
        "decision_ref": t.decision_ref,
        "budget": fund.budget,
        "remaining": fund.remaining,
    }


@dataclass
class FundBooks:
    """Each fund's figures from the events alone, fund side and wallet side, to check that
    they agree and that budget = awarded + remaining (the simulation, the end-to-end tests)."""

    budget: dict[str, int] = field(default_factory=dict)
    drawn: dict[str, int] = field(default_factory=dict)  # the funds' Drawn events
    credited: dict[str, int] = field(default_factory=dict)  # the wallets' Credited events
    released: dict[tuple[str, str], int] = field(default_factory=dict)  # the funds' Released
    left: dict[tuple[str, str], int] = field(default_factory=dict)  # the wallets' events
    ids: dict[UUID, str] = field(default_factory=dict)  # a fund aggregate's id -> the fund

    def apply(self, kind: str, e: Any) -> None:
        if kind == "Fund.Declared":
            self.ids[e.originator_id] = e.fund_id
            self.budget[e.fund_id] = e.budget
        elif kind == "Fund.ToppedUp":
            fund_id = self._fund_of(e.originator_id)
            self.budget[fund_id] = self.budget.get(fund_id, 0) + e.amount
        elif kind == "Fund.Drawn":
            fund_id = self._fund_of(e.originator_id)
            self.drawn[fund_id] = self.drawn.get(fund_id, 0) + e.amount
        elif kind == "Fund.Released":
            key = (self._fund_of(e.originator_id), e.how)
            self.released[key] = self.released.get(key, 0) + e.amount
        elif kind == "Wallet.Credited" and isinstance(getattr(e, "fund", None), str) and e.fund:
            self.credited[e.fund] = self.credited.get(e.fund, 0) + e.amount
        elif kind.startswith("Wallet.") and kind[7:] in RELEASE_OF:
            for fund_id, amount in (getattr(e, "funds", None) or {}).items():
                if fund_id:
                    key = (fund_id, RELEASE_OF[kind[7:]])
                    self.left[key] = self.left.get(key, 0) + amount

    def _fund_of(self, originator: UUID) -> str:
        return self.ids.get(originator, "")

    def problems(self, app: Any = None) -> list[str]:
        """What does not hold; with `app`, each stored fund's remaining is checked too."""
        out = []
        for fund_id in sorted(set(self.budget) | set(self.drawn) | set(self.credited)):
            issued, credited = self.drawn.get(fund_id, 0), self.credited.get(fund_id, 0)
            if issued != credited:
                out.append(f"fund {fund_id}: drew {issued}, wallets were credited {credited} from it")
            for how in ("redeemed", "lapsed", "depreciated"):
                fund_side, wallet_side = (
                    self.released.get((fund_id, how), 0),
                    self.left.get((fund_id, how), 0),
                )
                if fund_side != wallet_side:
                    out.append(f"fund {fund_id}: {how} {fund_side}, the wallets' events say {wallet_side}")
            awarded = issued - self.released.get((fund_id, "lapsed"), 0)
            awarded -= self.released.get((fund_id, "depreciated"), 0)
            budget = self.budget.get(fund_id, 0)
            if app is not None:
                fund = UnitOfWork(app, for_reading=True).find(Fund.create_id(app.key, fund_id), Fund)
                if fund is None or fund.budget != budget or budget != fund.awarded + fund.remaining:
                    out.append(f"fund {fund_id}: budget {budget} is not awarded + remaining")
                elif fund.awarded != awarded or fund.remaining < 0:
                    out.append(f"fund {fund_id}: awarded {fund.awarded}, its events say {awarded}")
            elif awarded > budget:
                out.append(f"fund {fund_id}: awarded {awarded} beyond its budget {budget}")
        return out
